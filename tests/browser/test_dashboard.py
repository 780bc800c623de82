"""The built-in dashboard in real headless Chromium, on a workspace `nps demo` seeded (the
benchmark's generator at a small size) and served: each page renders, its numbers are the API's,
an `insufficient` score is never a bare number, a poll answered 304 redraws nothing while a new
answer redraws, a bad key says so, and the page's strict policy refuses nothing it needs."""

import asyncio
import re
import subprocess
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, expect

from app.config import async_database_url
from app.embedded import scratch_database
from tests.browser.conftest import TIMEOUT_MS
from tests.support.browser import NetworkGuard
from tests.support.processes import NPS, free_port, nps_env, until_ready

ACCOUNTS, STAKEHOLDERS, RESPONSES = 12, 120, 1500
REASONS = {
    "low_nps": "low NPS",
    "decision_maker_detractor": "decision-maker detractor",
    "significant_decline": "significant decline",
    "key_stakeholder_downgrade": "key stakeholder downgrade",
    "silent": "silent",
    "no_decision_maker_answer": "no decision-maker answer",
}


@dataclass(frozen=True)
class Demo:
    base_url: str
    read_key: str
    admin_key: str
    output: list[str]

    async def api(self, path: str) -> Any:
        async with httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.read_key}"}
        ) as client:
            r = await client.get(path)
            assert r.status_code == 200, r.text
            return r.json()


def _read_keys(process: subprocess.Popen[str], output: list[str]) -> tuple[str, str]:
    """The read and admin keys `nps demo` prints once seeded; the rest of its output is drained
    in a thread (nobody else reads the pipe)."""
    assert process.stdout is not None
    read = admin = None
    for line in process.stdout:
        output.append(line)
        if line.startswith("Read key: "):
            read = line.removeprefix("Read key: ").strip()
        elif "admin key, to write to it: " in line:
            admin = line.split("admin key, to write to it: ", 1)[1].strip().rstrip(")")
            break
    assert read, "".join(output)
    assert admin, "".join(output)
    stream = process.stdout
    threading.Thread(target=lambda: output.extend(stream), daemon=True, name="demo-output").start()
    return read, admin


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def demo(server_url: str) -> AsyncIterator[Demo]:
    """`nps demo` at a small size on a scratch database, as a new user runs `make demo`."""
    async with scratch_database(server_url, "nps_demo") as plain:
        port = free_port()
        args = ["demo", f"--accounts={ACCOUNTS}", f"--stakeholders={STAKEHOLDERS}"]
        process = _start(
            [*NPS, *args, f"--responses={RESPONSES}"],
            nps_env(async_database_url(plain), NPS_PORT=str(port), NPS_LOG_LEVEL="warning"),
        )
        output: list[str] = []
        try:
            read, admin = await asyncio.wait_for(
                asyncio.to_thread(_read_keys, process, output), timeout=300
            )
            await until_ready(port)
            yield Demo(f"http://127.0.0.1:{port}", read, admin, output)
        finally:
            process.kill()
            process.wait(timeout=30)
            for thread in threading.enumerate():
                if thread.name == "demo-output":
                    thread.join(timeout=30)
            if process.stdout is not None:
                process.stdout.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser, demo: Demo) -> AsyncIterator[Page]:
    """A page of its own on the demo's server; fails when it asked another host or its policy
    refused anything."""
    guard = NetworkGuard(demo.base_url)
    context = await browser.new_context(base_url=demo.base_url, service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)
    await guard.install(context)
    page = await context.new_page()
    refused: list[str] = []
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    await context.unroute_all(behavior="ignoreErrors")
    await context.close()
    guard.check()
    assert not refused, refused
    assert not errors, errors


async def sign_in(page: Page, key: str, where: str = "/") -> None:
    await page.goto(where)
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Show the dashboard").click()


async def drawn(page: Page, draws: int = 1) -> None:
    await expect(page.locator("#view")).to_have_attribute("data-draws", str(draws))


def one(x: float) -> str:
    return f"{x:.1f}"


