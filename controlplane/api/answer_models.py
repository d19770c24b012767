"""The control plane's answers as pydantic models, for the API document only.

The handlers build their answers as dicts (``promptlab``, ``dashboard``, ``templates``);
these models describe those dicts in ``/openapi.json`` and a test checks real answers
against them, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, RootModel


class PromptOut(BaseModel):
    """Seed 001's prompt: ``active_version`` is null for a prompt without versions."""

    id: str
    name: str
    description: str
    active_version: str | None
    version_count: int
    created_at: str
    updated_at: str


class PromptList(BaseModel):
    """Every prompt of the key's project."""

    prompts: list[PromptOut]
    total: int


class VersionOut(BaseModel):
    """One version; ``content`` only when a single version is shown."""

    version_id: str
    version: str
    prompt_id: str
    content_hash: str
    message: str
    variables: list[str]
    created_by: str
    created_at: str
    content: str | None = None


class VersionList(BaseModel):
    """A prompt's versions, newest first."""

    versions: list[VersionOut]
    total: int


class DeploymentOut(BaseModel):
    """One deployment: its traffic weights and targeting rules as they were given."""

    deployment_id: str
    prompt_id: str
    label: str
    traffic: Any
    rules: Any
    deployed_at: str
    deployed_by: str
    rolled_back_to: str | None


class DeploymentList(BaseModel):
    """A prompt's deployment history, newest (the one in force) first."""

    deployments: list[DeploymentOut]
    total: int


class PromptDetail(PromptOut):
    """A prompt with its versions and the deployment in force (null if never deployed)."""

    versions: list[VersionOut]
    deployment: DeploymentOut | None


class RollbackOut(BaseModel):
    """The deployment rolled back to, and the new deployment that restores it."""

    rolled_back_to: str
    version: str
    rolled_back_at: str
    deployment_id: str
    prompt_id: str


class DashboardVersion(BaseModel):
    """Seed 002's version of a named prompt."""

    id: str
    name: str
    version: int
    content: str
    description: str | None
    is_active: bool
    created_at: str


class DashboardVersions(RootModel[list[DashboardVersion]]):
    """Versions by name, then newest version first."""


class TemplateVersion(BaseModel):
    """Seed 003's version; ``content`` and ``variables`` only for the chosen one."""

    id: str
    version: int
    content: str | None = None
    variables: list[str] | None = None
    commitMessage: str | None
    createdAt: str


class TemplateOut(BaseModel):
    """Seed 003's template."""

    id: str
    name: str
    description: str | None
    latestVersion: int | None
    createdAt: str
    updatedAt: str


class TemplateDetail(TemplateOut):
    """A template with its chosen version and every version, newest first."""

    version: TemplateVersion
    versions: list[TemplateVersion]


class TemplateList(BaseModel):
    """Every template of the key's project."""

    data: list[TemplateOut]


class TemplateFound(BaseModel):
    """One template (``?name=``)."""

    data: TemplateDetail


class TemplatePushed(BaseModel):
    """The template (created if new) and its new version."""

    class Ids(BaseModel):
        """Ids of the template and of the version pushed."""

        templateId: str
        templateName: str
        versionId: str
        version: int

    data: Ids
