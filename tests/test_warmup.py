"""The ``warmup`` protocol: its split (stages per item in time order, eval rows never warmed up on), the AUC
metric against hand-computed cases, the harness's warm-up loop (only declared parameters change), and the
warm-up methods on real ML-100K (each beats ``random``), on ``warmup`` and on ``loo``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark import pointwise, warmup_loop
from benchmark.errors import BenchError
from benchmark.method import Method
from benchmark.protocols import get_split
from benchmark.protocols import warmup as proto
from benchmark.registry import get_method
from benchmark.report.build import ReportOptions, build_reports
from benchmark.store import ResultStore
from benchmark.trial import TrialEnvironment, TrialSpec, run_trial
from tests.conftest import protocol_env, synthetic

SMALL = {"n_old": 80, "k": 5, "min_eval_rows": 5}


def _small_split(seed: int = 0):
    inter = synthetic(n_users=60, n_items=40, n_rows=2400, seed=seed)
    split, _ = get_split(inter, "warmup", SMALL)
    return inter, split


# --- the split -----------------------------------------------------------------------------------------------

def test_old_items_train_and_new_items_never_do():
    inter, split = _small_split()
    counts = np.bincount(inter.item, minlength=inter.n_items)
    kind = split.arrays["item/kind"]
    assert ((kind == 1) == (counts >= SMALL["n_old"])).all()
    train_items = np.unique(split.arrays["train/item"])
    assert set(train_items) == set(np.flatnonzero(kind == 1))
    assert np.bincount(split.arrays["train/item"], minlength=inter.n_items)[kind == 1].tolist() == \
        counts[kind == 1].tolist()  # every row of an old item trains
    valid, test = set(np.flatnonzero(kind == 2)), set(np.flatnonzero(kind == 3))
    assert valid and test and not valid & test and abs(len(valid) - len(test)) <= 1
    for part, code in (("valid", 2), ("test", 3)):
        assert set(split.part(part)["item"]) <= set(np.flatnonzero(kind == code))
        assert set(split.part(f"warm_{part}")["item"]) == set(np.flatnonzero(kind == code))


def test_stages_are_per_item_in_time_order_and_eval_rows_never_warm_up():
    inter, split = _small_split()
    order = np.argsort(inter.time, kind="stable")  # the total order the split's ``pos`` refers to
    k = SMALL["k"]
    for part in ("valid", "test"):
        ev, wu = split.part(part), split.part(f"warm_{part}")
        assert not set(ev["place"]) & set(wu["place"])  # no row is both
        assert (inter.item[order][wu["place"]] == wu["item"]).all() and (inter.time[order][ev["place"]] == ev["time"]).all()
        for item in np.unique(wu["item"]):
            w = wu["item"] == item
            stages, pos, times = wu["stage"][w], wu["place"][w], wu["time"][w]
            assert np.bincount(stages, minlength=4)[1:].tolist() == [k, k, k]
            by_place = np.argsort(pos)
            assert (np.diff(stages[by_place]) >= 0).all()  # warm-a, then warm-b, then warm-c in the total order
            # the item's first 3k usable rows (users with a training row) in the total order are its warm-up rows
            usable = np.isin(inter.user[order], split.arrays["train/user"])
            all_rows = np.flatnonzero((inter.item[order] == item) & usable)
            assert sorted(pos) == sorted(all_rows[:3 * k])
            e = ev["item"] == item
            assert (ev["time"][e] > times.max()).all()  # strictly after the last warm-up row: ties are dropped
            assert (ev["place"][e] > pos.max()).all()


def test_an_evaluation_row_at_the_time_of_the_last_warm_up_row_is_dropped():
    t = np.array([1, 2, 3, 4, 5, 6, 6, 6, 7, 8])  # k = 2: warm-up rows 0..5; rows 6 and 7 tie with row 5
    stage, n_tie = proto._stage_rows(np.arange(10), t, 2)
    assert stage.tolist() == [1, 1, 2, 2, 3, 3, 0, 0, 4, 4] and n_tie == 2


def test_split_is_frozen_and_hashed():
    inter, split = _small_split()
    again, cached = get_split(inter, "warmup", SMALL)
    assert cached and again.hash == split.hash
    other, _ = get_split(inter, "warmup", SMALL | {"k": 4})
    assert other.hash != split.hash


@pytest.mark.parametrize("bad, match", [({"k": 0}, r"k: expected a value in \[1, inf\)"), ({"n_old": 20}, "n_old"),
                                        ({"warm_lr": 0.0}, "warm_lr"), ({"k": "ten"}, "k must be int")])
def test_bad_parameters_are_named(bad, match):
    inter = synthetic()
    with pytest.raises(BenchError, match=match):
        get_split(inter, "warmup", SMALL | bad)


# --- metrics ---------------------------------------------------------------------------------------------------

def test_auc_against_hand_computed_cases():
    # pairs (pos, neg): (.9,.8) 1, (.9,.3) 1, (.3,.8) 0, (.3,.3) 1/2 -> 2.5 / 4
    assert pointwise.auc(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.3, 0.3])) == pytest.approx(0.625)
    assert pointwise.auc(np.array([1, 0, 1]), np.array([0.2, 0.2, 0.2])) == 0.5  # constant scores: chance
    assert pointwise.auc(np.array([1, 1, 0]), np.array([3.0, 2.0, 1.0])) == 1.0
    assert math.isnan(pointwise.auc(np.array([1, 1]), np.array([0.1, 0.2])))
    assert pointwise.logloss(np.array([1, 0]), np.array([0.0, 0.0])) == pytest.approx(math.log(2))
    im = pointwise.per_item(np.array([7, 7, 3, 3, 3, 9]), np.array([1, 0, 1, 1, 0, 1]),
                            np.array([0.5, 0.1, 0.0, 1.0, 0.5, 2.0]), calibrated=False)
    assert im.items.tolist() == [3, 7] and im.auc.tolist() == [0.5, 1.0] and im.n_one_class == 1
    assert np.isnan(im.logloss).all()


# --- the harness's warm-up loop ----------------------------------------------------------------------------------

class Spy(Method):
    """Records every row the warm-up loop shows it; one item-side table learns."""

    name = "spy"
    protocols = frozenset({"warmup"})

    def fit(self, data):
        self.table = torch.zeros(data.n_items, requires_grad=True)
        self.other = torch.ones(3)
        self.seen: list[dict] = []
        self.observed: list[dict] = []
        return {}

    def score(self, batch):
        return self.table[batch["cand"]]

    def predict(self, rows):
        return self.table[rows["item"]] * 1.0 + 0.0 * self.other.sum()

    def warm_parameters(self):
        return [self.table]

    def warm_loss(self, rows):
        self.seen.append({k: v.clone() for k, v in rows.items()})
        return super().warm_loss(rows)

    def observe(self, rows):
        self.observed.append({k: v.clone() for k, v in rows.items()})


def _spy_env():
    inter, split = _small_split()
    env = TrialEnvironment(split, inter, torch.device("cpu"))
    spy = Spy({}, env.context(0, "quick", False))
    spy.fit(env.views.train())
    return env, spy


def test_warm_up_sees_only_its_stage_rows_of_its_part_and_leaves_the_fitted_method_alone():
    env, spy = _spy_env()
    for part in ("valid", "test"):
        ev, wu = env.views.events(part), env.views.events(f"warm_{part}")
        calls = {}
        real_fork = warmup_loop.fork

        def keep(m):
            calls["fork"] = real_fork(m)
            return calls["fork"]

        warmup_loop.fork = keep
        try:
            summary, vectors = warmup_loop.evaluate(spy, ev, wu, env.split.meta["params"], seed=0)
        finally:
            warmup_loop.fork = real_fork
        forked = calls["fork"]
        assert spy.seen == [] and float(spy.table.detach().abs().sum()) == 0.0  # the original never warmed up
        eval_pos = set(ev.numpy("place").tolist())
        stages_seen = torch.cat([b["stage"] for b in forked.seen])
        assert forked.seen  # rows were shown
        assert set(torch.cat([b["item"] for b in forked.seen]).tolist()) <= set(wu.numpy("item").tolist())
        assert stages_seen.min() >= 1 and stages_seen.max() <= 3
        # observe gets every warm-up row shown so far: k, 2k, 3k per item
        n_items = len(np.unique(wu.numpy("item")))
        assert [len(o["user"]) for o in forked.observed] == [n_items * SMALL["k"] * s for s in (1, 2, 3)]
        # an evaluation row is never shown: the (item, time, user) of every shown row is a warm-up row
        warm_keys = set(zip(wu.numpy("item").tolist(), wu.numpy("time").tolist(), wu.numpy("user").tolist()))
        for batch in forked.seen:
            for key in zip(batch["item"].tolist(), batch["time"].tolist(), batch["user"].tolist()):
                assert key in warm_keys
        assert not eval_pos & set(wu.numpy("place").tolist())
        assert list(summary) == list(proto.STAGES) and set(np.unique(vectors["stage"])) == {0, 1, 2, 3}


def _tensors(method) -> dict[str, torch.Tensor]:
    """Every tensor a method holds (references): module parameters and buffers, and plain tensor attributes."""
    out = {}
    for name, value in vars(method).items():
        if isinstance(value, torch.nn.Module):
            out.update({f"{name}.{k}": v for k, v in [*value.named_parameters(), *value.named_buffers()]})
        elif isinstance(value, torch.Tensor) and value.is_floating_point():
            out[name] = value
    return out


# --- real ML-100K ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def env(ml100k, tmp_path_factory):
    return protocol_env(ml100k, "warmup", tmp_path_factory)


WARM_METHODS = ["deepfm", "metaemb", "mwuf", "cvar"]
QUICKER = {"cvar": {"iters": 3}}


def _fitted(env, name: str):
    cls = get_method(name)
    opts = cls.resolved_defaults("quick") | QUICKER.get(name, {})
    if cls.cacheable:
        return env.fitted(cls, opts, 0, "quick")[0]
    m = cls(opts, env.context(0, "quick", False))
    m.fit(env.views.train())
    return m


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
@pytest.mark.parametrize("name", WARM_METHODS + ["bpr-mf", "deepmusic"])
def test_only_declared_parameters_change_during_warm_up(env, name):
    m = warmup_loop.fork(_fitted(env, name))
    declared = m.warm_parameters()
    refs = _tensors(m)
    before = {k: v.detach().clone() for k, v in refs.items()}
    declared_before = [p.detach().clone() for p in declared]
    wu = env.views.events("warm_test")
    idx = torch.nonzero(wu["stage"] == 1).squeeze(1)
    rows = {k: wu[k][idx] for k in warmup_loop.WARM_FIELDS}
    info = warmup_loop.warm_up_stage(m, rows, env.split.meta["params"], torch.Generator().manual_seed(0))
    assert info["updated"] and info["steps"] > 0
    declared_ids = {id(p) for p in declared}
    assert len(refs) > len(declared)
    for key, ref in refs.items():
        if id(ref) not in declared_ids:
            assert torch.equal(before[key], ref.detach()), f"{name}: {key} changed during warm-up but is not declared"
    stage_items = torch.unique(rows["item"])
    others = torch.ones(env.inter.n_items, dtype=torch.bool)
    others[stage_items] = False
    changed_any = False
    for old, p in zip(declared_before, declared):
        if p.shape[0] == env.inter.n_items:  # an item table: only the stage's items' rows may move
            assert torch.equal(old[others], p.detach()[others]), f"{name}: rows of items outside the stage moved"
        changed_any |= not torch.equal(old, p.detach())
    assert changed_any, f"{name}: warm-up changed nothing"


@pytest.fixture(scope="module")
def random_auc(env) -> dict:
    return _trial(env, "random")[0]["metrics"]["test"]


def _trial(env, name: str, seed: int = 0):
    cls = get_method(name)
    opts = cls.resolved_defaults("quick") | QUICKER.get(name, {})
    spec = TrialSpec(name, cls.version, "test", opts, "", "quick", "ml-100k", "warmup", env.split.hash, seed)
    record, vectors = run_trial(spec, cls, env.split, env.inter, env.device, env=env)
    assert record["status"] == "ok", record.get("traceback")
    return record, vectors


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
def test_random_reports_its_cold_value_at_every_stage(random_auc):
    values = {stage: m["auc"] for stage, m in random_auc.items()}
    assert len(set(values.values())) == 1 and abs(values["base"] - 0.5) < 0.03


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
@pytest.mark.parametrize("name", WARM_METHODS)
def test_warm_up_methods_beat_random_at_every_stage(env, random_auc, name, tmp_path):
    record, vectors = _trial(env, name)
    test = record["metrics"]["test"]
    for stage in proto.STAGES:
        assert test[stage]["auc"] > random_auc[stage]["auc"] + 0.1, (stage, test[stage])
        assert test[stage]["logloss"] < math.log(2)  # calibrated CTR models beat the coin's log-loss
    assert test["warm-c"]["auc_pooled"] > test["base"]["auc_pooled"]  # warming up helps the pooled ranking
    assert record["fit"]["valid_metric"] == "auc"
    store = ResultStore(tmp_path / "results")
    store.write(record, vectors)
    written = build_reports(store, tmp_path / "report", ReportOptions(formats=["md", "latex"], plots=True))
    names = {p.name for p in written}
    assert {f"warmup-quick-test-{s}.md" for s in proto.STAGES + ("stages",)} <= names
    assert "warmup-quick-test-stages-pooled-auc.tex" in names
    assert "ml-100k-warmup-quick-over-stages.pdf" in names
    text = (tmp_path / "report" / "tables" / "warmup-quick-test-warm-c.md").read_text()
    assert name in text and "AUC" in text


def test_mwuf_item_to_users_map_is_not_swapped():
    from methods.mwuf import mean_user_embedding

    user_emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    mean, n = mean_user_embedding(user_emb, users=torch.tensor([0, 1, 2]), items=torch.tensor([3, 3, 0]), n_items=4)
    assert n.tolist() == [1, 0, 0, 2]
    assert mean[3].tolist() == [0.5, 0.5] and mean[0].tolist() == [5.0, 5.0] and mean[1].tolist() == [0.0, 0.0]


@pytest.fixture(scope="module")
def loo_env(ml100k, tmp_path_factory):
    return protocol_env(ml100k, "loo", tmp_path_factory)


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
@pytest.mark.parametrize("name", WARM_METHODS)
def test_warm_up_methods_run_on_loo(loo_env, name):
    split, ml100k = loo_env.split, loo_env.inter
    cls = get_method(name)
    opts = cls.resolved_defaults("quick") | QUICKER.get(name, {})
    spec = TrialSpec(name, cls.version, "test", opts, "", "quick", "ml-100k", "loo", split.hash, 0)
    record, _ = run_trial(spec, cls, split, ml100k, loo_env.device, env=loo_env)
    assert record["status"] == "ok", record.get("traceback")
    assert record["metrics"]["test"]["all"]["hr@10"] > 0.2  # random: about 0.10 with 100 sampled negatives


def test_run_all_skips_warmup_on_a_dataset_too_small_for_it_but_a_named_protocol_fails(monkeypatch, capsys):
    from benchmark import runner

    monkeypatch.setattr(runner, "load_dataset", lambda name, data_dir=None, options=None: synthetic())  # no item has 100 rows
    planned = runner.plan(["random"], ["ml-100k"], None, 1, "quick", {})
    assert {p.spec.protocol for p in planned} == {"loo", "temporal", "cold"}
    assert "skipping protocol 'warmup'" in capsys.readouterr().err
    with pytest.raises(BenchError, match="n_old"):
        runner.plan(["random"], ["ml-100k"], ["warmup"], 1, "quick", {})


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
def test_the_same_seed_gives_the_same_numbers_on_a_multithreaded_cpu(env):
    """Two fresh environments (nothing cached) train and warm up bit-identically. ``x[idx]`` has a
    non-deterministic backward on a multi-threaded CPU; the CTR models gather with ``index_select``."""
    runs = []
    for _ in range(2):
        fresh = TrialEnvironment(env.split, env.inter, torch.device("cpu"))
        runs.append([_trial(fresh, name)[0]["metrics"] for name in ("deepfm", "mwuf", "bpr-mf")])
    assert runs[0] == runs[1]


def test_multi_hot_fields_pool_by_mean_or_by_sum_as_cvar():
    """``multi_hot = sum`` is CVAR's ``seq`` pooling (model/deepfm.py); the default mean divides by the number of
    active columns; a one-hot field is the same either way."""
    from methods.ctr import FieldPool

    names = ("genre=a", "genre=b", "genre=c", "age1", "age2")
    x = torch.tensor([[1.0, 1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0, 0.0]])
    mean, total = FieldPool(names, 5, 4, "mean"), FieldPool(names, 5, 4, "sum")
    total.load_state_dict(mean.state_dict())
    m, s = mean(x), total(x)
    assert mean.fields == ["genre", "age"]
    torch.testing.assert_close(s[0, 0], 2 * m[0, 0])  # two genres: the sum is twice the mean
    torch.testing.assert_close(s[:, 1], m[:, 1])  # one-hot age: the same
    torch.testing.assert_close(s[1, 0], m[1, 0])
    with pytest.raises(ValueError, match="multi_hot"):
        FieldPool(names, 5, 4, "max")


# --- the warm-up learning rate, chosen per method on validation (issue 19) ------------------------------------

def test_warm_lrs_must_be_positive_numbers():
    inter = synthetic()
    for bad in ("fast", "1e-3,-1", ","):
        with pytest.raises(BenchError, match="warm_lrs must be positive numbers separated by commas"):
            get_split(inter, "warmup", SMALL | {"warm_lrs": bad})


def test_each_method_gets_the_rate_that_is_best_on_validation_items_only(monkeypatch):
    """Before, one warm_lr (chosen on the CTR family) served every method; now the harness picks each method's
    from the same grid by the same rule, reading the validation part only, and the test part uses that rate."""
    inter, split = _small_split()
    env = TrialEnvironment(split, inter, torch.device("cpu"))
    seen: list[set] = []
    real = warmup_loop.choose_lr

    def spy(method, eval_rows, warm_rows, params, seed):
        seen.append(set(eval_rows.numpy("place").tolist()) | set(warm_rows.numpy("place").tolist()))
        return real(method, eval_rows, warm_rows, params, seed)

    monkeypatch.setattr(warmup_loop, "choose_lr", spy)
    spec = TrialSpec("spy", "1", "test", {}, "", "quick", "synthetic", "warmup", split.hash, 0)
    record, _ = run_trial(spec, Spy, split, inter, env.device, env=env)
    assert record["status"] == "ok", record.get("traceback")
    valid = set(env.views.events("valid").numpy("place").tolist()) | set(
        env.views.events("warm_valid").numpy("place").tolist())
    assert len(seen) == 1 and seen[0] == valid  # once per fitted method, on validation rows alone
    info = record["metrics"]["test"]["warm-a"]["warm_up"]
    search = {float(k): v for k, v in info["lr_search"].items()}
    assert sorted(search) == list(proto.warm_lrs(split.meta["params"])) == [1e-4, 1e-3, 1e-2]
    best = max(sorted(search), key=lambda lr: (search[lr], -lr))
    assert all(record["metrics"][p][s]["warm_up"]["lr"] == best for p in ("valid", "test") for s in proto.STAGES[1:])
    direct, _ = warmup_loop.evaluate(_fitted_spy(env), env.views.events("test"), env.views.events("warm_test"),
                                     {**split.meta["params"], "warm_lr": best}, 0)
    assert direct["warm-c"]["auc_pooled"] == record["metrics"]["test"]["warm-c"]["auc_pooled"]
    # the validation part reuses the search's run at the chosen rate: the same numbers as evaluating it afresh
    again, _ = warmup_loop.evaluate(_fitted_spy(env), env.views.events("valid"), env.views.events("warm_valid"),
                                    {**split.meta["params"], "warm_lr": best}, 0)
    for stage in proto.STAGES:
        assert again[stage]["auc_pooled"] == record["metrics"]["valid"][stage]["auc_pooled"]
        assert again[stage]["auc"] == record["metrics"]["valid"][stage]["auc"]


def _fitted_spy(env):
    spy = Spy({}, env.context(0, "quick", False))
    spy.fit(env.views.train())
    return spy


def test_an_empty_grid_gives_every_method_warm_lr():
    inter = synthetic(n_users=60, n_items=40, n_rows=2400)
    split, _ = get_split(inter, "warmup", SMALL | {"warm_lrs": "", "warm_lr": 0.02})
    env = TrialEnvironment(split, inter, torch.device("cpu"))
    spec = TrialSpec("spy", "1", "test", {}, "", "quick", "synthetic", "warmup", split.hash, 0)
    record, _ = run_trial(spec, Spy, split, inter, env.device, env=env)
    info = record["metrics"]["test"]["warm-b"]["warm_up"]
    assert info["lr"] == 0.02 and "lr_search" not in info
