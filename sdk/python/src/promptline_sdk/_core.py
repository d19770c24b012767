"""What the synchronous and asynchronous clients share: options, state, resolve, exposures.

Neither client does I/O on the resolve path: ``resolve`` reads the configuration the
background refresh last swapped in (one attribute read, so no lock), decides locally and
hands the exposure to the event sender's queue.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from promptline_sdk import cache
from promptline_sdk._backoff import parse_retry_after
from promptline_sdk._engine import Engine
from promptline_sdk.resolve import (
    CompiledConfig,
    CompiledPrompt,
    CompiledVersion,
    ResolveError,
    compile_config,
)
from promptline_sdk.sse import Event

log = logging.getLogger("promptline_sdk")

VERSION: Final = "0.1.0"
USER_AGENT: Final = f"promptline-sdk-python/{VERSION}"
CONFIG_PATH: Final = "/v1/sdk/config"
STREAM_PATH: Final = "/v1/sdk/stream"

Source = Literal["config", "disk", "fallback", "none"]


@dataclass(slots=True)
class Resolution:
    """The answer to one local resolve: the server's fields, and where it came from.

    ``source`` is ``"config"`` (a configuration fetched from the server in this process),
    ``"disk"`` (the last one saved to ``cache_path``, the server unreachable at start),
    ``"fallback"`` (the caller's fallback content: no configuration, or an ``error``) or
    ``"none"`` (nothing to serve: ``error`` says why, ``content`` is None).
    ``config_age`` is the seconds since the configuration was last known current (None
    without one). ``split`` says whether the deployment's weighted split chose the version
    (not a targeting rule, not a never-deployed prompt's latest version).
    """

    prompt: str
    version: str | None
    content: str | None
    resolved_at: str
    traffic_rule: str | None
    prompt_id: str | None
    prompt_uuid: str | None
    version_id: str | None
    content_hash: str | None
    deployment_id: str | None
    missing_variables: tuple[str, ...]
    split: bool
    source: Source
    config_age: float | None
    error: ResolveError | None = None
    version_number: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the configuration answered (no error)."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The server's ``POST /v1/resolve`` answer (seed 001's shape)."""
        return {
            "prompt": self.prompt,
            "version": self.version,
            "content": self.content,
            "resolved_at": self.resolved_at,
            "traffic_rule": self.traffic_rule,
            "prompt_id": self.prompt_id,
            "prompt_uuid": self.prompt_uuid,
            "version_id": self.version_id,
            "content_hash": self.content_hash,
            "deployment_id": self.deployment_id,
            "missing_variables": list(self.missing_variables),
        }


@dataclass(frozen=True, slots=True)
class State:
    """The configuration being served, swapped whole by the background refresh."""

    config: CompiledConfig | None
    source: Source
    confirmed_at: float
    """``time.time()`` when the server last said this configuration was current."""


NO_STATE: Final = State(None, "none", 0.0)


@dataclass(frozen=True, slots=True)
class Options:
    """A client's options; see the SDK README for what each does."""

    base_url: str
    api_key: str
    startup_timeout: float = 2.0
    poll_interval: float = 30.0
    stream: bool = True
    cache_path: str | os.PathLike[str] | None = None
    raise_errors: bool = False
    request_timeout: float = 10.0
    stream_read_timeout: float = 45.0
    events: bool = True
    max_remembered: int = 100_000


def options(
    base_url: str | None,
    api_key: str | None,
    **kwargs: Any,
) -> Options:
    """Options from arguments, ``PROMPTLINE_URL`` and ``PROMPTLINE_API_KEY`` otherwise."""
    url = base_url or os.environ.get("PROMPTLINE_URL")
    key = api_key or os.environ.get("PROMPTLINE_API_KEY")
    if not url:
        raise ValueError("base_url is required (or set PROMPTLINE_URL)")
    if not key:
        raise ValueError("api_key is required (or set PROMPTLINE_API_KEY)")
    return Options(url.rstrip("/"), key, **kwargs)


def headers(api_key: str) -> dict[str, str]:
    """What every request of the SDK sends."""
    return {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT}


def same_etag(left: str | None, right: str | None) -> bool:
    """Entity tags compared weakly: ``W/"x"``, ``"x"`` and ``x`` are the same tag."""
    if left is None or right is None:
        return False
    return _bare(left) == _bare(right)


def _bare(tag: str) -> str:
    return tag.strip().removeprefix("W/").strip('"')


def stream_etag(data: str) -> str | None:
    """The ``etag`` of a ``config`` event's data, or None if unreadable."""
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    etag = payload.get("etag") if isinstance(payload, dict) else None
    return etag if isinstance(etag, str) else None


STREAM_REFUSED_WAIT: Final = 60.0
"""Seconds before trying the stream again after a 4xx other than 429 (polling goes on)."""


def stream_refused_wait(status: int, retry_after: str | None) -> float | None:
    """How long to wait before reopening a stream the server refused with ``status``."""
    wait = parse_retry_after(retry_after)
    if status != 429 and status < 500:
        wait = max(wait or 0.0, STREAM_REFUSED_WAIT)
    log.debug("promptline: the stream answered %s", status)
    return wait


_forked_clients: weakref.WeakSet[Core] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_forked_clients):
        client._forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


class Core:
    """State and resolve, shared by :class:`~promptline_sdk.Client` and ``AsyncClient``."""

    def __init__(self, opts: Options) -> None:
        self.options = opts
        self._state = NO_STATE
        self._forked = False
        self._exposed: set[tuple[int, int, str]] = set()
        self._last_version: dict[tuple[str, str], int] = {}
        self._second = -1
        self._stamp = ""
        self._events: Engine | None = None
        _forked_clients.add(self)
        if opts.cache_path is not None:
            saved = cache.load(opts.cache_path)
            if saved is not None:
                self._install(saved[0], "disk", saved[1], save=False)

    # --- the configuration ----------------------------------------------------------

    @property
    def config(self) -> CompiledConfig | None:
        """The configuration being served, or None before the first one."""
        return self._state.config

    @property
    def config_etag(self) -> str | None:
        """The ETag of the configuration being served, or None before the first one."""
        config = self._state.config
        return config.etag if config is not None else None

    @property
    def config_age(self) -> float | None:
        """Seconds since the server last confirmed the configuration; None without one."""
        state = self._state
        if state.config is None:
            return None
        return max(0.0, time.time() - state.confirmed_at)

    @property
    def config_source(self) -> Source:
        """``"config"``, ``"disk"`` or ``"none"``: where the configuration came from."""
        return self._state.source

    def _install(self, raw: Any, source: Source, fetched_at: float, *, save: bool = True) -> bool:
        """Compile and serve ``raw``; False (the old one kept) if it cannot be used."""
        try:
            config = compile_config(raw)
        except Exception as error:  # ConfigError, or a shape no check foresaw: keep the old
            log.error("promptline: ignoring a configuration this SDK cannot use: %s", error)
            return False
        self._state = State(config, source, fetched_at)
        return True

    def _announced(self, event: Event | None) -> bool:
        """Whether a stream event announces a configuration other than the one served."""
        if event is None or event.name != "config":
            return False
        etag = stream_etag(event.data)
        return not same_etag(etag, self.config_etag) or self.config_source != "config"

    def _confirm(self) -> None:
        """The server said (304) the configuration is still current."""
        state = self._state
        if state.config is not None:
            self._state = State(state.config, "config", time.time())

    def _accept(self, status: int, etag: str | None, body: bytes) -> bool:
        """Apply a ``GET /v1/sdk/config`` answer; whether to save ``body`` to disk."""
        if status == 304:
            self._confirm()
            return False
        if status != 200:
            log.warning("promptline: GET %s answered %s", CONFIG_PATH, status)
            return False
        try:
            raw = json.loads(body)
        except ValueError:
            log.error("promptline: GET %s answered invalid JSON", CONFIG_PATH)
            return False
        if isinstance(raw, dict) and etag and not raw.get("etag"):
            raw["etag"] = etag
        return self._install(raw, "config", time.time())

    def _save(self) -> None:
        """Write the configuration being served to ``cache_path`` (if set)."""
        state = self._state
        if self.options.cache_path is not None and state.config is not None:
            cache.save(self.options.cache_path, state.config.raw, state.confirmed_at)

    # --- resolve --------------------------------------------------------------------

    def _resolve(
        self,
        prompt: str,
        user_id: str,
        context: Mapping[str, Any] | None,
        strict: bool,
        fallback: str | None,
    ) -> Resolution:
        state = self._state
        config = state.config
        if config is None:
            return self._failed(
                state,
                prompt,
                ResolveError(
                    "unavailable",
                    "No configuration yet: the server did not answer in time and no "
                    "cached configuration was found.",
                ),
                fallback,
            )
        try:
            decision = config.decide(prompt, user_id, context, strict)
        except ResolveError as error:
            return self._failed(state, prompt, error, fallback)
        now = time.time()
        second = int(now)
        if second != self._second:
            self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._second = second
        entry = decision.prompt
        version = decision.version
        number = version.number
        key = (entry.uuid_int, number, user_id)
        if key not in self._exposed:
            self._expose(key, decision.traffic_rule, decision.by_split, entry, version, now)
        remembered = (entry.prompt_uuid, user_id)
        if self._last_version.get(remembered) != number:
            if len(self._last_version) >= self.options.max_remembered:
                self._last_version.clear()
            self._last_version[remembered] = number
        return Resolution(
            entry.name,
            version.version,
            decision.content,
            self._stamp,
            decision.traffic_rule,
            entry.prompt_id,
            entry.prompt_uuid,
            version.version_id,
            version.content_hash,
            entry.deployment_id,
            decision.missing_variables,
            decision.by_split,
            state.source,
            max(0.0, now - state.confirmed_at),
            None,
            number,
        )

    def _expose(
        self,
        key: tuple[int, int, str],
        traffic_rule: str,
        split: bool,
        entry: CompiledPrompt,
        version: CompiledVersion,
        now: float,
    ) -> None:
        """Report the exposure once per (prompt, version, user) in this process."""
        if len(self._exposed) >= self.options.max_remembered:
            self._exposed.clear()
        self._exposed.add(key)
        sender = self._events
        if sender is None:
            return
        try:
            sender.exposure(
                entry.prompt_id,
                version.number,
                version.content_hash,
                entry.deployment_id,
                traffic_rule,
                split,
                key[2],
                now,
            )
        except Exception:  # the resolve path never fails because of events
            log.exception("promptline: could not queue an exposure")

    def _failed(
        self, state: State, prompt: str, error: ResolveError, fallback: str | None
    ) -> Resolution:
        if self.options.raise_errors:
            raise error
        config_age = None if state.config is None else max(0.0, time.time() - state.confirmed_at)
        return Resolution(
            prompt if isinstance(prompt, str) else str(prompt),
            None,
            fallback,
            datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            None,
            None,
            None,
            None,
            None,
            None,
            (),
            False,
            "fallback" if fallback is not None else "none",
            config_age,
            error,
        )

    # --- events ---------------------------------------------------------------------

    def analytics(
        self,
        prompt: str,
        version_hash: str,
        *,
        latency_ms: float | None = None,
        cost_usd: float | None = None,
        score: float | None = None,
        idempotency_key: str | None = None,
    ) -> str | None:
        """Queue an analytics event (one LLM call); its idempotency key (None: events off)."""
        if self._events is None:
            return None
        key: str = self._events.analytics(
            prompt,
            version_hash,
            latency_ms=latency_ms,
            cost_usd=cost_usd,
            score=score,
            idempotency_key=idempotency_key,
        )
        return key

    def signal(
        self,
        prompt: str,
        value: str,
        *,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> str | None:
        """Queue a feedback signal; ``metadata.version`` is the version this process last
        resolved for ``user_id`` and ``prompt`` unless ``metadata`` names one."""
        if self._events is None:
            return None
        key: str = self._events.signal(
            prompt,
            value,
            metadata=self._signal_metadata(prompt, user_id, metadata),
            idempotency_key=idempotency_key,
        )
        return key

    def usage(
        self,
        name: str,
        version: int,
        trace_id: str | uuid.UUID,
        span_id: str | uuid.UUID | None = None,
    ) -> str | None:
        """Queue a usage link (a prompt version used in a trace)."""
        if self._events is None:
            return None
        key: str = self._events.usage(name, version, trace_id, span_id)
        return key

    def last_version(self, prompt: str, user_id: str) -> int | None:
        """The version number this process last resolved for the user and prompt."""
        config = self._state.config
        key = config.unit_key(prompt) if config is not None else prompt
        return self._last_version.get((key, user_id))

    def _signal_metadata(
        self, prompt: str, user_id: str | None, metadata: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        """``metadata`` with ``version`` set to the version last resolved, when known."""
        if user_id is None or (metadata is not None and metadata.get("version") is not None):
            return dict(metadata) if metadata is not None else None
        number = self.last_version(prompt, user_id)
        if number is None:
            return dict(metadata) if metadata is not None else None
        return {**(metadata or {}), "version": number}
