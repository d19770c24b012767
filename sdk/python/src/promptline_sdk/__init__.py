"""promptline's Python SDK: resolve prompts locally, keep serving through outages, report events.

``Client`` (threads) and ``AsyncClient`` (asyncio tasks) have the same shape: ``resolve``
answers from the project's configuration held in memory, with no network call, exactly as
the server's ``POST /v1/resolve`` would; ``analytics``, ``signal`` and ``usage`` queue
events for a background sender. See the SDK's README.
"""

from promptline_sdk._core import Resolution, Source
from promptline_sdk.aio import AsyncClient
from promptline_sdk.client import Client
from promptline_sdk.resolve import CompiledConfig, ConfigError, ResolveError, compile_config

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Client",
    "CompiledConfig",
    "ConfigError",
    "Resolution",
    "ResolveError",
    "Source",
    "__version__",
    "compile_config",
]
