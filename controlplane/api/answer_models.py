"""The control plane's answers as pydantic models, for the API document only.

The handlers build their answers as dicts (``promptlab``, ``dashboard``, ``templates``);
these models describe those dicts in ``/openapi.json`` and a test checks real answers
against them, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, RootModel


class _Answer(BaseModel):
    """Exactly the fields the handler writes: a field added there and not here fails a test."""

    model_config = ConfigDict(extra="forbid")


class PromptOut(_Answer):
    """Seed 001's prompt: ``active_version`` is null for a prompt without versions."""

    id: str
    prompt_uuid: str
    """The prompt's UUID, ClickHouse's key for it."""
    name: str
    description: str
    active_version: str | None
    version_count: int
    created_at: str
    updated_at: str


class PromptList(_Answer):
    """Every prompt of the key's project."""

    prompts: list[PromptOut]
    total: int


class VersionOut(_Answer):
    """One version; ``content`` only when a single version is shown."""

    version_id: str
    version: str
    prompt_id: str
    prompt_uuid: str
    """The prompt's UUID, ClickHouse's key for it."""
    content_hash: str
    message: str
    variables: list[str]
    created_by: str
    created_at: str
    content: str | None = None


class VersionList(_Answer):
    """A prompt's versions, newest first."""

    versions: list[VersionOut]
    total: int


class DeploymentOut(_Answer):
    """One deployment: its traffic weights and targeting rules as they were given."""

    deployment_id: str
    prompt_id: str
    prompt_uuid: str
    """The prompt's UUID, ClickHouse's key for it."""
    label: str
    traffic: Any
    rules: Any
    deployed_at: str
    deployed_by: str
    rolled_back_to: str | None
    reason: str | None = None
    """Why the guard wrote this deployment (a ramp step, or a rollback naming the metric,
    the estimate and the interval); null for one made by hand."""
    rollout_id: str | None = None
    """The guarded rollout (``rol_...``) that wrote or started this deployment, if any."""


class DeploymentList(_Answer):
    """A prompt's deployment history, newest (the one in force) first."""

    deployments: list[DeploymentOut]
    total: int


class PromptDetail(PromptOut):
    """A prompt with its versions and the deployment in force (null if never deployed)."""

    versions: list[VersionOut]
    deployment: DeploymentOut | None


class RollbackOut(_Answer):
    """The deployment rolled back to, and the new deployment that restores it."""

    rolled_back_to: str
    version: str
    rolled_back_at: str
    deployment_id: str
    prompt_id: str
    prompt_uuid: str
    """The prompt's UUID, ClickHouse's key for it."""


class DashboardVersion(_Answer):
    """Seed 002's version of a named prompt."""

    id: str
    name: str
    prompt_uuid: str
    """The prompt's UUID, ClickHouse's key for it."""
    version: int
    content: str
    description: str | None
    is_active: bool
    created_at: str


class DashboardVersions(RootModel[list[DashboardVersion]]):
    """Versions by name, then newest version first."""


class TemplateVersion(_Answer):
    """Seed 003's version; ``content`` and ``variables`` only for the chosen one."""

    id: str
    version: int
    content: str | None = None
    variables: list[str] | None = None
    commitMessage: str | None
    createdAt: str


class TemplateOut(_Answer):
    """Seed 003's template."""

    id: str
    prompt_uuid: str
    """The prompt's UUID, ClickHouse's key for it."""
    name: str
    description: str | None
    latestVersion: int | None
    createdAt: str
    updatedAt: str


class TemplateDetail(TemplateOut):
    """A template with its chosen version and every version, newest first."""

    version: TemplateVersion
    versions: list[TemplateVersion]


class TemplateList(_Answer):
    """Every template of the key's project."""

    data: list[TemplateOut]


class TemplateFound(_Answer):
    """One template (``?name=``)."""

    data: TemplateDetail


class TemplatePushed(_Answer):
    """The template (created if new) and its new version."""

    class Ids(_Answer):
        """Ids of the template and of the version pushed."""

        templateId: str
        templateName: str
        prompt_uuid: str
        """The prompt's UUID, ClickHouse's key for it."""
        versionId: str
        version: int

    data: Ids


class WebhookLastDelivery(_Answer):
    """A webhook's newest delivery: how its sending went (``pending`` until settled)."""

    delivery_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: str
    next_attempt_at: str | None
    settled_at: str | None
    """When it was delivered, or given up."""
    last_status: int | None
    """The HTTP status of the last attempt, null if it got no answer."""
    last_error: str | None


class WebhookOut(_Answer):
    """A project's webhook; its secret is never shown again after creation."""

    webhook_id: str
    url: str
    events: list[str]
    description: str
    created_at: str
    last_delivery: WebhookLastDelivery | None


class WebhookCreated(WebhookOut):
    """A webhook just registered, with its signing secret: shown this once."""

    secret: str


class WebhookList(_Answer):
    """The project's webhooks, oldest first."""

    webhooks: list[WebhookOut]
    total: int


class RolloutOut(_Answer):
    """A guarded rollout: where it is, the guard's latest look, and what happens next.

    ``evaluation`` is the guard's latest report (null before its first look): ``step``,
    ``percent``, ``time_in_step_seconds``, ``units`` per arm, ``guardrails`` (each with its
    ``estimate``, always-valid one-sided ``interval``, ``limit`` and ``verdict``),
    ``sample_ratio`` and the ``decision`` taken (docs/rollouts.md).
    """

    rollout_id: str
    prompt: str
    status: str
    candidate: str
    baseline: str
    ramp: list[int]
    step: int
    steps: int
    percent: int
    deployment_id: str
    started_at: str
    step_started_at: str
    ended_at: str | None
    outcome: str | None
    evaluation: dict[str, Any] | None
    next: str


class SdkHashing(_Answer):
    """How users are hashed to buckets; the salts' shapes, filled in per prompt and rule."""

    algorithm: Literal["murmur3_x86_32"]
    seed: int
    buckets: int
    input: str
    variant_salt: str
    coverage_salt: str


class SdkTrafficEntry(_Answer):
    """One entry of a split, as the deploy route stores it."""

    version: str
    weight: int


class SdkVersion(_Answer):
    """A version the prompt's routing can serve, with its content."""

    version: str
    number: int
    version_id: str
    content_hash: str
    content: str
    variables: list[str]


class SdkPrompt(_Answer):
    """A prompt that resolves: the deployment in force and the versions it can serve."""

    name: str
    prompt_id: str
    prompt_uuid: str
    traffic_rule: str
    """What resolve names when the split decides: the label, ``dep_<hex>`` or ``latest``."""
    deployment_id: str | None
    traffic: list[SdkTrafficEntry]
    rules: list[dict[str, Any]]
    """The targeting rules exactly as stored (docs/resolve.md)."""
    versions: list[SdkVersion]


class SdkConfig(_Answer):
    """Everything one project needs to resolve locally (docs/sdk.md, "The configuration")."""

    project_id: str
    etag: str
    generated_at: str
    hashing: SdkHashing
    prompts: list[SdkPrompt]
