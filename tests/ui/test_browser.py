"""The dashboard in a real headless Chromium: signing in, reading, diffing, comparing,
deploying, rolling back, stopping a guard, and refusing what another site or a prompt's
own text tries to do. Every test keeps screenshots of its key moments as artifacts."""

from __future__ import annotations

import random
import statistics
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from compare.window import floor_hour
from controlplane.rollouts import lifecycle
from promptline.commands.admin import transaction
from promptline.devstack.services import free_port
from promptline.settings import Settings
from schemas.records import RecordBase
from tests.compare.support import quantile_bounds, store
from tests.support.services import Endpoints
from tests.ui.browser import (
    WAIT_SECONDS,
    Dashboard,
    chromium,
    eventually,
    replaced,
    screenshot,
    served_dashboard,
    sign_in,
    submit_and_wait,
    wait_for,
)
from tests.ui.support import Seeded
from tests.workers.helpers import Tenant, analytics, signal

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.clickhouse]

USERS = 1000


@pytest.fixture(scope="module")
def dashboard(services: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The service, migrated, in a thread of its own for the whole module."""
    tag = uuid.uuid4().hex[:12]
    folder = tmp_path_factory.mktemp("browser")
    settings = Settings(
        kafka_bootstrap_servers=services.kafka_bootstrap,
        kafka_topic_prefix=f"test-{tag}.",
        kafka_enable_idempotence=services.idempotent_producer,
        kafka_topic_partitions=3,
        kafka_consumer_group=f"test-{tag}",
        clickhouse_url=services.clickhouse_url,
        clickhouse_database=f"test_{tag}",
        database_url=f"sqlite+aiosqlite:///{folder / 'control.db'}",
        listen_port=free_port(),
        worker_http_port=0,
        log_format="text",
        state_dir=folder / "state",
        # Every test signs in from 127.0.0.1: the per-address limit is not what is tested here.
        ui_sign_in_limit="1000/minute",
    )
    with served_dashboard(settings) as served:
        yield served


@pytest.fixture
def seeded(dashboard: Dashboard) -> Seeded:
    """A project of its own for each test, with a deploy key and a read-only key."""
    return dashboard.project()


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    """A fresh headless Chromium for each test (no cookies carried over)."""
    browser = chromium()
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def shot(driver: WebDriver, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``shot(step)`` saves a screenshot named after the test (at least one per test)."""
    taken: list[Path] = []

    def take(step: str) -> Path:
        path = screenshot(driver, request.node.name, step)
        taken.append(path)
        return path

    yield take
    assert taken, "every browser test keeps at least one screenshot"


@dataclass(frozen=True)
class Prompt:
    """A prompt made through the API: its public id, UUID, name and version hashes."""

    id: str
    uuid: uuid.UUID
    name: str
    hashes: dict[int, str]


def make_prompt(
    dashboard: Dashboard,
    key: str,
    name: str,
    contents: list[str],
    *,
    description: str = "",
    messages: list[str] | None = None,
) -> Prompt:
    created = dashboard.api(key, "POST", "/v1/prompts", {"name": name, "description": description})
    hashes = {}
    for number, content in enumerate(contents, start=1):
        message = messages[number - 1] if messages else f"version {number}"
        version = dashboard.api(
            key,
            "POST",
            f"/v1/prompts/{created['id']}/versions",
            {"content": content, "message": message},
        )
        hashes[number] = version["content_hash"]
    return Prompt(created["id"], uuid.UUID(created["prompt_uuid"]), name, hashes)


def deploy(dashboard: Dashboard, key: str, prompt: Prompt, split: dict[int, int]) -> Any:
    traffic = [{"version": f"v{number}", "weight": weight} for number, weight in split.items()]
    return dashboard.api(key, "POST", f"/v1/prompts/{prompt.id}/deploy", {"traffic": traffic})


def deployments(dashboard: Dashboard, key: str, prompt: Prompt) -> list[dict[str, Any]]:
    answer = dashboard.api(key, "GET", f"/v1/prompts/{prompt.id}/deployments")
    rows: list[dict[str, Any]] = answer["deployments"]
    assert answer["total"] == len(rows)
    return rows


def served_versions(dashboard: Dashboard, key: str, prompt: Prompt, deployment: str) -> list[str]:
    """The version resolve serves each of ``USERS`` users, once it serves ``deployment``."""

    def resolve(user: str) -> dict[str, Any]:
        answer: dict[str, Any] = dashboard.api(
            key, "POST", "/v1/resolve", {"prompt": prompt.id, "user_id": user}
        )
        return answer

    eventually(lambda: resolve("u0")["deployment_id"] == deployment, "resolve to follow")
    return [resolve(f"u{n}")["version"] for n in range(USERS)]


def chips(driver: WebDriver, css: str) -> list[str]:
    return [chip.text for chip in driver.find_elements(By.CSS_SELECTOR, f"{css} .chip")]


def test_signing_in_with_a_key_lands_on_the_prompts_and_search_narrows_them(
    dashboard: Dashboard, seeded: Seeded, driver: WebDriver, shot: Any
) -> None:
    make_prompt(dashboard, seeded.deploy_key, "support-bot", ["You help."], description="Tickets")
    make_prompt(dashboard, seeded.deploy_key, "summarizer", ["Summarize."])
    driver.get(dashboard.url + "/ui/prompts")
    wait_for(driver, "#key")  # no session: the page sends the browser to sign in
    assert "/ui/sign-in" in driver.current_url
    shot("sign-in")
    driver.find_element(By.ID, "key").send_keys(seeded.deploy_key)
    submit_and_wait(driver, "sign-in", "table#prompts")
    assert driver.current_url.endswith("/ui/prompts")
    rows = driver.find_elements(By.CSS_SELECTOR, "table#prompts tbody tr[data-prompt]")
    assert sorted(row.get_attribute("data-prompt") or "" for row in rows) == [
        "summarizer",
        "support-bot",
    ]
    shot("prompts")
    search = driver.find_element(By.ID, "q")
    search.send_keys("support")
    old = driver.find_element(By.TAG_NAME, "html")
    search.send_keys(Keys.ENTER)
    WebDriverWait(driver, WAIT_SECONDS).until(replaced(old))
    wait_for(driver, "table#prompts")
    assert "q=support" in driver.current_url
    rows = driver.find_elements(By.CSS_SELECTOR, "table#prompts tbody tr[data-prompt]")
    assert [row.get_attribute("data-prompt") for row in rows] == ["support-bot"]
    assert driver.find_element(By.ID, "q").get_attribute("value") == "support"
    shot("searched")


def test_a_wrong_key_is_refused_and_the_browser_stays_on_sign_in(
    dashboard: Dashboard, seeded: Seeded, driver: WebDriver, shot: Any
) -> None:
    sign_in(driver, dashboard.url, seeded.deploy_key + "x")
    error = wait_for(driver, "#error")
    assert "not valid" in error.text
    assert driver.find_elements(By.ID, "key"), "the sign-in form is shown again"
    assert not driver.find_elements(By.CSS_SELECTOR, "table#prompts")
    assert driver.get_cookie("promptline_ui") is None
    shot("refused")
    driver.get(dashboard.url + "/ui/prompts")
    wait_for(driver, "#key")
    assert "/ui/sign-in" in driver.current_url


def test_the_pages_work_by_keyboard_alone(
    dashboard: Dashboard, seeded: Seeded, driver: WebDriver, shot: Any
) -> None:
    prompt = make_prompt(dashboard, seeded.deploy_key, "by-keys", ["One.", "Two."])
    driver.get(dashboard.url + "/ui/prompts")
    key = wait_for(driver, "#key")
    assert driver.switch_to.active_element == key, "the key field has the focus"
    key.send_keys(seeded.deploy_key, Keys.ENTER)
    wait_for(driver, "table#prompts")

    def tab_to(css: str, most: int = 40) -> None:
        target = driver.find_element(By.CSS_SELECTOR, css)
        for _ in range(most):
            driver.switch_to.active_element.send_keys(Keys.TAB)
            if driver.switch_to.active_element == target:
                return
        raise AssertionError(f"{css} cannot be reached with the Tab key")

    tab_to("a.skip")
    tab_to('tr[data-prompt="by-keys"] a')
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: d.current_url.endswith(prompt.id))
    tab_to("#weight_2")
    field = driver.switch_to.active_element
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("100", Keys.ENTER)  # Enter submits the deploy form: the confirmation
    wait_for(driver, "#confirm")
    shot("confirm-by-keyboard")
    tab_to("#confirm")
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for(driver, "#done")
    history = dashboard.api(seeded.deploy_key, "GET", f"/v1/prompts/{prompt.id}/deployments")
    assert history["deployments"][0]["traffic"] == [{"version": "v2", "weight": 100}]


