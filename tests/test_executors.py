"""``run --jobs N``: worker processes give a serial run's records; a dying worker loses only its trial; the plan
states its expected time; records time a trial's own work apart from its backbones'."""

from __future__ import annotations

import json

import pytest
import torch

from benchmark.costs import CostModel
from benchmark.fitted import FittedCache
from benchmark.registry import get_method, identity_version
from benchmark.runner import expected_costs, plan
from benchmark.store import ResultStore
from conftest import run_cli as _run, stored_metrics as _metrics, write_grouplens


KILLER = '''
import os, signal, torch
from benchmark.method import Method

class Killer(Method):
    """Kills its own process in seed 1's fit (a worker dying mid-trial); random scores otherwise."""
    name = "killer"
    version = "1"
    protocols = frozenset({"loo"})

    def fit(self, data):
        if self.ctx.seed == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return {}

    def score(self, batch):
        return torch.rand(batch["cand"].shape, generator=self.ctx.generator)
'''


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
def test_jobs_give_the_records_of_a_serial_run(tmp_path):
    data = write_grouplens(tmp_path / "ml-100k")
    base = ["--method", "popular", "bpr-mf", "dssm", "deepmusic", "--protocol", "loo", "cold", "--seeds", "2",
            "--budget", "quick", "--dataset", "ml-100k", "--data-dir", str(data), "--allow-unverified", "--no-progress"]
    serial = _run(base + ["--results", str(tmp_path / "serial")], tmp_path)
    assert serial.returncode == 0, serial.stderr
    assert "expected time: about" in serial.stderr
    parallel = _run(base + ["--results", str(tmp_path / "jobs"), "--jobs", "2"], tmp_path)
    assert parallel.returncode == 0, parallel.stderr
    assert "in 2 worker processes" in parallel.stderr
    a, b = _metrics(tmp_path / "serial"), _metrics(tmp_path / "jobs")
    assert len(a) == 16 and a.keys() == b.keys()
    assert a == b  # trial id by trial id, every metric of every part and subset


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
def test_a_worker_that_dies_loses_only_its_trial(tmp_path):
    data = write_grouplens(tmp_path / "ml-100k")
    plugin = tmp_path / "killer.py"
    plugin.write_text(KILLER)
    out = _run(["--include", str(plugin), "--method", "killer", "--protocol", "loo", "--seeds", "4", "--dataset",
                "ml-100k", "--data-dir", str(data), "--allow-unverified", "--no-progress", "--jobs", "2",
                "--results", str(tmp_path / "r")], tmp_path)
    assert out.returncode == 1, out.stderr
    assert "FAILED killer ml-100k/loo seed=1: its worker process died" in out.stderr, out.stderr
    assert "done: 3 ok, 1 failed" in out.stderr, out.stderr
    stored = sorted(rec["seed"] for _, rec in ResultStore(tmp_path / "r", create=False).records())
    assert stored == [0, 2, 3]  # the others finished; nothing half-written for seed 1


class _Costs(CostModel):
    def own(self, method, protocol, dataset, budget, n_rows, params=None):  # noqa: D102 - fixed figures
        return {"sasrec": 100.0, "dssm-sasrec": 10.0, "promo": 5.0}[method]


def test_a_backbone_is_charged_once_to_the_first_trial_that_needs_it(tmp_path):
    data = write_grouplens(tmp_path / "ml-100k")
    todo = plan(["promo", "dssm-sasrec", "sasrec"], ["ml-100k"], ["loo"], 2, "quick", {}, str(data))
    got = expected_costs(todo, _Costs(), FittedCache(tmp_path / "fitted"))
    by = {(p.spec.method, p.spec.seed): got[p.spec.trial_id] for p in todo}
    # promo comes first in the plan and pays for both backbones; their own trials then only evaluate
    assert by[("promo", 0)] == by[("promo", 1)] == 115.0
    assert by[("dssm-sasrec", 0)] == by[("sasrec", 0)] == 1.0


