"""What each stored tuning study cost and found: the figures of docs/reproducing-promo.md's tuning section.

    python perf/tuning_summary.py RESULTS [--at 10]

One row per study in ``RESULTS/tuning/studies.db`` (``promo-bench tune``): the trials its configuration is chosen
from (the study's first N finished, as ``run --tuned`` counts them) split into complete, pruned and failed; their
wall seconds summed (the tuning cost: each ``tune`` process ran with the torch threads it was given, and a method's
first trial includes training its default backbones unless the cache had them); the best validation value, the
trial that found it, and the best among the first ``--at`` trials (a best that no longer moves after TPE's random
start-up is evidence the budget was enough); the chosen options, flagged inert when every trial scored the same
(MetaEmb's own options on ``loo``, where every candidate has a training row and it serves its DeepFM backbone).
Nothing here reads a test event: studies hold validation values only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.tuning import counted_trials, open_storage, study_budget  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--at", type=int, default=10, help="also show the best of the first AT trials")
    ap.add_argument("--startup", action="store_true",
                    help="instead: per study, distinct configurations among the counted trials, and how many of its "
                         "first trials are the start-up points this code queues (tuning.startup_points)")
    ap.add_argument("--trials", metavar="METHOD",
                    help="instead: every trial of METHOD's studies (number, state, counted or not, minutes, value, "
                         "options), e.g. what a trial of each size cost")
    args = ap.parse_args()
    if not (args.results / "tuning" / "studies.db").is_file():
        sys.exit(f"{args.results / 'tuning' / 'studies.db'}: no tuning studies there (run `promo-bench tune` first)")
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(args.results)
    if args.startup:
        return startup_check(optuna, storage)
    if args.trials:
        return trial_list(optuna, storage, args.trials)
    done = optuna.trial.TrialState.COMPLETE
    print(f"| method | budget | complete / pruned / failed | tuning s | s / trial | best valid | best at trial "
          f"| best of first {args.at} | chosen options | study |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for summary in sorted(optuna.get_all_study_summaries(storage), key=lambda s: s.study_name):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        budget = study_budget(study)
        counted = counted_trials(study, optuna, budget)
        if not counted:
            continue
        states = [t.state for t in counted]
        secs = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in counted)
        complete = [t for t in counted if t.state == done]
        name = summary.study_name
        head = (f"| {name.split('|')[0]} | {len(counted)}/{budget} | {states.count(done)} / "
                f"{states.count(optuna.trial.TrialState.PRUNED)} / {states.count(optuna.trial.TrialState.FAIL)} | "
                f"{secs:.0f} | {secs / len(counted):.0f} |")
        if not complete:
            print(f"{head} no complete trial | | | | `{name}` |")
            continue
        best = max(complete, key=lambda t: t.value)
        early = [t.value for t in complete if t.number < args.at]
        opts = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
        if len(complete) > 1 and len({t.value for t in complete}) == 1:
            opts += " (inert: every trial scored the same, the searched options do not act on this protocol)"
        print(f"{head} {best.value:.4f} | {best.number} | {max(early) if early else float('nan'):.4f} | {opts} "
              f"| `{name}` |")


def startup_check(optuna: object, storage: object) -> None:
    """Whether a study's start-up is what this code draws: a study run by one process before the queue, or any study
    since, has its first STARTUP trials equal to the queue; one shared by processes before the fix does not."""
    from benchmark.registry import get_method
    from benchmark.space import suggest
    from benchmark.tuning import STARTUP, startup_points

    print(f"| method | counted | distinct | first {STARTUP} = queued start-up |")
    print("| --- | --- | --- | --- |")
    for summary in sorted(optuna.get_all_study_summaries(storage), key=lambda s: s.study_name):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        counted = counted_trials(study, optuna, study_budget(study))
        space, base = get_method(study.user_attrs["method"]).search_space, study.user_attrs["defaults"]
        queue = startup_points(lambda trial: suggest(trial, space, base))
        first = sorted((t for t in study.trials if t.params), key=lambda t: t.number)[:STARTUP]
        same = sum(dict(t.params) == q for t, q in zip(first, queue))
        distinct = len({tuple(sorted(t.params.items())) for t in counted})
        name = summary.study_name.split("|")[0]
        print(f"| {name} | {len(counted)} | {distinct} | {same}/{min(len(first), STARTUP)} |")


def trial_list(optuna: object, storage: object, method: str) -> None:
    """Each trial of ``method``'s studies, with whether it counts against the budget (``counted_trials``)."""
    print("| study | trial | state | counted | minutes | valid (last reported if pruned) | options |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for summary in sorted(optuna.get_all_study_summaries(storage), key=lambda s: s.study_name):
        if summary.study_name.split("|")[0] != method:
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        counted = {t.number for t in counted_trials(study, optuna, study_budget(study))}
        for t in study.trials:
            minutes = (f"{(t.datetime_complete - t.datetime_start).total_seconds() / 60:.1f}"
                       if t.datetime_complete and t.datetime_start else "")
            value = "" if t.value is None else f"{t.value:.4f}"
            opts = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
            print(f"| {method} | {t.number} | {t.state.name} | {'yes' if t.number in counted else 'no'} | {minutes} "
                  f"| {value} | {opts} |")


if __name__ == "__main__":
    main()