async def assert_score(cell: Locator, score: dict[str, Any]) -> None:
    """The cell shows the API's score: the number and its interval, `insufficient` and n without
    a number, or `no answers`."""
    text = ((await cell.text_content()) or "").strip()
    if score["n"] == 0:
        # No answer in the window (a month of an account nobody answered for): no number, no n.
        assert text == "no answers", text
        return
    if score["precision"] == "insufficient":
        assert text == f"insufficient n={score['n']}", text
        assert re.search(r"\d+\.\d", text) is None
        return
    assert text.startswith(one(score["nps"])), (text, score)
    assert f"[{one(score['ci']['low'])}, {one(score['ci']['high'])}]" in text
    assert ("low precision" in text) == (score["precision"] == "low")


async def assert_trend_marks(page: Page, points: list[dict[str, Any]]) -> None:
    """A point for each scored month, a ring on each significant change, a dashed square (no
    point) for each insufficient month."""
    scored = [p for p in points if p["score"]["nps"] is not None]
    scored = [p for p in scored if p["score"]["precision"] != "insufficient"]
    significant = [p for p in scored if p["change"] and p["change"]["significant"]]
    chart = page.locator("svg.trend")
    await expect(chart.locator("circle.point")).to_have_count(len(scored))
    await expect(chart.locator("circle.significant")).to_have_count(len(significant))
    await expect(chart.locator("g.insufficient-mark")).to_have_count(len(points) - len(scored))
    for point in significant:
        ring = chart.locator(f"circle.significant[data-month='{point['start'][:7]}']")
        direction = "up" if point["change"]["difference"] > 0 else "down"
        await expect(ring).to_have_class(re.compile(rf"\b{direction}\b"))


async def early_in_a_minute() -> None:
    """The default window's end moves each minute (and the tags with it): start a test that
    counts redraws well inside one."""
    second = datetime.now(UTC).second
    if second > 35:
        await asyncio.sleep(61 - second)


class TestPortfolio:
    async def test_score_trend_and_roles_are_the_apis(self, page: Page, demo: Demo) -> None:
        await early_in_a_minute()
        await sign_in(page, demo.read_key)
        await drawn(page)
        nps = await demo.api("/v1/nps")
        trend = await demo.api("/v1/nps/trend?interval=month")
        roles = await demo.api("/v1/nps?group_by=role")

        headline = page.locator("[data-field=headline]")
        await assert_score(headline.locator(".big"), nps["score"])
        await expect(headline.locator("[data-field=n]")).to_have_text(str(nps["score"]["n"]))
        await expect(headline.locator("[data-field=method]")).to_have_text(
            nps["method"].replace("_", " ")
        )

        rows = page.locator("table.trend tbody tr")
        await expect(rows).to_have_count(len(trend["points"]))
        for point in trend["points"]:
            row = page.locator(f"table.trend tr[data-month='{point['start'][:7]}']")
            await assert_score(row.locator("[data-field=score]"), point["score"])
        await assert_trend_marks(page, trend["points"])
        await expect(page.locator("svg.trend polygon.band").first).to_be_visible()

        groups = roles["groups"]
        await expect(page.locator("table[data-dimension=role] tbody tr")).to_have_count(len(groups))
        for group in groups:
            row = page.locator(f"table[data-dimension=role] tr[data-key='{group['key']['role']}']")
            await assert_score(row.locator("[data-field=score]"), group["score"])
            await expect(row.locator("[data-field=n]")).to_have_text(str(group["score"]["n"]))

    async def test_a_304_poll_redraws_nothing_and_a_new_answer_redraws(
        self, page: Page, demo: Demo
    ) -> None:
        await early_in_a_minute()
        statuses: list[int] = []
        page.on("response", lambda r: statuses.append(r.status) if "/v1/" in r.url else None)
        await sign_in(page, demo.read_key)
        await drawn(page)
        view = page.locator("#view")
        changed_at = await page.locator("#changed-at").get_attribute("datetime")
        await expect(view).to_have_attribute("data-polls", "1")
        statuses.clear()

        await page.get_by_role("button", name="Check now").click()
        await expect(view).to_have_attribute("data-polls", "2")
        assert statuses == [304, 304, 304]
        await expect(view).to_have_attribute("data-not-modified", "3")
        await expect(view).to_have_attribute("data-draws", "1")
        assert await page.locator("#changed-at").get_attribute("datetime") == changed_at

        # A new answer (a detractor, now) changes the data version: the next poll redraws.
        before = (await demo.api("/v1/nps"))["score"]
        async with httpx.AsyncClient(
            base_url=demo.base_url, headers={"Authorization": f"Bearer {demo.admin_key}"}
        ) as admin:
            person = "dashboard-test@acct-00001.example"
            r = await admin.put(
                f"/v1/stakeholders/{person}",
                json={"account_id": "acct-00001", "role": "user", "email": person},
            )
            assert r.status_code in (200, 201), r.text
            r = await admin.post(
                "/v1/responses",
                json={"stakeholder_id": person, "score": 0, "survey": "dashboard-test"},
            )
            assert r.status_code == 201, r.text
        after = (await demo.api("/v1/nps"))["score"]
        assert after["n"] == before["n"] + 1
        statuses.clear()
        await page.get_by_role("button", name="Check now").click()
        await expect(view).to_have_attribute("data-draws", "2")
        assert 200 in statuses
        await assert_score(page.locator("[data-field=headline] .big"), after)
        await expect(page.locator("[data-field=headline] [data-field=n]")).to_have_text(
            str(after["n"])
        )


