"""CPU-heavy work of one request, off the event loop: one piece at a time per process.

While a coroutine computes, the event loop serves nobody: a large report's cells, its marginals
or its JSON took the loop for hundreds of milliseconds, and every request of the process (the
cheap ones and `/healthz` included) waited behind it. `off_loop` runs such work in a worker
thread when it is large (`items` at least OFF_LOOP_ITEMS: rows, cells, points), and inline when
it is small (a thread hop costs more than small work does).

One piece runs at a time per process (`_WORKERS`); the others wait for it without holding the
GIL. A thread that computes holds the GIL but for the interpreter's switch interval, so the event
loop gets about half of it beside one such thread and a tenth beside nine: under 300 concurrent
heavy reads, ten at once left the loop so little that `/healthz` took seconds and writes waited
behind the reports.
"""

import asyncio
import weakref
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

OFF_LOOP_ITEMS = 2_000
# One per event loop (a limiter's waiters belong to the loop they wait in), made on first use.
_WORKERS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter]" = (
    weakref.WeakKeyDictionary()
)

T = TypeVar("T")


async def off_loop(work: Callable[[], T], *, items: int = OFF_LOOP_ITEMS) -> T:
    """`work()`, in this process's worker thread when `items` is at least OFF_LOOP_ITEMS (the
    default: always), else on the loop."""
    if items < OFF_LOOP_ITEMS:
        return work()
    loop = asyncio.get_running_loop()
    workers = _WORKERS.get(loop) or _WORKERS.setdefault(loop, anyio.CapacityLimiter(1))
    return await anyio.to_thread.run_sync(work, limiter=workers)
