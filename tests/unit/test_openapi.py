"""openapi/openapi.json is the contract clients read; it must be what the app serves."""

import json

from app.openapi import PATH, current, render


def test_openapi_file_matches_the_app() -> None:
    assert PATH.read_text() == render(current()), "run `make openapi` and commit the result"


def test_operation_ids_are_stable_names() -> None:
    spec = current()
    ids = [
        op["operationId"]
        for path in spec["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert len(ids) == len(set(ids))
    assert all(i.isidentifier() and "__" not in i for i in ids)
    assert "record_response" in ids


def test_errors_are_documented_as_problem_json() -> None:
    spec = json.loads(PATH.read_text())
    post = spec["paths"]["/v1/responses"]["post"]["responses"]
    for status in ("401", "403", "409", "422", "503"):
        assert "application/problem+json" in post[status]["content"], status
    assert "Problem" in spec["components"]["schemas"]


def test_scoring_references_point_at_the_repositorys_page() -> None:
    # Served descriptions once pointed at SPEC.md, which no user of the API can open.
    text = render(current())
    assert "SPEC" not in text
    assert "docs/scoring.md" in current()["info"]["description"]
    assert (PATH.parents[1] / "docs" / "scoring.md").is_file()
    change = current()["components"]["schemas"]["ChangeRead"]
    assert "docs/scoring.md" in change["description"]
    assert {"difference", "adjusted_difference"} <= set(change["properties"])
    assert all(
        "description" in change["properties"][f] for f in ("difference", "adjusted_difference")
    )
