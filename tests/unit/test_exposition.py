"""The pipeline's own exposition writes exactly what prometheus_client writes for the same families."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import core as prometheus

from streamer.export import exposition

label_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
numbers = st.one_of(st.integers(-10**12, 10**15), st.floats(allow_nan=False),
                    st.sampled_from([0.0, 1e-07, 123456789012.0, math.inf, -math.inf, 0.1]))


def _both(build) -> tuple[str, str]:
    ours = exposition.render(build(exposition))

    class Collector:
        def collect(self):
            return build(prometheus)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return ours, generate_latest(registry).decode()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(label_values, label_values, numbers), max_size=6), numbers,
       st.lists(st.tuples(label_values, st.lists(st.integers(0, 10**6), min_size=1, max_size=4), numbers),
                max_size=3),
       st.text(max_size=30))
def test_the_same_text_as_prometheus_client(gauges, plain, histograms, documentation) -> None:
    def build(module):
        gauge = module.GaugeMetricFamily("callcenter_test_ratio", documentation, labels=["queue", "window"])
        for queue, window, value in gauges:
            gauge.add_metric([queue, window], value)
        bare = module.GaugeMetricFamily("callcenter_test_plain", "a gauge without labels")
        bare.add_metric([], plain)
        counter = module.CounterMetricFamily("callcenter_test", "a counter", labels=["queue", "kind"])
        for queue, window, value in gauges:
            counter.add_metric([queue, window], abs(value) if not math.isinf(value) else 0)
        empty = module.GaugeMetricFamily("callcenter_test_empty", "no samples", labels=["queue"])
        histogram = module.HistogramMetricFamily("callcenter_test_seconds", "a histogram", labels=["queue"])
        for queue, counts, total in histograms:
            cumulative = [sum(counts[: i + 1]) for i in range(len(counts))]
            bounds = [*(str(float(5 * (i + 1))) for i in range(len(counts) - 1)), "+Inf"]
            histogram.add_metric([queue], list(zip(bounds, cumulative, strict=True)), total)
        return [gauge, bare, counter, empty, histogram]

    ours, theirs = _both(build)
    assert ours == theirs