class TestAccounts:
    async def test_the_list_is_the_apis_and_sorts(self, page: Page, demo: Demo) -> None:
        await early_in_a_minute()
        await sign_in(page, demo.read_key, "/#/accounts")
        await drawn(page)
        scores = await demo.api("/v1/nps?group_by=account")
        risks = await demo.api("/v1/accounts/at-risk?limit=200")
        reasons = {a["account_id"]: [r["code"] for r in a["reasons"]] for a in risks["data"]}
        groups = scores["groups"]
        assert len(groups) == ACCOUNTS
        rows = page.locator("#accounts-table tbody tr")
        await expect(rows).to_have_count(len(groups))
        for group in groups:
            ident = group["key"]["account_id"]
            row = page.locator(f"#accounts-table tr[data-account='{ident}']")
            await expect(row.locator("[data-field=name]")).to_have_text(group["account"]["name"])
            await assert_score(row.locator("[data-field=score]"), group["score"])
            await expect(row.locator("[data-field=n]")).to_have_text(str(group["score"]["n"]))
            await expect(row.locator("[data-field=precision]")).to_have_text(
                group["score"]["precision"]
            )
            await expect(row.locator("[data-field=benchmark]")).to_have_text(
                group["benchmark"]["position"]
            )
            shown = await row.locator("[data-field=reasons] .reason").all_inner_texts()
            assert shown == [REASONS[code] for code in reasons.get(ident, [])]
            revenue = group["account"]["annual_revenue"]
            expected = "" if revenue is None else f"USD {int(revenue.split('.')[0]):,}"
            await expect(row.locator("[data-field=revenue]")).to_have_text(expected)

        # Sorted by n, most answers first, then the other way round.
        n_of = {g["key"]["account_id"]: g["score"]["n"] for g in groups}
        await page.locator("button.sort[data-column=n]").click()
        await expect(page.locator("th[aria-sort=descending] button")).to_have_text("n")
        order = await rows.evaluate_all("rows => rows.map(r => r.dataset.account)")
        assert [n_of[a] for a in order] == sorted(n_of.values(), reverse=True)
        await page.locator("button.sort[data-column=n]").click()
        await expect(page.locator("th[aria-sort=ascending] button")).to_have_text("n")
        order = await rows.evaluate_all("rows => rows.map(r => r.dataset.account)")
        assert [n_of[a] for a in order] == sorted(n_of.values())

        # A row leads to the account's page.
        first = groups[0]
        await page.get_by_role("link", name=first["account"]["name"], exact=True).click()
        await expect(page.get_by_role("heading", name=first["account"]["name"])).to_be_visible()


