"""Plugins: a method from a local file (--include), the template package installed by entry point, a broken
plugin that never breaks other methods, name clashes, and what ``validate`` catches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import registry as reg
from benchmark.cli import main
from tests.conftest import GROUPLENS_100K

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "examples" / "plugin-template"
RIDGE = TEMPLATE / "promo_bench_template" / "content_ridge.py"


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch):
    """Every test starts from the installed entry points only (an --include registers into the registry)."""
    monkeypatch.setattr(reg, "_REGISTRY", None)


@pytest.fixture
def ml100k_args(ml100k) -> list[str]:
    """--data-dir where recbole's embedded copy is absent."""
    from benchmark.data.card import get_card
    from benchmark.data.sources import embedded_dir

    return [] if embedded_dir(get_card("ml-100k")) is not None else ["--data-dir", str(GROUPLENS_100K)]


BROKEN = '''
import torch
from benchmark.method import Method


class NaNScores(Method):
    name = "nan-scores"
    protocols = frozenset({"loo"})

    def fit(self, data):
        return {"train_loss": [float("nan")]}

    def score(self, batch):
        return torch.full(batch["cand"].shape, float("nan"))


class Restless(Method):
    name = "restless"
    protocols = frozenset({"loo"})

    def fit(self, data):
        import numpy as np
        self.bias = torch.as_tensor(np.random.default_rng().random(), dtype=torch.float32)  # unseeded
        return {}

    def score(self, batch):
        return torch.zeros(batch["cand"].shape) + self.bias
'''


EXTRA = '''"""A plugin protocol: loo with 5 sampled negatives. And a dataset card shipped by a package."""
from benchmark.protocols import loo as _loo

CARD = "{card}"
NAME, VERSION = "loo-k5", "1"
LIKE = "loo"  # every method that supports loo also runs under this protocol
EVALUATION, IMPLICIT, VALID_METRIC, PROVIDES = _loo.EVALUATION, _loo.IMPLICIT, _loo.VALID_METRIC, _loo.PROVIDES
DEFAULTS = dict(_loo.DEFAULTS, n_negatives=5)


def resolve_params(card, overrides=None):
    return _loo.merge(NAME, DEFAULTS, card, overrides)


def split_hash(interactions_hash, params):
    return _loo.identity_hash(NAME, VERSION, interactions_hash, params)


def build(inter, params):
    split = _loo.build(inter, params)
    split.meta.update(protocol=NAME, split_hash=split_hash(inter.canonical_hash(), params))
    return split
'''


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
def test_include_registers_validates_runs_and_reports(tmp_path, capsys, ml100k_args):
    assert main(["list", "--include", str(RIDGE)]) == 0
    out = capsys.readouterr().out
    assert "content-ridge" in out and f"local {RIDGE.name} sha256:" in out
    assert main(["validate", "content-ridge", "--include", str(RIDGE)] + ml100k_args) == 0
    out = capsys.readouterr().out
    for check in ("loo: deterministic with a seed", "loo: fit does not read evaluation data",
                  "cold: score shape and dtype", "PASSED"):
        assert check in out
    results = tmp_path / "results"
    assert main(["run", "--include", str(RIDGE), "--method", "content-ridge", "popular", "--protocol", "loo",
                 "--dataset", "ml-100k", "--seeds", "1", "--budget", "quick", "--results", str(results),
                 "--no-progress"] + ml100k_args) == 0
    record = json.loads(next((results / "ml-100k" / "loo" / "content-ridge").glob("*.json")).read_text())
    assert record["method"]["origin"].startswith(f"local {RIDGE.name} sha256:")
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "rep"), "--format", "latex",
                 "--reference", "content-ridge"]) == 0
    tex = "\n".join(p.read_text() for p in (tmp_path / "rep").rglob("*.tex"))
    assert "Methods from plugins: content-ridge (local" in tex and str(RIDGE.parent) not in tex  # no local path


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
def test_validate_reports_nan_and_nondeterminism(tmp_path, capsys, ml100k_args):
    broken = tmp_path / "broken.py"
    broken.write_text(BROKEN)
    assert main(["validate", "nan-scores", "--include", str(broken)] + ml100k_args) == 1
    out = capsys.readouterr().out
    assert "[FAIL] loo: no NaN or inf in scores" in out and "[FAIL] loo: finite training loss" in out
    assert main(["validate", "restless", "--include", str(broken)] + ml100k_args) == 1
    out = capsys.readouterr().out
    assert "[FAIL] loo: deterministic with a seed" in out
    # noise is not a leak: the evaluation-data check says it cannot tell, rather than raising a false alarm
    assert "[skip] loo: fit does not read evaluation data: cannot tell" in out


