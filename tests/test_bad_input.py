"""Bad input is a one-line error that names what is wrong and what was expected, before any trial starts."""

from __future__ import annotations

import pytest

from benchmark.cli import main
from benchmark.config import parse_value, resolve_options
from benchmark.errors import BenchError
from benchmark.registry import get_method, registry
from benchmark import budgets
from conftest import write_grouplens


@pytest.fixture
def data(tmp_path):
    return write_grouplens(tmp_path / "ml-100k")


def _run(tmp_path, data, *extra: str) -> list[str]:
    return ["run", "--dataset", "ml-100k", "--data-dir", str(data), "--allow-unverified", "--seeds", "1",
            "--results", str(tmp_path / "r"), "--no-progress", *extra]


@pytest.mark.parametrize("setting, message", [
    ("dssm.lr=nan", "--set dssm.lr=nan: expected a finite number"),
    ("dssm.lr=inf", "--set dssm.lr=inf: expected a finite number"),
    ("dssm.lr=-0.1", "--set dssm.lr=-0.1: expected a value in (0, inf)"),
    ("dssm.epochs=0", "--set dssm.epochs=0: expected a value in [1, inf)"),
    ("dssm.epochs=-5", "--set dssm.epochs=-5: expected a value in [1, inf)"),
    ("dssm.batch_size=0", "--set dssm.batch_size=0: expected a value in [1, inf)"),
    ("dssm.dim=-1", "--set dssm.dim=-1: expected a value in [1, inf)"),
    # text options outside their declared choices
    ("popular.count=sometimes", "--set popular.count=sometimes: expected one of causal, whole, got 'sometimes'"),
    ("deepfm.multi_hot=max", "--set deepfm.multi_hot=max: expected one of mean, sum"),
    ("promo.pinnacle=best", "--set promo.pinnacle=best: expected one of recent, scored"),
])
def test_out_of_range_method_options_stop_the_run_before_any_trial(tmp_path, data, capsys, setting, message):
    method = setting.split(".")[0]
    assert main(_run(tmp_path, data, "--method", method, "--protocol", "loo", "--set", setting)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list((tmp_path / "r").rglob("*.json"))  # nothing ran, nothing stored


@pytest.mark.parametrize("setting, message", [
    ("warmup.warm_lr=inf", "warm_lr: expected a finite number"),
    ("warmup.warm_lr=0", "warm_lr: expected a value in (0, inf)"),
    ("loo.split_seed=-1", "split_seed: expected a value in [0, inf)"),
    ("cold.cold_share=1.5", "cold_share: expected a value in [0, 1)"),
])
def test_out_of_range_protocol_parameters_are_clear_errors(tmp_path, data, capsys, setting, message):
    protocol = setting.split(".")[0]
    assert main(_run(tmp_path, data, "--method", "random", "--protocol", protocol, "--protocol-set", setting)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_more_negatives_than_items_is_said_and_bounded(tmp_path, data, capsys):
    """loo draws up to n_negatives; beyond the catalogue the arrays stay catalogue-sized (100000 once exhausted
    memory) and the run says what it did."""
    assert main(_run(tmp_path, data, "--method", "random", "--protocol", "loo", "--protocol-set",
                     "loo.n_negatives=100000")) == 0
    assert "n_negatives=100000 but ml-100k has 150 items: each event gets at most 149 negatives" in \
        capsys.readouterr().err
    from benchmark.data.loader import load_dataset
    from benchmark.protocols import get_split

    split, _ = get_split(load_dataset("ml-100k", str(data)), "loo", {"n_negatives": 100000})
    assert split.part("test")["cand"].shape[1] == 150  # sized by the catalogue, not by n_negatives


def test_every_built_in_default_is_in_range():
    for name in sorted(registry()):
        cls = get_method(name)
        for budget in (*budgets.SCHEDULES, "paper-d32", "quick-d8"):
            resolve_options(name, cls.defaults, budgets.overrides(cls, budget), {}, cls.option_ranges)


def test_list_and_object_options_parse_as_json():
    assert parse_value("[10.0, 1]", [1.0], "--set m.lambdas") == [10.0, 1]
    assert parse_value('{"a": 1}', {}, "--set m.x") == {"a": 1}
    with pytest.raises(BenchError, match=r"--set m.lambdas: expected a list in JSON, e.g. \[1.0\]"):
        parse_value("10", [1.0], "--set m.lambdas")


@pytest.fixture
def stored(tmp_path, data):
    """A results folder with random (ok) and a method whose every trial fails, on loo, 2 seeds."""
    plugin = tmp_path / "fails.py"
    plugin.write_text("from benchmark.method import Method\n\nclass Fails(Method):\n    name = 'fails'\n"
                      "    def fit(self, data):\n        raise RuntimeError('boom')\n"
                      "    def score(self, batch):\n        return batch['cand'].float()\n")
    args = ["run", "--include", str(plugin), "--method", "random", "popular", "fails", "--protocol", "loo",
            "--dataset", "ml-100k", "--data-dir", str(data), "--allow-unverified", "--seeds", "2", "--results",
            str(tmp_path / "r"), "--no-progress"]
    assert main(args) == 1
    return tmp_path / "r"


@pytest.mark.parametrize("extra, message", [
    (["--metrics", "hr@0"], "--metrics 'hr@0': expected hr@K, ndcg@K, recall@K (K at least 1)"),
    (["--metrics", "auc"], "--metrics auc: no stored protocol has them"),
    (["--reference", "nosuch"], "--reference nosuch: no stored trials of that method; stored: fails, popular, random"),
    (["--methods", "random,nosuch"], "--methods: no stored trials of nosuch"),
])
def test_report_refuses_what_it_cannot_show(tmp_path, stored, capsys, extra, message):
    assert main(["report", "--results", str(stored), "--out", str(tmp_path / "rep"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not list((tmp_path / "rep").rglob("*.tex"))


def test_report_out_and_results_must_be_usable_folders(tmp_path, stored, capsys):
    (tmp_path / "a-file").write_text("x")
    assert main(["report", "--results", str(stored), "--out", str(tmp_path / "a-file")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["report", "--results", str(tmp_path / "typo"), "--out", str(tmp_path / "rep")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "typo").exists()
    assert main(["status", "--results", str(tmp_path / "typo")]) == 2


def test_a_failed_row_is_named_in_the_table_notes(tmp_path, stored):
    assert main(["report", "--results", str(stored), "--out", str(tmp_path / "rep"), "--format", "md,latex"]) == 0
    md = (tmp_path / "rep" / "tables" / "loo-paper-test-all.md").read_text()
    tex = (tmp_path / "rep" / "tables" / "loo-paper-test-all-document.tex").read_text()
    for text in (md, tex):
        assert "fails: every trial failed (seeds 0, 1; first error: RuntimeError: boom); no cells shown" in text


def _lines(path, edit):
    lines = path.read_text(encoding="latin-1").splitlines()
    edit(lines)
    path.write_text("".join(f"{x}\n" for x in lines), encoding="latin-1")


@pytest.mark.parametrize("file, edit, message", [
    ("u.data", lambda ls: ls.__setitem__(slice(None), []), "u.data: file is empty"),
    ("u.data", lambda ls: ls.__setitem__(slice(None), ls + ls), "u.data, line 2401: repeats line 1"),
    ("u.data", lambda ls: ls.__setitem__(3, "1\t2\t99\t880000000"), "u.data, line 4, field 'rating': expected a "
                                                                   "value in [1, 5]"),
    ("u.data", lambda ls: ls.__setitem__(3, "1\t2\t-3\t880000000"), "u.data, line 4, field 'rating'"),
    ("u.data", lambda ls: ls.__setitem__(-1, ls[-1][: ls[-1].rindex("\t") + 3]),
     "u.data, line 2400, field 'timestamp': expected a value in [873072000 (1997-09-01), 893980800 (1998-05-01)]"),
    ("u.data", lambda ls: ls.__setitem__(0, ls[0] + "\t7"), "u.data, line 1: 5 fields, more than the 4 expected"),
    ("u.item", lambda ls: ls.__setitem__(2, ls[2][:-1] + "2"), "u.item, line 3, field \"genre flag 'Western'\": "
                                                              "expected a value in [0, 1]"),
])
def test_bad_data_values_name_the_file_line_and_field(tmp_path, data, capsys, file, edit, message):
    _lines(data / file, edit)
    assert main(_run(tmp_path, data, "--method", "random", "--protocol", "loo")) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_data_fetch_and_the_cache_refuse_a_file_where_a_folder_belongs(tmp_path, data, capsys, monkeypatch):
    assert main(["data", "fetch", "ml-100k", "--data-dir", str(data / "u.data")]) == 2
    assert "u.data: is a file; expected a folder" in capsys.readouterr().err
    monkeypatch.setenv("PROMO_BENCH_CACHE", str(data / "u.data"))
    assert main(_run(tmp_path, data, "--method", "random", "--protocol", "loo")) == 2
    assert "$PROMO_BENCH_CACHE" in capsys.readouterr().err


def test_the_drill_finds_no_traceback_and_no_silent_case():
    """perf/drill.py: 60-odd bad inputs through the real CLI, each must end in a clear message."""
    import subprocess
    import sys
    from pathlib import Path

    drill = Path(__file__).resolve().parents[1] / "perf" / "drill.py"
    done = subprocess.run([sys.executable, str(drill)], capture_output=True, text=True, timeout=900)
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0 and "0 tracebacks, 0 silent" in summary, done.stdout[-3000:] + done.stderr[-2000:]
