"""``promo-bench report``: every table and plot from the stored trials, written atomically under ``--out``."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import BenchError
from benchmark.protocols import PROTOCOLS
from benchmark.evaluation import evaluator_for
from benchmark.report import curve, html, latex, plots, render
from benchmark.report.collect import aggregate, collect
from benchmark.report.events import EventCache, group_trials, rows_by_table
from benchmark.report.profiles import ALL_SUBSETS, profile
from benchmark.report.stages import latex as stages_latex
from benchmark.report.stages import stage_frame
from benchmark.report.table import SUBSET_WORDS, build_table, chosen_rows, is_tuned, rank_agreement
from benchmark.report.tables import write_report
from benchmark.stats import TESTS
from benchmark.files import atomic_write, writable_folder
from benchmark.store import ResultStore

FORMATS = ("latex", "md", "csv", "json", "html")
PAGE = "index.html"  # the results page (benchmark/report/html.py), at the top of the report folder
POOLED = "auc_pooled"


@dataclass
class ReportOptions:
    formats: list[str]
    reference: str | None = "promo"  # used only when present in a table
    reference_given: bool = False  # named on the command line: then it must have stored trials
    methods: list[str] | None = None
    metrics: list[str] | None = None
    subsets: list[str] | None = None
    test: str = "t"
    alpha: float = 0.05
    digits: int = 4
    plots: bool = False
    split: str = "test"
    tuned: bool = False  # suite tables: each method's tuned row (run --tuned) instead of its default one
    std: bool = False  # LaTeX cells carry ± the sample std over seeds
    latex_fit: str = "shrink"  # benchmark.report.latex.FITS
    figure_width: str = "column"  # benchmark.report.plots.WIDTHS: one column (3.3 in) or the page (7 in)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    atomic_write(path, lambda fh: fh.write(data))
    return path


def check_options(opts: ReportOptions) -> None:
    bad = set(opts.formats) - set(FORMATS)
    if bad:
        raise BenchError(f"--format: unsupported {', '.join(sorted(bad))}; available: {', '.join(FORMATS)}")
    if opts.test not in TESTS:
        raise BenchError(f"--test {opts.test!r}: expected one of {', '.join(TESTS)}")
    for s in opts.subsets or []:
        if s not in ALL_SUBSETS:
            raise BenchError(f"--subset {s!r}: expected one of {', '.join(ALL_SUBSETS)}")
    for m in opts.metrics or []:
        kind, _, k = m.partition("@")
        pointwise = m in ("auc", "logloss")
        if not pointwise and (kind not in ("hr", "ndcg", "recall", "mrr") or (kind != "mrr" and not k.isdigit())
                              or (kind == "mrr" and k) or (k.isdigit() and int(k) < 1)):
            raise BenchError(f"--metrics {m!r}: expected hr@K, ndcg@K, recall@K (K at least 1), mrr, auc or logloss")
    if not 0 < opts.alpha < 1:
        raise BenchError(f"--alpha {opts.alpha}: expected a number between 0 and 1")


def _check_names(opts: ReportOptions, groups) -> None:
    """Named methods and the reference must have stored trials: a typo is an error, not a silent table."""
    stored = sorted({k.method for k in groups})
    unknown = [m for m in opts.methods or [] if m not in stored]
    if unknown:
        raise BenchError(f"--methods: no stored trials of {', '.join(unknown)} in the results; stored: "
                         f"{', '.join(stored) or 'none'}")
    if opts.reference_given and opts.reference not in stored:
        raise BenchError(f"--reference {opts.reference}: no stored trials of that method; stored: "
                         f"{', '.join(stored) or 'none'} (or --reference none)")


def build_reports(store: ResultStore, out: Path, opts: ReportOptions) -> list[Path]:
    check_options(opts)
    writable_folder(out, "--out", "pass a writable folder for the report")  # before any work
    records = list(store.current_records())  # every record file is read and parsed once per report
    frame_all, failed = collect(store, records)
    failed_trials = list(failed)
    written = write_report(aggregate(frame_all), failed, out,
                           [f for f in opts.formats if f in ("md", "csv")])
    cache = EventCache(store)
    groups = group_trials(store, records)
    _check_names(opts, groups)
    n_tables = 0
    page_tables: list[html.PageTable] = []
    all_keys = plots.row_order([k for k, r in groups.items() if r.seeds])
    styles = plots.Styles(list(dict.fromkeys(k.label for k in all_keys)))
    for (protocol, budget), rows in rows_by_table(groups).items():
        if not any(r.seeds for r in rows.values()):  # nothing to show: say which trials failed, make no table
            failed = ", ".join(sorted({k.label for k in rows}))
            print(f"note: no {protocol} ({budget}) table: every trial failed ({failed}); see `promo-bench status`",
                  file=sys.stderr)
            continue
        methods_present = {k.method for k in rows}
        if opts.methods:
            unknown = set(opts.methods) - methods_present
            if unknown == set(opts.methods):
                continue
        reference = opts.reference if opts.reference in methods_present else None
        prof = profile(protocol)
        for subset in [s for s in opts.subsets or prof.subsets if s in prof.subsets]:
            metrics = prof.available(opts.metrics) if opts.metrics else list(prof.metrics)
            if not metrics:
                print(f"note: no {protocol} table: it stores only {', '.join(prof.stored or ())}, not "
                      f"{', '.join(opts.metrics or [])}", file=sys.stderr)
                break
            if not _subset_stored(rows, cache, opts.split, subset, protocol):
                continue
            tables = {}
            for split in _rankings(rows, cache, opts.split, protocol):
                tables[split] = build_table(rows, cache, split=split, subset=subset, metrics=metrics,
                                            reference=reference, methods=opts.methods, test=opts.test,
                                            alpha=opts.alpha, digits=opts.digits)
            _agree(tables)
            for split, table in tables.items():
                stem = f"{protocol}-{budget}-{opts.split}-{subset}" + _ranking_tag(split)
                written += _write_table(table, out / "tables" / stem, opts)
                page_tables.append(html.PageTable(table, rows, stem.replace(f"-{opts.split}-", "-", 1)))
                n_tables += 1
        if not prof.ranking:  # the papers' warm-up table: every stage in one table
            stages = [s for s in opts.subsets or prof.subsets if s in prof.subsets]
            metrics = prof.available(opts.metrics) if opts.metrics else list(prof.metrics)
            if len(stages) > 1 and metrics:
                table = build_table(rows, cache, split=opts.split, subset=stages, metrics=metrics,
                                    reference=reference, methods=opts.methods, test=opts.test, alpha=opts.alpha,
                                    digits=opts.digits)
                written += _write_table(table, out / "tables" / f"{protocol}-{budget}-{opts.split}-stages", opts)
            if "latex" in opts.formats:  # pooled AUC has no per-item unit: means and stds only, no tests
                mine = aggregate(frame_all[(frame_all["protocol"] == protocol) & (frame_all["budget"] == budget)])
                frame = stage_frame(mine, prof.subsets, POOLED, opts.split)
                if not frame.empty:
                    written.append(_write(out / "tables" / f"{protocol}-{budget}-{opts.split}-stages-pooled-auc.tex",
                                          stages_latex(frame, prof.subsets, POOLED, opts.digits)))
        if opts.plots:
            written += _plots({k: r for k, r in rows.items() if r.seeds}, cache, styles, out / "plots", protocol,
                              budget, opts)
        if evaluator_for(protocol).kind == "sampled" and (not opts.subsets or "all" in opts.subsets):
            shown = {k: r for k, r in rows.items() if r.seeds and (opts.methods is None or k.method in opts.methods)}
            ordered = [shown[k] for k in plots.row_order(list(shown))]
            tested = [r.key.label for r in ordered if not r.key.audit and r.key.method not in ("random", "popular")]
            ref = next((r.key.label for r in ordered if r.key.method == reference and not r.key.variant
                        and not r.key.audit), None) if reference else None
            written += _curves({r.key: r for r in ordered}, cache, out / "tables", f"{protocol}-{budget}-{opts.split}",
                               opts, None, tested, ref, None, styles)
    if opts.metrics and groups and not n_tables:
        raise BenchError(f"--metrics {', '.join(opts.metrics)}: no stored protocol has them (sampled ranking: hr@K, recall@K, "
                         f"ndcg@K, mrr; full ranking: recall@K, ndcg@K for its stored K; warm-up: auc, logloss)")
    if "html" in opts.formats:  # last: the page embeds the figures written above
        figures = [p for p in written if p.suffix == ".png"]
        written.append(_write(out / PAGE, html.page(page_tables, figures, failed_trials, str(store.root))))
    return written


def _write_table(table, stem: Path, opts: ReportOptions, label: str = "") -> list[Path]:
    """Every format of one table; ``label`` (default ``tab:`` + the file stem) is the LaTeX label."""
    written = []
    if "latex" in opts.formats:
        table.show_std = opts.std
        label = label or f"tab:{stem.name}"
        written.append(_write(stem.with_suffix(".tex"), latex.fragment(table, label, fit=opts.latex_fit)))
        written.append(_write(stem.parent / f"{stem.name}-star.tex",
                              latex.fragment(table, label + "-wide", star=True, fit=opts.latex_fit)))
        written.append(_write(stem.parent / f"{stem.name}-tabular.tex", latex.tabular(table)))
        if table.notes:
            written.append(_write(stem.parent / f"{stem.name}-notes.tex", latex.notes_paragraph(table, label)))
        written.append(_write(stem.parent / f"{stem.name}-document.tex", latex.document(table, label)))
    if "md" in opts.formats:
        written.append(_write(stem.with_suffix(".md"), render.markdown(table)))
    if "csv" in opts.formats:
        written.append(_write(stem.with_suffix(".csv"), render.csv(table)))
    if "json" in opts.formats:
        written.append(_write(stem.with_suffix(".json"), render.as_json(table)))
    return written


def _plots(rows, cache, styles, out: Path, protocol: str, budget: str, opts: ReportOptions) -> list[Path]:
    written: list[Path] = []
    datasets = sorted({(k.dataset, k.split_hash) for k in rows})
    for dataset, split_hash in datasets:
        chosen = [rows[k] for k in plots.row_order([k for k in rows if (k.dataset, k.split_hash) == (dataset, split_hash)
                                                    and (opts.methods is None or k.method in opts.methods)])]
        if not chosen:
            continue
        tag = f"{dataset}-{protocol}-{budget}" + (f"-{split_hash[:8]}" if len(datasets) > 1 else "")
        prof = profile(protocol)
        where = f"{dataset}, {protocol} protocol, {opts.split} split"
        width = opts.figure_width
        for subset in [s for s in opts.subsets or prof.subsets if s in prof.subsets]:
            what = f"{where}, {SUBSET_WORDS.get(subset, f'{subset} {prof.subset_noun}')}"
            written += plots.metric_ci(chosen, cache, styles, list(prof.ci_metrics), opts.split, subset, what, out,
                                       f"{tag}-metrics-ci-{subset}", width=width)
            if prof.over_k:
                written += plots.metric_over_k(chosen, cache, styles, opts.split, subset, what, out,
                                               f"{tag}-over-k-{subset}", width=width)
        if not prof.ranking:
            written += plots.over_stages(chosen, cache, styles, opts.split, prof.headline, prof.subsets, where, out,
                                         f"{tag}-over-stages", width=width)
            continue
        written += plots.cold_vs_warm(chosen, cache, styles, opts.split, prof.headline, where, out,
                                      f"{tag}-cold-vs-warm", noun=prof.subset_noun, width=width)
        written += plots.score_distributions(chosen, cache, styles, opts.split, where, out,
                                             f"{tag}-score-distributions")
    return written


def in_regime(records: list[tuple[Path, dict]], protocol: str, fixed: dict) -> set[str]:
    """Split hashes of the stored ``protocol`` trials whose parameters match a suite's regime (a parameter a record
    predates counts as the protocol's default)."""
    defaults = PROTOCOLS[protocol].DEFAULTS if protocol in PROTOCOLS else {}
    out = set()
    for _, rec in records:
        proto = rec.get("protocol", {})
        params = proto.get("params", {})
        if proto.get("name") == protocol and all(params.get(k, defaults.get(k)) == v for k, v in fixed.items()):
            out.add(proto.get("split_hash", ""))
    return out


