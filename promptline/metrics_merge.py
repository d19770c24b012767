"""Prometheus text expositions of several processes merged into one, as if one process.

``promptline serve --processes N`` runs N processes behind one port; whichever answers
``/metrics`` must show the whole service, so it merges its siblings' texts. Every sample
is summed per identical (sample name, labels): counters, histogram buckets, sums and
counts, and gauges (memory, open files, queue lengths add up across processes). Start
times are the exception: ``process_start_time_seconds`` and ``*_created`` take the
minimum, the service's age being its oldest process's. Pure: no I/O, no domain imports.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample

EARLIEST = ("process_start_time_seconds",)
"""Sample names merged by their minimum, beside every ``*_created``."""

_Key = tuple[str, tuple[tuple[str, str], ...]]


def _earliest(sample_name: str) -> bool:
    return sample_name in EARLIEST or sample_name.endswith("_created")


def merge(texts: Iterable[str]) -> list[Metric]:
    """The families of every text, samples with the same name and labels combined.

    Families and samples keep the order in which they first appear; a family known to
    only some processes (a route one of them has not served yet) is kept as it is.
    """
    families: dict[str, Metric] = {}
    values: dict[str, dict[_Key, Sample]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
                values[family.name] = {}
            samples = values[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                known = samples.get(key)
                if known is None:
                    samples[key] = Sample(sample.name, dict(sample.labels), sample.value)
                elif _earliest(sample.name):
                    samples[key] = known._replace(value=min(known.value, sample.value))
                else:
                    samples[key] = known._replace(value=known.value + sample.value)
    for name, merged in families.items():
        merged.samples = list(values[name].values())
    return list(families.values())


def gauge(name: str, documentation: str, value: float) -> Metric:
    """A label-less gauge to add to a merged exposition (how the merge went)."""
    family = GaugeMetricFamily(name, documentation)
    family.add_metric((), value)
    return family


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)


def render(metrics: list[Metric]) -> bytes:
    """The families in the text exposition format (``generate_latest``'s own writer)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(metrics))
    return generate_latest(registry)
