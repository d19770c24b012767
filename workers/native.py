"""A block of rows in ClickHouse's Native format, encoded a whole column at a time.

clickhouse-connect's insert encoding cost a worker about 2.8 µs per row, a sixth of its CPU
per event: it inspects every column's values and builds the block through generic paths. The
raw tables use a handful of types, so this encodes exactly those, each column in one pass
(numbers through ``array``, UUIDs as ClickHouse's two little-endian halves), and the sink sends
the bytes as they are (``workers/sink.py``). A table with any other type gets None here and the
driver's own encoding. Every value is encoded as the driver would (a None UUID as zeros, a
naive time as local time) or refused with the driver's ``DataError``, which the flush treats as
a refused insert (``tests/workers/test_native.py`` holds both to the driver's bytes and to what
the engine stores).
"""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Callable, Sequence
from math import floor, log
from typing import Any

from clickhouse_connect.driver.exceptions import DataError

Encoder = Callable[[Sequence[Any]], bytes]
"""A column's values to their Native bytes (serialization prefix included)."""

_SWAP = sys.byteorder == "big"
_U32 = next(code for code in "ILH" if array(code).itemsize == 4)
_ZERO_UUID = bytes(16)
_LENGTHS = [bytes([n]) for n in range(128)]
_ENUM_MEMBER = re.compile(r"'((?:[^'\\]|\\.)*)'\s*=\s*(-?\d+)")
_LOW_CARDINALITY_PREFIX = (1).to_bytes(8, "little")
"""The shared-dictionary serialization version a LowCardinality column starts with."""
_LOW_CARDINALITY_FLAGS = (1 << 9) | (1 << 10)
"""A dictionary of this block's own, holding every key it uses."""


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _numbers(code: str, values: Sequence[Any]) -> bytes:
    packed = array(code, values)
    if _SWAP:
        packed.byteswap()
    return packed.tobytes()


def _uint32(values: Sequence[Any]) -> bytes:
    return _numbers(_U32, values)


def _uint64(values: Sequence[Any]) -> bytes:
    return _numbers("Q", values)


def _float64(values: Sequence[Any]) -> bytes:
    return _numbers("d", values)


def _null_map(values: Sequence[Any]) -> bytes:
    return bytes([value is None for value in values])


def _nullable_float64(values: Sequence[Any]) -> bytes:
    return _null_map(values) + _float64([0.0 if value is None else value for value in values])


def _uuids(values: Sequence[Any]) -> bytes:
    # Each UUID is its high 64 bits, then its low 64 bits, each little-endian: the big-endian
    # 16 bytes with each half's bytes reversed, which ``byteswap`` does for a whole column.
    halves = array(
        "Q",
        b"".join([_ZERO_UUID if not value else value.int.to_bytes(16, "big") for value in values]),
    )
    halves.byteswap()
    return halves.tobytes()


def _nullable_uuids(values: Sequence[Any]) -> bytes:
    return _null_map(values) + _uuids(values)


def _strings(values: Sequence[Any]) -> bytes:
    lengths = _LENGTHS
    parts: list[bytes] = []
    add = parts.append
    for value in values:
        data = value if type(value) is bytes else str.encode(value)
        size = len(data)
        add(lengths[size] if size < 128 else _leb128(size))
        add(data)
    return b"".join(parts)


def _low_cardinality_strings(values: Sequence[Any]) -> bytes:
    """A dictionary of the column's distinct values, then each row's key into it."""
    if not values:
        return _LOW_CARDINALITY_PREFIX
    keys: dict[Any, int] = {}
    setdefault = keys.setdefault
    indexes = [setdefault(value, len(keys)) for value in values]
    width = int(log(len(keys), 2)) >> 3  # 0: UInt8 keys, 1: UInt16, 2: UInt32, 3: UInt64
    return b"".join(
        (
            _LOW_CARDINALITY_PREFIX,
            (_LOW_CARDINALITY_FLAGS | width).to_bytes(8, "little"),
            len(keys).to_bytes(8, "little"),
            _strings(list(keys)),
            len(indexes).to_bytes(8, "little"),
            _numbers(("B", "H", _U32, "Q")[width], indexes),
        )
    )


def _datetime64_ms(values: Sequence[Any]) -> bytes:
    # As the driver: whole seconds of ``timestamp()`` (a naive time is local), then the
    # milliseconds of the microseconds, rounded down.
    return _numbers(
        "q",
        [
            value
            if type(value) is int
            else floor(value.timestamp()) * 1000 + value.microsecond // 1000
            for value in values
        ],
    )


def _booleans(values: Sequence[Any]) -> bytes:
    return bytes([1 if value else 0 for value in values])


def _enum8(type_name: str) -> Encoder:
    members = {name: number for name, number in _ENUM_MEMBER.findall(type_name)}
    numbers = {name: int(number) for name, number in members.items()}

    def encode(values: Sequence[Any]) -> bytes:
        return _numbers("b", [numbers[value] if type(value) is str else value for value in values])

    return encode


_ENCODERS: dict[str, Encoder] = {
    "UUID": _uuids,
    "Nullable(UUID)": _nullable_uuids,
    "String": _strings,
    "LowCardinality(String)": _low_cardinality_strings,
    "Float64": _float64,
    "Nullable(Float64)": _nullable_float64,
    "UInt32": _uint32,
    "UInt64": _uint64,
    "Bool": _booleans,
    "DateTime64(3, 'UTC')": _datetime64_ms,
    "DateTime64(3)": _datetime64_ms,
}


def encoder(type_name: str) -> Encoder | None:
    """The encoder of a column of ``type_name`` (as the server names it), None if not ours."""
    if type_name.startswith("Enum8(") and "\\" not in type_name:
        return _enum8(type_name)
    return _ENCODERS.get(type_name)


class NativeBlock:
    """Encodes blocks of one table's columns, once the columns' types are known."""

    def __init__(self, names: Sequence[str], types: Sequence[str]) -> None:
        found = [encoder(name) for name in types]
        self._encoders = [found_one for found_one in found if found_one is not None]
        self.complete = len(self._encoders) == len(found)
        """Whether every column has an encoder here (else the driver encodes the table)."""
        self._names = list(names)
        self._heads = [
            _leb128(len(name.encode())) + name.encode() + _leb128(len(kind)) + kind.encode()
            for name, kind in zip(names, types, strict=True)
        ]

    def encode(self, columns: Sequence[Sequence[Any]]) -> bytes:
        """One block of ``columns`` (each a column's values, all of one length).

        Raises the driver's ``DataError`` for a value its column's type cannot hold.
        """
        rows = len(columns[0]) if columns else 0
        parts = [_leb128(len(columns)), _leb128(rows)]
        for name, head, encode, values in zip(
            self._names, self._heads, self._encoders, columns, strict=True
        ):
            if len(values) != rows:
                raise DataError(f"column `{name}` has {len(values)} values, not {rows}")
            try:
                data = encode(values)
            except (TypeError, ValueError, OverflowError, AttributeError, KeyError) as error:
                raise DataError(f"Unable to encode column `{name}`: {error!r}") from None
            parts.append(head)
            parts.append(data)
        return b"".join(parts)