def test_include_errors_name_the_file_and_both_sources(tmp_path, capsys):
    bad = tmp_path / "syntax.py"
    bad.write_text("def nope(:\n")
    assert main(["list", "--include", str(bad)]) == 2
    assert f"--include {bad}: importing it failed: SyntaxError" in capsys.readouterr().err
    clash = tmp_path / "clash.py"
    clash.write_text(BROKEN.replace('name = "nan-scores"', 'name = "popular"'))
    assert main(["list", "--include", str(clash)]) == 2
    err = capsys.readouterr().err
    assert "method name 'popular' is registered twice: by promo-bench" in err and f"local {clash.name}" in err
    assert main(["list", "--include", str(tmp_path / "missing.py")]) == 2


def _cli(args: list[str], path: Path, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ, PYTHONPATH=os.pathsep.join([str(path), str(REPO)]), **env)
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=REPO, env=full, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
def test_installed_template_lists_validates_and_runs(tmp_path, ml100k_args):
    pytest.importorskip("setuptools", reason="installing the template offline (--no-build-isolation) needs setuptools")
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(target), str(TEMPLATE)], capture_output=True, text=True,
                         timeout=600)
    assert pip.returncode == 0, pip.stderr
    # a second plugin whose module is missing: listed as unavailable, never breaking the others
    broken = target / "broken_plugin-0.1.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (broken / "entry_points.txt").write_text("[promo_bench.methods]\nghost = no_such_module:Ghost\n")

    # a dataset card and a protocol from a third package, through their entry-point groups
    (target / "extra_plugin.py").write_text(EXTRA.format(card=REPO / "tests" / "fixtures" / "tiny-ml.toml"))
    extra = target / "extra_plugin-0.2.dist-info"
    extra.mkdir()
    (extra / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-plugin\nVersion: 0.2\n")
    (extra / "entry_points.txt").write_text("[promo_bench.datasets]\ntiny-ml = extra_plugin:CARD\n\n"
                                            "[promo_bench.protocols]\nloo-k5 = extra_plugin\n")

    listed = _cli(["list", "--verbose"], target)
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith("content-ridge"))
    assert "promo-bench-plugin-template 0.1.0 (plugin)" in line and "ok: version 1" in line
    ghost = next(x for x in listed.stdout.splitlines() if x.startswith("ghost"))
    assert "broken-plugin 0.1 (plugin)" in ghost and "unavailable: ModuleNotFoundError" in ghost

    valid = _cli(["validate", "content-ridge"] + ml100k_args, target)
    assert valid.returncode == 0 and "PASSED" in valid.stdout, valid.stdout + valid.stderr
    results = tmp_path / "results"
    run = _cli(["run", "--method", "content-ridge", "--protocol", "loo", "--dataset", "ml-100k", "--seeds", "1",
                "--budget", "quick", "--results", str(results), "--no-progress"] + ml100k_args, target)
    assert run.returncode == 0, run.stderr
    record = json.loads(next(results.rglob("*.json")).read_text())
    assert record["method"]["origin"] == "promo-bench-plugin-template 0.1.0"

    protocols = _cli(["list", "protocols"], target)
    assert "loo-k5 (version 1): A plugin protocol" in protocols.stdout, protocols.stderr
    datasets = _cli(["data", "list"], target)
    assert "tiny-ml" in datasets.stdout, datasets.stderr
    fixture = REPO / "tests" / "fixtures" / "ml-1m"
    run = _cli(["run", "--method", "popular", "--protocol", "loo-k5", "--dataset", "tiny-ml", "--data-dir",
                str(fixture), "--allow-unverified", "--seeds", "1", "--results", str(results), "--no-progress"], target)
    assert run.returncode == 0, run.stderr
    record = json.loads(next((results / "tiny-ml" / "loo-k5").rglob("*.json")).read_text())
    assert record["protocol"]["params"]["n_negatives"] == 5

    off = _cli(["list"], target, PROMO_BENCH_DISABLE_PLUGIN_AUTOLOAD="1")
    assert off.returncode == 0 and "content-ridge" not in off.stdout and "popular" in off.stdout


def test_every_built_in_method_has_a_card_naming_its_protocols():
    """Doc drift guard: each built-in method's card (docs/methods/NAME.md; PROMO's ablations share promo.md) has a
    Protocols entry that names every protocol the class supports."""
    import re

    from benchmark.registry import get_method, registry

    for name, entry in registry().items():
        if not entry.builtin:
            continue
        card = REPO / "docs" / "methods" / f"{name.split('-')[0] if name.startswith('promo-') else name}.md"
        assert card.is_file(), f"{name}: no method card at {card}"
        text = card.read_text()
        match = re.search(r"\*\*Protocols:\*\*([^\n]*(?:\n  [^\n]*)*)|## Protocols\n\n([^\n]*)", text)
        assert match, f"{card}: no Protocols entry"
        named = set(re.findall(r"`(loo|cold|warmup)`", match.group(1) or match.group(2)))
        if "Warm-up protocol (`warmup`)" in text:
            named.add("warmup")
        missing = set(get_method(name).protocols) - named
        assert not missing, f"{card}: the Protocols entry does not name {sorted(missing)}"


