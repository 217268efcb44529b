"""Browser tests: Debian's headless Chromium, driven by the `playwright` package (never a
Playwright browser download), against a real `whoosh up` on loopback.

Every request any page makes is recorded (and any to another host refused), so the tests
can show that nothing leaves the machine. Screenshots of the main pages go to
tests/browser/output/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cli.whoosh_processes import WhooshEnv, make_installation

CHROMIUM = os.environ.get("WHOOSH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
OUTPUT = Path(__file__).resolve().parent / "output"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

CONFIG = """\
cluster:
  name: "browser-test"
agents:
  counter:
    type: cli
    command: ["sh", "-c", "cat >/dev/null; for i in $(seq 1 8); do echo line $i; sleep 0.4; done"]
    capabilities: [count]
    max_concurrent: 4
  sleeper:
    type: cli
    command: ["sh", "-c", "cat >/dev/null; echo started; sleep 60; echo never"]
    capabilities: [sleep]
    max_concurrent: 4
  flood:
    type: cli
    command: ["sh", "-c", "cat >/dev/null; seq 1 50000"]
    capabilities: [flood]
  quick:
    type: cli
    command: ["sh", "-c", "echo \\"quick got: $(cat)\\""]
    capabilities: [quick]
    max_concurrent: 4
"""


@dataclass
class Stack:
    env: WhooshEnv
    url: str
    admin_key: str
    keys: dict[str, str] = field(default_factory=dict)

    def key(self, role: str) -> str:
        """A key of this role, created once per stack with the CLI."""
        if role not in self.keys:
            made = self.env.run("key", "create", f"browser {role}", "--role", role, "--json")
            assert made.returncode == 0, made.stderr
            self.keys[role] = json.loads(made.stdout)["key"]
        return self.keys[role]

    def api(self, path: str) -> dict:
        import httpx

        answer = httpx.get(
            f"{self.url}/api/v1{path}",
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    installation = make_installation(tmp_path_factory.mktemp("whoosh-ui"), CONFIG)
    try:
        installation.up()
        key = (installation.data_dir / "admin.key").read_text().strip()
        yield Stack(installation, f"http://127.0.0.1:{installation.gateway_port}", key)
    finally:
        for up in installation.started:
            up.cleanup()


@dataclass
class Requests:
    """Every request the browser made; what went to another host was refused."""

    hosts: set[str] = field(default_factory=set)
    elsewhere: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} missing: scripts/ensure_chromium.sh installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def requests_seen() -> Requests:
    return Requests()


@pytest.fixture
def new_context(browser, requests_seen: Requests):  # type: ignore[no-untyped-def]
    """Fresh browser contexts (separate cookie jars) that refuse non-loopback requests."""
    contexts = []

    def make():  # type: ignore[no-untyped-def]
        context = browser.new_context(viewport={"width": 1280, "height": 900})

        def guard(route):  # type: ignore[no-untyped-def]
            host = urlsplit(route.request.url).hostname or ""
            requests_seen.hosts.add(host)
            if host not in LOOPBACK and not route.request.url.startswith(("data:", "blob:")):
                requests_seen.elsewhere.append(route.request.url)
                route.abort()
                return
            route.continue_()

        context.route("**/*", guard)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str, full_page: bool = True) -> None:  # type: ignore[no-untyped-def]
    """For people to look at. `full_page=False` for very tall pages: rendering thousands
    of lines into one image can outlast the timeout on a loaded machine."""
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=full_page)


def sign_in(context, stack: Stack, key: str):  # type: ignore[no-untyped-def]
    page = context.new_page()
    page.goto(f"{stack.url}/ui/")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.url}/ui/")
    return page
