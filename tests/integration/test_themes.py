"""GET /v1/themes and GET /v1/themes/suggested: whole-word matching with case and accents set
aside, the mentioners' and the others' scores with the two-sample test, the impact, the
log-odds terms, counting methods, other workspaces, an empty window and bad parameters.

Expected figures are computed here: which comment mentions which theme is written out by hand;
the scores, the adjusted-Wald test and the log-odds are plain formulas of this file (SPEC.md's
and Monroe et al.'s), over a tokeniser of its own.
"""

import itertools
import math
import re
import unicodedata
from collections import Counter
from statistics import NormalDist
from typing import Any

import pytest

from tests.support.api import post_responses, put_settings, set_excluded
from tests.support.clock import WINDOW, at
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_invalid

THEMES = {
    "pricing": ["price", "Preis", "too expensive"],
    "cafe": ["café"],
    "onboarding": ["onboarding"],
}

# (score, comment, themes it mentions: by hand)
ANSWERS: list[tuple[int, str | None, set[str]]] = [
    (10, "Great support and a fair PRICE.", {"pricing"}),
    (10, "Priceless service, great support", set()),  # "priceless" is not "price"
    (9, "Le café était parfait", {"cafe"}),
    (9, "great support", set()),
    (10, None, set()),
    (8, "Der Preis ist okay", {"pricing"}),
    (7, "fine", set()),
    (3, "DER PREIS IST ZU HOCH", {"pricing"}),
    (2, "Too   expensive; the cafe was cold", {"pricing", "cafe"}),
    (1, "price-gouging, too expensive", {"pricing"}),
    (4, "slow support", set()),
    (5, "expensive toothpaste", set()),  # "too expensive" is a phrase, not two words anywhere
    (6, "", set()),
]


def _items(answers: list[tuple[int, str | None, set[str]]], prefix: str = "p") -> list[Any]:
    items = []
    for i, (score, comment, _) in enumerate(answers):
        item: dict[str, Any] = {
            "stakeholder": {
                "id": f"{prefix}{i}",
                "account_id": f"acct-{i % 3}",
                "role": ["decision_maker", "influencer", "user"][i % 3],
                "account": {"name": f"acct-{i % 3}"},
            },
            "score": score,
            "submitted_at": at(1 + i / 10).isoformat(),
        }
        if comment is not None:
            item["comment"] = comment
        items.append(item)
    return items


async def _seed(tenant: Tenant, themes: dict[str, list[str]] = THEMES) -> None:
    await put_settings(tenant.client, {"themes": themes})
    await post_responses(tenant.client, _items(ANSWERS))


