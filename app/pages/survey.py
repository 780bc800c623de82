"""The hosted survey page: `/s/{token}` shows the survey, its form POST answers it.

A GET never records anything, not even "opened" (mail scanners fetch every link in a mail);
`?score=9` from an email's buttons only preselects. The person's first interaction marks the
invitation opened (page.js posts `/s/{token}/opened`), and their submit records the answer
through the same service as POST /v1/public/answers. After it the browser is redirected
(303) to the thank-you page, so a reload never posts the answer again; a second submit is the
"already answered" page (409). For 30 minutes the thank-you page lets the comment be added or
changed, through the same service as PATCH /v1/public/answers.
"""

import re
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.api.deps import utcnow
from app.bodies import StrictRoute
from app.db import SessionDep
from app.errors import (
    AlreadyAnswered,
    EditWindowClosed,
    NotFound,
    Unprocessable,
    validation_errors,
)
from app.pages.assets import asset, asset_response
from app.pages.forms import (
    AnswerForm,
    Entered,
    FieldProblem,
    field_problems,
    read_answer_form,
    read_comment_form,
    urlencoded_form,
)
from app.pages.messages import Words
from app.pages.rendering import render, root_of
from app.pages.view import KnownPage, LivePage, TokenPath, clock, day, survey_view
from app.schemas.invitations import PublicAnswer, PublicAnswerPatch, PublicInvitationRead
from app.schemas.responses import COMMENT_MAX_LENGTH
from app.services import answers, invitations

router = APIRouter(route_class=StrictRoute)
_PRESELECT = re.compile(r"[0-9]|10")
# HEAD as GET (link checkers send it); the server sends no body with it.
READ = ["GET", "HEAD"]


@router.api_route("/assets/{name}", methods=READ)
async def page_asset(request: Request, name: str) -> Response:
    found = asset(name)
    if found is None:
        raise NotFound("no such asset")
    return asset_response(request, found)


def _survey(
    request: Request,
    token: str,
    view: PublicInvitationRead,
    entered: Entered,
    *,
    problems: list[FieldProblem] | None = None,
    status: int = 200,
) -> HTMLResponse:
    problems = problems or []
    return render(
        request,
        "survey.html",
        words=Words(view.texts.locale),
        status=status,
        title=view.texts.question,
        token=token,
        company=view.company,
        first_name=view.first_name,
        texts=view.texts,
        selected=entered,
        errors=problems,
        field_errors={p.field: p.message for p in problems},
        max_comment=COMMENT_MAX_LENGTH,
    )


def _answered(
    request: Request,
    token: str,
    view: PublicInvitationRead,
    *,
    thanks: bool,
    status: int = 200,
    notice: str = "",
    comment: str | None = None,
    problems: list[FieldProblem] | None = None,
) -> HTMLResponse:
    """The thank-you page, or "already answered"; the comment form while it may change."""
    words, answer, problems = Words(view.texts.locale), view.answer, problems or []
    editable = answer is not None and utcnow() < answer.editable_until
    heading = view.texts.thank_you if thanks else words("already_answered_title")
    message = ""
    if not thanks and answer is not None:
        message = words("already_answered", date=day(answer.answered_at))
    return render(
        request,
        "answered.html",
        words=words,
        status=status,
        title=heading,
        token=token,
        company=view.company,
        heading=heading,
        message=message,
        notice=notice,
        editable_until=clock(answer.editable_until) if editable and answer else "",
        follow_up=view.texts.follow_up,
        comment=comment if comment is not None else (answer.comment if answer else "") or "",
        max_comment=COMMENT_MAX_LENGTH,
        errors=problems,
        field_errors={p.field: p.message for p in problems},
    )


async def _form(request: Request) -> FormData:
    return urlencoded_form(await request.body(), request.headers.get("content-type"))


@router.api_route("/{token}", methods=READ, response_class=HTMLResponse)
async def survey_page(
    request: Request,
    token: TokenPath,
    session: SessionDep,
    subject: LivePage,
    score: str | None = Query(default=None, description="a score to preselect (0-10)"),
) -> HTMLResponse:
    if len(request.query_params.getlist("score")) > 1:
        # The API's RouteGate does not reach a mounted app: the page refuses it itself.
        raise Unprocessable("score is given more than once")
    view = await survey_view(session, subject, now=utcnow())
    if view.answer is not None:
        return _answered(request, token, view, thanks=False)
    preselected = score if score is not None and _PRESELECT.fullmatch(score) else ""
    return _survey(request, token, view, Entered(score=preselected))


