"""Request bodies under ``Content-Encoding``, decoded as ClickHouse does.

clickhouse-connect compresses inserts by default with lz4, one lz4 *frame* per block,
frames concatenated; ``lz4.frame.decompress`` stops after the first frame, so every
frame is decoded in turn. zstd (one frame per block), gzip and deflate are decoded too.
aiohttp's own request decompression is switched off so that all encodings go through
here alike. ``br`` needs brotli (a dependency of the service since its routes must see
``br`` bodies to refuse them, ``promptline.http.codings``), and is refused without it.
"""

from __future__ import annotations

import gzip
import importlib
import zlib
from collections.abc import Callable
from typing import Any

import lz4.frame

from promptline.devstack.chdb_server.errors import (
    LZ4_DECODER_FAILED,
    NOT_IMPLEMENTED,
    ZLIB_INFLATE_FAILED,
    ZSTD_DECODER_FAILED,
    ClickHouseError,
)


def _lz4(body: bytes) -> bytes:
    """All concatenated lz4 frames."""
    out: list[bytes] = []
    rest = body
    while rest:
        decompressor: Any = lz4.frame.LZ4FrameDecompressor()
        out.append(bytes(decompressor.decompress(rest)))
        if not decompressor.eof:
            raise RuntimeError("truncated lz4 frame")
        rest = bytes(decompressor.unused_data or b"")
    return b"".join(out)


def _zstd(body: bytes) -> bytes:
    """All concatenated zstd frames (the module's decompress reads them all)."""
    for name in ("compression.zstd", "backports.zstd"):  # Python 3.14+, then the backport
        try:
            module: Any = importlib.import_module(name)
        except ImportError:
            continue
        return bytes(module.decompress(body))
    raise ClickHouseError.of(NOT_IMPLEMENTED, "zstd request bodies need the backports.zstd package")


def _gzip(body: bytes) -> bytes:
    return gzip.decompress(body)


def _deflate(body: bytes) -> bytes:
    """zlib-wrapped deflate, as ClickHouse and clickhouse-connect mean by ``deflate``."""
    return zlib.decompress(body)


def _brotli(body: bytes) -> bytes:
    try:
        module: Any = importlib.import_module("brotli")
    except ImportError:
        raise ClickHouseError.of(
            NOT_IMPLEMENTED, "br request bodies need the brotli package, which is not installed"
        ) from None
    return bytes(module.decompress(body))


_DECODERS: dict[str, tuple[Callable[[bytes], bytes], tuple[int, str]]] = {
    "lz4": (_lz4, LZ4_DECODER_FAILED),
    "zstd": (_zstd, ZSTD_DECODER_FAILED),
    "gzip": (_gzip, ZLIB_INFLATE_FAILED),
    "x-gzip": (_gzip, ZLIB_INFLATE_FAILED),
    "deflate": (_deflate, ZLIB_INFLATE_FAILED),
    "br": (_brotli, NOT_IMPLEMENTED),
}


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """The body with ``content_encoding`` undone; raises a ClickHouseError if it can't be."""
    encoding = (content_encoding or "").strip().lower()
    if not body or encoding in ("", "identity", "none"):
        return body
    if encoding not in _DECODERS:
        raise ClickHouseError.of(
            NOT_IMPLEMENTED,
            f"Unknown compression method '{encoding}'. "
            "Only lz4, zstd, gzip, deflate and br are supported as Content-Encoding",
        )
    decoder, error = _DECODERS[encoding]
    try:
        return decoder(body)
    except ClickHouseError:
        raise
    except Exception as exc:
        raise ClickHouseError.of(error, f"Cannot decode {encoding} request body: {exc}") from None
