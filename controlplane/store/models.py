"""SQLAlchemy models of the control plane; the same schema on SQLite and PostgreSQL.

Ids are UUIDv7 (time-ordered, so b-tree inserts stay local); public ids in the
routes' own shapes (``prm_...``, ``pmt_...``, ``tmpl-...``) are derived from them.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

import uuid_utils
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def new_id() -> uuid.UUID:
    """A fresh time-ordered UUIDv7."""
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)


def new_unit_key() -> str:
    """A fresh per-project key for unit ids: 32 random bytes, in hex."""
    return secrets.token_hex(32)


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


class Plan(StrEnum):
    """Billing plans; seed 001's "Pro" is ``team`` (see ARCHITECTURE.md)."""

    FREE = "free"
    TEAM = "team"
    BUSINESS = "business"


class Scope(StrEnum):
    """What an API key may do."""

    READ = "read"
    WRITE = "write"
    DEPLOY = "deploy"
    INGEST = "ingest"


class Base(DeclarativeBase):
    """Declarative base with timezone-aware datetimes everywhere."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


class Organization(Base):
    """A customer: holds projects, and its plan sets their limits."""

    __tablename__ = "organizations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(20), default=Plan.FREE.value)
    limit_overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    projects: Mapped[list[Project]] = relationship(back_populates="organization")


class Project(Base):
    """The unit of tenancy: prompts, keys and events all belong to one project."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    unit_key: Mapped[str] = mapped_column(String(64), default=new_unit_key)
    """Hex key of the keyed hash that turns a ``user_id`` into an exposure's unit id
    (``promptline.units``): secret, so a stored unit id cannot be traced back to a user."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organization: Mapped[Organization] = relationship(back_populates="projects")


class ApiKey(Base):
    """A project's API key; only the SHA-256 of the secret is kept (keys are random, so no KDF)."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(32))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Prompt(Base):
    """A named prompt in a project; its content lives in immutable versions."""

    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[PromptVersion]] = relationship(
        back_populates="prompt", order_by="PromptVersion.number"
    )


class PromptVersion(Base):
    """One immutable version of a prompt, numbered from 1 within its prompt."""

    __tablename__ = "prompt_versions"
    __table_args__ = (
        UniqueConstraint("prompt_id", "number"),
        Index("ix_prompt_versions_hash", "prompt_id", "content_hash"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    prompt_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(80))
    variables: Mapped[list[str]] = mapped_column(JSON, default=list)
    message: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    prompt: Mapped[Prompt] = relationship(back_populates="versions")


class Deployment(Base):
    """A traffic split over a prompt's versions; every one is kept as history."""

    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_prompt_time", "prompt_id", "deployed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    prompt_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200), default="")
    traffic: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    deployed_by: Mapped[str] = mapped_column(String(200), default="")
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)
    rollback_of: Mapped[uuid.UUID | None] = mapped_column(default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    """Why the guard wrote this row (a step, or a rollback naming the metric, estimate and
    interval); None for a deployment made by hand."""
    rollout_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    """The guarded rollout that wrote or started this row, if any."""


class RolloutStatus(StrEnum):
    """Where a guarded rollout is: running until it ends one of the other ways."""

    RUNNING = "running"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    HELD = "held"
    STOPPED = "stopped"


class Rollout(Base):
    """A guarded rollout: a candidate ramped step by step while the guard watches it.

    ``plan`` is the guard as deployed (ramp, minimums, deadline, guardrails; see
    ``controlplane.rollouts.plan``); ``step`` indexes its ramp, and ``deployment_id`` is the
    row that put the current step in force. ``report`` is the guard's latest evaluation, which
    ``GET .../rollout`` shows; ``outcome`` says in words how it ended.
    """

    __tablename__ = "rollouts"
    __table_args__ = (
        Index("ix_rollouts_prompt_started", "prompt_id", "started_at"),
        Index("ix_rollouts_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    prompt_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    candidate: Mapped[int] = mapped_column(Integer)
    baseline: Mapped[int] = mapped_column(Integer)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    step: Mapped[int] = mapped_column(Integer, default=0)
    step_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    deployment_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(20), default=RolloutStatus.RUNNING.value)
    outcome: Mapped[str | None] = mapped_column(Text, default=None)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_by: Mapped[str] = mapped_column(String(200), default="")
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    evaluated_at: Mapped[datetime | None] = mapped_column(default=None)


class GuardLease(Base):
    """Which guard process may act, and until when (one active however many run)."""

    __tablename__ = "guard_lease"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[uuid.UUID] = mapped_column()
    expires_ms: Mapped[int] = mapped_column(BigInteger)


class CatalogRevision(Base):
    """A single counter bumped by every control-plane write.

    Every process polls it and reloads its in-memory catalog when it moves, so hot paths
    (resolve, ingest) never query the database and still see changes within a second.
    """

    __tablename__ = "catalog_revision"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)


class SignalQuotaUsage(Base):
    """Signals accepted per organisation and UTC month, against the plan's monthly limit.

    The edge reserves with one conditional ``UPDATE`` (``used`` never passes the limit,
    whatever the number of processes); ``last_grant`` is how many units that statement
    granted, computed from the row as it was and read back with ``RETURNING``.
    """

    __tablename__ = "signal_quota_usage"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)
    last_grant: Mapped[int] = mapped_column(Integer, default=0)


