"""`streamer ingest asterisk` as a process: JSONL out, --follow across rotations and restarts (the
position file), incremental runs, and clear errors. Each follower stops by itself (--exit-after-idle)
or on SIGTERM; the test waits for output, never for a fixed time."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from streamer.sources.asterisk import QueueLogMapper

WAIT_SECONDS = 20
INGEST = [sys.executable, "-m", "streamer.cli", "ingest", "asterisk"]

# Four visits, an agent session and a PBXware line; each numbered line is fed at a different stage.
LINES = [
    "1700000000|NONE|NONE|NONE|QUEUESTART",
    "1700000001|m1|sales|Local/2001@agents|ADDMEMBER|",
    "1700000010|c1|sales|NONE|ENTERQUEUE||5550001|1",
    "1700000022|c1|sales|Agent/2001|CONNECT|12|b1|3",
    "1700000140|c1|sales|Agent/2001|COMPLETECALLER|12|118|1",
    "1700000200|c2|sales|NONE|ENTERQUEUE||5550002|1",
    "1700000230|c2|sales|NONE|ABANDON|1|1|30",
    "1700000300|NONE|NONE|Agent/2001|OUTDIAL|Cda880bf7f1",
    "1700000400|c3|sales|NONE|ENTERQUEUE||5550003|1",
    "1700000700|c3|sales|NONE|EXITWITHTIMEOUT|1|1|300",
    "1700000800|c4|sales|NONE|ENTERQUEUE||5550004|1",
    "1700000805|c4|sales|Agent/2001|CONNECT|5|b4|5",
    "1700000900|c4|sales|Agent/2001|TRANSFER|3001|from-internal|5|95|1",
    "1700000950|NONE|sales|Local/2001@agents|REMOVEMEMBER|",
]


def expected(lines: list[str]) -> list[dict]:
    return list(QueueLogMapper().map_lines(lines))


def text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def append(path: Path, lines: list[str]) -> None:
    with open(path, "a") as out:
        out.write(text(lines))


def rotate(log: Path) -> None:
    """What logrotate does with its default settings: shift the old generations, rename the log."""
    first = log.with_name(log.name + ".1")
    if first.exists():
        first.rename(log.with_name(log.name + ".2"))
    log.rename(first)


def ingest(*args: str | Path) -> tuple[list[dict], str]:
    done = subprocess.run([*INGEST, *map(str, args)], capture_output=True, text=True, timeout=WAIT_SECONDS, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def follow_once(log: Path) -> list[dict]:
    """A follower run that stops once it has caught up and nothing more arrives."""
    return ingest(log, "--follow", "--exit-after-idle", "0.3", "--poll-interval", "0.02")[0]


class LiveFollower:
    """`streamer ingest asterisk PATH --follow`, running until it is signalled."""

    def __init__(self, log: Path) -> None:
        self.process = subprocess.Popen(
            [*INGEST, str(log), "--follow", "--poll-interval", "0.02"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: queue.Queue[dict | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.put(json.loads(line))
        self.events.put(None)

    def take(self, n: int) -> list[dict]:
        taken: list[dict] = []
        while len(taken) < n:
            try:
                event = self.events.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                raise AssertionError(f"{len(taken)} of {n} events after {WAIT_SECONDS} s") from None
            assert event is not None, f"the follower exited early: {self.stop(signal.SIGKILL)}"
            taken.append(event)
        return taken

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str, list[dict]]:
        """Signals the process; returns its exit code, stderr and the events it wrote meanwhile."""
        self.process.send_signal(signum)
        returncode = self.process.wait(timeout=WAIT_SECONDS)
        self.reader.join(WAIT_SECONDS)
        assert self.process.stderr is not None
        stderr = self.process.stderr.read()
        self.process.stderr.close()
        rest = []
        while (event := self.events.get_nowait()) is not None:
            rest.append(event)
        return returncode, stderr, rest

    def kill_if_running(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT_SECONDS)


def test_the_whole_file_goes_to_stdout_as_jsonl_with_a_summary_on_stderr(tmp_path):
    log = tmp_path / "queue_log"
    log.write_text(text(LINES))
    events, stderr = ingest(log)
    assert events == expected(LINES)
    assert "14 lines, 16 events" in stderr
    assert "unknown, skipped 1 (OUTDIAL 1)" in stderr
    assert "system 1 (QUEUESTART 1)" in stderr
    assert not (tmp_path / "queue_log.pos").exists()


def test_queue_map_and_tenant_reach_every_event(tmp_path):
    log = tmp_path / "queue_log"
    log.write_text(text(LINES))
    events, _ = ingest(log, "--queue-map", "sales=Sales Line", "--tenant", "acme")
    assert {e["queue"] for e in events if "queue" in e} == {"Sales Line"}
    assert {q for e in events for q in e.get("queues", [])} == {"Sales Line"}
    assert {e["tenant"] for e in events} == {"acme"}


def test_transfer_queue_turns_a_transfer_into_a_hand_off(tmp_path):
    log = tmp_path / "queue_log"
    log.write_text(text(LINES))
    events, stderr = ingest(log, "--transfer-queue", "3001@from-internal=support", "--queue-map", "support=Support")
    (transfer,) = [e for e in events if e["type"] == "call.completed" and e["call_id"] == "c4"]
    assert transfer["to_queue"] == "Support"
    assert "transfers to a queue (hand-offs) 1" in stderr


def test_follow_across_rotations_and_restarts_sends_every_line_once(tmp_path):
    log = tmp_path / "queue_log"
    position = tmp_path / "queue_log.pos"
    sent: list[dict] = []

    # 1. A first run reads what is there and saves its position beside the log.
    log.write_text(text(LINES[:3]))
    sent += (run := follow_once(log))
    assert run == expected(LINES[:3])
    assert position.exists()

    # 2. While it is down, the log grows and is rotated: the next run finishes the rotated file.
    append(log, LINES[3:5])
    rotate(log)
    log.write_text(text(LINES[5:7]))
    sent += (run := follow_once(log))
    assert run == expected(LINES[3:7])

    # 3. Nothing new: nothing is sent again.
    assert follow_once(log) == []

    # 4. A live follower sees lines as they are written, across a rotation, and stops on SIGTERM.
    live = LiveFollower(log)
    try:
        append(log, LINES[7:9])
        sent += live.take(len(expected(LINES[7:9])))
        with open(log, "a") as writer:
            rotate(log)
            writer.write(text(LINES[9:10]))  # written before the PBX reopened its log
        log.write_text(text(LINES[10:12]))
        sent += live.take(len(expected(LINES[9:12])))
        returncode, stderr, rest = live.stop()
    finally:
        live.kill_if_running()
    assert returncode == 0 and rest == []
    assert "was rotated" in stderr

    # 5. After the restart only what came later is sent.
    append(log, LINES[12:])
    sent += follow_once(log)

    assert sent == expected(LINES)


def test_a_killed_follower_sends_again_only_lines_with_the_same_event_ids(tmp_path):
    log = tmp_path / "queue_log"
    log.write_text(text(LINES[:7]))
    live = LiveFollower(log)
    try:
        before = live.take(len(expected(LINES[:7])))
        returncode, _, rest = live.stop(signal.SIGKILL)
    finally:
        live.kill_if_running()
    assert returncode == -signal.SIGKILL
    before += rest
    append(log, LINES[7:])
    after = follow_once(log)
    # Whatever the kill left unsaved comes again with its ids, and the pipeline drops it; the
    # rest of the file arrives exactly once.
    resent = [event for event in after if event in before]
    assert after[len(resent) :] == expected(LINES)[len(before) :]
    assert resent == before[len(before) - len(resent) :]


def test_a_position_file_without_follow_reads_only_what_is_new(tmp_path):
    log = tmp_path / "queue_log"
    position = tmp_path / "state" / "asterisk.pos"
    position.parent.mkdir()
    log.write_text(text(LINES[:5]) + LINES[5])  # the last line is still being written
    first, _ = ingest(log, "--position-file", position)
    assert first == expected(LINES[:5])
    append(log, ["", *LINES[6:]])
    second, _ = ingest(log, "--position-file", position)
    assert second == expected(LINES[5:])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing_queue_log"], "is not a file"),
        (["{log}", "--queue-map", "sales"], "expected ASTERISK_QUEUE=QUEUE"),
        (["{log}", "--transfer-queue", "600"], "expected EXTEN[@CONTEXT]=ASTERISK_QUEUE"),
        (["{log}", "--follow", "--exit-after-idle", "-1"], "--exit-after-idle must be zero or more"),
        (["{log}", "--position-file", "{broken}"], "delete it to read the log from its start"),
    ],
)
def test_bad_input_gets_a_clear_message(tmp_path, args, message):
    log = tmp_path / "queue_log"
    log.write_text(text(LINES))
    broken = tmp_path / "broken.pos"
    broken.write_text("{")
    argv = [arg.format(log=log, broken=broken) for arg in args]
    done = subprocess.run(
        [*INGEST, *argv], capture_output=True, text=True, timeout=WAIT_SECONDS, cwd=tmp_path, check=False
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def test_help_works_for_ingest_and_its_source():
    for argv in (["ingest", "--help"], ["ingest", "asterisk", "--help"]):
        done = subprocess.run(
            [sys.executable, "-m", "streamer.cli", *argv],
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS,
            check=False,
        )
        assert done.returncode == 0
        assert "asterisk" in done.stdout
    assert "--follow" in done.stdout and "--position-file" in done.stdout and "--queue-map" in done.stdout
