"""The events of a correction (PATCH /v1/responses/{id}): response.excluded and
response.included when the exclusion flips, response.corrected for the rest, none for a patch
that changes nothing or is refused."""

from typing import Any

from tests.support.cases import stored_events
from tests.support.clock import ago, stamp
from tests.support.harness import Tenant
from tests.support.problems import assert_invalid

WHEN = ago(days=2).replace(microsecond=0)


async def _stored(tenant: Tenant) -> str:
    await tenant.db.account("acme")
    await tenant.db.stakeholder("p-1", role="influencer", job_level="director", department="IT")
    [response_id] = await tenant.db.respond("p-1", (4, WHEN), comment="slow support")
    return response_id


async def _patch(tenant: Tenant, response_id: str, body: dict[str, Any]) -> None:
    r = await tenant.client.patch(f"/v1/responses/{response_id}", json=body)
    assert r.status_code == 200, r.text


def _data(response_id: str, **over: Any) -> dict[str, Any]:
    return {
        "response_id": response_id,
        "external_id": None,
        "stakeholder_id": "p-1",
        "account_id": "acme",
        "score": 4,
        "category": "detractor",
        "survey": None,
        "channel": "api",
        "submitted_at": stamp(WHEN),
        "role": "influencer",
        "job_level": "director",
        "department": "IT",
        **over,
    }


class TestExclusionEvents:
    async def test_excluding_emits_response_excluded_and_including_response_included(
        self, tenant: Tenant
    ) -> None:
        response_id = await _stored(tenant)

        await _patch(tenant, response_id, {"excluded": True, "reason": "test entry"})
        await _patch(tenant, response_id, {"excluded": False})

        assert [(e.type, e.data) for e in await stored_events(tenant)] == [
            ("response.excluded", _data(response_id, revision=2, reason="test entry")),
            ("response.included", _data(response_id, revision=3, reason=None)),
        ]

    async def test_a_correction_names_its_fields_and_carries_the_figures(
        self, tenant: Tenant
    ) -> None:
        response_id = await _stored(tenant)

        await _patch(tenant, response_id, {"score": 7, "comment": "better now"})

        [event] = await stored_events(tenant)
        assert (event.type, event.data) == (
            "response.corrected",
            _data(
                response_id,
                score=7,
                category="passive",
                revision=2,
                fields=["comment", "score"],
                changes={"score": {"from": 4, "to": 7}},
            ),
        )
        assert "better now" not in str(event.data)

    async def test_excluding_and_correcting_at_once_emits_both(self, tenant: Tenant) -> None:
        response_id = await _stored(tenant)

        await _patch(tenant, response_id, {"excluded": True, "reason": "dup", "score": 5})

        assert [e.type for e in await stored_events(tenant)] == [
            "response.excluded",
            "response.corrected",
        ]

    async def test_a_patch_that_changes_nothing_emits_nothing(self, tenant: Tenant) -> None:
        response_id = await _stored(tenant)

        await _patch(tenant, response_id, {"score": 4, "excluded": False})

        assert await stored_events(tenant) == []

    async def test_a_refused_patch_emits_nothing(self, tenant: Tenant) -> None:
        response_id = await _stored(tenant)

        r = await tenant.client.patch(
            f"/v1/responses/{response_id}",
            json={"excluded": True, "reason": "x", "submitted_at": ago(days=-1).isoformat()},
        )

        assert_invalid(r, ["body", "submitted_at"])
        assert await stored_events(tenant) == []
