"""Version references, split validation (seed 001's messages) and the bucket layout."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from controlplane.catalog import VersionEntry
from controlplane.resolve.errors import (
    DeploymentSpecError,
    InvalidTraffic,
    UnknownVersion,
    WeightMismatch,
)
from controlplane.resolve.hashing import BUCKETS, bucket
from controlplane.resolve.traffic import (
    MAX_ENTRIES,
    TrafficSplit,
    VersionSet,
    format_version,
    parse_traffic,
    parse_version_ref,
    single_version,
)
from controlplane.versions import content_hash

HASHES = {number: content_hash(f"content {number}") for number in range(1, 8)}
VERSIONS = VersionSet(VersionEntry(uuid.uuid4(), n, h) for n, h in HASHES.items())


def entries(*pairs: tuple[Any, Any]) -> list[dict[str, Any]]:
    return [{"version": version, "weight": weight} for version, weight in pairs]


@pytest.mark.parametrize(
    ("ref", "number"),
    [("v4", 4), ("V4", 4), ("4", 4), (4, 4), (" v7 ", 7), (HASHES[3], 3), (HASHES[3].upper(), 3)],
)
def test_version_refs(ref: str | int, number: int) -> None:
    assert parse_version_ref(ref, VERSIONS) == number


@pytest.mark.parametrize("ref", ["v9", 9, "sha256:" + "0" * 64])
def test_unknown_version_refs(ref: str | int) -> None:
    with pytest.raises(UnknownVersion) as caught:
        parse_version_ref(ref, VERSIONS, field="traffic[0].version")
    assert caught.value.code == "not_found"
    assert caught.value.field == "traffic[0].version"


@pytest.mark.parametrize("ref", ["x", "v", "v0", "0", 0, -1, "v-1", "sha256:abc", "4.0", True])
def test_malformed_version_refs(ref: Any) -> None:
    with pytest.raises(InvalidTraffic, match="Version must be"):
        parse_version_ref(ref, VERSIONS)


def test_version_set_latest_and_hashes() -> None:
    assert VERSIONS.latest == 7
    assert VersionSet([]).latest is None
    assert VERSIONS.number_of_hash(HASHES[2]) == 2
    assert 3 in VERSIONS
    assert 8 not in VERSIONS
    assert format_version(12) == "v12"


def test_seed_001_split_is_parsed_and_stored_canonically() -> None:
    split = parse_traffic(entries(("v4", 90), (HASHES[5], 10)), VERSIONS)
    assert split.entries == ((4, 90), (5, 10))
    assert split.to_json() == [{"version": "v4", "weight": 90}, {"version": "v5", "weight": 10}]
    assert split.numbers == {4, 5}


def test_weight_mismatch_message_is_seed_001s() -> None:
    with pytest.raises(WeightMismatch) as caught:
        parse_traffic(entries(("v4", 90), ("v5", 5)), VERSIONS)
    assert str(caught.value) == "Traffic weights must sum to 100. Got 95."
    assert caught.value.code == "weight_mismatch"
    assert caught.value.field == "traffic"


def test_empty_traffic_sums_to_zero() -> None:
    with pytest.raises(WeightMismatch, match=r"^Traffic weights must sum to 100\. Got 0\.$"):
        parse_traffic([], VERSIONS)


def test_negative_weight_is_refused_even_if_the_sum_is_100() -> None:
    with pytest.raises(InvalidTraffic, match=r"must not be negative\. Got -10 for v5") as caught:
        parse_traffic(entries(("v4", 110), ("v5", -10)), VERSIONS)
    assert caught.value.field == "traffic[1].weight"


@pytest.mark.parametrize("second", ["v4", 4, "4", HASHES[4]])
def test_same_version_twice_in_any_spelling(second: str | int) -> None:
    with pytest.raises(InvalidTraffic, match="v4 appears more than once") as caught:
        parse_traffic(entries(("v4", 50), (second, 50)), VERSIONS)
    assert caught.value.field == "traffic[1].version"


def test_unknown_version_in_traffic() -> None:
    with pytest.raises(UnknownVersion, match=r"^Version v9 does not exist\.$"):
        parse_traffic(entries(("v4", 50), ("v9", 50)), VERSIONS)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("v4", "traffic"),
        ({"version": "v4", "weight": 100}, "traffic"),
        ([{"version": "v4", "weight": 99.5}], "traffic[0].weight"),
        ([{"version": "v4", "weight": "100"}], "traffic[0].weight"),
        ([{"version": "v4", "weight": True}], "traffic[0].weight"),
        ([{"version": None, "weight": 100}], "traffic[0].version"),
        ([{"version": False, "weight": 100}], "traffic[0].version"),
        ([{"weight": 100}], "traffic[0].version"),
        ([{"version": "v4", "weight": 100, "extra": 1}], "traffic[0].extra"),
    ],
)
def test_malformed_traffic(raw: Any, field: str) -> None:
    with pytest.raises(InvalidTraffic) as caught:
        parse_traffic(raw, VERSIONS)
    assert caught.value.field == field
    assert str(caught.value).startswith(field + ": ")


def test_too_many_entries() -> None:
    raw = entries(("v4", 100), *[("v5", 0)] * MAX_ENTRIES)
    with pytest.raises(InvalidTraffic, match="At most"):
        parse_traffic(raw, VERSIONS)


def test_all_spec_errors_are_value_errors() -> None:
    for error in (InvalidTraffic, WeightMismatch, UnknownVersion):
        assert issubclass(error, DeploymentSpecError)
        assert issubclass(error, ValueError)


def test_layout_orders_by_version_number_not_by_request_order() -> None:
    given_order = parse_traffic(entries(("v5", 10), ("v3", 20), ("v4", 70)), VERSIONS)
    ranges = given_order.layout()
    assert ranges.numbers == (3, 4, 5)
    assert ranges.upper == (2000, 9000, BUCKETS)
    assert ranges == parse_traffic(entries(("v3", 20), ("v4", 70), ("v5", 10)), VERSIONS).layout()


def test_newest_version_takes_the_top_of_the_bucket_space() -> None:
    ranges = parse_traffic(entries(("v4", 90), ("v5", 10)), VERSIONS).layout()
    assert ranges.span(4) == (0, 9000)
    assert ranges.span(5) == (9000, BUCKETS)
    assert ranges.pick(0) == 4
    assert ranges.pick(8999) == 4
    assert ranges.pick(9000) == 5
    assert ranges.pick(BUCKETS - 1) == 5
    assert ranges.single is None


def test_draw_is_the_pick_of_the_salted_bucket() -> None:
    ranges = parse_traffic(entries(("v4", 50), ("v5", 50)), VERSIONS).layout()
    users = [f"usr_{n}" for n in range(200)]
    drawn = [ranges.draw("salt", user) for user in users]
    assert drawn == [ranges.pick(bucket("salt", user)) for user in users]
    assert set(drawn) == {4, 5}
    assert [ranges.draw("other", user) for user in users] != drawn
    assert single_version(3).layout().draw("salt", "usr_1") == 3


def test_zero_weight_owns_no_buckets() -> None:
    split = parse_traffic(entries(("v4", 100), ("v5", 0)), VERSIONS)
    ranges = split.layout()
    assert ranges.numbers == (4,)
    assert ranges.single == 4
    assert ranges.span(5) == (0, 0)
    assert split.numbers == {4}
    assert split.to_json()[1] == {"version": "v5", "weight": 0}


def test_single_version_split() -> None:
    assert single_version(3).layout().single == 3
    assert single_version(3).to_json() == [{"version": "v3", "weight": 100}]


def test_layout_refuses_an_unvalidated_split() -> None:
    with pytest.raises(WeightMismatch, match="Got 95"):
        TrafficSplit(((1, 95),)).layout()