@router.post("/{token}", response_class=HTMLResponse)
async def submit_answer(
    request: Request, token: TokenPath, session: SessionDep, subject: LivePage
) -> Response:
    now = utcnow()
    view = await survey_view(session, subject, now=now)
    words = Words(view.texts.locale)
    catalog = view.texts.attributes
    form: AnswerForm = read_answer_form(await _form(request), catalog, words)
    problems = form.problems
    if form.body is not None:
        try:
            body = PublicAnswer.model_validate(form.body)
        except ValidationError as exc:
            problems = field_problems(validation_errors(exc.errors()), catalog, words)
        else:
            try:
                # A savepoint: a refused answer leaves nothing of itself behind.
                async with session.begin_nested():
                    await answers.answer(session, subject, body, now=now)
            except AlreadyAnswered:
                view = await survey_view(session, subject, now=now)
                return _answered(request, token, view, thanks=False, status=409)
            except Unprocessable as exc:
                problems = field_problems(exc.errors or [], catalog, words)
            else:
                return RedirectResponse(f"{root_of(request)}/{token}/thanks", status_code=303)
    return _survey(request, token, view, form.entered, problems=problems, status=422)


@router.api_route("/{token}/thanks", methods=READ, response_class=HTMLResponse)
async def thanks_page(
    request: Request, token: TokenPath, session: SessionDep, subject: LivePage
) -> Response:
    view = await survey_view(session, subject, now=utcnow())
    if view.answer is None:
        return RedirectResponse(f"{root_of(request)}/{token}", status_code=303)
    return _answered(request, token, view, thanks=True)


@router.post("/{token}/comment", response_class=HTMLResponse)
async def edit_comment(
    request: Request, token: TokenPath, session: SessionDep, subject: LivePage
) -> Response:
    now = utcnow()
    view = await survey_view(session, subject, now=now)
    words = Words(view.texts.locale)
    comment, problems = read_comment_form(await _form(request), words)
    if not problems:
        change: dict[str, Any] = {"comment": comment if comment.strip() else None}
        try:
            patch = PublicAnswerPatch.model_validate(change)
            async with session.begin_nested():
                await answers.edit_answer(
                    session, subject.workspace_id, subject.invitation_id, patch, now=now
                )
        except ValidationError as exc:
            problems = field_problems(validation_errors(exc.errors()), [], words)
        except EditWindowClosed:
            notice = words("edit_closed")
            return _answered(request, token, view, thanks=True, status=409, notice=notice)
        else:
            view = await survey_view(session, subject, now=now)
            return _answered(request, token, view, thanks=True, notice=words("comment_saved"))
    return _answered(
        request, token, view, thanks=True, status=422, comment=comment, problems=problems
    )


@router.post("/{token}/opened", status_code=204)
async def mark_opened(session: SessionDep, subject: LivePage) -> None:
    """The person started to answer (page.js): the invitation reads opened from now on."""
    await invitations.open_invitation(
        session, subject.workspace_id, subject.invitation_id, now=utcnow(), mark_opened=True
    )


@router.api_route("/{token}/unsubscribe", methods=READ, response_class=HTMLResponse)
async def unsubscribe_page(
    request: Request, token: TokenPath, session: SessionDep, subject: KnownPage
) -> HTMLResponse:
    """A confirmation first: a GET must not unsubscribe (scanners follow this link too)."""
    view = await survey_view(session, subject, now=utcnow())
    words = Words(view.texts.locale)
    return render(
        request,
        "unsubscribe.html",
        words=words,
        title=words("unsubscribe_title"),
        token=token,
        company=view.company,
    )


@router.post("/{token}/unsubscribe", response_class=HTMLResponse)
async def unsubscribe(
    request: Request, token: TokenPath, session: SessionDep, subject: KnownPage
) -> HTMLResponse:
    """Works from any of the person's links, an expired or answered one too."""
    now = utcnow()
    await answers.unsubscribe(session, subject.workspace_id, subject.invitation_id, now=now)
    view = await survey_view(session, subject, now=now)
    words = Words(view.texts.locale)
    return render(
        request,
        "message.html",
        words=words,
        title=words("unsubscribed_title"),
        message=words("unsubscribed", company=view.company),
    )