def build_suite_reports(store: ResultStore, out: Path, suite, opts: ReportOptions) -> list[Path]:
    """A suite's tables, laid out as its paper: the suite's rows in its order and names, its metrics, one table per
    subset, datasets as column groups; written under ``out/suites/<name>/``. Only each method's default options
    count (no variants, no audit rows): the table is the line-up as registered."""
    check_options(opts)
    writable_folder(out, "--out", "pass a writable folder for the report")  # before any work
    records = list(store.current_records())
    by_table = rows_by_table(group_trials(store, records))
    cache = EventCache(store)
    written: list[Path] = []
    for protocol in suite.protocols:
        regime = in_regime(records, protocol, suite.protocol_options.get(protocol, {}))
        rows = {k: r for k, r in by_table.get((protocol, suite.budget), {}).items() if k.split_hash in regime}
        if not rows:
            fixed = "".join(f" --protocol-set {protocol}.{k}={v}" for k, v in suite.protocol_options.get(protocol, {}).items())
            raise BenchError(f"suite {suite.name!r}: no stored {protocol} trials on the {suite.budget} budget"
                             f"{' under' + fixed if fixed else ''} in {store.root}; run `promo-bench run --suite "
                             f"{suite.name}` first")
        present = {k.method for k in rows if not k.audit and (not k.variant or (opts.tuned and is_tuned(k)))}
        missing = [m for m in suite.all_methods if m not in present]
        if missing:
            print(f"note: suite {suite.name!r}: no stored {protocol} trials of {', '.join(missing)}; their rows are "
                  f"left out", file=sys.stderr)
        folder = out / "suites" / (suite.name + ("-tuned" if opts.tuned else ""))
        shown = set(chosen_rows(list(rows), list(suite.all_methods), True, opts.tuned))
        for subset in suite.subsets:
            if not _subset_stored({k: r for k, r in rows.items() if k in shown}, cache, opts.split, subset, protocol):
                continue
            tables = {}
            for split in _rankings({k: r for k, r in rows.items() if k in shown}, cache, opts.split, protocol):
                table = build_table(rows, cache, split=split, subset=subset, metrics=list(suite.metrics),
                                    reference=suite.reference if suite.reference in present else None,
                                    methods=list(suite.all_methods), test=opts.test, alpha=opts.alpha,
                                    digits=opts.digits, order=list(suite.all_methods), names=dict(suite.labels),
                                    plain_only=True, title=suite.title, below_rule=list(suite.below_rule),
                                    tuned=opts.tuned)
                table.notes.extend(suite.notes)
                if missing:
                    table.notes.append(f"not in this table (no stored trials): {', '.join(missing)}")
                tables[split] = table
            _agree(tables)
            for split, table in tables.items():
                stem = f"{protocol}-{suite.budget}-{opts.split}-{subset}" + _ranking_tag(split)
                written += _write_table(table, folder / stem, opts, label=f"tab:{folder.name}-{stem}")
        if evaluator_for(protocol).kind == "sampled":
            # the rows of the suite's tables: tuned rows stand in for default ones under --tuned
            plain = {k: r for k, r in rows.items() if k in shown and r.seeds}
            written += _curves(plain, cache, folder, f"{protocol}-{suite.budget}-{opts.split}", opts,
                               order=list(suite.all_methods), tested=list(suite.methods), reference=suite.reference,
                               names=dict(suite.labels))
    return written


