"""The default baseline: the stable version, as the control plane defines it for rollback.

Stable is the version of the newest deployment that sent 100% of traffic to one version,
its targeting rules included (``controlplane.deployments.stable_version``, what ``rollback``
returns to: 100% v1 plus a rule sending a segment to v2 is a canary). During a canary
that is the version the canary is measured against, however the split is weighted: 50/50,
or even 60/40 in the canary's favour. The in-memory catalog holds only the deployment in
force, not the history, so the history is read from the control-plane store, once per
comparison that names no baseline (compare is no hot path).

A prompt that was never deployed to one version alone has no stable version; then the
baseline is the largest share of the deployment in force (``compare.versions.fallback_baseline``).
So it is too when the store cannot be read: the comparison is still served, and the
response's ``baseline`` says which version was used.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.catalog import PromptEntry
from controlplane.deployments import history, stable_version
from controlplane.store.models import Deployment

log = logging.getLogger(__name__)


def newest_stable(deployments: Iterable[Deployment], known: Collection[int]) -> int | None:
    """The version of the first deployment (newest first) that sent it all traffic.

    Versions the prompt no longer has are passed over, as rollback could not serve them.
    """
    for deployment in deployments:
        number = stable_version(deployment)
        if number is not None and number in known:
            return number
    return None


async def stable_from_history(
    sessions: async_sessionmaker[AsyncSession], entry: PromptEntry
) -> int | None:
    """The stable version of ``entry`` from its deployment history; None if it has none."""
    try:
        async with sessions() as session:
            deployments = await history(session, entry.id)
    except (SQLAlchemyError, OSError) as error:
        log.warning("deployment history of prompt %s unreadable: %r", entry.id, error)
        return None
    return newest_stable(deployments, entry.versions_by_number)
