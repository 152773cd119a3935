"""A kill switch for the fault tests, loaded by Python at start-up when this folder is on PYTHONPATH.

With STREAMER_TEST_KILL_AT_WRITE=N, the process sends itself SIGKILL at its N-th table write, right
after the write reached the local store and before its changelog record is sent: a crash in the
middle of a batch's writes, the point where a store and its changelog, facts and state, disagree.
Without the variable nothing is loaded.
"""

import os

_KILL_AT = int(os.environ.get("STREAMER_TEST_KILL_AT_WRITE") or 0)

if _KILL_AT > 0:
    import signal

    from faust.tables.table import Table

    _writes = 0

    def _counting(write):
        def counted(self, *args, **kwargs):
            global _writes
            _writes += 1
            if _writes == _KILL_AT:
                os.kill(os.getpid(), signal.SIGKILL)
            return write(self, *args, **kwargs)

        return counted

    Table.on_key_set = _counting(Table.on_key_set)
    Table.on_key_del = _counting(Table.on_key_del)
