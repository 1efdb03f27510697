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
