"""ResultStore: one JSON record per trial plus an ``.npz`` of per-event vectors, written atomically.

Layout: ``<root>/<dataset>/<protocol>/<method>/<trial_id>.{npz,json}``. The vectors are written
first and the JSON last, each through a temporary file and a rename, so a record exists only once
everything it points to is complete. A killed write leaves at most a ``.tmp-*`` file, which is
removed the next time the store is opened.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from benchmark.errors import BenchError
from benchmark.files import atomic_write

SCHEMA_VERSION = 1


def _version_key(version: str) -> tuple:
    """Numeric versions compare as numbers ("10" > "9"); anything else as text."""
    return (0, int(version), "") if str(version).isdigit() else (1, 0, str(version))


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


class ResultStore:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise BenchError(f"results folder {self.root}: cannot be written ({exc.strerror or exc}); "
                             f"pass --results DIR with a writable folder") from None
        for stale in self.root.rglob(".tmp-*"):
            stale.unlink(missing_ok=True)

    def path_for(self, record: dict[str, Any]) -> Path:
        return (self.root / record["dataset"]["name"] / record["protocol"]["name"] / record["method"]["name"]
                / f"{record['trial_id']}.json")

    def write(self, record: dict[str, Any], vectors: dict[str, np.ndarray] | None) -> Path:
        path = self.path_for(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = dict(record, schema_version=SCHEMA_VERSION)
        if vectors is not None:
            npz = path.with_suffix(".npz")
            atomic_write(npz, lambda fh: np.savez_compressed(fh, **vectors))
            record["vectors"] = npz.name
        text = json.dumps(record, indent=1, sort_keys=True, allow_nan=False).encode("utf-8")
        atomic_write(path, lambda fh: fh.write(text))
        return path

    def records(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        for path in sorted(self.root.glob("*/*/*/*.json")):
            try:
                yield path, json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise BenchError(f"{path}: unreadable result record ({exc}); delete it to rerun its trial") from None

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
        with np.load(json_path.with_suffix(".npz")) as data:
            return {k: data[k] for k in data.files}
