"""``promo-bench`` command line (argparse): list, data, run, validate, status, report."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from benchmark import __version__
from benchmark.config import parse_set_options
from benchmark.errors import BenchError


def _budget(value: str) -> str:
    from benchmark.budgets import parse

    try:
        parse(value)
    except BenchError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--budget {value!r}: ")) from None
    return value


def _csv_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="promo-bench", description="Leak-free item cold-start recommendation benchmark.")
    p.add_argument("--version", action="version", version=f"promo-bench {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="show methods, datasets or protocols")
    ls.add_argument("what", nargs="?", choices=["methods", "datasets", "protocols", "suites"], default="methods")
    ls.add_argument("--verbose", action="store_true", help="import every method to show its version, protocols "
                    "and requirements (plain `list` reads package metadata only)")
    ls.add_argument("--include", action="append", default=[], metavar="FILE.py",
                    help="also register the methods defined in a local file (repeatable)")

    run = sub.add_parser("run", help="plan, run and store trials (stored trials are skipped)")
    run.add_argument("--all", action="store_true", help="every method on every present dataset and supported protocol")
    run.add_argument("--suite", metavar="NAME", help="a registered line-up (see `list suites`), e.g. paper: its methods, "
                     "protocols, seeds and budget on every present dataset (or --dataset)")
    run.add_argument("--method", nargs="+", metavar="M")
    run.add_argument("--include", action="append", default=[], metavar="FILE.py",
                     help="register the methods defined in a local file (repeatable), e.g. before packaging a plugin")
    run.add_argument("--dataset", nargs="+", metavar="D")
    run.add_argument("--protocol", nargs="+", metavar="P")
    run.add_argument("--seeds", type=int, default=None, help="number of trial seeds, 0..N-1 (default 3, or the suite's)")
    run.add_argument("--budget", default=None, type=_budget, help="quick or paper (default, or the suite's); SCHEDULE-dD sets every method's size to D (the capacity-matched regime)")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument("--results", default="results", help="results folder (default results/)")
    run.add_argument("--data-dir", default=None, help="folder with one dataset's files (needs one --dataset)")
    run.add_argument("--allow-unverified", action="store_true",
                     help="use data that fails checksum verification (a partial or modified copy); every record "
                          "and table made from it says so")
    run.add_argument("--with-statistics", action="store_true",
                     help="kuairand-pure: add the whole-period video statistics to item content (they leak future "
                          "popularity; the data is then named kuairand-pure+statistics)")
    run.add_argument("--set", action="append", default=[], metavar="METHOD.KEY=VALUE", help="method option")
    run.add_argument("--protocol-set", action="append", default=[], metavar="PROTOCOL.KEY=VALUE",
                     help="split parameter, e.g. loo.candidates=all (changes the split hash)")
    run.add_argument("--cold-by", choices=["random", "time"], default=None,
                     help="cold protocol: cold items at random (default) or the newest by first positive; "
                          "shorthand for --protocol-set cold.cold_by=...")
    run.add_argument("--jobs", type=int, default=1, metavar="N",
                     help="run trials in N worker processes on this machine, the cores split between them "
                          "(default 1: in this process); records are the same as a serial run's")
    run.add_argument("--executor", choices=["local", "processes", "dask"], default=None,  # benchmark/executors.py
                     help="where trials run: local (this process), processes (--jobs workers) or dask (a Dask "
                          "cluster: --address/--scheduler-file, else a local one of --jobs workers); default: "
                          "processes when --jobs > 1")
    run.add_argument("--address", default=None, metavar="ADDR",
                     help="--executor dask: the scheduler's address, e.g. tcp://host:8786")
    run.add_argument("--scheduler-file", default=None, metavar="FILE",
                     help="--executor dask: the scheduler file (dask scheduler --scheduler-file, dask-jobqueue)")
    run.add_argument("--trials-per-gpu", type=int, default=None, metavar="K",
                     help="--executor dask on this machine: K trials share each GPU (K x GPUs single-trial "
                          "workers); on a cluster, start K workers per GPU instead")
    run.add_argument("--force", action="store_true", help="rerun trials even if stored")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--save-scores", action="store_true",
                     help="also store every test candidate's score (for the score-distribution plot; on with --all)")
    run.add_argument("--report-dir", default="reports", help="where run --all writes its report")
    run.add_argument("--tuned", action="store_true",
                     help="each method with its best validation configuration from `promo-bench tune` (studies in "
                          "RESULTS/tuning/studies.db); rows are marked tuned")

    tune = sub.add_parser("tune", help="validation-only search (Optuna TPE, median pruning), the same budget per method")
    tune.add_argument("--method", nargs="+", metavar="M", required=True)
    tune.add_argument("--dataset", default="ml-100k", metavar="D")
    tune.add_argument("--protocol", default="loo", metavar="P")
    tune.add_argument("--trials", type=int, default=20, metavar="N",
                      help="finished trials per method (a resumed study counts its own; default 20)")
    tune.add_argument("--timeout", type=float, default=None, metavar="S", help="wall-clock cap per method, seconds")
    tune.add_argument("--budget", default="paper", type=_budget)
    tune.add_argument("--device", default="auto")
    tune.add_argument("--results", default="results", help="its studies go to RESULTS/tuning/studies.db")
    tune.add_argument("--data-dir", default=None)
    tune.add_argument("--protocol-set", action="append", default=[], metavar="PROTOCOL.KEY=VALUE")
    tune.add_argument("--show", action="store_true", help="print each method's search space and stop")

    data = sub.add_parser("data", help="list, fetch, verify or describe datasets")
    data.add_argument("action", choices=["list", "fetch", "verify", "info"])
    data.add_argument("dataset", nargs="?", help="a dataset card's name (all but list)")
    data.add_argument("--data-dir", default=None, help="the dataset's folder (default: the data cache, "
                      "$PROMO_BENCH_DATA/<dataset>, or the embedded copy)")
    data.add_argument("--url", default=None, help="fetch: download from this mirror instead of the card's URL "
                      "(the card's checksums still apply)")
    data.add_argument("--force", action="store_true", help="fetch: download again even if verified")
    data.add_argument("--with-statistics", action="store_true", help="info/verify: kuairand-pure with statistics")
    data.add_argument("--no-progress", action="store_true")

    val = sub.add_parser("validate", help="check that a method keeps the interface, on a tiny real slice")
    val.add_argument("method")
    val.add_argument("--include", action="append", default=[], metavar="FILE.py")
    val.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or cuda:N")
    val.add_argument("--budget", default="quick", type=_budget)
    val.add_argument("--data-dir", default=None, help="ML-100K's folder, where recbole's embedded copy is absent")

    st = sub.add_parser("status", help="count stored trials")
    st.add_argument("--results", default="results")

    rep = sub.add_parser("report", help="tables and plots from stored results")
    rep.add_argument("--results", default="results")
    rep.add_argument("--format", type=_csv_list, default=["latex", "md", "csv", "json", "html"],
                     help="comma list of latex, md, csv, json, html (the results page, index.html; default: all)")
    rep.add_argument("--reference", default=None, help="method the others are tested against "
                     "(default promo, when present); 'none' for no tests")
    rep.add_argument("--methods", type=_csv_list, default=None, help="comma list of methods to include")
    rep.add_argument("--metrics", type=_csv_list, default=None, help="comma list, e.g. hr@10,ndcg@10,mrr")
    rep.add_argument("--subset", type=_csv_list, default=None, help="comma list of subsets: all, cold-model, warm-model, cold-event, warm-event (loo, temporal: the target's positives in the training rows, or before the event), cold, warm (cold protocol: candidate sets) or base, warm-a, warm-b, warm-c (warmup stages); default: every subset of each protocol")
    rep.add_argument("--test", default="t", help="t (default), wilcoxon or permutation: over events, seeds averaged; "
                     "seeds (paired t over seeds) or bootstrap (hierarchical, seeds and events): seed variance in the test")
    rep.add_argument("--alpha", type=float, default=0.05)
    rep.add_argument("--plots", action="store_true", help="also write PDF and PNG figures")
    rep.add_argument("--out", default="reports")
    rep.add_argument("--suite", metavar="NAME", help="only this suite's table, laid out as its paper "
                     "(rows, names, metrics and subsets from the suite), under OUT/suites/NAME/")
    rep.add_argument("--tuned", action="store_true", help="with --suite: each method's tuned row (run --tuned) "
                     "instead of its default one, under OUT/suites/NAME-tuned/")
    rep.add_argument("--std", action="store_true", help="LaTeX cells also show ± the sample std over seeds")
    rep.add_argument("--latex-fit", default="shrink", choices=["shrink", "resize", "none"],
                     help="shrink (default): scale a LaTeX table down to the column only when it is too wide; "
                     "resize: always scale to the column; none: natural width")
    rep.add_argument("--figure-width", default="column", choices=["column", "page"],
                     help="figures one column (3.3 in, default) or two columns (7 in) wide")
    return p


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    if args.what == "methods":
        from benchmark.registry import include, registry

        for path in args.include:
            include(path)
        rows = []
        for name, entry in sorted(registry().items()):
            source = entry.origin if entry.builtin else f"{entry.origin} (plugin)"
            # built-ins by metadata only (nothing imported); a plugin is imported, so a broken one says so here
            if not args.verbose and not entry.loaded and entry.builtin:
                rows.append([name, source, "not loaded (list --verbose imports it)"])
                continue
            try:
                cls = entry.load()
                rows.append([name, source, f"ok: version {cls.version}; protocols {','.join(sorted(cls.protocols))};"
                             f" requires {','.join(sorted(cls.requires)) or '-'}"])
            except BenchError:
                rows.append([name, source, f"unavailable: {entry.error}"])
        print(tabulate(rows, headers=["method", "from", "status"]))
    elif args.what == "datasets":
        from benchmark.data.manage import list_rows

        print(tabulate(list_rows(), headers=["dataset", "title", "status", "where", "to get it"]))
    elif args.what == "suites":
        from benchmark.suites import suites

        known, broken = suites()
        rows = [[n, len(s.methods), ",".join(s.protocols), s.seeds, s.budget, s.reference or "-", s.title]
                for n, s in sorted(known.items())]
        rows += [[n, "?", "?", "?", "?", "?", f"unavailable: {why}"] for n, why in sorted(broken.items())]
        print(tabulate(rows, headers=["suite", "methods", "protocols", "seeds", "budget", "reference", "title"]))
    else:
        from benchmark.protocols import PROTOCOLS

        for name in PROTOCOLS:
            try:
                module = PROTOCOLS[name]
                doc = (module.__doc__ or "").strip().splitlines()
                print(f"{name} (version {module.VERSION}): {doc[0] if doc else ''}")
            except BenchError as exc:
                print(f"{name}: unavailable: {exc}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from benchmark.data.card import get_card
    from benchmark.env import resolve_device
    from benchmark.protocols import parse_protocol_options
    from benchmark.runner import execute, plan, select_datasets, select_methods
    from benchmark.store import ResultStore

    from benchmark.registry import include

    if args.jobs < 1:
        raise BenchError(f"--jobs {args.jobs}: expected 1 or more worker processes")
    executor = args.executor or ("processes" if args.jobs > 1 else "local")
    if executor == "local" and args.jobs > 1:
        raise BenchError(f"--executor local runs trials in this process; drop --jobs {args.jobs} or use processes")
    engine = None
    if executor == "dask":
        if args.trials_per_gpu is not None and args.trials_per_gpu < 1:
            raise BenchError(f"--trials-per-gpu {args.trials_per_gpu}: expected 1 or more")
        if args.address and args.scheduler_file:
            raise BenchError("--executor dask: give --address or --scheduler-file, not both")
        if args.trials_per_gpu and (args.address or args.scheduler_file):
            raise BenchError("--trials-per-gpu sizes a local cluster; on a cluster start K workers per GPU "
                             "(`dask worker ADDR --nworkers K --nthreads 1` with CUDA_VISIBLE_DEVICES set)")
        if args.trials_per_gpu and args.jobs != 1:
            raise BenchError(f"--trials-per-gpu {args.trials_per_gpu} sizes the local cluster itself (K x GPUs "
                             f"workers); drop --jobs {args.jobs}")
        engine = {"address": args.address, "scheduler_file": args.scheduler_file}
    elif args.address or args.scheduler_file or args.trials_per_gpu:
        raise BenchError("--address, --scheduler-file and --trials-per-gpu apply to --executor dask")
    for path in args.include:
        include(path)
    store = ResultStore(args.results)
    device = resolve_device(args.device)
    if args.trials_per_gpu and device.type != "cuda":
        raise BenchError(f"--trials-per-gpu {args.trials_per_gpu} shares GPUs between trials; this run's device is "
                         f"{device} (give --device cuda on a GPU machine, or --jobs N for N CPU workers)")
    if args.trials_per_gpu:  # a local cluster of K single-trial workers per GPU: the plan line counts them
        import torch

        args.jobs = args.trials_per_gpu * max(1, torch.cuda.device_count())
    if args.suite:
        from benchmark.suites import get_suite

        if args.method or args.all or args.protocol:
            raise BenchError("--suite fixes the methods and protocols; drop --method, --all and --protocol")
        suite = get_suite(args.suite)
        args.method, args.protocol = list(suite.all_methods), list(suite.protocols)
        args.seeds = suite.seeds if args.seeds is None else args.seeds
        args.budget = args.budget or suite.budget
    args.seeds = 3 if args.seeds is None else args.seeds
    args.budget = args.budget or "paper"
    methods = select_methods(args.method, args.all, narrowed=bool(args.protocol or args.dataset))
    data_options = {"with_statistics": True} if args.with_statistics else {}
    datasets = select_datasets(args.dataset, args.data_dir, args.allow_unverified, data_options)
    if data_options and not any("with_statistics" in get_card(d).options for d in datasets):
        raise BenchError(f"--with-statistics applies to kuairand-pure only; this run has {', '.join(datasets)}")
    protocol_sets = list(args.protocol_set) + ([f"cold.cold_by={args.cold_by}"] if args.cold_by else [])
    protocol_options = parse_protocol_options(parse_set_options(protocol_sets, "--protocol-set", "PROTOCOL"))
    if args.suite:  # the suite's regime; a --protocol-set may add parameters but not contradict it
        for protocol, fixed in suite.protocol_options.items():
            for key, value in fixed.items():
                given = protocol_options.setdefault(protocol, {}).setdefault(key, value)
                if given != value:
                    raise BenchError(f"--protocol-set {protocol}.{key}={given}: suite {suite.name!r} runs "
                                     f"{protocol}.{key}={value} (its regime); drop it or choose another suite")
    planned = plan(methods, datasets, args.protocol, args.seeds, args.budget, parse_set_options(args.set),
                   args.data_dir, protocol_options, data_options, tuned=Path(args.results) if args.tuned else None)
    if not planned and args.protocol:
        raise BenchError(f"nothing to run: none of {', '.join(methods)} supports protocol(s) {', '.join(args.protocol)} "
                         f"(see `promo-bench list --verbose`)")
    protocols = sorted({p.spec.protocol for p in planned})
    print(f"planned {len(planned)} trials ({len(methods)} methods, {len(datasets)} datasets, protocols "
          f"{', '.join(protocols) or '-'}, {args.seeds} seeds; each method under every protocol it supports) on "
          f"{device}; results in {store.root}", file=sys.stderr)
    show = not args.no_progress and sys.stderr.isatty()
    # run --all feeds the full report, whose score-distribution plot needs the candidates' scores
    summary = execute(planned, store, device, show_progress=show, force=args.force,
                      save_scores=args.save_scores or args.all,
                      jobs=args.jobs if executor in ("processes", "dask") else 1,
                      includes=args.include, workers=executor == "processes", engine=engine)
    print(f"done: {summary.ok} ok, {summary.failed} failed, {summary.skipped} already stored"
          + (f", {summary.elsewhere} run by another process" if summary.elsewhere else ""), file=sys.stderr)
    if args.all:
        # imported here: the report stack (scipy.stats, matplotlib) is 4 s of start-up a plain run never uses
        from benchmark.report.build import FORMATS, ReportOptions, build_reports

        written = build_reports(store, Path(args.report_dir), ReportOptions(formats=list(FORMATS), plots=True))
        print(f"wrote {len(written)} report files under {args.report_dir}", file=sys.stderr)
        page = next((p for p in written if p.suffix == ".html"), None)
        if page is not None:
            print(f"results page: {page}", file=sys.stderr)  # last: what to open
    return 1 if summary.failed else 0


def cmd_tune(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchmark.data.loader import load_dataset
    from benchmark.env import resolve_device
    from benchmark.fitted import FittedCache
    from benchmark.files import cache_root
    from benchmark.protocols import PROTOCOLS, get_split, parse_protocol_options
    from benchmark.registry import get_method
    from benchmark.runner import select_datasets
    from benchmark.space import describe
    from benchmark.tuning import tune_method

    classes = [get_method(m) for m in args.method]
    if args.show:
        for cls in classes:
            print(f"{cls.name}: {describe(cls.search_space) or 'no search_space'}")
        return 0
    if args.trials < 1:
        raise BenchError(f"--trials {args.trials}: expected 1 or more")
    for cls in classes:
        if args.protocol not in cls.protocols:
            raise BenchError(f"--method {cls.name}: does not run under protocol {args.protocol!r}")
    (dataset,) = select_datasets([args.dataset], args.data_dir)  # present and verified, as for run
    inter = load_dataset(dataset, args.data_dir)
    options = parse_protocol_options(parse_set_options(args.protocol_set, "--protocol-set", "PROTOCOL"))
    split, _ = get_split(inter, args.protocol, options.get(args.protocol))
    device = resolve_device(args.device)
    cache = FittedCache(cache_root() / "fitted")  # backbones at their defaults, shared with run
    rows = []
    for cls in classes:
        print(f"tuning {cls.name} on {args.dataset}/{args.protocol}: {args.trials} trials, validation "
              f"{PROTOCOLS[args.protocol].VALID_METRIC} only", file=sys.stderr)
        r = tune_method(cls, split, inter, device, args.budget, args.trials, Path(args.results), args.timeout, cache)
        rows.append([r.method, r.n_complete, r.n_pruned, r.n_failed,
                     "-" if r.best_value is None else f"{r.best_value:.4f}", f"{r.seconds:.0f}",
                     ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.best_params.items())])
    print(tabulate(rows, headers=["method", "complete", "pruned", "failed", "best valid", "seconds", "best options"]))
    print(f"studies in {Path(args.results) / 'tuning' / 'studies.db'}; `promo-bench run --tuned ...` runs them",
          file=sys.stderr)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchmark.data import manage

    if args.action == "list":
        print(tabulate(manage.list_rows(), headers=["dataset", "title", "status", "where", "to get it"]))
        return 0
    if not args.dataset:
        raise BenchError(f"data {args.action}: name a dataset (see `promo-bench data list`)")
    options = {"with_statistics": True} if args.with_statistics else None
    if args.action == "fetch":
        code, lines = manage.fetch(args.dataset, args.data_dir, args.url,
                                   progress=not args.no_progress and sys.stderr.isatty(), force=args.force)
    elif args.action == "verify":
        code, lines = manage.verify(args.dataset, args.data_dir, options)
    else:
        code, lines = 0, manage.info(args.dataset, args.data_dir, options)
    print("\n".join(lines))
    return code


def cmd_validate(args: argparse.Namespace) -> int:
    from benchmark.data.loader import load_dataset
    from benchmark.env import resolve_device
    from benchmark.registry import include
    from benchmark.validate import SLICE_USERS, validate

    for path in args.include:
        include(path)
    device = resolve_device(args.device)
    inter = load_dataset("ml-100k", args.data_dir)
    checks = validate(args.method, inter, device, args.budget)
    print(f"validate {args.method} on ML-100K users 1..{SLICE_USERS} ({device}, {args.budget} budget, seed 0):")
    print("\n".join(c.line() for c in checks))
    failed = [c for c in checks if c.ok is False]
    print(f"{'FAILED' if failed else 'PASSED'}: {sum(c.ok is True for c in checks)} passed, {len(failed)} failed, "
          f"{sum(c.ok is None for c in checks)} skipped")
    return 1 if failed else 0


def cmd_status(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchmark.claims import Claims
    from benchmark.store import ResultStore

    store = ResultStore(args.results, create=False)
    counts: Counter = Counter()
    failed = []
    for path, rec in store.records():
        key = (rec["dataset"]["name"], rec["protocol"]["name"], rec["method"]["name"],
               rec["method"].get("variant", ""), rec["method"].get("budget", ""))
        counts[key + (rec["status"],)] += 1
        if rec["status"] != "ok":
            failed.append(f"{path}: {rec.get('error')}")
    rows = {}
    for (*key, status), n in counts.items():
        rows.setdefault(tuple(key), {"ok": 0, "failed": 0})[status] = n
    table = [[*k, v.get("ok", 0), v.get("failed", 0)] for k, v in sorted(rows.items())]
    print(tabulate(table, headers=["dataset", "protocol", "method", "variant", "budget", "ok", "failed"])
          if table else f"no trials stored in {store.root}")
    for line in failed:
        print(f"failed: {line}")
    running = Claims(store.root).held()
    if running:
        print(f"running now: {len(running)} trials claimed by a live process")
    return 0


def report_options(args: argparse.Namespace) -> Any:
    from benchmark.report.build import ReportOptions

    given = args.reference is not None and args.reference != "none"
    reference = "promo" if args.reference is None else (None if args.reference == "none" else args.reference)
    return ReportOptions(formats=args.format, reference=reference, reference_given=given,
                         methods=args.methods, metrics=args.metrics, subsets=args.subset, test=args.test,
                         alpha=args.alpha, plots=args.plots, tuned=args.tuned, std=args.std,
                         latex_fit=args.latex_fit, figure_width=args.figure_width)


def cmd_report(args: argparse.Namespace) -> int:
    from benchmark.report.build import build_reports, build_suite_reports, check_options
    from benchmark.store import ResultStore

    check_options(report_options(args))  # a bad option is named before the results folder is even read

    if args.suite and not Path(args.results).is_dir():
        raise BenchError(f"results folder {args.results}: does not exist; run `promo-bench run --suite {args.suite}` "
                         f"first (or pass --results DIR)")
    store = ResultStore(args.results, create=False)
    if args.suite:
        from benchmark.suites import get_suite

        if args.methods or args.metrics or args.subset:
            raise BenchError("--suite fixes the methods, metrics and subsets; drop --methods, --metrics and --subset")
        paths = build_suite_reports(store, Path(args.out), get_suite(args.suite), report_options(args))
    else:
        paths = build_reports(store, Path(args.out), report_options(args))
    for path in paths:
        print(f"wrote {path}")
    return 0


COMMANDS = {"list": cmd_list, "data": cmd_data, "run": cmd_run, "validate": cmd_validate, "status": cmd_status,
            "report": cmd_report, "tune": cmd_tune}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BenchError as exc:
        print(f"promo-bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("promo-bench: interrupted; finished trials are stored, rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
