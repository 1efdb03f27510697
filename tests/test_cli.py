"""End to end through the installed ``promo-bench`` console script, plus its bad-input messages."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess

import pytest

from benchmark.cli import main

EXE = shutil.which("promo-bench")


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    if EXE is None:
        pytest.skip("the promo-bench console script is not on PATH (pip install -e . first)")
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})


@pytest.mark.slow  # a real-data training: the second stage (`pytest -m slow`, .ci/run)
def test_run_all_quick_on_embedded_ml100k_then_resume(tmp_path, embedded_available):
    results, reports = tmp_path / "results", tmp_path / "reports"
    args = ["run", "--all", "--budget", "quick", "--seeds", "1", "--results", str(results),
            "--report-dir", str(reports), "--device", "cpu", "--no-progress"]
    from benchmark.registry import get_method, registry

    # every supported protocol of every installed method (not those an earlier test registered with --include in
    # this process: the console script below does not see them)
    # temporal runs every method that runs on loo (its LIKE)
    pairs = sorted((name, p) for name, entry in registry().items() if not entry.origin.startswith("local ")
                   for p in get_method(name).protocols | ({"temporal"} if "loo" in get_method(name).protocols
                                                           else set()))
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert f"done: {len(pairs)} ok, 0 failed" in first.stderr, first.stderr[-4000:]
    records = [json.loads(p.read_text()) for p in results.rglob("*.json")]
    assert sorted((r["method"]["name"], r["protocol"]["name"]) for r in records) == pairs
    assert {p for _, p in pairs} == {"loo", "temporal", "cold", "warmup"}
    for r in records:
        assert r["status"] == "ok" and r["env"]["device"] == "cpu" and "git_commit" in r["env"]
        assert (results / "ml-100k" / r["protocol"]["name"] / r["method"]["name"] / f"{r['trial_id']}.npz").is_file()
    with open(reports / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    for col in ("dataset", "protocol", "method", "split", "subset", "metric", "mean", "std", "n_seeds",
                "n_events", "variant"):
        assert col in rows[0]
    # loo and temporal: cold and warm for the model and at the event; cold: candidate sets; warmup: stages
    assert {r["subset"] for r in rows} == {"all", "cold-model", "warm-model", "cold-event", "warm-event", "cold", "warm",
                                           "base", "warm-a", "warm-b", "warm-c"}
    assert {r["split"] for r in rows} == {"valid", "test", "valid.full", "test.full"}
    pop = [r for r in rows if r["method"] == "popular" and r["split"] == "test" and r["subset"] == "all"
           and r["metric"] == "hr@10"]
    rnd = [r for r in rows if r["method"] == "random" and r["split"] == "test" and r["subset"] == "all"
           and r["metric"] == "hr@10"]
    assert float(pop[0]["mean"]) > float(rnd[0]["mean"]) + 0.1
    for protocol, subsets in (("loo", ("all", "cold-model", "warm-event", "cold-model-full")),
                              ("temporal", ("all", "cold-model", "all-full")), ("cold", ("all", "cold", "warm"))):
        for subset in subsets:
            for ext in (".tex", "-document.tex", ".md", ".csv", ".json"):
                assert (reports / "tables" / f"{protocol}-quick-test-{subset}{ext}").stat().st_size > 0
    plots = {p.name for p in (reports / "plots").iterdir()}
    for kind in ("metrics-ci-all", "over-k-cold-model", "cold-vs-warm", "score-distributions"):
        assert f"ml-100k-loo-quick-{kind}.png" in plots and f"ml-100k-loo-quick-{kind}.pdf" in plots
    for kind in ("metrics-ci-cold", "cold-vs-warm"):
        assert f"ml-100k-cold-quick-{kind}.png" in plots
    md = (reports / "summary.md").read_text()
    assert "ml-100k / loo / test / targets cold for the model" in md and "| popular" in md
    assert "ml-100k / temporal / test / targets cold for the model (fewer than tau positives in the training rows) " \
           "(full-catalogue ranking)" in md
    assert "ml-100k / cold / test / cold candidates" in md and "Recall@20" in md
    cold_tex = (reports / "tables" / "cold-quick-test-cold.tex").read_text()
    assert "Recall@20" in cold_tex and "dropoutnet" in cold_tex
    for stage in ("base", "warm-a", "warm-b", "warm-c"):
        assert "cvar" in (reports / "tables" / f"warmup-quick-test-{stage}.tex").read_text()
    assert "ml-100k-warmup-quick-over-stages.pdf" in plots
    assert "ml-100k / warmup / test: AUC per stage" in md and "metaemb" in md
    # the results page, written last and named last (issue 21), and the cold-start curve
    assert first.stderr.strip().splitlines()[-1] == f"results page: {reports / 'index.html'}"
    for protocol in ("loo", "temporal"):
        for tag in ("model", "event", "model-full", "event-full"):
            assert (reports / "tables" / f"{protocol}-quick-test-cold-start-curve-{tag}.md").stat().st_size > 0
    stages_tex = (reports / "tables" / "warmup-quick-test-stages-pooled-auc.tex").read_text()
    assert "warm-c" in stages_tex and "mwuf" in stages_tex
    stages_tested = (reports / "tables" / "warmup-quick-test-stages.tex").read_text()
    assert "ml-100k warm-a" in stages_tested and "cvar" in stages_tested

    second = run_cli(*args)
    n = len(pairs)
    assert second.returncode == 0 and f"{n} of {n} trials already stored" in second.stderr
    assert f"done: 0 ok, 0 failed, {n} already stored" in second.stderr

    status = run_cli("status", "--results", str(results))
    assert status.returncode == 0 and "dssm" in status.stdout


def test_variant_runs_stay_apart_in_the_report(tmp_path, grouplens_dir):
    results, out = tmp_path / "r", tmp_path / "out"
    base = ["run", "--method", "dssm", "--dataset", "ml-100k", "--data-dir", str(grouplens_dir), "--budget",
            "quick", "--seeds", "1", "--results", str(results), "--no-progress"]
    assert main(base + ["--set", "dssm.epochs=1"]) == 0
    assert main(base + ["--set", "dssm.lr=0.01", "--set", "dssm.epochs=1"]) == 0
    assert main(["report", "--results", str(results), "--out", str(out), "--format", "csv"]) == 0
    with open(out / "summary.csv") as fh:
        variants = {r["variant"] for r in csv.DictReader(fh)}
    assert variants == {"epochs=1", "epochs=1,lr=0.01"}


@pytest.mark.parametrize("args, message", [
    (["run", "--method", "nope"], "unknown method 'nope'"),
    (["run", "--method", "dssm", "--set", "dssm.lrr=1"], "unknown option of method 'dssm'"),
    (["run", "--method", "dssm", "--set", "dssm"], "expected METHOD.KEY=VALUE"),
    (["run", "--method", "popular", "--dataset", "ml-10x"], "unknown dataset 'ml-10x'"),
    (["run", "--method", "popular", "--device", "tpu"], "expected auto, cpu, cuda or cuda:N"),
    (["run"], "give --all, --method"),
    (["run", "--method", "popular", "--protocol-set", "loo.nope=1"], "--protocol-set loo.nope: unknown parameter"),
    (["run", "--method", "popular", "--protocol-set", "loo.tau=many"], "expected an integer"),
    (["report", "--format", "pdf"], "unsupported pdf"),
])
def test_bad_input_gets_one_clear_message(args, message, tmp_path, capsys):
    code = main(args + (["--results", str(tmp_path / "r")] if args[0] == "run" else
                        ["--results", str(tmp_path / "r"), "--out", str(tmp_path / "o")]))
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_audit_trials_are_labelled_in_every_table(tmp_path, grouplens_dir):
    results, out = tmp_path / "r", tmp_path / "out"
    base = ["run", "--method", "sasrec", "--dataset", "ml-100k", "--data-dir", str(grouplens_dir), "--budget",
            "quick", "--seeds", "1", "--results", str(results), "--no-progress", "--set", "sasrec.max_len=5"]
    assert main(base) == 0
    assert main(base + ["--set", "sasrec.audit_leak=true"]) == 0
    assert main(["report", "--results", str(results), "--out", str(out)]) == 0
    with open(out / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["variant"], r["audit"]) for r in rows} == {("max_len=5", "False"), ("audit_leak=true,max_len=5", "True")}
    md = (out / "summary.md").read_text()
    assert "sasrec (AUDIT: leaky windows)" in md


def test_protocol_option_gives_another_split(tmp_path, grouplens_dir):
    results = tmp_path / "r"
    base = ["run", "--method", "popular", "--dataset", "ml-100k", "--data-dir", str(grouplens_dir), "--seeds", "1",
            "--results", str(results), "--no-progress"]
    assert main(base + ["--protocol", "loo"]) == 0
    assert main(base + ["--protocol", "loo", "--protocol-set", "loo.candidates=all"]) == 0
    records = [json.loads(p.read_text()) for p in results.rglob("*.json")]
    assert len({r["protocol"]["split_hash"] for r in records}) == 2
    assert {r["protocol"]["params"]["candidates"] for r in records} == {"existing", "all"}


def test_cold_by_time_is_a_cold_protocol_option(tmp_path, grouplens_dir):
    results = tmp_path / "r"
    base = ["run", "--method", "popular", "--dataset", "ml-100k", "--data-dir", str(grouplens_dir), "--seeds", "1",
            "--results", str(results), "--no-progress", "--protocol", "cold"]
    assert main(base) == 0
    assert main(base + ["--cold-by", "time"]) == 0
    records = [json.loads(p.read_text()) for p in results.rglob("*.json")]
    assert {r["protocol"]["params"]["cold_by"] for r in records} == {"random", "time"}
    assert len({r["protocol"]["split_hash"] for r in records}) == 2


def test_bad_data_dir_and_unwritable_results(tmp_path, capsys):
    assert main(["run", "--method", "popular", "--dataset", "ml-100k", "--data-dir", str(tmp_path / "none"),
                 "--results", str(tmp_path / "r")]) == 2
    assert "not a folder" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "--method", "popular", "--results", str(blocker / "sub")]) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_list_shows_builtins_with_their_origin(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("random", "popular", "bpr-mf", "dssm"):
        assert name in out
    assert "promo-bench" in out
