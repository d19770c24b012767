"""Real-browser support: the service in a thread of its own, a headless Chromium, the JSON
API over urllib, and screenshots kept as artifacts.

Selenium is synchronous, so the service runs on an event loop in another thread; the test
thread drives the browser and calls the API with blocking I/O of its own (it has no loop).
Coroutines that seed the store or ClickHouse run on the server's loop (``Served.call``).
Chromium and chromedriver are Debian's (``make browser``): Selenium Manager never runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from promptline.commands.migrate import run_migrations
from promptline.devstack.services import free_port
from promptline.server import create_app
from promptline.settings import Settings
from tests.ui.support import Seeded, make_project

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
WAIT_SECONDS = 20.0
"""A bound on waiting for a page or the server, not a timing check."""
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--window-size=1280,1000",
)
INSTALL_HINT = "sudo apt-get install chromium chromium-driver (or `make browser` as root)"


class Served:
    """An event loop in a daemon thread, serving aiohttp apps on loopback ports."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.runners: list[web.AppRunner] = []
        self.thread = threading.Thread(target=self._run, name="served-apps", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()

    def call(self, work: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        """Run ``work`` on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def serve(self, app: web.Application, host: str = LOOPBACK, port: int | None = None) -> str:
        """Serve ``app`` on ``host`` (a free port unless given); its base URL."""
        chosen = port or free_port()

        async def start() -> None:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            self.runners.append(runner)
            await web.TCPSite(runner, host, chosen).start()

        self.call(start())
        return f"http://{host}:{chosen}"

    def close(self) -> None:
        """Clean every app up on its loop, then stop the loop and its thread."""
        try:
            for runner in reversed(self.runners):
                self.call(runner.cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(WAIT_SECONDS)


class Dashboard:
    """The whole service (API and pages) on a loopback port, with its settings."""

    def __init__(self, served: Served, settings: Settings, url: str) -> None:
        self.served = served
        self.settings = settings
        self.url = url

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine (seeding, storing) on the service's loop."""
        return self.served.call(work)

    def project(self) -> Seeded:
        """A new project with its keys (``make_project``), once the service knows its keys:
        the catalog of keys reloads a moment after the store changes."""
        seeded = self.call(make_project(self.settings))

        def known() -> bool:
            try:
                self.api(seeded.read_key, "GET", "/v1/prompts")
                self.api(seeded.deploy_key, "GET", "/v1/prompts")
            except AssertionError:
                return False
            return True

        eventually(known, "the service to know the new keys")
        return seeded

    def api(self, key: str, method: str, path: str, body: Any = None) -> Any:
        """The JSON API with a key: the answer's body (2xx asserted)."""
        return api_call(self.url, key, method, path, body)


@contextmanager
def served_dashboard(settings: Settings) -> Iterator[Dashboard]:
    """The service of ``settings``, migrated, in a thread; answering ``/healthz`` on return."""
    served = Served()
    try:
        served.call(run_migrations(settings))
        url = served.serve(create_app(settings), LOOPBACK, settings.listen_port)
        wait_healthy(url)
        yield Dashboard(served, settings, url)
    finally:
        served.close()


def wait_healthy(url: str) -> None:
    """Wait (bounded) until ``url/healthz`` answers 200."""

    def healthy(_: object) -> bool:
        with suppress(OSError), urllib.request.urlopen(url + "/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
        return False

    eventually(lambda: healthy(None), f"{url}/healthz to answer")


def eventually(check: Callable[[], bool], what: str, every: float = 0.05) -> None:
    """Poll ``check`` until it holds, for ``WAIT_SECONDS`` at most (a bound, not a check)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(every)


def api_call(base: str, key: str, method: str, path: str, body: Any = None) -> Any:
    """One JSON API call with urllib; its decoded body (2xx asserted)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {key}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read()
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from error
    return json.loads(text) if text else None


def chromium() -> WebDriver:
    """Debian's headless Chromium through Debian's chromedriver; never a download."""
    os.environ.setdefault("SE_OFFLINE", "true")
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        raise RuntimeError(f"chromium and chromedriver must be on PATH: {INSTALL_HINT}")
    options = Options()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def artifacts() -> Path:
    """Where screenshots go: ``$PROMPTLINE_ARTIFACTS/screenshots`` (git-ignored default)."""
    root = Path(os.environ.get("PROMPTLINE_ARTIFACTS") or ".promptline/artifacts")
    folder = root / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(driver: WebDriver, test: str, step: str) -> Path:
    """Save what the browser shows as ``<test>-<step>.png``; its path."""
    name = "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", part).strip("_") for part in (test, step))
    path = artifacts() / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot saved at {path}"
    return path


def full_page_screenshot(driver: WebDriver, path: Path, width: int = 1280) -> None:
    """The whole page, ``width`` CSS pixels wide and as tall as its content."""

    def emulate(height: int) -> None:
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)

    emulate(1000)  # the layout at this width first, then as tall as it is
    emulate(int(driver.execute_script("return document.documentElement.scrollHeight")))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        assert driver.save_screenshot(str(path)), f"no screenshot saved at {path}"
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def wait_for(driver: WebDriver, css: str) -> WebElement:
    """The element ``css`` selects, once the page shows it (bounded wait)."""
    found: WebElement = WebDriverWait(driver, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )
    return found


def sign_in(driver: WebDriver, base: str, key: str) -> None:
    """Sign in through the form; returns on the page it leads to."""
    driver.get(base + "/ui/sign-in")
    wait_for(driver, "#key").send_keys(key)
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: "/ui/sign-in" not in d.current_url or d.find_elements(By.ID, "error")
    )


GONE_FROM_THE_DOCUMENT = "does not belong to the document"
"""How Chromium sometimes says an element is stale while its page is being replaced: an
inspector error, not selenium's ``StaleElementReferenceException``."""


def replaced(old: WebElement) -> Callable[[WebDriver], bool]:
    """``expected_conditions.staleness_of``, also taking Chromium's inspector error for an
    element no longer in the document as stale (the page it was on is gone)."""

    def gone(_driver: WebDriver) -> bool:
        try:
            old.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if GONE_FROM_THE_DOCUMENT in (error.msg or ""):
                return True
            raise
        return False

    return gone


def submit_and_wait(driver: WebDriver, button: str, then: str) -> WebElement:
    """Click ``button`` (an id) and wait for the next page's element ``then``."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, button).click()
    WebDriverWait(driver, WAIT_SECONDS).until(replaced(old))
    return wait_for(driver, then)
