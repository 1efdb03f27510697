"""PROMO: shapes, losses, per-item networks, the audit flag, scored pinnacle feedback and the backbone cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.protocols import loo
from benchmark.registry import get_method
from benchmark.trial import TrialEnvironment, run_trial
from benchmark.views import SplitViews
from methods.pinnacle import ScoredPinnacle
from methods.popularity import CausalPopularity
from methods.promo import PromptNet, generator_size, pape, pfpe_l1, pfpe_released
from tests.conftest import synthetic
from tests.test_trials import spec_for

LOG2 = math.log(2.0)


@pytest.fixture(scope="module")
def data():
    inter = synthetic(n_users=40, n_items=60, n_rows=1500, seed=2)
    return inter, loo.build(inter, loo.resolve_params({"tau": 5, "n_negatives": 20, "history_len": 8}))


def test_generator_and_per_item_network_shapes_and_parameter_counts():
    d = h = 16
    net = PromptNet(n_users=943, n_items=1682, n_item_feat=28, d=d, h=h, activation="identity",
                    prompt_input="feedback", network="item")
    assert generator_size(d, h) == 16 + 544 == 560
    assert tuple(net.gen.weight.shape) == (560, 16) and net.gen.bias.numel() == 560
    assert sum(p.numel() for p in net.gen.parameters()) == 9_520  # d * 560 + 560
    assert net.fuse.weight.numel() == 3 * d * d and net.fuse.bias is None
    t, w1, b1, w2, b2 = net.item_networks(torch.tensor([0, 5, 9]))
    assert [tuple(x.shape) for x in (t, w1, b1, w2, b2)] == [(3, 16), (3, 16, 16), (3, 16), (3, 16, 16), (3, 16)]
    total = sum(p.numel() for p in net.parameters())
    assert total == 1682 * d + 943 * d + 9_520 + 3 * d * d  # E_item^prm, E_user^prm, G, W_f


def test_pfpe_released_by_hand_and_on_empty_lists():
    P, N = torch.tensor([[1.0, -1.0]]), torch.tensor([[0.5, 0.5]])
    got = pfpe_released(P, N, torch.tensor([2.0]), torch.tensor([1.0]))
    # dim 1: -(1*1 - 2*0.5) = 0; dim 2: -(1*-1 - 2*0.5) = 2
    assert got.item() == pytest.approx(LOG2 + math.log1p(math.exp(2.0)))
    empty = pfpe_released(torch.zeros(1, 2), torch.tensor([[3.0, -1.0]]), torch.tensor([0.0]), torch.tensor([2.0]))
    assert empty.item() == pytest.approx(2 * LOG2)


def test_pfpe_l1_by_hand_and_on_empty_lists():
    P, N = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    got = pfpe_l1(P, N, torch.tensor([2.0]), torch.tensor([1.0]))  # means [1,0] vs [0,1]: L1 = 2
    assert got.item() == pytest.approx(math.log1p(math.exp(-2.0)))
    both = pfpe_l1(torch.cat([P, P]), torch.cat([N, N]), torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]))
    assert both.item() == pytest.approx((math.log1p(math.exp(-2.0)) + LOG2) / 2)


def test_pape_by_hand_and_when_a_side_is_empty():
    logits = torch.tensor([1.0, 2.0, -1.0, 0.5])
    labels = torch.tensor([1.0, 1.0, 0.0, 0.0])
    cold = torch.tensor([True, False, False, True])
    # C = {1.0} (cold positive), H = {-1.0} (warm negative): softplus(-(1*1 - 1*-1))
    assert pape(logits, labels, cold).item() == pytest.approx(math.log1p(math.exp(-2.0)))
    assert pape(logits, labels, torch.zeros(4, dtype=torch.bool)).item() == pytest.approx(LOG2)
    two_c = pape(torch.tensor([1.0, 3.0, -1.0]), torch.tensor([1.0, 1.0, 0.0]), torch.tensor([True, True, False]))
    assert two_c.item() == pytest.approx(math.log1p(math.exp(-(1 * 4.0 - 2 * -1.0))))  # not normalised


def test_empty_feedback_gives_no_pfpe_gradient():
    torch.manual_seed(0)
    net = PromptNet(5, 4, 3, 4, 4, "identity", "feedback", "item")
    items = torch.tensor([0, 1])
    users = torch.tensor([[1, 2], [3, 4]])
    pos_mask = torch.tensor([[False, False], [False, False]])
    neg_mask = torch.tensor([[True, True], [True, False]])
    P, t, N = net.prompt(items, users, pos_mask, torch.zeros(4, 3), users, neg_mask)
    loss = pfpe_released(P, N, pos_mask.sum(1).float(), neg_mask.sum(1).float())
    assert loss.item() == pytest.approx(4 * LOG2)
    loss.backward()
    assert all(p.grad is None or torch.all(p.grad == 0) for p in net.parameters())


def test_each_item_has_its_own_network_and_gradients_reach_only_batch_items():
    torch.manual_seed(0)
    net = PromptNet(6, 5, 3, 4, 4, "identity", "feedback", "item")
    items = torch.tensor([1, 3])
    same_users = torch.tensor([[2, 4], [2, 4]])
    mask = torch.ones(2, 2, dtype=torch.bool)
    P, t, _ = net.prompt(items, same_users, mask, torch.zeros(5, 3))
    assert not torch.allclose(P[0], P[1]), "same feedback users, different items: prompts must differ"
    (P.sum() + t.sum()).backward()
    touched = torch.nonzero(net.item_prm.weight.grad.abs().sum(1)).squeeze(1).tolist()
    assert touched == [1, 3]
    assert torch.nonzero(net.user_prm.weight.grad.abs().sum(1)).squeeze(1).tolist() == [2, 4]


def test_audit_leak_changes_exactly_the_windows_the_spec_names(data):
    inter, split = data
    views = SplitViews(split, inter, torch.device("cpu"))
    for part in ("train", "valid", "test"):
        clean = split.part(part)
        leaky = views._arrays(part, audit=True)
        assert set(clean) == set(leaky)
        changed = {k for k in clean if not np.array_equal(clean[k], leaky[k])}
        assert changed <= set(loo.WINDOW_ARRAYS), f"{part}: audit changed non-window arrays {changed - set(loo.WINDOW_ARRAYS)}"
    tr, lk = split.part("train"), views._arrays("train", audit=True)
    pos = tr["label"] == 1
    own_fbp = np.any((lk["fb_pos"] == tr["user"][:, None]) & lk["fb_pos_mask"], 1)
    own_fbn = np.any((lk["fb_neg"] == tr["user"][:, None]) & lk["fb_neg_mask"], 1)
    own_hist = np.any((lk["hist"] == tr["item"][:, None]) & lk["hist_mask"], 1)
    assert own_fbp[pos].all() and own_fbn[~pos].all() and own_hist[pos].all()  # traps 1 and 2
    te, lt = split.part("test"), views._arrays("test", audit=True)
    assert np.all(np.any((lt["fb_pos"][:, 0] == te["user"][:, None]) & lt["fb_pos_mask"][:, 0], 1))
    clean_own = np.any((tr["fb_pos"] == tr["user"][:, None]) & tr["fb_pos_mask"], 1)
    assert clean_own[pos].mean() < own_fbp[pos].mean()


def _naive_scored(tr, item, t, k, levels):
    sel = (tr["item"] == item) & (tr["time"] < t) & (tr["label"] == 1)
    rows = np.flatnonzero(sel)
    order = sorted(rows, key=lambda r: (levels.index(tr["value"][r]), -tr["place"][r]))  # best value, then latest
    return sorted(tr["user"][order[:k]].tolist())


def test_scored_pinnacle_takes_top_values_before_t_and_borrows_for_empty_items(data):
    inter, split = data
    views = SplitViews(split, inter, torch.device("cpu"))
    train = views.train().train
    tr = split.part("train")
    vecs = torch.randn(inter.n_items, 8, generator=torch.Generator().manual_seed(0))
    pop, tau = CausalPopularity(views.train()), split.meta["params"]["tau"]

    def warm_at(items, times):
        t = np.broadcast_to(times, items.shape)
        return (pop.counts(torch.from_numpy(np.ascontiguousarray(items)).long(),
                           torch.from_numpy(np.array(t, dtype=np.int64))) >= tau).numpy()

    pin = ScoredPinnacle(train, vecs, warm_at, k=3)
    assert pin.levels == [5.0, 4.0]
    items = tr["item"][::5]
    times = tr["time"][::5]
    vals, mask, n_pseudo = pin.windows(items, times)
    direct_vals, direct_mask = pin.direct(items, times)
    for r in range(len(items)):
        expected = _naive_scored(tr, items[r], times[r], 3, pin.levels)
        assert sorted(direct_vals[r][direct_mask[r]].tolist()) == expected
        if expected:
            assert sorted(vals[r][mask[r]].tolist()) == expected
        else:  # borrowed from the nearest items warm *at t*, still strictly before t
            short = pin.shortlist[items[r]]
            donors = short[warm_at(short, np.full(len(short), times[r]))][:10]
            # no donor may be warm only through rows at or after t (the whole-period flag would allow it)
            for d in donors:
                assert ((tr["item"] == d) & (tr["time"] < times[r]) & (tr["label"] == 1)).sum() >= tau
            for user in vals[r][mask[r]].tolist():
                assert np.any(np.isin(tr["item"], donors) & (tr["user"] == user) & (tr["time"] < times[r])
                              & (tr["label"] == 1))
    assert n_pseudo == int((~direct_mask.any(1)).sum())


def _env(data, disk=None):
    from benchmark.fitted import FittedCache

    inter, split = data
    return TrialEnvironment(split, inter, torch.device("cpu"), FittedCache(disk))


def test_backbones_are_trained_once_and_a_cache_hit_gives_the_same_result(data, tmp_path, monkeypatch):
    inter, split = data
    calls = []
    sasrec_cls = get_method("sasrec")
    real_fit = sasrec_cls.fit

    def counting_fit(self, d):
        calls.append(self.options["audit_leak"])
        return real_fit(self, d)

    monkeypatch.setattr(sasrec_cls, "fit", counting_fit)
    env = _env(data, tmp_path)
    cpu = torch.device("cpu")
    first, _ = run_trial(spec_for("promo", split), get_method("promo"), split, inter, cpu, env=env)
    again, _ = run_trial(spec_for("promo-t", split), get_method("promo-t"), split, inter, cpu, env=env)
    assert first["status"] == "ok" and again["status"] == "ok", first.get("traceback")
    assert calls == [False], "sasrec trained more than once"
    fresh_env = _env(data, tmp_path)  # new process, same disk cache: loads instead of training
    from_disk, _ = run_trial(spec_for("promo", split), get_method("promo"), split, inter, cpu, env=fresh_env)
    assert calls == [False]
    assert from_disk["metrics"] == first["metrics"]
    cold_env = _env(data, None)  # no cache at all: trains again, and must agree exactly
    trained, _ = run_trial(spec_for("promo", split), get_method("promo"), split, inter, cpu, env=cold_env)
    assert trained["metrics"] == first["metrics"]
    audited, _ = run_trial(spec_for("promo", split, audit_leak=True), get_method("promo"), split, inter, cpu, env=env)
    assert audited["audit"] is True and audited["method"]["variant"] == "audit_leak=true"
    assert calls == [False, False, True], "a leaky backbone must be trained separately"


def test_finetune_leaves_the_cached_backbone_untouched(data):
    inter, split = data
    env = _env(data)
    backbone, _ = env.fitted(get_method("dssm-sasrec"), {}, 0, "quick")
    before = {k: v.clone() for k, v in backbone.net.state_dict().items()}
    sas_before = {k: v.clone() for k, v in backbone.sasrec.net.state_dict().items()}
    rec, _ = run_trial(spec_for("finetune", split), get_method("finetune"), split, inter, torch.device("cpu"), env=env)
    assert rec["status"] == "ok", rec.get("traceback")
    for k, v in backbone.net.state_dict().items():
        assert torch.equal(v, before[k])
    for k, v in backbone.sasrec.net.state_dict().items():
        assert torch.equal(v, sas_before[k])


@pytest.mark.parametrize("name", ["promo-i", "promo-f", "promo-if", "promo-m", "promo-t"])
def test_ablations_run(data, name):
    inter, split = data
    rec, vec = run_trial(spec_for(name, split), get_method(name), split, inter, torch.device("cpu"), env=_env(data))
    assert rec["status"] == "ok", rec.get("traceback")
    pfpe = rec["fit"]["loss_parts"]["pfpe"][0]
    if name in ("promo-i", "promo-f", "promo-if"):  # no feedback input: no L_pfpe
        assert pfpe == 0.0
    else:  # promo-m and promo-t keep the feedback and L_pfpe (log 2 per dimension at most for empty lists)
        assert pfpe > 0.0


def test_scored_pinnacle_and_l1_options_run(data):
    inter, split = data
    rec, _ = run_trial(spec_for("promo", split, pinnacle="scored", pfpe="l1"), get_method("promo"), split, inter,
                       torch.device("cpu"), env=_env(data))
    assert rec["status"] == "ok", rec.get("traceback")
    assert rec["method"]["variant"] == "pfpe=l1,pinnacle=scored"
    bad, _ = run_trial(spec_for("promo", split, pinnacle="scored", audit_leak=True), get_method("promo"), split,
                       inter, torch.device("cpu"), env=_env(data))
    assert bad["status"] == "failed" and "not offered" in bad["error"]


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
def test_quick_promo_on_ml100k_trains_and_beats_random(embedded_available):
    from benchmark.data.loader import load_dataset
    from benchmark.protocols import get_split

    inter = load_dataset("ml-100k")
    split, _ = get_split(inter, "loo")
    env = TrialEnvironment(split, inter, torch.device("cpu"))
    rec, _ = run_trial(spec_for("promo", split), get_method("promo"), split, inter, torch.device("cpu"), env=env)
    assert rec["status"] == "ok", rec.get("traceback")
    loss = rec["fit"]["train_loss"]
    assert len(loss) >= 2 and loss[-1] < loss[0], f"training loss did not fall: {loss}"
    assert rec["metrics"]["test"]["all"]["hr@10"] > 0.15  # random is 10/101 = 0.099 in expectation


def test_backbone_user_vectors_in_blocks_equal_one_block(monkeypatch):
    """PROMO encodes every training row through dssm-sasrec's user tower at once; on KuaiRand (~1,300 user-feature
    columns) the gathered features alone were 7 GiB at 1.4M rows (issue 20), so the tower runs in blocks. The blocks
    must give the one-block numbers (ML-100K is one block)."""
    from types import SimpleNamespace

    import methods.dssm_sasrec as ds
    from methods.dssm import DSSMNet

    torch.manual_seed(0)
    fake = SimpleNamespace(net=DSSMNet(50, 20, 300, 4, 8, extra_user_dim=8), uf=torch.rand(50, 300))
    users, s_u = torch.randint(0, 50, (1000,)), torch.rand(1000, 8)
    with torch.no_grad():
        whole = ds.DSSMSASRec.user_vectors(fake, users, s_u)
        monkeypatch.setattr(ds, "FEATURE_BLOCK", 300 * 7)  # blocks of 7 rows
        blocks = ds.DSSMSASRec.user_vectors(fake, users, s_u)
    assert whole.shape == (1000, 8) and torch.allclose(whole, blocks, rtol=0, atol=1e-6)


def test_sasrec_history_vectors_deduplicated_in_blocks_equal_one_block(monkeypatch):
    """`SASRec.history_vectors` encodes each distinct window once; finding them sorted copies of every row's window
    (2.3 GiB at 1.4M KuaiRand-scale rows, issue 20), so it now deduplicates in blocks of rows. Each row's vector
    must be the one-block vector, repeated windows across blocks included."""
    from types import SimpleNamespace

    import methods.sasrec as S

    torch.manual_seed(0)
    net = S.SASRecEncoder(30, 8, 6, 1, 2, 0.1, 0.0)
    fake = SimpleNamespace(net=net)
    fake.history_vectors = lambda *a: S.SASRec.history_vectors(fake, *a)  # its blocks call it back
    base = torch.randint(1, 30, (40, 6))
    rows = base[torch.randint(0, 40, (3000,))]  # 3,000 rows over 40 distinct windows
    mask = torch.rand(3000, 6) > 0.3
    monkeypatch.setattr(S, "DEDUP_ROWS", 10)
    whole = S.SASRec.history_vectors(fake, rows, mask)
    monkeypatch.setattr(S, "DEDUP_BLOCK", 701)  # 5 blocks, the last one shorter
    blocks = S.SASRec.history_vectors(fake, rows, mask)
    assert whole.shape == (3000, 8) and torch.allclose(whole, blocks, rtol=0, atol=1e-6)


@pytest.mark.filterwarnings("ignore:There is a performance drop")  # vmap runs the fused attention seed by seed
def test_seeds_trained_as_one_batched_model_reproduce_their_separate_training(data):
    """perf/batched_seeds.py (issue 20's stretch) claims each seed of the stacked model draws the same
    initialisation, batch order and dropout masks as its own trial, so its numbers are the separate run's up to
    rounding; with the fused attention (vmap runs it seed by seed) they agree to float precision, with the matmul
    attention to rounding, over several epochs with early stopping."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "perf" / "batched_seeds.py"
    spec = importlib.util.spec_from_file_location("batched_seeds", path)
    bs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bs)
    inter, split = data
    env = TrialEnvironment(split, inter, torch.device("cpu"))
    options = {**get_method("sasrec").resolved_defaults("paper"), "epochs": 4, "patience": 2, "max_len": 8,
               "dropout": 0.3}
    seeds = [0, 1, 2]
    apart = [bs.separate(env, options, s) for s in seeds]
    for math_attention, tol in ((False, 1e-6), (True, 0.05)):  # 0.05: two of 40 events
        together, _, _ = bs.batched(env, options, seeds, math_attention)
        for a, b in zip(apart, together):
            assert (a["epochs"], a["best"]) == (b["epochs"], b["best"]) or math_attention, (a, b)
            assert abs(a["valid"] - b["valid"]) <= tol and abs(a["test"] - b["test"]) <= tol, (math_attention, a, b)
    assert len({round(a["test"], 6) for a in apart}) > 1  # the seeds differ: a mix-up of streams would show
