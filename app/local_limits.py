"""Rate limits, counted in the process and shared through PostgreSQL: the API's and the public
calls' alike.

A statement per request to count it was too dear: POST /v1/responses is tuned to a handful of
round trips, and the public calls' own statement (on a second pooled connection, every call
from one address updating one row) was a tenth of a public answer's CPU. So each process counts
its requests in memory (`Windows`: fixed windows, one `Policy` per quota) and now and then hands
what it counted to the request that is about to authenticate (`Flush`): the look-up of its API
key (app.services.keys.authenticate) or of its invitation token (app.services.invitations.
token_holder) adds the counts to rate_limit_windows in the very statement that looks the
caller up (app.services.lookups), and gets back every process's totals. A process decides with
the totals it last saw plus what it counted since, so with W processes a client may overshoot a
quota by what the other W - 1 counted since this one last shared.

The flush runs in the request's transaction: when that does not commit (the session's
after_commit says so), app.guard writes the counts on their own before the answer is sent
(`Flush.share_alone`: a flood of guessed tokens, each a 401 that rolls back, is shared like any
other call); should that fail too they go with the next flush (`Flush.settle`), so a count
survives any rollback and none is counted twice.

`KeyCache` keeps floods of wrong keys off the database: a key that failed is refused from
memory for a while, and a client address with too many failures within a window is refused
(429) any key that has not authenticated in this process lately, before the key is looked up.
Every structure is bounded: beyond `capacity` entries new addresses share one counter.
"""

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from app.services.rate_limits import Policy, Usage

OVERFLOW = "overflow"
HOUR = 3600  # the longest window a setting allows
# Where the guard leaves a request's Flush for app.api.auth (an ASGI scope key).
FLUSH_SCOPE_KEY = "nps.rate_limit_flush"
# Where it leaves a public call's OriginCheck, for the token's look-up to answer.
ORIGIN_SCOPE_KEY = "nps.cors_origin"


def upsert_counts(keys: str, starts: str, hits: str) -> str:
    """A Flush's counts (`rows()`, as these three array parameters) added to rate_limit_windows,
    returning every process's totals of those windows: alone (share_alone) or as a CTE of the
    caller's look-up (app.services.lookups)."""
    return f"""
    INSERT INTO rate_limit_windows AS w (key, window_start, hits)
    SELECT * FROM unnest({keys}::text[], {starts}::timestamptz[], {hits}::integer[])
    ON CONFLICT (key, window_start) DO UPDATE SET hits = w.hits + excluded.hits
    RETURNING w.key, w.window_start, w.hits"""


_ALONE = upsert_counts("$1", "$2", "$3")


@dataclass(slots=True)
class OriginCheck:
    """A public call's Origin, whether the page it came from may read the answer (None: not
    asked yet), and the hash of the call's token (None: it sent none)."""

    origin: str
    token_hash: bytes | None
    allowed: bool | None = None


@dataclass(slots=True)
class Flush:
    """Counts handed to one authentication statement: rate_limit_windows keys, window starts
    and hits, sorted by key so concurrent flushes lock rows in one order.

    `state`: taken (not yet run), applied (run, its transaction not yet over), undone (its
    transaction rolled back), committed; the guard shares a taken or undone one on its own
    before the answer leaves (`share_alone`) and settles it when the request ends: anything but
    committed is counted again."""

    windows: "Windows"
    counts: dict[tuple[str, int], int]
    state: str = "taken"

    def rows(self) -> tuple[list[str], list[datetime], list[int]]:
        ordered = sorted(self.counts.items())
        return (
            [key for (key, _), _ in ordered],
            [datetime.fromtimestamp(start, UTC) for (_, start), _ in ordered],
            [hits for _, hits in ordered],
        )

    def applied(self, totals: list[tuple[str, datetime, int]]) -> None:
        """The statement ran: every process's totals for these windows, these counts included."""
        self.state = "applied"
        for key, start, hits in totals:
            self.windows.totals[key, int(start.timestamp())] = hits

    def applied_row(self, row: Any, session: Any) -> None:
        """The totals of a look-up statement's row (app.services.lookups), its counts committed
        or rolled back with `session`."""
        self.applied(list(zip(row["keys"], row["starts"], row["hits"], strict=True)))
        event.listen(session.sync_session, "after_commit", self.committed, once=True)
        event.listen(session.sync_session, "after_soft_rollback", self.rolled_back)

    def rolled_back(self, _: Any, previous: Any) -> None:
        if self.state == "applied" and not previous.nested:
            self.state = "undone"

    def committed(self, *_: object) -> None:
        self.state = "committed"

    async def share_alone(self, conn: Any) -> None:
        """The counts of a request whose transaction did not commit (a 401 for a guessed
        credential, a 404), written on their own on `conn` (an asyncpg connection outside any
        transaction), so that a flood of failing requests is shared within a flush interval
        too: without it they went with the next request that succeeded in this process,
        which during such a flood may never come."""
        if self.state not in ("taken", "undone"):
            return  # committed, or its transaction still open: not to be counted twice
        if self.state == "undone":  # the totals it brought back rolled back with it
            for window, hits in self.counts.items():
                if window in self.windows.totals:
                    self.windows.totals[window] -= hits
        rows = await conn.fetch(_ALONE, *self.rows())
        self.applied([(row["key"], row["window_start"], row["hits"]) for row in rows])
        self.state = "committed"

    def settle(self) -> None:
        """The request is over: counts that did not commit go with the next flush."""
        if self.state != "committed":
            if self.state == "undone":
                self.state = "applied"  # restore takes the totals back as for any applied flush
            self.windows.restore(self)
        self.state = "settled"
        self.windows.flushing = False


