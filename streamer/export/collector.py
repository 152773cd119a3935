"""The Prometheus collector: reads the owned queues' state at scrape time (never a label per call,
agent or interval), so a worker exports exactly the queues it owns and nothing stale after a rebalance.
Metric names: docs/monitoring.md. Its families are rendered by `streamer.export.exposition`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from streamer.core import counters
from streamer.core.config import GROUP, TENANT, parse_rollup_key
from streamer.core.queues import WINDOWS, QueueState
from streamer.export.exposition import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

WINDOW_COUNTS = {
    "callcenter_calls_offered": ("entered", "Queue visits entered (offered) in the window"),
    "callcenter_calls_answered": ("answered", "Calls answered in the window (kept-position callbacks included)"),
    "callcenter_calls_answered_within_threshold": ("answered_within_threshold",
                                                   "Calls answered with wait <= the queue's threshold"),
    "callcenter_calls_abandoned": ("abandoned", "Calls abandoned in the window (short abandons excluded)"),
    "callcenter_calls_short_abandoned": ("short_abandoned", "Calls abandoned before the short-abandon threshold"),
    "callcenter_calls_dequeued": ("dequeued", "Visits that left unanswered to another queue, timeout or key press"),
    "callcenter_callbacks_requested": ("callbacks_requested", "Callbacks requested in the window"),
}
WINDOW_RATES = {
    "callcenter_service_level_ratio": ("service_level", "Service Level by the queue's formula"),
    "callcenter_service_level_live_ratio": ("service_level_live",
                                            "Service Level counting calls still waiting past the threshold as missed"),
    "callcenter_asa_seconds": ("asa_seconds", "Average speed of answer"),
    "callcenter_abandon_ratio": ("abandon_rate", "Abandoned / (answered + abandoned)"),
    "callcenter_average_abandon_seconds": ("average_abandon_seconds", "Average time to abandon"),
    "callcenter_longest_answered_wait_seconds": ("longest_answered_wait_seconds", "Longest wait of an answered call"),
}
OUTCOME_TOTALS = ("answered", "abandoned", "short_abandoned", "dequeued", "expired")
CALLBACK_TOTALS = {
    "requested": "callbacks_requested",
    "kept_position": "callbacks_kept_position",
    "scheduled": "callbacks_scheduled",
    "connected": "callbacks_connected",
    "failed": "callbacks_failed",
}


class PipelineCollector:
    def __init__(self, pipeline: Any, clock: Callable[[], float] = time.time) -> None:
        self.pipeline = pipeline
        self.clock = clock
        self._counts: CountsOf = window_counter(0)  # replaced at every scrape: its windows' counts

    def collect(self) -> Iterator[Any]:
        now_ms = int(self.clock() * 1000)
        # Groups and tenants are counted like queues, under roll-up keys; they get families of their own.
        queues = self.pipeline.queues.plain_queues()
        self._counts = window_counter(now_ms)
        yield from self._windows(queues, now_ms)
        yield from self._live(queues, now_ms)
        yield from self._foresight(queues, now_ms)
        yield from self._totals(queues)
        yield from self._health()
        yield from journey_families(queues, now_ms, counts_of=self._counts)
        yield from rollup_families(self.pipeline.queues.queues(), now_ms,
                                   tenants=self.pipeline.settings.tenant_label, counts_of=self._counts)

    def _windows(self, queues: dict[str, QueueState], now_ms: int) -> Iterator[Any]:
        counts_families = {name: GaugeMetricFamily(name, help_, labels=["queue", "window"])
                           for name, (_, help_) in WINDOW_COUNTS.items()}
        rate_families = {name: GaugeMetricFamily(name, help_, labels=["queue", "window"])
                         for name, (_, help_) in WINDOW_RATES.items()}
        for queue, state in sorted(queues.items()):
            over = state.waiting_counts(now_ms)["waiting_over_threshold"]
            for window in WINDOWS:
                counts = self._counts(state, window)
                summary = counters.summary(counts, state.settings)
                summary["service_level_live"] = counters.service_level(counts, state.settings, over)
                for name, (key, _) in WINDOW_COUNTS.items():
                    counts_families[name].add_metric([queue, window], summary[key])
                for name, (key, _) in WINDOW_RATES.items():
                    if summary[key] is not None:  # no denominator: absent, never 0 or 1
                        rate_families[name].add_metric([queue, window], summary[key])
        yield from counts_families.values()
        yield from rate_families.values()

    def _live(self, queues: dict[str, QueueState], now_ms: int) -> Iterator[Any]:
        waiting = GaugeMetricFamily("callcenter_calls_waiting", "Calls waiting now (caller) and callback markers "
                                    "holding their place (callback)", labels=["queue", "kind"])
        oldest = GaugeMetricFamily("callcenter_oldest_wait_seconds", "Wait of the oldest call or marker waiting now",
                                   labels=["queue"])
        over = GaugeMetricFamily("callcenter_calls_waiting_over_threshold",
                                 "Calls and markers waiting longer than the threshold now", labels=["queue"])
        agents = GaugeMetricFamily("callcenter_agents", "Agents by state", labels=["queue", "state"])
        target = GaugeMetricFamily("callcenter_service_level_target_ratio", "The queue's Service Level target",
                                   labels=["queue"])
        threshold = GaugeMetricFamily("callcenter_service_level_threshold_seconds",
                                      "The queue's Service Level threshold T", labels=["queue"])
        last = GaugeMetricFamily("callcenter_queue_last_event_timestamp_seconds",
                                 "Event time of the newest event counted for the queue", labels=["queue"])
        for queue, state in sorted(queues.items()):
            live = state.waiting_counts(now_ms)
            waiting.add_metric([queue, "caller"], live["calls_waiting"])
            waiting.add_metric([queue, "callback"], live["callbacks_waiting"])
            oldest.add_metric([queue], live["oldest_wait_seconds"])
            over.add_metric([queue], live["waiting_over_threshold"])
            if state.agents:  # no agent events for the queue: nothing is known, so no series (not zeros)
                for agent_state, n in state.agent_counts().items():
                    agents.add_metric([queue, agent_state], n)
            target.add_metric([queue], state.settings.target)
            threshold.add_metric([queue], state.settings.threshold_seconds)
            if state.last_event_ts:
                last.add_metric([queue], state.last_event_ts / 1000)
        yield from (waiting, oldest, over, agents, target, threshold, last)

    def _foresight(self, queues: dict[str, QueueState], now_ms: int) -> Iterator[Any]:
        """What the queue is heading for (docs/metrics.md "Foresight"); absent where it is undefined."""
        ewt = GaugeMetricFamily("callcenter_queue_expected_wait_seconds",
                                "Expected wait of a caller entering the queue now", labels=["queue"])
        projected = GaugeMetricFamily("callcenter_queue_projected_service_level_ratio",
                                      "Service Level the current interval is projected to end at", labels=["queue"])
        chance = GaugeMetricFamily("callcenter_queue_target_chance_ratio",
                                   "Chance that the current interval ends at or above the target", labels=["queue"])
        needed = GaugeMetricFamily("callcenter_queue_agents_needed",
                                   "Agents needed to reach the target at the live arrival rate and handle time",
                                   labels=["queue"])
        forecasts = self.pipeline.foresight.read(queues)
        for queue in sorted(queues):
            view = forecasts[queue]
            for family, key in ((ewt, "ewt_seconds"), (projected, "projected_service_level"),
                                (chance, "chance_of_target"), (needed, "agents_needed")):
                if view[key] is not None:
                    family.add_metric([queue], view[key])
        yield from (ewt, projected, chance, needed)

    def _totals(self, queues: dict[str, QueueState]) -> Iterator[Any]:
        entered = CounterMetricFamily("callcenter_calls_entered", "Queue visits entered", labels=["queue"])
        outcomes = CounterMetricFamily("callcenter_call_outcomes", "Queue visit outcomes",
                                       labels=["queue", "outcome"])
        callbacks = CounterMetricFamily("callcenter_callbacks", "Callbacks by result", labels=["queue", "result"])
        histogram = HistogramMetricFamily("callcenter_answered_wait_seconds", "Wait of answered calls",
                                          labels=["queue"])
        for queue, state in sorted(queues.items()):
            totals = state.totals
            idx = counters.INDEX
            entered.add_metric([queue], totals[idx["entered"]])
            for outcome in OUTCOME_TOTALS:
                outcomes.add_metric([queue, outcome], totals[idx[outcome]])
            for result, key in CALLBACK_TOTALS.items():
                callbacks.add_metric([queue, result], totals[idx[key]])
            per_bucket = counters.histogram(totals)
            cumulative, buckets = 0, []
            for bound, n in zip((*counters.WAIT_BUCKETS_SECONDS, float("inf")), per_bucket, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else str(float(bound)), cumulative))
            histogram.add_metric([queue], buckets, totals[idx["answered_wait_ms"]] / 1000)
        yield from (entered, outcomes, callbacks, histogram)

    def _progress(self) -> Iterator[Any]:
        """How far the stages have got: what `streamer replay --wait` and a caught-up check look at."""
        stage = self.pipeline.queues
        idle_seconds = self.pipeline.config.limits.idle_seconds
        pending = GaugeMetricFamily("callcenter_queue_intervals_pending",
                                    "Intervals whose newest counts are not on queue-intervals yet", labels=["queue"])
        idle = GaugeMetricFamily("callcenter_queue_idle", "1 when the queue has had no event for the idle period, "
                                 "so its intervals close without waiting for the watermark", labels=["queue"])
        # A roll-up key is no queue name (it starts with a control character): groups and tenants
        # close their intervals with their queues' and are left out here.
        for queue in sorted(stage.plain_queues()):
            pending.add_metric([queue], stage.pending_intervals(queue))
            idle.add_metric([queue], 1 if stage.is_idle(queue, idle_seconds) else 0)
        yield from (pending, idle)
        progress = self.pipeline.progress()
        topics = progress["topics"]
        offsets = GaugeMetricFamily("callcenter_processed_offset", "Offset of the last record a stage has fully "
                                    "processed, per owned partition", labels=["topic", "partition"])
        partition_idle = GaugeMetricFamily("callcenter_events_partition_idle", "1 when an owned call-events "
                                           "partition is left out of the watermark as idle", labels=["partition"])
        for stage_name, topic in (("stage1", topics["events"]), ("stage2", topics["outcomes"])):
            for entry in progress[stage_name]:
                if entry["offset"] is not None:
                    offsets.add_metric([topic, str(entry["partition"])], entry["offset"])
        for entry in progress["stage1"]:
            partition_idle.add_metric([str(entry["partition"])], 1 if entry["idle"] else 0)
        yield from (offsets, partition_idle)

    def _health(self) -> Iterator[Any]:
        health = self.pipeline.health
        events = CounterMetricFamily("callcenter_events", "Events read by this worker, by result and reason",
                                     labels=["result", "reason"])
        for (result, reason), n in sorted(health.events.items()):
            events.add_metric([result, reason], n)
        yield events
        last = GaugeMetricFamily("callcenter_last_event_timestamp_seconds",
                                 "Event time of the newest event this worker has read")
        if health.last_event_ts:
            last.add_metric([], health.last_event_ts / 1000)
        yield last
        watermark = GaugeMetricFamily("callcenter_watermark_timestamp_seconds",
                                      "Stage-2 stream time: the minimum over every upstream partition",
                                      labels=["partition"])
        for partition in sorted(self.pipeline.queues.owned):
            mark = self.pipeline.queues.watermark(partition)
            if mark is not None:
                watermark.add_metric([str(partition)], mark / 1000)
        yield watermark
        yield from self._progress()
        emitted = CounterMetricFamily("callcenter_intervals_emitted", "Closed intervals written to queue-intervals")
        emitted.add_metric([], health.intervals_emitted)
        yield emitted
        trimmer = self.pipeline.heap
        if trimmer.enabled:
            trims = CounterMetricFamily("callcenter_worker_heap_trims",
                                        "Times this worker handed its freed heap memory back to the OS")
            trims.add_metric([], trimmer.trims)
            released = CounterMetricFamily("callcenter_worker_heap_released_bytes",
                                           "RSS this worker's heap trims gave back to the OS")
            released.add_metric([], trimmer.released_bytes)
            yield from (trims, released)
        lag = GaugeMetricFamily("callcenter_consumer_lag_messages", "Records behind the end of each owned partition",
                                labels=["topic", "partition"])
        # Only the topics the agents consume: the consumer is also assigned the tables' changelog topics,
        # which this worker writes and reads only to recover, so their "lag" grows with every update.
        settings = self.pipeline.settings
        sources = {settings.events_topic, settings.outcomes_topic}
        for (topic, partition), n in sorted(self.pipeline.consumer_lag().items()):
            if topic in sources:
                lag.add_metric([topic, str(partition)], n)
        yield lag


# --- the customer's journey, groups and tenants (docs/monitoring.md "Customer journey", "Groups and tenants") ---

JOURNEY_WINDOW_COUNTS = {
    "callcenter_contacts_identified": ("contacts_identified",
                                       "Contacts (first visits carrying a customer) in the window"),
    "callcenter_repeat_contacts": ("repeat_contacts", "Contacts whose customer had another contact within the "
                                   "queue's repeat window before"),
    "callcenter_handoffs_in": ("handoffs_in", "Visits entered by a hand-off from another visit of the same call"),
    "callcenter_handoffs_out": ("handoffs_out", "Visits followed by a hand-off to another visit of the same call"),
    "callcenter_journeys": ("journeys", "Calls ended in the window, counted at their first queue"),
    "callcenter_journeys_with_handoff": ("journeys_with_handoff", "Ended calls with at least one hand-off"),
    "callcenter_journeys_passed_around": ("journeys_passed_around", "Ended calls with two hand-offs or more"),
    "callcenter_journeys_answered": ("journey_answered", "Ended calls answered"),
    "callcenter_journeys_answered_within_threshold": ("journey_answered_within_threshold",
                                                      "Ended calls answered with journey wait <= the first "
                                                      "queue's threshold"),
    "callcenter_nps_responses": ("nps_responses", "NPS survey answers"),
    "callcenter_nps_promoters": ("nps_promoters", "NPS answers 9-10"),
    "callcenter_nps_passives": ("nps_passives", "NPS answers 7-8"),
    "callcenter_nps_detractors": ("nps_detractors", "NPS answers 0-6"),
    "callcenter_csat_responses": ("csat_responses", "CSAT survey answers"),
    "callcenter_csat_satisfied": ("csat_satisfied", "CSAT answers 4-5"),
}
JOURNEY_WINDOW_RATES = {
    "callcenter_repeat_contact_ratio": ("repeat_contact_rate", "Repeat contacts / contacts identified"),
    "callcenter_journey_service_level_ratio": ("journey_service_level",
                                               "Service Level over whole calls (journey wait against the first "
                                               "queue's threshold, by its formula)"),
    "callcenter_journey_asa_seconds": ("journey_asa_seconds", "Average journey wait of answered calls"),
    "callcenter_nps_score": ("nps_score", "Net Promoter Score, 100 x (promoters - detractors) / responses"),
    "callcenter_csat_ratio": ("csat_rate", "Satisfied CSAT answers (4-5) / CSAT answers"),
}
# First-contact resolution is decided days after the contact: a window counts the decisions made in it
# (a resolved contact at t + window, an unresolved one at its customer's next contact). Only the day is
# exported: in a shorter window the two kinds of decision are about contacts of different days.
FCR_WINDOWS = ("today",)
FCR_WINDOW_FAMILIES = {
    "callcenter_fcr_resolved": ("fcr_resolved", "Contacts found resolved in the window (no further contact "
                                "within the FCR window)"),
    "callcenter_fcr_unresolved": ("fcr_unresolved", "Contacts found unresolved in the window (the customer "
                                  "called again within the FCR window)"),
    "callcenter_fcr_ratio": ("fcr_rate", "First-contact resolution of the contacts decided in the window: "
                             "resolved / (resolved + unresolved)"),
}
FCR_DECISIONS = ("resolved", "unresolved")
# Roll-ups get families of their own (callcenter_group_*, callcenter_tenant_*): a group counts the calls
# of its member queues again, so a sum over one family would double-count, and the per-queue alert
# rules join on `queue` alone.
ROLLUP_PREFIX = {GROUP: "callcenter_group_", TENANT: "callcenter_tenant_"}


CountsOf = Callable[[QueueState, str], list[int]]


def window_counter(now_ms: int) -> CountsOf:
    """The counts of a state's window as of `now_ms`, each summed once per scrape: summing the minute
    buckets is most of a scrape's work, and several families read the same window."""
    cache: dict[tuple[str, str], list[int]] = {}

    def counts_of(state: QueueState, window: str) -> list[int]:
        key = (state.queue, window)
        found = cache.get(key)
        if found is None:
            found = cache[key] = state.window(window, now_ms)[2]
        return found

    return counts_of


