"""Read a line-oriented log file once or follow it like `tail -F`, across rotations and restarts.

The reader hands out complete lines in batches, each with the position just after its last line.
The caller delivers a batch, then saves that position (a `PositionFile`), so a restart resumes after
the last delivered line: at-least-once, and an adapter with stable event ids makes the replayed
tail of a crash harmless.

Rotation: when the path names a new file (another inode), the old file is read to its end and then
the new one from its start. When the file shrinks under the read offset (copytruncate) it is read
again from its start. After a restart, a saved position whose file was rotated meanwhile is found
again among the siblings of the path (`queue_log.1`, `queue_log-20240101`, …) by inode and by a
fingerprint of its first bytes, which also tells a new file that reuses an old inode apart.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FINGERPRINT_BYTES = 1024
READ_CHUNK_BYTES = 1 << 18
# A "line" this long without a newline is not a log line; hand it on rather than buffer forever.
MAX_LINE_BYTES = 1 << 20
POSITION_FORMAT_VERSION = 1


@dataclass(frozen=True)
class FilePosition:
    inode: int
    offset: int
    fingerprint: str
    fingerprint_size: int


@dataclass(frozen=True)
class LineBatch:
    """Complete lines (without their newline) and where reading resumes after them. An empty batch
    means the reader has caught up (or moved to a new file): a good moment to save the position."""

    lines: list[bytes]
    position: FilePosition


class PositionFileError(ValueError):
    """The position file exists but cannot be used."""


class PositionFile:
    """A read position plus the adapter's own small state, replaced atomically (temp file, fsync,
    rename, fsync of the directory) so a crash leaves either the old or the new one."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> tuple[FilePosition | None, dict[str, Any]]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None, {}
        try:
            saved = json.loads(text)
            position = FilePosition(
                inode=int(saved["inode"]),
                offset=int(saved["offset"]),
                fingerprint=str(saved["fingerprint"]),
                fingerprint_size=int(saved["fingerprint_size"]),
            )
            state = saved.get("state", {})
            if not isinstance(state, dict) or position.offset < 0 or position.fingerprint_size < 0:
                raise ValueError("negative offset or a state that is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise PositionFileError(
                f"position file {self.path} is not a valid position ({exc}); delete it to read the log "
                "from its start (already sent lines are then sent again and dropped as duplicates)"
            ) from exc
        return position, state

    def save(self, position: FilePosition, state: Mapping[str, Any]) -> None:
        payload = {"version": POSITION_FORMAT_VERSION, **asdict(position), "state": dict(state)}
        temp = self.path.with_name(self.path.name + ".tmp")
        with open(temp, "w") as out:
            json.dump(payload, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _fingerprint(fd: int, size: int) -> str:
    return hashlib.blake2b(os.pread(fd, size, 0), digest_size=16).hexdigest()


class _OpenFile:
    """One open file being read: bytes read so far, and the incomplete last line held back."""

    def __init__(self, path: Path, fd: int, offset: int) -> None:
        self.path = path
        self.fd = fd
        self.inode = os.fstat(fd).st_ino
        self.read_offset = offset
        self.pending = b""
        self._fingerprint_size = 0
        self._fingerprint = _fingerprint(fd, 0)

    @property
    def line_offset(self) -> int:
        return self.read_offset - len(self.pending)

    def position(self) -> FilePosition:
        wanted = min(FINGERPRINT_BYTES, self.line_offset)
        if wanted > self._fingerprint_size:
            self._fingerprint_size = wanted
            self._fingerprint = _fingerprint(self.fd, wanted)
        return FilePosition(self.inode, self.line_offset, self._fingerprint, self._fingerprint_size)

    def read_lines(self) -> list[bytes]:
        data = os.pread(self.fd, READ_CHUNK_BYTES, self.read_offset)
        if not data:
            return []
        self.read_offset += len(data)
        buffer = self.pending + data
        end = buffer.rfind(b"\n")
        if end < 0:
            if len(buffer) < MAX_LINE_BYTES:
                self.pending = buffer
                return []
            self.pending = b""
            return [buffer]
        self.pending = buffer[end + 1 :]
        return buffer[:end].split(b"\n")

    def take_unterminated_tail(self) -> list[bytes]:
        """The last line of a file nobody writes to any more, which lacks its newline."""
        tail, self.pending = self.pending, b""
        return [tail] if tail else []

    def rewind(self) -> None:
        self.read_offset = 0
        self.pending = b""
        self._fingerprint_size = 0

    def close(self) -> None:
        os.close(self.fd)


def _open(path: Path, offset: int) -> _OpenFile | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    return _OpenFile(path, fd, offset)


def _matches(path: Path, position: FilePosition) -> bool:
    """Is the file at `path` the one the position was taken in (same inode, same first bytes)?"""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        stat = os.fstat(fd)
        return (
            stat.st_ino == position.inode
            and stat.st_size >= position.fingerprint_size
            and _fingerprint(fd, position.fingerprint_size) == position.fingerprint
        )
    finally:
        os.close(fd)


class FileFollower:
    """Yields `LineBatch`es from `path`. Without `follow` it stops at the end of the file; with it,
    it waits for more lines and follows rotations until `stop` is set or nothing new has arrived
    for `exit_after_idle` seconds."""

    def __init__(
        self,
        path: Path,
        *,
        start: FilePosition | None = None,
        follow: bool = False,
        read_unterminated_tail: bool = True,
        poll_interval: float = 0.2,
        exit_after_idle: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.path = path
        self.start = start
        self.follow = follow
        # A file that may still grow (followed, or read again later from a saved position) is
        # only read up to its last newline: the rest may be a line being written.
        self.read_unterminated_tail = read_unterminated_tail and not follow
        self.poll_interval = poll_interval
        self.exit_after_idle = exit_after_idle
        self.stop = stop or threading.Event()
        self.notices: list[str] = []

    def batches(self) -> Iterator[LineBatch]:
        files = self._open_at_start()
        idle_since = time.monotonic()
        caught_up = False
        try:
            while not self.stop.is_set():
                current = files[0] if files else None
                if current is None:
                    opened = _open(self.path, 0)
                    if opened is not None:
                        files.append(opened)
                        continue
                else:
                    lines = current.read_lines()
                    if lines:
                        idle_since, caught_up = time.monotonic(), False
                        yield LineBatch(lines, current.position())
                        continue
                    if len(files) > 1:
                        # A rotated file read to its end: nobody writes to it any more.
                        tail = current.take_unterminated_tail()
                        finished_at = current.position()
                        files.popleft().close()
                        if tail:
                            yield LineBatch(tail, finished_at)
                        yield LineBatch([], files[0].position())
                        continue
                    if not self.follow:
                        if self.read_unterminated_tail:
                            tail = current.take_unterminated_tail()
                            if tail:
                                yield LineBatch(tail, current.position())
                        yield LineBatch([], current.position())
                        return
                    if self._rotated_or_truncated(current, files):
                        continue
                    if not caught_up:
                        caught_up = True
                        yield LineBatch([], current.position())
                idle_for = time.monotonic() - idle_since
                if self.exit_after_idle is not None and idle_for >= self.exit_after_idle:
                    return
                self.stop.wait(self.poll_interval)
        finally:
            for open_file in files:
                open_file.close()

    def _open_at_start(self) -> deque[_OpenFile]:
        files: deque[_OpenFile] = deque()
        start = self.start
        if start is not None and _matches(self.path, start):
            current = _open(self.path, start.offset)
        else:
            if start is not None:
                files.extend(self._resume_in_rotated_file(start))
            current = _open(self.path, 0)
        if current is not None:
            if current.read_offset > os.fstat(current.fd).st_size:
                self.notices.append(
                    f"{self.path} is shorter than the saved position (byte {current.read_offset}): "
                    "it was truncated, reading it from its start"
                )
                current.rewind()
            files.append(current)
        elif not self.follow and not files:
            raise FileNotFoundError(f"{self.path} does not exist: give the path of an Asterisk queue_log file")
        return files

    def _resume_in_rotated_file(self, start: FilePosition) -> list[_OpenFile]:
        for sibling in sorted(self.path.parent.glob(self.path.name + "?*")):
            if sibling.is_file() and _matches(sibling, start):
                self.notices.append(
                    f"{self.path} was rotated since the saved position: finishing {sibling} "
                    f"from byte {start.offset} first"
                )
                rotated = _open(sibling, start.offset)
                return [rotated] if rotated is not None else []
        self.notices.append(
            f"the file of the saved position (inode {start.inode}, byte {start.offset}) is no longer "
            f"beside {self.path}: lines written to it after that byte were not read; reading "
            f"{self.path} from its start"
        )
        return []

    def _rotated_or_truncated(self, current: _OpenFile, files: deque[_OpenFile]) -> bool:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            # Renamed away and not created again yet: keep reading the old file meanwhile.
            return False
        if stat.st_ino != current.inode:
            replacement = _open(self.path, 0)
            if replacement is None:
                return False
            self.notices.append(f"{self.path} was rotated: finishing the old file, then reading the new one")
            files.append(replacement)
            return True
        if stat.st_size < current.read_offset:
            self.notices.append(f"{self.path} was truncated: reading it again from its start")
            current.rewind()
            return True
        return False
