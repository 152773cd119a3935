"""Queue settings: defaults, per-queue overrides and limits, read from a TOML file.

Every value is checked once, at start-up; a bad one stops with `ConfigError` naming the key and why, so
a typo never turns into a silently wrong Service Level on a wallboard.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Service Level formulas (DESIGN.md "Metrics"); the vendor each one matches is in docs/metrics.md.
SL_ANSWERED_OVER_OFFERED = "answered_over_offered"  # 1: default
SL_IGNORE_ABANDONS_WITHIN = "ignore_abandons_within"  # 2: Cisco "ignore"
SL_ABANDONS_WITHIN_MET = "abandons_within_count_as_met"  # 3: Cisco "positive", Asterisk SL2
SL_ANSWERED_ONLY = "answered_only"  # 4: Asterisk SL
SL_FORMULAS = (SL_ANSWERED_OVER_OFFERED, SL_IGNORE_ABANDONS_WITHIN, SL_ABANDONS_WITHIN_MET, SL_ANSWERED_ONLY)

# Callback policies: how a callback request ends the inbound queue visit.
POLICY_COPC = "copc"  # default: kept position waits on; scheduled = abandoned at request
POLICY_REMOVED_FROM_QUEUE = "removed_from_queue"  # Amazon Connect: a request leaves the queue, answered-like
POLICY_FLOW_OUT = "flow_out"  # Genesys Cloud: a request is a flow-out (dequeued)
CALLBACK_POLICIES = (POLICY_COPC, POLICY_REMOVED_FROM_QUEUE, POLICY_FLOW_OUT)

ATTRIBUTE_OUTCOME = "outcome"
ATTRIBUTE_ARRIVAL = "arrival"
INTERVAL_MINUTES = (15, 30, 60)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the key and says why."""


@dataclass(frozen=True, slots=True)
class QueueSettings:
    threshold_seconds: float = 20.0
    target: float = 0.80
    short_abandon_seconds: float = 5.0
    service_level_formula: str = SL_ANSWERED_OVER_OFFERED
    dequeued_in_denominator: bool = False
    callback_policy: str = POLICY_COPC
    time_zone: str = "UTC"
    interval_minutes: int = 15
    attribute_to: str = ATTRIBUTE_OUTCOME
    # Derived once: read for every event and fact.
    threshold_ms: int = field(init=False, repr=False, compare=False)
    short_abandon_ms: int = field(init=False, repr=False, compare=False)
    tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold_ms", round(self.threshold_seconds * 1000))
        object.__setattr__(self, "short_abandon_ms", round(self.short_abandon_seconds * 1000))
        object.__setattr__(self, "tz", _zone(self.time_zone))


@dataclass(frozen=True, slots=True)
class Limits:
    allowed_queues: frozenset[str] | None = None  # None: any queue name, up to max_queues
    max_queues: int = 1000
    max_call_age_seconds: float = 4 * 3600.0
    grace_seconds: float = 60.0
    idle_seconds: float = 60.0
    max_future_seconds: float = 86400.0  # a live worker rejects events dated further ahead of its clock
    # Derived once: read for every event.
    max_future_ms: int = field(init=False, repr=False, compare=False)
    max_call_age_ms: int = field(init=False, repr=False, compare=False)
    grace_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_future_ms", round(self.max_future_seconds * 1000))
        object.__setattr__(self, "max_call_age_ms", round(self.max_call_age_seconds * 1000))
        object.__setattr__(self, "grace_ms", round(self.grace_seconds * 1000))


@dataclass(frozen=True, slots=True)
class Config:
    defaults: QueueSettings = field(default_factory=QueueSettings)
    queues: Mapping[str, QueueSettings] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)

    def for_queue(self, queue: str) -> QueueSettings:
        return self.queues.get(queue, self.defaults)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """The configuration from `path`, else from $STREAMER_CONFIG, else the defaults."""
    path = path or os.environ.get("STREAMER_CONFIG") or None
    if path is None:
        return Config()
    source = Path(path)
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {source} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {source} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {source} is not valid TOML: {exc}") from None
    return parse_config(data, origin=str(source))


