"""Cases as the API shows them: whether they are overdue now, and a case's answers, history,
notes and changes."""

from datetime import datetime

from app.models import Case, CaseKind, CaseStatus, JobLevel, Role
from app.schemas.cases import (
    CaseChangeRead,
    CaseDetail,
    CaseNoteRead,
    CaseRead,
    CaseTrigger,
    ScorePoint,
)
from app.services.cases import CaseView


def case_read(case: Case, now: datetime) -> CaseRead:
    status = CaseStatus(case.status)
    return CaseRead(
        id=case.id,
        kind=CaseKind(case.kind),
        rule=case.rule,
        sla_hours=case.sla_hours,
        status=status,
        stakeholder_id=case.stakeholder_id,
        account_id=case.account_id,
        role=Role(case.role),
        job_level=JobLevel(case.job_level),
        department=case.department,
        owner=case.owner,
        due_at=case.due_at,
        overdue=status != CaseStatus.CLOSED and case.due_at < now,
        outcome=case.outcome,
        root_cause=case.root_cause,
        opened_at=case.opened_at,
        first_action_at=case.first_action_at,
        closed_at=case.closed_at,
        updated_at=case.updated_at,
    )


def case_detail(view: CaseView, now: datetime) -> CaseDetail:
    return CaseDetail(
        **case_read(view.case, now).model_dump(),
        responses=[
            CaseTrigger(
                response_id=t.response.id,
                rule=t.rule,
                added_at=t.added_at,
                score=t.response.score,
                category=t.response.category,
                comment=t.response.comment,
                submitted_at=t.response.submitted_at,
                survey=t.response.survey,
            )
            for t in view.triggers
        ],
        history=[
            ScorePoint(
                response_id=r.id,
                score=r.score,
                category=r.category,
                submitted_at=r.submitted_at,
                survey=r.survey,
            )
            for r in view.history
        ],
        notes=[CaseNoteRead.model_validate(n) for n in view.notes],
        changes=[CaseChangeRead.model_validate(c) for c in view.changes],
    )
