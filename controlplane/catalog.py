"""An in-memory snapshot of the control plane for the hot paths.

Resolve and ingest answer from this snapshot, never from the database. A watcher polls
the catalog revision counter and swaps in a fresh snapshot when it moves, so a change
made through any process is seen by every other within one poll interval.

Each prompt also carries its compiled :class:`~controlplane.resolve.routing.Routing`: the
latest deployment (greatest ``deployed_at``, ties broken by the time-ordered UUIDv7 id)
with bucket ranges laid out, rules compiled and the content of the versions it can serve
with their templates precompiled. Only those versions' content is kept in memory; every
version's id, number and hash stays available to ingest and to the deploy route's checks.

A stored deployment that no longer validates (it cannot come from the deploy route,
which validates the same way, but rows can be edited by hand) must not stop the whole
catalog from loading: it is logged and the deployment before it is served instead, the
safe choice, since serving an undeployed version could ship an untested prompt.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.resolve.errors import DeploymentSpecError
from controlplane.resolve.routing import (
    ParsedDeployment,
    Routing,
    ServedVersion,
    compile_routing,
    parse_deployment,
    undeployed,
)
from controlplane.resolve.traffic import VersionSet
from controlplane.store.models import (
    ApiKey,
    Deployment,
    Organization,
    Project,
    Prompt,
    PromptVersion,
)
from controlplane.store.revision import current_revision
from controlplane.versions import content_hash
from promptline.periodic import Periodic

log = logging.getLogger(__name__)

DEPLOYMENTS_TRIED = 3
"""How many of a prompt's newest deployments are loaded, to fall back past a broken one."""

_CONTENT_CHUNK = 500
"""Version ids per content query, well under every database's bound-parameter limit."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, its project and organisation, plan and scopes."""

    key_id: uuid.UUID
    project_id: uuid.UUID
    org_id: uuid.UUID
    plan: str
    scopes: frozenset[str]
    limit_overrides: dict[str, Any] = field(default_factory=dict)
    unit_key: bytes = b""
    """The project's key for unit ids of exposures (``promptline.units``)."""


@dataclass(frozen=True, slots=True)
class VersionEntry:
    """What the hot paths need of a version."""

    id: uuid.UUID
    number: int
    content_hash: str


@dataclass(frozen=True, slots=True)
class PromptEntry:
    """What the hot paths need of a prompt, with its versions by number and by hash.

    ``routing`` is what resolve reads; None when the prompt has nothing to serve.
    """

    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    versions_by_number: dict[int, VersionEntry]
    versions_by_hash: dict[str, VersionEntry]
    routing: Routing | None = None

    @property
    def version_set(self) -> VersionSet:
        """The prompt's versions, for ``parse_traffic``/``parse_rules`` in the deploy route."""
        return VersionSet(self.versions_by_number.values())


MAX_REMEMBERED_CALLERS = 10_000


@dataclass(frozen=True, slots=True)
class Catalog:
    """One consistent snapshot, read in a single transaction."""

    revision: int
    principals: dict[str, Principal]
    prompts: dict[uuid.UUID, PromptEntry]
    by_name: dict[int, dict[str, PromptEntry]] = field(init=False, repr=False, compare=False)
    """Prompts by project (its UUID's int: hashed in C, where a UUID's hash is Python code)
    and name."""
    callers: dict[str, Principal] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    """Principals by the exact ``Authorization`` header that named them (see ``remember``)."""

    def __post_init__(self) -> None:
        index: dict[int, dict[str, PromptEntry]] = {}
        for entry in self.prompts.values():
            index.setdefault(entry.project_id.int, {})[entry.name] = entry
        object.__setattr__(self, "by_name", index)

    def principal(self, key_sha256: str) -> Principal | None:
        """The principal of a key digest, or None for an unknown or revoked key."""
        return self.principals.get(key_sha256)

    def remember(self, header: str, principal: Principal) -> None:
        """Keep the principal a valid header named, so its next call skips the hash.

        Per snapshot: a reload (a revoked key, a new plan) starts with none. Only headers
        that named a live key get here, so the cache holds at most the keys in use; it
        starts over past ``MAX_REMEMBERED_CALLERS`` all the same.
        """
        if len(self.callers) >= MAX_REMEMBERED_CALLERS:
            self.callers.clear()
        self.callers[header] = principal

    def prompt(self, project_id: uuid.UUID, prompt_id: uuid.UUID) -> PromptEntry | None:
        """The prompt if it exists *in this project*; other projects' prompts are invisible."""
        entry = self.prompts.get(prompt_id)
        return entry if entry is not None and entry.project_id == project_id else None

    def prompt_by_name(self, project_id: uuid.UUID, name: str) -> PromptEntry | None:
        """The project's prompt called ``name``; names are unique within a project."""
        names = self.by_name.get(project_id.int)
        return names.get(name) if names is not None else None