@dataclass(slots=True)
class Windows:
    """Fixed-window counters of this process: `totals`, every process's count as of the last
    flush, plus `pending`, counted here since and not yet flushed."""

    flush_every: float = 1.0
    capacity: int = 50_000
    totals: dict[tuple[str, int], int] = field(default_factory=dict)
    pending: dict[tuple[str, int], int] = field(default_factory=dict)
    flushing: bool = False
    last_flush: float = float("-inf")  # the first request flushes: it learns the totals

    def hit(self, key: str, policy: Policy, now: float) -> Usage:
        """Count a request against `key` under `policy` at `now` (a Unix time)."""
        start = int(now // policy.window) * policy.window
        window = (key, start)
        if window not in self.pending and len(self.pending) >= self.capacity:
            window = (f"{key.partition(':')[0]}:{OVERFLOW}", start)
        pending = self.pending[window] = self.pending.get(window, 0) + 1
        hits = self.totals.get(window, 0) + pending
        return Usage(policy, hits, max(1, int(start + policy.window - now + 0.999)))

    def refund(self, key: str, policy: Policy, at: float) -> None:
        """Take back one hit that `hit(key, policy, at)` counted: the request turned out not to
        count (a look-up of a key that worked is no failure). When that hit was flushed already,
        the refund goes with the next flush as a negative count, so every process sees it."""
        start = int(at // policy.window) * policy.window
        window = (key, start)
        if window not in self.pending and window not in self.totals:
            window = (f"{key.partition(':')[0]}:{OVERFLOW}", start)
        left = self.pending.get(window, 0) - 1
        if left:
            self.pending[window] = left
        else:
            self.pending.pop(window, None)

    def seen(self, key: str, policy: Policy, now: float) -> int:
        """The count of `key`'s current window, without counting."""
        window = (key, int(now // policy.window) * policy.window)
        return self.totals.get(window, 0) + self.pending.get(window, 0)

    def take(self, now: float) -> Flush | None:
        """The counts to flush, at most once per `flush_every` seconds and one flush at a time;
        windows that ended an hour before `now` (a Unix time) are forgotten then."""
        ticks = time.monotonic()
        if self.flushing or not self.pending or ticks - self.last_flush < self.flush_every:
            return None
        self.last_flush = ticks
        self.flushing = True
        flush = Flush(self, self.pending)
        self.pending = {}
        self.totals = {w: n for w, n in self.totals.items() if w[1] > now - 2 * HOUR}
        return flush

    def restore(self, flush: Flush) -> None:
        """`flush`'s counts back to pending: its statement never ran, or rolled back."""
        for window, hits in flush.counts.items():
            self.pending[window] = self.pending.get(window, 0) + hits
            if flush.state == "applied" and window in self.totals:
                self.totals[window] -= hits


@dataclass(slots=True)
class KeyCache:
    """Key hashes that failed (refused from memory for `ttl` seconds) and that authenticated
    (exempt from the failure limit), each bounded to `capacity` entries, oldest dropped."""

    ttl: float = 60.0
    capacity: int = 10_000
    failed: "OrderedDict[bytes, float]" = field(default_factory=OrderedDict)
    good: "OrderedDict[bytes, None]" = field(default_factory=OrderedDict)

    def is_failed(self, key_hash: bytes, now: float) -> bool:
        until = self.failed.get(key_hash)
        if until is None:
            return False
        if until < now:
            del self.failed[key_hash]
            return False
        return True

    def is_good(self, key_hash: bytes) -> bool:
        return key_hash in self.good

    def fail(self, key_hash: bytes, now: float) -> None:
        self.good.pop(key_hash, None)
        self.failed[key_hash] = now + self.ttl
        self.failed.move_to_end(key_hash)
        if len(self.failed) > self.capacity:
            self.failed.popitem(last=False)

    def succeed(self, key_hash: bytes) -> None:
        if key_hash in self.good:
            return
        self.good[key_hash] = None
        if len(self.good) > self.capacity:
            self.good.popitem(last=False)
