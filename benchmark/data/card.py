"""Dataset cards: the declarative TOML files under the top-level ``datasets/`` folder."""

from __future__ import annotations

import os
import tomllib
from importlib import metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
                       licence=raw.get("licence", ""))


GROUP = "promo_bench.datasets"


def plugin_cards() -> dict[str, Any]:
    """``promo_bench.datasets`` entry points: name -> entry point whose target is the card's path (str or Path).
    Read from package metadata; the plugin module is imported only when its card is asked for."""
    if os.environ.get("PROMO_BENCH_DISABLE_PLUGIN_AUTOLOAD", "") in ("1", "true", "yes"):
        return {}
    return {ep.name: ep for ep in metadata.entry_points(group=GROUP)}


def list_cards() -> list[str]:
    folder = cards_dir()
    own = sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []
    return own + sorted(n for n in plugin_cards() if n not in own)


def get_card(name: str) -> DatasetCard:
    folder = cards_dir()
    if (folder / f"{name}.toml").is_file():
        if name in plugin_cards():
            ep = plugin_cards()[name]
            raise BenchError(f"dataset name {name!r} is registered twice: by {folder / (name + '.toml')} and by "
                             f"{_origin(ep)} ({ep.value})")
        return load_card(folder / f"{name}.toml")
    ep = plugin_cards().get(name)
    if ep is None:
        raise BenchError(f"unknown dataset {name!r}; known datasets: {', '.join(list_cards()) or '(none)'} "
                         f"(cards are read from {cards_dir()} and the {GROUP} entry points)")
    try:
        path = Path(ep.load())
    except Exception as exc:
        raise BenchError(f"dataset {name!r} ({_origin(ep)}, {ep.value}) is unavailable: "
                         f"{type(exc).__name__}: {exc}") from None
    return load_card(path)


def _origin(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.metadata['Name']} {dist.version}" if dist is not None else "an unknown distribution"
