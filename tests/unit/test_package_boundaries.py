"""Each package imports only what sits below it: the schemas nothing of ours, the shared kit
no domain, the control plane no edge or worker, the workers no HTTP, and nothing of the
product the local stack (ARCHITECTURE.md, "Code layout"). Read from the source, so a new
import across a line fails here rather than in a review."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT: tuple[str, ...] = ("schemas", "promptline", "controlplane", "ingest", "workers")
PRODUCT += ("compare", "guard", "ui", "sql")
DOMAIN = ("controlplane", "ingest", "workers", "compare", "guard", "ui", "sql")
KIT = (
    "promptline.settings",
    "promptline.http",
    "promptline.kafka",
    "promptline.clickhouse",
    "promptline.topics",
    "promptline.periodic",
    "promptline.units",
    "promptline.metrics_merge",
    "promptline.logs",
    "promptline.heap",
)
COMPOSITION = (
    "promptline.cli",
    "promptline.server",
    "promptline.worker",
    "promptline.worker_status",
    "promptline.commands",
    "promptline.build",
    "promptline.serve_group",
    "promptline.supervise",
    "promptline.__main__",
)


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> Iterator[tuple[str, str]]:
    """(importing module, imported module) for every absolute import in the product."""
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = _module(path)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        yield module, alias.name
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    yield module, node.module


IMPORTS = sorted(set(_imports()))


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in packages)


def _crossing(importers: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{importer} imports {imported}"
        for importer, imported in IMPORTS
        if _within(importer, importers) and _within(imported, forbidden)
    ]


def test_the_schemas_import_nothing_of_ours() -> None:
    ours = tuple(p for p in PRODUCT if p != "schemas")
    assert _crossing(("schemas",), ours) == []


def test_the_shared_kit_imports_no_domain_and_no_composition() -> None:
    assert _crossing(KIT, DOMAIN + COMPOSITION) == []


def test_the_control_plane_knows_no_edge_worker_or_analysis() -> None:
    assert _crossing(("controlplane",), ("ingest", "workers", "compare", "guard", "ui")) == []


def test_the_workers_know_no_http_and_no_other_domain() -> None:
    others = ("aiohttp", "promptline.http", "controlplane", "ingest", "compare", "guard", "ui")
    assert _crossing(("workers",), others) == []


def test_the_edge_knows_no_worker_or_analysis() -> None:
    assert _crossing(("ingest",), ("workers", "compare", "guard", "ui")) == []


def test_no_domain_imports_the_composition() -> None:
    assert _crossing(DOMAIN, COMPOSITION) == []


@pytest.mark.parametrize("package", PRODUCT)
def test_nothing_of_the_product_imports_the_local_stack(package: str) -> None:
    importers = tuple(
        module
        for module, _ in IMPORTS
        if _within(module, (package,))
        and not _within(module, ("promptline.devstack", "promptline.cli"))
    )
    assert _crossing(importers, ("promptline.devstack",)) == []
