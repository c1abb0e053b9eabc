"""Clients of the webmail in tests: httpx sessions that log in and post forms as a browser
does, mail delivered through the MX, and a Playwright fixture driving Debian's Chromium."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI
from tests.integration.mailserver import PASSWORD, RunningServer, mx

CHROMIUM = Path("/usr/bin/chromium")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def base_url(server: RunningServer) -> str:
    return f"http://127.0.0.1:{server.port('web')}"


_OPEN: list[httpx.Client] = []


def web(server: RunningServer) -> httpx.Client:
    """A cookie-keeping client that sends the Origin header browsers send (closed after
    the test by the ``closing_clients`` fixture)."""
    url = base_url(server)
    client = httpx.Client(base_url=url, headers={"Origin": url}, timeout=30)
    _OPEN.append(client)
    return client


@pytest.fixture
def closing_clients() -> Iterator[None]:
    """Closes every client ``web`` and ``login`` opened during the test."""
    try:
        yield
    finally:
        while _OPEN:
            _OPEN.pop().close()


def login(server: RunningServer, address: str, password: str = PASSWORD) -> httpx.Client:
    """A client signed in as ``address`` (the login must not owe a step)."""
    client = web(server)
    reply = client.post("/login", data={"login": address, "password": password})
    assert reply.status_code == 303, reply.text
    assert reply.headers["location"] == "/", reply.headers["location"]
    return client


def csrf_of(client: httpx.Client, path: str = "/") -> str:
    """The CSRF token on a page of this session."""
    found = _CSRF.search(client.get(path).text)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


def post(client: httpx.Client, path: str, data: dict[str, object] | None = None) -> httpx.Response:
    """A form post with the session's CSRF token."""
    return client.post(path, data={"csrf": csrf_of(client), **(data or {})})


def deliver(
    server: RunningServer,
    message: EmailMessage,
    to: str,
    sender: str = "ngoai@example.org",
) -> None:
    """Hand ``message`` to the MX as an outside mail server would."""
    with mx(server) as client:
        refused = client.send_message(message, from_addr=sender, to_addrs=[to])
    assert refused == {}


def simple_message(
    subject: str, text: str = "Nội dung.", sender: str = "ngoai@example.org"
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Người ngoài <{sender}>"
    message["To"] = "nvan@khanhhoa.gov.vn"
    message["Subject"] = subject
    message.set_content(text)
    return message


def deliver_many(server: RunningServer, messages: list[EmailMessage], to: str) -> None:
    """Several messages over one MX session."""
    client = mx(server)
    try:
        for message in messages:
            assert client.send_message(message, from_addr="ngoai@example.org", to_addrs=[to]) == {}
    finally:
        client.quit()


def message_links(page: str) -> list[str]:
    """The links to messages on a list page, in order (each appears twice per row)."""
    links = re.findall(r'href="(/folder/\d+/\d+)"', page)
    return list(dict.fromkeys(links))


def _chromium_unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed"
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        return f"Debian's Chromium is not installed at {CHROMIUM}"
    return None


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[object]:
    """A Playwright page in headless Debian Chromium (never a downloaded browser).
    Skips when Chromium or Playwright is missing locally; fails under CI=true."""
    reason = _chromium_unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: browser tests must run)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    executable = str(CHROMIUM) if CHROMIUM.exists() else str(shutil.which("chromium"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            context = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 800})
            page = context.new_page()
            yield page
            context.close()
        finally:
            browser.close()


def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: test-artifacts/webmail (gitignored by CI's runner) when the
    directory exists or under CI, else the test's tmp dir."""
    root = Path(__file__).resolve().parents[2] / "test-artifacts"
    target = root / "webmail" if root.exists() or IN_CI else tmp_path / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    return target


__all__ = [
    "PASSWORD",
    "base_url",
    "browser_page",
    "closing_clients",
    "csrf_of",
    "deliver",
    "deliver_many",
    "login",
    "message_links",
    "post",
    "screenshot_dir",
    "simple_message",
    "web",
]
