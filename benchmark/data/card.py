"""Dataset cards: the declarative TOML files under the top-level ``datasets/`` folder."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark import plugins
from benchmark.errors import BenchError

REPO_ROOT = Path(__file__).resolve().parents[2]


def cards_dir() -> Path:
    """``$PROMO_BENCH_CARDS`` or the repository's ``datasets/`` folder."""
    return Path(os.environ.get("PROMO_BENCH_CARDS", REPO_ROOT / "datasets"))


@dataclass(frozen=True)
class DatasetCard:
    name: str
    title: str
    path: Path
    source: dict[str, Any]
    labels: dict[str, Any]
    features: dict[str, Any]
    protocols: dict[str, dict[str, Any]] = field(default_factory=dict)
    reader: str = "movielens"  # which reader module reads the files (benchmark/data/readers.py)
    options: dict[str, Any] = field(default_factory=dict)  # the reader's source choices ([options])
    licence: str = ""
    checks: dict[str, Any] = field(default_factory=dict)  # value checks of the source ([checks]: rating, time, unique)

    @property
    def files(self) -> dict[str, str]:
        """Relative path -> published sha256 ("" where the source publishes none) from ``[source.files]``."""
        return dict(self.source.get("files", {}))

    @property
    def manual(self) -> bool:
        """The source needs a login, so ``data fetch`` can only say where to get the files."""
        return bool(self.source.get("manual", False))


_REQUIRED = ("name", "source", "labels", "features")


def load_card(path: Path) -> DatasetCard:
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise BenchError(f"{path}: dataset card not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{path}: not valid TOML ({exc})") from None
    for key in _REQUIRED:
        if key not in raw:
            raise BenchError(f"{path}: missing required key {key!r} (expected {', '.join(_REQUIRED)})")
    if raw["name"] != path.stem:
        raise BenchError(f"{path}: name = {raw['name']!r} must match the file name {path.stem!r}")
    for key in ("url",):
        if key not in raw["source"]:
            raise BenchError(f"{path}: [source] has no {key!r} (expected the official download or dataset page)")
    return DatasetCard(name=raw["name"], title=raw.get("title", raw["name"]), path=path, source=raw["source"],
                       labels=raw["labels"], features=raw["features"], protocols=raw.get("protocols", {}),
                       reader=raw.get("reader", "movielens"), options=raw.get("options", {}),
                       licence=raw.get("licence", ""), checks=raw.get("checks", {}))


GROUP = "promo_bench.datasets"


def plugin_cards() -> dict[str, plugins.Entry]:
    """``promo_bench.datasets`` entries (benchmark/plugins.py): name -> entry whose target is the card's path (str or
    Path). Read from package metadata; the plugin module is imported only when its card is asked for."""
    return plugins.discover(GROUP, "dataset", lambda obj, name: Path(obj))


def list_cards() -> list[str]:
    folder = cards_dir()
    own = sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []
    return own + sorted(n for n in plugin_cards() if n not in own)


def get_card(name: str) -> DatasetCard:
    folder = cards_dir()
    entries = plugin_cards()
    if (folder / f"{name}.toml").is_file():
        if name in entries:
            raise BenchError(f"dataset name {name!r} is registered twice: by {folder / (name + '.toml')} and by "
                             f"{entries[name].origin} ({entries[name].target})")
        return load_card(folder / f"{name}.toml")
    entry = entries.get(name)
    if entry is None:
        raise BenchError(f"unknown dataset {name!r}; known datasets: {', '.join(list_cards()) or '(none)'} "
                         f"(cards are read from {cards_dir()} and the {GROUP} entry points)")
    return load_card(entry.load())
