"""``promo-bench tune``: validation-only hyperparameter search with one budget for every method (Optuna).

Why Optuna: TPE and median pruning are its defaults, and its RDB storage on SQLite makes a study a file in the
results folder, so a killed study resumes and several workers or machines share one study by pointing at it.

What keeps tuning honest:
- the objective is the protocol's validation metric, computed on a split whose test part has been removed
  (``validation_only``): no code path of a tuning trial can read a test event, and a test asserts it;
- each trial trains on ``TUNE_SEED``, never one of the trial seeds 0..N-1 that ``run --tuned`` reports;
- every method gets the same number of trials (``--trials``) and, with ``--timeout``, the same wall-clock cap;
- a study's name carries the method's identity version, the harness hash, the split hash and the budget, so a
  change to any of them starts a new study instead of mixing old and new scores.

Backbones a method fetches (``ctx.fitted``) keep their default options while the method itself is tuned; tune the
backbone as its own method (``sasrec``, ``dssm-sasrec``) to change it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any

from benchmark.errors import BenchError
from benchmark.protocols.split import Split

TUNE_SEED = 1000  # not a trial seed: run --tuned reports seeds 0..N-1 on configurations chosen here
STORAGE = "tuning/studies.db"  # under the results folder


def validation_only(split: Split) -> Split:
    """The split without its test part: what a tuning trial is given."""
    arrays = {k: v for k, v in split.arrays.items() if not k.startswith("test/")}
    meta = dict(split.meta)
    if "parts" in meta:
        meta["parts"] = {k: v for k, v in meta["parts"].items() if k != "test"}
    return Split(meta=meta, arrays=arrays)


HEARTBEAT = (60, 600)  # seconds: a running trial's process records a beat each minute; ten silent minutes = dead


def open_storage(results: Path) -> Any:
    """The results folder's study storage. Optuna creates the SQLite schema when it first opens a file, and two
    ``tune`` processes started together on a new file both create it (``UNIQUE constraint failed:
    alembic_version``), so the opening happens under a file lock; connections wait for a busy database (one
    minute) instead of failing while another process writes.

    A killed process leaves its trial RUNNING; with a queued start-up point that point would be lost. So running
    trials beat (Optuna's heartbeat), and the next process to start a trial fails a trial silent for
    ``HEARTBEAT[1]`` seconds and queues its configuration again (Optuna's retry callback); the failed one is not
    counted against the budget (``counted_trials``)."""
    optuna = _optuna()
    from filelock import FileLock

    path = Path(results) / STORAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock", thread_local=False, is_singleton=False), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # experimental since Optuna 2.8/2.9
        return optuna.storages.RDBStorage(
            f"sqlite:///{path.resolve()}", engine_kwargs={"connect_args": {"timeout": 60}},
            heartbeat_interval=HEARTBEAT[0], grace_period=HEARTBEAT[1],
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback())


def study_name(method: str, identity: str, harness: str, dataset: str, protocol: str, split_hash: str,
               budget: str) -> str:
    return f"{method}|v{identity}|h{harness}|{dataset}|{protocol}|{split_hash[:16]}|{budget}"


def _optuna():
    try:
        import optuna
    except ImportError:
        raise BenchError("promo-bench tune needs Optuna: pip install 'promo-bench[tune]' (or pip install optuna)") from None
    return optuna


@dataclasses.dataclass
class StudyResult:
    method: str
    study: str
    n_complete: int
    n_pruned: int
    n_failed: int
    best_value: float | None
    best_params: dict[str, Any]
    seconds: float


def tune_method(cls: Any, split: Split, inter: Any, device: Any, budget: str, n_trials: int, results: Path,
                timeout: float | None = None, cache: Any = None) -> StudyResult:
    """Run the method's study up to ``n_trials`` finished trials (a resumed study counts the ones it has)."""
    optuna = _optuna()
    from benchmark.budgets import overrides
    from benchmark.config import resolve_options
    from benchmark.identity import harness_hash
    from benchmark.registry import identity_version
    from benchmark.space import suggest
    from benchmark.trial import TrialEnvironment, seed_everything

    if not cls.search_space:
        raise BenchError(f"method {cls.name!r} declares no search_space; nothing to tune")
    tuning_split = validation_only(split)
    env = TrialEnvironment(tuning_split, inter, device, cache)
    base, _ = resolve_options(cls.name, cls.defaults, overrides(cls, budget), {}, cls.option_ranges)
    metric = env.protocol.VALID_METRIC
    name = study_name(cls.name, identity_version(cls), harness_hash(), inter.label_name, split.meta["protocol"],
                      split.hash, budget)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = join_study(name, results, lambda trial: suggest(trial, cls.search_space, base))
    study.set_user_attr("method", cls.name)
    study.set_user_attr("metric", f"valid {metric}")
    study.set_user_attr("split_hash", split.hash)
    study.set_user_attr("tune_seed", TUNE_SEED)
    study.set_user_attr("defaults", json.loads(json.dumps(base, default=str)))
    study.set_user_attr("budget", max(n_trials, study.user_attrs.get("budget", 0)))

    def objective(trial: Any) -> float:
        options = dict(base)
        options.update(suggest(trial, cls.search_space, base))
        audit = bool(options.get("audit_leak", False))
        ctx = env.context(TUNE_SEED, budget, audit, cls)
        step = {"n": 0}
        inner = ctx.validate

        def validate(m: Any) -> float:  # each validation pass is a pruning point
            value = inner(m)
            trial.report(value, step["n"])
            step["n"] += 1
            if trial.should_prune():
                raise optuna.TrialPruned()
            return value

        seed_everything(TUNE_SEED)
        method = cls(options, dataclasses.replace(ctx, validate=validate))
        method.fit(env.views.train(audit))
        return float(env.evaluator.validate(env, method, TUNE_SEED, audit, metric))

    t0 = time.perf_counter()
    with warnings.catch_warnings():  # a killed process's silent trial gives its slot back (queued again) first
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    if len(budget_slots(study, optuna, n_trials)) < n_trials:
        # the study's total, not this process's: processes sharing the study stop together at n_trials, counting
        # the trials still running elsewhere, so none starts a trial past the budget
        def stop(study: Any, _trial: Any) -> None:
            if len(budget_slots(study, optuna, n_trials)) >= n_trials:
                study.stop()

        study.optimize(objective, n_trials=n_trials - len(budget_slots(study, optuna, n_trials)), timeout=timeout,
                       catch=(Exception,), callbacks=[stop])
    counted = counted_trials(study, optuna, n_trials)
    states = [t.state for t in counted]
    complete = [t for t in counted if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    return StudyResult(cls.name, name, len(complete), states.count(optuna.trial.TrialState.PRUNED),
                       states.count(optuna.trial.TrialState.FAIL), best.value if best else None,
                       dict(best.params) if best else {}, time.perf_counter() - t0)


STARTUP = 10  # random start-up points before TPE models the scores (Optuna's TPE default)
SAMPLER = (f"TPE (seed 0); its first {STARTUP} random start-up points are queued once per study, so processes "
           f"sharing a study never repeat one; the k-th process to join draws with seed k")
OLD_SAMPLER = "TPE (seed 0)"  # studies made before the queue (one process each, which this code reproduces)


def join_study(name: str, results: Path, point: Any) -> Any:
    """Create or load a study and join it as its next process.

    Every process used to build ``TPESampler(seed=0)``, so two processes starting on one study drew the same random
    start-up points: stop 31 counted 15 distinct configurations among SASRec's 20 trials, an unequal budget. Now the
    process that creates the study enqueues the start-up points (the ones ``TPESampler(seed=0)`` draws, through
    ``point``, which suggests a configuration from a trial), processes pull them from the queue, and the k-th process
    to join samples with seed k afterwards. A study run by one process draws exactly what it drew before."""
    optuna = _optuna()
    from filelock import FileLock

    storage = open_storage(results)
    with FileLock(f"{Path(results) / STORAGE}.join.lock", thread_local=False, is_singleton=False):
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
        if not study.trials and "sampler" not in study.user_attrs:
            for params in startup_points(point):
                study.enqueue_trial(params)
            study.set_user_attr("sampler", SAMPLER)
        index = int(study.user_attrs.get("processes", 0))
        study.set_user_attr("processes", index + 1)
    return optuna.load_study(study_name=name, storage=storage,
                             sampler=optuna.samplers.TPESampler(seed=index, n_startup_trials=0),
                             pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2))


def startup_points(point: Any) -> list[dict[str, Any]]:
    """The first ``STARTUP`` configurations a lone ``TPESampler(seed=0)`` draws (its seeded random start-up)."""
    optuna = _optuna()
    scratch = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=STARTUP))
    out = []
    for _ in range(STARTUP):
        trial = scratch.ask()
        out.append(point(trial))
        scratch.tell(trial, 0.0)  # start-up draws ignore the scores
    return out