def test_a_prompt_shows_its_versions_timeline_and_split(
    dashboard: Dashboard, seeded: Seeded, driver: WebDriver, shot: Any
) -> None:
    prompt = make_prompt(dashboard, seeded.deploy_key, "greeter", ["Hello.", "Hello there."])
    deploy(dashboard, seeded.deploy_key, prompt, {1: 100})
    deploy(dashboard, seeded.deploy_key, prompt, {1: 70, 2: 30})
    sign_in(driver, dashboard.url, seeded.deploy_key)
    wait_for(driver, "table#prompts")
    driver.find_element(By.LINK_TEXT, "greeter").click()
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: d.current_url.endswith(prompt.id))
    assert wait_for(driver, "#prompt-name").text == "greeter"
    versions = driver.find_elements(By.CSS_SELECTOR, "table#versions tr[data-version]")
    assert [row.get_attribute("data-version") for row in versions] == ["2", "1"]
    entries = driver.find_elements(By.CSS_SELECTOR, "#timeline li")
    assert len(entries) == 2
    assert chips(driver, "#timeline li:first-child") == ["v1 70%", "v2 30%"]
    assert chips(driver, "#timeline li:last-child") == ["v1 100%"]
    split = driver.find_elements(By.CSS_SELECTOR, "#split li[data-version]")
    assert [
        (li.get_attribute("data-version"), li.get_attribute("data-weight")) for li in split
    ] == [
        ("1", "70"),
        ("2", "30"),
    ]
    shot("prompt")


