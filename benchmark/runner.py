"""Plan trials, skip the stored ones, run the rest (in this process or in workers, ``benchmark.executors``)
with an expected time up front, write each record as it finishes."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
from tqdm.auto import tqdm

from benchmark import budgets
from benchmark.config import resolve_options, variant_label
from benchmark.costs import EVAL_S, CostModel, format_duration
from benchmark.data.card import get_card, list_cards
from benchmark.data.interactions import Interactions
from benchmark.data.loader import check_dataset, load_dataset
from benchmark.data.verify import require_verified
from benchmark.errors import BenchError
from benchmark.executors import LocalExecutor, Outcome, ProcessExecutor, TrialRunner, trial_label
from benchmark.fitted import FittedCache
from benchmark.method import Method
from benchmark.protocols import PROTOCOLS, get_split
from benchmark.protocols.split import Split
from benchmark.registry import get_method, identity_version, registry
from benchmark.store import ResultStore
from benchmark.trial import TrialSpec


@dataclass
class Planned:
    spec: TrialSpec
    cls: type[Method]
    split: Split
    inter: Interactions
    # (dataset, data_dir, reader options, protocol, protocol parameters): what a worker process needs to
    # rebuild ``inter`` and ``split`` (from the split cache) instead of receiving them
    source: tuple[Any, ...] = ()


@dataclass
class RunSummary:
    planned: int
    skipped: int  # already stored when the run started
    ok: int
    failed: int
    elsewhere: int = 0  # finished meanwhile by another process on the same results folder


def select_methods(names: list[str] | None, all_methods: bool, narrowed: bool = False) -> list[str]:
    """``--method`` names, or every available method when ``--all`` is given or the run is narrowed otherwise
    (``--protocol`` / ``--dataset``): the plan then keeps each method under the protocols it supports."""
    if names:
        return list(dict.fromkeys(names))
    if not (all_methods or narrowed):
        raise BenchError("nothing to run: give --all, --method NAME [NAME ...], --protocol P or --dataset D")
    available = []
    for name, entry in sorted(registry().items()):
        try:
            entry.load()
            available.append(name)
        except BenchError as exc:
            print(f"warning: skipping {exc}", file=sys.stderr)
    return available


def select_datasets(names: list[str] | None, data_dir: str | None, allow_unverified: bool = False,
                    options: dict[str, Any] | None = None) -> list[str]:
    """Named datasets must be present and verified (or allowed unverified); with no names, every dataset that
    is, and a note for each one left out with the command that fetches it."""
    from benchmark.data.manage import dataset_status, fetch_command

    if names:
        for n in names:
            get_card(n)  # clear error for an unknown name
        chosen = list(dict.fromkeys(names))
    elif data_dir is not None:
        chosen = list_cards()  # narrowed to one below, or an error that asks for --dataset
    else:
        chosen = []
        for n in list_cards():
            status, where, verification = dataset_status(n, None, _options_for(n, options))
            if status in ("verified", "embedded") or (status == "unverified" and allow_unverified):
                chosen.append(n)
            elif status == "unverified":
                print(f"note: skipping {n}: its files fail verification ({'; '.join(verification.problems)}); "
                      f"`{fetch_command(get_card(n))}`, or --allow-unverified", file=sys.stderr)
            else:
                print(f"note: skipping {n}: not present; get it with `{fetch_command(get_card(n))}`", file=sys.stderr)
    if data_dir is not None and len(chosen) != 1:
        raise BenchError(f"--data-dir points at one dataset's folder; name that dataset with --dataset "
                         f"(candidates: {', '.join(chosen)})")
    if not chosen:
        raise BenchError("no dataset is present; see `promo-bench data list`")
    if names or data_dir is not None:
        for n in chosen:
            card, _, _, verification = check_dataset(n, data_dir, _options_for(n, options))
            require_verified(card, verification, allow_unverified)
    return chosen


def _options_for(dataset: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """Command-line reader options apply to the datasets whose card offers them (``--with-statistics``)."""
    card = get_card(dataset)
    return {k: v for k, v in (options or {}).items() if k in card.options}


def provided(inter: Interactions, protocol: str = "loo") -> frozenset[str]:
    """Capabilities a dataset + split offer, checked against each method's ``requires``."""
    have = set(PROTOCOLS[protocol].PROVIDES)
    if inter.item_features.shape[1]:
        have.add("item_features")
    if inter.user_features.shape[1]:
        have.add("user_features")
    return frozenset(have)


