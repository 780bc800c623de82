"""Real nginx in front of a real `nps serve`, running docs/deploy/nginx.conf with only its
addresses and file paths replaced. A missing nginx fails the tests with how to install it: they
are never skipped."""

import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "nginx.conf"
INSTALL = (
    "the proxy tests run Debian's nginx: `apt-get install --no-install-recommends nginx` "
    "(`.ci/run` does it when it is missing)"
)


class NginxMissing(Exception):
    """No nginx to run the proxy tests with; the message says how to get one."""


def nginx_executable() -> str:
    """`nginx` on PATH, else Debian's /usr/sbin/nginx (not on a normal user's PATH)."""
    found = shutil.which("nginx") or shutil.which("/usr/sbin/nginx")
    if found is None:
        raise NginxMissing(f"no nginx on PATH or at /usr/sbin/nginx: {INSTALL}")
    return found


def templated(text: str, *, listen: int, upstream: int, directory: Path) -> str:
    """The shipped configuration, listening on 127.0.0.1:`listen`, proxying to the service on
    `upstream`, its pid, logs and temporary files under `directory`. Each replaced text must be
    there, so the test keeps testing the file as shipped."""
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{listen};",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream};",
        "/run/nginx-nps.pid": f"{directory}/nginx.pid",
        "/var/log/nginx/": f"{directory}/",
        "/var/lib/nginx/": f"{directory}/",
    }
    for old, new in replacements.items():
        if old not in text:
            raise AssertionError(f"docs/deploy/nginx.conf no longer has {old!r}")
        text = text.replace(old, new)
    return text


@contextmanager
def running_nginx(directory: Path, *, listen: int, upstream: int) -> Iterator[Path]:
    """nginx in the foreground with the templated configuration while the block runs; yields
    its error log."""
    binary = nginx_executable()
    config = directory / "nginx.conf"
    config.write_text(
        templated(CONFIG.read_text(), listen=listen, upstream=upstream, directory=directory)
    )
    error_log = directory / "error.log"
    command = [binary, "-p", str(directory), "-c", str(config), "-e", str(error_log)]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        raise AssertionError(f"nginx refused the configuration: {checked.stderr}")
    # As root nginx's workers run as `nobody`: let them write their temporary files.
    directory.chmod(0o777)
    process = subprocess.Popen([*command, "-g", "daemon off;"])
    try:
        yield error_log
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful: let the workers finish
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