def _finished_states(optuna: Any) -> tuple[Any, ...]:
    return (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


def study_budget(study: Any) -> int:
    """The trials a study was asked for (the largest ``--trials``); a study from before the budget was recorded
    counts every trial it holds, running ones too, so an interrupted one reads as unfinished."""
    return int(study.user_attrs.get("budget", len(study.trials)))


def budget_slots(study: Any, optuna: Any, budget: int) -> list[Any]:
    """The study's first ``budget`` trials in the order they started, finished or still running: the trials its
    result is chosen from once all of them have finished. A trial that starts after them (a process sharing the
    study that found a slot free before another's trial finished) is never counted, and a trial failed for its
    silence and queued again is replaced by its rerun, so every method's configuration is chosen from exactly its
    budget, and the same set whenever it is read."""
    retried = {n for t in study.trials for n in t.system_attrs.get("retry_history", ())}
    started = (*_finished_states(optuna), optuna.trial.TrialState.RUNNING)
    return sorted((t for t in study.trials if t.state in started and t.number not in retried),
                  key=lambda t: t.number)[:budget]


def counted_trials(study: Any, optuna: Any, budget: int) -> list[Any]:
    """The finished trials of ``budget_slots``: fewer than ``budget`` while one of the slots still runs (a study
    whose result is not final yet), and never a trial started after the slots."""
    return [t for t in budget_slots(study, optuna, budget) if t.state in _finished_states(optuna)]


def best_options(results: Path, name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(best parameters, the study's description for the record) of a stored study, or None if it has no finished
    trial."""
    optuna = _optuna()
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(results))
    except KeyError:
        return None
    budget = study_budget(study)
    counted = counted_trials(study, optuna, budget)
    complete = [t for t in counted if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return None
    best = max(complete, key=lambda t: t.value)
    states = [t.state for t in counted]
    info = {"study": name, "storage": STORAGE, "n_trials": len(counted), "budget": budget,
            "n_complete": len(complete),
            "n_pruned": states.count(optuna.trial.TrialState.PRUNED), "best_trial": best.number,
            "best_valid": best.value, "metric": study.user_attrs.get("metric"), "tune_seed": TUNE_SEED,
            "sampler": study.user_attrs.get("sampler", OLD_SAMPLER),
            "pruner": "median (5 startup trials, 2 warm-up steps)"}
    return dict(best.params), info


def tuned_variant(params: dict[str, Any]) -> str:
    """A tuned row's variant label: stable per configuration, so two tunings never share a row."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return "tuned=" + hashlib.sha256(blob).hexdigest()[:8]
