"""Several web processes for `nps serve`, each listening on a socket of its own.

uvicorn's `--workers` shares one listening socket: the process that wakes first accepts a whole
burst of connections, and keep-alive clients stay where they landed (32 clients connecting at
once split 26/6 between two workers, so one core served most of the load and the other idled).
Here each process gets its own socket bound with SO_REUSEPORT, and the kernel spreads new
connections across them by their addresses. uvicorn still serves each process
(`uvicorn.Server.run` with the socket handed to it); this supervisor only binds the sockets,
starts one process per socket, replaces one that dies, and on SIGTERM or SIGINT passes the
signal on, waits for every process to drain and exits 0.

The supervisor imports no part of the app (its memory stays that of a bare interpreter); each
process is `python -m app.serving child FD ...`, which imports uvicorn and builds the app.
"""

import json
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

_log = logging.getLogger("nps.serving")
POLL_SECONDS = 0.5
STOP_SECONDS = 60.0  # how long the processes may drain before they are killed


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets listening on host:port, each with SO_REUSEPORT (Linux's load spreading)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sockets = []
    for _ in range(count):
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


class Supervisor:
    def __init__(self, sockets: Sequence[socket.socket], options: dict[str, object]) -> None:
        self.sockets = list(sockets)
        self.options = options
        self.processes: list[subprocess.Popen[bytes]] = []
        self.stopping: int | None = None

    def _start(self, sock: socket.socket) -> subprocess.Popen[bytes]:
        fd = sock.fileno()
        command = [sys.executable, "-m", "app.serving", "child", str(fd), json.dumps(self.options)]
        return subprocess.Popen(command, pass_fds=(fd,))

    def _signalled(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = signum

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._signalled)
        self.processes = [self._start(sock) for sock in self.sockets]
        while self.stopping is None:
            time.sleep(POLL_SECONDS)
            for index, process in enumerate(self.processes):
                if self.stopping is None and process.poll() is not None:
                    _log.warning(
                        "web process %s exited (%s); starting another",
                        process.pid,
                        process.returncode,
                    )
                    self.processes[index] = self._start(self.sockets[index])
        return self._stop()

    def _stop(self) -> int:
        # Always SIGTERM: a Ctrl-C at a terminal reached the processes already, and a second
        # SIGINT would make uvicorn skip draining.
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        codes = []
        for process in self.processes:
            try:
                codes.append(process.wait(timeout=max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        # A process still starting when the signal came ends by it: stopped as asked, too.
        return 0 if all(code in (0, -signal.SIGTERM) for code in codes) else 1


def _child(fd: int, options: dict[str, object]) -> int:
    import uvicorn

    from app.uvicorn_exec import exit_zero_when_stopped

    exit_zero_when_stopped(signal.SIGTERM, signal.SIGINT)
    config = uvicorn.Config("app.main:serve_app", factory=True, **options)  # type: ignore[arg-type]
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd)])
    return 0


def main(argv: Sequence[str]) -> int:
    """`parent HOST PORT WORKERS OPTIONS` or `child FD OPTIONS` (OPTIONS: uvicorn.Config keywords
    as JSON)."""
    if argv[0] == "child":
        return _child(int(argv[1]), json.loads(argv[2]))
    _, host, port, workers, options = argv
    logging.basicConfig(format="%(levelname)s:     %(message)s")
    sockets = listening_sockets(host, int(port), int(workers))
    return Supervisor(sockets, json.loads(options)).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
