"""The capacity-matched regime (issue 19 part 2): ``SCHEDULE-dD`` gives every method and every backbone it fetches
one size, and is part of the trial id and the fitted-cache key."""

from __future__ import annotations

import pytest
import torch

from benchmark import budgets
from benchmark.cli import main
from benchmark.errors import BenchError
from benchmark.registry import get_method
from benchmark.suites import MATCHED_DIM, get_suite
from benchmark.trial import TrialEnvironment, run_trial
from tests.test_trials import data, spec_for  # noqa: F401  (the fixture)


def test_budget_forms_and_clear_errors():
    assert budgets.parse("paper") == ("paper", None)
    assert budgets.parse("quick-d8") == ("quick", 8)
    for bad in ("fast", "paper-d0", "paper-d32x", "paper-32", "paper-d99999"):
        with pytest.raises(BenchError, match=rf"--budget '{bad}': expected one of quick, paper, optionally with -dD"):
            budgets.parse(bad)


def test_cli_refuses_a_bad_budget_in_one_line(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--method", "popular", "--budget", "paper-dx"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --budget" in err and "paper-d32" in err


def test_size_option_is_the_first_numeric_one():
    assert budgets.size_option(get_method("heater").defaults) == "rank"  # its "hidden" lists layer widths
    assert budgets.size_option(get_method("bpr-mf").defaults) == "dim"
    assert budgets.size_option(get_method("promo").defaults) == "hidden"
    assert budgets.size_option(get_method("popular").defaults) is None


def test_matched_suite_sizes_every_row_and_every_backbone_it_uses():
    suite = get_suite("paper-matched")
    assert budgets.parse(suite.budget) == ("paper", MATCHED_DIM)
    assert suite.protocol_options == get_suite("paper-sampled").protocol_options  # one change against sampled
    todo = list(suite.all_methods)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        cls = get_method(name)
        options = cls.resolved_defaults(suite.budget)
        key = budgets.size_option(cls.defaults)
        if key is not None:
            assert options[key] == MATCHED_DIM, name
        todo += list(getattr(cls, "uses", ()))
    assert {"sasrec", "dssm-sasrec", "bpr-mf", "deepfm"} <= seen


def test_a_matched_trial_trains_its_backbones_at_the_size_and_has_its_own_id(data):  # noqa: F811
    inter, split = data
    env = TrialEnvironment(split, inter, torch.device("cpu"))
    spec = spec_for("promo", split, budget="quick-d8")
    assert spec.trial_id != spec_for("promo", split, budget="quick").trial_id
    assert spec.options["hidden"] == 8
    rec, _ = run_trial(spec, get_method("promo"), split, inter, env.device, env=env)
    assert rec["status"] == "ok", rec.get("error")
    assert rec["capacity"]["size_option"] == "hidden" and rec["capacity"]["size"] == 8
    for name in ("sasrec", "dssm-sasrec"):  # fetched by promo's trial under its budget, so now in memory
        inst, info = env.fitted(get_method(name), {}, 0, "quick-d8")
        assert info["cache"] == "memory" and inst.options["dim"] == 8, name
    sasrec, _ = env.fitted(get_method("sasrec"), {}, 0, "quick-d8")
    assert {p.shape[-1] for p in sasrec.net.parameters() if p.dim() == 2} >= {8}
    unmatched, info = env.fitted(get_method("sasrec"), {}, 0, "quick")
    assert info["cache"] == "trained" and unmatched.options["dim"] == get_method("sasrec").defaults["dim"]
