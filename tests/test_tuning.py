"""``promo-bench tune`` (issue 19 part 3): validation only, resumable, the same budget per method, and ``run --tuned``
runs what it chose."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("optuna", reason="promo-bench tune needs optuna (pip install -e '.[test]')")

from benchmark.errors import BenchError  # noqa: E402
from benchmark.protocols import loo  # noqa: E402
from benchmark.registry import get_method  # noqa: E402
from benchmark.tuning import TUNE_SEED, tune_method, validation_only  # noqa: E402
from tests.conftest import synthetic  # noqa: E402

PARAMS = loo.resolve_params({"tau": 5, "n_negatives": 20})


@pytest.fixture(scope="module")
def data():
    inter = synthetic(n_users=40, n_items=60, n_rows=1500)
    return inter, loo.build(inter, PARAMS)


def test_no_tuning_path_can_read_a_test_event(data, tmp_path, monkeypatch):
    import benchmark.trial as T
    import benchmark.views as V

    inter, split = data
    assert not any(k.startswith("test/") for k in validation_only(split).arrays)
    touched = []
    real_events = V.SplitViews.events

    def guarded(self, part, audit=False):
        if part == "test":
            touched.append(part)
            raise AssertionError("a tuning trial asked for test events")
        return real_events(self, part, audit)

    monkeypatch.setattr(V.SplitViews, "events", guarded)
    monkeypatch.setattr(T.TrialEnvironment, "fullrank_part", lambda self, part: touched.append(part) or 1 / 0)
    for name in ("dssm", "promo"):  # promo fetches its backbones through ctx.fitted inside the trial
        r = tune_method(get_method(name), split, inter, torch.device("cpu"), "quick", 2, tmp_path)
        assert r.n_failed == 0 and r.n_complete + r.n_pruned == 2 and not touched, (name, r, touched)
    assert TUNE_SEED >= 1000  # never one of the reported seeds 0..N-1


def test_a_study_resumes_and_counts_its_own_trials(data, tmp_path):
    inter, split = data
    cls = get_method("dssm")
    first = tune_method(cls, split, inter, torch.device("cpu"), "quick", 3, tmp_path)
    assert first.n_complete + first.n_pruned + first.n_failed == 3 and (tmp_path / "tuning" / "studies.db").is_file()
    again = tune_method(cls, split, inter, torch.device("cpu"), "quick", 3, tmp_path)
    assert again.study == first.study and again.n_complete == first.n_complete  # nothing rerun
    more = tune_method(cls, split, inter, torch.device("cpu"), "quick", 4, tmp_path)
    assert more.n_complete + more.n_pruned + more.n_failed == 4
    space = cls.search_space
    assert set(more.best_params) <= set(space)
    assert space["lr"].low <= more.best_params["lr"] <= space["lr"].high


def test_run_tuned_takes_the_best_configuration_and_marks_the_row(data, tmp_path, monkeypatch):
    import benchmark.runner as runner

    inter, split = data
    monkeypatch.setattr(runner, "load_dataset", lambda name, data_dir=None, options=None: inter)
    monkeypatch.setattr(runner, "get_split", lambda inter_, protocol, options=None: (split, True))
    with pytest.raises(BenchError, match="run `promo-bench tune --method dssm"):
        runner.plan(["dssm"], ["ml-100k"], ["loo"], 2, "quick", {}, tuned=tmp_path)
    best = tune_method(get_method("dssm"), split, inter, torch.device("cpu"), "quick", 2, tmp_path)
    planned = runner.plan(["dssm"], ["ml-100k"], ["loo"], 2, "quick", {}, tuned=tmp_path)
    spec = planned[0].spec
    assert spec.variant.startswith("tuned=") and all(spec.options[k] == v for k, v in best.best_params.items())
    assert spec.tuning["study"] == best.study and spec.tuning["n_complete"] >= 1
    plain = runner.plan(["dssm"], ["ml-100k"], ["loo"], 2, "quick", {})[0].spec
    assert plain.trial_id != spec.trial_id and not plain.variant
    from benchmark.report.events import EventCache, group_trials, rows_by_table
    from benchmark.report.table import build_table
    from benchmark.store import ResultStore

    store = ResultStore(tmp_path / "results")
    summary = runner.execute(planned + runner.plan(["dssm"], ["ml-100k"], ["loo"], 2, "quick", {}), store,
                             torch.device("cpu"), show_progress=False)
    assert summary.ok == 4
    (rows,) = rows_by_table(group_trials(store)).values()
    table = build_table(rows, EventCache(store), split="test", subset="all", metrics=["hr@10"], reference=None)
    assert any(r.variant.startswith("tuned=") for r in table.rows) and any(not r.variant for r in table.rows)
    assert "Rows marked tuned" in table.caption() and f"{best.n_complete} trials" in table.caption()
    suite_view = build_table(rows, EventCache(store), split="test", subset="all", metrics=["hr@10"], reference=None,
                             plain_only=True, tuned=True)
    assert [r.variant[:6] for r in suite_view.rows] == ["tuned="]  # the tuned row stands in for the default one
    random_plan = runner.plan(["random"], ["ml-100k"], ["loo"], 1, "quick", {}, tuned=tmp_path)
    assert not random_plan[0].spec.variant and not random_plan[0].spec.tuning  # nothing to tune: its default row


def _open_together(results: str, i: int, barrier) -> str:
    """One of several processes that open a new study file at once (what `tune` processes started together do)."""
    import optuna

    from benchmark.tuning import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    barrier.wait()
    try:
        optuna.create_study(study_name=f"s{i}", storage=open_storage(results), load_if_exists=True)
    except Exception as e:  # the failure is the observation: report it to the parent
        return f"{type(e).__name__}: {str(e).splitlines()[0]}"
    return "ok"


def test_tune_processes_started_together_open_one_new_study_file(tmp_path):
    """Two `tune` processes started together on a new results folder: one died with `UNIQUE constraint failed:
    alembic_version` (Optuna creating the SQLite schema twice) before the opening was locked."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    n = 6
    barrier = ctx.Manager().Barrier(n)
    with ctx.Pool(n) as pool:
        outcomes = pool.starmap(_open_together, [(str(tmp_path), i, barrier) for i in range(n)])
    assert outcomes == ["ok"] * n, outcomes


