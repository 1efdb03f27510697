"""ResultStore: one JSON record per trial plus an ``.npz`` of per-event vectors, written atomically.

Layout: ``<root>/<dataset>/<protocol>/<method>/<trial_id>.{npz,json}``. The vectors are written
first and the JSON last, each through a temporary file and a rename, so a record exists only once
everything it points to is complete. A killed write leaves at most a ``.tmp-<trial id>.*`` file; the next
process to claim that trial (``benchmark.claims``) removes it. Opening the store removes nothing: a live writer's
temporary file is not abandoned, and ``status`` or ``report`` must never break a running ``run``.
"""

from __future__ import annotations

import json
import re
import os
import sys
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from benchmark.errors import BenchError
from benchmark.files import TMP_PREFIX, atomic_write, writable_folder

SCHEMA_VERSION = 1


def _version_key(version: str) -> tuple:
    """Versions compare run by run, digits as numbers: "10" > "9", and a method's version with its backbones'
    (``registry.identity_version``: "2+dssm-sasrec:(1+sasrec:10)") compares its own version first, then each
    backbone's in name order, so sasrec 10 is newer than sasrec 9 and "3" newer than "2+bpr-mf:2"."""
    return tuple((0, int(run), "") if run.isdigit() else (1, 0, run)
                 for run in re.findall(r"\d+|\D+", str(version)))


def _protocol_key(rec: dict[str, Any]) -> tuple[str, str]:
    return rec["dataset"]["name"], rec["protocol"]["name"]


def _protocol_version(rec: dict[str, Any]) -> str:
    return str(rec["protocol"].get("split", {}).get("protocol_version", ""))


def _row_of(rec: dict[str, Any]) -> tuple:
    """What makes two records one table row (their seeds are averaged)."""
    m = rec["method"]
    return (rec["dataset"]["name"], rec["protocol"]["name"], rec["protocol"].get("split_hash", ""), m["name"],
            m.get("variant", ""), m.get("budget", ""), bool(rec.get("audit", False)))


def _code_identity(rec: dict[str, Any]) -> tuple:
    """The parts of a trial's identity besides its configuration: harness code, features, a plugin's code."""
    ident = rec.get("identity", {})
    return ident.get("harness"), ident.get("features"), ident.get("code")


def json_safe(obj: Any, where: str = "") -> tuple[Any, list[str], list[str]]:
    """``obj`` as plain JSON values, with the paths of what had to change: (value, non-finite, converted).

    A method's fit info may hold NumPy or torch scalars and arrays, or a NaN loss; the record must still be
    written (a run never aborts on it): scalars and arrays become numbers and lists, NaN and infinities become
    null and are listed in the record's ``nonfinite``, anything else becomes its ``str`` and is listed in
    ``converted``."""
    nonfinite: list[str] = []
    converted: list[str] = []

    def walk(x: Any, path: str) -> Any:
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, int):
            return int(x)
        if isinstance(x, float):
            if x != x or x in (float("inf"), float("-inf")):
                nonfinite.append(path or "value")
                return None
            return float(x)
        if isinstance(x, dict):
            return {str(k): walk(v, f"{path}.{k}" if path else str(k)) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(x)]
        if hasattr(x, "tolist") and callable(x.tolist) and hasattr(x, "dtype"):  # NumPy or torch values
            converted.append(f"{path or 'value'} ({type(x).__module__}.{type(x).__name__})")
            v = x.detach().cpu().tolist() if hasattr(x, "detach") else x.tolist()
            return walk(v, path)
        converted.append(f"{path or 'value'} ({type(x).__name__} stored as text)")
        return str(x)

    return walk(obj, where), nonfinite, converted


RECORD_KEYS = ("trial_id", "status", "dataset", "protocol", "method")


def record_problem(rec: Any) -> str | None:
    """What makes a parsed record unusable, or None: readers skip such a record and name it."""
    if not isinstance(rec, dict):
        return f"expected a JSON object, found {type(rec).__name__}"
    missing = [k for k in RECORD_KEYS if k not in rec]
    if missing:
        return f"missing {', '.join(missing)}"
    for part in ("dataset", "protocol", "method"):
        if not isinstance(rec[part], dict) or not isinstance(rec[part].get("name"), str):
            return f"field {part}.name: expected a string"
    if rec["status"] == "ok" and not isinstance(rec.get("metrics"), dict):
        return "status ok but no metrics object"
    return None


