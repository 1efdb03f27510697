"""Per-event metric vectors of stored trials, grouped into table rows and averaged over seeds."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.errors import BenchError
from benchmark.evaluation import evaluator_for, part_of
from benchmark.metrics import metric_from_counts
from benchmark.store import ResultStore


@dataclass(frozen=True, order=True)
class RowKey:
    """What makes two trials the same table row; seeds are the only thing averaged over."""

    dataset: str
    protocol: str
    split_hash: str
    budget: str
    method: str
    variant: str
    audit: bool

    @property
    def label(self) -> str:
        text = self.method + (f" [{self.variant}]" if self.variant else "")
        return text + (" (AUDIT)" if self.audit else "")


UNVERIFIED = "[unverified]"


def dataset_label(rec: dict) -> str:
    """The dataset as tables show it: data that failed checksum verification (``--allow-unverified``) is
    marked wherever its numbers appear."""
    name = rec["dataset"]["name"]
    return f"{name} {UNVERIFIED}" if rec["dataset"].get("verification", {}).get("status") == "unverified" else name


@dataclass
class RowEvents:
    key: RowKey
    seeds: list[int]
    paths: list[Path]
    origin: str = ""  # the method's distribution and version (or local file and hash) as recorded
    commits: set = field(default_factory=set)  # (git commit, dirty flag) of each trial's code
    failed: list[tuple[int, str]] = field(default_factory=list)  # (seed, error) of its failed trials
    duplicates: list[int] = field(default_factory=list)  # seeds with more than one ok trial (the newest is used)
    capacity: list[dict] = field(default_factory=list)  # each used trial's size and schedule (benchmark/capacity.py)
    tuning: dict = field(default_factory=dict)  # the study a tuned row's configuration came from (benchmark/tuning.py)
    data_status: set = field(default_factory=set)  # the data verification status of its trials' datasets



def completeness_notes(rows: list[RowEvents]) -> list[str]:
    """A table's rows that lack seeds the others have, or whose trials failed: named in the table itself, so a
    mean over fewer seeds (or a missing row) is never read as a full one."""
    everyone = sorted({s for row in rows for s in row.seeds} | {s for row in rows for s, _ in row.failed})
    notes = []
    for row in rows:
        failed = sorted(row.failed)
        missing = [s for s in everyone if s not in row.seeds and s not in {f for f, _ in failed}]
        if failed:
            first = failed[0][1].splitlines()[0][:120]
            what = "every trial failed" if not row.seeds else f"{len(failed)} of {len(failed) + len(row.seeds)} trials failed"
            notes.append(f"{row.key.label}: {what} (seed{'s' if len(failed) > 1 else ''} "
                         f"{', '.join(str(s) for s, _ in failed)}; first error: {first}); "
                         + ("no cells shown" if not row.seeds else f"its cells average seeds {_seeds(row.seeds)} only"))
        if row.duplicates:
            dup = sorted(set(row.duplicates))
            notes.append(f"{row.key.label}: seed{'s' if len(dup) > 1 else ''} {_seeds(dup)} stored more than once "
                         f"(other trial ids, same method version and code); the newest trial of each is used")
        if missing and row.seeds:
            notes.append(f"{row.key.label}: seed{'s' if len(missing) > 1 else ''} {_seeds(missing)} not stored "
                         f"(not run yet, or interrupted); its cells average seeds {_seeds(row.seeds)}")
    return notes


def _seeds(seeds: list[int]) -> str:
    return ", ".join(str(s) for s in seeds)


def capacity_note(rows: list[RowEvents]) -> list[str]:
    """One note with each row's size, trainable parameters (own + backbones') and epochs run over its seeds: the
    methods run at their papers' sizes and schedules, and a reader weighs a row by them (issue 19)."""
    parts = []
    for row in rows:
        caps = row.capacity
        if not caps:
            continue
        c = caps[0]
        size = f"{c['size_option']} {c['size']}, " if c.get("size_option") else ""
        params = f"{c['parameters']:,}" + (f" + {c['backbone_parameters']:,}" if c.get("backbone_parameters") else "")
        epochs = sorted(x["epochs_run"] for x in caps if x.get("epochs_run") is not None)
        ran = (f", {epochs[0]}" + (f"-{epochs[-1]}" if epochs[-1] != epochs[0] else "")
               + f" of {c['max_epochs']} epochs" if epochs else "")
        parts.append(f"{row.key.label}: {size}{params} parameters{ran}")
    from benchmark.method import PATIENCE

    odd = sorted({f"{row.key.label} {row.capacity[0]['patience']}" for row in rows if row.capacity
                  and row.capacity[0].get("patience") not in (None, PATIENCE)})
    notes = ["size and schedule (size option, trainable parameters own + backbones', epochs run over seeds): "
             + "; ".join(parts)] if parts else []
    if odd:
        notes.append(f"early stopping: patience {PATIENCE} (the one rule) except {', '.join(odd)} (each card says why)")
    return notes