async def _get(tenant: Tenant, path: str = "/v1/themes", **params: Any) -> dict[str, Any]:
    r = await tenant.client.get(path, params={**WINDOW, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# The independent formulas


def _counts(scores: list[int]) -> tuple[int, int, int]:
    return (
        sum(s >= 9 for s in scores),
        sum(7 <= s <= 8 for s in scores),
        sum(s <= 6 for s in scores),
    )


def _nps(scores: list[int]) -> float:
    p, _, d = _counts(scores)
    return 100 * (p - d) / len(scores)


def _two_sample(a: list[int], b: list[int]) -> tuple[float, float]:
    """SPEC.md: the adjusted-Wald z-test on the adjusted centres; (z, p)."""

    def adjusted(scores: list[int]) -> tuple[float, float, float]:
        p, _, d = _counts(scores)
        n = len(scores) + 3
        pp, pd = (p + 0.75) / n, (d + 0.75) / n
        centre = pp - pd
        return centre, pp + pd - centre**2, n

    ca, va, na = adjusted(a)
    cb, vb, nb = adjusted(b)
    z = (ca - cb) / math.sqrt(va / na + vb / nb)
    return z, 2 * (1 - NormalDist().cdf(abs(z)))


class TestThemes:
    async def test_mentions_scores_test_and_impact(self, tenant: Tenant) -> None:
        await _seed(tenant)
        body = await _get(tenant, method="respondent")
        scores = [s for s, _, _ in ANSWERS]
        assert body["method"] == "respondent"
        assert body["score"]["n"] == 13
        assert body["score"]["nps"] == pytest.approx(_nps(scores))
        # Every comment with a word: 11 ("" and no comment are not comments).
        assert body["commented"] == 11
        got = {t["theme"]: t for t in body["themes"]}
        assert [t["theme"] for t in body["themes"]] == ["cafe", "onboarding", "pricing"]
        for name in ("cafe", "pricing"):
            inside = [s for s, _, themes in ANSWERS if name in themes]
            outside = [s for s, _, themes in ANSWERS if name not in themes]
            theme = got[name]
            assert theme["keywords"] == THEMES[name]
            p, pa, d = _counts(inside)
            assert theme["mentions"] == {
                "promoters": p,
                "passives": pa,
                "detractors": d,
                "total": len(inside),
            }
            assert theme["mentioners"]["nps"] == pytest.approx(_nps(inside))
            assert theme["non_mentioners"]["nps"] == pytest.approx(_nps(outside))
            assert theme["non_mentioners"]["n"] == len(outside)
            z, p_value = _two_sample(inside, outside)
            change = theme["difference"]
            assert change["difference"] == pytest.approx(_nps(inside) - _nps(outside))
            assert change["z"] == pytest.approx(z, abs=1e-9)
            assert change["p_value"] == pytest.approx(p_value, abs=1e-9)
            assert theme["impact"] == pytest.approx(_nps(scores) - _nps(outside))
        # pricing by hand: promoters 1 (PRICE), passives 1 (Preis), detractors 3.
        assert got["pricing"]["mentions"] == {
            "promoters": 1,
            "passives": 1,
            "detractors": 3,
            "total": 5,
        }
        assert got["pricing"]["mentioners"]["nps"] == pytest.approx(-40.0)
        # Without them: 8 answers, promoters 4, passives 1, detractors 3: NPS 12.5; overall
        # 5/2/6 of 13: -7.69...; impact -7.69 - 12.5.
        assert got["pricing"]["non_mentioners"]["nps"] == pytest.approx(12.5)
        assert got["pricing"]["impact"] == pytest.approx(100 * (5 - 6) / 13 - 12.5)
        # "café" matches "cafe" and "Café"; a theme nobody mentions has an empty side.
        assert got["cafe"]["mentions"]["total"] == 2
        nobody = got["onboarding"]
        assert nobody["mentions"] == {"promoters": 0, "passives": 0, "detractors": 0, "total": 0}
        assert nobody["mentioners"]["n"] == 0
        assert nobody["mentioners"]["nps"] is None
        assert nobody["difference"] is None
        assert nobody["impact"] == pytest.approx(0.0)

    async def test_word_boundaries_case_and_accents(self, tenant: Tenant) -> None:
        themes = {"a": ["price"], "b": ["PREIS"], "c": ["cafe"], "d": ["CAFÉ au lait"]}
        await put_settings(tenant.client, {"themes": themes})
        comments = [
            "priceless",  # none
            "price",  # a
            "the price, the PRICES",  # a (once per answer)
            "preis",  # b
            "Prëis",  # b: accents aside
            "Cafe au   LAIT!",  # c, d
            "decafe",  # none
            "café_",  # c ("_" is not a letter)
        ]
        items = _items([(9, c, set()) for c in comments])
        await post_responses(tenant.client, items)
        body = await _get(tenant, method="respondent")
        got = {t["theme"]: t["mentions"]["total"] for t in body["themes"]}
        assert got == {"a": 2, "b": 2, "c": 2, "d": 1}

    async def test_latest_per_stakeholder_counts_the_latest_comment(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, {"themes": {"pricing": ["price"]}})
        first = _items([(2, "the price", set())], prefix="same")
        later = _items([(9, "all good now", set())], prefix="same")
        later[0]["submitted_at"] = at(5).isoformat()
        await post_responses(tenant.client, first + later)
        body = await _get(tenant)
        assert body["method"] == "latest_per_stakeholder"
        assert body["themes"][0]["mentions"]["total"] == 0
        body = await _get(tenant, method="respondent")
        assert body["themes"][0]["mentions"]["total"] == 1

    async def test_another_workspace_sees_nothing(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        await _seed(tenant)
        other = await make_tenant("tenant-b")
        await put_settings(other.client, {"themes": THEMES})
        body = await _get(other)
        assert body["score"]["n"] == 0
        assert body["commented"] == 0
        assert all(t["mentions"]["total"] == 0 for t in body["themes"])
        suggested = await _get(other, "/v1/themes/suggested", min_count=1)
        assert suggested["detractor_terms"] == suggested["promoter_terms"] == []

    async def test_empty_window_and_no_themes(self, tenant: Tenant) -> None:
        await _seed(tenant)
        r = await tenant.client.get(
            "/v1/themes", params={"from": "2025-01-01T00:00:00Z", "to": "2025-02-01T00:00:00Z"}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["score"]["nps"] is None
        assert body["commented"] == 0
        for theme in body["themes"]:
            assert theme["mentioners"]["nps"] is None
            assert theme["non_mentioners"]["nps"] is None
            assert theme["difference"] is None
            assert theme["impact"] is None
        await put_settings(tenant.client, {})
        assert (await _get(tenant))["themes"] == []

    async def test_an_excluded_answer_does_not_count(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, {"themes": THEMES})
        ids = await post_responses(tenant.client, _items(ANSWERS))
        await set_excluded(tenant.client, ids[7])  # "DER PREIS IST ZU HOCH", a detractor
        body = await _get(tenant, method="respondent")
        pricing = next(t for t in body["themes"] if t["theme"] == "pricing")
        assert pricing["mentions"] == {
            "promoters": 1,
            "passives": 1,
            "detractors": 2,
            "total": 4,
        }
        assert body["score"]["n"] == 12

    async def test_filters_apply(self, tenant: Tenant) -> None:
        await _seed(tenant)
        body = await _get(tenant, method="respondent", role="decision_maker")
        assert body["filters"] == {"role": "decision_maker"}
        mine = [(s, t) for i, (s, _, t) in enumerate(ANSWERS) if i % 3 == 0]
        assert body["score"]["n"] == len(mine)
        got = {t["theme"]: t["mentions"]["total"] for t in body["themes"]}
        assert got == {
            name: sum(name in t for _, t in mine) for name in ("cafe", "onboarding", "pricing")
        }

    async def test_role_weighted(self, tenant: Tenant) -> None:
        await _seed(tenant)
        body = await _get(tenant, method="role_weighted")
        weights = [3.0, 2.0, 1.0]  # decision_maker, influencer, user by i % 3

        def weighted(rows: list[tuple[int, int]]) -> float:
            x = {True: 1, False: 0}
            total = sum(weights[i % 3] for i, _ in rows)
            return 100 * sum(weights[i % 3] * (x[s >= 9] - x[s <= 6]) for i, s in rows) / total

        rows = [(i, s) for i, (s, _, _) in enumerate(ANSWERS)]
        inside = [(i, s) for i, (s, _, t) in enumerate(ANSWERS) if "pricing" in t]
        outside = [(i, s) for i, (s, _, t) in enumerate(ANSWERS) if "pricing" not in t]
        pricing = next(t for t in body["themes"] if t["theme"] == "pricing")
        assert pricing["mentioners"]["nps"] == pytest.approx(weighted(inside))
        assert pricing["non_mentioners"]["nps"] == pytest.approx(weighted(outside))
        assert pricing["impact"] == pytest.approx(weighted(rows) - weighted(outside))
        assert pricing["mentions"]["total"] == 5  # raw counts


class TestThemeSettings:
    @pytest.mark.parametrize(
        ("themes", "loc"),
        [
            ({"p": []}, ["body", "themes", "p"]),
            ({"p": ["--"]}, ["body", "themes", "p", 0]),
            ({"p": ["Café", "CAFE"]}, ["body", "themes", "p"]),
            ({"p": [7]}, ["body", "themes", "p", 0]),
            ({"p": "price"}, ["body", "themes", "p"]),
        ],
    )
    async def test_bad_themes_are_refused(
        self, tenant: Tenant, themes: dict[str, Any], loc: list[Any]
    ) -> None:
        r = await tenant.client.put("/v1/settings", json={"themes": themes})
        assert_invalid(r, loc)

    async def test_patch_adds_and_removes_a_theme(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, {"themes": {"a": ["x"], "b": ["y"]}})
        r = await tenant.client.patch(
            "/v1/settings",
            json={"themes": {"a": None, "c": ["z", "zz top"]}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["themes"] == {"b": ["y"], "c": ["z", "zz top"]}

    async def test_a_theme_change_changes_the_report_tag(self, tenant: Tenant) -> None:
        await _seed(tenant)
        r = await tenant.client.get("/v1/themes", params=WINDOW)
        tag = r.headers["ETag"]
        again = await tenant.client.get("/v1/themes", params=WINDOW, headers={"If-None-Match": tag})
        assert again.status_code == 304
        await put_settings(tenant.client, {"themes": {"pricing": ["price"]}})
        changed = await tenant.client.get(
            "/v1/themes", params=WINDOW, headers={"If-None-Match": tag}
        )
        assert changed.status_code == 200
        assert [t["theme"] for t in changed.json()["themes"]] == ["pricing"]


# Suggested themes: a tokeniser and the formula of this file


def _terms(comment: str) -> list[str]:
    text = "".join(
        c for c in unicodedata.normalize("NFKD", comment) if not 0x300 <= ord(c) <= 0x36F
    ).lower()
    found = re.findall(r"[a-z0-9]+", text)  # the test data is Latin
    return found + [f"{a} {b}" for a, b in itertools.pairwise(found)]


SUGGEST = [
    (10, "Great support, great team"),
    (9, "great support"),
    (10, "Support is great"),
    (9, "fast onboarding"),
    (8, "support ok"),
    (2, "Invoice errors again"),
    (3, "invoice errors, slow support"),
    (1, "Slow support and invoice ERRORS"),
    (6, "slow"),
]


def _expected_terms(strength: float, min_count: int) -> dict[str, tuple[float, int, int]]:
    d, p, background = Counter[str](), Counter[str](), Counter[str]()
    for score, comment in SUGGEST:
        terms = _terms(comment)
        background.update(terms)
        if score <= 6:
            d.update(terms)
        elif score >= 9:
            p.update(terms)
    n_d, n_p, n_b = sum(d.values()), sum(p.values()), sum(background.values())
    out = {}
    for term, count in background.items():
        if d[term] + p[term] < min_count:
            continue
        a = strength * count / n_b
        delta = math.log((d[term] + a) / (n_d + strength - d[term] - a)) - math.log(
            (p[term] + a) / (n_p + strength - p[term] - a)
        )
        z = delta / math.sqrt(1 / (d[term] + a) + 1 / (p[term] + a))
        out[term] = (z, d[term], p[term])
    return out


class TestSuggestedThemes:
    async def _seed(self, tenant: Tenant) -> None:
        await post_responses(tenant.client, _items([(s, c, set()) for s, c in SUGGEST]))

    async def test_terms_by_z_against_the_formula(self, tenant: Tenant) -> None:
        await self._seed(tenant)
        body = await _get(tenant, "/v1/themes/suggested", min_count=2, prior_strength=10, limit=3)
        expected = _expected_terms(10.0, 2)
        ranked = sorted(expected.items(), key=lambda kv: (-kv[1][0], kv[0]))
        top = [k for k, v in ranked if v[0] > 0][:3]
        bottom = [
            k for k, v in sorted(expected.items(), key=lambda kv: (kv[1][0], kv[0])) if v[0] < 0
        ][:3]
        assert [t["term"] for t in body["detractor_terms"]] == top
        assert [t["term"] for t in body["promoter_terms"]] == bottom
        for t in body["detractor_terms"] + body["promoter_terms"]:
            z, dc, pc = expected[t["term"]]
            assert t["z"] == pytest.approx(z, abs=1e-9)
            assert (t["detractor_count"], t["promoter_count"]) == (dc, pc)
        assert "invoice errors" in top
        assert "great support" in bottom
        assert body["detractors"]["comments"] == 4
        assert body["promoters"]["comments"] == 4
        assert body["background"]["comments"] == 9
        n_d = sum(len(_terms(c)) for s, c in SUGGEST if s <= 6)
        assert body["detractors"]["terms"] == n_d
        assert body["prior"]["strength"] == 10
        assert body["min_count"] == 2
        assert "NFKD" in body["tokenisation"]["fold"]

    async def test_min_count_leaves_rare_terms_out(self, tenant: Tenant) -> None:
        await self._seed(tenant)
        body = await _get(tenant, "/v1/themes/suggested", min_count=4, limit=50)
        listed = {t["term"] for t in body["detractor_terms"] + body["promoter_terms"]}
        expected = set(_expected_terms(1000.0, 4))
        assert listed <= expected
        assert "support" in listed
        assert "onboarding" not in listed

    async def test_empty_window(self, tenant: Tenant) -> None:
        await self._seed(tenant)
        r = await tenant.client.get(
            "/v1/themes/suggested",
            params={"from": "2025-01-01T00:00:00Z", "to": "2025-02-01T00:00:00Z"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["detractor_terms"] == body["promoter_terms"] == []
        assert body["detractors"] == {"comments": 0, "terms": 0}

    @pytest.mark.parametrize(
        ("params", "loc"),
        [
            ({"min_count": 0}, ["query", "min_count"]),
            ({"limit": 201}, ["query", "limit"]),
            ({"prior_strength": 0}, ["query", "prior_strength"]),
            ({"method": "account_as_unit"}, ["query", "method"]),
        ],
    )
    async def test_bad_parameters(
        self, tenant: Tenant, params: dict[str, Any], loc: list[str]
    ) -> None:
        r = await tenant.client.get("/v1/themes/suggested", params={**WINDOW, **params})
        assert_invalid(r, loc)
