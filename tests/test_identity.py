"""Identity tracks everything that can change a number: content features, harness code, an included file's
content, the split and the seed; and a report never averages what different code or data produced (issue 16)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from benchmark import identity
from benchmark import registry as reg
from benchmark.cli import main
from benchmark.fitted import FittedCache
from benchmark.registry import get_method
from benchmark.store import ResultStore
from tests.conftest import GROUPLENS_100K
from tests.test_trials import spec_for

PLUGIN = '''
import torch
from benchmark.method import Method


class Constant(Method):
    name = "constant-scorer"
    protocols = frozenset({"loo"})

    def fit(self, data):
        return {}

    def score(self, batch):
        return torch.full(batch["cand"].shape, VALUE) + 0.01 * batch["cand"].float()
'''


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch):
    monkeypatch.setattr(reg, "_REGISTRY", None)


def test_trial_id_holds_features_harness_and_an_included_files_content(monkeypatch):
    from benchmark.protocols import loo
    from tests.conftest import synthetic

    split = loo.build(synthetic(), loo.resolve_params({"tau": 5, "n_negatives": 8}))
    base = replace(spec_for("popular", split), features="a" * 64)
    assert replace(base, features="b" * 64).trial_id != base.trial_id
    local = replace(base, origin="local /x/plugin.py sha256:aaaaaaaaaaaa")
    assert replace(base, origin="local /x/plugin.py sha256:bbbbbbbbbbbb").trial_id != local.trial_id
    assert replace(base, origin="local /moved/plugin.py sha256:aaaaaaaaaaaa").trial_id == local.trial_id
    assert replace(base, origin="promo-bench 9.9.9").trial_id == replace(base, origin="promo-bench 0.1.0").trial_id
    assert replace(base, origin="some-plugin 1.0").trial_id != replace(base, origin="some-plugin 1.1").trial_id
    before = base.trial_id
    monkeypatch.setattr(identity, "harness_hash", lambda: "edited-harness")
    monkeypatch.setattr("benchmark.trial.harness_hash", lambda: "edited-harness")
    assert base.trial_id != before


def test_harness_hash_reads_every_listed_file_and_changes_with_any_of_them(tmp_path):
    for name in identity.HARNESS_FILES:
        assert (identity.PACKAGE / name).is_file(), name
    files = []
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
        files.append(tmp_path / name)
    h0 = identity.files_hash(files, tmp_path)
    (tmp_path / "b.py").write_text("x = 2\n")
    assert identity.files_hash(files, tmp_path) != h0
    (tmp_path / "b.py").write_bytes(b"x = 1\r\n")  # a Windows checkout hashes the same
    assert identity.files_hash(files, tmp_path) == h0


def test_fitted_backbone_key_holds_split_seed_features_harness_and_options(monkeypatch):
    cls = get_method("sasrec")
    opts = cls.resolved_defaults("quick")
    key = FittedCache.key(cls, opts, "quick", "s" * 64, 0, "f" * 64)
    others = {FittedCache.key(cls, opts, "quick", "t" * 64, 0, "f" * 64),
              FittedCache.key(cls, opts, "quick", "s" * 64, 1, "f" * 64),
              FittedCache.key(cls, opts, "quick", "s" * 64, 0, "g" * 64),
              FittedCache.key(cls, opts, "paper", "s" * 64, 0, "f" * 64),
              FittedCache.key(cls, dict(opts, audit_leak=True), "quick", "s" * 64, 0, "f" * 64)}
    monkeypatch.setattr("benchmark.fitted.harness_hash", lambda: "edited-harness")
    others.add(FittedCache.key(cls, opts, "quick", "s" * 64, 0, "f" * 64))
    assert key not in others and len(others) == 6


@pytest.fixture
def grouplens_copy(tmp_path) -> Path:
    if not (GROUPLENS_100K / "u.data").is_file():
        pytest.skip(f"real ML-100K GroupLens files not found at {GROUPLENS_100K} (../shared is absent)")
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in ("u.data", "u.item", "u.user"):
        shutil.copy(GROUPLENS_100K / name, folder / name)
    return folder


def _run(args: list[str], capsys) -> str:
    assert main(args) == 0
    return capsys.readouterr().err


def test_changed_features_or_an_edited_include_never_serve_a_stored_result(tmp_path, grouplens_copy, capsys):
    """The issue's drill: content-knn on the real data, then the same command on a copy whose genres changed,
    into the same results folder; and a plugin file edited between two runs."""
    results = tmp_path / "results"
    common = ["--dataset", "ml-100k", "--data-dir", str(grouplens_copy), "--protocol", "loo", "--seeds", "1",
              "--budget", "quick", "--results", str(results), "--no-progress", "--allow-unverified"]
    _run(["run", "--method", "content-knn"] + common, capsys)
    lines = (grouplens_copy / "u.item").read_text(encoding="latin-1").splitlines()
    moved = []
    for line in lines:  # every film's genre flags shifted by one place
        f = line.split("|")
        moved.append("|".join(f[:5] + f[6:] + f[5:6]))
    (grouplens_copy / "u.item").write_text("\n".join(moved) + "\n", encoding="latin-1")
    err = _run(["run", "--method", "content-knn"] + common, capsys)
    assert "trials already stored in" not in err
    recs = [json.loads(p.read_text()) for p in (results / "ml-100k" / "loo" / "content-knn").glob("*.json")]
    assert len(recs) == 2 and recs[0]["dataset"]["features_sha256"] != recs[1]["dataset"]["features_sha256"]
    # the report shows one content-knn row: the newest features' trial; the older is named and left out
    kept = [r for _, r in ResultStore(results).current_records(warn=False) if r["method"]["name"] == "content-knn"]
    assert len(kept) == 1 and kept[0]["finished"] == max(r["finished"] for r in recs)

    plugin = tmp_path / "constant.py"
    plugin.write_text(PLUGIN.replace("VALUE", "1.0"))
    _run(["run", "--include", str(plugin), "--method", "constant-scorer"] + common, capsys)
    reg._REGISTRY = None  # a new process
    plugin.write_text(PLUGIN.replace("VALUE", "2.0").replace("0.01 *", "-0.01 *"))
    err = _run(["run", "--include", str(plugin), "--method", "constant-scorer"] + common, capsys)
    assert "trials already stored in" not in err
    recs = [json.loads(p.read_text()) for p in (results / "ml-100k" / "loo" / "constant-scorer").glob("*.json")]
    assert len(recs) == 2
    hr = sorted(r["metrics"]["test"]["all"]["hr@10"] for r in recs)
    assert hr[0] != hr[1], "the edit reverses the ranking, so the numbers must differ"


def _record(store: ResultStore, trial_id: str, seed: int, harness: str, finished: str, commit: str = "c1",
            dirty: bool = False, protocol_version: str = "3") -> None:
    from benchmark import metrics as M

    n = 50
    s, e = np.arange(n) % 12, np.zeros(n, dtype=np.int64)
    per = M.all_metrics(s, e)
    cold = np.arange(n) % 3 == 0
    rec = {"trial_id": trial_id, "status": "ok", "seed": seed, "audit": False, "finished": finished,
           "identity": {"harness": harness, "features": "f", "code": ""},
           "env": {"git_commit": commit, "git_dirty": dirty},
           "dataset": {"name": "ml-100k"},
           "protocol": {"name": "loo", "split_hash": "f" * 64, "split": {"protocol_version": protocol_version}},
           "method": {"name": "popular", "budget": "paper", "variant": "", "version": "2"},
           "metrics": {"test": M.summarise(per, {"all": np.ones_like(cold), "cold-model": cold, "warm-model": ~cold})}}
    vectors = {"test.s": s, "test.e": e, "test.cold_model": cold, "test.cold_event": cold, "test.user": np.arange(n), "test.item": np.arange(n),
               **{f"test.{m}": v for m, v in per.items()}}
    store.write(rec, vectors)


def test_report_leaves_out_older_code_and_protocol_versions_and_notes_mixed_commits(tmp_path, capsys):
    from benchmark.report.events import EventCache, group_trials, rows_by_table
    from benchmark.report.table import build_table

    store = ResultStore(tmp_path / "results")
    _record(store, "old0", 0, "h-old", "2026-01-01T00:00:00")
    _record(store, "new0", 0, "h-new", "2026-02-01T00:00:00")
    _record(store, "new1", 1, "h-new", "2026-02-02T00:00:00", commit="c2", dirty=True)
    _record(store, "v2", 2, "h-new", "2026-02-03T00:00:00", protocol_version="2")
    kept = [r["trial_id"] for _, r in store.current_records()]
    assert sorted(kept) == ["new0", "new1"]
    err = capsys.readouterr().err
    assert "ml-100k/loo protocol v2 (current v3) (1 trials)" in err and "older harness code or features" in err
    (rows,) = rows_by_table(group_trials(store)).values()
    table = build_table(rows, EventCache(store), split="test", subset="all", metrics=["hr@10"], reference=None)
    assert any("different commits (c1, c2 (dirty))" in n for n in table.notes)
    assert any("uncommitted changes: popular" in n for n in table.notes)


@pytest.mark.parametrize("older, newer", [("9", "10"), ("1+sasrec:9", "1+sasrec:10"),
                                          ("2+dssm-sasrec:(1+sasrec:2)", "2+dssm-sasrec:(1+sasrec:10)"),
                                          ("2+bpr-mf:2", "3"), ("2", "2+bpr-mf:2"), ("2+bpr-mf:9", "3+bpr-mf:2")])
def test_a_method_version_with_its_backbones_orders_by_each_number(older, newer):
    """Reports keep a method's newest version (store.current_records); with backbone versions in it
    (registry.identity_version) a text comparison would call sasrec 10 older than sasrec 9."""
    from benchmark.store import _version_key

    assert _version_key(newer) > _version_key(older)
