"""The opt-in disk cache: the last good configuration, so a restart during an outage serves it.

Written atomically after each new configuration (a temporary file in the same folder, then
``os.replace``), so a reader never sees half a file; read once, when a client starts.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("promptline_sdk")

FORMAT = "promptline-sdk-config/1"


def save(path: str | os.PathLike[str], config: Any, fetched_at: float) -> None:
    """Write ``config`` (the server's JSON) and when it was fetched; never raises."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps(
            {"format": FORMAT, "fetched_at": fetched_at, "config": config},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        handle, temporary = tempfile.mkstemp(prefix=target.name + ".", dir=target.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except (OSError, TypeError, ValueError) as error:
        log.warning("promptline: could not save the configuration to %s: %s", target, error)


def load(path: str | os.PathLike[str]) -> tuple[dict[str, Any], float] | None:
    """The saved configuration and when it was fetched; None if absent or unreadable."""
    try:
        saved = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("promptline: ignoring the configuration cache %s: %s", path, error)
        return None
    if (
        not isinstance(saved, dict)
        or saved.get("format") != FORMAT
        or not isinstance(saved.get("config"), dict)
        or not isinstance(saved.get("fetched_at"), int | float)
    ):
        log.warning("promptline: ignoring the configuration cache %s: unknown format", path)
        return None
    return saved["config"], float(saved["fetched_at"])