class ResultStore:
    def __init__(self, root: str | os.PathLike, create: bool = True) -> None:
        """``create=False`` for readers (``status``, ``report``): a mistyped folder is an error, not a new,
        empty results folder."""
        self.root = Path(root)
        if not create:
            if not self.root.is_dir():
                raise BenchError(f"results folder {self.root}: "
                                 f"{'is not a folder' if self.root.exists() else 'does not exist'}; "
                                 f"pass --results DIR with the folder `promo-bench run` wrote")
            return
        writable_folder(self.root, "results folder", "pass --results DIR with a writable folder")

    def trial_path(self, dataset: str, protocol: str, method: str, trial_id: str) -> Path:
        return self.root / dataset / protocol / method / f"{trial_id}.json"

    def path_for(self, record: dict[str, Any]) -> Path:
        return self.trial_path(record["dataset"]["name"], record["protocol"]["name"], record["method"]["name"],
                               record["trial_id"])

    def sweep(self, path: Path) -> int:
        """Remove the temporary files a killed writer left for this trial; the caller holds the trial's claim,
        so none of them is live."""
        stale = list(path.parent.glob(f"{TMP_PREFIX}{path.stem}.*")) if path.parent.is_dir() else []
        for tmp in stale:
            tmp.unlink(missing_ok=True)
        return len(stale)

    def is_complete(self, path: Path) -> bool:
        """The trial at ``path`` is stored ``ok`` and everything its record points to loads (a truncated ``.npz``
        is not a finished trial: ``run`` redoes it)."""
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if record_problem(rec) is not None or rec["status"] != "ok":
            return False
        if "vectors" in rec:
            try:
                with np.load(path.with_name(rec["vectors"])) as data:
                    for key in data.files:
                        data[key]  # decompresses and checks the CRC of every array
            except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
                return False
        return True

    def write(self, record: dict[str, Any], vectors: dict[str, np.ndarray] | None) -> Path:
        path = self.path_for(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        record, nonfinite, converted = json_safe(dict(record, schema_version=SCHEMA_VERSION))
        if nonfinite:
            record["nonfinite"] = nonfinite  # stored as null; a reader must know they were not numbers
        if converted:
            record["converted"] = converted
        try:
            if vectors is not None:
                npz = path.with_suffix(".npz")
                atomic_write(npz, lambda fh: np.savez_compressed(fh, **vectors))
                record["vectors"] = npz.name
            text = json.dumps(record, indent=1, sort_keys=True, allow_nan=False).encode("utf-8")
            atomic_write(path, lambda fh: fh.write(text))
        except OSError as exc:  # a full disk or a folder gone read-only: no later trial could be stored either
            raise BenchError(f"{path}: cannot store the trial ({exc.strerror or exc}); nothing half-written is "
                             f"left and finished trials are kept; free space and rerun the same command") from None
        return path

    def records(self, warn: bool = True) -> Iterator[tuple[Path, dict[str, Any]]]:
        """Every well-formed record; an unreadable or malformed one is named on stderr and skipped (``run``
        redoes its trial), so one bad file never stops a report."""
        for path in sorted(self.root.glob("*/*/*/*.json")):
            if path.name.startswith("."):
                continue  # a writer's temporary file
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
                problem = record_problem(rec)
            except (OSError, ValueError) as exc:
                problem = f"unreadable ({exc})"
            if problem is None:
                yield path, rec
            elif warn:
                print(f"warning: skipping result record {path}: {problem}; `promo-bench run` redoes its trial",
                      file=sys.stderr)

    def current_records(self, warn: bool = True) -> Iterator[tuple[Path, dict[str, Any]]]:
        """The records a report may use: a report never averages what different code or data produced.

        Left out (and named on stderr): records of a superseded method version; records of a superseded protocol
        version (a new split of the same data and protocol replaces the old one); and, within one table row
        (dataset, protocol, split, method, options, budget), records whose code identity (harness code, content
        features, a plugin's code) is not that of the row's newest record. Their trial ids differ, so all stay on
        disk; rerun the row to bring it up to date."""
        records = list(self.records())
        newest: dict[str, Any] = {}
        newest_protocol: dict[tuple[str, str], Any] = {}
        for _, rec in records:
            name, version = rec["method"]["name"], rec["method"].get("version", "")
            if name not in newest or _version_key(version) > _version_key(newest[name]):
                newest[name] = version
            pk = _protocol_key(rec)
            pv = _protocol_version(rec)
            if pk not in newest_protocol or _version_key(pv) > _version_key(newest_protocol[pk]):
                newest_protocol[pk] = pv
        kept: list[tuple[Path, dict[str, Any]]] = []
        stale: dict[str, int] = {}
        for path, rec in records:
            name, version = rec["method"]["name"], rec["method"].get("version", "")
            pk, pv = _protocol_key(rec), _protocol_version(rec)
            if version != newest[name]:
                label = f"{name} v{version} (current v{newest[name]})"
            elif pv != newest_protocol[pk]:
                label = f"{pk[0]}/{pk[1]} protocol v{pv} (current v{newest_protocol[pk]})"
            else:
                kept.append((path, rec))
                continue
            stale[label] = stale.get(label, 0) + 1
        latest: dict[tuple, tuple[str, Any]] = {}  # row -> (finished, identity) of its newest record
        for _, rec in kept:
            row, ident = _row_of(rec), _code_identity(rec)
            finished = str(rec.get("finished", ""))
            if row not in latest or finished > latest[row][0]:
                latest[row] = (finished, ident)
        for path, rec in kept:
            row = _row_of(rec)
            if _code_identity(rec) == latest[row][1]:
                yield path, rec
            else:
                label = f"{row[3]} on {row[0]}/{row[1]}: trials of older harness code or features"
                stale[label] = stale.get(label, 0) + 1
        if warn and stale:
            listed = ", ".join(f"{label} ({k} trials)" for label, k in sorted(stale.items()))
            print(f"note: leaving out superseded records under {self.root}: {listed}", file=sys.stderr)

    def completed_ids(self) -> set[str]:
        return {rec["trial_id"] for _, rec in self.records() if rec.get("status") == "ok"}

    def vectors(self, json_path: Path) -> dict[str, np.ndarray]:
        npz = json_path.with_suffix(".npz")
        try:
            with np.load(npz) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise BenchError(f"{npz}: unreadable per-event vectors ({type(exc).__name__}: {exc}); "
                             f"`promo-bench run` with the same options redoes the trial") from None