def test_the_diff_of_two_versions_shows_the_changed_lines(
    dashboard: Dashboard, seeded: Seeded, driver: WebDriver, shot: Any
) -> None:
    first = "You are a support agent.\nBe brief.\nSign as Ana."
    second = "You are a support agent.\nBe brief and warm.\nSign as Ana."
    third = "Unrelated."
    prompt = make_prompt(dashboard, seeded.deploy_key, "agent", [first, second, third])
    sign_in(driver, dashboard.url, seeded.deploy_key)
    driver.get(f"{dashboard.url}/ui/prompts/{prompt.id}")
    wait_for(driver, "#diff-form")
    Select(driver.find_element(By.CSS_SELECTOR, "select#a")).select_by_value("1")
    Select(driver.find_element(By.CSS_SELECTOR, "select#b")).select_by_value("2")
    submit_and_wait(driver, "show-diff", "table#diff")
    added = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "table#diff tr.added")]
    removed = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "table#diff tr.removed")]
    assert len(added) == 1 and "Be brief and warm." in added[0]
    assert len(removed) == 1 and "Be brief." in removed[0] and "warm" not in removed[0]
    shot("diff")


def test_compare_draws_the_hourly_events_and_tables_the_figures_sent(
    dashboard: Dashboard, seeded: Seeded, driver: WebDriver, shot: Any
) -> None:
    prompt = make_prompt(dashboard, seeded.deploy_key, "checkout", ["Pay.", "Pay now, please."])
    tenant = Tenant(org_id=seeded.org_id, project_id=seeded.project_id)
    rng = random.Random(7)
    now_hour = floor_hour(datetime.now(UTC))
    counts = {1: {1: 12, 2: 9, 3: 15, 5: 4}, 2: {1: 3, 2: 6, 4: 2}}  # hours ago -> events
    positives = {1: (4, 10), 2: (6, 8)}  # (positive, total) signals per version
    latencies: dict[int, list[float]] = {1: [], 2: []}
    records: list[RecordBase] = []
    for number, by_hour in counts.items():
        for hours_ago, count in by_hour.items():
            for _ in range(count):
                at = now_hour - timedelta(hours=hours_ago, minutes=-rng.uniform(1, 50))
                latency = rng.uniform(200, 900)
                latencies[number].append(latency)
                records.append(
                    analytics(tenant, prompt.uuid, prompt.hashes[number], latency=latency, at=at)
                )
        good, total = positives[number]
        for n in range(total):
            at = now_hour - timedelta(hours=2, minutes=-rng.uniform(1, 50))
            value = "positive" if n < good else "negative"
            meta = {"version": f"v{number}"}
            records.append(signal(tenant, prompt.uuid, value, metadata=meta, at=at))  # type: ignore[arg-type]
    dashboard.call(store(dashboard.settings, records))

    sign_in(driver, dashboard.url, seeded.deploy_key)
    page = f"{dashboard.url}/ui/prompts/{prompt.id}/compare?window=day"

    def loaded() -> bool:  # the catalog may not have the new prompt yet: reload
        driver.get(page)
        return bool(driver.find_elements(By.ID, "compare-table"))

    eventually(loaded, "the compare page", every=0.25)
    shot("compare")
    charts = driver.find_elements(By.CSS_SELECTOR, 'svg.line-chart[data-metric="events"]')
    assert len(charts) == 1
    for number, by_hour in counts.items():
        series = charts[0].find_elements(By.CSS_SELECTOR, f'g.series[data-version="{number}"]')
        assert len(series) == 1
        drawn = {
            point.get_attribute("data-at"): float(point.get_attribute("data-value") or "nan")
            for point in series[0].find_elements(By.CSS_SELECTOR, "circle.point")
        }
        sent = {
            (now_hour - timedelta(hours=hours_ago)).isoformat(): float(count)
            for hours_ago, count in by_hour.items()
        }
        assert {at: value for at, value in drawn.items() if value} == sent
        row = f"#compare-table tr[data-version='{number}']:not(.versus)"

        def cell(metric: str, row: str = row) -> str:
            return str(driver.find_element(By.CSS_SELECTOR, f"{row} td[data-metric={metric}]").text)

        assert int(cell("events").replace(",", "")) == sum(by_hour.values())
        assert cell("exposures") == "0"
        low, high = quantile_bounds(latencies[number], 0.5)
        shown = float(cell("latency_p50").replace(",", ""))
        assert low - 0.5 <= shown <= high + 0.5, (shown, statistics.median(latencies[number]))
        good, total = positives[number]
        assert cell("positive_rate") == f"{100 * good / total:.1f}%"


