"""schemathesis against the app: every operation of the OpenAPI document, with a bounded number
of generated requests (valid ones and ones the schema forbids), answered without a 5xx and as the
document says (status codes, content types, headers, bodies).

The requests go through the harness's client, so the database is the tests' own (each operation's
requests are rolled back with its test). The cases are generated up front (Hypothesis, derandomized
so a run is reproducible) and sent one by one; schemathesis validates each answer.
"""

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.openapi import current
from tests.support.harness import Tenant
from tests.support.invitations import invite

SCHEMA = schemathesis.openapi.from_dict(current())
OPERATIONS: dict[str, APIOperation[Any, Any, Any, Any]] = {
    op.label: op
    for op in (result.ok() for result in SCHEMA.get_all_operations())  # type: ignore[union-attr]
}
# Per operation and mode: about 65 operations, so some 1,600 requests in all.
EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def generated(operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode) -> list[Case[Any]]:
    cases: list[Case[Any]] = []

    @settings(
        max_examples=EXAMPLES,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(operation.as_strategy(generation_mode=mode))
    def collect(case: Case[Any]) -> None:
        cases.append(case)

    try:
        collect()
    except Unsatisfiable:  # nothing to get wrong (no parameters, no body): no negative case
        assert mode is GenerationMode.NEGATIVE
    return cases


async def _credentials(tenant: Tenant, path: str) -> str:
    """The admin key, or for the public operations an invitation token."""
    if not path.startswith("/v1/public/"):
        return tenant.admin_key
    await tenant.db.account("acme")
    await tenant.db.stakeholder("dana", "acme", role="user")
    token: str = (await invite(tenant.client, "dana"))["token"]
    return token


@pytest.mark.parametrize("label", sorted(OPERATIONS))
async def test_the_operation_keeps_its_contract(tenant: Tenant, label: str) -> None:
    operation = OPERATIONS[label]
    secret = await _credentials(tenant, operation.path)
    failures = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for case in generated(operation, mode):
            sent = case.as_transport_kwargs(base_url="http://test")
            headers = {**sent.pop("headers"), "Authorization": f"Bearer {secret}"}
            sent.pop("cookies", None)
            if isinstance(sent.get("data"), bytes | str):  # requests' raw body is httpx's content
                sent["content"] = sent.pop("data")
            # Read before it is sent: a multipart body (an import's file) is a stream, whose
            # content the checks read back from the request.
            try:
                request = tenant.client.build_request(**sent, headers=headers)
                request.read()
            except (TypeError, AttributeError):
                continue  # a generated multipart part httpx cannot encode (an int as a file)
            response = await tenant.client.send(request)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except FailureGroup as exc:
                failures.append(f"{mode.value}: {exc}")
    assert failures == [], "\n\n".join(failures[:5])