def parse_config(data: Mapping[str, Any], origin: str = "config") -> Config:
    unknown = set(data) - {"defaults", "queues", "limits"}
    if unknown:
        raise ConfigError(f"{origin}: unknown section {sorted(unknown)[0]!r} (known: defaults, queues, limits)")
    defaults = _queue_settings(_table(data, "defaults", origin), QueueSettings(), "defaults")
    queues = {
        name: _queue_settings(_table(table, None, f"queues.{name}"), defaults, f"queues.{name}")
        for name, table in _table(data, "queues", origin).items()
    }
    limits = _limits(_table(data, "limits", origin))
    return Config(defaults=defaults, queues=queues, limits=limits)


def _table(data: Any, key: str | None, where: str) -> dict[str, Any]:
    value = data if key is None else data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where if key is None else key} must be a table")
    return value


def _queue_settings(table: Mapping[str, Any], base: QueueSettings, where: str) -> QueueSettings:
    known = {f.name for f in fields(QueueSettings) if f.init}
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}.{key} is not a setting (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for key, raw in table.items():
        values[key] = _check_queue_value(f"{where}.{key}", key, raw)
    settings = replace(base, **values)
    if settings.short_abandon_seconds > settings.threshold_seconds:
        raise ConfigError(
            f"{where}.short_abandon_seconds ({settings.short_abandon_seconds}) must not exceed "
            f"threshold_seconds ({settings.threshold_seconds})"
        )
    return settings


def _check_queue_value(name: str, key: str, raw: Any) -> Any:
    if key in ("threshold_seconds", "short_abandon_seconds"):
        value = _number(name, raw)
        if not 0 <= value <= 86400 or (key == "threshold_seconds" and value == 0):
            raise ConfigError(f"{name} = {raw!r}: must be a number of seconds, above 0 and at most 86400")
        return value
    if key == "target":
        value = _number(name, raw)
        if not 0 < value <= 1:
            raise ConfigError(f"{name} = {raw!r}: a target is a ratio above 0 and at most 1 (0.8, not 80)")
        return value
    if key == "service_level_formula":
        return _one_of(name, raw, SL_FORMULAS)
    if key == "callback_policy":
        return _one_of(name, raw, CALLBACK_POLICIES)
    if key == "attribute_to":
        return _one_of(name, raw, (ATTRIBUTE_OUTCOME, ATTRIBUTE_ARRIVAL))
    if key == "dequeued_in_denominator":
        if not isinstance(raw, bool):
            raise ConfigError(f"{name} = {raw!r}: must be true or false")
        return raw
    if key == "interval_minutes":
        if isinstance(raw, bool) or raw not in INTERVAL_MINUTES:
            raise ConfigError(f"{name} = {raw!r}: must be one of 15, 30, 60")
        return int(raw)
    if key == "time_zone":
        if not isinstance(raw, str):
            raise ConfigError(f"{name} = {raw!r}: must be an IANA time zone name such as 'Europe/London'")
        try:
            ZoneInfo(raw)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{name} = {raw!r}: unknown time zone (use an IANA name such as 'Europe/London')")\
                from None
        return raw
    raise AssertionError(key)


def _limits(table: Mapping[str, Any]) -> Limits:
    known = {f.name for f in fields(Limits) if f.init}
    for key in table:
        if key not in known:
            raise ConfigError(f"limits.{key} is not a setting (known: {', '.join(sorted(known))})")
    limits = Limits()
    values: dict[str, Any] = {}
    if "allowed_queues" in table:
        raw = table["allowed_queues"]
        if not isinstance(raw, list) or not all(isinstance(q, str) and q for q in raw):
            raise ConfigError("limits.allowed_queues must be a list of queue names")
        values["allowed_queues"] = frozenset(raw)
    if "max_queues" in table:
        raw = table["max_queues"]
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            raise ConfigError(f"limits.max_queues = {raw!r}: must be a whole number of at least 1")
        values["max_queues"] = raw
    for key, low in (("max_call_age_seconds", 60.0), ("grace_seconds", 0.0), ("idle_seconds", 1.0),
                     ("max_future_seconds", 60.0)):
        if key in table:
            value = _number(f"limits.{key}", table[key])
            if not low <= value <= 7 * 86400:
                raise ConfigError(f"limits.{key} = {table[key]!r}: must be between {low:g} and 604800 seconds")
            values[key] = value
    return replace(limits, **values)


def _number(name: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ConfigError(f"{name} = {raw!r}: must be a number")
    return float(raw)


def _one_of(name: str, raw: Any, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise ConfigError(f"{name} = {raw!r}: must be one of {', '.join(allowed)}")
    return raw
