"""Following a log file: complete lines only, rotation (rename, copytruncate), restarts from a saved
position. The follower runs in a thread and the test waits for what it yields, never for a time."""

from __future__ import annotations

import json
import os
import queue
import threading
from pathlib import Path

import pytest

from streamer.sources.follow import FileFollower, FilePosition, LineBatch, PositionFile, PositionFileError

WAIT_SECONDS = 10
POLL = 0.01


class Running:
    """A follower in a thread; `take(n)` returns its next n lines, or fails after WAIT_SECONDS."""

    def __init__(self, follower: FileFollower) -> None:
        self.follower = follower
        self.batches: queue.Queue[LineBatch | None] = queue.Queue()
        self.error: BaseException | None = None
        self.last_position: FilePosition | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for batch in self.follower.batches():
                self.batches.put(batch)
        except BaseException as exc:  # handed to the test thread
            self.error = exc
        finally:
            self.batches.put(None)

    def take(self, n: int) -> list[bytes]:
        lines: list[bytes] = []
        while len(lines) < n:
            try:
                batch = self.batches.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                raise AssertionError(f"got {lines} after {WAIT_SECONDS} s, waiting for {n} lines") from None
            assert batch is not None, f"the follower ended ({self.error!r}) after {lines}"
            lines.extend(batch.lines)
            self.last_position = batch.position
        assert len(lines) == n, lines
        return lines

    def stop(self) -> None:
        self.follower.stop.set()
        self.thread.join(WAIT_SECONDS)
        assert not self.thread.is_alive()
        assert self.error is None


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "queue_log"


def append(path: Path, text: str) -> None:
    with open(path, "a") as out:
        out.write(text)


def read_all(follower: FileFollower) -> tuple[list[bytes], FilePosition]:
    lines: list[bytes] = []
    position = None
    for batch in follower.batches():
        lines.extend(batch.lines)
        position = batch.position
    assert position is not None
    return lines, position


def test_only_complete_lines_are_handed_out_while_following(log):
    log.write_text("a\nb\npart")
    running = Running(FileFollower(log, follow=True, poll_interval=POLL))
    try:
        assert running.take(2) == [b"a", b"b"]
        assert running.last_position.offset == 4
        append(log, "ial\n")
        assert running.take(1) == [b"partial"]
        assert running.last_position.offset == log.stat().st_size
    finally:
        running.stop()


def test_a_renamed_log_is_read_to_its_end_before_the_new_one(log):
    log.write_text("1\n2\n")
    running = Running(FileFollower(log, follow=True, poll_interval=POLL))
    try:
        assert running.take(2) == [b"1", b"2"]
        with open(log, "a") as writer:
            log.rename(log.with_name("queue_log.1"))
            # The writer has not reopened yet: this line lands in the rotated file.
            writer.write("3\n")
        log.write_text("4\n5\n")
        assert running.take(3) == [b"3", b"4", b"5"]
        append(log, "6\n")
        assert running.take(1) == [b"6"]
        assert running.last_position.inode == log.stat().st_ino
    finally:
        running.stop()
    assert any("rotated" in notice for notice in running.follower.notices)


def test_a_truncated_log_is_read_again_from_its_start(log):
    log.write_text("first\nsecond\nthird\n")
    running = Running(FileFollower(log, follow=True, poll_interval=POLL))
    try:
        assert running.take(3) == [b"first", b"second", b"third"]
        with open(log, "r+") as writer:  # what logrotate's copytruncate does
            writer.truncate(0)
            writer.write("new\n")
        assert running.take(1) == [b"new"]
    finally:
        running.stop()
    assert any("truncated" in notice for notice in running.follower.notices)


def test_a_log_that_does_not_exist_yet_is_waited_for(log):
    running = Running(FileFollower(log, follow=True, poll_interval=POLL))
    try:
        log.write_text("hello\n")
        assert running.take(1) == [b"hello"]
    finally:
        running.stop()


def test_a_follower_says_when_it_has_caught_up(log):
    log.write_text("a\n")
    batches = FileFollower(log, follow=True, poll_interval=POLL, exit_after_idle=0).batches()
    assert next(batches).lines == [b"a"]
    caught_up = next(batches)
    assert caught_up.lines == [] and caught_up.position.offset == 2
    assert next(batches, None) is None