def test_deploying_a_split_from_the_page_is_what_resolve_serves(
    dashboard: Dashboard, seeded: Seeded, driver: WebDriver, shot: Any
) -> None:
    prompt = make_prompt(dashboard, seeded.deploy_key, "canary", ["Old.", "New."])
    deploy(dashboard, seeded.deploy_key, prompt, {1: 100})
    sign_in(driver, dashboard.url, seeded.deploy_key)
    driver.get(f"{dashboard.url}/ui/prompts/{prompt.id}")
    for field, weight in (("weight_1", "90"), ("weight_2", "10")):
        box = wait_for(driver, f"#{field}")
        box.clear()
        box.send_keys(weight)
    driver.find_element(By.ID, "label").send_keys("canary v2")
    submit_and_wait(driver, "deploy", "#confirm")
    assert chips(driver, "#before") == ["v1 100%"]
    assert chips(driver, "#after") == ["v1 90%", "v2 10%"]
    assert len(deployments(dashboard, seeded.deploy_key, prompt)) == 1, "nothing written yet"
    shot("confirm")
    done = submit_and_wait(driver, "confirm", "#done")
    assert "Deployed" in done.text
    assert driver.current_url.split("?")[0].endswith(f"/ui/prompts/{prompt.id}")
    assert chips(driver, "#timeline li:first-child") == ["v1 90%", "v2 10%"]
    shot("deployed")
    history = deployments(dashboard, seeded.deploy_key, prompt)
    assert len(history) == 2
    latest = history[0]
    assert latest["label"] == "canary v2"
    assert [(item["version"], item["weight"]) for item in latest["traffic"]] == [
        ("v1", 90),
        ("v2", 10),
    ]
    served = served_versions(dashboard, seeded.deploy_key, prompt, latest["deployment_id"])
    share = served.count("v2") / len(served)
    assert 0.05 <= share <= 0.15, share
    assert served.count("v1") + served.count("v2") == len(served)


