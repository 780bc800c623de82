"""Finding the Chromium the browser tests drive: a missing one is an error that says how to
install it, never a reason to skip."""

import pytest

from tests.support.browser import BrowserMissing, NetworkGuard, chromium_executable, launch_args

INSTALLED = {"chromium-browser": "/usr/bin/chromium-browser", "/opt/c/chrome": "/opt/c/chrome"}


def which(name: str) -> str | None:
    return INSTALLED.get(name)


def test_nps_chromium_names_the_executable() -> None:
    assert chromium_executable({"NPS_CHROMIUM": "/opt/c/chrome"}, which) == "/opt/c/chrome"


def test_without_nps_chromium_the_path_is_searched() -> None:
    assert chromium_executable({}, which) == "/usr/bin/chromium-browser"


def test_an_nps_chromium_that_is_not_there_says_how_to_install() -> None:
    with pytest.raises(BrowserMissing, match=r"NPS_CHROMIUM='/nowhere'.*apt-get install"):
        chromium_executable({"NPS_CHROMIUM": "/nowhere"}, which)


def test_no_chromium_anywhere_says_how_to_install() -> None:
    with pytest.raises(BrowserMissing, match=r"no chromium on PATH.*apt-get install.*NPS_CHROMIUM"):
        chromium_executable({}, lambda name: None)


def test_root_runs_chromium_without_its_sandbox() -> None:
    assert "--no-sandbox" in launch_args(root=True)
    assert "--no-sandbox" not in launch_args(root=False)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8123/docs", True),
        ("ws://127.0.0.1:8123/live", True),
        ("data:image/png;base64,AAAA", True),
        ("http://127.0.0.1:8124/docs", False),
        ("http://localhost:8123/docs", False),
        ("https://127.0.0.1:8123/docs", False),
        ("https://cdn.example/logo.svg", False),
    ],
)
def test_the_guard_allows_only_the_servers_origin(url: str, allowed: bool) -> None:
    assert NetworkGuard("http://127.0.0.1:8123").allows(url) is allowed
