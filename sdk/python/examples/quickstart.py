"""Resolve a prompt locally and report the LLM call, against ``make up``'s local stack.

Run from the repository's folder with the stack up (``make up``)::

    .venv/bin/python sdk/python/examples/quickstart.py

It reads the URL and key from ``.promptline/local.env`` (or ``PROMPTLINE_URL`` and
``PROMPTLINE_API_KEY``), makes sure a prompt ``sdk-quickstart`` exists with two versions
deployed 50/50 (plain HTTP calls: the SDK resolves and reports, it does not author), then
resolves it for a few users with the SDK, reports each call, and prints what it did.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import httpx

from promptline_sdk import Client

PROMPT = "sdk-quickstart"


def local_env(path: Path = Path(".promptline/local.env")) -> tuple[str, str]:
    """The stack's URL and API key: the environment first, then ``local.env``."""
    values = dict(os.environ)
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            values.setdefault(name.strip(), value.strip())
    return values["PROMPTLINE_URL"], values["PROMPTLINE_API_KEY"]


def ensure_prompt(url: str, key: str) -> None:
    """Create the prompt, two versions and a 50/50 deployment, unless they exist."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        if http.get(f"/v1/prompts/{PROMPT}").status_code == 200:
            return
        http.post("/v1/prompts", json={"name": PROMPT}).raise_for_status()
        for content in (
            "You are a support agent for {{company}}. Be brief.",
            "You are a friendly support agent for {{company}}. Be brief and warm.",
        ):
            http.post(f"/v1/prompts/{PROMPT}/versions", json={"content": content})
        split = [{"version": "v1", "weight": 50}, {"version": "v2", "weight": 50}]
        http.post(f"/v1/prompts/{PROMPT}/deploy", json={"traffic": split}).raise_for_status()


def main() -> None:
    url, key = local_env()
    ensure_prompt(url, key)
    with Client(url, key) as client:  # waits at most 2 s for the configuration
        print(f"configuration {client.config_etag}, {client.config_age:.1f} s old")
        for user in ("usr_1", "usr_2", "usr_3", "usr_4"):
            prompt = client.resolve(PROMPT, user, {"company": "Acme"}, fallback="Be helpful.")
            started = time.perf_counter()
            # ... call your LLM with prompt.content here ...
            latency_ms = (time.perf_counter() - started) * 1000 + random.uniform(200, 400)
            if prompt.content_hash is not None:
                client.analytics(PROMPT, prompt.content_hash, latency_ms=latency_ms)
            client.signal(PROMPT, "positive", user_id=user)  # carries the version resolved
            print(f"{user}: {prompt.version} ({prompt.source}) {prompt.content!r}")
        delivered = client.flush(timeout=10)
        print("events delivered" if delivered else "events still queued (is the stack up?)")


if __name__ == "__main__":
    main()
