"""The soak's cleanup on services it did not start never hides why the soak stopped."""

from __future__ import annotations

from pathlib import Path

from bench.soak import drop_soak_data, soak_settings
from promptline.devstack.services import free_port


async def test_cleanup_on_services_gone_says_what_is_left_instead_of_raising(
    tmp_path: Path,
) -> None:
    nothing_kafka, nothing_clickhouse = free_port(), free_port()
    settings = soak_settings(
        tmp_path,
        kafka_bootstrap_servers=f"127.0.0.1:{nothing_kafka}",
        clickhouse_url=f"http://127.0.0.1:{nothing_clickhouse}",
        kafka_request_timeout_ms=2000,
    )
    left = await drop_soak_data(settings)
    assert len(left) == 2
    assert left[0].startswith(f"ClickHouse database {settings.clickhouse_database}: ")
    assert left[1].startswith(f"topics {settings.kafka_topic_prefix}*: ")
