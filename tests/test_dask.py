"""``run --executor dask``: a local Dask cluster of 2 workers gives a serial run's records, trial id by trial id; a
worker killed mid-trial loses only that trial, which another worker redoes; a worker that cannot serve the plan
stops the run with a one-line error before any trial."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from benchmark.dask_executor import _check_worker
from benchmark.identity import harness_hash
from benchmark.registry import get_method, identity_version
from benchmark.store import ResultStore
from conftest import ROOT, run_cli, stored_metrics as _metrics, write_grouplens

pytest.importorskip("distributed", reason="Dask distributed is the `dask` extra (in `test` too)")


# Kills the worker process running seed 1 the first time only (a marker file says it happened): the scheduler
# must hand the trial to a worker again, and the plan must finish with every seed stored.
ONCE = '''
import os, signal, torch
from pathlib import Path
from benchmark.method import Method

class KillOnce(Method):
    """Dies mid-fit on seed 1 the first time (a worker killed mid-trial); random scores otherwise."""
    name = "kill-once"
    version = "1"
    protocols = frozenset({"loo"})

    def fit(self, data):
        marker = Path(os.environ["KILL_MARKER"])
        if self.ctx.seed == 1 and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return {}

    def score(self, batch):
        return torch.rand(batch["cand"].shape, generator=self.ctx.generator)
'''

ALWAYS = ONCE.replace("KillOnce", "KillAlways").replace('"kill-once"', '"kill-always"').replace(
    " and not marker.exists()", "")


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return run_cli(args, tmp_path, KILL_MARKER=str(tmp_path / "killed"), **env)


def _data_args(tmp_path: Path) -> list[str]:
    data = write_grouplens(tmp_path / "ml-100k")
    return ["--dataset", "ml-100k", "--data-dir", str(data), "--allow-unverified", "--no-progress"]


@pytest.mark.slow  # trains small models on 2 worker processes: the second stage (`pytest -m slow`, .ci/run)
def test_a_local_dask_cluster_gives_the_records_of_a_serial_run(tmp_path):
    base = ["--method", "popular", "bpr-mf", "dssm", "deepmusic", "--protocol", "loo", "cold", "--seeds", "2",
            "--budget", "quick", *_data_args(tmp_path)]
    serial = _run(base + ["--results", str(tmp_path / "serial")], tmp_path)
    assert serial.returncode == 0, serial.stderr
    dask = _run(base + ["--results", str(tmp_path / "dask"), "--executor", "dask", "--jobs", "2"], tmp_path)
    assert dask.returncode == 0, dask.stderr
    assert "on a local Dask cluster of 2 workers" in dask.stderr, dask.stderr
    a, b = _metrics(tmp_path / "serial"), _metrics(tmp_path / "dask")
    assert len(a) == 16 and a.keys() == b.keys()
    assert a == b  # trial id by trial id, every metric of every part and subset


@pytest.mark.slow  # starts a Dask cluster and kills a worker: the second stage
def test_a_worker_killed_mid_trial_loses_only_that_trial_which_another_worker_redoes(tmp_path):
    plugin = tmp_path / "kill_once.py"
    plugin.write_text(ONCE)
    out = _run(["--include", str(plugin), "--method", "kill-once", "--protocol", "loo", "--seeds", "4",
                *_data_args(tmp_path), "--executor", "dask", "--jobs", "2", "--results", str(tmp_path / "r")],
               tmp_path)
    assert (tmp_path / "killed").exists(), "the plugin never killed its worker: the test tested nothing"
    assert out.returncode == 0, out.stderr
    assert "done: 4 ok, 0 failed" in out.stderr, out.stderr
    stored = sorted(rec["seed"] for _, rec in ResultStore(tmp_path / "r", create=False).records())
    assert stored == [0, 1, 2, 3]


@pytest.mark.slow  # starts a Dask cluster whose workers keep dying: the second stage
def test_a_trial_that_kills_every_worker_is_reported_failed_and_the_plan_finishes(tmp_path):
    plugin = tmp_path / "kill_always.py"
    plugin.write_text(ALWAYS)
    out = _run(["--include", str(plugin), "--method", "kill-always", "--protocol", "loo", "--seeds", "3",
                *_data_args(tmp_path), "--executor", "dask", "--jobs", "2", "--results", str(tmp_path / "r")],
               tmp_path, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1")
    assert out.returncode == 1, out.stderr
    assert "FAILED kill-always ml-100k/loo seed=1: every worker that ran it died" in out.stderr, out.stderr
    assert "done: 2 ok, 1 failed" in out.stderr, out.stderr
    stored = sorted(rec["seed"] for _, rec in ResultStore(tmp_path / "r", create=False).records())
    assert stored == [0, 2]  # nothing half-written for seed 1


def test_a_worker_that_cannot_see_the_results_folder_or_runs_other_code_is_named(tmp_path):
    probe = tmp_path / "results" / ".executor-probe"
    probe.parent.mkdir()
    probe.write_text("token")
    versions = {"bpr-mf": identity_version(get_method("bpr-mf"))}
    assert _check_worker(str(probe), "token", harness_hash(), versions, []) == ""
    assert "cannot see the results folder" in _check_worker(str(tmp_path / "elsewhere" / ".executor-probe"), "token",
                                                            harness_hash(), versions, [])
    assert "other harness code" in _check_worker(str(probe), "token", "0" * 16, versions, [])
    assert "has method bpr-mf version" in _check_worker(str(probe), "token", harness_hash(), {"bpr-mf": "0"}, [])
    assert "cannot see the data folder" in _check_worker(str(probe), "token", harness_hash(), versions, [],
                                                         (str(tmp_path / "no-data"),))


@pytest.mark.parametrize("args, says", [
    (["--address", "tcp://127.0.0.1:1"], "apply to --executor dask"),
    (["--executor", "dask", "--trials-per-gpu", "0"], "--trials-per-gpu 0"),
    (["--executor", "dask", "--address", "tcp://a:1", "--scheduler-file", "f.json"], "not both"),
    (["--executor", "dask", "--trials-per-gpu", "2", "--device", "cpu"], "this run's device is cpu"),
    (["--executor", "dask", "--trials-per-gpu", "2", "--jobs", "3"], "drop --jobs 3"),  # it would be overridden
])
def test_engine_options_get_a_one_line_error(tmp_path, args, says):
    out = _run(["--method", "popular", "--protocol", "loo", "--seeds", "1", *_data_args(tmp_path),
                "--results", str(tmp_path / "r"), *args], tmp_path)
    assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr, out.stderr


@pytest.mark.slow  # starts two Dask clusters: the second stage
def test_an_existing_cluster_by_address_runs_the_plan_and_refuses_multithreaded_workers(tmp_path, monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setenv("PROMO_BENCH_CACHE", str(tmp_path / "cache"))  # the workers' environment, as the run's
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    args = ["--method", "popular", "random", "--protocol", "loo", "--seeds", "2", *_data_args(tmp_path),
            "--executor", "dask", "--results", str(tmp_path / "r")]
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        out = _run(args + ["--address", cluster.scheduler_address], tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"on the Dask cluster at {cluster.scheduler_address}" in out.stderr and "done: 4 ok" in out.stderr
    with LocalCluster(n_workers=1, threads_per_worker=2, dashboard_address=None) as cluster:
        out = _run(args + ["--address", cluster.scheduler_address, "--force"], tmp_path)
    assert out.returncode == 2 and "has 2 threads; trials need one each" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
