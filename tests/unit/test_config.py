"""Settings: defaults, per-queue overrides, and a clear error naming the key for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.core import config as cfg
from streamer.core.config import Config, ConfigError, Limits, QueueSettings, load_config, parse_config


def test_defaults_follow_the_design():
    settings = QueueSettings()
    assert (settings.threshold_seconds, settings.threshold_ms) == (20.0, 20_000)
    assert (settings.short_abandon_seconds, settings.short_abandon_ms) == (5.0, 5_000)
    assert settings.target == 0.80
    assert settings.service_level_formula == cfg.SL_ANSWERED_OVER_OFFERED
    assert settings.dequeued_in_denominator is False
    assert settings.callback_policy == cfg.POLICY_COPC
    assert (settings.time_zone, settings.interval_minutes, settings.attribute_to) == ("UTC", 15, "outcome")
    limits = Limits()
    assert (limits.allowed_queues, limits.max_queues) == (None, 1000)
    assert (limits.max_call_age_ms, limits.grace_ms) == (4 * 3_600_000, 60_000)


def test_no_path_and_no_environment_gives_the_defaults(monkeypatch):
    monkeypatch.delenv("STREAMER_CONFIG", raising=False)
    assert load_config() == Config()
    assert load_config(None).for_queue("anything") == QueueSettings()


def test_milliseconds_keep_fractional_seconds():
    assert QueueSettings(threshold_seconds=20.5, short_abandon_seconds=0.25).threshold_ms == 20_500
    assert QueueSettings(short_abandon_seconds=0.25).short_abandon_ms == 250


def test_per_queue_settings_start_from_the_defaults_section():
    config = parse_config({
        "defaults": {"threshold_seconds": 30, "time_zone": "Europe/London", "short_abandon_seconds": 3},
        "queues": {"vip": {"threshold_seconds": 10, "target": 0.9}, "sales": {}},
        "limits": {"grace_seconds": 120, "max_call_age_seconds": 7200, "allowed_queues": ["vip", "sales"]},
    })
    vip = config.for_queue("vip")
    assert (vip.threshold_seconds, vip.target, vip.time_zone, vip.short_abandon_seconds) == (
        10.0, 0.9, "Europe/London", 3.0)
    assert config.for_queue("sales") == config.defaults
    assert config.for_queue("unconfigured") == config.defaults
    assert config.defaults.threshold_seconds == 30.0
    assert config.limits == Limits(allowed_queues=frozenset({"vip", "sales"}), max_call_age_seconds=7200.0,
                                   grace_seconds=120.0)


@pytest.mark.parametrize("formula", cfg.SL_FORMULAS)
@pytest.mark.parametrize("policy", cfg.CALLBACK_POLICIES)
def test_every_named_formula_and_policy_is_accepted(formula, policy):
    settings = parse_config({"queues": {"q": {"service_level_formula": formula, "callback_policy": policy}}})
    assert (settings.for_queue("q").service_level_formula, settings.for_queue("q").callback_policy) == (
        formula, policy)


@pytest.mark.parametrize("minutes", [15, 30, 60])
def test_interval_lengths(minutes):
    assert parse_config({"defaults": {"interval_minutes": minutes}}).defaults.interval_minutes == minutes


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"defaults": {"threshold_seconds": 0}}, "defaults.threshold_seconds"),
        ({"defaults": {"threshold_seconds": -5}}, "defaults.threshold_seconds"),
        ({"defaults": {"threshold_seconds": 86401}}, "defaults.threshold_seconds"),
        ({"defaults": {"threshold_seconds": "20"}}, "defaults.threshold_seconds"),
        ({"defaults": {"threshold_seconds": True}}, "defaults.threshold_seconds"),
        ({"queues": {"vip": {"short_abandon_seconds": -1}}}, "queues.vip.short_abandon_seconds"),
        ({"queues": {"vip": {"short_abandon_seconds": 30}}}, "queues.vip.short_abandon_seconds"),
        ({"defaults": {"target": 80}}, "defaults.target"),
        ({"defaults": {"target": 0}}, "defaults.target"),
        ({"defaults": {"target": "0.8"}}, "defaults.target"),
        ({"defaults": {"service_level_formula": "cisco"}}, "defaults.service_level_formula"),
        ({"defaults": {"callback_policy": "amazon"}}, "defaults.callback_policy"),
        ({"defaults": {"attribute_to": "answer"}}, "defaults.attribute_to"),
        ({"defaults": {"dequeued_in_denominator": "yes"}}, "defaults.dequeued_in_denominator"),
        ({"defaults": {"dequeued_in_denominator": 1}}, "defaults.dequeued_in_denominator"),
        ({"defaults": {"interval_minutes": 20}}, "defaults.interval_minutes"),
        ({"defaults": {"interval_minutes": True}}, "defaults.interval_minutes"),
        ({"defaults": {"interval_minutes": "15"}}, "defaults.interval_minutes"),
        ({"queues": {"x": {"time_zone": "Mars/Olympus_Mons"}}}, "queues.x.time_zone"),
        ({"queues": {"x": {"time_zone": "../../etc/passwd"}}}, "queues.x.time_zone"),
        ({"queues": {"x": {"time_zone": ""}}}, "queues.x.time_zone"),
        ({"queues": {"x": {"time_zone": 5}}}, "queues.x.time_zone"),
        ({"limits": {"max_queues": 0}}, "limits.max_queues"),
        ({"limits": {"max_queues": True}}, "limits.max_queues"),
        ({"limits": {"max_queues": 2.5}}, "limits.max_queues"),
        ({"limits": {"allowed_queues": "q1"}}, "limits.allowed_queues"),
        ({"limits": {"allowed_queues": ["q1", 2]}}, "limits.allowed_queues"),
        ({"limits": {"max_call_age_seconds": 10}}, "limits.max_call_age_seconds"),
        ({"limits": {"grace_seconds": -1}}, "limits.grace_seconds"),
        ({"limits": {"grace_seconds": "60"}}, "limits.grace_seconds"),
    ],
)
def test_every_bad_value_is_refused_with_its_key_named(data, named):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert named in str(info.value)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"default": {}}, "'default'"),
        ({"defaults": {"threshold": 20}}, "defaults.threshold"),
        ({"queues": {"vip": {"sla": 0.8}}}, "queues.vip.sla"),
        ({"limits": {"max_queue": 10}}, "limits.max_queue"),
    ],
)
def test_unknown_keys_are_refused_and_the_known_ones_listed(data, named):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    message = str(info.value)
    assert named in message
    assert "known" in message


@pytest.mark.parametrize(
    ("data", "named"),
    [({"defaults": 5}, "defaults"), ({"queues": ["vip"]}, "queues"), ({"queues": {"vip": 20}}, "queues.vip"),
     ({"limits": "none"}, "limits")],
)
def test_sections_must_be_tables(data, named):
    with pytest.raises(ConfigError, match="must be a table") as info:
        parse_config(data)
    assert str(info.value).startswith(named)


def test_load_config_reads_a_toml_file(tmp_path: Path):
    path = tmp_path / "streamer.toml"
    path.write_text('[defaults]\ntime_zone = "Asia/Kathmandu"\n\n[queues.vip]\nthreshold_seconds = 10\n')
    config = load_config(path)
    assert config.for_queue("vip").threshold_ms == 10_000
    assert config.for_queue("vip").time_zone == "Asia/Kathmandu"


def test_load_config_uses_streamer_config_from_the_environment(tmp_path: Path, monkeypatch):
    path = tmp_path / "from-env.toml"
    path.write_text("[defaults]\ninterval_minutes = 30\n")
    monkeypatch.setenv("STREAMER_CONFIG", str(path))
    assert load_config().defaults.interval_minutes == 30
    other = tmp_path / "explicit.toml"
    other.write_text("[defaults]\ninterval_minutes = 60\n")
    assert load_config(other).defaults.interval_minutes == 60  # an explicit path wins


def test_bad_toml_is_reported_with_the_file_name(tmp_path: Path):
    path = tmp_path / "broken.toml"
    path.write_text("[defaults\nthreshold_seconds = 20\n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(path)
    assert "broken.toml" in str(info.value)


def test_a_missing_file_is_reported(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nowhere.toml")


def test_a_directory_or_unreadable_path_is_reported_as_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_a_bad_value_in_a_file_names_the_file_and_the_key(tmp_path: Path):
    path = tmp_path / "typo.toml"
    path.write_text("[queues.vip]\ntarget = 80\n")
    with pytest.raises(ConfigError, match=r"queues\.vip\.target = 80.*0\.8, not 80"):
        load_config(path)
