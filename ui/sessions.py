"""Dashboard sessions in the control-plane store, so every serving process shares them.

Signing in exchanges an API key for a random session token; the browser keeps the token
in an HttpOnly cookie and the store keeps only its SHA-256, as it does for keys. The row
holds the key's digest: each page finds the key's principal in the in-memory catalog, so a
revoked key's sessions end with the key's next catalog reload (a quarter of a second), in
every process. Signing out deletes the row; expired rows are swept at each sign-in.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.store.models import UiSession, utcnow
from controlplane.times import aware

TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A session just made: the token for the cookie (the only copy) and its expiry."""

    token: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRow:
    """What a page needs of a live session."""

    key_sha256: str
    project_id: uuid.UUID
    csrf_token: str
    expires_at: datetime


def token_digest(token: str) -> str:
    """The stored form of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(
    sessions: async_sessionmaker[AsyncSession],
    key_sha256: str,
    project_id: uuid.UUID,
    lifetime: timedelta,
) -> OpenedSession:
    """Store a new session for a key that was just checked, and sweep expired ones."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    csrf = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    expires = now + lifetime
    async with sessions.begin() as session:
        await session.execute(delete(UiSession).where(UiSession.expires_at < now))
        session.add(
            UiSession(
                token_sha256=token_digest(token),
                key_sha256=key_sha256,
                project_id=project_id,
                csrf_token=csrf,
                created_at=now,
                expires_at=expires,
            )
        )
    return OpenedSession(token, csrf, expires)


async def find_session(sessions: async_sessionmaker[AsyncSession], token: str) -> SessionRow | None:
    """The live session a cookie names, or None (unknown, signed out or expired)."""
    if not token.isascii() or not token.isprintable() or len(token) > 100:
        return None
    async with sessions() as session:
        row = await session.get(UiSession, token_digest(token))
    if row is None or aware(row.expires_at) <= utcnow():
        return None
    return SessionRow(row.key_sha256, row.project_id, row.csrf_token, aware(row.expires_at))


async def end_session(sessions: async_sessionmaker[AsyncSession], token: str) -> None:
    """Sign out: the session is gone for every process at once."""
    async with sessions.begin() as session:
        digest = token_digest(token)
        await session.execute(delete(UiSession).where(UiSession.token_sha256 == digest))
