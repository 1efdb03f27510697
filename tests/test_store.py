"""Atomic result records: a killed write leaves no record, and the next open cleans up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from benchmark.errors import BenchError
from benchmark.store import ResultStore

RECORD = {"trial_id": "abc", "status": "ok", "dataset": {"name": "d"}, "protocol": {"name": "p"},
          "method": {"name": "m"}, "metrics": {}}


def test_write_and_read_back(tmp_path):
    store = ResultStore(tmp_path)
    path = store.write(RECORD, {"test.s": np.arange(3)})
    assert path == tmp_path / "d" / "p" / "m" / "abc.json"
    rec = json.loads(path.read_text())
    assert rec["vectors"] == "abc.npz" and rec["schema_version"] == 1
    np.testing.assert_array_equal(store.vectors(path)["test.s"], np.arange(3))
    assert store.completed_ids() == {"abc"}


def test_an_error_during_the_write_leaves_nothing(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith(".json"):
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt):
        store.write(RECORD, {"test.s": np.arange(3)})
    assert not list(tmp_path.rglob("*.json")) and not list(tmp_path.rglob(".tmp-*"))
    assert store.completed_ids() == set()


CHILD = r"""
import sys, time
import numpy as np
import benchmark.store as S
from benchmark.store import ResultStore

def slow_savez(fh, **arrays):
    fh.write(b"PK partial bytes")
    fh.flush()
    time.sleep(60)

S.np.savez_compressed = slow_savez
ResultStore(sys.argv[1]).write({"trial_id": "abc", "status": "ok", "dataset": {"name": "d"},
                                "protocol": {"name": "p"}, "method": {"name": "m"}}, {"x": np.arange(3)})
"""


def test_a_killed_process_leaves_no_partial_record(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)])
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.rglob(".tmp-*")):
            assert proc.poll() is None, "child exited early"
            assert time.monotonic() < deadline, "child never started writing"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    finished = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")]
    assert finished == []
    store = ResultStore(tmp_path)  # reopening removes the stale temporary file
    assert not list(tmp_path.rglob(".tmp-*"))
    assert store.completed_ids() == set()


def test_unwritable_results_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(BenchError, match="cannot be written"):
        ResultStore(blocker / "results")
