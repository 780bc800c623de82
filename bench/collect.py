"""Collecting answers: invitation batches and the public answer path, each beside its floor.

One invitation per stakeholder (channel `link`, the fatigue rules turned off for the run, since
every stakeholder answered recently) is issued with `POST /v1/invitations/batch` (1,000 per
call, `--clients` at once); each token then answers once with `POST /v1/public/answers` from
`--single-clients` clients. The floors are the same bodies sent to bench.floor_app: one INSERT
of the batch's rows, and one INSERT of the answer, per request.
"""

import argparse
import json
import random
from collections.abc import Sequence
from typing import Any

from bench import BenchError, cpu, data, floor_app
from bench.client import Reply
from bench.load import (
    Load,
    Workspace,
    check_stored,
    load_client,
    run_workers,
    send,
    stored_count,
)
from bench.report import Phases
from bench.service import Service

SURVEY = "bench-public"
ANSWERS_PATH = "/v1/public/answers"
RULES_OFF = {
    "survey_rules": {
        "resurvey_after_days": 0,
        "after_dismissal_days": 0,
        "after_unanswered_days": 0,
        "max_per_account": None,
    }
}

Job = tuple[dict[str, str], bytes]  # one request's own headers and its body


async def post_jobs(
    base_url: str,
    key: str | None,
    path: str,
    jobs: Sequence[Job],
    clients: int,
    load: Load,
    *,
    items: Sequence[int] | None = None,
) -> list[Reply | None]:
    """POST each job's body to `path` from `clients` concurrent clients, retrying a transient
    failure with the same headers (an Idempotency-Key among them when the job has one); the
    answers by job, and the whole load's time in `load.seconds`."""
    answers: list[Reply | None] = [None] * len(jobs)
    async with load_client(base_url, key, clients) as client:

        async def post(job: tuple[int, Job]) -> None:
            number, (headers, body) = job
            response = await send(client, "POST", path, body, load, None, headers=headers)
            answers[number] = response
            load.requests += 1
            load.items += items[number] if items is not None else 1
            if response is None or response.status_code not in (200, 201, 207):
                load.failed += items[number] if items is not None else 1
                if response is not None:
                    load.note(f"{path} {number}: {response.status_code} {response.text}")

        load.seconds += await run_workers(clients, enumerate(jobs), post)
    return answers


async def floor_load(
    floor: Service, conn: Any, path: str, bodies: Sequence[bytes], clients: int, label: str
) -> dict[str, Any]:
    """The same bodies through bench.floor_app (`/one` or `/batch`), into a fresh table."""
    await conn.execute(f"DROP TABLE IF EXISTS {floor_app.TABLE}")
    await conn.execute(floor_app.CREATE_TABLE)
    load = Load(label)
    counts = [len(_rows(body)) for body in bodies] if path == "/batch" else None
    jobs: list[Job] = [({}, body) for body in bodies]
    async with cpu.measuring(floor.process.pid, conn) as used:
        await post_jobs(floor.base_url, None, path, jobs, clients, load, items=counts)
    used.requests = load.items
    load.stored = await conn.fetchval(f"SELECT count(*) FROM {floor_app.TABLE}")
    await conn.execute(f"DROP TABLE {floor_app.TABLE}")
    if load.failed or load.stored != load.items:
        raise BenchError(f"{label}: {load.stored} rows stored of {load.items}: {load.problems[:5]}")
    return load.report("requests" if path == "/one" else "rows") | {"cpu": used.report()}


def _rows(body: bytes) -> list[Any]:
    value = json.loads(body)
    return next(v for v in value.values() if isinstance(v, list))


def invitation_bodies(workspace: Workspace, count: int, size: int) -> list[bytes]:
    """`count` invitations, one per stakeholder (the first `count`), `size` per batch."""
    people = [s.id for s in workspace.world.stakeholders[:count]]
    return [
        data.dumps(
            {
                "invitations": [
                    {"stakeholder_id": p, "survey": SURVEY, "channel": "link"}
                    for p in people[i : i + size]
                ]
            }
        )
        for i in range(0, len(people), size)
    ]