def test_the_plan_states_its_expected_time_from_earlier_records_here(tmp_path):
    data = write_grouplens(tmp_path / "ml-100k")
    args = ["--method", "popular", "--protocol", "loo", "--seeds", "1", "--budget", "quick", "--dataset", "ml-100k",
            "--data-dir", str(data), "--allow-unverified", "--no-progress", "--results", str(tmp_path / "r")]
    first = _run(args, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "1 from a flat guess" in first.stderr or "1 from reference table" in first.stderr, first.stderr
    again = _run(args + ["--force"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "1 from earlier records here" in again.stderr, again.stderr


def test_a_record_times_its_backbones_apart_with_their_origin(tmp_path, monkeypatch):
    data = write_grouplens(tmp_path / "ml-100k")
    monkeypatch.setenv("PROMO_BENCH_CACHE", str(tmp_path / "cache"))
    from benchmark.trial import TrialEnvironment, run_trial

    todo = plan(["deepmusic", "bpr-mf"], ["ml-100k"], ["cold"], 1, "quick", {}, str(data))
    p = todo[0]
    env = TrialEnvironment(p.split, p.inter, torch.device("cpu"))
    records = {q.spec.method: run_trial(q.spec, q.cls, q.split, q.inter, env.device, env=env)[0] for q in todo}
    dm, mf = records["deepmusic"]["timing"], records["bpr-mf"]["timing"]
    assert [b["name"] for b in dm["backbones"]] == ["bpr-mf"] and dm["backbones"][0]["cache"] == "trained"
    assert dm["backbone_s"] > 0 and dm["fit_s"] + dm["backbone_s"] <= dm["total_s"] + 1e-6
    assert mf["cache"] == "memory" and mf["backbones"] == []  # its own trial did not train it again
    assert dm["valid_s"] > 0 and dm["test_eval_s"] > 0


def test_a_backbone_version_joins_its_dependents_trial_ids(monkeypatch):
    promo, sasrec = get_method("promo"), get_method("sasrec")
    before = identity_version(promo)
    assert before.startswith(f"{promo.version}+dssm-sasrec:") and f"sasrec:{sasrec.version}" in before
    monkeypatch.setattr(sasrec, "version", sasrec.version + "x")
    assert identity_version(promo) != before  # a changed sasrec reruns promo


UNDECLARED = '''
import torch
from benchmark.method import Method

class Sneaky(Method):
    """Fetches a backbone without naming it in `uses`."""
    name = "sneaky"
    version = "1"
    protocols = frozenset({"loo"})

    def fit(self, data):
        self.ctx.fitted("bpr-mf", {})
        return {}

    def score(self, batch):
        return torch.zeros(batch["cand"].shape)
'''


def test_a_backbone_not_named_in_uses_is_refused(tmp_path):
    data = write_grouplens(tmp_path / "ml-100k")
    plugin = tmp_path / "sneaky.py"
    plugin.write_text(UNDECLARED)
    out = _run(["--include", str(plugin), "--method", "sneaky", "--protocol", "loo", "--seeds", "1", "--dataset",
                "ml-100k", "--data-dir", str(data), "--allow-unverified", "--no-progress", "--results",
                str(tmp_path / "r")], tmp_path)
    assert out.returncode == 1
    (rec,) = [rec for _, rec in ResultStore(tmp_path / "r", create=False).records()]
    assert rec["status"] == "failed" and "`uses`" in rec["error"], rec.get("error")
    json.dumps(rec)


@pytest.mark.parametrize("jobs", ["0", "-1"])
def test_jobs_must_be_positive(tmp_path, jobs):
    out = _run(["--method", "popular", "--jobs", jobs], tmp_path)
    assert out.returncode == 2 and f"--jobs {jobs}" in out.stderr and "Traceback" not in out.stderr


def test_a_matched_budget_is_estimated_from_its_schedules_records():
    """A first paper-d32 run has no records of its own; the paper schedule's records stand in (not a flat guess)."""
    costs = CostModel(measured={("sasrec", "loo", "ml-100k", "paper"): [40.0, 60.0]})
    assert costs.own("sasrec", "loo", "ml-100k", "paper-d32", 100_000) == 50.0
    assert costs.sources == {"earlier records here": 1}
    costs.measured[("sasrec", "loo", "ml-100k", "paper-d32")] = [90.0]
    assert costs.own("sasrec", "loo", "ml-100k", "paper-d32", 100_000) == 90.0


def test_worker_processes_on_several_gpus_take_them_round_robin(monkeypatch):
    """The GPU path, on CPU: with 3 GPUs, workers 0..3 take cuda:0, 1, 2, 0; one GPU or a CPU device is kept."""
    import multiprocessing

    from benchmark.executors import gpu_for_slot

    slots = multiprocessing.get_context("spawn").Value("i", 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert [gpu_for_slot("cuda", slots) for _ in range(4)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:0"]
    assert gpu_for_slot("cpu", slots) == "cpu" and gpu_for_slot("cuda:1", slots) == "cuda:1"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert gpu_for_slot("cuda", slots) == "cuda"


def _record(method: str, total: float, backbones: list[dict], cache: str | None = None) -> dict:
    timing = {"total_s": total, "backbone_s": sum(b["s"] for b in backbones), "backbones": backbones}
    if cache:
        timing["cache"] = cache
    return {"status": "ok", "timing": timing, "method": {"name": method, "budget": "paper"},
            "protocol": {"name": "loo"}, "dataset": {"name": "ml-100k"}, "env": {}}


def test_a_backbone_costs_its_fitting_not_its_served_trial():
    """The first run --all's reference table said sasrec/loo 0.09 s: sasrec was fitted inside cb2cf's trials (101 s)
    and its own trials only evaluated the cached model, so every plan charged 0.09 s for a 100 s backbone."""
    records = [_record("cb2cf", 109.8, [{"name": "sasrec", "s": 101.3, "cache": "trained"}]),
               _record("sasrec", 0.08, [], cache="memory"),
               _record("cb2cf", 10.0, [{"name": "sasrec", "s": 0.0, "cache": "disk"}])]
    from benchmark.costs import this_machine

    cpu, cores, device = this_machine(torch.device("cpu"))
    for r in records:
        r["env"] = {"cpu": cpu, "cpu_count": cores, "device": device}
    costs = CostModel.load(records, torch.device("cpu"))
    assert costs.own("sasrec", "loo", "ml-100k", "paper", 100_000) == pytest.approx(102.3)  # fit + evaluation
    assert costs.own("cb2cf", "loo", "ml-100k", "paper", 100_000) == pytest.approx((8.5 + 10.0) / 2)


def test_a_trial_rerun_after_its_reply_was_lost_counts_as_this_runs_not_another_process(tmp_path):
    """Dask recomputes a finished task whose result sat on a worker that then died; the rerun finds the record
    this run wrote. It is this run's ok trial, not 'run by another process' (CI saw `done: 1 ok, 1 failed, ...,
    1 run by another process` for a plan whose two good trials both ran here)."""
    from benchmark.executors import TrialRunner

    data = write_grouplens(tmp_path / "ml-100k")
    (p,) = plan(["popular"], ["ml-100k"], ["loo"], 1, "quick", {}, str(data))
    quiet = lambda it, desc: iter(it)  # noqa: E731 - no progress bar
    runner = TrialRunner(tmp_path / "r", torch.device("cpu"), False, False, quiet, run_id="run-a")
    first = runner.run(p, wait_for_claim=False)
    assert first.status == "ok"
    again = TrialRunner(tmp_path / "r", torch.device("cpu"), False, False, quiet, run_id="run-a").run(p, False)
    assert (again.status, again.message) == ("ok", first.message)  # a fresh worker of the same run
    other = TrialRunner(tmp_path / "r", torch.device("cpu"), False, False, quiet, run_id="run-b").run(p, False)
    assert other.status == "elsewhere"  # another `promo-bench run` on the same folder stored it


def test_a_regime_is_costed_from_its_own_records():
    """`run --suite paper-matched` (loo, train_negatives=1) said 'about 21 min' from the released regime's records
    and reference table; the sampled regime trains the sequential family 5-10x longer. Records of one regime must
    not estimate another, and an estimate from the defaults' reference table says so."""
    from benchmark.costs import regime, this_machine

    cpu, cores, device = this_machine(torch.device("cpu"))
    released = _record("sasrec", 100.0, [])
    sampled = _record("sasrec", 700.0, [])
    sampled["protocol"]["params"] = {"tau": 50, "train_negatives": 1}
    for r in (released, sampled):
        r["env"] = {"cpu": cpu, "cpu_count": cores, "device": device}
    costs = CostModel.load([released, sampled], torch.device("cpu"))
    assert regime("loo", {"tau": 50, "train_negatives": 0}) == "loo"
    assert costs.own("sasrec", "loo", "ml-100k", "paper", 100_000, {"train_negatives": 0}) == 100.0
    assert costs.own("sasrec", "loo", "ml-100k", "paper", 100_000, {"train_negatives": 1}) == 700.0
    fresh = CostModel(reference={"costs": {"sasrec/loo": 100.0}})
    assert fresh.own("sasrec", "loo", "ml-100k", "paper", 100_000, {"train_negatives": 1}) == 100.0
    assert "not loo[train_negatives=1]" in fresh.describe()
