"""Trials on a Dask cluster (``--executor dask``): a local cluster of ``--jobs`` worker processes, or an existing one
(``--address tcp://host:8786`` or ``--scheduler-file FILE``: SSH, SLURM/PBS through dask-jobqueue, Kubernetes).

Why Dask: recbole 1.2.1 pins ``ray<=2.6.3``, which no longer imports with current setuptools, so Ray cannot sit
next to recbole; Dask distributed has no such pin, runs the same code on a laptop and on every common scheduler, and
starts one worker process per task slot (``dask worker ADDR --nworkers K --nthreads 1``: K trials per machine, or per
GPU with ``CUDA_VISIBLE_DEVICES`` set). It is an optional extra (``.[dask]``). Trials are not thread-safe (torch's
global state), so every worker must have one thread; the preflight refuses others.

What travels: each task carries the trial's spec and its *source* (dataset name, data folder, reader options,
protocol and its parameters), never arrays. A worker reads the data by path (a shared filesystem, or the same
embedded dataset), rebuilds the split (from the split cache by hash, or from scratch: deterministic) and refuses to
run when its split hash differs from the plan's. Fitted backbones are shared through the on-disk cache and its
claims where ``$PROMO_BENCH_CACHE`` is shared; elsewhere a worker fits its own (same seed: same numbers). Records
go to the results folder, which must be the same folder on every worker: before the first trial each worker must
read a token the parent wrote there and run the same harness and method versions, or the run stops with a one-line
error naming the worker.

A worker that dies mid-trial loses that trial only: the scheduler gives it to another worker (its claim is an OS
lock, released with the dead process). A trial that kills every worker it lands on is reported failed after
Dask's ``distributed.scheduler.allowed-failures`` retries, and the rest of the plan finishes.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from benchmark.errors import BenchError
from benchmark.executors import Outcome, TrialRunner, trial_label

PROBE = ".executor-probe"


def _client(address: str | None, scheduler_file: str | None, jobs: int, threads: int) -> tuple[Any, Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise BenchError("--executor dask needs Dask distributed: pip install -e '.[dask]' (or pip install "
                         "'dask[distributed]')") from exc
    if address or scheduler_file:
        try:
            client = Client(address, timeout="30s") if address else Client(scheduler_file=scheduler_file,
                                                                               timeout="30s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise BenchError(f"--executor dask: cannot reach the scheduler at {address or scheduler_file}: "
                             f"{exc}") from exc
        return client, None
    # a cluster on this machine: one single-threaded worker process per job, the cores split between them (torch
    # threads are set per task from `threads`); no dashboard, quiet logs
    cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR, env={"OMP_NUM_THREADS": str(threads)})
    return Client(cluster), cluster


def _check_worker(probe: str, token: str, harness: str, versions: dict[str, str], includes: list[str],
                  data_dirs: tuple[str, ...] = ()) -> str:
    """Run on every worker before any trial: '' when it can serve this plan, else why not (one line)."""
    from benchmark.identity import harness_hash
    from benchmark.registry import get_method, identity_version, include

    try:
        seen = Path(probe).read_text()
    except OSError:
        seen = None
    if seen != token:
        return (f"cannot see the results folder {Path(probe).parent} (the parent's token is not there): give every "
                f"worker the same folder on a shared filesystem")
    for folder in data_dirs:
        if not Path(folder).is_dir():
            return f"cannot see the data folder {folder}: give every worker the same path (a shared filesystem)"
    if harness_hash() != harness:
        return f"runs other harness code (hash {harness_hash()}, the parent's {harness}): install the same commit"
    try:
        for path in includes:
            include(path)
        for name, version in versions.items():
            have = identity_version(get_method(name))
            if have != version:
                return f"has method {name} version {have}, the parent's is {version}: install the same commit"
    except BenchError as exc:
        return str(exc)
    return ""


def _run_on_worker(p: Any, wait_for_claim: bool, config: dict[str, Any]) -> Outcome:
    """The task: this worker's runner (made once per worker process and configuration), then the trial."""
    from benchmark import executors

    from distributed import get_worker

    key = repr(sorted(config.items()))
    if executors._WORKER.get("config") != key:
        threads = config["threads_by_host"].get(_host(get_worker().address), 1)
        executors._worker_init(config["store_root"], _device(config["device"]), config["force"],
                               config["save_scores"], threads, config["includes"], run_id=config["run_id"])
        executors._WORKER["config"] = key
    return executors._worker_run(p, wait_for_claim)


def _host(address: str) -> str:
    """``tcp://10.0.0.5:40123`` -> ``10.0.0.5``: the workers of one machine split its cores."""
    return address.split("://")[-1].rsplit(":", 1)[0]


def _device(device: str) -> str:
    """``cuda`` on a worker: the GPU given by the worker's name on a local multi-GPU cluster (worker i on GPU
    i mod n), else what CUDA_VISIBLE_DEVICES leaves it (an external cluster starts one worker per GPU)."""
    if device != "cuda":
        return device
    import torch

    from distributed import get_worker

    name = get_worker().name
    n = torch.cuda.device_count()
    return f"cuda:{name % n}" if isinstance(name, int) and n > 1 else "cuda"


