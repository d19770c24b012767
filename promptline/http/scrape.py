"""Where ``GET /metrics`` finds a scrape that answers for more than this process.

A process of ``promptline serve --processes N`` answers a scrape for its whole group
(``promptline.serve_group`` sets it); the route only needs something that renders the text.
Kept in the kit so that the route knows no composition.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web


class GroupScrape(Protocol):
    """Renders the metrics of every process the answering one stands for."""

    async def scrape(self) -> bytes:
        """The merged Prometheus text exposition."""
        ...


GROUP_SCRAPE = web.AppKey("group_scrape", GroupScrape)
