"""POST /v1/public/dismissals and /v1/public/unsubscribe: the invited person says "not now" or
"never again", and the fatigue rules follow."""

from datetime import timedelta

import pytest

from tests.support.api import put_settings
from tests.support.clock import ago
from tests.support.harness import Tenant
from tests.support.invitations import (
    answer,
    get_row,
    invite,
    invite_decision_maker,
    parse,
    public_call,
    read_invitation,
    set_row,
    suppressed,
)
from tests.support.problems import (
    assert_forbidden,
    assert_unauthorized,
    problem,
)


class TestCreatePublicDismissal:
    async def test_dismissing_suppresses_the_next_invitation_for_after_dismissal_days(
        self, tenant: Tenant
    ) -> None:
        made = await invite_decision_maker(tenant)

        r = await public_call(tenant.client, "POST", "dismissals", made["token"])

        assert (r.status_code, r.content) == (204, b"")
        shown = await read_invitation(tenant, made["id"])
        assert shown["status"] == "dismissed"
        dismissed_at = parse(shown["dismissed_at"])
        assert dismissed_at is not None
        again = await invite(tenant.client, "p1", status=200)
        assert suppressed(again) == ("dismissed_recently", dismissed_at + timedelta(days=30))

    async def test_dismissing_again_keeps_the_first_dismissal(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        await public_call(tenant.client, "POST", "dismissals", made["token"])
        first = (await get_row(tenant, made["id"])).dismissed_at

        r = await public_call(tenant.client, "POST", "dismissals", made["token"])

        assert r.status_code == 204, r.text
        assert (await get_row(tenant, made["id"])).dismissed_at == first

    async def test_an_answered_invitation_cannot_be_dismissed(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        given = await answer(tenant.client, made["token"], {"score": 9})

        r = await public_call(tenant.client, "POST", "dismissals", made["token"])

        body = problem(r, 409)
        assert (body["type"], body["answered_at"]) == (
            "/problems/already-answered",
            given["answered_at"],
        )
        assert (await get_row(tenant, made["id"])).dismissed_at is None

    async def test_expired_is_410(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        await set_row(tenant, made["id"], expires_at=ago(seconds=1))

        r = await public_call(tenant.client, "POST", "dismissals", made["token"])

        assert problem(r, 410)["type"] == "/problems/gone"
        assert (await get_row(tenant, made["id"])).dismissed_at is None


class TestCreatePublicUnsubscribe:
    async def test_an_expired_invitation_unsubscribes_and_later_ones_are_suppressed(
        self, tenant: Tenant
    ) -> None:
        made = await invite_decision_maker(tenant)
        await set_row(tenant, made["id"], expires_at=ago(days=1))

        r = await public_call(tenant.client, "POST", "unsubscribe", made["token"])

        assert (r.status_code, r.content) == (204, b"")
        later = await invite(tenant.client, "p1", survey="another", channel="widget", status=200)
        assert suppressed(later) == ("unsubscribed", None)
        assert (await read_invitation(tenant, made["id"]))["status"] == "expired"

    @pytest.mark.parametrize("state", ["answered", "revoked"])
    async def test_an_answered_or_revoked_invitation_unsubscribes(
        self, tenant: Tenant, state: str
    ) -> None:
        made = await invite_decision_maker(tenant)
        if state == "answered":
            await answer(tenant.client, made["token"], {"score": 9})
        else:
            assert (await tenant.client.delete(f"/v1/invitations/{made['id']}")).status_code == 204
        await put_settings(tenant.client, {"survey_rules": {"resurvey_after_days": 0}})

        r = await public_call(tenant.client, "POST", "unsubscribe", made["token"])

        assert r.status_code == 204, r.text
        assert suppressed(await invite(tenant.client, "p1", status=200)) == ("unsubscribed", None)
        assert (await read_invitation(tenant, made["id"]))["status"] == state

    async def test_unsubscribing_twice_is_204(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        for _ in range(2):
            r = await public_call(tenant.client, "POST", "unsubscribe", made["token"])
            assert r.status_code == 204, r.text

    async def test_their_other_open_invitations_are_revoked(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, {"survey_rules": {"after_unanswered_days": 0}})
        old = await invite_decision_maker(tenant)
        await set_row(tenant, old["id"], expires_at=ago(days=1))
        live = await invite(tenant.client, "p1", survey="other")
        await tenant.db.stakeholder("p2", "acme")
        colleague = await invite(tenant.client, "p2")

        r = await public_call(tenant.client, "POST", "unsubscribe", old["token"])

        assert r.status_code == 204, r.text
        shown = await read_invitation(tenant, live["id"])
        assert shown["status"] == "revoked"
        assert shown["revoked_at"] is not None
        gone = await public_call(tenant.client, "GET", "invitation", live["token"])
        assert problem(gone, 410)["type"] == "/problems/gone"
        assert (await read_invitation(tenant, colleague["id"]))["status"] == "issued"

    async def test_the_invitation_used_stays_answerable(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)

        r = await public_call(tenant.client, "POST", "unsubscribe", made["token"])

        assert r.status_code == 204, r.text
        await answer(tenant.client, made["token"], {"score": 9})

    async def test_an_unknown_token_or_an_api_key_is_refused(self, tenant: Tenant) -> None:
        await invite_decision_maker(tenant)

        r = await public_call(tenant.client, "POST", "unsubscribe", "npsi_" + "A" * 43)

        assert_unauthorized(r)
        assert_forbidden(await tenant.client.post("/v1/public/unsubscribe"))
        assert (await invite(tenant.client, "p1", survey="x", status=200))["suppression"][
            "rule"
        ] == "open_invitation"