class DaskExecutor:
    """Submits every trial as one Dask task (highest expected cost first: Dask's priority), collects outcomes as
    they finish; trials another process held are resubmitted, waiting for their claim, at the end."""

    def __init__(self, runner: TrialRunner, jobs: int, includes: list[str], address: str | None = None,
                 scheduler_file: str | None = None) -> None:
        """``jobs``: the local cluster's workers (``--trials-per-gpu K`` on G GPUs: K*G, worker i on GPU i mod G)."""
        self.runner, self.includes = runner, list(includes)
        self.address, self.scheduler_file = address, scheduler_file
        self.jobs = jobs
        self.threads_by_host: dict[str, int] = {}  # filled by the preflight: the cores split between a host's workers

    def _config(self) -> dict[str, Any]:
        r = self.runner
        return {"store_root": str(r.store.root.resolve()), "device": r.device.type if r.device.index is None
                else str(r.device), "force": r.force, "save_scores": r.save_scores,
                "run_id": r.run_id, "threads_by_host": dict(self.threads_by_host),
                "includes": [str(Path(i).resolve()) for i in self.includes]}

    def _preflight(self, client: Any, tasks: list[Any]) -> None:
        from benchmark.identity import harness_hash

        probe = self.runner.store.root / PROBE
        token = uuid.uuid4().hex
        probe.write_text(token)
        versions = {p.spec.method: p.spec.method_version for p in tasks}
        data_dirs = tuple(sorted({str(Path(p.source[1]).resolve()) for p in tasks if p.source and p.source[1]}))
        try:
            answers = client.run(_check_worker, str(probe.resolve()), token, harness_hash(), versions,
                                 self._config()["includes"], data_dirs)
        finally:
            probe.unlink(missing_ok=True)
        if not answers:
            raise BenchError("--executor dask: the cluster has no workers")
        for worker, problem in sorted(answers.items()):
            if problem:
                raise BenchError(f"dask worker {worker} {problem}")
        workers = client.scheduler_info()["workers"]
        for address, w in sorted(workers.items()):
            if w.get("nthreads", 1) != 1:  # two trials in one process would share torch's global state
                raise BenchError(f"dask worker {address} has {w['nthreads']} threads; trials need one each: start "
                                 f"workers with `--nthreads 1` and `--nworkers K` for K trials per machine or GPU")
        per_host: dict[str, int] = {}
        for address in workers:
            per_host[_host(address)] = per_host.get(_host(address), 0) + 1
        cores = client.run(os.cpu_count)
        self.threads_by_host = {_host(a): max(1, (cores.get(a) or 1) // per_host[_host(a)]) for a in workers}

    def map(self, tasks: list[Any], on_start: Callable[[Any], None], on_done: Callable[[Any, Outcome], None]) -> None:
        from distributed import as_completed

        if not tasks:
            return
        client, cluster = self._client_for_run()
        try:
            self._preflight(client, tasks)
            config = self._config()
            by_id = {p.spec.trial_id: p for p in tasks}

            def submit(p: Any, rank: int, waits: bool) -> Any:
                source = p.source
                if source and source[1]:  # a data folder by absolute path: a remote worker has another cwd
                    source = (source[0], str(Path(source[1]).resolve()), *source[2:])
                slim = replace(p, cls=None, split=None, inter=None, source=source)  # the worker rebuilds these
                return client.submit(_run_on_worker, slim, waits, config, key=f"trial-{p.spec.trial_id}-{int(waits)}",
                                     priority=-rank, pure=False)

            futures = {submit(p, k, False): p for k, p in enumerate(tasks)}
            for p in tasks[:self.jobs]:
                on_start(p)
            deferred: list[Any] = []
            waiting = as_completed(list(futures))
            for fut in waiting:
                p = futures.pop(fut)
                out = self._outcome(fut, p)
                if out.status == "deferred":
                    deferred.append(p)
                else:
                    on_done(by_id[p.spec.trial_id], out)
                if not futures and deferred:  # the rest is done: now wait for the trials another process holds
                    print(f"waiting for {len(deferred)} trials that another process on {self.runner.store.root} is "
                          f"running", file=sys.stderr)
                    for k, q in enumerate(deferred):
                        f = submit(q, k, True)
                        futures[f] = q
                        waiting.add(f)
                    deferred = []
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    def _client_for_run(self) -> tuple[Any, Any]:
        return _client(self.address, self.scheduler_file, self.jobs, max(1, (os.cpu_count() or 1) // self.jobs))

    @staticmethod
    def _outcome(fut: Any, p: Any) -> Outcome:
        from distributed import KilledWorker

        try:
            return fut.result()
        except KilledWorker:
            return Outcome(p.spec.trial_id, "failed", trial_label(p),
                           "every worker that ran it died (killed, out of memory or a native crash), Dask's "
                           "allowed-failures retries included; nothing stored, a rerun retries it")
        except Exception as exc:  # noqa: BLE001 - the harness around the trial failed on the worker: say so, go on
            return Outcome(p.spec.trial_id, "failed", trial_label(p),
                           f"not run (nothing stored; a rerun retries it): {type(exc).__name__}: {exc}")
