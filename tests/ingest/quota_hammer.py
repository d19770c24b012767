"""A separate process that reserves signal quota as fast as it can, for the cross-process test.

``python -m tests.ingest.quota_hammer <store url> <org id> <month> <limit> <attempts>``
prints how many of ``attempts`` single-unit reservations it was granted.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

from controlplane.store.engine import create_engine, session_factory
from ingest.quota_claims import GrantKind
from ingest.quota_store import StoreQuota


async def hammer(url: str, org_id: uuid.UUID, month: str, limit: int, attempts: int) -> int:
    engine = create_engine(url)
    try:
        quota = StoreQuota(session_factory(engine))
        grants = await asyncio.gather(
            *(quota.reserve(org_id, month, limit, [None]) for _ in range(attempts))
        )
        return sum(grant.kind is GrantKind.CHARGED for [grant] in grants)
    finally:
        await engine.dispose()


def main() -> None:
    url, org, month, limit, attempts = sys.argv[1:6]
    print(asyncio.run(hammer(url, uuid.UUID(org), month, int(limit), int(attempts))))


if __name__ == "__main__":
    main()