def test_rolling_back_from_the_page_restores_one_version_for_everyone(
    dashboard: Dashboard, seeded: Seeded, driver: WebDriver, shot: Any
) -> None:
    prompt = make_prompt(dashboard, seeded.deploy_key, "rollback", ["Stable.", "Risky."])
    deploy(dashboard, seeded.deploy_key, prompt, {1: 100})
    deploy(dashboard, seeded.deploy_key, prompt, {1: 50, 2: 50})
    sign_in(driver, dashboard.url, seeded.deploy_key)
    driver.get(f"{dashboard.url}/ui/prompts/{prompt.id}")
    submit_and_wait(driver, "rollback", "#confirm")
    assert chips(driver, "#before") == ["v1 50%", "v2 50%"]
    assert chips(driver, "#after") == ["v1 100%"]
    shot("confirm")
    done = submit_and_wait(driver, "confirm", "#done")
    assert "Rolled back" in done.text
    assert wait_for(driver, "#timeline li:first-child").get_attribute("data-kind") == "rollback"
    shot("rolled-back")
    history = deployments(dashboard, seeded.deploy_key, prompt)
    assert len(history) == 3
    assert history[0]["rolled_back_to"] is not None
    served = served_versions(dashboard, seeded.deploy_key, prompt, history[0]["deployment_id"])
    assert set(served) == {"v1"}


GUARD_REPORT: dict[str, Any] = {
    "step": 1,
    "steps": 3,
    "percent": 20,
    "time_in_step_seconds": 95,
    "evaluated_at": "2026-01-10T09:01:35Z",
    "units": {"candidate": 37, "baseline": 148},
    "guardrails": [
        {
            "metric": "latency_ms",
            "direction": "lower_is_better",
            "margin": 0.05,
            "relative": True,
            "limit": 0.05,
            "verdict": "not_enough_data",
            "estimate": 0.021,
            "interval": {"lower": -0.18, "upper": None},
            "alpha": 0.05,
            "candidate": {"count": 37, "mean": 412.0},
            "baseline": {"count": 148, "mean": 403.5},
        }
    ],
    "sample_ratio": {
        "test": "sequential Dirichlet-multinomial (always valid)",
        "versions": ["v1", "v2"],
        "units": [148, 37],
        "weights": [80, 20],
        "p_value": 0.93,
        "threshold": 0.001,
        "mismatch": False,
    },
    "decision": {"action": "hold", "reason": "waiting: 37 of 50 candidate units seen"},
}
"""A look of the guard at a rollout, in the shape ``guard.decide`` reports it."""


async def note_report(settings: Settings, prompt: uuid.UUID, report: dict[str, Any]) -> None:
    """Keep ``report`` as the guard's latest look at the prompt's running rollout."""
    async with transaction(settings) as session:
        rollout = await lifecycle.latest_rollout(session, prompt)
        assert rollout is not None
        await lifecycle.note(session, rollout.id, report)


def test_a_guarded_rollout_is_watched_and_stopped_from_its_page(
    dashboard: Dashboard, seeded: Seeded, driver: WebDriver, shot: Any
) -> None:
    prompt = make_prompt(dashboard, seeded.deploy_key, "guarded", ["Base.", "Candidate."])
    deploy(dashboard, seeded.deploy_key, prompt, {1: 100})
    guard = {
        "candidate": "v2",
        "ramp": [20, 50, 100],
        "min_units": 50,
        "min_events": 50,
        "min_step_seconds": 600,
        "guardrails": [{"metric": "latency_ms", "margin": 0.05}],
    }
    dashboard.api(seeded.deploy_key, "POST", f"/v1/prompts/{prompt.id}/deploy", {"guard": guard})
    sign_in(driver, dashboard.url, seeded.deploy_key)
    page = f"{dashboard.url}/ui/prompts/{prompt.id}/rollout"
    driver.get(page)
    rollout = wait_for(driver, "#rollout")
    assert rollout.get_attribute("data-status") == "running"
    step = driver.find_element(By.ID, "rollout-step").text
    assert step.startswith("1 of 3") and "20%" in step and "v2" in step, step
    assert driver.find_element(By.ID, "rollout-next").text == "the guard has not looked at it yet"
    assert not driver.find_elements(By.CSS_SELECTOR, "table#guardrails")
    shot("running")
    dashboard.call(note_report(dashboard.settings, prompt.uuid, GUARD_REPORT))
    driver.get(page)
    row = wait_for(driver, 'table#guardrails tr[data-metric="latency_ms"]')
    assert row.get_attribute("data-verdict") == "not_enough_data"
    assert "not enough data" in row.text and "37" in row.text and "148" in row.text
    assert len(driver.find_elements(By.CSS_SELECTOR, "table#guardrails tr[data-metric]")) == 1
    ratio = driver.find_element(By.ID, "sample-ratio")
    assert ratio.get_attribute("data-mismatch") == "false" and "no mismatch" in ratio.text
    assert driver.find_element(By.ID, "rollout-next").text == GUARD_REPORT["decision"]["reason"]
    shot("evaluated")
    submit_and_wait(driver, "stop", "#confirm")
    assert chips(driver, "#before") == chips(driver, "#after") == ["v1 80%", "v2 20%"]
    shot("confirm")
    done = submit_and_wait(driver, "confirm", "#done")
    assert "stopped" in done.text
    assert driver.find_element(By.ID, "rollout").get_attribute("data-status") == "stopped"
    assert driver.find_element(By.ID, "rollout-status").text == "stopped"
    assert not driver.find_elements(By.ID, "stop")
    shot("stopped")
    answer = dashboard.api(seeded.deploy_key, "GET", f"/v1/prompts/{prompt.id}/rollout")
    assert answer["status"] == "stopped"


