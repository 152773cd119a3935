"""`QueueState`: every fact counted once however often it arrives, across a restore from its rows, a
crash between any two row writes, and the folding of old buckets into the totals' base."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.core import calls, counters
from streamer.core.config import ATTRIBUTE_ARRIVAL, QueueSettings
from streamer.core.queues import BUCKET_RETENTION_MS, CALLBACK, CALLER, QueueState, fact_key

T0 = 1780308000000  # 2026-06-01T10:00:00Z
SETTINGS = QueueSettings()
INDEX = counters.INDEX


def state() -> QueueState:
    return QueueState("q1", SETTINGS)


def entered(visit: str, at_s: float) -> calls.Fact:
    return calls.Fact(calls.ENTERED, "q1", visit, T0 + int(at_s * 1000), T0 + int(at_s * 1000))


def answered(visit: str, enqueued_s: float, at_s: float) -> calls.Fact:
    enqueued, at = T0 + int(enqueued_s * 1000), T0 + int(at_s * 1000)
    return calls.Fact(calls.ANSWERED, "q1", visit, at, enqueued, at - enqueued)


def count(queue: QueueState, name: str) -> int:
    return queue.totals[INDEX[name]]


def test_a_repeated_fact_is_counted_once_and_reported_as_a_repeat():
    queue = state()
    first = queue.apply(entered("c1#1", 0))
    again = queue.apply(entered("c1#1", 0))
    assert first.bucket == T0 and not first.repeated
    assert again.bucket is None and again.repeated
    assert count(queue, "entered") == 1
    assert queue.buckets[T0][INDEX["entered"]] == 1


def test_facts_differing_in_visit_or_kind_are_distinct():
    queue = state()
    for fact in (entered("c1#1", 0), entered("c1#2", 0), entered("c2#1", 0), answered("c1#1", 0, 10)):
        assert queue.apply(fact).bucket is not None
    assert count(queue, "entered") == 3 and count(queue, "answered") == 1


def test_fact_keys_are_stable_and_ignore_everything_but_visit_and_kind():
    fact = answered("c1#1", 0, 10)
    assert fact_key(fact) == fact_key(answered("c1#1", 0, 10))
    assert fact_key(fact) != fact_key(answered("c1#2", 0, 10))
    assert fact_key(fact) != fact_key(calls.Fact(calls.ABANDONED, "q1", "c1#1", fact.ts, fact.enqueued_ts, 10_000))
    assert 0 <= fact_key(fact) < 2**63
    # Keys are stored: a key written by one version of the worker must be recognised by the next.
    assert fact_key(entered("c1#1", 0)) == 0x484B264642EEAD30


def test_a_repeated_enqueue_after_the_outcome_does_not_bring_the_caller_back():
    queue = state()
    queue.apply(entered("c1#1", 0))
    assert queue.waiting == {"c1#1": (T0, CALLER)}
    queue.apply(answered("c1#1", 0, 10))
    assert queue.waiting == {}
    changes = queue.apply(entered("c1#1", 0))
    assert changes.repeated and changes.waiting_added is None
    assert queue.waiting == {}


def test_a_repeated_outcome_still_removes_its_visit_from_the_live_queue():
    queue = state()
    queue.apply(entered("c1#1", 0))
    queue.apply(answered("c1#1", 0, 10))
    queue.waiting["c1#1"] = (T0, CALLER)  # as restored from a waiting row written before the crash
    changes = queue.apply(answered("c1#1", 0, 10))
    assert changes.repeated and changes.waiting_removed == "c1#1"
    assert queue.waiting == {} and count(queue, "answered") == 1


def test_a_repeated_callback_request_keeps_the_marker():
    queue = state()
    request = calls.Fact(calls.CALLBACK_REQUESTED, "q1", "c1#1", T0 + 5000, T0, None, "keep_position")
    queue.apply(entered("c1#1", 0))
    queue.apply(request)
    assert queue.apply(request).repeated
    assert queue.waiting == {"c1#1": (T0, CALLBACK)}
    assert count(queue, "callbacks_requested") == 1


def test_the_memory_follows_the_fact_time_so_arrival_attribution_dedups_too():
    queue = QueueState("q1", QueueSettings(attribute_to=ATTRIBUTE_ARRIVAL))
    late_answer = answered("c1#1", 0, 3600)  # counted in the enqueue minute
    assert queue.apply(late_answer).bucket == T0
    assert queue.apply(late_answer).repeated
    assert count(queue, "answered") == 1


def rows_of(queue: QueueState) -> dict[str, bytes]:
    """The rows a shell would have written, encoded as they are stored."""
    rows = {str(minute): orjson.dumps(queue.bucket_row(minute)) for minute in queue.buckets}
    rows["base"] = orjson.dumps(queue.base_row())
    return rows


def restored(rows: dict[str, bytes]) -> QueueState:
    queue = state()
    if "base" in rows:
        queue.restore_base(orjson.loads(rows["base"]))
    for key, raw in rows.items():
        if key != "base":
            queue.restore_bucket(int(key), orjson.loads(raw))
    queue.finish_restore()
    return queue


def test_a_restored_state_recognises_facts_counted_before_the_restart():
    queue = state()
    queue.apply(entered("c1#1", 0))
    queue.apply(answered("c1#1", 0, 70))
    again = restored(rows_of(queue))
    assert again.totals == queue.totals and again.buckets == queue.buckets
    assert again.apply(answered("c1#1", 0, 70)).repeated
    assert again.apply(entered("c2#1", 80)).bucket is not None
    assert count(again, "entered") == 2


def test_pruning_folds_old_buckets_into_the_totals_at_an_interval_start():
    queue = state()
    queue.apply(entered("old#1", 0))
    queue.apply(entered("old#2", 16 * 60))
    totals = list(queue.totals)
    now = T0 + BUCKET_RETENTION_MS + 20 * 60_000  # 49 h after 10:20: the cut falls at 10:15
    assert queue.prune(now) == [T0]
    assert queue.kept_from == T0 + 15 * 60_000
    assert queue.totals == totals and queue.base[INDEX["entered"]] == 1
    assert sorted(queue.buckets) == [T0 + 16 * 60_000]
    assert queue.prune(now) == []
    late = queue.apply(entered("old#3", 60))
    assert late.past_retention and late.bucket is None and queue.totals == totals


def test_a_crash_between_the_base_write_and_the_bucket_deletes_is_repaired_on_restore():
    queue = state()
    queue.apply(entered("old#1", 0))
    queue.apply(entered("new#1", 20 * 60))
    before_prune = rows_of(queue)
    queue.prune(T0 + BUCKET_RETENTION_MS + 20 * 60_000)
    crashed = {**before_prune, "base": orjson.dumps(queue.base_row())}  # base written, delete lost
    again = restored(crashed)
    assert sorted(again.buckets) == [T0 + 20 * 60_000]
    assert again.totals == queue.totals and count(again, "entered") == 2


def test_the_dirty_intervals_after_a_restore_are_those_with_buckets():
    queue = state()
    queue.apply(entered("a#1", 0))
    queue.apply(entered("b#1", 40 * 60))
    again = restored(rows_of(queue))
    assert again.dirty == {T0, T0 + 30 * 60_000}


FACTS = st.lists(
    st.tuples(st.integers(0, 30), st.sampled_from([calls.ENTERED, calls.ANSWERED, calls.ABANDONED]),
              st.integers(0, 3 * 3600)),
    min_size=1, max_size=40, unique_by=lambda t: (t[0], t[1]),
)


def fact_of(visit: int, kind: str, at_s: int) -> calls.Fact:
    ts = T0 + at_s * 1000
    wait = None if kind == calls.ENTERED else 15_000
    return calls.Fact(kind, "q1", f"c{visit}#1", ts, ts - (wait or 0), wait)


@settings(max_examples=300, deadline=None)
@given(FACTS, st.data())
def test_any_replay_after_any_crash_counts_each_fact_exactly_once(distinct, data):
    """Stage 2 after a crash. Each row is one value, written at some flush between the last commit
    and the crash (a commit flushes every write before it); every fact after the commit arrives
    again, with copies re-sent by stage 1 mixed in; then the stream goes on."""
    facts = [fact_of(*t) for t in distinct]
    once = state()
    for fact in facts:
        once.apply(fact)

    crash = data.draw(st.integers(0, len(facts)), label="facts applied before the crash")
    commit = data.draw(st.integers(0, crash), label="facts committed")
    snapshots = []
    live = state()
    for index, fact in enumerate([*facts[:crash], None]):
        if index >= commit:
            snapshots.append(rows_of(live))
        if fact is not None:
            live.apply(fact)
    survivors = {}
    for key in sorted(set().union(*snapshots)):
        version = snapshots[data.draw(st.integers(0, len(snapshots) - 1), label=f"version of {key}")]
        if key in version:
            survivors[key] = version[key]
    copies = data.draw(st.lists(st.sampled_from(facts), max_size=10), label="copies re-sent by stage 1")

    again = restored(survivors)
    for fact in facts[commit:crash] + copies + facts[crash:]:
        again.apply(fact)
    assert again.buckets == once.buckets
    assert again.totals == once.totals
