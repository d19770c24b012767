"""docker-compose.yml cannot run here (no Docker engine), so check what can be checked."""

import tomllib
from pathlib import Path
from typing import Any

import yaml

from promptline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_parses_and_runs_every_process() -> None:
    services = _compose()["services"]
    assert {"kafka", "clickhouse", "postgres", "migrate", "server", "worker", "guard"} <= set(
        services
    )
    assert services["server"]["command"] == ["serve"]
    assert services["guard"]["command"] == ["guard"]
    assert services["worker"]["command"] == ["worker"]
    assert services["migrate"]["command"] == ["migrate"]


def test_compose_names_every_setting_and_only_real_ones() -> None:
    env = _compose()["x-promptline-env"]
    named = {key.removeprefix("PROMPTLINE_").lower() for key in env}
    assert named == set(Settings.model_fields)


def test_compose_values_are_valid_settings() -> None:
    env = {
        key.removeprefix("PROMPTLINE_").lower(): value
        for key, value in _compose()["x-promptline-env"].items()
    }
    settings = Settings.model_validate(env)
    assert settings.kafka_enable_idempotence is True
    assert settings.database_url.startswith("postgresql+asyncpg://")


def test_dockerfile_copies_every_package_of_the_wheel() -> None:
    """The image installs the project from copied folders: a missing one fails at import."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    copied = {
        line.split()[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and line.split()[-1].startswith("./")
    }
    assert packages <= copied, f"Dockerfile does not copy {sorted(packages - copied)}"
