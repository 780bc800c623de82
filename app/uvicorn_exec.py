"""What `nps serve` execs into when it has nothing to host beside the web server: uvicorn, with
SIGTERM ending the process with status 0 once uvicorn has drained.

uvicorn re-raises the signal it stopped on after its graceful shutdown, so a bare `python -m
uvicorn` exits by signal 15, which supervisors (systemd, Kubernetes, Docker's restart policies)
read as a crash. Only the standard library and uvicorn are imported here: the exec is there so
that the supervisor of the workers does not keep the app's imports."""

import signal
import sys

import uvicorn


def exit_zero_when_stopped(*signums: int) -> None:
    """uvicorn restores the handlers it found before re-raising the signal it stopped on, so
    the re-raise lands here and the process exits 0."""
    for signum in signums or (signal.SIGTERM,):
        signal.signal(signum, lambda *_: sys.exit(0))


def main(argv: list[str]) -> None:
    exit_zero_when_stopped()
    uvicorn.main.main(args=argv, prog_name="uvicorn")


if __name__ == "__main__":
    main(sys.argv[1:])
