"""A trial's failure stays that trial's: odd fit info, sys.exit() and infinite scores never stop a run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmark.cli import main
from benchmark.store import ResultStore, json_safe
from conftest import write_grouplens

PLUGIN = '''
import sys
import numpy as np
import torch
from benchmark.method import Method

class _Base(Method):
    version = "1"
    protocols = frozenset({"loo", "cold"})
    def score(self, batch):
        return torch.rand(batch["cand"].shape, generator=self.ctx.generator)
    def score_all(self, batch):
        return torch.rand((len(batch["user"]), self.ctx.n_items), generator=self.ctx.generator)

class OddInfo(_Base):
    """fit info as a careless plugin writes it: NumPy and torch scalars, an array, a NaN loss."""
    name = "odd-info"
    def fit(self, data):
        return {"loss": np.float64(0.5), "steps": np.int64(3), "norm": torch.tensor(2.0),
                "curve": np.arange(3), "train_loss": [0.7, float("nan")], "when": object()}

class Exits(_Base):
    name = "exits"
    def fit(self, data):
        sys.exit(3)

class Infinite(_Base):
    name = "infinite"
    def fit(self, data):
        return {}
    def score(self, batch):
        return torch.full(batch["cand"].shape, float("inf"))
    def score_all(self, batch):
        return torch.full((len(batch["user"]), self.ctx.n_items), float("inf"))
'''


@pytest.fixture
def plugin_run(tmp_path):
    data = write_grouplens(tmp_path / "ml-100k")
    plugin = tmp_path / "bad_plugins.py"
    plugin.write_text(PLUGIN)

    def run(*methods: str, protocol: str = "loo") -> int:
        return main(["run", "--include", str(plugin), "--method", *methods, "--protocol", protocol, "--dataset",
                     "ml-100k", "--data-dir", str(data), "--allow-unverified", "--seeds", "1", "--results",
                     str(tmp_path / "r"), "--no-progress"])
    return run, ResultStore(tmp_path / "r")


def _records(store):
    return {rec["method"]["name"]: rec for _, rec in store.records()}


def test_odd_fit_info_and_sys_exit_stay_inside_their_trials(plugin_run):
    run, store = plugin_run
    assert run("exits", "odd-info", "random") == 1  # one failed trial: exit status 1, the run went on
    recs = _records(store)
    assert recs["exits"]["status"] == "failed" and "SystemExit(3)" in recs["exits"]["error"]
    odd = recs["odd-info"]
    assert odd["status"] == "ok" and recs["random"]["status"] == "ok"
    assert odd["fit"]["loss"] == 0.5 and odd["fit"]["steps"] == 3 and odd["fit"]["norm"] == 2.0
    assert odd["fit"]["curve"] == [0, 1, 2] and odd["fit"]["train_loss"] == [0.7, None]
    assert odd["nonfinite"] == ["fit.train_loss[1]"] and any(c.startswith("fit.when") for c in odd["converted"])


@pytest.mark.parametrize("protocol", ["loo", "cold"])
def test_infinite_scores_fail_alike_under_every_protocol(plugin_run, protocol):
    run, store = plugin_run
    assert run("infinite", protocol=protocol) == 1
    rec = _records(store)["infinite"]
    assert rec["status"] == "failed" and "NaN or infinite" in rec["error"]


def test_json_safe_lists_what_it_changed():
    value, nonfinite, converted = json_safe({"a": np.float32(1.5), "b": [float("inf")], "c": torch.ones(2)})
    assert value == {"a": 1.5, "b": [None], "c": [1.0, 1.0]} and nonfinite == ["b[0]"]
    assert len(converted) == 2
    json.dumps(value, allow_nan=False)


def test_validate_names_what_run_would_convert_in_fit_info():
    from benchmark.validate import _json_info

    assert _json_info("loo:", {"loss": 0.5, "epochs": 3}).ok is True
    check = _json_info("loo:", {"loss": np.float32(0.5), "curve": [1.0, float("nan")]})
    assert check.ok is False and "non-finite curve[1]" in check.detail and "loss (numpy.float32)" in check.detail
    assert _json_info("loo:", None).ok is False
