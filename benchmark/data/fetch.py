"""Downloading, checking and unpacking a dataset's official archive into the data cache.

``download`` resumes a partial file (``.part``) with an HTTP Range request and falls back to a fresh start
when the server ignores it. ``check_archive`` compares the archive with the card's published sha256 (or MD5,
where that is all the source publishes) and deletes a file that does not match, so the next fetch starts
clean. ``safe_extract`` refuses, before writing anything, any member that is absolute, climbs out of the
target with ``..``, or is a link or a device, then unpacks into a temporary folder and moves it into place.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

from tqdm.auto import tqdm

from benchmark.data.card import DatasetCard
from benchmark.data.verify import MANIFEST, cached_sha256, digest, find_file, write_json_atomic
from benchmark.errors import BenchError

TIMEOUT_S = 60
BLOCK = 1 << 16


def download(url: str, dest: Path, progress: bool = True, opener: Callable = urllib.request.urlopen) -> Path:
    """Fetch ``url`` to ``dest`` through ``dest.part``, resuming what an interrupted fetch left there."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = opener(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the partial file is already whole
            os.replace(part, dest)
            return dest
        raise BenchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise BenchError(f"{url}: cannot download ({exc}); check the network, or download it yourself into "
                         f"{dest.parent} and run the command again") from None
    with response:
        resumed = have and response.status == 206
        if resumed:
            start = _range_start(response.headers.get("Content-Range", ""))
            if start != have:
                raise BenchError(f"{url}: asked to resume at byte {have}, the server sent from byte {start}")
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if resumed else 0)) if length else None
        mode = "ab" if resumed else "wb"
        with open(part, mode) as fh, tqdm(total=total, initial=have if resumed else 0, unit="B", unit_scale=True,
                                          desc=dest.name, disable=not progress, leave=False) as bar:
            while True:
                block = response.read(BLOCK)
                if not block:
                    break
                fh.write(block)
                bar.update(len(block))
    size = part.stat().st_size
    if total is not None and size != total:
        raise BenchError(f"{url}: the connection ended at byte {size} of {total}; run the command again to resume")
    os.replace(part, dest)
    return dest


def _range_start(content_range: str) -> int:
    """``bytes 100-199/200`` -> 100."""
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        raise BenchError(f"unreadable Content-Range header {content_range!r}") from None


def archive_digest(card: DatasetCard) -> tuple[str, str] | None:
    """(algorithm, expected hex) the card publishes for its archive, sha256 preferred; None if it has none."""
    for algo in ("sha256", "md5"):
        value = card.source.get(f"archive_{algo}")
        if value:
            return algo, value.lower()
    return None


def check_archive(card: DatasetCard, path: Path) -> str:
    """Compare the archive with the card's checksum; a mismatch deletes it. Returns what was checked."""
    published = archive_digest(card)
    if published is None:
        return "no published archive checksum; files checked one by one"
    algo, want = published
    got = digest(path, algo)
    if got != want:
        path.unlink(missing_ok=True)
        raise BenchError(f"{path}: {algo} {got} does not match the published {want} ({card.path}); the file was "
                         f"deleted. A proxy page, a truncated or a changed file gives this: fetch again, or "
                         f"check the source")
    return f"{algo} ok"


def _member_problem(name: str, kind: str) -> str | None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or (pure.parts and pure.parts[0].endswith(":")):
        return "is an absolute path"
    if ".." in pure.parts:
        return "climbs out of the target folder with '..'"
    if kind != "file" and kind != "dir":
        return f"is a {kind}, which is never extracted"
    return None


def _zip_members(archive: zipfile.ZipFile) -> list[tuple[str, str]]:
    out = []
    for info in archive.infolist():
        mode = info.external_attr >> 16
        kind = "dir" if info.is_dir() else "symlink" if stat.S_ISLNK(mode) else "file"
        out.append((info.filename, kind))
    return out


def _tar_members(archive: tarfile.TarFile) -> list[tuple[str, str]]:
    out = []
    for m in archive.getmembers():
        kind = ("file" if m.isfile() else "dir" if m.isdir() else "symlink" if m.issym() else "hard link"
                if m.islnk() else "device or special file")
        out.append((m.name, kind))
    return out


def safe_extract(archive_path: Path, target: Path) -> list[str]:
    """Unpack a zip or tar archive into ``target``; refuse it whole if any member is unsafe."""
    if zipfile.is_zipfile(archive_path):
        opened: zipfile.ZipFile | tarfile.TarFile = zipfile.ZipFile(archive_path)
        members = _zip_members(opened)
    elif tarfile.is_tarfile(archive_path):
        opened = tarfile.open(archive_path)
        members = _tar_members(opened)
    else:
        raise BenchError(f"{archive_path}: neither a zip nor a tar archive")
    with opened:
        for name, kind in members:
            problem = _member_problem(name, kind)
            if problem:
                raise BenchError(f"{archive_path}: member {name!r} {problem}; refusing to extract anything from "
                                 f"this archive")
        staging = target / ".extracting"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            if isinstance(opened, zipfile.ZipFile):
                opened.extractall(staging)
            else:
                opened.extractall(staging, filter="data")
            for entry in staging.iterdir():
                final = target / entry.name
                if final.is_symlink():  # never delete through a link into someone else's folder
                    raise BenchError(f"{final}: is a symbolic link; refusing to replace it with the archive's "
                                     f"{entry.name}; remove the link or fetch into another --data-dir")
                if final.is_dir():
                    shutil.rmtree(final)
                elif final.exists():
                    final.unlink()
                os.replace(entry, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return [name for name, kind in members if kind == "file"]


def record_manifest(card: DatasetCard, folder: Path, archive: Path, checked: str) -> Path:
    """After a verified archive: the sha256 of every card file found, for files the source gives none for."""
    files = {}
    for rel in card.files:
        path = find_file(folder, rel)
        if path is not None:
            files[rel] = cached_sha256(path)  # the verification right after reuses it: one pass per file
    manifest = folder / MANIFEST
    write_json_atomic(manifest, {"dataset": card.name, "archive": archive.name, "archive_check": checked,
                                 "files": files})
    return manifest


def find_archive(card: DatasetCard, folder: Path) -> Path | None:
    """The card's archive in the folder, also under the names a browser may give it (``name (1).zip`` etc.)."""
    name = card.source.get("archive")
    if not name:
        return None
    exact = folder / name
    if exact.is_file():
        return exact
    stem, suffix = name.split(".", 1)[0], "." + name.split(".", 1)[1] if "." in name else ""
    for candidate in sorted(folder.glob(f"{stem}*{suffix}")):
        if candidate.is_file() and not candidate.name.endswith(".part"):
            return candidate
    return None
