"""The customer stage: contacts keyed by customer in, repeat-contact and first-contact-resolution facts
keyed by queue out (to stage 2).

Stage 1 sends each contact fact (a journey whose first enqueue names a `customer_id`) to `call-contacts`,
keyed by the customer, so one customer's contacts, from any call and any stage-1 partition, meet in one
partition here; with them, every second, each stage-1 partition's progress. Per owned partition, a
batch at a time (`handle`, called by the bulk consumer): a `CustomerTracker` (streamer/core/customers.py)
over an in-memory mirror of the partition's customers, advanced to the watermark of stage 1's
progress, its facts delivered to `call-outcomes`, then the changed customers written back, once per key
per batch. The customer table follows stage 1's protocol (`streamer.app.stage1.CallStage`):

  "u:" + customer id   [partition, offset, customer or null (forgotten), the customer before that write]
  "t:" + partition     [partition, offset, stage 1's progress]: every record up to `offset` is in the rows

Stage 2 takes its time from stage 1's partitions and from this stage's (`published_progress`), so an
interval closes only once the repeat-contact facts for its contacts are on `call-outcomes`.

After a crash, a row newer than its partition's "t:" row is rolled back and the batch read again with
the progress it had, so the replay decides as the first run did (stage 2 counts a fact once).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamer.app import records as wire
from streamer.app.progress import UpstreamProgress
from streamer.app.stage1 import DirtyDict
from streamer.core.calls import Fact
from streamer.core.config import Config
from streamer.core.customers import Customer, CustomerTracker
from streamer.core.partitioning import partition_of

log = logging.getLogger(__name__)

CUSTOMER_ROW = "u:"
CLOCK_ROW = "t:"


@dataclass(frozen=True)
class CustomerOutputs:
    outcomes_topic: str
    outcome_partitions: int
    batches: Callable[[], Any]
    write: Callable[[int, dict[str, bytes | None]], Awaitable[None]]


@dataclass
class _Partition:
    tracker: CustomerTracker
    progress: UpstreamProgress
    applied: int  # offset of the last record in the table's rows
    forgotten: set[str] = field(default_factory=set)  # customers marked forgotten, to delete at next flush
    # The watermark (and idle flag) whose facts are all delivered: what stage 2 may be told.
    sent: tuple[int | None, bool] = (None, True)


class CustomerStage:
    def __init__(self, config: Config, rows: Callable[[int], Iterable[tuple[str, bytes]]],
                 upstream_partitions: int) -> None:
        """`rows(partition)`: the customer table's rows of a partition, as stored."""
        self.config = config
        self.rows = rows
        self.upstream_partitions = upstream_partitions
        self.owned: dict[int, _Partition] = {}

    def partition(self, partition: int) -> _Partition:
        owned = self.owned.get(partition)
        if owned is None:
            owned = self.owned[partition] = self._recover(partition)
        return owned

    def forget_partitions(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.owned.pop(partition, None)

    def _recover(self, partition: int) -> _Partition:
        started = time.monotonic()
        rows = [(key, orjson.loads(raw)) for key, raw in self.rows(partition)]
        clock = next((row for key, row in rows if key == CLOCK_ROW + str(partition)), None)
        _, applied, progress = clock if clock is not None else (partition, -1, [])
        customers: dict[str, Customer] = {}
        rolled_back: list[str] = []
        forgotten: set[str] = set()
        for key, row in rows:
            if not key.startswith(CUSTOMER_ROW):
                continue
            row_partition, offset, state, before = row
            if row_partition != partition:
                continue
            customer_id = key[len(CUSTOMER_ROW):]
            if offset > applied:
                state = before
                rolled_back.append(customer_id)
            if state is None:
                forgotten.add(customer_id)
            else:
                customers[customer_id] = Customer.from_list(state)
        store = DirtyDict(customers)
        for customer_id in rolled_back:
            store.touch(customer_id)  # rewrite the row at the next flush, so no newer version remains
        tracker = CustomerTracker(self.config, store)
        tracker.rebuild_schedule()
        upstream = UpstreamProgress.from_list(self.upstream_partitions, progress)
        owned = _Partition(tracker, upstream, applied, forgotten - set(rolled_back), (upstream.settled(),
                                                                                        upstream.all_idle()))
        if customers or applied >= 0:
            log.info("customer stage partition %d: recovered %d customer(s) in %.2f s, resuming after offset %d "
                     "(%d rolled back to it)", partition, len(customers), time.monotonic() - started, applied,
                     len(rolled_back))
        return owned

    def process(self, partition: int, records: list[tuple[int, bytes | None]]
                ) -> tuple[_Partition, dict[str, list], tuple[int | None, bool]]:
        """Run one partition's records (offset, value) through its tracker; the facts per queue and the
        progress they bring stage 2 to once delivered. Records already in the table's rows (replayed
        after a restart) are skipped."""
        owned = self.partition(partition)
        tracker, progress = owned.tracker, owned.progress
        out: dict[str, list] = defaultdict(list)
        for offset, value in records:
            if offset <= owned.applied or value is None:
                continue
            record = wire.decode(value)
            if record["k"] == wire.PROGRESS:
                progress.update(record["p"], record["st"], bool(record.get("idle")))
                continue
            for fact in tracker.add(Fact.from_list(record["c"])):
                out[fact.queue].append(fact.to_list())
        watermark = progress.settled()  # not `watermark()`: its idleness would let time run ahead
        if watermark is not None:
            for fact in tracker.advance(watermark):
                out[fact.queue].append(fact.to_list())
        return owned, out, (watermark, progress.all_idle())

    def flush(self, partition: int, offset: int, owned: _Partition) -> dict[str, bytes | None] | None:
        """The table writes that record the batch, in the order they must land (the "t:" row last);
        None when the partition was revoked since `process`."""
        if self.owned.get(partition) is not owned:
            return None
        offset = max(offset, owned.applied)
        store = owned.tracker.store
        changes: dict[str, bytes | None] = {}
        for customer_id in owned.forgotten - store.keys():
            changes[CUSTOMER_ROW + customer_id] = None
        forgotten = set()
        for customer_id, state, before in store.take_changes():  # type: ignore[attr-defined]
            if state is None and before is None:
                changes[CUSTOMER_ROW + customer_id] = None
                continue
            changes[CUSTOMER_ROW + customer_id] = orjson.dumps(
                [partition, offset, state.to_list() if state else None, before.to_list() if before else None])
            if state is None:
                forgotten.add(customer_id)
        changes[CLOCK_ROW + str(partition)] = orjson.dumps([partition, offset, owned.progress.to_list()])
        owned.applied = offset
        owned.forgotten = forgotten
        return changes

    async def handle(self, partition: int, records: list[Any], out: CustomerOutputs) -> None:
        """One partition batch of `call-contacts` records, end to end: facts delivered, then rows."""
        owned, facts, reached = self.process(partition, [(record.offset, record.value) for record in records])
        if facts:
            batches = out.batches()
            for queue, queue_facts in facts.items():
                key = queue.encode()
                batches.add(out.outcomes_topic, partition_of(key, out.outcome_partitions), key,
                            wire.batch_record(queue_facts, []))
            await batches.deliver()
        owned.sent = reached
        changes = self.flush(partition, records[-1].offset, owned)
        if changes is not None:
            await out.write(partition, changes)

    def published_progress(self, assigned: set[int]) -> list[tuple[int, int | None, bool]]:
        """(partition, watermark, idle) of the owned partitions, for stage 2: every fact the stage drew
        from stream time up to that watermark is on `call-outcomes`, so stage 2 may close intervals to it.
        Stage 2 knows these partitions as upstream partitions `upstream_partitions + partition`."""
        return [(self.upstream_partitions + p, *self.owned[p].sent) for p in sorted(assigned) if p in self.owned]

    def progress(self, assigned: set[int]) -> list[dict[str, Any]]:
        return [{"partition": p, "offset": self.owned[p].applied if p in self.owned else None,
                 "customers": len(self.owned[p].tracker.store) if p in self.owned else None}
                for p in sorted(assigned)]
