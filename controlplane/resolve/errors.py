"""Why a deployment spec or a resolve was refused, in words a route can pass on as-is.

Each error carries ``code``, the canonical error kind of ``promptline.http.errors``
(``weight_mismatch``, ``not_found``, ``invalid_request``), and ``field``, the JSON path of
the offending input, so the deploy route maps them to HTTP without parsing messages.
The control plane does not import the HTTP layer, hence plain strings.
"""

from __future__ import annotations


class DeploymentSpecError(ValueError):
    """A traffic split or a rule list that cannot be deployed."""

    code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidTraffic(DeploymentSpecError):
    """Malformed traffic: wrong types, a negative weight, a version named twice."""


class WeightMismatch(DeploymentSpecError):
    """Weights that do not add up to 100 (seed 001's ``weight_mismatch``)."""

    code = "weight_mismatch"


class UnknownVersion(DeploymentSpecError):
    """A version reference that names no version of the prompt (seed 001's 404)."""

    code = "not_found"


class InvalidRule(DeploymentSpecError):
    """A targeting rule that is malformed."""


class MissingVariablesError(ValueError):
    """Strict resolve: the context lacks variables the chosen version uses."""

    code = "invalid_request"

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__("Missing template variables: " + ", ".join(names) + ".")
        self.names = names
