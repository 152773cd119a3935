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
MAX_FCR_WINDOW_DAYS = 31
MAX_ROLLUP_NAME_CHARS = 128


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
    repeat_window_minutes: float = 30.0
    fcr_window_days: float = 7.0
    # Derived once: read for every event and fact.
    threshold_ms: int = field(init=False, repr=False, compare=False)
    short_abandon_ms: int = field(init=False, repr=False, compare=False)
    tz: ZoneInfo = field(init=False, repr=False, compare=False)
    repeat_window_ms: int = field(init=False, repr=False, compare=False)
    fcr_window_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold_ms", round(self.threshold_seconds * 1000))
        object.__setattr__(self, "short_abandon_ms", round(self.short_abandon_seconds * 1000))
        object.__setattr__(self, "tz", _zone(self.time_zone))
        object.__setattr__(self, "repeat_window_ms", round(self.repeat_window_minutes * 60_000))
        object.__setattr__(self, "fcr_window_ms", round(self.fcr_window_days * 86_400_000))


@dataclass(frozen=True, slots=True)
class Limits:
    allowed_queues: frozenset[str] | None = None  # None: any queue name, up to max_queues
    max_queues: int = 1000
    max_call_age_seconds: float = 4 * 3600.0
    grace_seconds: float = 60.0
    idle_seconds: float = 60.0
    max_future_seconds: float = 86400.0  # a live worker rejects events dated further ahead of its clock
    # After a dequeue, or a `call.completed` announcing a transfer, how long a call's journey waits for
    # its next `call.enqueued` before it ends (docs/metrics.md "Journeys").
    next_visit_seconds: float = 60.0
    # Derived once: read for every event.
    max_future_ms: int = field(init=False, repr=False, compare=False)
    max_call_age_ms: int = field(init=False, repr=False, compare=False)
    grace_ms: int = field(init=False, repr=False, compare=False)
    next_visit_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_future_ms", round(self.max_future_seconds * 1000))
        object.__setattr__(self, "max_call_age_ms", round(self.max_call_age_seconds * 1000))
        object.__setattr__(self, "grace_ms", round(self.grace_seconds * 1000))
        object.__setattr__(self, "next_visit_ms", round(self.next_visit_seconds * 1000))