def plan(methods: list[str], datasets: list[str], protocols: list[str] | None, seeds: int, budget: str,
         set_options: dict[str, dict[str, str]], data_dir: str | None = None,
         protocol_options: dict[str, dict[str, Any]] | None = None,
         data_options: dict[str, Any] | None = None, tuned: Path | None = None) -> list[Planned]:
    """Every (dataset, protocol, method, seed) trial to run; with ``tuned`` (a results folder holding studies) each
    method takes its best validation configuration from ``promo-bench tune``."""
    budgets.parse(budget)
    if seeds < 1:
        raise BenchError(f"--seeds {seeds}: expected at least 1")
    for p in protocols or []:
        if p not in PROTOCOLS:
            raise BenchError(f"unknown protocol {p!r}; implemented: {', '.join(PROTOCOLS)}")
    classes = {m: get_method(m) for m in methods}
    for name in set_options:
        if name not in classes:
            raise BenchError(f"--set {name}.…: method {name!r} is not part of this run ({', '.join(methods)})")
    out: list[Planned] = []
    for dataset in datasets:
        inter = load_dataset(dataset, data_dir, _options_for(dataset, data_options))
        for protocol in protocols or list(PROTOCOLS):
            like = getattr(PROTOCOLS[protocol], "LIKE", None)  # a plugin protocol may run every method of another
            users = {m: c for m, c in classes.items() if protocol in c.protocols or (like and like in c.protocols)}
            if not users:
                continue
            try:
                split, _ = get_split(inter, protocol, (protocol_options or {}).get(protocol))
            except BenchError as exc:
                if protocols:  # asked for by name: the user must hear why it cannot run
                    raise
                # every protocol by default: a dataset too small for one (warmup needs old and new items) skips it
                print(f"note: skipping protocol {protocol!r} on {dataset!r}: {exc}", file=sys.stderr)
                continue
            for name, cls in users.items():
                missing = set(cls.requires) - provided(inter, protocol)
                if missing:
                    raise BenchError(f"method {name!r} requires {', '.join(sorted(missing))}, which dataset "
                                     f"{dataset!r} does not provide under protocol {protocol!r}")
                options, changed = resolve_options(name, cls.defaults, budgets.overrides(cls, budget),
                                                   set_options.get(name, {}), cls.option_ranges)
                variant, tuning = variant_label(changed), {}
                if tuned is not None:
                    options, changed, variant, tuning = _tuned(cls, options, changed, tuned, inter, protocol, split,
                                                               budget)
                origin = registry()[name].origin
                for seed in range(seeds):
                    spec = TrialSpec(method=name, method_version=identity_version(cls), origin=origin, options=options,
                                     variant=variant, budget=budget, dataset=inter.label_name,
                                     protocol=protocol, split_hash=split.hash, seed=seed, changed=changed,
                                     features=inter.features_hash(), tuning=tuning)
                    out.append(Planned(spec, cls, split, inter,
                                       (dataset, data_dir, _options_for(dataset, data_options), protocol,
                                        (protocol_options or {}).get(protocol))))
    return out


def _tuned(cls: type[Method], options: dict[str, Any], changed: dict[str, Any], results: Path, inter: Any,
           protocol: str, split: Any, budget: str) -> tuple[dict[str, Any], dict[str, Any], str, dict[str, Any]]:
    from benchmark.costs import changed_params
    from benchmark.identity import harness_hash
    from benchmark.tuning import best_options, study_name, tuned_variant

    if not cls.search_space:  # nothing to tune (random, popular): the default row, unmarked
        return options, changed, variant_label(changed), {}
    name = study_name(cls.name, identity_version(cls), harness_hash(), inter.label_name, protocol, split.hash, budget)
    found = best_options(results, name)
    tune = (f"promo-bench tune --method {cls.name} --dataset {inter.dataset} --protocol {protocol}"
            + "".join(f" --protocol-set {protocol}.{kv}" for kv in changed_params(protocol, split.meta["params"]))
            + ("" if budget == "paper" else f" --budget {budget}") + f" --results {results}")
    if found is None:
        raise BenchError(f"--tuned: no finished study of {cls.name} on {inter.label_name}/{protocol} ({budget} "
                         f"budget, this code and split) in {results}; run `{tune}` first")
    params, info = found
    if info["n_trials"] < info["budget"]:  # a killed or still running study: its method would get a smaller budget
        raise BenchError(f"--tuned: the study of {cls.name} on {inter.label_name}/{protocol} has {info['n_trials']} "
                         f"of its {info['budget']} trials finished; wait for its running trials or finish it with "
                         f"`{tune} --trials {info['budget']}` first")
    options = {**options, **params}
    changed = {**changed, **{k: v for k, v in params.items() if cls.defaults.get(k) != v}}
    return options, changed, tuned_variant(params), {**info, "params": params}


def _epoch_bar(it: Iterable[Any], desc: str) -> Iterator[Any]:
    return iter(tqdm(it, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr))


def backbone_chain(cls: type[Method]) -> list[str]:
    """The backbones ``cls`` builds on (``uses``), recursively."""
    out: list[str] = []
    for name in cls.uses:
        out += backbone_chain(get_method(name)) + [name]
    return list(dict.fromkeys(out))


def _path(store: ResultStore, p: Planned):
    return store.trial_path(p.spec.dataset, p.spec.protocol, p.spec.method, p.spec.trial_id)