class TestAccount:
    async def test_breakdowns_movements_and_coverage_are_the_apis(
        self, page: Page, demo: Demo
    ) -> None:
        ident = "acct-00001"
        await early_in_a_minute()
        await sign_in(page, demo.read_key, f"/#/accounts/{ident}")
        await drawn(page)
        nps = await demo.api(f"/v1/accounts/{ident}/nps")
        trend = await demo.api(f"/v1/nps/trend?interval=month&account_id={ident}")
        movements = await demo.api(f"/v1/accounts/{ident}/movements")
        coverage = await demo.api(f"/v1/accounts/{ident}/coverage")

        await assert_score(page.locator("[data-field=headline] .big"), nps["score"])
        await expect(page.locator("[data-field=benchmark]")).to_contain_text(
            nps["benchmark"]["position"]
        )
        for point in trend["points"]:
            row = page.locator(f"table.trend tr[data-month='{point['start'][:7]}']")
            await assert_score(row.locator("[data-field=score]"), point["score"])
        await assert_trend_marks(page, trend["points"])
        insufficient = 0
        for dimension in ("role", "job_level", "department"):
            groups = nps["breakdowns"][dimension]
            table = page.locator(f"table[data-dimension={dimension}]")
            await expect(table.locator("tbody tr")).to_have_count(len(groups))
            for i, group in enumerate(groups):
                await assert_score(
                    table.locator("tbody tr").nth(i).locator("[data-field=score]"), group["score"]
                )
                insufficient += group["score"]["precision"] == "insufficient"
        assert insufficient, "the demo's small groups should include insufficient ones"
        # Drawn as such in the charts too: the word, no bar.
        await expect(page.locator("svg.bars text.insufficient-text")).to_have_count(insufficient)

        await expect(page.locator("[data-field=movements]")).to_have_text(
            f"{movements['up']} up, {movements['down']} down between consecutive answers of "
            "the same person"
        )
        people = coverage["stakeholders"]
        await expect(page.locator("[data-field=coverage]")).to_have_text(
            f"{people['answered']} of {people['registered']} registered stakeholders answered "
            "in the window"
        )
        silent = [r["role"] for r in coverage["silent_roles"]]
        if silent:
            shown = page.locator("[data-field=silent-roles] li")
            assert await shown.evaluate_all("items => items.map(i => i.dataset.role)") == silent
        else:
            await expect(page.locator("[data-field=silent-roles]")).to_contain_text("none")

    async def test_an_unknown_account_says_so(self, page: Page, demo: Demo) -> None:
        await sign_in(page, demo.read_key, "/#/accounts/nobody-here")
        await expect(page.get_by_role("alert")).to_contain_text("No such account")


class TestKeys:
    async def test_a_bad_key_shows_a_clear_message(self, page: Page, demo: Demo) -> None:
        await sign_in(page, "nps_" + "x" * 43)
        alert = page.get_by_role("alert")
        await expect(alert).to_contain_text("This API key was refused (401)")
        await expect(alert).to_contain_text("unknown or revoked")
        await expect(page.get_by_label("API key")).to_be_visible()
        assert await page.evaluate("sessionStorage.length") == 0
        await expect(page.locator("#view")).to_have_attribute("data-draws", "0")

    async def test_the_key_stays_in_the_tab_and_no_cookie_is_set(
        self, page: Page, demo: Demo
    ) -> None:
        await sign_in(page, demo.read_key)
        await drawn(page)
        assert await page.evaluate("sessionStorage.getItem('nps.dashboard.key')") == (demo.read_key)
        assert await page.context.cookies() == []
        await page.get_by_role("button", name="Forget key").click()
        await expect(page.get_by_label("API key")).to_be_visible()
        assert await page.evaluate("sessionStorage.length") == 0


def test_the_demo_said_how_to_open_it(demo: Demo) -> None:
    said = "".join(demo.output)
    assert f"Stored {RESPONSES:,} answers" in said
    assert f"Open {demo.base_url}/ and paste the demo's read key" in said
