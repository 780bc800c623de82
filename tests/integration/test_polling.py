"""Dashboards poll with the window left open: its end is the end of the current minute."""

from datetime import UTC, datetime, timedelta

from tests.support.api import put_account, put_stakeholder, respond
from tests.support.clock import minute_end
from tests.support.harness import Tenant

OPEN_WINDOW_PATHS = (
    "/v1/nps",
    "/v1/nps/trend",
    "/v1/nps/compare",
    "/v1/coverage",
    "/v1/movements",
    "/v1/accounts/at-risk",
)


async def _seed_now(tenant: Tenant) -> None:
    """One answer submitted just now (the default submitted_at), over HTTP: what a poll sees."""
    await put_account(tenant.client, "acme")
    await put_stakeholder(tenant.client, "dana", "acme")
    await respond(tenant.client, "dana", 10)


class TestOpenWindow:
    async def test_an_answer_sent_just_now_is_counted(self, tenant: Tenant) -> None:
        await _seed_now(tenant)

        r = await tenant.client.get("/v1/nps")

        assert r.status_code == 200, r.text
        assert (r.json()["score"]["n"], r.json()["score"]["promoters"]) == (1, 1)

    async def test_two_polls_in_one_minute_get_the_same_body(self, tenant: Tenant) -> None:
        await _seed_now(tenant)
        for path in OPEN_WINDOW_PATHS:
            for _ in range(3):  # a poll pair that straddles a minute's end is tried again
                before = datetime.now(UTC)
                first = await tenant.client.get(path)
                second = await tenant.client.get(path)
                after = datetime.now(UTC)
                if minute_end(before) == minute_end(after):
                    break
            assert first.status_code == second.status_code == 200, (path, first.text)
            assert first.content == second.content, path

    async def test_the_default_end_is_a_whole_minute_after_now(self, tenant: Tenant) -> None:
        before = datetime.now(UTC)
        r = await tenant.client.get("/v1/nps")
        after = datetime.now(UTC)

        assert r.status_code == 200, r.text
        end = datetime.fromisoformat(r.json()["to"])
        assert end in {minute_end(before), minute_end(after)}
        assert end > after
        assert datetime.fromisoformat(r.json()["from"]) == end - timedelta(days=365)


BACKWARDS = {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}


class TestWindowChecksComeLast:
    """A window is checked where the handler needs it, after the checks that come first."""

    async def test_an_unknown_account_is_404_before_a_backwards_window(
        self, tenant: Tenant
    ) -> None:
        for path in ("nps", "coverage", "movements"):
            r = await tenant.client.get(f"/v1/accounts/nope/{path}", params=BACKWARDS)
            assert r.status_code == 404, (path, r.text)
            assert r.json()["detail"] == "account 'nope' does not exist"

    async def test_an_invalid_parameter_is_reported_before_the_window(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/nps", params={**BACKWARDS, "group_by": "bogus"})
        assert r.status_code == 422, r.text
        assert [e["loc"] for e in r.json()["errors"]] == [["query", "group_by"]]

    async def test_a_method_that_does_not_fit_is_reported_before_the_window(
        self, tenant: Tenant
    ) -> None:
        r = await tenant.client.get(
            "/v1/nps", params={**BACKWARDS, "method": "account_as_unit", "account_id": "x"}
        )
        assert r.status_code == 422, r.text
        assert [e["loc"] for e in r.json()["errors"]] == [["query", "method"]]

    async def test_a_backwards_window_alone_is_422_at_from(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/nps", params=BACKWARDS)
        assert r.status_code == 422, r.text
        assert [e["loc"] for e in r.json()["errors"]] == [["query", "from"]]
