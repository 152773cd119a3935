"""The customer's journey, groups and tenants as /metrics and the JSON API show them (docs/monitoring.md
"Customer journey", "Groups and tenants"; docs/api.md), on queue states fed with facts by hand.

Queue q1, T = 20 s; now = 2026-06-01T10:20:00Z (the interval 10:15-10:30). Facts, minutes after 10:00:
  contacts at 2, 10 and 18 (the last a repeat), so today 3 contacts, 1 repeat: ratio 1/3; in the last
  5 minutes (10:15:00-10:20:59) the contact at 18 only: 1 / 1.
  hand-off in at 11, hand-off out at 12.
  journeys ending at 5 (answered, 10 s wait, no hand-off) and 14 (answered, 30 s, 2 hand-offs):
  journey SL today 1 / 2, journey ASA 20 s; passed around 1.
  NPS 10 at 3, 8 at 4, 2 at 16: score 100 × (1 − 1) / 3 = 0; CSAT 5 at 3, 3 at 16: ratio 1/2.
  FCR decisions today: resolved at 6, unresolved at 7 and 8: ratio 1/3.
Group front (a roll-up key): 1 entered at 19, still waiting: offered 1 in every window, no rates.
"""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamer.app.settings import SettingsError, load_worker_settings
from streamer.core import calls
from streamer.core.config import GROUP, TENANT, QueueSettings, rollup_key
from streamer.core.events import parse_ts
from streamer.core.queues import WINDOWS, QueueState
from streamer.export.collector import journey_families, rollup_families
from streamer.export.exposition import render
from streamer.export.web import add_journey_view

BASE = parse_ts("2026-06-01T10:00:00Z")
NOW = BASE + 20 * 60_000
SETTINGS = QueueSettings(threshold_seconds=20)


def at(minutes: float) -> int:
    return BASE + round(minutes * 60_000)


def queue_state() -> QueueState:
    state = QueueState("q1", SETTINGS)
    facts = [
        calls.Fact(calls.CONTACT, "q1", "c1", at(2), at(2)),
        calls.Fact(calls.CONTACT, "q1", "c2", at(10), at(10)),
        calls.Fact(calls.CONTACT, "q1", "c3", at(18), at(18)),
        calls.Fact(calls.REPEAT_CONTACT, "q1", "c3", at(18), at(18)),
        calls.Fact(calls.HANDOFF_IN, "q1", "c4", at(11), at(11)),
        calls.Fact(calls.HANDOFF_OUT, "q1", "c5", at(12), at(12)),
        calls.Fact(calls.JOURNEY, "q1", "c1", at(5), at(2), wait_ms=10_000, reason=calls.ANSWERED, value=0),
        calls.Fact(calls.JOURNEY, "q1", "c2", at(14), at(10), wait_ms=30_000, reason=calls.ANSWERED, value=2),
        calls.Fact(calls.NPS, "q1", "c1", at(3), at(3), value=10),
        calls.Fact(calls.NPS, "q1", "c2", at(4), at(4), value=8),
        calls.Fact(calls.NPS, "q1", "c3", at(16), at(16), value=2),
        calls.Fact(calls.CSAT, "q1", "c1", at(3), at(3), value=5),
        calls.Fact(calls.CSAT, "q1", "c3", at(16), at(16), value=3),
        calls.Fact(calls.FCR_RESOLVED, "q1", "old1", at(6), at(6)),
        calls.Fact(calls.FCR_UNRESOLVED, "q1", "old2", at(7), at(7)),
        calls.Fact(calls.FCR_UNRESOLVED, "q1", "old3", at(8), at(8)),
    ]
    for fact in facts:
        state.apply(fact)
    return state


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def test_queue_journey_families_by_hand() -> None:
    found = samples(render(journey_families({"q1": queue_state()}, NOW)))
    today = {"queue": "q1", "window": "today"}
    assert value(found, "callcenter_contacts_identified", **today) == 3
    assert value(found, "callcenter_repeat_contacts", **today) == 1
    assert value(found, "callcenter_repeat_contact_ratio", **today) == pytest.approx(1 / 3)
    assert value(found, "callcenter_repeat_contact_ratio", queue="q1", window="5m") == 1
    assert value(found, "callcenter_handoffs_in", **today) == 1
    assert value(found, "callcenter_handoffs_out", **today) == 1
    assert value(found, "callcenter_handoffs_in", queue="q1", window="interval") == 0
    assert value(found, "callcenter_journeys", **today) == 2
    assert value(found, "callcenter_journeys_passed_around", **today) == 1
    assert value(found, "callcenter_journey_service_level_ratio", **today) == 0.5
    assert value(found, "callcenter_journey_asa_seconds", **today) == 20
    assert value(found, "callcenter_nps_score", **today) == 0
    assert value(found, "callcenter_nps_detractors", **today) == 1
    assert value(found, "callcenter_csat_ratio", **today) == 0.5
    assert value(found, "callcenter_fcr_ratio", **today) == pytest.approx(1 / 3)
    assert value(found, "callcenter_fcr_unresolved", **today) == 2
    assert value(found, "callcenter_fcr_decisions_total", queue="q1", decision="resolved") == 1
    assert value(found, "callcenter_fcr_decisions_total", queue="q1", decision="unresolved") == 2
    # FCR only by day; no rate without a denominator (no survey in the interval 10:15-10:30 but one at 16).
    assert not any(name == "callcenter_fcr_ratio" and dict(labels)["window"] != "today" for name, labels in found)
    assert value(found, "callcenter_journey_service_level_ratio", queue="q1", window="5m") is None
    assert value(found, "callcenter_nps_score", queue="q1", window="interval") == -100
    assert value(found, "callcenter_journeys", queue="q1", window="5m") == 0