def journey_summary(counts: list[int], settings: Any) -> dict[str, Any]:
    """The window block of the journey families: the report's summary plus FCR of the decisions in it."""
    summary = counters.summary(counts, settings)
    summary["fcr_resolved"] = counts[counters.INDEX["fcr_resolved"]]
    summary["fcr_unresolved"] = counts[counters.INDEX["fcr_unresolved"]]
    summary["fcr_rate"] = counters.fcr_rate(counts)
    return summary


def journey_families(states: dict[str, QueueState], now_ms: int, label: str = "queue",
                     prefix: str = "callcenter_", counts_of: CountsOf | None = None) -> Iterator[Any]:
    """Per queue (or roll-up, under `label`) and window: the customer's journey and surveys, FCR by day,
    and FCR decisions as counters; no rate without a denominator."""
    def family(name: str, help_: str, *labels: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(prefix + name.removeprefix("callcenter_"), help_, labels=[label, *labels])

    counts_families = {n: family(n, h, "window") for n, (_, h) in JOURNEY_WINDOW_COUNTS.items()}
    rate_families = {n: family(n, h, "window") for n, (_, h) in JOURNEY_WINDOW_RATES.items()}
    fcr_families = {n: family(n, h, "window") for n, (_, h) in FCR_WINDOW_FAMILIES.items()}
    decisions = CounterMetricFamily(prefix + "fcr_decisions", "First-contact resolution decisions",
                                    labels=[label, "decision"])
    counts_of = counts_of or window_counter(now_ms)
    for name, state in sorted(states.items()):
        for window in WINDOWS:
            counts = counts_of(state, window)
            summary = journey_summary(counts, state.settings)
            for metric, (key, _) in JOURNEY_WINDOW_COUNTS.items():
                counts_families[metric].add_metric([name, window], summary[key])
            for metric, (key, _) in JOURNEY_WINDOW_RATES.items():
                if summary[key] is not None:
                    rate_families[metric].add_metric([name, window], summary[key])
            if window in FCR_WINDOWS:
                for metric, (key, _) in FCR_WINDOW_FAMILIES.items():
                    if summary[key] is not None:
                        fcr_families[metric].add_metric([name, window], summary[key])
        for decision in FCR_DECISIONS:
            decisions.add_metric([name, decision], state.totals[counters.INDEX[f"fcr_{decision}"]])
    yield from counts_families.values()
    yield from rate_families.values()
    yield from fcr_families.values()
    yield decisions


def rollup_families(states: dict[str, QueueState], now_ms: int, tenants: bool = False,
                    counts_of: CountsOf | None = None) -> Iterator[Any]:
    """Groups always, tenants when the deployment asks for a `tenant` label (STREAMER_TENANT_LABEL):
    the window families of a queue and the journey families, under `callcenter_group_*` with a `group`
    label (`callcenter_tenant_*`, `tenant`)."""
    kinds = (GROUP, TENANT) if tenants else (GROUP,)
    counts_of = counts_of or window_counter(now_ms)
    for kind in kinds:
        named = {parsed[1]: state for key, state in states.items()
                 if (parsed := parse_rollup_key(key)) is not None and parsed[0] == kind}
        yield from rollup_window_families(named, now_ms, kind, counts_of)
        yield from journey_families(named, now_ms, label=kind, prefix=ROLLUP_PREFIX[kind], counts_of=counts_of)


def rollup_window_families(states: dict[str, QueueState], now_ms: int, kind: str,
                           counts_of: CountsOf) -> Iterator[Any]:
    """A roll-up's queue figures per window, its calls waiting and its Service Level target."""
    prefix = ROLLUP_PREFIX[kind]

    def family(name: str, help_: str, *labels: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(prefix + name.removeprefix("callcenter_"), help_, labels=[kind, *labels])

    counts_families = {n: family(n, h, "window") for n, (_, h) in WINDOW_COUNTS.items()}
    rate_families = {n: family(n, h, "window") for n, (_, h) in WINDOW_RATES.items()}
    waiting = family("callcenter_calls_waiting", "Calls waiting now in the roll-up's queues", "kind")
    oldest = family("callcenter_oldest_wait_seconds", "Wait of the oldest call waiting now since it entered "
                    "the roll-up")
    target = family("callcenter_service_level_target_ratio", "The roll-up's Service Level target")
    for name, state in sorted(states.items()):
        live = state.waiting_counts(now_ms)
        for window in WINDOWS:
            counts = counts_of(state, window)
            summary = counters.summary(counts, state.settings)
            summary["service_level_live"] = counters.service_level(counts, state.settings,
                                                                   live["waiting_over_threshold"])
            for metric, (key, _) in WINDOW_COUNTS.items():
                counts_families[metric].add_metric([name, window], summary[key])
            for metric, (key, _) in WINDOW_RATES.items():
                if summary[key] is not None:
                    rate_families[metric].add_metric([name, window], summary[key])
        waiting.add_metric([name, "caller"], live["calls_waiting"])
        waiting.add_metric([name, "callback"], live["callbacks_waiting"])
        oldest.add_metric([name], live["oldest_wait_seconds"])
        target.add_metric([name], state.settings.target)
    yield from counts_families.values()
    yield from rate_families.values()
    yield from (waiting, oldest, target)
