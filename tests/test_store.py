"""Atomic result records: a killed write leaves no record, and the trial's next claimant cleans up."""

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
    store = ResultStore(tmp_path)  # opening removes nothing: the temporary file might be a live writer's
    assert store.completed_ids() == set() and list(tmp_path.rglob(".tmp-abc.*"))
    assert store.sweep(store.trial_path("d", "p", "m", "abc")) == 1  # the trial's next claimant removes it
    assert not list(tmp_path.rglob(".tmp-*"))


def test_unwritable_results_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(BenchError, match="cannot be written"):
        ResultStore(blocker / "results")


def test_a_truncated_vectors_file_is_not_a_finished_trial(tmp_path):
    from benchmark.cli import main
    from conftest import write_grouplens

    data = write_grouplens(tmp_path / "ml-100k")
    cmd = ["run", "--method", "popular", "--protocol", "loo", "--dataset", "ml-100k", "--data-dir", str(data),
           "--allow-unverified", "--seeds", "1", "--results", str(tmp_path / "r"), "--no-progress"]
    assert main(cmd) == 0
    (npz,) = (tmp_path / "r").rglob("*.npz")
    whole = npz.read_bytes()
    npz.write_bytes(whole[: len(whole) // 2])
    assert main(cmd) == 0  # the trial is redone, not counted as stored
    with np.load(npz) as vectors:
        assert len(vectors.files) > 3
    store = ResultStore(tmp_path / "r")
    npz.write_bytes(whole[: len(whole) // 2])
    assert not store.is_complete(npz.with_suffix(".json"))
    with pytest.raises(BenchError, match="unreadable per-event vectors"):
        store.vectors(npz.with_suffix(".json"))


@pytest.mark.parametrize("text", ["{}", "[1, 2]", '{"trial_id": "x", "status": "ok", "dataset": {"name": "d"}, '
                                  '"protocol": {"name": "p"}, "method": {"name": "m"}}', "{not json"])
def test_a_malformed_record_is_named_and_skipped(tmp_path, capsys, text):
    store = ResultStore(tmp_path)
    store.write(RECORD, None)
    bad = tmp_path / "d" / "p" / "m" / "bad.json"
    bad.write_text(text)
    assert [rec["trial_id"] for _, rec in store.records()] == ["abc"]
    assert f"skipping result record {bad}" in capsys.readouterr().err
    assert not store.is_complete(bad)


def test_readers_do_not_create_a_mistyped_results_folder(tmp_path):
    with pytest.raises(BenchError, match="does not exist"):
        ResultStore(tmp_path / "typo", create=False)
    assert not (tmp_path / "typo").exists()


def test_a_full_disk_is_a_clear_error_that_leaves_nothing(tmp_path, monkeypatch):
    import errno

    import benchmark.files as F

    store = ResultStore(tmp_path)
    real = F.os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(F.os, "fsync", full)
    with pytest.raises(BenchError, match="cannot store the trial \\(No space left on device\\)"):
        store.write(RECORD, {"test.s": np.arange(3)})
    monkeypatch.setattr(F.os, "fsync", real)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
