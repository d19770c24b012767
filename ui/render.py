"""Pages rendered on the server from Jinja templates, escaped by default.

Templates and the stylesheet are read once, in a thread as the app starts, so rendering
never touches the disk. Every answer carries a strict
Content-Security-Policy: no script runs on these pages, and none may be injected.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from aiohttp import web
from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape

from controlplane.times import aware
from promptline.settings import Settings

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def _read_package(folder: str) -> dict[str, str]:
    root = resources.files("ui") / folder
    return {item.name: item.read_text("utf-8") for item in root.iterdir() if item.is_file()}


def _number(value: float | int | None, digits: int = 3) -> str:
    """A figure for people: 1,234 or 12.3 or 0.00123; a dash for nothing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    if value == 0:
        return "0"
    if abs(value) < 0.0001:
        return f"{value:.2e}"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def _p_value(value: float | None) -> str:
    """``p = 0.0123``, or ``p < 0.0001`` rather than a run of zeros."""
    if value is None or not math.isfinite(value):
        return "p unknown"
    return "p < 0.0001" if value < 0.0001 else f"p = {value:.4f}".rstrip("0").rstrip(".")


def _signed_percent(value: float | None) -> str:
    """A relative difference: ``+5.00%``."""
    return "—" if value is None or not math.isfinite(value) else f"{value * 100:+.2f}%"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _when(moment: datetime | str | None) -> str:
    if moment is None:
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return aware(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    seconds = (datetime.now(UTC) - aware(moment)).total_seconds()
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


class Renderer:
    """The dashboard's templates and stylesheet, read once when the app starts."""

    def __init__(self) -> None:
        self.environment = Environment(
            loader=DictLoader({}),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.environment.filters.update(
            number=_number,
            pvalue=_p_value,
            percent=_percent,
            signed_percent=_signed_percent,
            when=_when,
            ago=_ago,
        )
        self.stylesheet = ""

    def load(self) -> None:
        """Read the templates and the stylesheet (file reads: run in a thread)."""
        self.environment.loader = DictLoader(_read_package("templates"))
        self.stylesheet = _read_package("static")["style.css"]
        version = hashlib.sha256(self.stylesheet.encode()).hexdigest()[:12]
        self.environment.globals["stylesheet_version"] = version

    async def started(self, _app: web.Application) -> None:
        """``on_startup``: load off the event loop."""
        await asyncio.to_thread(self.load)

    def page(self, template: str, *, status: int = 200, **context: Any) -> web.Response:
        """A rendered page with the security headers."""
        body = self.environment.get_template(template).render(**context)
        return web.Response(
            text=body, status=status, content_type="text/html", headers=SECURITY_HEADERS
        )


RENDERER = web.AppKey("ui_renderer", Renderer)
UI_SETTINGS = web.AppKey("ui_settings", Settings)
