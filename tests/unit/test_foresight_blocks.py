"""The pages' foresight blocks: a read shows the last ones, a timer refreshes the due ones within a
slice of the event loop per tick, and only while someone reads (streamer/export/foresight_blocks.py)."""

from __future__ import annotations

from streamer.core import foresight
from streamer.core.config import QueueSettings
from streamer.core.queues import QueueState
from streamer.export.foresight_blocks import PENDING, READERS_GONE_SECONDS, ForesightBlocks

T0 = 1_780_300_800_000


class Clock:
    def __init__(self, step: float = 0.0) -> None:
        self.now, self.step = 100.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def states(n: int) -> dict[str, QueueState]:
    made = {}
    for i in range(n):
        state = QueueState(f"q{i}", QueueSettings())
        state.set_agent(f"a{i}", "busy", T0)
        made[f"q{i}"] = state
    return made


def test_a_read_computes_nothing_and_shows_the_last_blocks():
    queues = states(2)
    blocks = ForesightBlocks(clock=Clock())
    first = blocks.read(queues)
    assert first == {"q0": PENDING, "q1": PENDING}  # every figure unknown before the first block
    assert blocks.refresh(queues, T0) == ["q0", "q1"]
    shown = blocks.read(queues)
    assert shown["q0"]["agents_logged_in"] == 1 and shown["q0"] is foresight.last_block(queues["q0"])
    assert shown["q0"].keys() == PENDING.keys()  # a pending block has every key a computed one has
    # Long after, a read still shows the blocks it has: refreshing is the timer's work.
    assert blocks.read(queues)["q1"] is shown["q1"] and foresight.due(queues["q1"], T0 + 60_000)


def test_a_tick_refreshes_never_computed_then_stalest_within_its_budget():
    queues = states(4)
    work = Clock()
    blocks = ForesightBlocks(clock=Clock(), work_clock=work)
    blocks.read(queues)
    blocks.refresh(queues, T0)
    queues["q1"].foresight_memo = None  # never computed: first
    queues["q2"].foresight_memo = (T0 - 10_000, {})  # the stalest of the computed ones
    queues["q3"].foresight_memo = (T0 - 5_000, {})
    # Each block "takes" 10 ms of a 20 ms budget: two queues this tick, the rest the next.
    work.step = 0.01
    assert blocks.refresh(queues, T0 + 6_000, budget_seconds=0.02) == ["q1", "q2"]
    assert blocks.refresh(queues, T0 + 6_000, budget_seconds=0.02) == ["q3", "q0"]
    assert blocks.refresh(queues, T0 + 6_000) == []  # all fresh
    # A block that alone exceeds the budget is still computed: at least one queue per tick.
    queues["q0"].foresight_memo = None
    assert blocks.refresh(queues, T0 + 6_000, budget_seconds=0.0) == ["q0"]


def test_nothing_is_refreshed_without_readers():
    queues = states(2)
    clock = Clock()
    blocks = ForesightBlocks(clock=clock)
    assert blocks.refresh(queues, T0) == []  # never read
    blocks.read(queues)
    clock.now += READERS_GONE_SECONDS + 1
    assert blocks.refresh(queues, T0) == []
    blocks.read(queues)
    assert blocks.refresh(queues, T0) == ["q0", "q1"]


def test_a_block_without_a_projection_is_refreshed_within_a_second():
    queues = states(1)
    blocks = ForesightBlocks(clock=Clock())
    blocks.read(queues)
    assert blocks.refresh(queues, T0) == ["q0"]
    assert foresight.last_block(queues["q0"])["projected_service_level"] is None  # no outcome, nobody calling
    assert blocks.refresh(queues, T0 + 999) == []
    assert blocks.refresh(queues, T0 + 1_000) == ["q0"]
    queues["q0"].foresight_memo = (T0, {"projected_service_level": 0.8})
    assert blocks.refresh(queues, T0 + 4_999) == [] and blocks.refresh(queues, T0 + 5_000) == ["q0"]


def test_catching_up_refreshes_only_missing_and_old_blocks_then_all_of_them_once_caught_up():
    from streamer.export.foresight_blocks import CATCH_UP_REFRESH_MS

    queues = states(3)
    blocks = ForesightBlocks(clock=Clock())
    blocks.read(queues)
    assert blocks.refresh(queues, T0, behind=True) == ["q0", "q1", "q2"]  # none had a block: computed
    # Behind, a block older than the normal period is not due until the catch-up period has passed.
    assert blocks.refresh(queues, T0 + 6_000, behind=True) == []
    queues["q1"].foresight_memo = None
    assert blocks.refresh(queues, T0 + 7_000, behind=True) == ["q1"]
    assert blocks.refresh(queues, T0 + CATCH_UP_REFRESH_MS, behind=True) == ["q0", "q2"]
    # Caught up: every block computed while behind is due at once, though younger than the normal
    # period, the oldest first; after that the normal period applies again.
    caught_up = T0 + CATCH_UP_REFRESH_MS + 1_000
    assert blocks.refresh(queues, caught_up) == ["q1", "q0", "q2"]
    assert all(foresight.computed_at(state) == caught_up for state in queues.values())
    assert blocks.refresh(queues, caught_up + 500) == []
    assert blocks.refresh(queues, caught_up + foresight.FORESIGHT_REFRESH_MS) == ["q0", "q1", "q2"]


def test_a_block_recomputed_after_the_catch_up_is_not_due_again_within_the_same_second():
    queues = states(1)
    blocks = ForesightBlocks(clock=Clock())
    blocks.read(queues)
    assert blocks.refresh(queues, T0 + 50, behind=True) == ["q0"]
    assert blocks.refresh(queues, T0 + 250) == ["q0"]  # caught up 0.2 s later: replaced once
    assert blocks.refresh(queues, T0 + 450) == []
