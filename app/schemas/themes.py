"""Themes in comments (the workspace's `themes` setting) and the terms that tell detractors'
comments from promoters' (Monroe, Colaresi & Quinn 2008)."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.schemas.scores import ChangeRead, ScoreRead

MATCHING = (
    "a theme is mentioned by an answer whose comment contains one of its keywords or phrases "
    "as whole words: both are folded (Unicode NFKD, accents dropped, lower case) and cut into "
    "words (runs of letters and digits); a keyword's words must appear in the comment one "
    "after another, separated by anything but letters and digits"
)

_SCORE: dict[str, JsonValue] = {
    "nps": 30.0,
    "n": 120,
    "promoters": 54,
    "passives": 30,
    "detractors": 18,
    "promoter_pct": 45.0,
    "passive_pct": 25.0,
    "detractor_pct": 15.0,
    "ci": {"low": 16.2, "high": 42.9, "level": 0.95, "method": "adjusted_wald"},
    "precision": "ok",
    "n_effective": 120.0,
    "unweighted": None,
}


class Mentions(BaseModel):
    promoters: int
    passives: int
    detractors: int
    total: int


class ThemeRead(BaseModel):
    theme: str
    keywords: list[str]
    mentions: Mentions = Field(description="counted answers whose comment mentions the theme")
    mentioners: ScoreRead = Field(description="the score of the answers that mention it")
    non_mentioners: ScoreRead = Field(
        description="the score of every other counted answer (with or without a comment)"
    )
    difference: ChangeRead | None = Field(
        description="mentioners minus non-mentioners, the two-sample adjusted-Wald test as in "
        "/v1/nps/compare; null when either side is empty"
    )
    impact: float | None = Field(
        description="overall NPS minus the NPS without the mentioners, in points: what the "
        "theme's answers move the score by (negative: they pull it down); null when no answer "
        "is left without them"
    )


class ThemesReport(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={
            "examples": [
                {
                    "method": "latest_per_stakeholder",
                    "from": "2025-12-01T00:00:00Z",
                    "to": "2026-12-01T00:00:00Z",
                    "filters": {},
                    "matching": MATCHING,
                    "score": {**_SCORE, "n": 120},
                    "commented": 64,
                    "themes": [
                        {
                            "theme": "pricing",
                            "keywords": ["price", "expensive", "Preis"],
                            "mentions": {
                                "promoters": 2,
                                "passives": 4,
                                "detractors": 9,
                                "total": 15,
                            },
                            "mentioners": {**_SCORE, "nps": -46.7, "n": 15},
                            "non_mentioners": {**_SCORE, "nps": 40.95, "n": 105},
                            "difference": {
                                "previous": None,
                                "difference": -87.6,
                                "adjusted_difference": -77.9,
                                "ci": {
                                    "low": -111.2,
                                    "high": -44.5,
                                    "level": 0.95,
                                    "method": "adjusted_wald",
                                },
                                "z": -4.58,
                                "p_value": 0.0000046,
                                "significant": True,
                            },
                            "impact": -10.95,
                        }
                    ],
                }
            ]
        },
    )

    method: str = Field(description="how responses are counted (as in /v1/nps)")
    from_: datetime = Field(alias="from")
    to: datetime
    filters: dict[str, str]
    matching: str = Field(description="how keywords are matched")
    score: ScoreRead = Field(description="every counted answer")
    commented: int = Field(description="counted answers whose comment has a word")
    themes: list[ThemeRead] = Field(description="the workspace's themes, by name")


class TermRead(BaseModel):
    term: str = Field(description="a folded word, or two adjacent words joined by a space")
    z: float = Field(description="delta / sqrt(variance): > 0 leans detractor, < 0 promoter")
    delta: float = Field(description="the log-odds ratio, detractors against promoters")
    variance: float
    detractor_count: int = Field(description="times it occurs in detractors' comments")
    promoter_count: int = Field(description="times it occurs in promoters' comments")
    background_count: int = Field(description="times it occurs in every counted comment")
    prior: float = Field(description="its pseudo-count a_w")


class CorpusRead(BaseModel):
    comments: int = Field(description="comments with a word")
    terms: int = Field(description="words plus two-word phrases in them (n)")


class PriorRead(BaseModel):
    kind: str = "informative Dirichlet (Monroe, Colaresi & Quinn 2008, section 3.5.1)"
    background: str = (
        "every counted comment in the window and filters: promoters', passives' and detractors'"
    )
    strength: float = Field(description="a0: the pseudo-counts of the whole vocabulary")
    pseudo_count: str = "a_w = a0 * background_count_w / background.terms"
    formula: str = (
        "delta_w = ln((y_d + a_w) / (n_d + a0 - y_d - a_w)) - ln((y_p + a_w) / (n_p + a0 - y_p "
        "- a_w)); variance_w = 1 / (y_d + a_w) + 1 / (y_p + a_w); z_w = delta_w / "
        "sqrt(variance_w); natural logarithms"
    )


class TokenisationRead(BaseModel):
    fold: str = "Unicode NFKD, combining marks (U+0300-U+036F) dropped, lower case"
    words: str = "runs of letters and digits; everything else separates words"
    terms: str = (
        "every word, and every two words next to each other in one comment (across "
        "punctuation), counted each time they occur"
    )
    stop_words: str = "none removed: the prior shrinks what every comment says"


class SuggestedThemes(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={
            "examples": [
                {
                    "method": "latest_per_stakeholder",
                    "from": "2025-12-01T00:00:00Z",
                    "to": "2026-12-01T00:00:00Z",
                    "filters": {},
                    "min_count": 5,
                    "tokenisation": TokenisationRead().model_dump(),
                    "prior": PriorRead(strength=1000).model_dump(),
                    "detractors": {"comments": 80, "terms": 1450},
                    "promoters": {"comments": 210, "terms": 3900},
                    "background": {"comments": 370, "terms": 6600},
                    "detractor_terms": [
                        {
                            "term": "invoice",
                            "z": 4.1,
                            "delta": 1.62,
                            "variance": 0.156,
                            "detractor_count": 14,
                            "promoter_count": 3,
                            "background_count": 21,
                            "prior": 3.18,
                        }
                    ],
                    "promoter_terms": [
                        {
                            "term": "great support",
                            "z": -3.2,
                            "delta": -1.41,
                            "variance": 0.194,
                            "detractor_count": 1,
                            "promoter_count": 22,
                            "background_count": 26,
                            "prior": 3.94,
                        }
                    ],
                }
            ]
        },
    )

    method: str = Field(description="how responses are counted (as in /v1/nps)")
    from_: datetime = Field(alias="from")
    to: datetime
    filters: dict[str, str]
    min_count: int = Field(description="terms seen fewer times on the two sides are left out")
    tokenisation: TokenisationRead
    prior: PriorRead
    detractors: CorpusRead = Field(description="detractors' comments (side d, scores 0-6)")
    promoters: CorpusRead = Field(description="promoters' comments (side p, scores 9-10)")
    background: CorpusRead = Field(description="the prior's corpus")
    detractor_terms: list[TermRead] = Field(
        description="the terms with the largest z > 0, largest first: what detractors say"
    )
    promoter_terms: list[TermRead] = Field(
        description="the terms with the smallest z < 0, smallest first: what promoters say"
    )
