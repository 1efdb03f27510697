"""Where trials run: in this process (``local``) or in N worker processes on this machine (``processes``).

Both run each trial through one ``TrialRunner.run``: claim it (``benchmark.claims``), skip it when another
process stored it meanwhile, run it, write its record. So a trial is computed once whichever executor runs it,
and a record does not depend on where it ran: the same code, seed, split and data (split arrays come from the
split cache by hash; a worker that rebuilds a different split refuses to run). Workers share fitted backbones
through the on-disk cache, whose claims make one process train a backbone while the others wait for it.

Each worker gets ``cores // N`` torch threads (at least 1): two processes with default threads on 2 cores
slow each other 6-20x. With ``--device cuda`` the N workers share the GPU (N trials on one GPU: a d=16 model
leaves an H100 mostly idle), or, on G GPUs, take them round-robin. A Dask cluster is the third executor with the
same ``map`` (``benchmark.dask_executor``).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch

from benchmark.claims import Claims
from benchmark.errors import BenchError
from benchmark.fitted import FittedCache
from benchmark.files import cache_root
from benchmark.protocols import PROTOCOLS
from benchmark.store import ResultStore
from benchmark.trial import TrialEnvironment, run_trial

@dataclass
class Outcome:
    """What the parent needs to hear about one planned trial (small: it crosses a process boundary)."""

    trial_id: str
    status: str  # ok | failed | elsewhere (stored by another process) | deferred (another process holds it)
    label: str
    message: str = ""


def trial_label(p: Any) -> str:
    s = p.spec
    return f"{s.method}{'[' + s.variant + ']' if s.variant else ''} {s.dataset}/{s.protocol} seed={s.seed}"


class TrialRunner:
    """One process's state for running planned trials: device, backbone cache, device views per split."""

    def __init__(self, store_root: Path, device: torch.device, force: bool, save_scores: bool,
                 progress: Callable[[Iterable[Any], str], Iterator[Any]], run_id: str = "") -> None:
        """``run_id`` names one ``promo-bench run`` (the parent's, shared by its workers) and is written into
        each record it stores: a trial whose reply was lost with its worker and that the executor (or Dask)
        runs again finds its record and reports it as this run's, not another process's."""
        self.run_id = run_id or uuid.uuid4().hex
        self.store = ResultStore(store_root)
        self.claims = Claims(self.store.root)
        self.device, self.force, self.save_scores, self.progress = device, force, save_scores, progress
        self.cache = FittedCache(cache_root() / "fitted")
        self.envs: dict[str, TrialEnvironment] = {}

    def path(self, p: Any) -> Path:
        return self.store.trial_path(p.spec.dataset, p.spec.protocol, p.spec.method, p.spec.trial_id)

    def run(self, p: Any, wait_for_claim: bool) -> Outcome:
        label = trial_label(p)
        lock = self.claims.wait(p.spec.trial_id) if wait_for_claim else self.claims.try_claim(p.spec.trial_id)
        if lock is None:
            return Outcome(p.spec.trial_id, "deferred", label)
        try:
            path = self.path(p)
            if not self.force and self.store.is_complete(path):  # finished since we planned: by whom?
                stored = json.loads(path.read_text(encoding="utf-8"))
                if stored.get("run_id") == self.run_id:  # by this run, in an attempt whose reply was lost
                    return self._done(p, stored, path, label)
                return Outcome(p.spec.trial_id, "elsewhere", label)
            self.store.sweep(path)
            if p.split.hash not in self.envs:
                self.envs.clear()  # one split's device tensors at a time
                self.envs[p.split.hash] = TrialEnvironment(p.split, p.inter, self.device, self.cache,
                                                           progress=self.progress)
            record, vectors = run_trial(p.spec, p.cls, p.split, p.inter, self.device, env=self.envs[p.split.hash],
                                        save_scores=self.save_scores)
            record = dict(record, run_id=self.run_id)
            return self._done(p, record, self.store.write(record, vectors), label)
        finally:
            lock.release()

    @staticmethod
    def _done(p: Any, record: dict[str, Any], path: Path, label: str) -> Outcome:
        """The outcome of a stored record: its headline test metric, or its error."""
        seconds = float(record["timing"]["total_s"])
        if record["status"] != "ok":
            return Outcome(p.spec.trial_id, "failed", label, f"{record['error']} -> {path}")
        metric = PROTOCOLS[p.spec.protocol].VALID_METRIC
        first = next(iter(record["metrics"]["test"]))  # "all" or, on warmup, the base stage
        value = record["metrics"]["test"][first][metric]
        shown = "n/a (no events)" if value is None else f"{value:.4f}"
        return Outcome(p.spec.trial_id, "ok", label, f"test {first} {metric} {shown} ({seconds:.1f}s) -> {path}")


class LocalExecutor:
    """Trials one after another in this process, in the given order."""

    def __init__(self, runner: TrialRunner) -> None:
        self.runner = runner

    def map(self, tasks: list[Any], on_start: Callable[[Any], None], on_done: Callable[[Any, Outcome], None]) -> None:
        deferred = []
        for p in tasks:
            on_start(p)
            out = self.runner.run(p, wait_for_claim=False)
            if out.status == "deferred":
                deferred.append(p)
                continue
            on_done(p, out)
        if deferred:
            print(f"waiting for {len(deferred)} trials that another process on {self.runner.store.root} is running",
                  file=sys.stderr)
        for p in deferred:
            on_start(p)
            on_done(p, self.runner.run(p, wait_for_claim=True))