class SignalIdempotencyKey(Base):
    """A keyed signal charged to the monthly quota, so that a retry is not charged again.

    Written in the transaction that charges it (``ingest.quota_store``), with the id, value
    and receive time its request was answered: a retry with the same key (the same
    project, prompt and key: the warehouse's identity of a signal) is answered those again.
    Kept for the month it was charged in only; a process deletes earlier months' rows when
    it first reserves in a new month, so at most one month's charged signals are kept (the
    quota bounds their number). ``repeats`` counts the retries answered with it: once one
    was, a failed first attempt no longer gives its unit back.
    """

    __tablename__ = "signal_idempotency_keys"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    prompt_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(Text, primary_key=True)
    signal_id: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[str] = mapped_column(String(16))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    repeats: Mapped[int] = mapped_column(Integer, default=0)


class EdgeNodeLease(Base):
    """Which edge process holds which signal-id node number, and until when.

    Signal ids embed a node number so processes never collide without a database round
    trip per id; a process leases a number at start and renews it in the background.
    ``expires_ms`` (Unix milliseconds) is also the floor of the next holder's ids.
    """

    __tablename__ = "edge_node_leases"

    node_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holder: Mapped[uuid.UUID] = mapped_column()
    expires_ms: Mapped[int] = mapped_column(BigInteger)


class Webhook(Base):
    """A URL a project's events are POSTed to, signed with its secret.

    The secret is kept as given (not hashed): the deliverer needs it to sign each body.
    Deleting a webhook sets ``deleted_at``, so past deliveries keep their webhook.
    ``events`` lists the types it takes (``["*"]``: all, including types added later).
    """

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_project", "project_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(100))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class Delivery(Base):
    """One event to send to one webhook: the outbox, written in the transaction of the
    decision it reports (a deploy and its event commit together, or neither does).

    ``next_attempt_at`` is when it is due, and null once it is settled (``delivered_at``
    or ``failed_at``, when it was given up), so the due rows are an index range.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)


class UiSession(Base):
    """A dashboard sign-in: an API key exchanged for a cookie that names this row.

    Only the SHA-256 of the cookie's token is kept, as for keys. The session holds the
    key's digest, so a page finds the key's principal in the in-memory catalog and a
    revoked key's sessions end as soon as the key does, in every process. ``csrf_token``
    is the token every form of the session posts back.
    """

    __tablename__ = "ui_sessions"
    __table_args__ = (Index("ix_ui_sessions_expires", "expires_at"),)

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
