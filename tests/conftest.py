"""Shared fixtures: isolated caches, the shared real data, and small synthetic logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.data.interactions import Interactions

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
WORKER_THREADS = max(1, (os.cpu_count() or 1) // 2)  # what each of 2 worker processes gets


def run_cli(args: list[str], tmp_path: Path, threads: int = WORKER_THREADS, **env: str) -> subprocess.CompletedProcess:
    """``promo-bench run ARGS`` in a fresh process with its own cache and ``threads`` torch threads (a serial run
    at the threads of one of 2 workers gives a worker's floats)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT),
           "PROMO_BENCH_CACHE": str(tmp_path / "cache"), **env}
    return subprocess.run([sys.executable, "-m", "benchmark.cli", "run", *args], env=env, text=True,
                          capture_output=True, timeout=900)


def stored_metrics(results: Path) -> dict[str, dict]:
    """Every stored record's metrics by trial id."""
    from benchmark.store import ResultStore

    return {rec["trial_id"]: rec["metrics"] for _, rec in ResultStore(results, create=False).records()}
GROUPLENS_100K = SHARED / "ml-100k-grouplens" / "ml-100k"


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """Splits and data lookups never touch the user's ~/.cache during tests."""
    root = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("PROMO_BENCH_CACHE", str(root / "cache"))
    monkeypatch.setenv("PROMO_BENCH_DATA", str(root / "data-empty"))


@pytest.fixture
def grouplens_dir() -> Path:
    if not (GROUPLENS_100K / "u.data").is_file():
        pytest.skip(f"real ML-100K GroupLens files not found at {GROUPLENS_100K} (../shared is absent)")
    return GROUPLENS_100K


@pytest.fixture
def embedded_available():
    from benchmark.data.card import get_card
    from benchmark.data.sources import embedded_dir

    if embedded_dir(get_card("ml-100k")) is None:
        pytest.skip("recbole is not installed, so the embedded ML-100K is absent")


GENRE_FLAGS = "|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0"


@pytest.fixture
def tiny_grouplens(tmp_path) -> Path:
    """A few rows in the official GroupLens ML-100K formats (tab data, '|' latin-1 items and users)."""
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    ratings = [(1, 1, 5, 100), (1, 2, 3, 101), (2, 1, 4, 100), (2, 3, 5, 105), (3, 2, 4, 90), (1, 3, 4, 120),
               (3, 4, 2, 130), (2, 4, 4, 130), (1, 4, 5, 140), (3, 1, 5, 150), (3, 3, 4, 150), (2, 2, 1, 160)]
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{880000000 + t}\n" for u, i, r, t in ratings))
    items = [f"1|Toy Story (1995)|01-Jan-1995||http://x{GENRE_FLAGS}", f"2|Caf\u00e9 (1971)|01-Jan-1998||http://x{GENRE_FLAGS}",
             "3|unknown||||1" + "|0" * 18, f"4|Old (1925)|01-Jan-1925||http://x{GENRE_FLAGS}"]
    (folder / "u.item").write_text("\n".join(items) + "\n", encoding="latin-1")
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n3|15|M|student|00000\n")
    return folder


def write_grouplens(folder: Path, n_users: int = 60, n_items: int = 150, per_user: int = 40, seed: int = 0) -> Path:
    """A random log in the official ML-100K formats, big enough for every protocol's split (cards' checks
    pass; checksums do not, so runs need --allow-unverified)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for u in range(1, n_users + 1):
        for i in rng.choice(n_items, per_user, replace=False) + 1:
            lines.append(f"{u}\t{i}\t{rng.integers(1, 6)}\t{880000000 + int(rng.integers(0, 10**6))}\n")
    (folder / "u.data").write_text("".join(lines))
    items = [f"{i}|Film {i} (1990)|01-Jan-1990||http://x" + "".join(f"|{int(b)}" for b in rng.random(19) < 0.2)
             for i in range(1, n_items + 1)]
    (folder / "u.item").write_text("\n".join(items) + "\n", encoding="latin-1")
    jobs = ("technician", "other", "student", "writer", "engineer")
    (folder / "u.user").write_text("".join(f"{u}|{20 + u % 40}|{'MF'[u % 2]}|{jobs[u % 5]}|{10000 + u}\n"
                                           for u in range(1, n_users + 1)))
    return folder


def synthetic(n_users: int = 30, n_items: int = 40, n_rows: int = 900, seed: int = 0, tie_every: int = 3,
              dataset: str = "ml-100k") -> Interactions:
    """A random log with many same-timestamp bursts (every ``tie_every`` rows share a time)."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, n_users, n_rows)
    item = rng.integers(0, n_items, n_rows)
    time = 1000 + (np.arange(n_rows) // tie_every) * 10
    time = rng.permutation(time)  # original row order is not time order
    value = rng.integers(1, 6, n_rows).astype(np.float64)
    return Interactions(
        dataset=dataset, user=user.astype(np.int64), item=item.astype(np.int64), time=time.astype(np.int64),
        value=value, label=(value >= 4).astype(np.int8),
        user_ids=np.array([str(k + 1) for k in range(n_users)], dtype=object),
        item_ids=np.array([str(k + 1) for k in range(n_items)], dtype=object),
        user_features=rng.random((n_users, 3)).astype(np.float32),
        item_features=rng.random((n_items, 4)).astype(np.float32),
        user_feature_names=("a", "b", "c"), item_feature_names=("w", "x", "y", "z"), source="synthetic")


@pytest.fixture(scope="module")
def ml100k() -> Interactions:
    """The real ML-100K: the embedded RecBole copy, else ../shared's GroupLens files, else a clean skip."""
    from benchmark.data.card import get_card
    from benchmark.data.loader import load_dataset
    from benchmark.data.sources import embedded_dir

    if embedded_dir(get_card("ml-100k")) is not None:
        return load_dataset("ml-100k")
    if (GROUPLENS_100K / "u.data").is_file():
        return load_dataset("ml-100k", str(GROUPLENS_100K))
    pytest.skip("no real ML-100K: recbole is not installed and ../shared is absent")


def protocol_env(inter: Interactions, protocol: str, tmp_path_factory):
    """A CPU TrialEnvironment on ``protocol``'s default split, cached in its own temporary folder (module-scope
    fixtures run before the autouse cache isolation)."""
    import torch

    from benchmark.protocols import get_split
    from benchmark.trial import TrialEnvironment

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROMO_BENCH_CACHE", str(tmp_path_factory.mktemp(f"{protocol}-cache")))
        split, _ = get_split(inter, protocol)
    return TrialEnvironment(split, inter, torch.device("cpu"))