EMPTY_CATALOG = Catalog(revision=-1, principals={}, prompts={})


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    """A stored deployment as the catalog reads it."""

    id: uuid.UUID
    label: str
    traffic: Any
    rules: Any
    deployed_at: datetime

    @property
    def order_key(self) -> tuple[datetime, uuid.UUID]:
        """Newest last: by time, then by UUIDv7 id (time-ordered) for equal times.

        SQLite hands back naive datetimes (stored in UTC), so naive means UTC here.
        """
        at = self.deployed_at
        return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)), self.id


@dataclass(frozen=True, slots=True)
class VersionContent:
    """A version's content and declared variables, loaded only for served versions."""

    content: str
    variables: tuple[str, ...] = ()


def choose_deployment(
    entry: PromptEntry, deployments: Iterable[DeploymentRecord]
) -> ParsedDeployment | None:
    """The deployment in force: the newest that validates, or the latest version if none.

    None when the prompt has no version yet, or when none of its deployments validates.
    """
    versions = entry.version_set
    ordered = sorted(deployments, key=lambda record: record.order_key, reverse=True)
    if not ordered:
        return undeployed(versions)
    for record in ordered:
        try:
            return parse_deployment(record.id, record.label, record.traffic, record.rules, versions)
        except DeploymentSpecError as exc:
            log.error(
                "deployment %s of prompt %s cannot be served (%s); trying the one before",
                record.id,
                entry.id,
                exc,
            )
    log.error("prompt %s has no servable deployment; resolve will not serve it", entry.id)
    return None


def with_routing(
    entry: PromptEntry,
    deployment: ParsedDeployment | None,
    contents: Mapping[uuid.UUID, VersionContent],
) -> PromptEntry:
    """``entry`` with the compiled routing of ``deployment``; ``contents`` by version id."""
    if deployment is None:
        return entry
    served: dict[int, ServedVersion] = {}
    for number in deployment.version_numbers:
        version = entry.versions_by_number[number]
        loaded = contents.get(version.id)
        if loaded is None:  # deleted between two reads of one refresh; the next one settles
            log.error("content of version %s of prompt %s is missing", version.id, entry.id)
            return entry
        served[number] = ServedVersion(
            version.id, number, version.content_hash, loaded.content, loaded.variables
        )
    return replace(entry, routing=compile_routing(entry.id, deployment, served))


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """A version with its content, for building entries without a database."""

    id: uuid.UUID
    number: int
    content: str
    variables: tuple[str, ...] = ()

    @property
    def content_hash(self) -> str:
        """``sha256:<hex>`` of the content, as the store computes it."""
        return content_hash(self.content)


def build_prompt_entry(
    prompt_id: uuid.UUID,
    project_id: uuid.UUID,
    name: str,
    versions: Sequence[VersionRecord],
    deployments: Sequence[DeploymentRecord] = (),
) -> PromptEntry:
    """A routed prompt entry from plain records: what ``load_catalog`` builds per prompt."""
    entries = [VersionEntry(v.id, v.number, v.content_hash) for v in versions]
    entry = PromptEntry(
        prompt_id,
        project_id,
        name,
        {v.number: v for v in entries},
        {v.content_hash: v for v in entries},
    )
    contents = {v.id: VersionContent(v.content, v.variables) for v in versions}
    return with_routing(entry, choose_deployment(entry, deployments), contents)


