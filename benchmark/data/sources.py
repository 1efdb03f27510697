"""Where a dataset's files are: ``--data-dir``, ``$PROMO_BENCH_DATA/<dataset>/`` or an embedded copy.

The embedded MovieLens-100K is located inside the installed recbole package with
``importlib.util.find_spec``, which does not execute recbole's ``__init__`` (recbole's config,
quick_start and trainer modules break on NumPy 2 and import ray).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from benchmark.data.card import DatasetCard
from benchmark.errors import BenchError


def data_root() -> Path:
    """The data cache root: ``$PROMO_BENCH_DATA`` or ``~/.cache/promo-bench/data``."""
    env = os.environ.get("PROMO_BENCH_DATA")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "promo-bench" / "data"


def embedded_dir(card: DatasetCard) -> Path | None:
    """The folder of an embedded copy named by the card (``package/sub/path``), or None if not installed."""
    spec_path = card.source.get("embedded")
    if not spec_path:
        return None
    package, _, sub = spec_path.partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / sub
    return folder if folder.is_dir() else None


def locate(card: DatasetCard, data_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Return (folder, how it was found). Raises a BenchError that says where to put the files."""
    if data_dir is not None:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise BenchError(f"--data-dir {folder}: not a folder (expected the {card.title} files, "
                             f"for example from {card.source.get('url', 'the official source')})")
        return folder, "data-dir"
    cached = data_root() / card.name
    if cached.is_dir() and any(cached.iterdir()):
        return cached, "cache"
    embedded = embedded_dir(card)
    if embedded is not None:
        return embedded, "embedded"
    hint = f"; or install recbole for the embedded copy ({card.source['embedded']})" if card.source.get("embedded") else ""
    raise BenchError(f"dataset {card.name!r} not found: put the official files ({card.source.get('url', '?')}) "
                     f"in {cached} or pass --data-dir DIR{hint}")

