"""Statistics against scipy and worked examples; table marks on crafted trials; LaTeX; plots."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as st

from benchmark import metrics as M
from benchmark.errors import BenchError
from benchmark.report import latex, render
from benchmark.report.build import ReportOptions, build_reports, build_suite_reports
from benchmark.report.collect import collect
from benchmark.report.events import EventCache, group_trials, rows_by_table
from benchmark.report.table import build_table
from benchmark.stats import bootstrap_ci, compare, holm, min_pvalue, paired_pvalue
from benchmark.store import ResultStore

GOLDEN = Path(__file__).parent / "golden"


# ---------------------------------------------------------------- statistics

def test_tests_agree_with_scipy():
    rng = np.random.default_rng(3)
    a = rng.random(60)
    b = a - 0.03 + rng.normal(0, 0.1, 60)
    assert paired_pvalue(a, b, "t") == pytest.approx(st.ttest_rel(a, b).pvalue)
    assert paired_pvalue(a, b, "wilcoxon") == pytest.approx(st.wilcoxon(a, b).pvalue)
    assert paired_pvalue(a, a, "t") == 1.0 and paired_pvalue(a, a, "wilcoxon") == 1.0


def test_permutation_test_exact_case_and_plus_one_correction():
    a, b = np.array([1.0, 2, 3, 4, 5]), np.zeros(5)
    assert paired_pvalue(a, b, "permutation") == pytest.approx(2 / 2**5)  # exact: all 32 sign flips
    big = np.full(40, 1.0)
    p = paired_pvalue(big, np.zeros(40), "permutation", n_resamples=999)
    assert p == pytest.approx(2 * (0 + 1) / (999 + 1))  # never 0: the observed statistic counts once


def test_holm_worked_example():
    # m = 4; sorted p 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.03, 0.06, max(0.06, 0.04) = 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])  # monotone: never below an earlier step


def test_bootstrap_ci_is_fixed_and_covers_the_mean():
    diff = np.random.default_rng(0).normal(0.1, 0.2, 200)
    lo, hi = bootstrap_ci(diff)
    assert lo < diff.mean() < hi and (lo, hi) == bootstrap_ci(diff)


def test_comparison_counts_and_power_guard():
    a, b = np.array([1.0, 0, 1, 1, 0, 1]), np.array([0.0, 0, 1, 0, 1, 0])
    c = compare("ref", "base", "hr@10", a, b, test="wilcoxon")
    assert (c.wins, c.ties, c.losses) == (3, 2, 1)
    assert c.rel_improvement == pytest.approx(100 * (4 / 6 - 2 / 6) / (2 / 6))
    assert min_pvalue("wilcoxon", 4) == pytest.approx(0.125) and not c.testable  # 4 non-zero pairs: p >= 0.125
    assert min_pvalue("t", 4) == 0.0


# ---------------------------------------------------------------- crafted trials

def write_trial(store: ResultStore, method: str, seed: int, hits: np.ndarray, cold: np.ndarray, *,
                variant: str = "", audit: bool = False, users: np.ndarray | None = None, scores: bool = False,
                version: str = "1") -> None:
    """A stored trial whose positive is ranked first (hit) or 50th (miss) on each test event."""
    n = len(hits)
    s = np.where(hits, 0, 50).astype(np.int64)
    e = np.zeros(n, dtype=np.int64)
    users = np.arange(n) if users is None else users
    per = M.all_metrics(s, e)
    vectors = {"test.s": s, "test.e": e, "test.cold_model": cold, "test.cold_event": cold, "test.user": users, "test.item": np.arange(n) + 100,
               **{f"test.{m}": v for m, v in per.items()}}
    if scores:
        rng = np.random.default_rng(seed)
        vectors.update({"test.scores": rng.normal(size=(n, 11)).astype(np.float32),
                        "test.cand_cold": rng.random((n, 11)) < 0.5, "test.cand_mask": np.ones((n, 11), bool)})
    rec = {"trial_id": f"{method}-{variant}-{audit}-{seed}-v{version}", "status": "ok", "seed": seed, "audit": audit,
           "dataset": {"name": "ml-100k"}, "protocol": {"name": "loo", "split_hash": "f" * 64},
           "method": {"name": method, "budget": "paper", "variant": variant, "version": version},
           "metrics": {"test": M.summarise(per, {"all": np.ones_like(cold), "cold-model": cold, "warm-model": ~cold})}}
    store.write(rec, vectors)


def crafted_store(tmp_path: Path, n: int = 200) -> ResultStore:
    rng = np.random.default_rng(0)
    store = ResultStore(tmp_path / "results")
    cold = rng.random(n) < 0.4
    base = rng.random(n)
    for seed in range(3):
        jitter = rng.random(n) < 0.02
        write_trial(store, "promo", seed, (base < 0.8) ^ jitter, cold)
        write_trial(store, "popular", seed, base < 0.6, cold)
        write_trial(store, "bpr-mf", seed, base < 0.6, cold)  # ties popular exactly
        write_trial(store, "random", seed, base < 0.1, cold)
        write_trial(store, "promo", seed, base < 0.95, cold, audit=True, variant="audit_leak=true")
    return store


def table_for(store: ResultStore, **kw):
    (rows,) = rows_by_table(group_trials(store)).values()
    args = dict(split="test", subset="all", metrics=["hr@10", "ndcg@10"], reference="promo")
    args.update(kw)
    return build_table(rows, EventCache(store), **args)


def test_marks_bold_underline_ties_and_dagger(tmp_path):
    table = table_for(crafted_store(tmp_path))
    by = {r.label: r for r in table.rows}
    ref, pop, bpr, rnd, audit = (by[k] for k in ("promo", "popular", "bpr-mf", "random", "promo [audit_leak=true] (AUDIT)"))
    assert table.reference == ref and table.extras == [audit]
    cell = table.cells
    assert cell[(ref, 0)].bold and cell[(ref, 0)].dagger
    assert cell[(pop, 0)].underline and cell[(bpr, 0)].underline  # a tie shares the mark
    assert not cell[(rnd, 0)].bold and not cell[(rnd, 0)].underline
    assert not cell[(audit, 0)].bold, "audit rows are never ranked"
    assert table.improvement[0] == pytest.approx(100 * (cell[(ref, 0)].mean - cell[(pop, 0)].mean)
                                                 / cell[(pop, 0)].mean)
    assert len(table.comparisons) == 3 * 2 and all(c.p_holm is not None for c in table.comparisons)


def test_baseline_better_than_reference_gets_the_other_mark(tmp_path):
    store = crafted_store(tmp_path)
    for seed in range(3):  # a baseline far better than promo on the same events
        write_trial(store, "oracle", seed, np.ones(200, bool), crafted_cold())
    table = table_for(store)
    by = {r.label: r for r in table.rows}
    assert table.cells[(by["oracle"], 0)].ddagger and not table.cells[(by["promo"], 0)].dagger
    assert table.cells[(by["oracle"], 0)].bold and table.cells[(by["promo"], 0)].underline


def test_lower_is_better_metrics_rank_the_other_way(tmp_path, monkeypatch):
    import benchmark.report.table as T

    monkeypatch.setattr(T, "LOWER_IS_BETTER", frozenset({"hr@10"}))
    table = table_for(crafted_store(tmp_path), reference=None)
    by = {r.label: r for r in table.rows}
    assert table.cells[(by["random"], 0)].bold and not table.cells[(by["random"], 1)].bold


def test_refuses_when_events_differ(tmp_path):
    store = crafted_store(tmp_path)
    n = 200
    for seed in range(3):
        write_trial(store, "shifted", seed, np.ones(n, bool), np.zeros(n, bool), users=np.arange(n) + 1)
    with pytest.raises(BenchError, match="different events"):
        table_for(store)


def test_too_few_events_are_not_marked(tmp_path):
    store = ResultStore(tmp_path / "r")
    cold = np.zeros(5, bool)
    write_trial(store, "promo", 0, np.ones(5, bool), cold)
    write_trial(store, "popular", 0, np.zeros(5, bool), cold)
    table = table_for(store, test="wilcoxon")
    assert not any(c.dagger for c in table.cells.values())
    assert table.notes and "cannot reach alpha" in table.notes[0]


def test_latex_escapes_names_and_matches_the_golden_file(tmp_path):
    assert latex.escape("a_b&c%d$e#f{g}~h^i\\") == (r"a\_b\&c\%d\$e\#f\{g\}\textasciitilde{}h\textasciicircum{}"
                                                   r"i\textbackslash{}")
    text = latex.tabular(table_for(crafted_store(tmp_path)))
    assert "|" not in text.split("\n")[0] and r"\toprule" in text and r"\bottomrule" in text
    golden = GOLDEN / "crafted-table.tex"
    if os.environ.get("PROMO_BENCH_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_markdown_csv_json_carry_the_same_table(tmp_path):
    table = table_for(crafted_store(tmp_path))
    md = render.markdown(table)
    assert "**promo**" in md and "Improv." in md and "†" in md
    import json

    payload = json.loads(render.as_json(table))
    assert payload["correction"] == "holm" and len(payload["comparisons"]) == 6
    assert render.csv(table).splitlines()[0].startswith("method,variant,audit,role,dataset,metric,mean")


def _need_tex(*classes: str) -> None:
    missing = [c for c in ("pdflatex",) if shutil.which(c) is None]
    if not missing and shutil.which("kpsewhich"):
        missing = [f for f in (*classes, "lmodern.sty") if not subprocess.run(
            ["kpsewhich", f], capture_output=True, text=True).stdout.strip()]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} missing in CI: .ci/run installs them from Debian")
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install texlive-latex-recommended "
                    f"texlive-latex-extra texlive-fonts-recommended texlive-publishers lmodern)")


def _compile(folder: Path, name: str, text: str, passes: int = 1) -> str:
    (folder / f"{name}.tex").write_text(text)
    for _ in range(passes):  # a second pass resolves \\ref
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"], cwd=folder,
                              capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stdout[-2000:]
    assert (folder / f"{name}.pdf").stat().st_size > 1000
    return (folder / f"{name}.log").read_text(errors="replace")


def test_generated_latex_compiles_with_pdflatex(tmp_path):
    _need_tex()
    log = _compile(tmp_path, "table", latex.document(table_for(crafted_store(tmp_path)), "tab:crafted"))
    assert "Overfull" not in log


TEMPLATES = {  # the two-column templates a paper uses; each fragment is \\input the way its README says
    # lmodern: Debian's acmart falls back from Libertine (texlive-fonts-extra, 1.4 GB) to bitmap fonts otherwise
    "acmart": "\\documentclass[sigconf]{acmart}\n\\usepackage{lmodern}\\settopmatter{printacmref=false}\\setcopyright{none}"
              "\\renewcommand\\footnotetextcopyrightpermission[1]{}\\title{Tables}\n",
    "IEEEtran": "\\documentclass[conference]{IEEEtran}\n\\usepackage{booktabs,graphicx}\n",
}


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_generated_table_fits_acmart_and_ieeetran_with_no_overfull_box(tmp_path, template):
    """Issue 21: each table's one-column float and its two-column float compile in the template, caption above,
    label resolvable, and no box overflows (the fragment shrinks a table only when TeX finds it too wide)."""
    _need_tex("acmart.cls", "IEEEtran.cls")
    from benchmark.suites import PAPER
    from tests.test_paper_suite import paper_store

    store = crafted_store(tmp_path)
    out = tmp_path / "reports"
    written = build_reports(store, out, ReportOptions(formats=["latex"]))
    # suite tables as the paper suite writes them: 14 rows with the suite's long notes (sizes, schedules, remarks)
    # and a failed seed, on one dataset (a table at its natural width) and on two (one TeX shrinks)
    one = paper_store(tmp_path / "one", datasets=("ml-100k",), seeds=5)
    one.write({"trial_id": "diverged", "status": "failed", "seed": 4, "error": "ValueError: score() returned NaN",
               "dataset": {"name": "ml-100k"}, "protocol": {"name": "loo", "split_hash": "m" * 64},
               "method": {"name": "dropoutnet", "budget": "paper", "variant": "", "version": "1"}}, None)
    written += build_suite_reports(one, out, PAPER, ReportOptions(formats=["latex"]))
    written += build_suite_reports(paper_store(tmp_path / "two"), tmp_path / "std" / "two", PAPER,
                                   ReportOptions(formats=["latex"]))  # compiled with the std tables: own labels
    written += build_reports(store, tmp_path / "std", ReportOptions(formats=["latex"], std=True))
    floats = sorted(p for p in written if p.suffix == ".tex" and not p.stem.endswith(("-document", "-tabular", "-notes")))
    assert len(floats) >= 10
    refs = []
    for p in floats:
        text = p.read_text()
        assert text.index("\\caption{") < text.index("\\begin{tabular}")  # ACM and IEEE: caption above
        label = text.split("\\label{", 1)[1].split("}", 1)[0]
        refs.append(label)
    plain = [r for p, r in zip(floats, refs) if p.is_relative_to(out)]
    assert len(set(plain)) == len(plain)  # stable and unique within a report (suites carry their name)
    for name, root in (("plain", out), ("std", tmp_path / "std")):
        body = "".join(f"\\input{{{p}}}\nSee Table~\\ref{{{label}}}.\n"
                       + (f"\\input{{{p.with_name(p.stem + '-notes.tex')}}}\n"
                          if p.with_name(p.stem + "-notes.tex").is_file() else "") + "\\clearpage\n"
                       for p, label in zip(floats, refs) if p.is_relative_to(root))
        log = _compile(tmp_path, name, TEMPLATES[template] + "\\begin{document}\n" + body + "\\end{document}\n",
                       passes=2)
        overfull = [line for line in log.splitlines() if line.startswith("Overfull")]  # \\hbox and \\vbox
        assert not overfull, (name, overfull[:5])
        assert "undefined references" not in log and "multiply defined" not in log, name


def test_a_table_too_wide_for_a_column_shrinks_only_then(tmp_path):
    table = table_for(crafted_store(tmp_path))
    if shutil.which("pdflatex") and subprocess.run(["kpsewhich", "acmart.cls"], capture_output=True,
                                                   text=True).stdout.strip():
        wide = table_for(crafted_store(tmp_path / "wide"), metrics=["hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10",
                                                                     "ndcg@20", "mrr"])
        wide.show_std = True
        for fit, overflows in (("none", True), ("shrink", False)):
            doc = TEMPLATES["acmart"] + "\\begin{document}\n" + latex.fragment(wide, "tab:w", fit=fit) + "\\end{document}\n"
            log = _compile(tmp_path, f"wide-{fit}", doc)
            assert ("Overfull \\hbox" in log) is overflows, fit
    shrink, resize, none = (latex.fragment(table, "tab:x", fit=f) for f in latex.FITS)
    assert "\\ifdim\\wd0>\\linewidth\\resizebox{\\linewidth}{!}{\\box0}\\else\\box0\\fi" in shrink
    assert "\\resizebox{\\linewidth}{!}{%" in resize and "resizebox" not in none
    assert latex.fragment(table, "tab:x", star=True).count("\\begin{table*}[t]") == 1
    short = table.short_caption()
    assert short.endswith(".") and short.count(". ") == 0 and short in latex.fragment(table, "tab:x")
    assert table.caption() == f"{short} {table.caption_details()}"


def test_report_writes_every_format_and_the_plots(tmp_path):
    store = crafted_store(tmp_path)
    for seed in range(3):
        write_trial(store, "dssm", seed, np.ones(200, bool), crafted_cold(), scores=True)
    out = tmp_path / "reports"
    written = build_reports(store, out, ReportOptions(formats=["latex", "md", "csv", "json"], plots=True))
    names = {p.name for p in written}
    for subset in ("all", "cold-model", "warm-model", "cold-event", "warm-event"):
        for ext in (".tex", "-document.tex", ".md", ".csv", ".json"):
            assert f"loo-paper-test-{subset}{ext}" in names
    pngs = [p for p in written if p.suffix == ".png"]
    kinds = {"metrics-ci", "over-k", "cold-vs-warm", "score-distributions"}
    assert all(any(k in p.name for p in pngs) for k in kinds)
    for p in written:
        assert p.stat().st_size > 0


def test_figures_are_paper_ready(tmp_path, monkeypatch):
    """Issue 21: no titles (the caption file says what the figure shows and what its bars carry), TrueType fonts
    embedded as Type 42 (no bitmap Type 3), one column (3.3 in) or the page (7 in) wide, and cold against warm as
    lift over the random row (chance), so unequal candidate sets cannot mislead."""
    import matplotlib.image
    import matplotlib.pyplot as plt

    from benchmark.report import plots

    store = crafted_store(tmp_path)
    figures = []
    real_close = plt.close
    monkeypatch.setattr(plots.plt, "close", lambda fig=None: (figures.append(fig), real_close(fig)))
    written = build_reports(store, tmp_path / "reports", ReportOptions(formats=["md"], plots=True))
    assert figures and all(f._suptitle is None and not any(ax.get_title() for ax in f.axes) for f in figures)
    for png in [p for p in written if p.suffix == ".png"]:
        assert matplotlib.image.imread(png).shape[1] == round(plots.WIDTHS["column"] * plots.PAPER_RC["savefig.dpi"])
        caption = png.with_suffix(".txt").read_text()
        assert caption.strip() and ("seeds and events" in caption or "one seed each" in caption)
        pdf = png.with_suffix(".pdf").read_bytes()
        assert b"/Type3" not in pdf and b"/CIDFontType2" in pdf  # TrueType, embedded as Type 42
    cvw = next(p for p in written if p.name.endswith("cold-vs-warm.txt")).read_text()
    assert "divided by the random row's value on the same subset" in cvw
    wide = build_reports(store, tmp_path / "wide", ReportOptions(formats=["md"], plots=True, figure_width="page"))
    png = next(p for p in wide if p.name.endswith("over-k-all.png"))
    assert matplotlib.image.imread(png).shape[1] == round(plots.WIDTHS["page"] * plots.PAPER_RC["savefig.dpi"])


def test_cold_vs_warm_lift_divides_by_random_on_each_subset(tmp_path):
    from benchmark.report import plots
    from benchmark.report.events import group_trials

    store = crafted_store(tmp_path)
    rows = group_trials(store)
    cache = EventCache(store)
    rnd = next(r for k, r in rows.items() if k.method == "random")
    promo = next(r for k, r in rows.items() if k.method == "promo" and not k.audit)
    shown, lifts, normalised = plots.lift_over_chance([promo, rnd], cache, "test", "hr@10")
    assert normalised and shown == [promo]  # random is the unit, not a row
    for sub in ("cold", "warm"):
        name = f"{sub}-model"  # a sampled protocol's cold and warm subsets count the training rows
        want = cache.per_seed(promo, "test", name, "hr@10").mean() / cache.per_seed(rnd, "test", name, "hr@10").mean()
        mean, lo, hi = lifts[promo.key.label][sub]
        assert mean == pytest.approx(want) and lo <= mean <= hi
    shown, raw, normalised = plots.lift_over_chance([promo], cache, "test", "hr@10")
    assert not normalised and raw[promo.key.label]["cold"][0] == pytest.approx(
        cache.per_seed(promo, "test", "cold-model", "hr@10").mean())


def crafted_cold() -> np.ndarray:
    return np.random.default_rng(0).random(200) < 0.4


def test_superseded_method_versions_never_mix_into_a_row(tmp_path, capsys):
    store = crafted_store(tmp_path)
    n = 200
    for seed in range(3):  # an older bpr-mf whose every event is a miss
        write_trial(store, "bpr-mf", seed, np.zeros(n, bool), np.zeros(n, bool), version="0")
    groups = group_trials(store)
    bpr = [row for key, row in groups.items() if key.method == "bpr-mf"]
    assert len(bpr) == 1 and sorted(bpr[0].seeds) == [0, 1, 2]
    frame, _ = collect(store)
    assert "bpr-mf v0 (current v1) (3 trials)" in capsys.readouterr().err
    assert frame[(frame.method == "bpr-mf") & (frame.metric == "hr@10")]["value"].min() > 0.5


def test_full_ranking_tables_offer_only_the_stored_metrics():
    from benchmark.report.profiles import profile

    assert profile("cold").available(["hr@5", "recall@20", "ndcg@10"]) == ["recall@20", "ndcg@10"]
    assert profile("loo").available(["hr@5", "recall@20"]) == ["hr@5", "recall@20"]  # any K from stored ranks
    assert profile("cold").unit == "users" and profile("loo").subset_noun == "targets"


def test_identical_per_seed_vectors_are_ties_whatever_the_storage_order(tmp_path):
    """Seed means are taken in seed order and rounding noise is a tie: two methods with the same per-seed
    vectors are "identical", never a significant difference (issue 16: bpr-mf against content-knn once
    printed a dagger with Holm p = 0.04 from ~1e-16 differences)."""
    rng = np.random.default_rng(1)
    n = 300
    store = ResultStore(tmp_path / "results")
    cold = rng.random(n) < 0.4
    per_seed = [(np.zeros(n, dtype=np.int64), rng.integers(0, 40, n)) for _ in range(3)]  # tie groups: fractions
    # trial ids (the store's order) list promo's seeds as 0, 1, 2 and the baseline's as 2, 1, 0
    for method, ids in (("promo", ["a0", "a1", "a2"]), ("bpr-mf", ["z0", "y1", "x2"])):
        for seed, (s, e) in enumerate(per_seed):
            per = M.all_metrics(s, e)
            vectors = {"test.s": s, "test.e": e, "test.cold_model": cold, "test.cold_event": cold, "test.user": np.arange(n),
                       "test.item": np.arange(n) + 100, **{f"test.{m}": v for m, v in per.items()}}
            rec = {"trial_id": ids[seed], "status": "ok", "seed": seed, "audit": False,
                   "dataset": {"name": "ml-100k"}, "protocol": {"name": "loo", "split_hash": "f" * 64},
                   "method": {"name": method, "budget": "paper", "variant": "", "version": "1"},
                   "metrics": {"test": M.summarise(per, {"all": np.ones_like(cold), "cold-model": cold, "warm-model": ~cold})}}
            store.write(rec, vectors)
    (rows,) = rows_by_table(group_trials(store)).values()
    assert all(r.seeds == [0, 1, 2] for r in rows.values())
    table = build_table(rows, EventCache(store), split="test", subset="all",
                        metrics=["hr@5", "hr@10", "ndcg@10", "mrr"], reference="promo")
    assert table.comparisons and all(c.identical and not c.significant and c.diff == 0 for c in table.comparisons)
    assert not any(cell.dagger or cell.ddagger for cell in table.cells.values())
    assert any("identical on every one of the 300 events" in n for n in table.notes)
    # and the tolerance alone, on a crafted 1e-16 difference
    a = rng.random(n)
    c = compare("ref", "base", "hr@10", a, a + np.where(rng.random(n) < 0.5, 1e-16, -1e-16))
    assert c.identical and c.ties == n and c.p == 1.0 and not c.testable


def test_a_row_holds_one_trial_per_seed(tmp_path):
    """Two stored trials of one seed (same version and code, other ids: an option added with its old default)
    were both averaged, so seed 0 counted twice in DropoutNet's paper-suite row; and a failed trial that a later
    ok trial of the same seed replaced was still reported as failed."""
    from benchmark.report.events import completeness_notes, group_trials

    store = ResultStore(tmp_path / "results")
    base = {"status": "ok", "audit": False, "dataset": {"name": "ml-100k"},
            "protocol": {"name": "loo", "split_hash": "f" * 64},
            "method": {"name": "dropoutnet", "budget": "paper", "variant": "", "version": "2"}, "metrics": {}}
    for tid, seed, finished, status in (("a", 0, "2026-01-01", "ok"), ("b", 0, "2026-01-02", "ok"),
                                        ("c", 1, "2026-01-01", "failed"), ("d", 1, "2026-01-03", "ok")):
        store.write(dict(base, trial_id=tid, seed=seed, finished=finished, status=status), {"test.s": np.zeros(2)})
    (row,) = group_trials(store).values()
    assert row.seeds == [0, 1] and [p.stem for p in row.paths] == ["b", "d"] and row.failed == []
    assert any("seed 0 stored more than once" in n for n in completeness_notes([row]))


@pytest.mark.parametrize("value", [0.1, 0.2, 0.7])
def test_a_constant_rows_interval_contains_its_mean_so_its_error_bar_draws(value):
    """run --all ended in `'xerr' must not contain negative values`: popular's and bpr-mf's cold Recall@20 do not
    vary, and the resampled means fell 2.8e-17 below the mean. The interval must contain the mean it is drawn
    around."""
    import matplotlib.pyplot as plt

    from benchmark.stats import hierarchical_bootstrap_cis

    x = np.full((3, 50), value)
    (lo, hi), = hierarchical_bootstrap_cis([x])
    mean = float(x.mean())
    assert lo <= mean <= hi and hi - lo < 1e-12
    fig, ax = plt.subplots()
    ax.errorbar(mean, 0, xerr=[[mean - lo], [hi - mean]])  # raises on a negative distance
    plt.close(fig)


def test_bootstrap_intervals_in_blocks_equal_one_block(monkeypatch):
    """The hierarchical bootstrap draws its event resamples in blocks (a report at 14M KuaiRand-scale rows peaked at
    8.7 GiB on one resamples x events matrix, issue 20); the blocks draw the same stream, so every interval equals
    the one-block interval exactly."""
    import benchmark.stats as stats

    rng = np.random.default_rng(1)
    arrays = [rng.random((3, 997)), (rng.random((3, 997)) > 0.6).astype(float), np.zeros((0, 0))]
    whole = stats.hierarchical_bootstrap_cis(arrays, n_resamples=200)
    monkeypatch.setattr(stats, "BOOT_BLOCK", 997 * 7)  # blocks of 7 resamples, the last one shorter
    blocks = stats.hierarchical_bootstrap_cis(arrays, n_resamples=200)
    assert whole[:2] == blocks[:2] and all(np.isnan(v) for v in blocks[2])
    assert whole[0][0] < whole[0][1]


def test_each_cold_and_warm_subset_selects_its_own_events(tmp_path):
    """Swapping the cold and warm masks, or the two counts, in the evaluator or the report changes these cells (issue
    36: before it no test noticed a swap). PROMO hits exactly the warm-for-the-model targets; the at-event flag marks
    another set of events."""
    store = ResultStore(tmp_path / "results")
    n = 120
    model = np.arange(n) % 4 == 0
    event = np.arange(n) % 3 == 0
    for seed in range(2):
        for method, hits in (("promo", ~model), ("popular", event)):
            s = np.where(hits, 0, 50).astype(np.int64)
            e = np.zeros(n, dtype=np.int64)
            per = M.all_metrics(s, e)
            vectors = {"test.s": s, "test.e": e, "test.cold_model": model, "test.cold_event": event,
                       "test.user": np.arange(n), "test.item": np.arange(n), **{f"test.{m}": v for m, v in per.items()}}
            rec = {"trial_id": f"{method}-{seed}", "status": "ok", "seed": seed, "audit": False,
                   "dataset": {"name": "ml-100k"}, "protocol": {"name": "loo", "split_hash": "f" * 64},
                   "method": {"name": method, "budget": "paper", "variant": "", "version": "1"},
                   "metrics": {"test": M.summarise(per, {"all": np.ones(n, bool)})}}
            store.write(rec, vectors)
    rows = group_trials(store)
    cache = EventCache(store)
    want = {"cold-model": (0.0, 30, event[model].mean()), "warm-model": (1.0, 90, event[~model].mean()),
            "cold-event": ((~model)[event].mean(), 40, 1.0), "warm-event": ((~model)[~event].mean(), 80, 0.0)}
    for subset, (promo_hr, n_events, popular_hr) in want.items():
        table = build_table(rows, cache, split="test", subset=subset, metrics=["hr@10"], reference="promo")
        assert table.columns[0].n_events == n_events, subset
        cells = {k.method: table.cells[(k, 0)].mean for k in table.rows}
        assert cells["promo"] == pytest.approx(promo_hr) and cells["popular"] == pytest.approx(popular_hr), subset
        assert {"cold-model": "for the model", "cold-event": "at the event"}.get(subset, "") in table.short_caption()


def test_full_ranking_tables_and_the_rank_agreement_match_a_hand_computed_example(tmp_path):
    """Four rows: sampled HR@10 orders them promo > bpr-mf > dssm > popular, full ranking promo > dssm > bpr-mf >
    popular. By hand: of the 6 pairs 5 agree and 1 (bpr-mf/dssm) flips, so Kendall's tau = (5 - 1) / 6 = 0.67."""
    from benchmark.report.table import rank_agreement

    store = ResultStore(tmp_path / "results")
    n = 60
    sampled_hits = {"promo": 50, "bpr-mf": 40, "dssm": 30, "popular": 20}
    full_hits = {"promo": 30, "bpr-mf": 10, "dssm": 20, "popular": 5}
    for seed in range(2):
        for method in sampled_hits:
            s = np.where(np.arange(n) < sampled_hits[method], 0, 50).astype(np.int64)
            fs = np.where(np.arange(n) < full_hits[method], 0, 500).astype(np.int64)
            e = np.zeros(n, dtype=np.int64)
            cold = np.arange(n) % 2 == 0
            vectors = {"test.s": s, "test.e": e, "test.full.s": fs, "test.full.e": e, "test.cold_model": cold,
                       "test.cold_event": cold, "test.user": np.arange(n), "test.item": np.arange(n)}
            rec = {"trial_id": f"{method}-{seed}", "status": "ok", "seed": seed, "audit": False,
                   "dataset": {"name": "ml-100k"}, "protocol": {"name": "loo", "split_hash": "f" * 64},
                   "method": {"name": method, "budget": "paper", "variant": "", "version": "1"},
                   "metrics": {"test": M.summarise(M.all_metrics(s, e), {"all": np.ones(n, bool)})}}
            store.write(rec, vectors)
    rows, cache = group_trials(store), EventCache(store)
    sampled = build_table(rows, cache, split="test", subset="all", metrics=["hr@10"], reference="promo")
    full = build_table(rows, cache, split="test.full", subset="all", metrics=["hr@10"], reference="promo")
    assert {k.method: full.cells[(k, 0)].mean for k in full.rows}["dssm"] == pytest.approx(20 / 60)
    assert "full-catalogue ranking" in full.short_caption() and "sampled negatives" in sampled.short_caption()
    (note,) = rank_agreement(sampled, full)
    assert "Kendall's tau-b 0.67" in note and "order flips: bpr-mf/dssm" in note and note.count("/") == 1
    written = build_reports(store, tmp_path / "reports", ReportOptions(formats=["md"]))
    names = {p.name for p in written}
    assert "loo-paper-test-all.md" in names and "loo-paper-test-all-full.md" in names
    for name in ("loo-paper-test-all.md", "loo-paper-test-all-full.md"):
        assert "order flips: bpr-mf/dssm" in (tmp_path / "reports" / "tables" / name).read_text()
