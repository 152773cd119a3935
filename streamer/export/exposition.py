"""Metric families and their Prometheus text exposition (format 0.0.4), for the pipeline's own metrics.

The families have the construction API of prometheus_client's `GaugeMetricFamily`, `CounterMetricFamily`
and `HistogramMetricFamily` (the subset the collector uses), and `render` writes the same text
`prometheus_client.generate_latest` writes for them (tests/unit/test_exposition.py compares the two),
with prometheus_client's own number formatting. What it saves is the per-sample work of the generic
path (a sample tuple, a label dict, label-name validation and sorting per sample): a worker exports
about a hundred samples per queue, and every scrape renders them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.utils import floatToGoString


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


class _Family:
    kind = "untyped"
    suffix = ""

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self.lines: list[str] = []

    def _labels(self, values: Sequence[str], extra: tuple[tuple[str, str], ...] = ()) -> str:
        pairs = sorted((*zip(self.labels, values, strict=True), *extra))
        if not pairs:
            return ""
        return "{" + ",".join(f'{name}="{_escape_value(value)}"' for name, value in pairs) + "}"

    def header(self) -> str:
        full = self.name + self.suffix
        return f"# HELP {full} {_escape_help(self.documentation)}\n# TYPE {full} {self.kind}\n"


class GaugeMetricFamily(_Family):
    kind = "gauge"

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        self.lines.append(f"{self.name}{self._labels(labels)} {floatToGoString(value)}\n")


class CounterMetricFamily(_Family):
    """A counter named without `_total`; its samples and header carry the suffix, as prometheus_client's."""

    kind = "counter"
    suffix = "_total"

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        self.lines.append(f"{self.name}_total{self._labels(labels)} {floatToGoString(value)}\n")


class HistogramMetricFamily(_Family):
    kind = "histogram"

    def add_metric(self, labels: Sequence[str], buckets: Sequence[tuple[str, float]], sum_value: float) -> None:
        """`buckets`: (upper bound as text, cumulative count), the last one "+Inf"."""
        for bound, count in buckets:
            self.lines.append(f"{self.name}_bucket{self._labels(labels, (('le', bound),))} {floatToGoString(count)}\n")
        count = buckets[-1][1] if buckets else 0
        self.lines.append(f"{self.name}_count{self._labels(labels)} {floatToGoString(count)}\n")
        self.lines.append(f"{self.name}_sum{self._labels(labels)} {floatToGoString(sum_value)}\n")


def render(families: Iterable[_Family]) -> str:
    """The text exposition of `families`, in order; a family without samples still has its header."""
    return "".join(family.header() + "".join(family.lines) for family in families)
