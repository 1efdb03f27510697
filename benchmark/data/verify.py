"""Checking a dataset folder against the checksums its card publishes.

A file is verified when its sha256 equals the card's published value, or, where the source publishes
none for that file (ML-1M's ``ratings.dat``, KuaiRand's logs), when it equals the value ``data fetch``
recorded in the folder's manifest after the archive itself matched its published checksum. Hashes of
large files are remembered by (path, size, mtime) so a 2 GB log is hashed once, not on every run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.data.card import DatasetCard
from benchmark.errors import BenchError
from benchmark.files import atomic_write, cache_root

MANIFEST = ".promo-bench-verified.json"
CHUNK = 1 << 20


def digest(path: Path, algo: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _hash_cache_path() -> Path:
    return cache_root() / "file-hashes.json"


def cached_sha256(path: Path) -> str:
    """sha256 of ``path``, reused while its size and modification time are unchanged."""
    stat = path.stat()
    key = str(path.resolve())
    store = _hash_cache_path()
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    hit = known.get(key)
    if hit and hit.get("size") == stat.st_size and hit.get("mtime_ns") == stat.st_mtime_ns:
        return hit["sha256"]
    value = digest(path)
    known[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": value}
    write_json_atomic(store, known)
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """JSON through the one atomic write (benchmark/files.py); a read-only place is skipped, since the hash cache
    is an optimisation and the manifest is then simply absent."""
    text = json.dumps(data, indent=1, sort_keys=True).encode("utf-8")
    try:
        atomic_write(path, lambda fh: fh.write(text))
    except OSError:
        return


def find_file(folder: Path, rel: str) -> Path | None:
    """``rel`` under ``folder``, or any tail of it (``KuaiRand-Pure/data/x.csv``, ``data/x.csv``, ``x.csv``),
    so a folder pointed at any level of the official layout is found."""
    parts = Path(rel).parts
    for k in range(len(parts)):
        candidate = folder.joinpath(*parts[k:])
        if candidate.is_file():
            return candidate
    return None


def find_manifest(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The manifest ``data fetch`` wrote: in the folder or up to two levels above it."""
    for base in (folder, folder.parent, folder.parent.parent):
        path = base / MANIFEST
        if path.is_file():
            try:
                return path, json.loads(path.read_text())
            except ValueError:
                return None
    return None


@dataclass
class Verification:
    """What was checked and how it came out; ``status`` is verified, embedded or unverified."""

    status: str
    files: dict[str, str] = field(default_factory=dict)  # rel -> "sha256 ok" / "missing" / "mismatch ..."
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("verified", "embedded")

    def as_record(self) -> dict[str, Any]:
        return {"status": self.status, "files": dict(self.files), "problems": list(self.problems)}

    def summary(self) -> str:
        return self.status if self.ok else f"unverified: {'; '.join(self.problems)}"


def verify_files(card: DatasetCard, folder: Path, needed: list[str], embedded: bool = False) -> Verification:
    """Check each needed file of ``card`` inside ``folder``; every problem is named."""
    published = card.files
    manifest = find_manifest(folder)
    recorded = manifest[1].get("files", {}) if manifest else {}
    result = Verification(status="embedded" if embedded else "verified")
    for rel in needed:
        path = find_file(folder, rel)
        if path is None:
            result.files[rel] = "missing"
            result.problems.append(f"{rel} is missing")
            continue
        want = published.get(rel, "")
        source = "the card"
        if not want:
            want, source = recorded.get(rel, ""), f"{manifest[0]} (from the verified archive)" if manifest else ""
        if not want:
            result.files[rel] = "no checksum"
            result.problems.append(f"{rel}: the source publishes no checksum for it and no verified archive "
                                   f"recorded one (run `promo-bench data fetch {card.name}`)")
            continue
        got = cached_sha256(path)
        if got != want:
            result.files[rel] = f"mismatch: sha256 {got}"
            result.problems.append(f"{path}: sha256 {got[:12]}… differs from {want[:12]}… in {source} "
                                   f"(a partial or modified copy)")
        else:
            result.files[rel] = "sha256 ok"
    if result.problems:
        result.status = "unverified"
    return result


def require_verified(card: DatasetCard, verification: Verification, allow_unverified: bool) -> None:
    if verification.ok or allow_unverified:
        return
    raise BenchError(f"dataset {card.name!r} failed verification: {'; '.join(verification.problems)}. "
                     f"Fetch the official files with `promo-bench data fetch {card.name}`, or pass "
                     f"--allow-unverified to use this copy anyway (every record and table made from it says so)")
