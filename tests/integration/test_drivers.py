"""GET /v1/drivers: relative weights and LMG shares of R², listwise deletion, the attributes left
out, the account bootstrap, groups, counting methods, other workspaces and bad parameters.

Expected figures are computed here by separate, plain routes on the same answers: R² by numpy's
least squares, LMG by averaging each attribute's gain over every ordering, relative weights by
Johnson's SVD construction, correlations by numpy's corrcoef.
"""

import itertools
import random
from typing import Any

import numpy as np
import pytest

from tests.support.api import post_responses
from tests.support.clock import WINDOW, at
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_invalid

ACCOUNTS = [f"acct-{i}" for i in range(8)]
ROLES = ["decision_maker", "influencer", "user"]


def _dataset(seed: int = 11) -> list[dict[str, Any]]:
    """48 answers over 8 accounts: support and product drive the score; onboarding is missing
    from every fifth answer."""
    rng = random.Random(seed)
    rows = []
    for a, account in enumerate(ACCOUNTS):
        lift = rng.choice([-1, 0, 1])
        for s in range(6):
            support, product, onboarding = (rng.randint(1, 5) for _ in range(3))
            score = round(1.3 * support + 0.7 * product + 0.2 * onboarding + lift + rng.gauss(0, 1))
            attributes: dict[str, Any] = {"support": support, "product": product}
            if (a * 6 + s) % 5:
                attributes["onboarding"] = onboarding
            rows.append(
                {
                    "account": account,
                    "stakeholder": f"{account}-p{s}",
                    "role": ROLES[s % 3],
                    "score": max(0, min(10, score)),
                    "attributes": attributes,
                    "day": 1 + a + s / 10,
                }
            )
    return rows


def _items(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "stakeholder": {
                "id": r["stakeholder"],
                "account_id": r["account"],
                "role": r["role"],
                "account": {"name": r["account"]},
            },
            "score": r["score"],
            "submitted_at": at(r["day"]).isoformat(),
            "attributes": r["attributes"],
        }
        for r in rows
    ]


async def _seed(tenant: Tenant, rows: list[dict[str, Any]]) -> None:
    await post_responses(tenant.client, _items(rows))


