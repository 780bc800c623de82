"""app.api.bodies.present and app.offload: large work in a thread, one at a time per event loop."""

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from pydantic import BaseModel

from app.api import bodies
from app.offload import OFF_LOOP_ITEMS, off_loop


class Answer(BaseModel):
    n: int


async def test_one_large_answer_is_built_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bodies, "OFF_LOOP_ITEMS", 1)
    lock = threading.Lock()
    running, most = 0, 0
    loop_thread = threading.get_ident()
    threads: set[int] = set()

    def build(n: int) -> Answer:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threads.add(threading.get_ident())
        time.sleep(0.02)  # holds its thread, as a long build does
        with lock:
            running -= 1
        return Answer(n=n)

    def builder(n: int) -> Callable[[], Answer]:
        return lambda: build(n)

    answers = await asyncio.gather(*(bodies.present(builder(n), items=5) for n in range(6)))
    assert [a.body for a in answers] == [f'{{"n":{n}}}'.encode() for n in range(6)]  # type: ignore[union-attr]
    assert most == 1  # never two builders beside the loop
    assert loop_thread not in threads


async def test_the_loop_runs_while_a_large_answer_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bodies, "OFF_LOOP_ITEMS", 1)
    release = threading.Event()

    def build() -> Answer:
        release.wait(timeout=10)
        return Answer(n=1)

    pending = asyncio.ensure_future(bodies.present(build, items=5))
    queued = asyncio.ensure_future(bodies.present(lambda: Answer(n=2), items=5))
    await asyncio.sleep(0.05)
    assert not pending.done()
    assert not queued.done()  # the second waits for the first
    release.set()
    assert (await pending).body == b'{"n":1}'  # type: ignore[union-attr]
    assert (await queued).body == b'{"n":2}'  # type: ignore[union-attr]


def test_small_answers_stay_on_the_loop() -> None:
    async def run() -> object:
        return await bodies.present(lambda: Answer(n=3), items=OFF_LOOP_ITEMS - 1)

    assert asyncio.run(run()) == Answer(n=3)
    assert asyncio.run(run()) == Answer(n=3)  # a second loop: its own limiter


async def test_cells_and_trend_lines_of_large_reports_leave_the_loop() -> None:
    """app.offload.off_loop, which the cells of a count and a trend's lines go through."""
    loop_thread = threading.get_ident()
    small = await off_loop(threading.get_ident, items=OFF_LOOP_ITEMS - 1)
    large = await off_loop(threading.get_ident, items=OFF_LOOP_ITEMS)
    assert small == loop_thread
    assert large != loop_thread