def _tune_shared(results: str, n_trials: int, barrier) -> int:
    torch.set_num_threads(1)
    inter = synthetic(n_users=40, n_items=60, n_rows=1500)
    split = loo.build(inter, PARAMS)
    if barrier is not None:
        barrier.wait()  # both processes find the study empty, as two workers started on one study do
    r = tune_method(get_method("dssm"), split, inter, torch.device("cpu"), "quick", n_trials, results)
    return r.n_complete + r.n_pruned + r.n_failed


def test_processes_sharing_a_study_stop_at_its_budget_and_choose_from_exactly_it(tmp_path):
    """Each process ran its own N trials (2N in the study, so a shared study gave its method a larger budget than a
    method tuned by one process); now they stop at the study's N, and the configuration is chosen from the first N
    finished trials even when a process started one more."""
    import multiprocessing as mp

    import optuna

    from benchmark.tuning import best_options, open_storage

    ctx = mp.get_context("spawn")
    barrier = ctx.Manager().Barrier(2)
    with ctx.Pool(2) as pool:
        counted = pool.starmap(_tune_shared, [(str(tmp_path), 4, barrier)] * 2)
    assert max(counted) == 4 and min(counted) >= 3  # one may stop while the other's last budgeted trial runs
    (summary,) = optuna.get_all_study_summaries(open_storage(tmp_path))
    study = optuna.load_study(study_name=summary.study_name, storage=open_storage(tmp_path))
    finished = [t for t in study.trials if t.state.is_finished()]
    assert 4 <= len(finished) <= 5, len(finished)  # one extra only if both found a slot free at the same instant
    _, info = best_options(tmp_path, summary.study_name)
    assert info["n_trials"] == 4 and info["budget"] == 4
    shared = _points(study)
    # every process built TPESampler(seed=0), so the two drew the same random start-up points (stop 31 measured 15
    # distinct of SASRec's 20): the study's start-up points are now enqueued once and each process pulls its own
    assert len(set(shared)) == len(shared), shared
    single = tmp_path / "single"
    assert _tune_shared(str(single), 4, None) == 4
    (alone,) = optuna.get_all_study_summaries(open_storage(single))
    one = _points(optuna.load_study(study_name=alone.study_name, storage=open_storage(single)))
    assert set(shared[:4]) == set(one), (shared, one)  # the same start-up whatever the number of processes


def _points(study) -> list[tuple]:
    """The parameter sets of a study's counted trials (the first ``budget`` finished ones)."""
    import optuna

    from benchmark.tuning import counted_trials, study_budget

    return [tuple(sorted(t.params.items())) for t in counted_trials(study, optuna, study_budget(study))]


def test_a_killed_process_loses_no_start_up_point(data, tmp_path, monkeypatch):
    """A process killed mid-trial left it RUNNING for ever; with start-up points queued, its point was never tried.
    Now a trial silent past the grace period is failed, its configuration queued again and run by the next process,
    and the failed one is not counted against the budget."""
    import time

    import optuna

    import benchmark.tuning as tuning

    monkeypatch.setattr(tuning, "HEARTBEAT", (1, 2), raising=False)  # so it also runs (and fails) on older code
    inter, split = data
    cls = get_method("dssm")
    first = tune_method(cls, split, inter, torch.device("cpu"), "quick", 1, tmp_path)
    storage = tuning.open_storage(tmp_path)
    study = optuna.load_study(study_name=first.study, storage=storage)
    dead = study.ask()  # a process takes the next queued point and dies: one beat, then silence
    storage.record_heartbeat(dead._trial_id)
    point = tuple(sorted(suggest_dssm(dead, cls).items()))
    time.sleep(3)
    r = tune_method(cls, split, inter, torch.device("cpu"), "quick", tuning.STARTUP, tmp_path)  # queued last
    assert r.n_complete + r.n_pruned == tuning.STARTUP and r.n_failed == 0, r
    assert point in _points(optuna.load_study(study_name=r.study, storage=storage))


