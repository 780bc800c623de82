"""Large answers are built and serialised in a worker thread, off the event loop.

A weekly two-year trend grouped by account is tens of thousands of points: building its schemas
and dumping them to JSON took the event loop for hundreds of milliseconds per answer, and every
request of the process (the cheap ones and `/healthz` included) waited behind it. An answer of at
least `OFF_LOOP_ITEMS` items (points, groups) is presented in a thread instead (app.offload, one
at a time per process), and dumped piece by piece (`_dump`): pydantic's serialiser keeps the GIL
for the whole of one call, so one call per series lets the loop run between them. Smaller
answers stay on the loop: a thread hop costs more than they do.
"""

from collections.abc import Callable
from typing import TypeVar

from fastapi.responses import Response
from pydantic import BaseModel

from app.offload import OFF_LOOP_ITEMS, off_loop

# The field whose items are dumped one by one when an answer is large (it is the last field of
# each schema that has one, so the pieces close the object).
PIECEWISE_FIELDS = ("series", "groups")

Model = TypeVar("Model", bound=BaseModel)


async def present(build: Callable[[], Model], *, items: int) -> Model | Response:
    """`build()` itself for a small answer, else its JSON built and dumped in a worker thread,
    byte for byte what FastAPI would have sent for the model."""
    if items < OFF_LOOP_ITEMS:
        return build()
    body = await off_loop(lambda: _dump(build()))
    return Response(body, media_type="application/json")


def _dump(model: BaseModel) -> bytes:
    for name in PIECEWISE_FIELDS:
        pieces = getattr(model, name, None)
        if isinstance(pieces, list) and pieces and _is_last(model, name):
            head = model.model_copy(update={name: []}).model_dump_json(by_alias=True)
            empty = f'"{name}":[]}}'
            assert head.endswith(empty), "the piecewise field must be the schema's last"
            parts = [head[: -len(empty)].encode(), f'"{name}":['.encode()]
            for i, piece in enumerate(pieces):
                if i:
                    parts.append(b",")
                parts.append(piece.model_dump_json(by_alias=True).encode())
            parts.append(b"]}")
            return b"".join(parts)
    return model.model_dump_json(by_alias=True).encode()


def _is_last(model: BaseModel, name: str) -> bool:
    return list(type(model).model_fields)[-1] == name