async def load_catalog(session: AsyncSession, previous: Catalog | None = None) -> Catalog:
    """Read the whole catalog; control-plane data is small next to event data.

    With ``previous``, a prompt whose routing inputs did not change keeps its compiled
    routing (see :func:`reusable_routing`): a write to one prompt then costs one prompt's
    compile and content read, not the whole catalog's, on the event loop of every process.
    """
    revision = await current_revision(session)
    principals = await _load_principals(session)
    prompts: dict[uuid.UUID, PromptEntry] = {}
    for prompt_id, project_id, name in await session.execute(
        select(Prompt.id, Prompt.project_id, Prompt.name)
    ):
        prompts[prompt_id] = PromptEntry(prompt_id, project_id, name, {}, {})
    for version_id, prompt_id, number, digest in await session.execute(
        select(
            PromptVersion.id,
            PromptVersion.prompt_id,
            PromptVersion.number,
            PromptVersion.content_hash,
        )
    ):
        parent = prompts.get(prompt_id)
        if parent is None:
            continue
        version = VersionEntry(version_id, number, digest)
        parent.versions_by_number[number] = version
        parent.versions_by_hash[digest] = version
    deployments = await _recent_deployments(session)
    routed: dict[uuid.UUID, PromptEntry] = {}
    chosen: dict[uuid.UUID, ParsedDeployment | None] = {}
    for prompt_id, entry in prompts.items():
        records = deployments.get(prompt_id, [])
        old = previous.prompts.get(prompt_id) if previous is not None else None
        kept = reusable_routing(entry, records, old.routing if old is not None else None)
        if kept is not None:
            routed[prompt_id] = replace(entry, routing=kept)
        else:
            chosen[prompt_id] = choose_deployment(entry, records)
    needed = [
        prompts[prompt_id].versions_by_number[number].id
        for prompt_id, deployment in chosen.items()
        if deployment is not None
        for number in deployment.version_numbers
    ]
    contents = await _load_contents(session, needed)
    for prompt_id, deployment in chosen.items():
        routed[prompt_id] = with_routing(prompts[prompt_id], deployment, contents)
    return Catalog(revision=revision, principals=principals, prompts=routed)


def reusable_routing(
    entry: PromptEntry, deployments: Sequence[DeploymentRecord], previous: Routing | None
) -> Routing | None:
    """The previous routing if it is still exactly what compiling afresh would give.

    Deployments and versions are immutable, so a routing built from the same newest
    deployment row is the same; a never-deployed prompt's routing is the same while its
    latest version is. Anything else (including a fallback past a broken row) recompiles.
    """
    if previous is None:
        return None
    if deployments:
        newest = max(deployments, key=lambda record: record.order_key)
        return previous if previous.deployment_id == newest.id else None
    latest = entry.version_set.latest
    if previous.deployment_id is not None or latest is None:
        return None
    served = previous.versions.get(latest)
    if served is None or served.id != entry.versions_by_number[latest].id:
        return None
    return previous


async def _load_principals(session: AsyncSession) -> dict[str, Principal]:
    principals: dict[str, Principal] = {}
    key_rows = await session.execute(
        select(
            ApiKey,
            Project.org_id,
            Organization.plan,
            Organization.limit_overrides,
            Project.unit_key,
        )
        .join(Project, ApiKey.project_id == Project.id)
        .join(Organization, Project.org_id == Organization.id)
        .where(ApiKey.revoked_at.is_(None))
    )
    for key, org_id, plan, overrides, unit_key in key_rows:
        principals[key.secret_sha256] = Principal(
            key_id=key.id,
            project_id=key.project_id,
            org_id=org_id,
            plan=plan,
            scopes=frozenset(key.scopes),
            limit_overrides=dict(overrides or {}),
            unit_key=bytes.fromhex(unit_key),
        )
    return principals