def _rankings(rows: dict, cache: EventCache, split: str, protocol: str) -> list[str]:
    """The evaluations a table is made for: the part's sampled ranking, and its full-catalogue ranking where every
    shown trial stored one (records before issue 36 did not: then the sampled table alone, with a note)."""
    out = [split]
    if "full" in profile(protocol).rankings:
        full = f"{split}.full"
        if all(cache.has(r, full) for r in rows.values() if r.seeds):
            out.append(full)
        else:
            print(f"note: no full-catalogue {protocol} table: some of its trials predate full ranking (rerun them)",
                  file=sys.stderr)
    return out


def _ranking_tag(split: str) -> str:
    """File stems: the sampled table keeps its name, the full-catalogue one ends in ``-full``."""
    return "-full" if "." in split else ""


def _subset_stored(rows: dict, cache: EventCache, split: str, subset: str, protocol: str) -> bool:
    """Whether every shown trial stored what ``subset`` selects (``cold-model`` needs the training-row count): else
    a note and no table, never a traceback."""
    try:
        for r in rows.values():
            if r.seeds:
                evaluator_for(protocol).subset_mask(cache.vectors(r.paths[0]), split, subset)
    except BenchError as exc:
        print(f"note: no {protocol} {subset} table: {exc}", file=sys.stderr)
        return False
    return True