@dataclass(frozen=True, slots=True)
class Group:
    """A queue group (`[groups.NAME]`): its member queues and the settings its figures use."""

    queues: frozenset[str]
    settings: QueueSettings = field(default_factory=QueueSettings)


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant (`[tenants.NAME]`): the settings of its roll-up and, when listed, the queues it owns."""

    settings: QueueSettings = field(default_factory=QueueSettings)
    queues: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class CallRules:
    """What the call state machine needs of the configuration beyond one queue's settings, precomputed
    once so that the per-event path does a dictionary lookup at most."""

    next_visit_ms: int = 60_000
    max_call_age_ms: int = 4 * 3600 * 1000
    # A margin after which no event at or before a time can still be accepted on any queue: the
    # longest interval plus the grace (an event is late once its interval's end plus grace is past).
    settle_ms: int = 16 * 60_000
    groups_of: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # queue -> group roll-up keys
    tenant_of: Mapping[str, str] = field(default_factory=dict)  # queue -> the tenant that lists it
    tenant_queues: Mapping[str, frozenset[str]] = field(default_factory=dict)  # tenant -> the queues it lists


@dataclass(frozen=True, slots=True)
class Config:
    defaults: QueueSettings = field(default_factory=QueueSettings)
    queues: Mapping[str, QueueSettings] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    groups: Mapping[str, Group] = field(default_factory=dict)
    tenants: Mapping[str, Tenant] = field(default_factory=dict)
    rules: CallRules = field(init=False, repr=False, compare=False)
    _settings: Mapping[str, QueueSettings] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        settings = dict(self.queues)
        groups_of: dict[str, list[str]] = {}
        for name, group in self.groups.items():
            key = rollup_key(GROUP, name)
            settings[key] = group.settings
            for queue in sorted(group.queues):
                groups_of.setdefault(queue, []).append(key)
        tenant_of: dict[str, str] = {}
        tenant_queues: dict[str, frozenset[str]] = {}
        for name, tenant in self.tenants.items():
            settings[rollup_key(TENANT, name)] = tenant.settings
            if tenant.queues is not None:
                tenant_queues[name] = tenant.queues
                tenant_of.update(dict.fromkeys(tenant.queues, name))
        longest_interval = max(s.interval_minutes for s in (self.defaults, *self.queues.values())) * 60_000
        rules = CallRules(
            next_visit_ms=self.limits.next_visit_ms,
            max_call_age_ms=self.limits.max_call_age_ms,
            settle_ms=longest_interval + self.limits.grace_ms,
            groups_of={queue: tuple(keys) for queue, keys in groups_of.items()},
            tenant_of=tenant_of,
            tenant_queues=tenant_queues,
        )
        object.__setattr__(self, "_settings", settings)
        object.__setattr__(self, "rules", rules)

    def for_queue(self, queue: str) -> QueueSettings:
        """The settings of a queue, or of a group or tenant by its roll-up key (`rollup_key`)."""
        return self._settings.get(queue, self.defaults)

    @property
    def longest_customer_window_ms(self) -> int:
        """The longest repeat-contact or FCR window of any queue: how long customer history is kept."""
        return max(max(s.repeat_window_ms, s.fcr_window_ms) for s in (self.defaults, *self.queues.values()))


# Group and tenant figures are counted like a queue's, under a key no queue can have: queue names are
# printable (events.py rejects control characters), and the key starts with a control character.
ROLLUP_MARK = "\x1d"
GROUP = "group"
TENANT = "tenant"


def rollup_key(kind: str, name: str) -> str:
    """The key under which the figures of group or tenant `name` are counted (in place of a queue)."""
    return f"{ROLLUP_MARK}{kind}:{name}"


def parse_rollup_key(key: str) -> tuple[str, str] | None:
    """(kind, name) of a roll-up key, or None for a queue name."""
    if not key.startswith(ROLLUP_MARK):
        return None
    kind, _, name = key[1:].partition(":")
    return kind, name


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


SECTIONS = ("defaults", "queues", "limits", "groups", "tenants")


def parse_config(data: Mapping[str, Any], origin: str = "config") -> Config:
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{origin}: unknown section {sorted(unknown)[0]!r} (known: {', '.join(SECTIONS)})")
    defaults = _queue_settings(_table(data, "defaults", origin), QueueSettings(), "defaults")
    queues = {
        name: _queue_settings(_table(table, None, f"queues.{name}"), defaults, f"queues.{name}")
        for name, table in _table(data, "queues", origin).items()
    }
    limits = _limits(_table(data, "limits", origin))
    groups = {name: _group(name, _table(table, None, f"groups.{name}"), defaults)
              for name, table in _table(data, "groups", origin).items()}
    tenants = {name: _tenant(name, _table(table, None, f"tenants.{name}"), defaults)
               for name, table in _table(data, "tenants", origin).items()}
    owners: dict[str, str] = {}
    for name, tenant in sorted(tenants.items()):
        for queue in sorted(tenant.queues or ()):
            if queue in owners:
                raise ConfigError(f"tenants.{name}.queues: queue {queue!r} is listed by tenant {owners[queue]!r} "
                                  "too; a queue belongs to one tenant")
            owners[queue] = name
    return Config(defaults=defaults, queues=queues, limits=limits, groups=groups, tenants=tenants)


def _rollup_name(where: str, name: str) -> None:
    if not name or len(name) > MAX_ROLLUP_NAME_CHARS or not name.isprintable() or "|" in name:
        raise ConfigError(f"{where}: a name must be 1 to {MAX_ROLLUP_NAME_CHARS} printable characters "
                          "without '|'")


def _queue_names(where: str, raw: Any) -> frozenset[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(q, str) and q for q in raw):
        raise ConfigError(f"{where} must be a non-empty list of queue names, e.g. queues = [\"sales\", \"vip\"]")
    return frozenset(raw)


def _group(name: str, table: Mapping[str, Any], defaults: QueueSettings) -> Group:
    where = f"groups.{name}"
    _rollup_name(where, name)
    if "queues" not in table:
        raise ConfigError(f"{where}.queues is missing: a group needs its member queues")
    settings = _queue_settings({k: v for k, v in table.items() if k != "queues"}, defaults, where)
    return Group(_queue_names(f"{where}.queues", table["queues"]), settings)


def _tenant(name: str, table: Mapping[str, Any], defaults: QueueSettings) -> Tenant:
    where = f"tenants.{name}"
    _rollup_name(where, name)
    queues = _queue_names(f"{where}.queues", table["queues"]) if "queues" in table else None
    return Tenant(_queue_settings({k: v for k, v in table.items() if k != "queues"}, defaults, where), queues)


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
    if key == "repeat_window_minutes":
        value = _number(name, raw)
        if not 0 < value <= MAX_FCR_WINDOW_DAYS * 1440:
            raise ConfigError(f"{name} = {raw!r}: must be a number of minutes above 0 and at most "
                              f"{MAX_FCR_WINDOW_DAYS * 1440} ({MAX_FCR_WINDOW_DAYS} days)")
        return value
    if key == "fcr_window_days":
        value = _number(name, raw)
        if not 0 < value <= MAX_FCR_WINDOW_DAYS:
            raise ConfigError(f"{name} = {raw!r}: must be a number of days above 0 and at most {MAX_FCR_WINDOW_DAYS}")
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
                     ("max_future_seconds", 60.0), ("next_visit_seconds", 0.0)):
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