async def issue(
    service: Service, workspace: Workspace, bodies: list[bytes], clients: int, load: Load
) -> list[str]:
    """POST /v1/invitations/batch; the tokens of the invitations issued."""
    jobs = [({"Idempotency-Key": f"bench-invite-{n}"}, body) for n, body in enumerate(bodies)]
    counts = [len(_rows(body)) for body in bodies]
    answers = await post_jobs(
        service.base_url, workspace.key, "/v1/invitations/batch", jobs, clients, load, items=counts
    )
    tokens: list[str] = []
    for response in answers:
        if response is None or response.status_code not in (200, 207):
            continue
        result = response.json()
        load.stored += result["issued"]
        load.duplicates += result["suppressed"]
        load.failed += result["failed"]
        tokens += [
            r["invitation"]["token"]
            for r in result["results"]
            if r["status"] == 201 and r.get("invitation")
        ]
    return tokens


def answer_bodies(seed: str, count: int) -> list[bytes]:
    """What a person sends from the hosted page or the widget: a score, sometimes a comment."""
    rng = random.Random(f"{seed}/public")
    bodies = []
    for _ in range(count):
        body: dict[str, Any] = {"score": rng.choice((10, 10, 9, 9, 9, 8, 8, 7, 6, 3))}
        if rng.random() < 0.2:
            body["comment"] = "Quick support, good product"
        bodies.append(data.dumps(body))
    return bodies


async def answer(
    service: Service, tokens: list[str], bodies: list[bytes], clients: int, load: Load
) -> None:
    """POST /v1/public/answers once per token (an Idempotency-Key on each, as a retry needs)."""
    jobs = [
        ({"Authorization": f"Bearer {t}", "Idempotency-Key": f"bench-answer-{n}"}, body)
        for n, (t, body) in enumerate(zip(tokens, bodies, strict=True))
    ]
    answers = await post_jobs(service.base_url, None, ANSWERS_PATH, jobs, clients, load)
    for response in answers:
        if response is not None and response.status_code == 201:
            load.stored += 1


async def collect_phase(
    args: argparse.Namespace,
    service: Service,
    floor: Service,
    conn: Any,
    workspace: Workspace,
    phases: Phases,
) -> dict[str, Any]:
    """Invitations, then public answers, each beside its floor."""
    async with load_client(service.base_url, workspace.key, 1) as admin:
        patched = await admin.patch(
            "/v1/settings",
            content=data.dumps(RULES_OFF),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        if patched.status_code != 200:
            raise BenchError(f"PATCH /v1/settings: {patched.status_code} {patched.text}")
    count = min(args.invitations, len(workspace.world.stakeholders))
    bodies = invitation_bodies(workspace, count, args.invitation_batch)
    out: dict[str, Any] = {"clients": args.clients, "batch_size": args.invitation_batch}
    invitations = Load("invitations")
    with phases(
        f"invitations: {count:,} in batches of {args.invitation_batch} ({args.clients} clients)"
    ):
        async with cpu.measuring(service.process.pid, conn) as used:
            tokens = await issue(service, workspace, bodies, args.clients, invitations)
    used.requests = invitations.items  # per invitation, as the floor's per row
    out["invitations"] = invitations.report("invitations") | {"cpu": used.report()}
    if invitations.failed or len(tokens) != count:
        raise BenchError(
            f"{len(tokens)} invitations issued of {count}; {invitations.failed} failed: "
            f"{invitations.problems[:5]}"
        )
    with phases("floor: the invitation batches as one INSERT each"):
        out["invitations_floor"] = await floor_load(
            floor, conn, "/batch", bodies, args.clients, "invitations-floor"
        )
    before = await stored_count(conn, workspace.id)
    answer_load = Load("public")
    answers = answer_bodies(workspace.seed, len(tokens))
    with phases(f"public answers ({args.single_clients} clients)"):
        async with cpu.measuring(service.process.pid, conn) as used:
            await answer(service, tokens, answers, args.single_clients, answer_load)
    used.requests = answer_load.requests
    if set(answer_load.statuses) <= {"404", "405"}:  # a service without the public path
        out["answers"] = {"outcome": "n/a", "statuses": dict(answer_load.statuses)}
        return out
    out["answers"] = answer_load.report("requests") | {"cpu": used.report()}
    check_stored(answer_load, await stored_count(conn, workspace.id) - before, len(tokens))
    with phases("floor: one INSERT per answer"):
        out["answers_floor"] = await floor_load(
            floor, conn, "/one", answers, args.single_clients, "public-floor"
        )
    return out