ATTACKER_PAGE = """<!doctype html><html><body>
<form id="evil" method="post" action="{target}">
<input type="hidden" name="weight_2" value="100"><input type="hidden" name="confirm" value="yes">
<button type="submit" id="go">Win a prize</button></form>
<script>document.getElementById("evil").submit()</script>
</body></html>"""


@pytest.mark.parametrize(
    ("host", "refusal"),
    [
        # Another site: localhost is not 127.0.0.1 to a browser, so the cookie stays home.
        ("localhost", "sign in first"),
        # The same site on another port: the cookie goes along, the origin check refuses.
        ("127.0.0.1", "posted from another site"),
    ],
    ids=["cross-site", "same-site-other-origin"],
)
def test_a_form_posted_from_another_origin_changes_nothing(
    dashboard: Dashboard,
    seeded: Seeded,
    driver: WebDriver,
    shot: Any,
    host: str,
    refusal: str,
) -> None:
    prompt = make_prompt(dashboard, seeded.deploy_key, "target", ["Safe.", "Evil."])
    deploy(dashboard, seeded.deploy_key, prompt, {1: 100})
    target = f"{dashboard.url}/ui/prompts/{prompt.id}/deploy"

    async def attacker(_request: web.Request) -> web.Response:
        return web.Response(text=ATTACKER_PAGE.format(target=target), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", attacker)
    evil = dashboard.served.serve(app, host)
    assert evil != dashboard.url  # another origin, whatever the site
    sign_in(driver, dashboard.url, seeded.deploy_key)
    wait_for(driver, "table#prompts")
    driver.get(evil + "/")
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: d.current_url.startswith(dashboard.url))
    shown = wait_for(driver, "#error")
    assert "Refused" in shown.text and refusal in shown.text, shown.text
    shot("refused")
    history = deployments(dashboard, seeded.deploy_key, prompt)
    assert len(history) == 1
    assert [(item["version"], item["weight"]) for item in history[0]["traffic"]] == [("v1", 100)]
    driver.get(f"{dashboard.url}/ui/prompts/{prompt.id}")  # still signed in on the dashboard
    assert chips(driver, "#timeline li:first-child") == ["v1 100%"]


def test_html_in_a_prompt_is_shown_as_text_and_never_runs(
    dashboard: Dashboard, seeded: Seeded, driver: WebDriver, shot: Any
) -> None:
    content = "<script>alert(1)</script>"
    name = "<img src=x onerror=alert(2)>"
    description = "<b onmouseover=alert(3)>bold</b>"
    message = "<iframe src=javascript:alert(4)></iframe>"
    prompt = make_prompt(
        dashboard,
        seeded.deploy_key,
        name,
        [content],
        description=description,
        messages=[message],
    )
    sign_in(driver, dashboard.url, seeded.deploy_key)
    listed = wait_for(driver, "table#prompts tbody tr[data-prompt]")
    assert listed.get_attribute("data-prompt") == name
    assert name in listed.text and description in listed.text
    shot("prompts")
    driver.get(f"{dashboard.url}/ui/prompts/{prompt.id}")
    assert wait_for(driver, "#prompt-name").text == name
    driver.find_element(By.CSS_SELECTOR, "tr.content-row summary").click()
    shown = wait_for(driver, 'pre.content[data-version="1"]')
    WebDriverWait(driver, WAIT_SECONDS).until(lambda _: shown.is_displayed())
    assert shown.text == content
    row = driver.find_element(By.CSS_SELECTOR, 'table#versions tr[data-version="1"]')
    assert message in row.text
    assert not driver.find_elements(By.CSS_SELECTOR, "main img, main iframe, main b, main script")
    shot("prompt")
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.accept()