def _plugin_protocol(base, name: str):
    """A plugin protocol module of ``base``'s evaluation kind under its own name (its splits say so)."""
    import types

    from benchmark.protocols.params import identity_hash, merge

    mod = types.ModuleType(f"plugin_{name.replace('-', '_')}")
    for attr in ("VERSION", "EVALUATION", "IMPLICIT", "VALID_METRIC", "PROVIDES", "DEFAULTS"):
        setattr(mod, attr, getattr(base, attr))
    mod.NAME, mod.LIKE = name, base.NAME

    def resolve_params(card, overrides=None):
        return merge(name, base.DEFAULTS, card, overrides)

    def split_hash(interactions_hash, params):
        return identity_hash(name, base.VERSION, interactions_hash, params)

    def build(inter, params):
        split = base.build(inter, params)
        split.meta.update(protocol=name, split_hash=split_hash(inter.canonical_hash(), params))
        return split

    mod.resolve_params, mod.split_hash, mod.build = resolve_params, split_hash, build
    return mod


@pytest.mark.parametrize("kind", ["sampled", "full", "pointwise"])
def test_a_plugin_protocol_of_each_evaluation_kind_reaches_a_latex_table(tmp_path, monkeypatch, kind):
    """The report finds a protocol's profile, metrics and subsets through its evaluation kind, never its name
    (issue 16: a full-ranking plugin protocol trained and stored fine, then failed with "metric 'hr@5' is not
    available")."""
    import torch

    from benchmark.plugins import Entry
    from benchmark.protocols import PROTOCOLS, cold, get_split, loo, warmup
    from benchmark.registry import get_method
    from benchmark.report.build import ReportOptions, build_reports
    from benchmark.store import ResultStore
    from benchmark.trial import TrialEnvironment, TrialSpec, run_trial
    from tests.conftest import synthetic

    base, overrides, want = {"sampled": (loo, {"tau": 5, "n_negatives": 20}, "HR@10"),
                             "full": (cold, {}, "Recall@20"),
                             "pointwise": (warmup, {"n_old": 110, "k": 3, "min_eval_rows": 5}, "AUC")}[kind]
    name = f"plugin-{kind}"
    module = _plugin_protocol(base, name)
    PROTOCOLS.entries()  # discover first, then add ours as an installed plugin would be
    monkeypatch.setitem(PROTOCOLS._entries, name, Entry("protocol", name, module.__name__, "my-plugin 1.0", False,
                                                       _obj=module))
    inter = synthetic(n_users=60, n_items=60, n_rows=6000, seed=4)
    split, _ = get_split(inter, name, overrides)
    assert split.meta["protocol"] == name
    env = TrialEnvironment(split, inter, torch.device("cpu"))
    store = ResultStore(tmp_path / "results")
    for method in ("random", "popular"):
        cls = get_method(method)
        for seed in range(2):
            spec = TrialSpec(method, cls.version, "test", cls.resolved_defaults("quick"), "", "quick", "ml-100k", name,
                             split.hash, seed)
            record, vectors = run_trial(spec, cls, split, inter, torch.device("cpu"), env=env)
            assert record["status"] == "ok", record.get("traceback")
            assert record["protocol"]["evaluation"] == kind
            store.write(record, vectors)
    written = build_reports(store, tmp_path / "reports", ReportOptions(["latex"], reference="popular"))
    tex = [p for p in written if p.suffix == ".tex" and name in p.name and not p.name.endswith("-document.tex")]
    assert tex, written
    assert any(want in p.read_text() for p in tex)


def test_a_plugin_reusing_a_built_in_name_is_refused_alone(monkeypatch, capsys):
    """It once blocked every list, validate and run; now only that entry is left out, with the fix named."""
    from importlib import metadata

    import benchmark.plugins as P
    import benchmark.registry as R

    real = metadata.entry_points

    def fake(**kw):
        eps = list(real(**kw))
        if kw.get("group") == R.GROUP:
            eps += [metadata.EntryPoint("popular", "somebody_else:Popular", R.GROUP),
                    metadata.EntryPoint("ghost", "no_such_module:Ghost", R.GROUP)]
        return eps

    monkeypatch.setattr(P.metadata, "entry_points", fake)
    monkeypatch.setattr(R, "_REGISTRY", None)
    monkeypatch.setattr(P, "_WARNED", set(), raising=False)
    try:
        assert main(["list"]) == 0
        out, err = capsys.readouterr()
        assert "warning: ignoring method 'popular' from" in err and "somebody_else:Popular" in err
        assert "give it another name" in err
        assert R.registry()["popular"].target == "methods.simple:PopularMethod"
        ghost = next(x for x in out.splitlines() if x.startswith("ghost"))
        assert "unavailable: ModuleNotFoundError" in ghost  # plain list names a broken plugin, no --verbose
    finally:
        R._REGISTRY = None
