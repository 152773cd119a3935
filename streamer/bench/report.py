"""The bench's output: a readable table (figure, median, min, max, target, met?) and one JSON line."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from streamer.bench.profile import Profile


@dataclass(frozen=True)
class Target:
    at_least: bool  # True: the figure must be ≥ value; False: ≤ value
    value: float

    def met(self, figure: float) -> bool:
        return figure >= self.value if self.at_least else figure <= self.value


@dataclass(frozen=True)
class Figure:
    key: str  # the JSON key
    label: str
    unit: str  # "events/s", "s", "bytes", "ratio" or "" (a plain number)
    runs: tuple[float, ...]  # one value per repeat
    target: Target | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.median)


def format_value(value: float, unit: str) -> str:
    if math.isinf(value):
        return "never"
    if math.isnan(value):
        return "n/a"
    if unit == "events/s":
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "bytes":
        return f"{value:,.0f} B"
    if unit == "ratio":
        return f"{100 * value:.1f} %"
    return f"{value:,.0f}"


def _target_text(figure: Figure) -> str:
    if figure.target is None:
        return ""
    return ("≥ " if figure.target.at_least else "≤ ") + format_value(figure.target.value, figure.unit)


def table(figures: Sequence[Figure]) -> str:
    header = ("figure", "median", "min", "max", "target", "met?")
    rows = [header]
    for f in figures:
        spread = len(f.runs) > 1
        rows.append((
            f"{f.label} ({f.unit})" if f.unit and f.unit not in ("s", "bytes", "ratio") else f.label,
            format_value(f.median, f.unit),
            format_value(min(f.runs), f.unit) if spread else "",
            format_value(max(f.runs), f.unit) if spread else "",
            _target_text(f),
            "" if f.met is None else ("yes" if f.met else "NO"),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def profile_table(profile: Profile) -> str:
    lines = [f"worker profile: {profile.samples:,} samples; share of samples own / total", "", "largest own time:"]
    lines += [f"  {100 * c.own:5.1f} %  {100 * c.total:5.1f} %  {c.function}" for c in profile.top_own]
    lines += ["", "the project's functions, by total time:"]
    lines += [f"  {100 * c.own:5.1f} %  {100 * c.total:5.1f} %  {c.function}" for c in profile.project]
    return "\n".join(lines)


def summary_json(figures: Sequence[Figure], context: dict[str, object]) -> str:
    """One line: every figure's median under its key, `KEY_runs` where there were repeats, then context."""
    out: dict[str, object] = {}
    for f in figures:
        out[f.key] = None if math.isinf(f.median) or math.isnan(f.median) else f.median
        if len(f.runs) > 1:
            out[f"{f.key}_runs"] = list(f.runs)
    out["targets_met"] = all(f.met for f in figures if f.met is not None)
    out.update(context)
    return orjson.dumps(out).decode()
