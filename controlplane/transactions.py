"""Running a write in one transaction, retried when a concurrent writer got there first.

Writers lock the prompt they change (see ``authoring.lock_prompt``), so most races queue
up instead of failing. What the lock cannot cover, such as two requests creating the same
new prompt name at once, ends in a unique-constraint violation: the loser's whole
transaction is rolled back and run again, and then sees the winner's row.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")

ATTEMPTS = 10


class WriteConflict(Exception):
    """A write kept colliding with concurrent ones; the client may retry."""


async def write(
    sessions: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    attempts: int = ATTEMPTS,
) -> T:
    """``work(session)`` in a transaction, committed; rerun on IntegrityError."""
    for attempt in range(attempts):
        try:
            async with sessions() as session, session.begin():
                return await work(session)
        except IntegrityError as error:
            if attempt == attempts - 1:
                raise WriteConflict("concurrent writes kept conflicting") from error
            await asyncio.sleep(random.uniform(0, 0.01 * (attempt + 1)))
    raise AssertionError("unreachable")  # pragma: no cover
