"""What ``promo-bench data list|fetch|verify|info`` does, kept apart from argument parsing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.encode import field_of
from benchmark.data.card import DatasetCard, get_card, list_cards
from benchmark.data.fetch import check_archive, download, find_archive, record_manifest, safe_extract
from benchmark.data.loader import check_dataset, reader_for, reader_options
from benchmark.data.sources import data_root, locate
from benchmark.files import writable_folder
from benchmark.data.verify import Verification, find_file, verify_files
from benchmark.errors import BenchError


def fetch_command(card: DatasetCard) -> str:
    return f"promo-bench data fetch {card.name}"


def dataset_status(name: str, data_dir: str | os.PathLike | None = None,
                   options: dict[str, Any] | None = None) -> tuple[str, str, Verification | None]:
    """(status, where, verification): status is verified, embedded, unverified or absent."""
    card = get_card(name)
    try:
        _, folder, how, verification = check_dataset(name, data_dir, options)
    except BenchError as exc:
        try:
            folder, how = locate(card, data_dir)
        except BenchError:
            return "absent", str(data_root() / card.name), None
        return "absent", f"{how}: {folder} ({exc})", None
    return verification.status, f"{how}: {folder}", verification


def list_rows() -> list[list[str]]:
    rows = []
    for name in list_cards():
        card = get_card(name)
        status, where, verification = dataset_status(name)
        todo = "-" if status in ("verified", "embedded") else fetch_command(card)
        detail = "; ".join(verification.problems) if verification and verification.problems else ""
        rows.append([name, card.title, status + (f" ({detail})" if detail else ""), where, todo])
    return rows


def fetch(name: str, data_dir: str | os.PathLike | None = None, url: str | None = None,
          progress: bool = True, force: bool = False) -> tuple[int, list[str]]:
    """Download (or, for a login-only source, pick up), check and unpack; returns (exit code, messages)."""
    card = get_card(name)
    folder = Path(data_dir) if data_dir else data_root() / card.name
    where = "--data-dir" if data_dir else "the data folder ($PROMO_BENCH_DATA or the cache)"
    writable_folder(folder, where, "pass --data-dir with a writable folder")
    needed = _needed(card, folder)
    if needed and not force:
        existing = verify_files(card, folder, needed)
        if existing.ok:
            return 0, [f"{card.name}: already present and verified in {folder}"]
    out: list[str] = []
    archive = find_archive(card, folder)
    if archive is None and card.manual:
        if any(find_file(folder, rel) for rel in card.files):  # the user put the plain files in place
            return _verified(card, folder, out)
        return 1, [f"{card.title} cannot be downloaded automatically (the source needs a login).",
                   card.source.get("instructions", f"Download it from {card.source['url']}."),
                   f"Folder: {folder}"]
    if archive is None or force:
        archive = folder / card.source["archive"]
        out.append(f"downloading {url or card.source['url']} -> {archive}")
        download(url or card.source["url"], archive, progress=progress)
    checked = check_archive(card, archive)
    out.append(f"{archive.name}: {checked}")
    members = safe_extract(archive, folder)
    out.append(f"extracted {len(members)} files into {folder}")
    manifest = record_manifest(card, folder, archive, checked)
    out.append(f"recorded file checksums in {manifest}")
    return _verified(card, folder, out)


def _needed(card: DatasetCard, folder: Path) -> list[str]:
    """The files the reader would read with the card's options; none yet where its format is not there."""
    try:
        return reader_for(card).needed(card, folder, reader_options(card))
    except BenchError:
        return []


def _verified(card: DatasetCard, folder: Path, out: list[str]) -> tuple[int, list[str]]:
    verification = verify_files(card, folder, reader_for(card).needed(card, folder, reader_options(card)))
    out += [f"  {rel}: {state}" for rel, state in verification.files.items()]
    out.append(f"{card.name}: {verification.summary()}")
    return (0 if verification.ok else 1), out


def verify(name: str, data_dir: str | os.PathLike | None = None,
           options: dict[str, Any] | None = None) -> tuple[int, list[str]]:
    card, folder, how, verification = check_dataset(name, data_dir, options)
    lines = [f"{card.name} ({how}: {folder})"]
    lines += [f"  {rel}: {state}" for rel, state in verification.files.items()]
    lines.append(f"{card.name}: {verification.summary()}")
    return (0 if verification.ok else 1), lines


def _feature_lines(kind: str, names: tuple[str, ...] | list[str]) -> list[str]:
    fields: dict[str, int] = {}
    for n in names:
        fields[field_of(n)] = fields.get(field_of(n), 0) + 1
    listed = ", ".join(f"{f} ({k})" for f, k in fields.items())
    return [f"{kind} features: {len(names)} columns in {len(fields)} fields: {listed or 'none'}"]


def info(name: str, data_dir: str | os.PathLike | None = None,
         options: dict[str, Any] | None = None) -> list[str]:
    """Counts, density, cold share at the card's loo tau, and feature columns; features only if the log is absent."""
    from benchmark.data.loader import load_dataset

    card, folder, how, verification = check_dataset(name, data_dir, options)
    head = [f"{card.title} ({card.name}) from {how}: {folder}", f"files: {verification.summary()}"]
    reader = reader_for(card)
    missing_log = [rel for rel, state in verification.files.items() if state == "missing"]
    if missing_log and hasattr(reader, "read_entities"):
        try:
            inter = load_dataset(name, data_dir, options)
        except BenchError as exc:
            users, items = reader.read_entities(card, folder, reader_options(card, options))
            return head + [f"interactions: not available ({exc})",
                           f"users in the feature table: {len(users.ids):,}", f"items in the feature table: {len(items.ids):,}"] \
                + _feature_lines("user", users.names) + _feature_lines("item", items.names)
    else:
        inter = load_dataset(name, data_dir, options)
    tau = card.protocols.get("loo", {}).get("tau")
    pos = inter.label == 1
    lines = head + [
        f"users: {inter.n_users:,}", f"items: {inter.n_items:,}", f"interactions: {len(inter):,}",
        f"positives: {int(pos.sum()):,} ({pos.mean():.1%}); explicit negatives: {int((~pos).sum()):,}",
        f"density: {len(inter) / max(inter.n_users * inter.n_items, 1):.4%}",
        f"time: {int(inter.time.min())} .. {int(inter.time.max())}",
    ]
    if tau is not None:
        counts = np.bincount(inter.item[pos], minlength=inter.n_items)
        lines.append(f"cold share at tau = {tau} (card's loo): {(counts < tau).mean():.1%} of items have fewer "
                     f"than {tau} positives in the whole log (descriptive; splits count training rows only)")
    for note in inter.provenance.get("notes", []):
        lines.append(f"note: {note}")
    return lines + _feature_lines("user", inter.user_feature_names) + _feature_lines("item", inter.item_feature_names)
