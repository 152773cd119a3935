"""A kill switch for the fault tests, loaded by Python at start-up when this folder is on PYTHONPATH.

With STREAMER_TEST_KILL_AT_WRITE=N, the process sends itself SIGKILL once its N-th table row has been
written (to the changelog and the local store) and before the rest of that batch's rows are: a crash
in the middle of a batch's writes, the point where rows, facts and the partition's progress row
disagree. Without the variable nothing is loaded.
"""

import os

_KILL_AT = int(os.environ.get("STREAMER_TEST_KILL_AT_WRITE") or 0)

if _KILL_AT > 0:
    import signal

    from streamer.app.bulk import PartitionedTable

    _written = 0
    _write = PartitionedTable.write

    async def _counting(self, partition, changes):
        global _written
        if _written + len(changes) >= _KILL_AT:
            await _write(self, partition, dict(list(changes.items())[: _KILL_AT - _written]))
            os.kill(os.getpid(), signal.SIGKILL)
        _written += len(changes)
        return await _write(self, partition, changes)

    PartitionedTable.write = _counting
