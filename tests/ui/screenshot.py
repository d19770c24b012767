"""The README's screenshot of the compare page (``make screenshot``).

Starts the local broker and ClickHouse stand-ins and the service (SQLite store) in a
temporary folder, seeds a demo prompt with two versions, a 80/20 canary and a day of
realistic events, signs in with headless Chromium and saves the compare page, 1280 pixels
wide and as tall as the page, to ``docs/images/compare.png`` (or the path given).

    python -m tests.ui.screenshot [--out docs/images/compare.png]
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from compare.window import floor_hour
from promptline.devstack.services import free_port, running_broker_and_clickhouse
from promptline.settings import Settings
from schemas.records import RecordBase
from tests.compare.support import store
from tests.ui.browser import (
    Dashboard,
    chromium,
    eventually,
    full_page_screenshot,
    served_dashboard,
    sign_in,
)
from tests.workers.helpers import Tenant, analytics, exposure, signal

DEFAULT_OUT = Path("docs/images/compare.png")
HOURS = 24
V1 = (
    "You are a support agent for {{company}}.\n"
    "Answer the customer's question in at most three sentences.\n"
    "If you do not know, say so and offer to escalate."
)
V2 = (
    "You are a friendly support agent for {{company}}.\n"
    "Answer the customer's question in at most three sentences, warmly.\n"
    "Quote the help-centre article you used.\n"
    "If you do not know, say so and offer to escalate."
)


def demo_records(
    tenant: Tenant, prompt: uuid.UUID, hashes: dict[int, str], now: datetime
) -> list[RecordBase]:
    """A day of traffic, busier by day than by night: v2 (20%) a little faster and liked
    a little more, at a slightly higher cost."""
    rng = random.Random(2026)
    records: list[RecordBase] = []
    start = floor_hour(now) - timedelta(hours=HOURS - 1)
    for hour in range(HOURS):
        at_hour = start + timedelta(hours=hour)
        busy = 60 + 45 * math.sin((at_hour.hour - 9) / 24 * 2 * math.pi)
        for _ in range(int(busy + rng.uniform(-8, 8))):
            number = 2 if rng.random() < 0.2 else 1
            at = at_hour + timedelta(seconds=rng.uniform(0, 3599))
            if at >= now:
                continue
            latency = rng.lognormvariate(math.log(430 if number == 1 else 385), 0.35)
            cost = rng.uniform(0.0016, 0.0024) * (1.0 if number == 1 else 1.12)
            score = min(1.0, max(0.0, rng.gauss(0.71 if number == 1 else 0.76, 0.12)))
            unit = f"usr_{rng.randrange(5000)}"
            records.append(
                exposure(tenant, prompt, number, unit, version_hash=hashes[number], at=at)
            )
            records.append(
                analytics(
                    tenant, prompt, hashes[number], latency=latency, cost=cost, score=score, at=at
                )
            )
            if rng.random() < 0.3:
                liked = rng.random() < (0.62 if number == 1 else 0.7)
                value = "positive" if liked else "negative"
                meta = {"version": f"v{number}"}
                records.append(signal(tenant, prompt, value, metadata=meta, at=at))  # type: ignore[arg-type]
    return records


def seed(dashboard: Dashboard) -> tuple[str, str]:
    """The demo project, prompt and events; the key and the prompt's public id."""
    project = dashboard.project()
    key = project.deploy_key
    created = dashboard.api(
        key, "POST", "/v1/prompts", {"name": "support-bot", "description": "Answers tickets"}
    )
    hashes = {}
    for number, (content, message) in enumerate(
        ((V1, "First version"), (V2, "Warmer tone, cites its source")), start=1
    ):
        version = dashboard.api(
            key,
            "POST",
            f"/v1/prompts/{created['id']}/versions",
            {"content": content, "message": message},
        )
        hashes[number] = version["content_hash"]
    for traffic in (
        [{"version": "v1", "weight": 100}],
        [{"version": "v1", "weight": 80}, {"version": "v2", "weight": 20}],
    ):
        dashboard.api(key, "POST", f"/v1/prompts/{created['id']}/deploy", {"traffic": traffic})
    tenant = Tenant(org_id=project.org_id, project_id=project.project_id)
    records = demo_records(tenant, uuid.UUID(created["prompt_uuid"]), hashes, datetime.now(UTC))
    dashboard.call(store(dashboard.settings, records))
    return key, str(created["id"])


def take(out: Path) -> None:
    """Everything, from starting the services to saving the PNG at ``out``."""
    with tempfile.TemporaryDirectory(prefix="promptline-screenshot-") as temp:
        folder = Path(temp)
        with running_broker_and_clickhouse(folder) as (broker_port, clickhouse_port):
            settings = Settings(
                kafka_bootstrap_servers=f"127.0.0.1:{broker_port}",
                kafka_enable_idempotence=False,
                kafka_topic_partitions=1,
                clickhouse_url=f"http://127.0.0.1:{clickhouse_port}",
                clickhouse_database="screenshot",
                database_url=f"sqlite+aiosqlite:///{folder / 'control.db'}",
                listen_port=free_port(),
                worker_http_port=0,
                log_format="text",
                state_dir=folder / "state",
            )
            with served_dashboard(settings) as dashboard:
                key, prompt_id = seed(dashboard)
                driver = chromium()
                try:
                    sign_in(driver, dashboard.url, key)
                    page = f"{dashboard.url}/ui/prompts/{prompt_id}/compare?window=day"

                    def loaded() -> bool:
                        driver.get(page)
                        return bool(driver.find_elements("id", "compare-table"))

                    eventually(loaded, "the compare page", every=0.25)
                    full_page_screenshot(driver, out)
                finally:
                    driver.quit()
    print(f"saved {out} ({out.stat().st_size // 1024} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to save the PNG")
    take(parser.parse_args().out)


if __name__ == "__main__":
    main()