def suggest_dssm(trial, cls) -> dict:
    from benchmark.space import suggest

    return suggest(trial, cls.search_space, cls.defaults)


def test_a_study_run_by_one_process_draws_what_the_seed_0_sampler_drew(tmp_path):
    """The 11 studies committed before the start-up queue were each run by one process with TPESampler(seed=0); a
    lone process still draws that sequence, start-up and guided trials alike, so they are what this code produces."""
    import optuna

    from benchmark.space import suggest
    from benchmark.tuning import STARTUP, join_study

    cls = get_method("dssm")

    def objective(trial) -> float:
        p = suggest(trial, cls.search_space, cls.defaults)
        return -abs(p["lr"] - 0.002) - p["l2_emb"] + p["dim"] / 1000

    n = STARTUP + 4
    before = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    before.optimize(objective, n_trials=n)
    now = join_study("s", tmp_path, lambda trial: suggest(trial, cls.search_space, cls.defaults))
    now.optimize(objective, n_trials=n)
    assert [t.params for t in now.trials] == [t.params for t in before.trials]


def test_run_tuned_refuses_a_study_that_has_not_used_its_budget(data, tmp_path, monkeypatch):
    """A killed or still running study holds fewer trials than it was asked for: its best row would have had a
    smaller budget than the other methods', so `run --tuned` stops with the command that finishes it."""
    import optuna

    import benchmark.runner as runner
    from benchmark.tuning import open_storage

    inter, split = data
    monkeypatch.setattr(runner, "load_dataset", lambda name, data_dir=None, options=None: inter)
    monkeypatch.setattr(runner, "get_split", lambda inter_, protocol, options=None: (split, True))
    r = tune_method(get_method("dssm"), split, inter, torch.device("cpu"), "quick", 2, tmp_path)
    assert runner.plan(["dssm"], ["ml-100k"], ["loo"], 1, "quick", {}, tuned=tmp_path)[0].spec.tuning["n_trials"] == 2
    optuna.load_study(study_name=r.study, storage=open_storage(tmp_path)).set_user_attr("budget", 5)
    with pytest.raises(BenchError, match="has 2 of its 5 trials finished; wait for its running trials or finish it "
                       "with `promo-bench tune --method dssm "
                       "--dataset ml-100k --protocol loo --protocol-set loo.n_negatives=20 --protocol-set loo.tau=5 "
                       "--budget quick"):
        runner.plan(["dssm"], ["ml-100k"], ["loo"], 1, "quick", {}, tuned=tmp_path)


def test_a_study_whose_earlier_trial_still_runs_is_not_final(data, tmp_path):
    """Two processes share a study; one starts the last budgeted trial, the other finds the study short by one and
    starts a trial past it, which finishes first. The result was then chosen from a set with that extra trial, and
    from another set once the earlier trial finished: `run --tuned` could take either configuration. Now the study
    counts its first ``budget`` trials in the order they started, and is final only when all of them have
    finished."""
    import optuna

    import benchmark.tuning as tuning

    inter, split = data
    first = tune_method(get_method("dssm"), split, inter, torch.device("cpu"), "quick", 2, tmp_path)
    storage = tuning.open_storage(tmp_path)
    study = optuna.load_study(study_name=first.study, storage=storage)
    study.set_user_attr("budget", 3)
    early = study.ask()  # the last budgeted trial, still running in another process
    storage.record_heartbeat(early._trial_id)
    again = tune_method(get_method("dssm"), split, inter, torch.device("cpu"), "quick", 3, tmp_path)
    started = [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]  # not the queued start-up
    assert len(started) == 3 and again.n_complete + again.n_pruned == 2  # no trial past the budget started
    late = study.ask()  # started past the budget anyway (as one did before this), finished first
    study.tell(late, 0.0)
    assert [t.number for t in tuning.counted_trials(study, optuna, 3)] == [0, 1]
    assert tuning.best_options(tmp_path, first.study)[1]["n_trials"] == 2  # run --tuned refuses: not final yet
    study.tell(early, 1.0)
    params, info = tuning.best_options(tmp_path, first.study)
    assert info["n_trials"] == 3 and info["best_trial"] == early.number and params == early.params
