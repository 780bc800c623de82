/* The NPS survey widget: one dependency-free script (docs/widget.md).
 *
 *   <script src="https://nps.example/widget.js" data-token="npsi_..." async></script>
 *   or: NPSWidget.open({ token: "npsi_...", baseUrl: "https://nps.example" }).then(...)
 *
 * It reads the invitation (GET /v1/public/invitation), shows the survey in a modal <dialog> in a
 * shadow root (host styles stay out; the CSS variables --nps-* theme it), and posts the answer
 * (POST /v1/public/answers). Esc or the close button dismisses it and records a dismissal
 * (POST /v1/public/dismissals). Every text goes in as text, never as HTML.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var scriptBase = script && script.src ? script.src.replace(/\/widget\.js([?#].*)?$/, "") : "";

  var WORDS = {
    en: {
      submit: "Send", close: "Close", optional: "Optional.",
      attributes: "How would you rate us on the following?",
      rating: "From 1 (poor) to {scale} (excellent), optional.",
      chooseScore: "Choose a score from 0 to 10.",
      answered: "You have already answered this survey. Thank you!",
      gone: "This survey is closed.",
      busy: "Too many requests. Try again in a moment.",
      failed: "Something went wrong. Try again in a moment."
    },
    de: {
      submit: "Absenden", close: "Schließen", optional: "Optional.",
      attributes: "Wie bewerten Sie uns in diesen Punkten?",
      rating: "Von 1 (schlecht) bis {scale} (ausgezeichnet), optional.",
      chooseScore: "Wählen Sie einen Wert von 0 bis 10.",
      answered: "Sie haben diese Umfrage bereits beantwortet. Vielen Dank!",
      gone: "Diese Umfrage ist geschlossen.",
      busy: "Zu viele Anfragen. Versuchen Sie es gleich noch einmal.",
      failed: "Etwas ist schiefgelaufen. Versuchen Sie es gleich noch einmal."
    }
  };

  var STYLE = [
    ":host { all: initial; }",
    ".nps { --a: var(--nps-accent, #2447c8); --at: var(--nps-accent-text, #fff);",
    "  --t: var(--nps-text, #1b1d21); --m: var(--nps-muted, #545b68);",
    "  --b: var(--nps-border, #b9bfca); --bg: var(--nps-background, #fff);",
    "  --e: var(--nps-error, #a4221b); --r: var(--nps-radius, 12px);",
    "  box-sizing: border-box; width: min(36rem, calc(100vw - 2rem)); max-height: calc(100vh - 2rem);",
    "  overflow: auto; padding: 1.25rem; border: 0; border-radius: var(--r); color: var(--t);",
    "  background: var(--bg); font: var(--nps-font-size, 16px)/1.5 var(--nps-font, system-ui, sans-serif);",
    "  box-shadow: 0 10px 40px rgb(0 0 0 / 25%); }",
    ".nps::backdrop { background: var(--nps-backdrop, rgb(0 0 0 / 45%)); }",
    ".nps *, .nps *::before, .nps *::after { box-sizing: border-box; }",
    ".nps h2 { margin: 0 2.5rem 1rem 0; font-size: 1.2em; line-height: 1.3; }",
    ".nps p { margin: 0 0 .5rem; }",
    ".company, .hint { color: var(--m); font-size: .875em; }",
    ".close { position: absolute; top: .75rem; right: .75rem; width: 2.75rem; height: 2.75rem;",
    "  border: 0; border-radius: 50%; background: transparent; color: var(--t); font: inherit;",
    "  font-size: 1.5em; line-height: 1; cursor: pointer; }",
    ".scale { display: grid; grid-template-columns: repeat(11, minmax(0, 1fr)); gap: .3rem; }",
    ".rating { display: grid; grid-template-columns: repeat(auto-fill, minmax(2.75rem, 1fr)); gap: .3rem; }",
    "@media (max-width: 32rem) { .scale { grid-template-columns: repeat(6, minmax(0, 1fr)); } }",
    ".choice { position: relative; display: block; }",
    ".choice input { position: absolute; inset: 0; width: 100%; height: 100%; margin: 0; opacity: 0; cursor: pointer; }",
    ".choice span { display: flex; align-items: center; justify-content: center; min-height: 2.75rem;",
    "  border: 2px solid var(--b); border-radius: calc(var(--r) / 2); font-weight: 600; }",
    ".choice input:checked + span { background: var(--a); border-color: var(--a); color: var(--at); }",
    ".choice input:focus-visible + span, .nps button:focus-visible, .nps textarea:focus-visible {",
    "  outline: 3px solid var(--a); outline-offset: 2px; }",
    ".ends { display: flex; justify-content: space-between; gap: 1rem; color: var(--m); font-size: .875em; margin: .4rem 0 1rem; }",
    ".label { display: block; font-weight: 600; margin: .75rem 0 .25rem; }",
    ".nps .attribute { font-weight: 600; margin: .5rem 0 0; }",
    ".nps textarea { display: block; width: 100%; min-height: 5rem; padding: .5rem; font: inherit;",
    "  color: inherit; background: var(--bg); border: 2px solid var(--b); border-radius: calc(var(--r) / 2); }",
    ".error { color: var(--e); font-weight: 600; min-height: 1.5em; margin: .5rem 0 0; }",
    ".submit { min-height: 2.75rem; margin-top: .5rem; padding: .5rem 1.75rem; border: 0;",
    "  border-radius: calc(var(--r) / 2); background: var(--a); color: var(--at); font: inherit; font-weight: 600; cursor: pointer; }",
    ".submit[disabled] { opacity: .6; cursor: progress; }",
    "@media (forced-colors: active) { .choice input:checked + span { outline: 3px solid CanvasText; } }"
  ].join("\n");

  var current = null; // one survey at a time

  function wordsFor(locale) {
    var lang = String(locale || "en").split("-")[0].toLowerCase();
    return WORDS[lang] || WORDS.en;
  }

  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (attributes[name] !== null && attributes[name] !== undefined) node.setAttribute(name, attributes[name]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(36).slice(2);
  }

  function request(base, token, method, path, body, extra) {
    var headers = { Authorization: "Bearer " + token };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    Object.keys(extra || {}).forEach(function (name) { headers[name] = extra[name]; });
    return fetch(base + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      keepalive: path === "/v1/public/dismissals" // sent while the page may be leaving
    });
  }

  function problemOf(response) {
    return response.json().then(null, function () { return {}; });
  }

  function radios(name, from, to, labelledBy, describe) {
    var group = el("div", { role: "radiogroup", "aria-labelledby": labelledBy, class: from === 0 ? "scale" : "rating" });
    for (var n = from; n <= to; n++) {
      group.appendChild(el("label", { class: "choice" }, [
        el("input", { type: "radio", name: name, value: String(n), "aria-describedby": describe(n) }),
        el("span", {}, [String(n)])
      ]));
    }
    return group;
  }

  function build(invitation, words) {
    var texts = invitation.texts;
    var close = el("button", { type: "button", class: "close", "aria-label": words.close }, ["\u00d7"]);
    var scale = radios("score", 0, 10, "nps-question", function (n) {
      return n === 0 ? "nps-low" : n === 10 ? "nps-high" : null;
    });
    var parts = [
      el("p", { class: "company" }, [invitation.company]),
      el("h2", { id: "nps-question" }, [texts.question]),
      scale,
      el("p", { class: "ends" }, [
        el("span", { id: "nps-low" }, ["0: " + texts.low_label]),
        el("span", { id: "nps-high" }, ["10: " + texts.high_label])
      ])
    ];
    if (texts.attributes.length) parts.push(el("p", { class: "label" }, [words.attributes]));
    texts.attributes.forEach(function (attribute, i) {
      var id = "nps-attribute-" + i;
      parts.push(el("p", { class: "attribute", id: id }, [attribute.label]));
      parts.push(el("p", { class: "hint", id: id + "-hint" }, [words.rating.replace("{scale}", attribute.scale)]));
      parts.push(radios("attributes." + attribute.key, 1, attribute.scale, id, function () { return id + "-hint"; }));
    });
    var comment = el("textarea", { id: "nps-comment", name: "comment", rows: "3", "aria-describedby": "nps-comment-hint" });
    var error = el("p", { class: "error", role: "alert" });
    var submit = el("button", { type: "submit", class: "submit" }, [words.submit]);
    parts.push(
      el("label", { class: "label", for: "nps-comment" }, [texts.follow_up]),
      el("p", { class: "hint", id: "nps-comment-hint" }, [words.optional]),
      comment, error, submit
    );
    var form = el("form", { novalidate: "" }, parts);
    var dialog = el("dialog", { class: "nps", "aria-labelledby": "nps-question" }, [close, form]);
    return { dialog: dialog, form: form, close: close, scale: scale, comment: comment, error: error, submit: submit };
  }

  function answerOf(ui, attributes) {
    var chosen = ui.form.querySelector("input[name=score]:checked");
    if (!chosen) return null;
    var body = { score: Number(chosen.value) };
    if (ui.comment.value.trim()) body.comment = ui.comment.value;
    var ratings = {};
    attributes.forEach(function (attribute) {
      var rated = ui.form.querySelector('input[name="attributes.' + cssEscape(attribute.key) + '"]:checked');
      if (rated) ratings[attribute.key] = Number(rated.value);
    });
    body.attributes = ratings;
    return body;
  }

  function cssEscape(text) {
    return window.CSS && window.CSS.escape ? window.CSS.escape(text) : String(text).replace(/["\\]/g, "\\$&");
  }

  // What Tab visits: each radio group once (its checked radio, else its first), then the rest.
  function tabbable(dialog) {
    var seen = {};
    return Array.prototype.filter.call(dialog.querySelectorAll("button, textarea, input"), function (node) {
      if (node.disabled) return false;
      if (node.type !== "radio") return true;
      var checked = dialog.querySelector('input[name="' + cssEscape(node.name) + '"]:checked');
      if (checked) return node === checked;
      if (seen[node.name]) return false;
      seen[node.name] = true;
      return true;
    });
  }

  // Tab and Shift+Tab wrap inside the dialog (showModal already makes the page behind inert).
  function trapFocus(dialog, root) {
    dialog.addEventListener("keydown", function (event) {
      if (event.key !== "Tab") return;
      var focusable = tabbable(dialog);
      if (!focusable.length) return;
      var first = focusable[0], last = focusable[focusable.length - 1];
      var active = root.activeElement !== undefined ? root.activeElement : document.activeElement;
      if (event.shiftKey && active === first) { event.preventDefault(); last.focus(); }
      else if (!event.shiftKey && active === last) { event.preventDefault(); first.focus(); }
    });
  }

  function show(invitation, base, token, options) {
    var words = wordsFor(invitation.texts.locale);
    var host = el("div", { "data-nps-widget": "" });
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(STYLE);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.appendChild(el("style", {}, [STYLE]));
    }
    var ui = build(invitation, words);
    root.appendChild(ui.dialog);
    document.body.appendChild(host);
    var outcome = null, attempt = { body: null, key: null };

    return new Promise(function (resolve) {
      function finished(status) {
        outcome = outcome || status;
        ui.dialog.close();
      }
      function thank(message, status) {
        outcome = status;
        var heading = el("h2", { tabindex: "-1" }, [message]);
        ui.dialog.replaceChild(el("div", { role: "status" }, [heading]), ui.form);
        ui.close.textContent = "\u00d7";
        heading.focus();
      }
      ui.dialog.addEventListener("cancel", function () { finished("dismissed"); });
      ui.close.addEventListener("click", function () { finished("dismissed"); });
      ui.dialog.addEventListener("close", function () {
        var status = outcome || "dismissed";
        if (status === "dismissed") {
          request(base, token, "POST", "/v1/public/dismissals").then(null, function () {});
        }
        host.remove();
        current = null;
        var result = { status: status };
        if (typeof options.onClose === "function") options.onClose(result);
        resolve(result);
      });
      ui.form.addEventListener("submit", function (event) {
        event.preventDefault();
        var body = answerOf(ui, invitation.texts.attributes);
        if (!body) {
          ui.error.textContent = words.chooseScore;
          ui.scale.querySelector("input").focus();
          return;
        }
        // The same body again (a retry) keeps its Idempotency-Key: never two answers.
        var text = JSON.stringify(body);
        if (text !== attempt.body) attempt = { body: text, key: newKey() };
        ui.submit.disabled = true;
        ui.error.textContent = "";
        request(base, token, "POST", "/v1/public/answers", body, { "Idempotency-Key": attempt.key })
          .then(function (response) {
            if (response.status === 201) return thank(invitation.texts.thank_you, "answered");
            if (response.status === 409) return thank(words.answered, "already-answered");
            return problemOf(response).then(function (problem) {
              ui.error.textContent = response.status === 422 && problem.detail ? problem.detail
                : response.status === 410 ? words.gone
                : response.status === 429 ? words.busy : words.failed;
            });
          }, function () { ui.error.textContent = words.failed; })
          .then(function () { ui.submit.disabled = false; });
      });
      trapFocus(ui.dialog, root);
      ui.dialog.showModal();
      ui.scale.querySelector("input").focus();
    });
  }

  function open(options) {
    options = options || {};
    if (!options.token) return Promise.reject(new Error("NPSWidget.open needs { token }"));
    if (current) return current;
    var base = String(options.baseUrl || scriptBase).replace(/\/+$/, "");
    current = request(base, options.token, "GET", "/v1/public/invitation")
      .then(function (response) {
        if (!response.ok) return { status: "unavailable", code: response.status };
        return response.json().then(function (invitation) {
          // Nothing to ask: answered or dismissed already.
          if (invitation.status === "answered") return { status: "already-answered" };
          if (invitation.status === "dismissed") return { status: "dismissed" };
          return show(invitation, base, options.token, options);
        });
      })
      .then(null, function () { return { status: "unavailable" }; })
      .then(function (result) { current = null; return result; });
    return current;
  }

  window.NPSWidget = { open: open };

  var token = script && script.getAttribute("data-token");
  if (token) {
    var start = function () { open({ token: token, baseUrl: script.getAttribute("data-base-url") || undefined }); };
    if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
  }
})();
