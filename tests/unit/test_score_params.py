"""The query parameters of the score endpoints."""

from app.api.score_params import AccountMethod
from app.scoring import Method


def test_account_methods_are_every_method_but_account_as_unit() -> None:
    assert {m.value for m in AccountMethod} == {m.value for m in Method} - {"account_as_unit"}
