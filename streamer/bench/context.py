"""What every measurement shares: the broker, the run's tag (prefix of every topic and app id), the
work dir (worker data and logs), the partition count, where progress is said, and every worker
process started, so that all of them are stopped at the end whatever happened."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from streamer.bench.worker import WorkerProcess, worker_environment


@dataclass(frozen=True)
class BenchContext:
    bootstrap: str
    tag: str
    workdir: Path
    partitions: int
    say: Callable[[str], None]
    worker_source: Path | None = None
    processes: list[WorkerProcess] = field(default_factory=list)

    def history_topic(self, workload: str) -> str:
        return f"{self.tag}-history-{workload}"

    def worker_group(self, role: str, members: int = 1, events_topic: str | None = None) -> list[WorkerProcess]:
        """`members` workers of one new consumer group (app id `TAG-ROLE`), each with its own data dir,
        log and web port, reading `events_topic` (default: the group's own, created at its start)."""
        app_id = f"{self.tag}-{role}"
        env = worker_environment(self.bootstrap, app_id, events_topic or f"{app_id}-call-events", self.partitions,
                                 self.worker_source)
        group = [WorkerProcess(env, self.workdir / app_id / f"data-{n}", self.workdir / app_id / f"worker-{n}.log")
                 for n in range(members)]
        self.processes.extend(group)
        return group

    def worker(self, role: str) -> WorkerProcess:
        return self.worker_group(role)[0]

    def restart_of(self, worker: WorkerProcess) -> WorkerProcess:
        """A new process for the same group member: same settings and data dir, a log of its own."""
        log = worker.log_path.with_name(f"{worker.log_path.stem}-again.log")
        again = WorkerProcess(worker.env, worker.datadir, log)
        self.processes.append(again)
        return again

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()
