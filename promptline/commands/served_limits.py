"""The endpoints a rate-limit override may name: those the service serves and rate-limits.

An override is looked up by endpoint name on each call, so one stored for a name no
route counts under is silently never applied. The names come from the service itself:
the ``Endpoint`` constants of the modules the app's routes are built from, kept where
the app serves a route of that method and path, so a route added later is known
without a list here to update.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Collection, Iterable, Mapping

from controlplane.api.ratelimit import Endpoint, LimitClass, normalize_endpoint
from controlplane.overrides import SIGNALS_PER_MONTH
from promptline.settings import Settings

PRODUCT_PACKAGES = ("controlplane.", "ingest.", "compare.")
_PARAM = re.compile(r":[^/]+")


def _shape(name: str) -> str:
    """An endpoint with its parameters unnamed: routes and limits may name them apart."""
    return _PARAM.sub(":", normalize_endpoint(name))


def _declared() -> set[str]:
    """Every ``Endpoint`` a loaded product module declares at its top level."""
    names: set[str] = set()
    for module_name, module in list(sys.modules.items()):
        if module is None or not module_name.startswith(PRODUCT_PACKAGES):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Endpoint):
                names.add(normalize_endpoint(value.name))
    return names


def served_endpoints(settings: Settings) -> frozenset[str]:
    """The rate-limited endpoints the service serves, as an override names them.

    Built from the app without starting it (no connection is opened); also the short
    names of seed 001's table (``POST /resolve``, ``GET /prompts``...), which an override
    may use for the four endpoints that table names.
    """
    from promptline.server import create_app

    app = create_app(settings)
    routes = {
        _shape(f"{route.method} {route.resource.canonical}")
        for route in app.router.routes()
        if route.resource is not None
    }
    limited = {name for name in _declared() if _shape(name) in routes}
    return frozenset(limited | {row.value for row in LimitClass})


def refuse_unserved(
    overrides: Mapping[str, object] | Iterable[str], served: Collection[str]
) -> None:
    """Raise ValueError naming every valid endpoint if an override names another."""
    known = {normalize_endpoint(name) for name in served}
    unknown = [
        name
        for name in overrides
        if name != SIGNALS_PER_MONTH and normalize_endpoint(name) not in known
    ]
    if unknown:
        listed = "\n  ".join(sorted(served))
        raise ValueError(
            f"the service rate-limits no endpoint {', '.join(map(repr, unknown))}; "
            f"an override may name {SIGNALS_PER_MONTH} or one of:\n  {listed}"
        )