def provenance_notes(rows: list[RowEvents]) -> list[str]:
    """Notes for rows whose seeds come from different commits, and one naming the rows made from a modified
    working tree: same method version and harness code, but a reader should know which commit made a number."""
    notes = []
    for row in rows:
        if len(row.commits) > 1:
            named = ", ".join(sorted(f"{(c or 'unknown')[:10]}{' (dirty)' if d else ''}" for c, d in row.commits))
            notes.append(f"{row.key.label}: its seeds come from different commits ({named})")
    dirty = sorted({row.key.label for row in rows if any(d for _, d in row.commits)})
    if dirty:
        notes.append(f"made from a working tree with uncommitted changes: {', '.join(dirty)}")
    return notes


def group_trials(store: ResultStore, records: list[tuple[Path, dict]] | None = None) -> dict[RowKey, RowEvents]:
    """Table rows of the ``ok`` trials, one trial per seed; a row's failed trials ride along in ``failed`` (a row
    whose every trial failed has no seeds: tables name it in a note and show no cells).

    Two ok trials of one seed in one row (same method version and code, other trial ids, e.g. an option added with
    its old behaviour as default) are never averaged together: the newest is used and the row says so. A failed
    trial of a seed that also has an ok trial is superseded and not reported."""
    groups: dict[RowKey, RowEvents] = {}
    ok: dict[RowKey, dict[int, tuple[str, Path, dict]]] = {}
    for path, rec in (records if records is not None else store.current_records(warn=False)):
        key = RowKey(dataset_label(rec), rec["protocol"]["name"], rec["protocol"].get("split_hash", ""),
                     rec["method"].get("budget", ""), rec["method"]["name"], rec["method"].get("variant", ""),
                     bool(rec.get("audit", False)))
        row = groups.setdefault(key, RowEvents(key, [], [], rec["method"].get("origin", "")))
        seed = int(rec.get("seed", -1))
        if rec.get("status") != "ok":
            row.failed.append((seed, str(rec.get("error", "no error recorded"))))
            continue
        mine = ok.setdefault(key, {})
        finished = str(rec.get("finished", ""))
        if seed in mine:
            row.duplicates.append(seed)
            if finished <= mine[seed][0]:
                continue
        mine[seed] = (finished, path, rec)
    for key, row in groups.items():  # seed order, so seed means add up in the same order for every row
        by_seed = ok.get(key, {})
        row.failed = [(s, e) for s, e in row.failed if s not in by_seed]
        for seed in sorted(by_seed):
            _, path, rec = by_seed[seed]
            row.seeds.append(seed)
            row.paths.append(path)
            env = rec.get("env", {})
            row.commits.add((env.get("git_commit"), env.get("git_dirty")))
            row.data_status.add(str(rec.get("dataset", {}).get("verification", {}).get("status", "not recorded")))
            if rec.get("capacity"):
                row.capacity.append(rec["capacity"])
            if rec["method"].get("tuning"):
                row.tuning = rec["method"]["tuning"]
    return groups