def test_groups_get_families_of_their_own_and_tenants_only_when_asked() -> None:
    group = QueueState(rollup_key(GROUP, "front"), SETTINGS)
    group.apply(calls.Fact(calls.ENTERED, group.queue, "g1", at(19), at(19)))
    tenant = QueueState(rollup_key(TENANT, "acme"), SETTINGS)
    tenant.apply(calls.Fact(calls.ENTERED, tenant.queue, "g1", at(19), at(19)))
    states = {"q1": queue_state(), group.queue: group, tenant.queue: tenant}
    found = samples(render(rollup_families(states, NOW)))
    for window in WINDOWS:
        assert value(found, "callcenter_group_calls_offered", group="front", window=window) == 1
        assert value(found, "callcenter_group_service_level_ratio", group="front", window=window) is None
    assert value(found, "callcenter_group_calls_waiting", group="front", kind="caller") == 1
    assert value(found, "callcenter_group_oldest_wait_seconds", group="front") == 60
    assert value(found, "callcenter_group_contacts_identified", group="front", window="today") == 0
    # A roll-up never shares a family, or a `queue` label, with the queues: no double count, no alert.
    assert all(name.startswith("callcenter_group_") and "queue" not in dict(labels) for name, labels in found)
    with_tenants = samples(render(rollup_families(states, NOW, tenants=True)))
    assert value(with_tenants, "callcenter_tenant_calls_offered", tenant="acme", window="today") == 1
    assert not any("q1" in dict(labels).values() for _, labels in with_tenants)


def test_the_api_view_adds_fcr_of_the_day_and_the_detractors_to_call_back() -> None:
    state = queue_state()
    view = state.view(NOW)
    add_journey_view(view, state, NOW)
    today = view["windows"]["today"]
    assert (today["fcr_resolved"], today["fcr_unresolved"]) == (1, 2)
    assert today["fcr_rate"] == pytest.approx(1 / 3)
    assert today["repeat_contact_rate"] == pytest.approx(1 / 3)
    assert view["detractors_today"] == [{"call_id": "c3", "time": "2026-06-01T10:16:00+00:00", "score": 2}]
    assert "fcr_rate" not in view["windows"]["interval"]


def test_tenants_are_exported_only_when_the_deployment_says_so() -> None:
    assert load_worker_settings({}).tenant_label is False
    assert load_worker_settings({"STREAMER_TENANT_LABEL": "true"}).tenant_label is True
    with pytest.raises(SettingsError, match="STREAMER_TENANT_LABEL"):
        load_worker_settings({"STREAMER_TENANT_LABEL": "tenant"})
