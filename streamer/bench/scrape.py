"""Reading a worker's /metrics text: one metric's samples, summed, optionally filtered by labels.

A small reader of the Prometheus text format instead of prometheus_client's parser, because the
latency probe reads /metrics many times a second and needs one number from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str, name: str) -> Iterator[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of the metric `name` (exactly that name, no suffix added)."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        rest = line[len(name):]
        if rest.startswith("{"):
            close = rest.rfind("}")
            labels = dict(_LABEL.findall(rest[1:close]))
            value = rest[close + 1:].split()[0]
        elif rest.startswith(" "):
            labels, value = {}, rest.split()[0]
        else:
            continue
        yield labels, float(value)


def metric_sum(text: str, name: str, **match: str) -> float:
    """The sum of the metric's samples whose labels have the given values."""
    return sum(value for labels, value in samples(text, name)
               if all(labels.get(key) == want for key, want in match.items()))