def _agree(tables: dict) -> None:
    """A sampled table and its full-catalogue twin each carry the rank agreement between them."""
    if len(tables) == 2:
        sampled, full = tables.values()
        notes = rank_agreement(sampled, full)
        sampled.notes.extend(notes)
        full.notes.extend(notes)


def _curves(rows: dict, cache: EventCache, folder: Path, stem: str, opts: ReportOptions, order: list[str] | None,
            tested: list[str] | None, reference: str | None, names: dict[str, str] | None = None,
            styles=None) -> list[Path]:
    """The cold-start curve of each dataset and split in ``rows`` (benchmark/report/curve.py); a split that is not
    in the split cache is skipped with a note, never a crash."""
    written: list[Path] = []
    by_split: dict[tuple[str, str], list] = {}
    for k, r in rows.items():
        by_split.setdefault((k.dataset, k.split_hash), []).append(r)
    for (dataset, split_hash), members in sorted(by_split.items()):
        if order is not None:
            members = sorted([r for r in members if r.key.method in order], key=lambda r: order.index(r.key.method))
        if not members:
            continue
        labels = [r.key.method if names else r.key.label for r in members]
        protocol = members[0].key.protocol
        for split in _rankings({r.key: r for r in members}, cache, opts.split, protocol):
            for count in curve.COUNTS:
                try:
                    c = curve.build_curve(members, cache, reference if reference in labels else None,
                                          tested if tested is not None else labels, split, opts.test, opts.alpha,
                                          names, count)
                except BenchError as exc:
                    print(f"note: no cold-start curve for {dataset} ({split_hash[:12]}, {split}, {count}): {exc}",
                          file=sys.stderr)
                    continue
                tag = (f"{stem}-cold-start-curve{curve.TAGS[count]}{_ranking_tag(split)}"
                       + (f"-{dataset}-{split_hash[:8]}" if len(by_split) > 1 else ""))
                written.append(_write(folder / f"{tag}.md", curve.markdown(c)))
                written.append(_write(folder / f"{tag}.csv", curve.csv(c)))
                if opts.plots:
                    written += curve.plot(c, folder, tag, styles, opts.figure_width)
    return written
