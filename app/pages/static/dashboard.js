/* The built-in dashboard (GET / and /dashboard): read-only views of the score API.
 *
 * No build step, no library, no inline script or style (the page's policy forbids both): the
 * DOM is built with createElement, the charts are hand-written SVG. The read key is kept in
 * sessionStorage and sent as `Authorization: Bearer` to this origin; no cookie is used.
 *
 * Polling: each view is a list of API calls. Every call remembers its ETag and sends it back as
 * If-None-Match; a 304 means nothing changed and nothing is redrawn. A view is redrawn only when
 * a body differs from the one drawn (an untagged call's body is compared too; the moving end of
 * the default window, `from` and `to`, alone is not a change). `#view[data-draws]` counts the
 * redraws, `data-polls` the polls and `data-not-modified` the 304s, for tests and the curious.
 *
 * Small-sample honesty: a score whose precision is `insufficient` is drawn as the word
 * "insufficient" with its n, never as a bare number; `low` precision is flagged next to it.
 */
"use strict";

(() => {
  const KEY_STORAGE = "nps.dashboard.key";
  const POLL_MS = 10000;
  const SVG = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const view = $("view");
  const statusLine = $("status");
  const errorLine = $("error");

  // ---------------------------------------------------------------- DOM helpers

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "onclick") el.addEventListener("click", value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
  }

  function append(el, children) {
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  // ---------------------------------------------------------------- formatting

  const one = (x) => Number(x).toFixed(1);
  const signed = (x) => (x > 0 ? "+" : "") + one(x);
  const day = (iso) => (iso ? iso.slice(0, 10) : "");
  const month = (iso) => iso.slice(0, 7);
  const clock = (d) => d.toTimeString().slice(0, 8);

  function revenue(account) {
    if (!account || account.annual_revenue === null || account.annual_revenue === undefined) {
      return "";
    }
    const whole = String(account.annual_revenue).split(".")[0];
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return `${account.currency || ""} ${grouped}`.trim();
  }

  const REASONS = {
    low_nps: "low NPS",
    decision_maker_detractor: "decision-maker detractor",
    significant_decline: "significant decline",
    key_stakeholder_downgrade: "key stakeholder downgrade",
    silent: "silent",
    no_decision_maker_answer: "no decision-maker answer",
  };
  const reasonLabel = (code) => REASONS[code] || code.replace(/_/g, " ");
  const label = (text) => (text === null || text === undefined ? "unknown" : String(text).replace(/_/g, " "));

  function insufficient(score) {
    return !score || score.precision === "insufficient" || score.nps === null;
  }

  /* A score as text: the number, its interval and a flag for low precision; or the word
     "insufficient" (or "no answers") with its n, never a bare number. */
  function scoreCell(score) {
    if (!score || score.n === 0 || score.nps === null) {
      return h("span", { class: "score none", "data-precision": "none" }, "no answers");
    }
    if (score.precision === "insufficient") {
      return h(
        "span",
        { class: "score insufficient", "data-precision": "insufficient" },
        h("span", { class: "badge insufficient" }, "insufficient"),
        ` n=${score.n}`,
      );
    }
    const parts = [h("span", { class: "nps", "data-nps": one(score.nps) }, one(score.nps))];
    if (score.ci) {
      parts.push(" ", h("span", { class: "ci" }, `[${one(score.ci.low)}, ${one(score.ci.high)}]`));
    }
    if (score.precision === "low") parts.push(" ", h("span", { class: "badge low" }, "low precision"));
    return h("span", { class: "score", "data-precision": score.precision }, parts);
  }

  // ---------------------------------------------------------------- the API

  class Problem extends Error {
    constructor(status, detail, url) {
      super(detail);
      this.status = status;
      this.url = url;
    }
  }

  const key = () => sessionStorage.getItem(KEY_STORAGE);
  const known = new Map(); // url -> {etag, text, data, body}
  let notModified = 0;

  // The body without the moving default window: that alone is no change of the data.
  function comparable(body) {
    if (!body || typeof body !== "object" || Array.isArray(body)) return JSON.stringify(body);
    const { from: _from, to: _to, ...rest } = body;
    return JSON.stringify(rest);
  }

  async function get(url) {
    const entry = known.get(url);
    const headers = { Authorization: `Bearer ${key()}`, Accept: "application/json" };
    if (entry && entry.etag) headers["If-None-Match"] = entry.etag;
    // An author's If-None-Match turns the browser's cache off for the call: a 304 reaches here.
    const response = await fetch(url, { headers, cache: "no-store", credentials: "omit" });
    if (response.status === 304 && entry) {
      notModified += 1;
      return { body: entry.body, changed: false };
    }
    if (!response.ok) {
      let detail = response.statusText;
      try {
        detail = (await response.json()).detail || detail;
      } catch (_) {
        /* not problem+json */
      }
      throw new Problem(response.status, detail, url);
    }
    const body = await response.json();
    const data = comparable(body);
    const changed = !entry || entry.data !== data;
    known.set(url, { etag: response.headers.get("ETag"), data, body: changed ? body : entry.body });
    return { body: changed ? body : entry.body, changed };
  }

  // Every page of a paginated list (each page its own tagged call).
  async function getAll(url) {
    const items = [];
    let changed = false;
    let cursor = null;
    for (let page = 0; page < 50; page += 1) {
      const sep = url.includes("?") ? "&" : "?";
      const result = await get(cursor ? `${url}${sep}cursor=${encodeURIComponent(cursor)}` : url);
      changed = changed || result.changed;
      items.push(...result.body.data);
      cursor = result.body.next_cursor;
      if (!cursor) break;
    }
    return { body: { items }, changed };
  }

  // ---------------------------------------------------------------- charts

  /* A monthly trend: the score as a line, its interval as a band, significant changes from the
     month before marked; insufficient months drawn as such (a mark on the axis, no value). */
  function trendChart(points, title) {
    const width = 760;
    const height = 260;
    const left = 44;
    const right = 40;
    const top = 16;
    const bottom = 40;
    const scored = points.filter((p) => !insufficient(p.score));
    let lo = Math.min(0, ...scored.map((p) => (p.score.ci ? p.score.ci.low : p.score.nps)));
    let hi = Math.max(0, ...scored.map((p) => (p.score.ci ? p.score.ci.high : p.score.nps)));
    const tick = [10, 20, 25, 50].find((t) => (hi - lo) / t <= 6) || 50;
    lo = Math.max(-100, Math.floor(lo / tick) * tick);
    hi = Math.min(100, Math.ceil(hi / tick) * tick);
    if (hi === lo) hi = lo + tick;
    const step = points.length > 1 ? (width - left - right) / (points.length - 1) : 0;
    const x = (i) => left + (points.length > 1 ? i * step : (width - left - right) / 2);
    const y = (v) => top + ((hi - v) / (hi - lo)) * (height - top - bottom);
    const svg = s("svg", {
      class: "chart trend",
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": title,
    });
    svg.append(s("title", {}, title));
    for (let v = lo; v <= hi; v += tick) {
      svg.append(
        s("line", { class: v === 0 ? "axis zero" : "grid", x1: left, x2: width - right, y1: y(v), y2: y(v) }),
        s("text", { class: "tick", x: left - 6, y: y(v) + 4, "text-anchor": "end" }, Math.round(v)),
      );
    }
    // The band and the line, broken where a month has no score.
    const runs = [];
    let run = [];
    points.forEach((p, i) => {
      if (insufficient(p.score)) {
        if (run.length) runs.push(run);
        run = [];
      } else run.push([i, p]);
    });
    if (run.length) runs.push(run);
    for (const r of runs) {
      const withCi = r.filter(([, p]) => p.score.ci);
      if (withCi.length) {
        const upper = withCi.map(([i, p]) => `${x(i)},${y(p.score.ci.high)}`);
        const lower = withCi.reverse().map(([i, p]) => `${x(i)},${y(p.score.ci.low)}`);
        svg.append(s("polygon", { class: "band", points: [...upper, ...lower].join(" ") }));
      }
      svg.append(s("polyline", { class: "line", points: r.map(([i, p]) => `${x(i)},${y(p.score.nps)}`).join(" ") }));
    }
    points.forEach((p, i) => {
      const at = month(p.start);
      if (i % Math.ceil(points.length / 12) === 0 || i === points.length - 1) {
        svg.append(s("text", { class: "tick", x: x(i), y: height - bottom + 16, "text-anchor": "middle" }, at));
      }
      if (insufficient(p.score)) {
        const mark = s("g", { class: "insufficient-mark", "data-month": at });
        mark.append(
          s("title", {}, `${at}: insufficient (n=${p.score ? p.score.n : 0})`),
          s("rect", { x: x(i) - 5, y: height - bottom - 10, width: 10, height: 10 }),
        );
        svg.append(mark);
        return;
      }
      const significant = p.change && p.change.significant;
      const dot = s("circle", {
        class: significant ? `point significant ${p.change.difference > 0 ? "up" : "down"}` : "point",
        cx: x(i),
        cy: y(p.score.nps),
        r: significant ? 7 : 3.5,
        "data-month": at,
      });
      const change = p.change ? `; change ${signed(p.change.difference)}${significant ? " (significant)" : ""}` : "";
      dot.append(s("title", {}, `${at}: ${one(p.score.nps)} [${one(p.score.ci.low)}, ${one(p.score.ci.high)}], n=${p.score.n}${change}`));
      svg.append(dot);
    });
    svg.append(
      s("text", { class: "legend", x: left, y: height - 6 }, "line: NPS · band: 95% interval · ring: significant change from the month before · square: insufficient"),
    );
    return svg;
  }

  /* A breakdown as horizontal bars on -100..100 with interval whiskers; insufficient groups are
     written out, not drawn as a bar. */
  function barChart(groups, dimension, title) {
    const rowHeight = 26;
    const width = 760;
    const labelWidth = 190;
    const right = 150;
    const height = groups.length * rowHeight + 28;
    const x = (v) => labelWidth + ((v + 100) / 200) * (width - labelWidth - right);
    const svg = s("svg", { class: "chart bars", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
    svg.append(s("title", {}, title));
    for (const v of [-100, -50, 0, 50, 100]) {
      svg.append(
        s("line", { class: v === 0 ? "axis zero" : "grid", x1: x(v), x2: x(v), y1: 0, y2: height - 20 }),
        s("text", { class: "tick", x: x(v), y: height - 6, "text-anchor": "middle" }, v),
      );
    }
    groups.forEach((g, i) => {
      const name = label(g.key[dimension]);
      const mid = i * rowHeight + rowHeight / 2;
      svg.append(s("text", { class: "label", x: labelWidth - 8, y: mid + 4, "text-anchor": "end" }, name));
      if (insufficient(g.score)) {
        svg.append(s("text", { class: "insufficient-text", x: x(0) + 6, y: mid + 4 }, `insufficient (n=${g.score ? g.score.n : 0})`));
        return;
      }
      const v = g.score.nps;
      const bar = s("rect", {
        class: `bar ${v < 0 ? "negative" : "positive"}${g.score.precision === "low" ? " low" : ""}`,
        x: Math.min(x(0), x(v)),
        y: mid - 8,
        width: Math.max(1, Math.abs(x(v) - x(0))),
        height: 16,
      });
      bar.append(s("title", {}, `${name}: ${one(v)}, n=${g.score.n}`));
      svg.append(bar);
      if (g.score.ci) {
        svg.append(s("line", { class: "whisker", x1: x(g.score.ci.low), x2: x(g.score.ci.high), y1: mid, y2: mid }));
      }
      svg.append(
        s("text", { class: "value", x: width - right + 8, y: mid + 4 }, `${one(v)} (n=${g.score.n})${g.score.precision === "low" ? " low" : ""}`),
      );
    });
    return svg;
  }

  // ---------------------------------------------------------------- tables

  function groupTable(groups, dimension, heading) {
    return h(
      "table",
      { class: "groups", "data-dimension": dimension },
      h("caption", {}, heading),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, label(dimension)), h("th", { scope: "col" }, "NPS [95% interval]"), h("th", { scope: "col" }, "n"))),
      h(
        "tbody",
        {},
        groups.map((g) =>
          h(
            "tr",
            { "data-key": g.key[dimension] === null ? "" : g.key[dimension] },
            h("th", { scope: "row" }, label(g.key[dimension])),
            h("td", { "data-field": "score" }, scoreCell(g.score)),
            h("td", { "data-field": "n" }, g.score ? g.score.n : 0),
          ),
        ),
      ),
    );
  }

  function trendTable(points) {
    return h(
      "details",
      { class: "trend-table" },
      h("summary", {}, "The trend as a table"),
      h(
        "table",
        { class: "trend" },
        h("thead", {}, h("tr", {}, ["Month", "NPS [95% interval]", "n", "Change"].map((t) => h("th", { scope: "col" }, t)))),
        h(
          "tbody",
          {},
          points.map((p) =>
            h(
              "tr",
              { "data-month": month(p.start) },
              h("th", { scope: "row" }, month(p.start)),
              h("td", { "data-field": "score" }, scoreCell(p.score)),
              h("td", { "data-field": "n" }, p.score ? p.score.n : 0),
              h(
                "td",
                { "data-field": "change" },
                p.change ? `${signed(p.change.difference)}${p.change.significant ? " significant" : ""}` : "",
              ),
            ),
          ),
        ),
      ),
    );
  }

  function card(title, ...children) {
    return h("section", { class: "card" }, h("h2", {}, title), ...children);
  }

  function headline(score, extra) {
    return h(
      "div",
      { class: "headline", "data-field": "headline" },
      h("div", { class: "big" }, scoreCell(score)),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "answers counted"),
        h("dd", { "data-field": "n" }, score ? score.n : 0),
        score && score.n
          ? [
              h("dt", {}, "promoters / passives / detractors"),
              h("dd", {}, `${one(score.promoter_pct)}% / ${one(score.passive_pct)}% / ${one(score.detractor_pct)}%`),
            ]
          : null,
        score && score.ci ? [h("dt", {}, "interval"), h("dd", {}, `${Math.round(score.ci.level * 100)}% ${label(score.ci.method)}`)] : null,
        extra,
      ),
    );
  }

  // ---------------------------------------------------------------- views

  const views = {
    portfolio: {
      title: "Portfolio",
      async load() {
        return Promise.all([get("/v1/nps"), get("/v1/nps/trend?interval=month"), get("/v1/nps?group_by=role")]);
      },
      render([nps, trend, roles]) {
        return [
          card(
            "Portfolio score",
            headline(nps.score, [
              h("dt", {}, "method"),
              h("dd", { "data-field": "method" }, label(nps.method)),
              h("dt", {}, "window"),
              h("dd", {}, `${day(nps.from)} to ${day(nps.to)}`),
            ]),
          ),
          card("Monthly trend", trendChart(trend.points, "Portfolio NPS by month"), trendTable(trend.points)),
          card("By role", barChart(roles.groups, "role", "NPS by role"), groupTable(roles.groups, "role", "NPS by role")),
        ];
      },
    },
    accounts: {
      title: "Accounts",
      sort: { column: "revenue", descending: true },
      async load() {
        return Promise.all([get("/v1/nps?group_by=account"), getAll("/v1/accounts/at-risk?limit=200")]);
      },
      render([scores, risks]) {
        const reasons = new Map(risks.items.map((a) => [a.account_id, a.reasons]));
        const rows = scores.groups.map((g) => ({
          id: g.key.account_id,
          name: g.account ? g.account.name : g.key.account_id,
          score: g.score,
          benchmark: g.benchmark ? g.benchmark.position : "unknown",
          reasons: reasons.get(g.key.account_id) || [],
          account: g.account,
        }));
        const table = h("table", { class: "accounts", id: "accounts-table" });
        const draw = () => {
          table.replaceChildren(...this.table(rows));
        };
        this.redraw = draw;
        draw();
        return [
          card(
            `Accounts (${rows.length} with answers in the window, ${risks.items.length} at risk)`,
            h("p", { class: "hint" }, `Window ${day(scores.from)} to ${day(scores.to)}, ${label(scores.method)}. Click a column to sort.`),
            table,
          ),
        ];
      },
      table(rows) {
        const sort = this.sort;
        const keys = {
          name: (r) => r.name.toLowerCase(),
          score: (r) => (insufficient(r.score) ? -Infinity : r.score.nps),
          n: (r) => (r.score ? r.score.n : 0),
          precision: (r) => ["insufficient", "low", "ok"].indexOf(r.score ? r.score.precision : "insufficient"),
          benchmark: (r) => ["below", "within", "above"].indexOf(r.benchmark),
          reasons: (r) => r.reasons.length,
          revenue: (r) => (r.account && r.account.annual_revenue !== null ? Number(r.account.annual_revenue) : -Infinity),
        };
        const by = keys[sort.column];
        const sorted = [...rows].sort((a, b) => {
          const [ka, kb] = [by(a), by(b)];
          const order = ka < kb ? -1 : ka > kb ? 1 : a.id < b.id ? -1 : 1;
          return sort.descending ? -order : order;
        });
        const columns = [
          ["name", "Account"],
          ["score", "NPS [95% interval]"],
          ["n", "n"],
          ["precision", "Precision"],
          ["benchmark", "Benchmark"],
          ["reasons", "At-risk reasons"],
          ["revenue", "Annual revenue"],
        ];
        const head = h(
          "tr",
          {},
          columns.map(([column, text]) =>
            h(
              "th",
              {
                scope: "col",
                "aria-sort": sort.column === column ? (sort.descending ? "descending" : "ascending") : "none",
              },
              h(
                "button",
                {
                  type: "button",
                  class: "sort",
                  "data-column": column,
                  onclick: () => {
                    this.sort = { column, descending: sort.column === column ? !sort.descending : column !== "name" };
                    this.redraw();
                  },
                },
                text,
              ),
            ),
          ),
        );
        return [
          h("thead", {}, head),
          h(
            "tbody",
            {},
            sorted.map((r) =>
              h(
                "tr",
                { "data-account": r.id },
                h("th", { scope: "row", "data-field": "name" }, h("a", { href: `#/accounts/${encodeURIComponent(r.id)}` }, r.name)),
                h("td", { "data-field": "score" }, scoreCell(r.score)),
                h("td", { "data-field": "n" }, r.score ? r.score.n : 0),
                h("td", { "data-field": "precision" }, r.score ? r.score.precision : ""),
                h("td", { "data-field": "benchmark" }, r.benchmark),
                h(
                  "td",
                  { "data-field": "reasons" },
                  r.reasons.map((reason) => h("span", { class: `reason ${reason.code}`, title: reason.detail }, reasonLabel(reason.code))),
                ),
                h("td", { "data-field": "revenue", class: "number" }, revenue(r.account)),
              ),
            ),
          ),
        ];
      },
    },
    account: {
      title: "Account",
      async load(id) {
        const path = `/v1/accounts/${encodeURIComponent(id)}`;
        return Promise.all([
          get(path),
          get(`${path}/nps`),
          get(`/v1/nps/trend?interval=month&account_id=${encodeURIComponent(id)}`),
          get(`${path}/movements`),
          get(`${path}/coverage`),
        ]);
      },
      render([account, nps, trend, movements, coverage]) {
        const people = (list) =>
          h(
            "ul",
            { class: "people" },
            list.slice(0, 8).map((m) =>
              h("li", {}, `${m.stakeholder_id} (${label(m.role)}): ${m.from.score} → ${m.to.score} (${label(m.from.category)} → ${label(m.to.category)}, ${day(m.to.submitted_at)})`),
            ),
          );
        const benchmark = nps.benchmark
          ? `${nps.benchmark.position}${nps.benchmark.low !== null ? ` (${label(nps.benchmark.industry)} range ${nps.benchmark.low} to ${nps.benchmark.high})` : ""}`
          : "unknown";
        return [
          h("p", { class: "crumbs" }, h("a", { href: "#/accounts" }, "← Accounts")),
          card(
            account.name || account.id,
            h("p", { class: "hint" }, [label(account.segment), label(account.industry), revenue(account)].filter(Boolean).join(" · ")),
            headline(nps.score, [
              h("dt", {}, "benchmark"),
              h("dd", { "data-field": "benchmark" }, benchmark),
              h("dt", {}, "method"),
              h("dd", { "data-field": "method" }, label(nps.method)),
              h("dt", {}, "window"),
              h("dd", {}, `${day(nps.from)} to ${day(nps.to)}`),
            ]),
          ),
          card("Monthly trend", trendChart(trend.points, `${account.name || account.id}: NPS by month`), trendTable(trend.points)),
          h(
            "div",
            { class: "breakdowns" },
            ["role", "job_level", "department"].map((dimension) =>
              card(
                `By ${label(dimension)}`,
                barChart(nps.breakdowns[dimension], dimension, `NPS by ${label(dimension)}`),
                groupTable(nps.breakdowns[dimension], dimension, `NPS by ${label(dimension)}`),
              ),
            ),
          ),
          card(
            "Movements",
            h("p", { "data-field": "movements" }, `${movements.up} up, ${movements.down} down between consecutive answers of the same person`),
            h(
              "table",
              { class: "transitions" },
              h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "From"), h("th", { scope: "col" }, "To"), h("th", { scope: "col" }, "Count"))),
              h(
                "tbody",
                {},
                movements.transitions.map((t) => h("tr", {}, h("td", {}, label(t.from)), h("td", {}, label(t.to)), h("td", {}, t.count))),
              ),
            ),
            h("h3", {}, "Largest falls"),
            people(movements.fallers),
            h("h3", {}, "Largest climbs"),
            people(movements.climbers),
          ),
          card(
            "Coverage",
            h("p", { "data-field": "coverage" }, `${coverage.stakeholders.answered} of ${coverage.stakeholders.registered} registered stakeholders answered in the window`),
            h(
              "table",
              { class: "coverage" },
              h("thead", {}, h("tr", {}, ["Role", "Registered", "Answered", "Answers", "Last answer"].map((t) => h("th", { scope: "col" }, t)))),
              h(
                "tbody",
                {},
                coverage.by_role.map((r) =>
                  h("tr", { "data-role": r.role }, h("th", { scope: "row" }, label(r.role)), h("td", {}, r.registered), h("td", {}, r.answered), h("td", {}, r.responses), h("td", {}, day(r.last_answered_at) || "never")),
                ),
              ),
            ),
            h("h3", {}, "Silent roles"),
            coverage.silent_roles.length
              ? h(
                  "ul",
                  { class: "silent", "data-field": "silent-roles" },
                  coverage.silent_roles.map((r) =>
                    h("li", { "data-role": r.role }, `${label(r.role)}: ${r.registered} registered, ${r.last_answered_at ? `last answer ${day(r.last_answered_at)}` : "never answered"}`),
                  ),
                )
              : h("p", { "data-field": "silent-roles" }, "none: every role answered in the window"),
          ),
        ];
      },
    },
  };

  // ---------------------------------------------------------------- the loop

  let generation = 0;
  let timer = null;
  let current = null; // {view, arg, drawn}
  let lastChanged = null;
  let lastChecked = null;
  let inFlight = false;

  function route() {
    const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
    if (hash.startsWith("accounts/")) return [views.account, hash.slice("accounts/".length), "accounts"];
    if (hash === "accounts") return [views.accounts, null, "accounts"];
    return [views.portfolio, null, "portfolio"];
  }

  function showStatus() {
    if (!lastChecked) {
      statusLine.textContent = "Loading…";
      return;
    }
    statusLine.replaceChildren(
      "Data last changed ",
      h("time", { id: "changed-at", datetime: lastChanged.toISOString() }, clock(lastChanged)),
      " · checked ",
      h("time", { id: "checked-at", datetime: lastChecked.toISOString() }, clock(lastChecked)),
      ` · every ${POLL_MS / 1000} s`,
    );
  }

  function showError(message) {
    errorLine.textContent = message;
    errorLine.hidden = !message;
  }

  function showLogin(message) {
    clearTimeout(timer);
    generation += 1;
    current = null;
    $("login").hidden = false;
    $("nav").hidden = true;
    $("refresh").hidden = true;
    $("forget").hidden = true;
    view.replaceChildren();
    statusLine.textContent = "";
    showError(message || "");
    $("key").focus();
  }

  async function poll() {
    if (inFlight || !current) return;
    inFlight = true;
    const mine = generation;
    clearTimeout(timer);
    try {
      const results = await current.view.load(current.arg);
      if (mine !== generation) return;
      lastChecked = new Date();
      view.dataset.polls = String(Number(view.dataset.polls) + 1);
      view.dataset.notModified = String(notModified);
      if (!current.drawn || results.some((r) => r.changed)) {
        const bodies = results.map((r) => r.body);
        view.replaceChildren(...current.view.render(bodies));
        current.drawn = true;
        lastChanged = lastChecked;
        view.dataset.draws = String(Number(view.dataset.draws) + 1);
      }
      showError("");
      showStatus();
    } catch (error) {
      if (mine !== generation) return;
      if (error instanceof Problem && (error.status === 401 || error.status === 403)) {
        sessionStorage.removeItem(KEY_STORAGE);
        known.clear();
        const why = error.status === 401 ? "This API key was refused" : "This API key may not read the scores";
        showLogin(`${why} (${error.status}): ${error.message}. Paste a read key.`);
        return;
      }
      if (error instanceof Problem && error.status === 404 && current.view === views.account) {
        view.replaceChildren(h("p", { class: "crumbs" }, h("a", { href: "#/accounts" }, "← Accounts")));
        showError(`No such account (${error.message}).`);
      } else {
        const what = error instanceof Problem ? `${error.status}: ${error.message}` : error.message;
        showError(`The service did not answer the dashboard (${what}); retrying every ${POLL_MS / 1000} s.`);
      }
    } finally {
      inFlight = false;
      if (mine === generation) timer = setTimeout(poll, POLL_MS);
    }
  }

  function open() {
    if (!key()) {
      showLogin("");
      return;
    }
    const [chosen, arg, page] = route();
    generation += 1;
    clearTimeout(timer);
    current = { view: chosen, arg, drawn: false };
    $("login").hidden = true;
    $("nav").hidden = false;
    $("refresh").hidden = false;
    $("forget").hidden = false;
    for (const link of document.querySelectorAll("#nav a")) {
      if (link.dataset.page === page) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    document.title = `${chosen.title} · NPS dashboard`;
    view.replaceChildren(h("p", { class: "hint" }, "Loading…"));
    inFlight = false;
    poll();
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("key").value.trim();
    if (!value) return;
    sessionStorage.setItem(KEY_STORAGE, value);
    $("key").value = "";
    known.clear();
    showError("");
    open();
  });
  $("refresh").addEventListener("click", () => poll());
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    known.clear();
    showLogin("The key was forgotten.");
  });
  window.addEventListener("hashchange", open);
  open();
})();
