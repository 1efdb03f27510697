"""Plan trials, skip the stored ones, run the rest in-process, write each record as it finishes."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import torch
from tqdm.auto import tqdm

from benchmark.claims import Claims
from benchmark.config import resolve_options, variant_label
from benchmark.data.card import get_card, list_cards
from benchmark.data.interactions import Interactions
from benchmark.data.loader import check_dataset, load_dataset
from benchmark.data.verify import require_verified
from benchmark.errors import BenchError
from benchmark.fitted import FittedCache
from benchmark.method import Method
from benchmark.protocols import PROTOCOLS, get_split
from benchmark.files import cache_root
from benchmark.protocols.split import Split
from benchmark.registry import get_method, identity_version, registry
from benchmark.store import ResultStore
from benchmark.trial import TrialEnvironment, TrialSpec, run_trial

BUDGETS = ("quick", "paper")


@dataclass
class Planned:
    spec: TrialSpec
    cls: type[Method]
    split: Split
    inter: Interactions


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
         data_options: dict[str, Any] | None = None) -> list[Planned]:
    if budget not in BUDGETS:
        raise BenchError(f"--budget {budget!r}: expected one of {', '.join(BUDGETS)}")
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
                options, changed = resolve_options(name, cls.defaults, cls.budgets.get(budget, {}),
                                                   set_options.get(name, {}), cls.option_ranges)
                origin = registry()[name].origin
                for seed in range(seeds):
                    spec = TrialSpec(method=name, method_version=identity_version(cls), origin=origin, options=options,
                                     variant=variant_label(changed), budget=budget, dataset=inter.label_name,
                                     protocol=protocol, split_hash=split.hash, seed=seed, changed=changed,
                                     features=inter.features_hash())
                    out.append(Planned(spec, cls, split, inter))
    return out


def _epoch_bar(it: Iterable[Any], desc: str) -> Iterator[Any]:
    return iter(tqdm(it, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr))


def _path(store: ResultStore, p: Planned):
    return store.trial_path(p.spec.dataset, p.spec.protocol, p.spec.method, p.spec.trial_id)


def execute(planned: list[Planned], store: ResultStore, device: torch.device, show_progress: bool = True,
            force: bool = False, save_scores: bool = False) -> RunSummary:
    """Run every planned trial that is not stored complete. Each trial is claimed first (``benchmark.claims``):
    a trial another process is running is left to it and waited for at the end, then redone here only if that
    process died without storing it. So N runs on one folder share the plan and none computes a trial twice."""
    todo = planned if force else [p for p in planned if not store.is_complete(_path(store, p))]
    summary = RunSummary(planned=len(planned), skipped=len(planned) - len(todo), ok=0, failed=0)
    if summary.skipped:
        print(f"{summary.skipped} of {len(planned)} trials already stored in {store.root}; skipping them",
              file=sys.stderr)
    claims = Claims(store.root)
    bar = tqdm(total=len(todo), desc="trials", disable=not show_progress, dynamic_ncols=True, file=sys.stderr)
    cache = FittedCache(cache_root() / "fitted")
    envs: dict[str, TrialEnvironment] = {}

    def run_claimed(p: Planned, lock) -> None:
        try:
            path = _path(store, p)
            if not force and store.is_complete(path):  # finished by another process since we planned
                summary.elsewhere += 1
                return
            store.sweep(path)
            s = p.spec
            label = f"{s.method}{'[' + s.variant + ']' if s.variant else ''} {s.dataset}/{s.protocol} seed={s.seed}"
            bar.set_postfix_str(label)
            if p.split.hash not in envs:
                envs.clear()  # one split's device tensors at a time
                envs[p.split.hash] = TrialEnvironment(p.split, p.inter, device, cache, progress=_epoch_bar
                                                      if show_progress else (lambda it, d: iter(it)))
            record, vectors = run_trial(s, p.cls, p.split, p.inter, device, env=envs[p.split.hash],
                                        save_scores=save_scores)
            path = store.write(record, vectors)
            if record["status"] == "ok":
                summary.ok += 1
                metric = PROTOCOLS[s.protocol].VALID_METRIC
                first = next(iter(record["metrics"]["test"]))  # "all" or, on warmup, the base stage
                value = record["metrics"]["test"][first][metric]
                shown = "n/a (no events)" if value is None else f"{value:.4f}"
                tqdm.write(f"ok     {label}: test {first} {metric} {shown} "
                           f"({record['timing']['total_s']:.1f}s) -> {path}", file=sys.stderr)
            else:
                summary.failed += 1
                tqdm.write(f"FAILED {label}: {record['error']} -> {path}", file=sys.stderr)
        finally:
            lock.release()
            bar.update(1)

    deferred: list[Planned] = []
    for p in todo:
        lock = claims.try_claim(p.spec.trial_id)
        if lock is None:
            deferred.append(p)
            continue
        run_claimed(p, lock)
    if deferred:
        print(f"waiting for {len(deferred)} trials that another process on {store.root} is running",
              file=sys.stderr)
    for p in deferred:
        run_claimed(p, claims.wait(p.spec.trial_id))
    bar.close()
    return summary
