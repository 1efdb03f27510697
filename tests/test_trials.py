"""Trial ids, seeding/determinism on CPU, failure capture, and the built-in methods' interface."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from benchmark import budgets
from benchmark.config import resolve_options, variant_label
from benchmark.errors import BenchError
from benchmark.method import Method
from benchmark.protocols import loo
from benchmark.registry import get_method, registry
from benchmark.runner import Planned, execute
from benchmark.store import ResultStore
from benchmark.trial import TrialEnvironment, TrialSpec, run_trial
from tests.conftest import synthetic

PARAMS = loo.resolve_params({"tau": 5, "n_negatives": 20})


@pytest.fixture(scope="module")
def data():
    inter = synthetic(n_users=40, n_items=60, n_rows=1500)
    return inter, loo.build(inter, PARAMS)


def spec_for(name: str, split, seed: int = 0, budget: str = "quick", **opts) -> TrialSpec:
    cls = get_method(name)
    options, changed = resolve_options(name, cls.defaults, budgets.overrides(cls, budget),
                                       {k: str(v) for k, v in opts.items()})
    return TrialSpec(method=name, method_version=cls.version, origin="test", options=options,
                     variant=variant_label(changed), budget=budget, dataset="ml-100k", protocol="loo",
                     split_hash=split.hash, seed=seed, changed=changed)


def test_trial_id_changes_with_every_field(data):
    _, split = data
    base = spec_for("dssm", split)
    ids = {base.trial_id}
    for change in ({"seed": 1}, {"method_version": "99"}, {"split_hash": "x"}, {"dataset": "other"},
                   {"protocol": "cold"}, {"budget": "paper"}, {"options": dict(base.options, lr=0.5)},
                   {"method": "dssm2"}):
        ids.add(replace(base, **change).trial_id)
    assert len(ids) == 9
    assert spec_for("dssm", split).trial_id == base.trial_id


def test_options_variant_and_errors():
    cls = get_method("dssm")
    options, changed = resolve_options("dssm", cls.defaults, {}, {"lr": "0.01", "epochs": "20"})
    assert options["lr"] == 0.01 and changed == {"lr": 0.01}  # epochs=20 is the default: no variant
    assert variant_label(changed) == "lr=0.01"
    with pytest.raises(BenchError, match="unknown option of method 'dssm'"):
        resolve_options("dssm", cls.defaults, {}, {"lrr": "1"})
    with pytest.raises(BenchError, match="expected an integer"):
        resolve_options("dssm", cls.defaults, {}, {"epochs": "many"})


@pytest.mark.parametrize("name", ["random", "popular", "bpr-mf", "dssm"])
def test_same_seed_gives_identical_metrics_on_cpu(data, name):
    inter, split = data
    spec = spec_for(name, split)
    r1, v1 = run_trial(spec, get_method(name), split, inter, torch.device("cpu"))
    r2, v2 = run_trial(spec, get_method(name), split, inter, torch.device("cpu"))
    assert r1["status"] == "ok", r1.get("traceback")
    assert r1["metrics"] == r2["metrics"]
    np.testing.assert_array_equal(v1["test.s"], v2["test.s"])
    for part in ("valid", "test"):
        n = len(split.part(part)["user"])
        assert len(v1[f"{part}.hr@10"]) == n and len(v1[f"{part}.e"]) == n
    assert r1["protocol"]["split_hash"] == split.hash and r1["env"]["torch"] == torch.__version__


def test_random_is_at_chance_level_and_popular_uses_training_rows(data):
    inter, split = data
    rec, _ = run_trial(spec_for("random", split), get_method("random"), split, inter, torch.device("cpu"))
    n_cand = split.part("test")["cand_mask"].sum(1).mean()
    assert abs(rec["metrics"]["test"]["all"]["hr@10"] - 10 / n_cand) < 0.15
    from benchmark.views import SplitViews

    cls = get_method("popular")
    pop = cls(cls.resolved_defaults("paper"), _ctx())
    pop.fit(SplitViews(split, inter, torch.device("cpu")).train())
    tr = split.part("train")
    expected = np.bincount(tr["item"][tr["label"] == 1], minlength=inter.n_items)
    np.testing.assert_array_equal(pop.counts.numpy(), expected)
    # on loo an event is scored by the candidates' training positives strictly before its time
    te = split.part("test")
    got = pop.score({"user": torch.from_numpy(te["user"]), "time": torch.from_numpy(te["time"]),
                     "cand": torch.from_numpy(te["cand"]), "cand_mask": torch.from_numpy(te["cand_mask"])}).numpy()
    pos = tr["label"] == 1
    for e in range(0, len(te["user"]), 3):
        naive = [((tr["item"][pos] == c) & (tr["time"][pos] < te["time"][e])).sum() for c in te["cand"][e]]
        np.testing.assert_array_equal(got[e], naive)
    assert (got != expected[te["cand"]]).any(), "the fixture must tell causal from whole-period counts"


def _ctx():
    from benchmark.method import TrialContext

    return TrialContext(device=torch.device("cpu"), seed=0, budget="quick", generator=torch.Generator(),
                        validate=lambda m: 0.0, progress=lambda it, d: iter(it), fitted=None)


class Exploding(Method):
    name = "exploding"

    def fit(self, data):
        raise RuntimeError("boom")

    def score(self, batch):
        raise AssertionError


def test_a_failing_trial_is_recorded_and_the_run_goes_on(data, tmp_path):
    inter, split = data
    bad = replace(spec_for("random", split), method="exploding")
    good = spec_for("popular", split)
    store = ResultStore(tmp_path)
    summary = execute([Planned(bad, Exploding, split, inter), Planned(good, get_method("popular"), split, inter)],
                      store, torch.device("cpu"), show_progress=False)
    assert (summary.ok, summary.failed) == (1, 1)
    records = {rec["method"]["name"]: rec for _, rec in store.records()}
    assert records["exploding"]["status"] == "failed" and "boom" in records["exploding"]["error"]
    assert records["popular"]["status"] == "ok"
    again = execute([Planned(good, get_method("popular"), split, inter)], store, torch.device("cpu"),
                    show_progress=False)
    assert (again.skipped, again.ok) == (1, 0)


def test_builtins_come_from_the_entry_point_group():
    reg = registry()
    for name in ("random", "popular", "bpr-mf", "dssm"):
        assert reg[name].builtin and reg[name].origin.startswith("promo-bench")
    with pytest.raises(BenchError, match="did you mean 'dssm'"):
        get_method("dsm")


def test_a_broken_plugin_is_unavailable_not_fatal():
    from benchmark.registry import MethodEntry

    entry = MethodEntry("method", "broken", "no_such_module_xyz:Thing", "fake-plugin 1.0", builtin=False)
    with pytest.raises(BenchError, match="unavailable: ModuleNotFoundError"):
        entry.load()
    assert "ModuleNotFoundError" in entry.error


class ColumnZero(Method):
    """Scores by column position and asserts it never sees the answer."""

    name = "column-zero"

    def fit(self, data):
        return {}

    def score(self, batch):
        assert not {"item", "cold", "place"} & set(batch), "the scorer saw the positive item, its flag or position"
        cand = batch["cand"]
        return -torch.arange(cand.shape[1], dtype=torch.float32).expand(cand.shape[0], -1).clone()


def test_a_position_biased_scorer_cannot_find_the_positive(data):
    inter, split = data
    spec = replace(spec_for("random", split), method="column-zero", method_version="1")
    rec, vec = run_trial(spec, ColumnZero, split, inter, torch.device("cpu"))
    assert rec["status"] == "ok", rec.get("traceback")
    n_cand = split.part("test")["cand_mask"].sum(1).mean()
    assert vec["test.hr@5"].mean() < 3 * 5 / n_cand  # chance is 5/21 here; column 0 would give 1.0
    assert rec["protocol"]["split"]["n_users_with_events"] == len(split.part("test")["user"])


def test_run_without_method_names_takes_every_method_of_the_chosen_protocol():
    from benchmark.runner import select_methods

    with pytest.raises(BenchError, match="nothing to run"):
        select_methods(None, all_methods=False)
    chosen = select_methods(None, all_methods=False, narrowed=True)
    assert {"dropoutnet", "clcrec", "promo", "random"} <= set(chosen)
    assert select_methods(["gar", "gar", "aldi"], all_methods=False) == ["gar", "aldi"]


def test_default_score_all_matches_score_for_a_plugin_without_it(data):
    """A method that implements only ``score`` still works under full ranking (items in chunks)."""
    from benchmark import method as method_module

    inter, split = data
    env = TrialEnvironment(split, inter, torch.device("cpu"))
    pop = get_method("popular")(get_method("popular").resolved_defaults("quick"), env.context(0, "quick", False))
    pop.fit(env.views.train())
    users = torch.arange(5)
    fast = pop.score_all({"user": users})
    chunked = method_module.Method.score_all(pop, {"user": users})
    assert torch.equal(fast, chunked) and fast.shape == (5, inter.n_items)


def test_records_state_each_methods_size_and_schedule(data):
    """Issue 19 part 2: parameters (own and backbones'), the size option and epochs run are in every record, counted
    from the fitted object."""
    inter, split = data
    env = TrialEnvironment(split, inter, torch.device("cpu"))
    dssm, _ = run_trial(spec_for("dssm", split), get_method("dssm"), split, inter, env.device, env=env)
    cap = dssm["capacity"]
    assert cap["size_option"] == "dim" and cap["size"] == get_method("dssm").defaults["dim"]
    assert cap["parameters"] > 0 and cap["backbone_parameters"] == 0 and cap["epochs_run"] >= 1
    assert cap["max_epochs"] == get_method("dssm").budgets["quick"].get("epochs", get_method("dssm").defaults["epochs"])
    promo, _ = run_trial(spec_for("promo", split), get_method("promo"), split, inter, env.device, env=env)
    pc = promo["capacity"]
    sasrec = env.fitted(get_method("sasrec"), get_method("sasrec").defaults | get_method("sasrec").budgets["quick"],
                        0, "quick")[0]
    n_sasrec = sum(p.numel() for p in sasrec.net.parameters())
    assert pc["backbone_parameters"] > n_sasrec > 0  # dssm-sasrec holds the SASRec and its own towers
    assert pc["parameters"] > 0 and pc["size_option"] == "hidden" and pc["epochs_run"] >= 1


def test_one_patience_rule_and_declared_exceptions():
    """Issue 19 part 2: every method stops after PATIENCE validation passes without gain unless it says why; a
    search space must hold the method's defaults."""
    from benchmark.method import PATIENCE
    from benchmark.registry import check_method_class
    from benchmark.space import Float

    base = get_method("dssm")
    assert base.defaults["patience"] == PATIENCE == 5
    odd = type("Odd", (base,), {"name": "odd", "defaults": {**base.defaults, "patience": 15}})
    with pytest.raises(TypeError, match="patience_exception"):
        check_method_class(odd, "odd")
    declared = type("Declared", (odd,), {"patience_exception": "the reference's schedule"})
    assert check_method_class(declared, "odd") is declared
    narrow = type("Narrow", (base,), {"name": "odd", "search_space": {"lr": Float(0.1, 0.2)}})
    with pytest.raises(TypeError, match="leaves out the default"):
        check_method_class(narrow, "odd")
    for name in registry():  # every built-in obeys both rules (a broken one would be unavailable here)
        cls = get_method(name)
        assert cls.defaults.get("patience") in (None, PATIENCE) or cls.patience_exception, name
