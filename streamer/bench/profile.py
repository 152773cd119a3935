"""A py-spy profile of a worker while it processes the benchmark stream, and its top costs.

py-spy samples the worker from outside (`--nonblocking`: it never pauses the process), writing
collapsed stacks ("frame;frame;… count"); a function's own share counts the samples where it is the
innermost frame, its total share those where it is anywhere on the stack. Two lists come out: the
largest own shares (where the time goes, whoever's code it is) and the project's own functions by
total share (which of our steps the time is spent under).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SAMPLES_PER_SECOND = 100
# Frames under which every sample of the worker sits: no information in their total share.
_ENTRY_POINTS = ("<module> (streamer/cli.py", "main (streamer/cli.py", "run (streamer/commands/")
_LINE = re.compile(r":\d+\)$")
_SHORT_PATH = re.compile(r"\((?:.*/site-packages/|.*/lib/python3\.\d+/|.*/(?=streamer/))")


class ProfilerMissing(RuntimeError):
    """py-spy is not installed."""


@dataclass(frozen=True)
class Cost:
    function: str  # "name (path)"
    own: float  # share of all samples, innermost frame
    total: float  # share of all samples, anywhere on the stack


def py_spy() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise ProfilerMissing("--profile needs py-spy: pip install py-spy (it samples the worker from outside)")
    return found


class Profiler:
    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [py_spy(), "record", "--pid", str(pid), "--format", "raw", "--output", str(out),
             "--rate", str(SAMPLES_PER_SECOND), "--nonblocking", "--duration", "3600"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def stop(self) -> Profile:
        """Stop sampling (py-spy writes its file on SIGINT) and return the top costs."""
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise RuntimeError("py-spy did not stop within 60 s") from None
        if not self.out.is_file():
            raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace').strip()[-500:]}")
        return Profile.from_collapsed(self.out.read_text())


def _function(frame: str) -> str:
    """`name (module path)`: the line number dropped, the path from the package root on."""
    return _SHORT_PATH.sub("(", _LINE.sub(")", frame))


@dataclass(frozen=True)
class Profile:
    samples: int
    top_own: list[Cost]  # the largest own shares, any code
    project: list[Cost]  # the project's own functions (streamer/), by total share

    @classmethod
    def from_collapsed(cls, collapsed: str, count: int = 15) -> Profile:
        own: Counter[str] = Counter()
        total: Counter[str] = Counter()
        samples = 0
        for line in collapsed.splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack or not n.isdigit():
                continue
            frames = [_function(frame) for frame in stack.split(";")]
            samples += int(n)
            own[frames[-1]] += int(n)
            for function in set(frames):
                total[function] += int(n)
        if not samples:
            return cls(0, [], [])

        def cost(function: str) -> Cost:
            return Cost(function, own[function] / samples, total[function] / samples)

        project = [f for f, _ in total.most_common() if "(streamer/" in f and not f.startswith(_ENTRY_POINTS)]
        return cls(samples, [cost(f) for f, _ in own.most_common(count)], [cost(f) for f in project[:count]])
