"""One project's configuration for SDKs that resolve locally (``GET /v1/sdk/config``).

Everything resolve reads for the project, taken from the in-memory catalog: per prompt
that can serve, the deployment in force (its split and rules exactly as stored) and the
versions its routing can serve, with their content; and the hashing parameters. An SDK
that runs the algorithm of docs/sdk.md ("The configuration") on it answers exactly what
``POST /v1/resolve`` answers.

The ETag is a hash of the project's content (everything but ``etag`` and
``generated_at``), not of the catalog's revision: another tenant's write moves the
revision but not this project's content, so it never sends this project's SDKs to fetch.
Configurations are built once per project and catalog snapshot (:class:`ConfigCache`):
every stream of a project recomputes its ETag on each catalog change, and polling fleets
ask far more often than anything changes. Each prompt's part is encoded and hashed once
per compiled routing, so a snapshot that changed another tenant's prompt costs a project
a few lookups and one hash of its prompts' digests.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from controlplane.catalog import Catalog, PromptEntry
from controlplane.ids import IdShape, encode
from controlplane.resolve.hashing import BUCKETS
from controlplane.resolve.routing import Routing
from controlplane.resolve.traffic import format_version, single_version

HASHING_ALGORITHM = "murmur3_x86_32"
HASH_SEED = 0
HASH_INPUT = "{salt}:{user_id}"
MAX_CACHED_PROJECTS = 10_000
"""Projects whose configuration is kept before the cache starts over."""
MAX_CACHED_PROMPTS = 100_000
"""Prompts whose encoded part is kept before that cache starts over (deleted ones linger)."""


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    """A project's configuration for one catalog snapshot."""

    project_id: uuid.UUID
    etag: str
    """A quoted strong entity tag (``"<32 hex>"``), as the ``ETag`` header carries it."""
    content: dict[str, Any]
    """The body without ``project_id``, ``etag`` and ``generated_at``."""

    def body(self, generated_at: str) -> dict[str, Any]:
        """The answer of ``GET /v1/sdk/config``."""
        return {
            "project_id": str(self.project_id),
            "etag": self.etag,
            "generated_at": generated_at,
            **self.content,
        }


HASHING: dict[str, Any] = {
    "algorithm": HASHING_ALGORITHM,
    "seed": HASH_SEED,
    "buckets": BUCKETS,
    "input": HASH_INPUT,
    "variant_salt": "<prompt uuid hex>",
    "coverage_salt": "<prompt uuid hex>:coverage:<rule name>",
}
"""How users are hashed to buckets (``controlplane.resolve.hashing``), as data: the
salts' shapes, filled in with each prompt's ``prompt_uuid`` without dashes."""


def prompt_config(entry: PromptEntry, routing: Routing) -> dict[str, Any]:
    """One prompt as the configuration lists it; ``routing`` is ``entry.routing``."""
    source = routing.source
    traffic = source.traffic if source is not None else single_version(max(routing.versions))
    rules = [rule.to_json() for rule in source.rules] if source is not None else []
    deployment = routing.deployment_id
    return {
        "name": entry.name,
        "prompt_id": encode(IdShape.PROMPT, entry.id),
        "prompt_uuid": str(entry.id),
        "traffic_rule": routing.traffic_rule,
        "deployment_id": encode(IdShape.DEPLOYMENT, deployment) if deployment else None,
        "traffic": traffic.to_json(),
        "rules": rules,
        "versions": [
            {
                "version": format_version(number),
                "number": number,
                "version_id": encode(IdShape.VERSION, served.id),
                "content_hash": served.content_hash,
                "content": served.content,
                "variables": list(served.variables),
            }
            for number, served in sorted(routing.versions.items())
        ],
    }


@dataclass(frozen=True, slots=True)
class _PromptPart:
    """One prompt's part of the configuration, and the digest of its canonical JSON."""

    routing: Routing
    name: str
    data: dict[str, Any]
    digest: bytes


def _part(entry: PromptEntry, routing: Routing) -> _PromptPart:
    data = prompt_config(entry, routing)
    digest = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).digest()
    return _PromptPart(routing, entry.name, data, digest)


_HASHING_DIGEST = hashlib.sha256(orjson.dumps(HASHING, option=orjson.OPT_SORT_KEYS)).digest()


def build_config(
    catalog: Catalog,
    project_id: uuid.UUID,
    parts: dict[uuid.UUID, _PromptPart] | None = None,
) -> ProjectConfig:
    """The project's configuration in ``catalog``: prompts by name, versions by number.

    A prompt with nothing to serve (no version yet, or no deployment that loads) is left
    out, as resolve answers 404 for it. The ETag hashes the project id, the hashing
    parameters and each prompt's digest in order: a function of the content only. With
    ``parts`` (by prompt id), a prompt whose routing object and name are unchanged (the
    catalog keeps a routing across reloads while its inputs are the same) is not encoded
    or hashed again.
    """
    names = catalog.by_name.get(project_id.int, {})
    digest = hashlib.sha256(project_id.bytes + _HASHING_DIGEST)
    prompts: list[dict[str, Any]] = []
    for name in sorted(names):
        entry = names[name]
        routing = entry.routing
        if routing is None:
            continue
        part = parts.get(entry.id) if parts is not None else None
        if part is None or part.routing is not routing or part.name != entry.name:
            part = _part(entry, routing)
            if parts is not None:
                if len(parts) >= MAX_CACHED_PROMPTS:
                    parts.clear()
                parts[entry.id] = part
        prompts.append(part.data)
        digest.update(part.digest)
    content = {"hashing": HASHING, "prompts": prompts}
    return ProjectConfig(project_id, f'"{digest.hexdigest()[:32]}"', content)


class ConfigCache:
    """Configurations by project, each valid for the catalog snapshot it was built from."""

    __slots__ = ("_built", "_parts")

    def __init__(self) -> None:
        self._built: dict[uuid.UUID, tuple[int, ProjectConfig]] = {}
        """By project: the revision of the snapshot it was built from, and the config (not
        the snapshot itself, which would keep old snapshots alive)."""
        self._parts: dict[uuid.UUID, _PromptPart] = {}
        """By prompt: its encoded part, reused while its routing is (any tenant's write
        makes a new snapshot, and every project with open streams is checked again)."""

    def get(self, catalog: Catalog, project_id: uuid.UUID) -> ProjectConfig:
        """The project's configuration in ``catalog``, built at most once per snapshot."""
        held = self._built.get(project_id)
        if held is not None and held[0] == catalog.revision:
            return held[1]
        config = build_config(catalog, project_id, self._parts)
        if len(self._built) >= MAX_CACHED_PROJECTS:
            self._built.clear()
        self._built[project_id] = (catalog.revision, config)
        return config