class EventCache:
    """Loads each trial's vectors once."""

    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self._vectors: dict[Path, dict[str, np.ndarray]] = {}

    def vectors(self, path: Path) -> dict[str, np.ndarray]:
        if path not in self._vectors:
            try:
                self._vectors[path] = self.store.vectors(path)
            except OSError as exc:
                raise BenchError(f"{path.with_suffix('.npz')}: per-event vectors missing or unreadable ({exc}); "
                                 f"rerun that trial") from None
        return self._vectors[path]

    def events(self, row: RowEvents, split: str, subset: str) -> tuple[np.ndarray, np.ndarray]:
        """(user, item) of the row's events in the subset; every seed must agree."""
        ref = None
        for path in row.paths:
            v = self.vectors(path)
            sel = evaluator_for(row.key.protocol).subset_mask(v, split, subset)
            part = part_of(split)  # a part's full-catalogue ranking ("test.full") has the part's events
            ev = np.stack([v[f"{part}.user"][sel], v[f"{part}.item"][sel]])
            if ref is not None and not np.array_equal(ev, ref):
                raise BenchError(f"{row.key.label}: seeds were evaluated on different events ({path})")
            ref = ev
        assert ref is not None
        return ref[0], ref[1]

    def per_seed(self, row: RowEvents, split: str, subset: str, metric: str) -> np.ndarray:
        """(n_seeds, n_events) values of ``metric`` (any K, derived from the stored s and e)."""
        out = []
        for path in row.paths:
            v = self.vectors(path)
            sel = evaluator_for(row.key.protocol).subset_mask(v, split, subset)
            if f"{split}.s" in v:
                out.append(metric_from_counts(metric, v[f"{split}.s"][sel], v[f"{split}.e"][sel]))
            elif f"{split}.{metric}" in v:  # full ranking: the protocol's metrics are stored, K is fixed
                out.append(v[f"{split}.{metric}"][sel])
            elif split != part_of(split):
                raise BenchError(f"{row.key.label} ({row.key.protocol}): {path.name} has no {split} ranking (a "
                                 f"record from before full-catalogue ranking); rerun it to report {split}")
            else:
                stored = sorted(k.split(".", 1)[1] for k in v if k.startswith(split + ".") and "@" in k)
                raise BenchError(f"{row.key.label} ({row.key.protocol}): metric {metric!r} is not available; "
                                 f"stored: {', '.join(stored)}")
        return np.stack(out)

    def has(self, row: RowEvents, split: str) -> bool:
        """Whether every trial of the row stored the ``split`` ranking (``test.full``: records since issue 36)."""
        return all(f"{split}.s" in self.vectors(p) or part_of(split) == split for p in row.paths)

    def counts(self, row: RowEvents, split: str, count: str) -> np.ndarray | None:
        """The row's per-event target counts (``n_train_pos`` or ``n_prior_pos``) as its first trial stored them;
        None for records that predate them (the caller reads the split cache)."""
        v = self.vectors(row.paths[0])
        key = f"{part_of(split)}.{count}"
        return np.asarray(v[key]) if key in v else None

    def ranks(self, row: RowEvents, split: str, subset: str) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for path in row.paths:
            v = self.vectors(path)
            sel = evaluator_for(row.key.protocol).subset_mask(v, split, subset)
            out.append((v[f"{split}.s"][sel], v[f"{split}.e"][sel]))
        return out


def rows_by_table(groups: dict[RowKey, RowEvents]) -> dict[tuple[str, str], dict[RowKey, RowEvents]]:
    """Tables are per (protocol, budget); datasets become column groups."""
    tables: dict[tuple[str, str], dict[RowKey, RowEvents]] = defaultdict(dict)
    for key, row in sorted(groups.items()):
        tables[(key.protocol, key.budget)][key] = row
    return dict(tables)
