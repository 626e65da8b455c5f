"""What the browser test of the upload journey runs on: a real OpenID Connect provider
(node's oidc-provider, tests/oidc/provider.mjs), the service under gunicorn, a task worker,
and headless Chromium driven by Playwright, with axe-core checking each page.

Every process listens on 127.0.0.1 only; the browser is refused every other address (and
says which it was asked for), so a page that needs a CDN fails its test.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.api.servers import PROJECT_DIR, serving

CHROMIUM = Path("/usr/bin/chromium")
NODE_MODULES = PROJECT_DIR / "node_modules"
PROVIDER_SCRIPT = PROJECT_DIR / "tests" / "oidc" / "provider.mjs"
AXE_SCRIPT = NODE_MODULES / "axe-core" / "axe.min.js"
ARTIFACTS = PROJECT_DIR / "tests" / "artifacts"
CLIENT_ID = "data-store-service"
CLIENT_SECRET = "browser-test-client-secret"
ALLOWED_DOMAIN = "example.gov.uk"
START_TIMEOUT = 30


def require_browser_tools() -> None:
    """Skip (fail under CI=true) when Chromium, Node.js or the npm packages are missing."""
    missing = [
        what
        for what, present in (
            ("Chromium (apt-get install chromium)", CHROMIUM.exists()),
            ("Node.js", shutil.which("node") is not None),
            ("the npm packages (npm ci)", AXE_SCRIPT.exists()),
        )
        if not present
    ]
    if missing:
        message = f"the browser tests need {', '.join(missing)}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def oidc_provider(port: int, service_url: str, log: Path) -> Iterator[str]:
    """The provider on 127.0.0.1:``port``, knowing the service at ``service_url`` as its
    client (its login callback and its signed-out page); yields its issuer."""
    environment = {
        **os.environ,
        "OIDC_TEST_PORT": str(port),
        "OIDC_TEST_CLIENT_ID": CLIENT_ID,
        "OIDC_TEST_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_TEST_REDIRECT_URI": f"{service_url}/oidc/callback/",
        "OIDC_TEST_POST_LOGOUT_REDIRECT_URI": f"{service_url}/signed-out/",
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            ["node", str(PROVIDER_SCRIPT)],
            cwd=PROJECT_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while f"listening {issuer}" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the OpenID Connect provider did not start: {log.read_text()}")
            time.sleep(0.1)
        yield issuer
    finally:
        process.terminate()
        process.wait(timeout=10)


def oidc_settings(issuer: str) -> dict[str, str]:
    """The service's OIDC_* variables for the provider at ``issuer``."""
    return {
        "OIDC_RP_CLIENT_ID": CLIENT_ID,
        "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{issuer}/auth",
        "OIDC_OP_TOKEN_ENDPOINT": f"{issuer}/token",
        "OIDC_OP_USER_ENDPOINT": f"{issuer}/me",
        "OIDC_OP_JWKS_ENDPOINT": f"{issuer}/jwks",
        "OIDC_OP_LOGOUT_ENDPOINT": f"{issuer}/session/end",
        "OIDC_ALLOWED_EMAIL_DOMAINS": ALLOWED_DOMAIN,
    }


@contextmanager
def service(environment: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """gunicorn serving the service on 127.0.0.1:``port``; yields its base URL."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        "4",
        "dss.wsgi",
    ]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    with serving(process, f"http://127.0.0.1:{port}", log) as base_url:
        yield base_url


@contextmanager
def task_worker(environment: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """``manage.py db_worker``, running until the block ends."""
    command = [
        sys.executable,
        "manage.py",
        "db_worker",
        "--no-startup-delay",
        "--no-reload",
        "--interval",
        "0.2",
    ]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Network:
    """The browser's one route handler (``context.route("**/*", network.handle)``): it lets
    through 127.0.0.1 only, noting in ``blocked`` each request it refuses and the page that
    made it. While ``held_progress`` is set, the progress endpoint answers it instead of the
    service (so that a page that moves on by itself can be checked first)."""

    PROGRESS = re.compile(r"/upload/progress/[0-9a-f-]+/$")

    def __init__(self) -> None:
        self.blocked: list[tuple[str, str]] = []
        self.held_progress: dict | None = None

    def handle(self, route) -> None:
        url = route.request.url
        if urlsplit(url).hostname != "127.0.0.1":
            self.blocked.append((url, route.request.frame.url))
            route.abort()
        elif self.held_progress is not None and self.PROGRESS.search(urlsplit(url).path):
            route.fulfill(json=self.held_progress)
        else:
            route.continue_()


def axe_violations(page) -> list[dict]:
    """axe-core's violations on ``page`` (every rule it runs by default), each with the
    rule, its impact and the elements."""
    page.add_script_tag(path=str(AXE_SCRIPT))
    result = page.evaluate("async () => await axe.run(document)")
    return [
        {
            "rule": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [node["target"] for node in violation["nodes"]][:5],
        }
        for violation in result["violations"]
    ]


def text_lines(locator) -> list[str]:
    """The text of ``locator``'s element as the browser lays it out, one string per line
    (split where a character starts below the one before it)."""
    return locator.evaluate(
        """element => {
            const lines = [];
            let top = null;
            const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                for (let i = 0; i < node.length; i++) {
                    const range = document.createRange();
                    range.setStart(node, i);
                    range.setEnd(node, i + 1);
                    const rect = range.getBoundingClientRect();
                    if (top === null || rect.top > top + rect.height / 2) {
                        lines.push("");
                        top = rect.top;
                    }
                    lines[lines.length - 1] += node.data[i];
                }
            }
            return lines;
        }"""
    )


def page_overflows(page) -> bool:
    """Whether the page is wider than the window (it scrolls sideways as a whole)."""
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


class Pages:
    """Screenshots and accessibility checks of each page the journey shows."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        self.shots: list[str] = []

    def check(self, page, name: str, accessible: bool = True) -> None:
        """Save a full-page screenshot as ``<n>-<name>.png``; with ``accessible``, assert
        that axe-core finds no violation."""
        page.wait_for_load_state("load")
        file_name = f"{len(self.shots) + 1:02d}-{name}.png"
        page.screenshot(path=str(self.folder / file_name), full_page=True)
        self.shots.append(file_name)
        if accessible:
            violations = axe_violations(page)
            assert not violations, f"{name} ({page.url}): {json.dumps(violations, indent=1)}"


def wait_until_alone_in_the_database(timeout: float = 15) -> None:
    """Wait until the processes the test started have left the test database (a stopped
    process's session can outlive it by a moment), so that it can be dropped."""
    from django.db import connection

    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)
