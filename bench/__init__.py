"""`make bench`: the NPS service loaded and timed through its API, against the hardware's floor.

`bench.run` is the entry point (argument parsing and the order of the run); `bench.service` starts
the service as in production, and the floor server (`bench.floor_app`, a bare ASGI app doing one
asyncpg INSERT per request); `bench.memory` samples their memory and `bench.cpu` the CPU a request
costs; `bench.data` generates the seeded workspace, `bench.load` sends it through the API with the
lean client of `bench.client`, `bench.collect` issues invitations and answers them through the
public calls; `bench.queries` times the dashboard queries and checks their answers against
`bench.floors` (plain asyncpg); `bench.webhooks` has the worker deliver to a local HTTPS receiver
(`bench.receiver`, run by `bench.webhook_rig` with the worker); `bench.report` holds the
statistics and prints and writes the results, `bench.targets` the one table of targets.
"""

import sys


class BenchError(Exception):
    """The run cannot go on, or its figures would be wrong: stop and say why."""


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