def test_without_follow_the_file_is_read_to_its_last_byte(log):
    log.write_text("a\nb\nno newline")
    lines, position = read_all(FileFollower(log))
    assert lines == [b"a", b"b", b"no newline"]
    assert position.offset == log.stat().st_size
    # Read from a saved position, a file may still grow: its unterminated tail waits for next time.
    lines, position = read_all(FileFollower(log, read_unterminated_tail=False))
    assert lines == [b"a", b"b"] and position.offset == 4


def test_a_missing_file_without_follow_is_a_clear_error(log):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_all(FileFollower(log))


def test_a_restart_resumes_after_the_saved_position(log):
    log.write_text("1\n2\n3\n")
    lines, position = read_all(FileFollower(log, read_unterminated_tail=False))
    assert lines == [b"1", b"2", b"3"]
    append(log, "4\n5\n")
    lines, _ = read_all(FileFollower(log, start=position, read_unterminated_tail=False))
    assert lines == [b"4", b"5"]


def test_a_restart_finishes_a_log_rotated_while_it_was_down(log):
    log.write_text("1\n2\n")
    _, position = read_all(FileFollower(log, read_unterminated_tail=False))
    append(log, "3\n")
    log.rename(log.with_name("queue_log.1"))
    log.write_text("4\n")
    follower = FileFollower(log, start=position, read_unterminated_tail=False)
    lines, position = read_all(follower)
    assert lines == [b"3", b"4"]
    assert position.inode == log.stat().st_ino
    assert any("finishing" in notice and "queue_log.1" in notice for notice in follower.notices)


def test_a_rotated_log_that_is_gone_is_reported_and_the_new_one_read_whole(log):
    log.write_text("1\n2\n")
    _, position = read_all(FileFollower(log, read_unterminated_tail=False))
    log.rename(log.with_name("queue_log.1"))
    log.with_name("queue_log.1").unlink()
    log.write_text("3\n")
    follower = FileFollower(log, start=position, read_unterminated_tail=False)
    assert read_all(follower)[0] == [b"3"]
    assert any("no longer beside" in notice for notice in follower.notices)


def test_another_file_under_the_saved_inode_is_read_from_its_start(log):
    log.write_text("new file\nsame inode\n")
    # A position with this inode but other first bytes: the inode was reused by a new file.
    reused = FilePosition(inode=log.stat().st_ino, offset=9, fingerprint="0" * 32, fingerprint_size=9)
    assert read_all(FileFollower(log, start=reused, read_unterminated_tail=False))[0] == [
        b"new file",
        b"same inode",
    ]


def test_a_log_truncated_while_the_reader_was_down_is_read_from_its_start(log):
    log.write_text("1\n2\n3\n")
    _, position = read_all(FileFollower(log, read_unterminated_tail=False))
    with open(log, "r+") as writer:
        writer.truncate(0)
        writer.write("4\n")
    assert read_all(FileFollower(log, start=position, read_unterminated_tail=False))[0] == [b"4"]


def test_the_position_file_is_replaced_atomically_and_read_back(tmp_path):
    store = PositionFile(tmp_path / "queue_log.pos")
    assert store.load() == (None, {})
    position = FilePosition(inode=12, offset=345, fingerprint="ab" * 16, fingerprint_size=345)
    store.save(position, {"paused_agents": [["1001", "*"]]})
    store.save(position, {"paused_agents": []})
    assert store.load() == (position, {"paused_agents": []})
    assert sorted(os.listdir(tmp_path)) == ["queue_log.pos"]
    assert json.loads((tmp_path / "queue_log.pos").read_text())["version"] == 1


@pytest.mark.parametrize(
    "content", ["{not json", '{"inode": 1}', '{"inode": 1, "offset": -4, "fingerprint": "x", "fingerprint_size": 0}']
)
def test_a_broken_position_file_says_how_to_recover(tmp_path, content):
    path = tmp_path / "queue_log.pos"
    path.write_text(content)
    with pytest.raises(PositionFileError, match="delete it to read the log from its start"):
        PositionFile(path).load()
