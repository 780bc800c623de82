"""`make bench`: the NPS service loaded and timed through its API, against the hardware's floor.

`bench.run` is the entry point (argument parsing and the order of the run); `bench.service` starts
the service as in production and samples its memory; `bench.data` generates the seeded workspace,
`bench.load` sends it through the API; `bench.queries` times the dashboard queries and checks their
answers against `bench.floors` (plain asyncpg); `bench.report` holds the statistics, the table of
targets, and prints and writes the results.
"""

import sys


class BenchError(Exception):
    """The run cannot go on, or its figures would be wrong: stop and say why."""


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