def expected_costs(todo: list[Planned], costs: CostModel, cache: FittedCache) -> dict[str, float]:
    """Expected seconds per trial id: its own cost, plus each backbone not fitted on disk yet, charged once to
    the first trial (in ``todo`` order) that needs it; a backbone's own trial costs its evaluation once paid."""
    paid: set[str] = set()

    def charge(cls: type[Method], options: dict[str, Any], p: Planned) -> bool:
        s = p.spec
        key = cache.key(cls, options, s.budget, s.split_hash, s.seed, s.features)
        if key in paid or cache.has(key, cls, p.inter.dataset):
            return False
        paid.add(key)
        return True

    out: dict[str, float] = {}
    for p in todo:
        s = p.spec
        rows = len(p.inter.user)
        audit = {"audit_leak": bool(s.options.get("audit_leak", False))}
        total = 0.0
        for name in backbone_chain(p.cls):
            bcls = get_method(name)
            options = {**bcls.resolved_defaults(s.budget), **{k: v for k, v in audit.items() if k in bcls.defaults}}
            if charge(bcls, options, p):
                total += costs.own(name, s.protocol, s.dataset, s.budget, rows, p.split.meta.get("params"))
        if not p.cls.cacheable or charge(p.cls, s.options, p):
            total += costs.own(s.method, s.protocol, s.dataset, s.budget, rows, p.split.meta.get("params"))
        else:
            total += EVAL_S
        out[s.trial_id] = total
    return out


def execute(planned: list[Planned], store: ResultStore, device: torch.device, show_progress: bool = True,
            force: bool = False, save_scores: bool = False, jobs: int = 1, includes: list[str] | None = None,
            workers: bool | None = None, engine: dict[str, Any] | None = None) -> RunSummary:
    """Run every planned trial that is not stored complete, in this process (``jobs`` 1) or in ``jobs`` worker
    processes (longest expected trials first; ``workers`` True uses worker processes even for one job), or on a Dask
    cluster when ``engine`` is given (``benchmark.dask_executor``: its address or scheduler file, trials per
    GPU). Each trial is claimed first (``benchmark.claims``): a trial
    another process is running is left to it and waited for at the end, then redone here only if that process
    died without storing it. So N runs on one folder share the plan and none computes a trial twice.

    The expected time (``benchmark.costs``) is printed first, and the progress bar advances by expected cost."""
    todo = planned if force else [p for p in planned if not store.is_complete(_path(store, p))]
    summary = RunSummary(planned=len(planned), skipped=len(planned) - len(todo), ok=0, failed=0)
    if summary.skipped:
        print(f"{summary.skipped} of {len(planned)} trials already stored in {store.root}; skipping them",
              file=sys.stderr)
    runner = TrialRunner(store.root, device, force, save_scores, _epoch_bar if show_progress
                         else (lambda it, d: iter(it)))
    costs = CostModel.load((rec for _, rec in store.records(warn=False)), device)
    expected = expected_costs(todo, costs, runner.cache)
    if jobs > 1 or engine is not None:  # longest first, so no long trial starts last (stable: plan order on ties)
        todo = sorted(todo, key=lambda p: -expected[p.spec.trial_id])
    total = sum(expected.values())
    if todo:
        workers = f" in {jobs} worker processes" if jobs > 1 and engine is None else ""
        if engine is not None:
            where = engine.get("address") or engine.get("scheduler_file")
            workers = f" on the Dask cluster at {where}" if where else f" on a local Dask cluster of {jobs} workers"
        print(f"expected time: about {format_duration(total / max(jobs, 1))}{workers} for {len(todo)} trials "
              f"({costs.describe()})", file=sys.stderr)
    bar = tqdm(total=round(total, 1), desc="trials (by expected time)", disable=not show_progress,
               dynamic_ncols=True, file=sys.stderr, unit="s", bar_format="{l_bar}{bar}| {postfix} [{elapsed}<{remaining}]")
    state = {"done": 0}

    def on_start(p: Planned) -> None:
        bar.set_postfix_str(f"{state['done']}/{len(todo)} trials; now {trial_label(p)}")

    def on_done(p: Planned, out: Outcome) -> None:
        state["done"] += 1
        bar.update(round(expected[p.spec.trial_id], 1))
        if out.status == "elsewhere":
            summary.elsewhere += 1
        elif out.status == "ok":
            summary.ok += 1
            tqdm.write(f"ok     {out.label}: {out.message}", file=sys.stderr)
        else:
            summary.failed += 1
            tqdm.write(f"FAILED {out.label}: {out.message}", file=sys.stderr)

    use_workers = jobs > 1 if workers is None else workers
    if engine is not None:
        from benchmark.dask_executor import DaskExecutor

        executor: Any = DaskExecutor(runner, jobs, list(includes or []), **engine)
    elif use_workers:
        executor = ProcessExecutor(runner, jobs, list(includes or []))
    else:
        executor = LocalExecutor(runner)
    try:
        executor.map(todo, on_start, on_done)
    finally:
        bar.close()
    return summary