async def _drivers(tenant: Tenant, **params: Any) -> dict[str, Any]:
    r = await tenant.client.get("/v1/drivers", params={**WINDOW, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# The independent routes


def _matrix(rows: list[dict[str, Any]], keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    complete = [r for r in rows if all(k in r["attributes"] for k in keys)]
    y = np.array([float(r["score"]) for r in complete])
    x = np.array([[float(r["attributes"][k]) for k in keys] for r in complete])
    return y, x


def _r2(y: np.ndarray, x: np.ndarray) -> float:
    design = np.column_stack([np.ones(len(y)), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    return float(1 - residual @ residual / ((y - y.mean()) ** 2).sum())


def _lmg(y: np.ndarray, x: np.ndarray) -> list[float]:
    p = x.shape[1]
    gains = np.zeros(p)
    orders = list(itertools.permutations(range(p)))
    for order in orders:
        before = 0.0
        for k, j in enumerate(order):
            after = _r2(y, x[:, list(order[: k + 1])])
            gains[j] += after - before
            before = after
    return list(gains / len(orders))


def _johnson(y: np.ndarray, x: np.ndarray) -> list[float]:
    n = len(y)
    zx = (x - x.mean(0)) / x.std(0) / np.sqrt(n)
    zy = (y - y.mean()) / y.std() / np.sqrt(n)
    left, _, right = np.linalg.svd(zx, full_matrices=False)
    orthogonal = left @ right
    beta, *_ = np.linalg.lstsq(orthogonal, zy, rcond=None)
    loadings, *_ = np.linalg.lstsq(orthogonal, zx, rcond=None)
    return list((loadings.T**2) @ (beta**2))


def _by_attribute(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["attribute"]: d for d in body["drivers"]}


KEYS = ["onboarding", "product", "support"]


class TestRelativeWeights:
    async def test_the_model_against_least_squares_and_johnsons_construction(
        self, tenant: Tenant
    ) -> None:
        rows = _dataset()
        await _seed(tenant, rows)
        body = await _drivers(tenant)
        assert body["method"] == "latest_per_stakeholder"
        assert body["driver_method"] == "relative_weights"
        assert body["attribute_source"] == "responses"
        assert (body["resamples"], body["seed"], body["confidence"]) == (1000, 0, 0.95)
        model = body["model"]
        y, x = _matrix(rows, KEYS)
        assert model["rows"] == 48
        assert model["n"] == len(y) == 48 - 10  # every fifth answer misses onboarding
        assert model["rows_dropped"] == 10
        assert model["accounts"] == 8
        assert model["excluded"] == []
        assert model["r2"] == pytest.approx(_r2(y, x), abs=1e-9)
        raw = _johnson(y, x)
        got = _by_attribute(model)
        assert sorted(got) == KEYS
        for key, weight in zip(KEYS, raw, strict=True):
            assert got[key]["raw_weight"] == pytest.approx(weight, abs=1e-9)
            assert got[key]["importance"] == pytest.approx(100 * weight / sum(raw), abs=1e-7)
        assert sum(d["importance"] for d in model["drivers"]) == pytest.approx(100)
        importances = [d["importance"] for d in model["drivers"]]
        assert importances == sorted(importances, reverse=True)
        # Each attribute's own figures: over every answer that rates it.
        for key in KEYS:
            rated = [r for r in rows if key in r["attributes"]]
            values = [r["attributes"][key] for r in rated]
            assert got[key]["n"] == len(rated)
            assert got[key]["mean"] == pytest.approx(sum(values) / len(values))
            expected_r = np.corrcoef(values, [r["score"] for r in rated])[0, 1]
            assert got[key]["correlation"] == pytest.approx(expected_r, abs=1e-9)
        # n = 38 with p = 3: 10·(p+1) = 40 is the minimum.
        assert (model["min_n"], model["precision"]) == (40, "insufficient")
        assert all(d["ci"] is None for d in model["drivers"])

    async def test_quadrants_against_the_medians_and_the_bootstrap_interval(
        self, tenant: Tenant
    ) -> None:
        rows = _dataset()
        # Twice the answers (a second person each), so the model is precise enough for intervals.
        rows += [
            {**r, "stakeholder": r["stakeholder"] + "b", "day": r["day"] + 0.01}
            for r in _dataset(seed=12)
        ]
        await _seed(tenant, rows)
        body = await _drivers(tenant, attribute=["support", "product"])
        model = body["model"]
        y, x = _matrix(rows, ["support", "product"])
        assert model["n"] == 96
        assert model["rows_dropped"] == 0
        assert model["precision"] == "ok"  # 96 >= 50 + 8·2
        got = _by_attribute(model)
        raw = dict(zip(["support", "product"], _johnson(y, x), strict=True))
        means = {k: float(x[:, i].mean()) for i, k in enumerate(["support", "product"])}
        # Two attributes: the median is between them, so the more important one is high.
        top = max(raw, key=raw.__getitem__)
        other = min(raw, key=raw.__getitem__)
        top_good = means[top] >= (means[top] + means[other]) / 2
        assert got[top]["quadrant"] == ("keep" if top_good else "fix_first")
        assert got[other]["quadrant"] == ("monitor" if top_good else "surplus")
        for d in model["drivers"]:
            ci = d["ci"]
            assert ci["level"] == 0.95
            assert ci["method"] == "account_bootstrap_percentile"
            assert 0 <= ci["low"] <= ci["high"] <= 100
        again = await _drivers(tenant, attribute=["support", "product"])
        assert again == body
        other_seed = await _drivers(tenant, attribute=["support", "product"], seed=5)
        assert other_seed["model"]["drivers"] != model["drivers"]
        assert [d["importance"] for d in other_seed["model"]["drivers"]] == [
            d["importance"] for d in model["drivers"]
        ]


class TestShapley:
    async def test_lmg_is_the_mean_gain_over_every_ordering(self, tenant: Tenant) -> None:
        rows = _dataset()
        await _seed(tenant, rows)
        body = await _drivers(tenant, driver_method="shapley")
        assert body["driver_method"] == "shapley"
        y, x = _matrix(rows, KEYS)
        got = _by_attribute(body["model"])
        for key, share in zip(KEYS, _lmg(y, x), strict=True):
            assert got[key]["raw_weight"] == pytest.approx(share, abs=1e-9)
        assert body["model"]["r2"] == pytest.approx(_r2(y, x), abs=1e-9)


class TestLeftOut:
    async def test_collinear_constant_and_rare_attributes(self, tenant: Tenant) -> None:
        rows = _dataset()
        for i, r in enumerate(rows):
            a = r["attributes"]
            a["doubled"] = 2 * a["support"] + 1
            a["flat"] = 3
            if i < 4:
                a["rare"] = i
        await _seed(tenant, rows)
        body = await _drivers(tenant, attribute=["support", "product", "doubled", "flat", "rare"])
        model = body["model"]
        excluded = {e["attribute"]: e for e in model["excluded"]}
        assert {k: e["reason"] for k, e in excluded.items()} == {
            "doubled": "collinear",
            "flat": "constant",
            "rare": "too_few_answers",
        }
        assert "support" in excluded["doubled"]["detail"]
        assert excluded["rare"]["detail"] == "4 answers rate it, fewer than 10"
        y, x = _matrix(rows, ["support", "product"])
        assert model["r2"] == pytest.approx(_r2(y, x), abs=1e-9)
        assert sorted(_by_attribute(model)) == ["product", "support"]
        shapley = await _drivers(
            tenant, driver_method="shapley", attribute=["support", "doubled", "product"]
        )
        assert shapley["model"]["r2"] == pytest.approx(_r2(y, x), abs=1e-9)

    async def test_no_attributes_at_all(self, tenant: Tenant) -> None:
        rows = _dataset()
        for r in rows:
            r["attributes"] = {}
        await _seed(tenant, rows)
        model = (await _drivers(tenant))["model"]
        assert model["drivers"] == []
        assert model["excluded"] == []
        assert model["r2"] is None
        assert model["rows"] == 48
        assert model["n"] == 0
        assert model["note"].startswith("no attribute to analyse")

    async def test_a_score_that_does_not_vary(self, tenant: Tenant) -> None:
        rows = _dataset()
        for r in rows:
            r["score"] = 9
        await _seed(tenant, rows)
        model = (await _drivers(tenant))["model"]
        assert model["r2"] is None
        assert model["note"] == "the score does not vary in the answers of the model"
        assert all(d["importance"] is None for d in model["drivers"])


class TestScope:
    async def test_groups_are_fitted_on_their_own_answers(self, tenant: Tenant) -> None:
        rows = _dataset()
        await _seed(tenant, rows)
        body = await _drivers(tenant, group_by="role", attribute=["support", "product"])
        keys = [g["key"] for g in body["groups"]]
        assert keys == [{"role": role} for role in sorted(ROLES)]
        for group in body["groups"]:
            mine = [r for r in rows if r["role"] == group["key"]["role"]]
            y, x = _matrix(mine, ["support", "product"])
            assert group["model"]["n"] == len(mine) == 16
            assert group["model"]["r2"] == pytest.approx(_r2(y, x), abs=1e-9)
        y, x = _matrix(rows, ["support", "product"])
        assert body["model"]["r2"] == pytest.approx(_r2(y, x), abs=1e-9)

    async def test_latest_answer_per_stakeholder_unless_respondent(self, tenant: Tenant) -> None:
        rows = _dataset()
        earlier = [{**r, "day": r["day"] - 0.5, "score": 10 - r["score"]} for r in rows[:12]]
        await _seed(tenant, earlier + rows)
        latest = (await _drivers(tenant, attribute=["support", "product"]))["model"]
        y, x = _matrix(rows, ["support", "product"])
        assert latest["rows"] == 48
        assert latest["r2"] == pytest.approx(_r2(y, x), abs=1e-9)
        every = await _drivers(tenant, method="respondent", attribute=["support", "product"])
        y, x = _matrix(earlier + rows, ["support", "product"])
        assert every["method"] == "respondent"
        assert every["model"]["rows"] == 60
        assert every["model"]["r2"] == pytest.approx(_r2(y, x), abs=1e-9)

    async def test_another_workspace_sees_nothing(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        await _seed(tenant, _dataset())
        other = await make_tenant("tenant-b")
        model = (await _drivers(other))["model"]
        assert (model["rows"], model["n"], model["drivers"]) == (0, 0, [])
        grouped = await _drivers(other, group_by="role")
        assert grouped["groups"] == []


class TestBadParameters:
    @pytest.mark.parametrize(
        ("params", "loc"),
        [
            ({"driver_method": "lmg"}, "driver_method"),
            ({"method": "account_as_unit"}, "method"),
            ({"group_by": "account"}, "group_by"),
            ({"resamples": "5"}, "resamples"),
            ({"seed": "-1"}, "seed"),
            ({"confidence": "0.2"}, "confidence"),
            ({"attribute": ""}, "attribute"),
            ({"attribute": "a\x00b"}, None),  # refused for every parameter, before the route
        ],
    )
    async def test_a_422_at_the_parameter(
        self, tenant: Tenant, params: dict[str, str], loc: str | None
    ) -> None:
        r = await tenant.client.get("/v1/drivers", params={**WINDOW, **params})
        body = assert_invalid(r)
        if loc is not None:
            assert body["errors"][0]["loc"][:2] == ["query", loc], body

    async def test_more_attributes_than_shapley_takes(self, tenant: Tenant) -> None:
        names = [f"a{i:02}" for i in range(11)]
        r = await tenant.client.get(
            "/v1/drivers", params={**WINDOW, "driver_method": "shapley", "attribute": names}
        )
        body = assert_invalid(r, ["query", "attribute"])
        assert "at most 10" in body["detail"]


class TestCatalog:
    async def test_the_surveys_rating_attributes_on_their_scales(self, tenant: Tenant) -> None:
        definition = {
            "attributes": [
                {"key": "support", "label": "Support", "scale": 5},
                {"key": "product", "label": "Product", "scale": 10},
            ]
        }
        r = await tenant.client.put("/v1/surveys/rel-q1", json=definition)
        assert r.status_code in (200, 201), r.text
        rows = _dataset()
        items = _items(rows)
        for item in items:
            item["survey"] = "rel-q1"
            item["attributes"]["extra"] = 2  # outside the catalog: free, and not analysed
        await post_responses(tenant.client, items)
        body = await _drivers(tenant, survey="rel-q1")
        assert body["attribute_source"] == "catalog"
        assert body["filters"] == {"survey": "rel-q1"}
        model = body["model"]
        got = _by_attribute(model)
        assert sorted(got) == ["product", "support"]
        y, x = _matrix(rows, ["support", "product"])
        assert model["r2"] == pytest.approx(_r2(y, x), abs=1e-9)
        # Performance on each scale: (mean - 1) / (scale - 1).
        perf = {
            "support": (x[:, 0].mean() - 1) / 4,
            "product": (x[:, 1].mean() - 1) / 9,
        }
        raw = dict(zip(["support", "product"], _johnson(y, x), strict=True))
        middle = (perf["support"] + perf["product"]) / 2
        for key in raw:
            high = raw[key] >= max(raw.values())
            good = perf[key] >= middle
            expected = (
                ("keep" if good else "fix_first") if high else ("surplus" if good else "monitor")
            )
            assert got[key]["quadrant"] == expected
        # Without the survey filter there is no catalog: every numeric key on the answers.
        free = await _drivers(tenant)
        assert free["attribute_source"] == "responses"
        assert sorted(_by_attribute(free["model"])) == ["onboarding", "product", "support"]
        assert [e["attribute"] for e in free["model"]["excluded"]] == ["extra"]


def _weighted_r2(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> float:
    root = np.sqrt(w)
    design = np.column_stack([np.ones(len(y)), x])
    coef, *_ = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)
    residual = y - design @ coef
    mean = (w * y).sum() / w.sum()
    return float(1 - (w * residual**2).sum() / (w * (y - mean) ** 2).sum())


class TestWeightedAndSegments:
    async def test_role_weighted_regression_uses_the_role_weights(self, tenant: Tenant) -> None:
        rows = _dataset()
        await _seed(tenant, rows)
        body = await _drivers(tenant, method="role_weighted", attribute=["support", "product"])
        assert body["method"] == "role_weighted"
        y, x = _matrix(rows, ["support", "product"])
        default_weights = {"decision_maker": 3.0, "influencer": 2.0, "user": 1.0}
        w = np.array([default_weights[r["role"]] for r in rows])
        expected = _weighted_r2(y, x, w)
        assert abs(expected - _r2(y, x)) > 1e-4  # the weights change the answer
        assert body["model"]["r2"] == pytest.approx(expected, abs=1e-9)
        assert body["model"]["n"] == 48

    async def test_group_by_segment_reads_the_accounts_segment(self, tenant: Tenant) -> None:
        for i, account in enumerate(ACCOUNTS):
            await tenant.db.account(account, segment="enterprise" if i < 4 else "smb")
        rows = _dataset()
        await _seed(tenant, rows)
        body = await _drivers(tenant, group_by="segment", attribute=["support"])
        assert [g["key"] for g in body["groups"]] == [
            {"segment": "enterprise"},
            {"segment": "smb"},
        ]
        for group, accounts in zip(body["groups"], (ACCOUNTS[:4], ACCOUNTS[4:]), strict=True):
            mine = [r for r in rows if r["account"] in accounts]
            y, x = _matrix(mine, ["support"])
            assert group["model"]["accounts"] == 4
            assert group["model"]["r2"] == pytest.approx(_r2(y, x), abs=1e-9)

    async def test_decision_maker_first_keeps_the_decision_makers(self, tenant: Tenant) -> None:
        rows = _dataset()
        await _seed(tenant, rows)
        body = await _drivers(tenant, method="decision_maker_first", attribute=["support"])
        mine = [r for r in rows if r["role"] == "decision_maker"]
        y, x = _matrix(mine, ["support"])
        assert body["model"]["rows"] == len(mine) == 16
        assert body["model"]["r2"] == pytest.approx(_r2(y, x), abs=1e-9)
