"""Several processes on one results folder: claims share the plan, readers never break a writer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmark.store import ResultStore
from conftest import write_grouplens

SLOW_METHOD = '''
import os, time, torch
from benchmark.method import Method

class Slow(Method):
    """Random scores after a pause, logging each fit so a test can count how often a trial was computed."""
    name = "slow"
    version = "1"
    protocols = frozenset({"loo"})

    def fit(self, data):
        with open(os.environ["SLOW_LOG"], "a") as fh:
            fh.write(f"{self.ctx.seed} {os.getpid()}\\n")
        time.sleep(float(os.environ.get("SLOW_SECONDS", "1")))
        return {}

    def score(self, batch):
        return torch.rand(batch["cand"].shape, generator=self.ctx.generator)
'''


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SLOW_LOG": str(tmp_path / "fits.log"), "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
def test_two_runs_share_a_plan_while_status_and_report_poll(tmp_path):
    data = write_grouplens(tmp_path / "ml-100k")
    plugin = tmp_path / "slow.py"
    plugin.write_text(SLOW_METHOD)
    results, seeds = tmp_path / "results", 8
    base = [sys.executable, "-m", "benchmark.cli", "run", "--include", str(plugin), "--method", "slow", "--protocol",
            "loo", "--dataset", "ml-100k", "--data-dir", str(data), "--allow-unverified", "--no-progress"]
    env = _env(tmp_path)
    # the split is made (and cached) once first, so both runs start their trials together
    first = subprocess.run(base + ["--seeds", "1", "--results", str(tmp_path / "warm")], env=env, text=True,
                           capture_output=True)
    assert first.returncode == 0, first.stderr
    (tmp_path / "fits.log").unlink()
    cmd = base + ["--seeds", str(seeds), "--results", str(results)]
    runs = [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    polls = []
    while any(r.poll() is None for r in runs):
        for sub in (["status", "--results", str(results)],
                    ["report", "--results", str(results), "--out", str(tmp_path / "rep"), "--format", "md"]):
            if results.is_dir():
                polls.append(subprocess.run([sys.executable, "-m", "benchmark.cli", *sub], env=env, text=True,
                                            capture_output=True))
    errs = [r.stderr.read() for r in runs]
    assert [r.returncode for r in runs] == [0, 0], errs
    fits = (tmp_path / "fits.log").read_text().split()
    seeds_fitted = fits[0::2]
    assert sorted(seeds_fitted, key=int) == [str(s) for s in range(seeds)], f"trials computed twice: {fits}"
    assert len(set(fits[1::2])) == 2, "both runs should have done part of the plan"
    store = ResultStore(results, create=False)
    paths = [p for p, _ in store.records()]
    assert len(paths) == seeds and all(store.is_complete(p) for p in paths)
    assert polls and not [p for p in polls if "Traceback" in p.stderr], [p.stderr for p in polls][:2]


CHILD = r"""
import sys, time
from pathlib import Path
import numpy as np
import benchmark.store as S
from benchmark.store import ResultStore

real = np.savez_compressed
def slow_savez(fh, **arrays):
    fh.write(b"PK partial")
    fh.flush()
    while not Path(sys.argv[2]).exists():  # the parent opens the store meanwhile
        time.sleep(0.02)
    fh.seek(0); fh.truncate()
    real(fh, **arrays)

S.np.savez_compressed = slow_savez
ResultStore(sys.argv[1]).write({"trial_id": "abc", "status": "ok", "dataset": {"name": "d"},
                                "protocol": {"name": "p"}, "method": {"name": "m"}, "metrics": {}},
                               {"x": np.arange(3)})
"""


def test_opening_the_store_never_breaks_a_live_writer(tmp_path):
    go = tmp_path / "go"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "r"), str(go)], env=_env(tmp_path))
    deadline = time.monotonic() + 60
    while not list((tmp_path / "r").rglob(".tmp-*")):
        assert proc.poll() is None and time.monotonic() < deadline, "child never started writing"
        time.sleep(0.02)
    ResultStore(tmp_path / "r")  # what status, report and a second run do
    go.touch()
    assert proc.wait(60) == 0
    store = ResultStore(tmp_path / "r")
    assert store.completed_ids() == {"abc"}
    np.testing.assert_array_equal(store.vectors(tmp_path / "r" / "d" / "p" / "m" / "abc.json")["x"], np.arange(3))


BACKBONE_CHILD = r"""
import sys, time
from pathlib import Path
import torch
from benchmark.fitted import FittedCache
from benchmark.method import Method

class Backbone(Method):
    name = "backbone"
    version = "1"
    def fit(self, data):
        return {}
    def score(self, batch):
        return batch["cand"].float()
    def get_state(self):
        return {"w": self.w}
    def set_state(self, data, state):
        self.w = state["w"]

def fit(inst):
    time.sleep(1.5)  # long enough for the other process to ask for the same backbone meanwhile
    inst.w = torch.ones(2)
    return {"epochs": 1}

inst = Backbone.__new__(Backbone)
_, info = FittedCache(Path(sys.argv[1])).get_or_fit(Backbone, {}, "quick", "split", "d", 0, torch.device("cpu"),
                                                     lambda: (inst, None), fit)
print(info["cache"].split(":")[0], float(inst.w.sum()))
"""


def test_two_processes_wanting_one_backbone_train_it_once(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", BACKBONE_CHILD, str(tmp_path / "fitted")], env=_env(tmp_path),
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == ["disk 2.0", "trained 2.0"], outs  # one trained, the other waited and loaded its copy


def test_processes_proving_one_folder_writable_at_once_do_not_trip_over_each_other(tmp_path):
    """Two Dask workers starting together on one results folder: one failed with 'cannot be written (No such file
    or directory)', because both wrote and removed the same probe file."""
    from concurrent.futures import ThreadPoolExecutor

    from benchmark.files import writable_folder

    def prove(_: int) -> None:
        for _ in range(300):
            writable_folder(tmp_path, "results folder", "-")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(prove, range(8)))  # re-raises the first BenchError
    assert not list(tmp_path.glob(".write-probe*"))
