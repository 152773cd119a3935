"""Upstream progress: the stream times stage 1's partitions publish, and the watermark drawn from them.

Stage 1 publishes, every second, each of its partitions' stream time whose facts have all been sent
(records.progress_record) to every partition of the topics it feeds. A downstream stage keeps, per
partition of its own, the newest of those per upstream partition; its watermark is their minimum over
the upstream partitions not idle, so one partition that ran ahead cannot move time past what another
still feeds, and one that has gone quiet cannot hold time back (as Flink does with idle sources).
"""

from __future__ import annotations


class UpstreamProgress:
    def __init__(self, upstream_partitions: int) -> None:
        self.upstream_partitions = upstream_partitions
        self.known: dict[int, tuple[int | None, bool]] = {}  # upstream partition -> (stream time, idle)

    def update(self, upstream: int, stream_time: int | None, idle: bool) -> None:
        """A progress record; a stream time never goes back."""
        previous = self.known.get(upstream, (None, True))[0]
        if previous is not None and (stream_time is None or stream_time < previous):
            stream_time = previous
        self.known[upstream] = (stream_time, idle)

    def watermark(self) -> int | None:
        """Minimum stream time over the active upstream partitions; None until every one has reported."""
        if len(self.known) < self.upstream_partitions:
            return None
        active = [t for t, idle in self.known.values() if not idle and t is not None]
        if active:
            return min(active)
        times = [t for t, _ in self.known.values() if t is not None]
        return max(times) if times else None

    def settled(self) -> int | None:
        """Minimum stream time over every upstream partition that has seen events, idle or not; None
        until every one has reported. A contact that can still be accepted upstream is at most the
        late limit (`rules.settle_ms`) behind it, so decisions that must never be taken back (a
        contact resolved, a customer forgotten) take their time from it: an idle partition can
        still deliver events its own stream time accepts, however far the others have run ahead."""
        if len(self.known) < self.upstream_partitions:
            return None
        times = [t for t, _ in self.known.values() if t is not None]
        return min(times) if times else None

    def all_idle(self) -> bool:
        return bool(self.known) and all(idle for _, idle in self.known.values())

    def to_list(self) -> list:
        return [[upstream, t, idle] for upstream, (t, idle) in sorted(self.known.items())]

    @classmethod
    def from_list(cls, upstream_partitions: int, rows: list) -> UpstreamProgress:
        progress = cls(upstream_partitions)
        progress.known = {upstream: (t, bool(idle)) for upstream, t, idle in rows}
        return progress