async def _recent_deployments(
    session: AsyncSession,
) -> dict[uuid.UUID, list[DeploymentRecord]]:
    """The newest few deployments of every prompt; history is never read whole."""
    rank = (
        func.row_number()
        .over(
            partition_by=Deployment.prompt_id,
            order_by=(Deployment.deployed_at.desc(), Deployment.id.desc()),
        )
        .label("rank")
    )
    ranked = select(
        Deployment.id,
        Deployment.prompt_id,
        Deployment.label,
        Deployment.traffic,
        Deployment.rules,
        Deployment.deployed_at,
        rank,
    ).subquery()
    rows = await session.execute(
        select(
            ranked.c.id,
            ranked.c.prompt_id,
            ranked.c.label,
            ranked.c.traffic,
            ranked.c.rules,
            ranked.c.deployed_at,
        ).where(ranked.c.rank <= DEPLOYMENTS_TRIED)
    )
    result: dict[uuid.UUID, list[DeploymentRecord]] = {}
    for deployment_id, prompt_id, label, traffic, rules, deployed_at in rows:
        record = DeploymentRecord(deployment_id, label, traffic, rules, deployed_at)
        result.setdefault(prompt_id, []).append(record)
    return result


async def _load_contents(
    session: AsyncSession, version_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, VersionContent]:
    """Content of the versions some routing serves, in chunks of ids."""
    contents: dict[uuid.UUID, VersionContent] = {}
    unique = list(dict.fromkeys(version_ids))
    for start in range(0, len(unique), _CONTENT_CHUNK):
        chunk = unique[start : start + _CONTENT_CHUNK]
        rows = await session.execute(
            select(PromptVersion.id, PromptVersion.content, PromptVersion.variables).where(
                PromptVersion.id.in_(chunk)
            )
        )
        for version_id, content, variables in rows:
            contents[version_id] = VersionContent(content, tuple(variables or ()))
    return contents


class CatalogWatcher:
    """Keeps ``current`` fresh by polling the revision counter in the background."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], poll_interval: float = 0.25
    ) -> None:
        self.sessions = sessions
        self._poller = Periodic(
            "catalog-watcher",
            poll_interval,
            self.refresh,
            failure="catalog refresh failed; serving the previous snapshot",
            first_at_once=False,
        )
        self.current: Catalog = EMPTY_CATALOG
        self._refreshing = asyncio.Lock()
        self._listeners: list[Callable[[Catalog], None]] = []

    def on_change(self, listener: Callable[[Catalog], None]) -> Callable[[], None]:
        """Call ``listener`` with each new snapshot once it is ``current``; returns the
        function that removes it. Listeners must be quick and not raise (a raise is logged):
        they run on the refresh's path (the SDK stream, ``controlplane.api.sdk``, sets
        events in them)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def start(self) -> None:
        """Load the first snapshot, then poll in the background."""
        await self.refresh()
        self._poller.start()

    async def stop(self) -> None:
        """Stop polling."""
        await self._poller.stop()

    async def refresh(self) -> None:
        """Reload now if the revision moved (or on first load).

        One refresh at a time: a background poll that read an older revision and a refresh
        after a write (``ControlPlane.written``) would otherwise overlap, and the older load,
        finishing last, would put back a snapshot from before the write (a revoked key
        served again until the next poll). Waiting, the later refresh reads the revision
        after the earlier one's load, and reloads if it moved.
        """
        async with self._refreshing, self.sessions() as session, session.begin():
            revision = await current_revision(session)
            if revision != self.current.revision:
                self.current = await load_catalog(session, self.current)
                for listener in list(self._listeners):
                    try:
                        listener(self.current)
                    except Exception:
                        log.exception("a catalog listener failed")
