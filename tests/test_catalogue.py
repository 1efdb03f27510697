"""Full-catalogue ranking beside sampled ranking (issue 36 part 3): the candidate rule against a naive build, and
both evaluations from one fit."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

from benchmark import metrics as M
from benchmark.catalogue import Catalogue
from benchmark.method import Method, TrainData
from benchmark.protocols import loo, temporal
from benchmark.trial import TrialEnvironment, TrialSpec, run_trial
from tests.conftest import synthetic
from tests.test_loo_causal import late_items

SMALL = {"tau": 5, "n_negatives": 8, "history_len": 6, "feedback_len": 3}


@pytest.fixture(scope="module", params=["loo", "temporal"])
def built(request):
    # few users and bursts of 8 rows per second, so a user's other positives share an event's second
    late = late_items()
    burst = synthetic(n_users=12, n_items=late.n_items, n_rows=len(late), seed=1, tie_every=8)
    inter = replace(late, user=burst.user, time=burst.time)
    module = {"loo": loo, "temporal": temporal}[request.param]
    return inter, module.build(inter, module.resolve_params(SMALL))


def test_catalogue_is_every_existing_item_minus_the_users_positives_so_far(built):
    """Naive build: an item is a candidate when the part's context holds a row of it strictly before the event and
    the user has no positive of it strictly before the event's time (the target itself stays; a positive in the
    event's own second stays a candidate, so cand_mask never shows it)."""
    inter, split = built
    order = np.argsort(inter.time, kind="stable")
    u, i, t, y = inter.user[order], inter.item[order], inter.time[order], inter.label[order]
    for part in ("valid", "test"):
        ctx = split.arrays[f"context/{part}"]
        cat = Catalogue(split, inter, part)
        ev = split.part(part)
        rows = []
        for block in cat.blocks():
            rows += [(block["cand"][e], block["cand_mask"][e], block["fb_pos"][e], block["fb_pos_mask"][e])
                     for e in range(len(block["user"]))]
        assert len(rows) == len(ev["user"]) > 0
        same_second = 0
        for e, (cand, mask, fbp, fbp_mask) in enumerate(rows):
            user, item, time = ev["user"][e], ev["item"][e], ev["time"][e]
            assert cand[0] == item and sorted(cand.tolist()) == list(range(inter.n_items))
            exists = {int(x) for x in i[ctx & (t < time)]}
            seen = {int(x) for x in i[(u == user) & (y == 1) & (t < time)]} - {int(item)}
            assert {int(c) for c in cand[mask]} == ({int(item)} | exists) - seen
            same_second += int(((u == user) & (y == 1) & (t == time) & (i != item)).any())
            # the candidate's positive feedback: its latest users strictly before the event, from the context
            c = int(cand[5])
            want = u[ctx & (i == c) & (y == 1) & (t < time)][-3:].tolist()
            assert fbp[5][fbp_mask[5]].tolist() == want
        assert same_second > 0  # the log has positives in an event's own second: the rule above is exercised


class CountingMethod(Method):
    """Scores by item id (deterministic), counting fits and the candidate widths it was asked to score."""

    name = "counting"
    protocols = frozenset({"loo"})
    fits = 0

    def fit(self, data: TrainData) -> dict[str, Any]:
        type(self).fits += 1
        self.widths: set[int] = set()
        return {}

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.widths.add(int(batch["cand"].shape[1]))
        return batch["cand"].float()


def test_full_and_sampled_metrics_come_from_one_fit(built):
    inter, split = built
    CountingMethod.fits = 0
    env = TrialEnvironment(split, inter, torch.device("cpu"))
    spec = TrialSpec(method="counting", method_version="1", origin="test", options={}, variant="", budget="quick",
                     dataset=inter.dataset, protocol=split.meta["protocol"], split_hash=split.hash, seed=0)
    record, vectors = run_trial(spec, CountingMethod, split, inter, torch.device("cpu"), env=env)
    assert record["status"] == "ok", record.get("error")
    assert CountingMethod.fits == 1
    assert {"test", "test.full", "valid", "valid.full"} <= set(record["metrics"])
    for part in ("valid", "test"):
        ev = split.part(part)
        # item-id scores: the positive's rank among the part's candidates, computed here by hand
        s = ((ev["cand"][:, 1:] > ev["cand"][:, :1]) & ev["cand_mask"][:, 1:]).sum(1)
        assert np.array_equal(vectors[f"{part}.s"], s)
        cat = Catalogue(split, inter, part)
        full_s = np.concatenate([((b["cand"][:, 1:] > b["cand"][:, :1]) & b["cand_mask"][:, 1:]).sum(1)
                                 for b in cat.blocks()])
        assert np.array_equal(vectors[f"{part}.full.s"], full_s)
        assert (vectors[f"{part}.full.e"] == 0).all()
        assert (vectors[f"{part}.full.n_cand"] >= vectors[f"{part}.n_cand"]).all()
        hr = M.metric_from_counts("hr@10", full_s, np.zeros_like(full_s))
        assert record["metrics"][f"{part}.full"]["all"]["hr@10"] == pytest.approx(hr.mean())
    assert record["timing"]["full_rank_s"] > 0
