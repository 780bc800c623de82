"""A stored survey definition as the API shows it."""

from app.models import Survey
from app.schemas.surveys import SurveyRead
from app.services.surveys import definition_of


def survey_read(survey: Survey) -> SurveyRead:
    return SurveyRead(
        id=survey.id,
        created_at=survey.created_at,
        updated_at=survey.updated_at,
        **definition_of(survey).model_dump(),
    )
