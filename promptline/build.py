"""Which build is running: resolve's hot path compiled with mypyc, or pure Python.

Release wheels and the Docker image compile the modules below (the mypyc build hook in
``pyproject.toml``; a test holds both lists together); editable installs run the same
modules as Python. ``serve`` logs which it runs, and the resolve benchmark prints it.
"""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES
from typing import Final

HOT_PATH_MODULES: Final = (
    "controlplane.resolve",
    "controlplane.resolve.attributes",
    "controlplane.resolve.buckets",
    "controlplane.resolve.conditions",
    "controlplane.resolve.engine",
    "controlplane.resolve.hashing",
    "controlplane.resolve.interpolate",
    "controlplane.resolve.routing",
    "controlplane.api.ratelimit",
    "controlplane.api.resolve_io",
    "controlplane.api.resolve_route",
    "controlplane.api.windows",
    "controlplane.api.auth",
    "promptline.http.bodies",
    "ingest.observe",
    "ingest.request_tally",
    "ingest.event_tally",
    "ingest.accept",
    "ingest.admission",
    "ingest.analytics_body",
    "ingest.batch",
    "ingest.batch_keys",
    "ingest.body",
    "ingest.deadlines",
    "ingest.ids",
    "ingest.prepare",
    "ingest.prompts",
    "ingest.routes.analytics",
    "ingest.routes.batch",
)
"""Modules resolve runs on every request, free of pydantic model classes (mypyc cannot
compile those) and of class attributes that subclasses override (mypyc gets those wrong)."""


def is_compiled(module_name: str) -> bool:
    """Whether the module was imported from an extension module rather than a .py file."""
    path = getattr(importlib.import_module(module_name), "__file__", None) or ""
    return path.endswith(tuple(EXTENSION_SUFFIXES))


def hot_path_build() -> str:
    """``compiled``, ``pure Python``, or ``partly compiled`` with the Python ones named."""
    pure = [name for name in HOT_PATH_MODULES if not is_compiled(name)]
    if not pure:
        return "compiled"
    if len(pure) == len(HOT_PATH_MODULES):
        return "pure Python"
    return "partly compiled (pure Python: " + ", ".join(pure) + ")"