# --- worker processes ---------------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _worker_init(store_root: str, device: str, force: bool, save_scores: bool, threads: int,
                 includes: list[str], slots: Any = None, run_id: str = "") -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    if slots is not None:
        device = gpu_for_slot(device, slots)
    from benchmark.registry import include

    for path in includes:  # a plugin file the parent included is included here too
        include(path)
    _WORKER["runner"] = TrialRunner(Path(store_root), torch.device(device), force, save_scores,
                                    lambda it, desc: iter(it), run_id)
    _WORKER["sources"] = {}


def gpu_for_slot(device: str, slots: Any) -> str:
    """Plain ``cuda`` on a machine with G > 1 GPUs: worker k (in start order, from the shared counter) takes
    GPU k mod G, so ``--jobs K*G`` puts K trials on each GPU; anything else is used as given."""
    if device != "cuda" or torch.cuda.device_count() < 2:
        return device
    with slots.get_lock():
        k = slots.value
        slots.value += 1
    return f"cuda:{k % torch.cuda.device_count()}"


def _worker_run(p: Any, wait_for_claim: bool) -> Outcome:
    """Rebuild the trial's data and split from its source (split cache by hash), then run it."""
    from benchmark.data.loader import load_dataset
    from benchmark.protocols import get_split
    from benchmark.registry import get_method

    dataset, data_dir, data_options, protocol, protocol_params = p.source
    sources: dict[Any, Any] = _WORKER["sources"]
    key = repr(p.source)
    if key not in sources:
        sources.clear()
        inter = load_dataset(dataset, data_dir, data_options)
        split, _ = get_split(inter, protocol, protocol_params)
        sources[key] = (inter, split)
    inter, split = sources[key]
    if split.hash != p.spec.split_hash:
        raise BenchError(f"worker {os.getpid()} rebuilt split {split.hash[:12]} of {dataset}/{protocol}, but the plan "
                         f"has {p.spec.split_hash[:12]}: the worker sees other data or code than the parent")
    return _WORKER["runner"].run(replace(p, cls=get_method(p.spec.method), split=split, inter=inter), wait_for_claim)


class ProcessExecutor:
    """``jobs`` worker processes (spawned: a fresh interpreter each, no forked torch state), tasks in the
    given order as workers free up; a trial another process holds is retried, waiting, at the end.

    A worker that dies (killed, out of memory, a crash in native code) breaks the pool: the trials running then
    are retried one at a time in a fresh pool, so the one that kills its worker again is reported failed
    (nothing stored; a rerun retries it) and the others finish."""

    def __init__(self, runner: TrialRunner, jobs: int, includes: list[str]) -> None:
        self.runner, self.jobs, self.includes = runner, jobs, includes
        self.threads = max(1, (os.cpu_count() or 1) // jobs)

    def _pool(self) -> ProcessPoolExecutor:
        r = self.runner
        ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_worker_init,
                                   initargs=(str(r.store.root), str(r.device), r.force, r.save_scores, self.threads,
                                             self.includes, ctx.Value("i", 0), r.run_id))

    def map(self, tasks: list[Any], on_start: Callable[[Any], None], on_done: Callable[[Any, Outcome], None]) -> None:
        by_id = {p.spec.trial_id: p for p in tasks}
        queue = [(replace(p, cls=None, split=None, inter=None), False) for p in tasks]  # the worker rebuilds these
        suspects: list[tuple[Any, bool]] = []  # running when a worker died: retried alone
        deferred: list[Any] = []
        pool = self._pool()
        running: dict[Future, tuple[Any, bool, bool]] = {}  # future -> (task, waits for its claim, runs alone)
        try:
            while queue or suspects or running or deferred:
                if not (queue or suspects or running):  # the trials another process held: wait for them now
                    print(f"waiting for {len(deferred)} trials that another process on {self.runner.store.root} is "
                          f"running", file=sys.stderr)
                    queue, deferred = [(p, True) for p in deferred], []
                while queue and not suspects and len(running) < self.jobs:
                    p, waits = queue.pop(0)
                    on_start(by_id[p.spec.trial_id])
                    running[pool.submit(_worker_run, p, waits)] = (p, waits, False)
                if suspects and not running:
                    p, waits = suspects.pop(0)
                    on_start(by_id[p.spec.trial_id])
                    running[pool.submit(_worker_run, p, waits)] = (p, waits, True)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for fut in done:
                    p, waits, alone = running.pop(fut)
                    try:
                        out = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        if not alone:
                            suspects.append((p, waits))
                            continue
                        out = Outcome(p.spec.trial_id, "failed", trial_label(p),
                                      "its worker process died while running it (killed, out of memory or a native "
                                      "crash); nothing stored, a rerun retries it")
                    except Exception as exc:  # noqa: BLE001 - the harness around the trial failed: say so, go on
                        out = Outcome(p.spec.trial_id, "failed", trial_label(p),
                                      f"not run (nothing stored; a rerun retries it): {type(exc).__name__}: {exc}")
                    if out.status == "deferred":
                        deferred.append(p)
                    else:
                        on_done(by_id[p.spec.trial_id], out)
                if broken:  # every future still in the dead pool fails too: retry those alone
                    suspects += [(p, waits) for p, waits, _ in running.values()]
                    running.clear()
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = self._pool()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
