"""``load_dataset``: card name (+ optional folder and reader options) to a verified :class:`Interactions` table.

A reader module offers ``needed(card, folder, options)`` (the files it reads, as the card's ``[source.files]``
names them, so they can be verified), ``load(card, folder, how, options)`` and, where content tables exist apart from
the log (KuaiRand), ``read_entities`` (``data info`` on a features-only copy).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

from benchmark.data import kuairand, movielens, tmall
from benchmark.data.card import DatasetCard, get_card
from benchmark.data.interactions import Interactions
from benchmark.data.sources import locate
from benchmark.data.verify import Verification, verify_files
from benchmark.errors import BenchError

READERS: dict[str, ModuleType] = {"movielens": movielens, "kuairand": kuairand, "tmall": tmall}
RUNTIME_OPTIONS = ("with_statistics",)  # reader options a command line may set (the rest live in the card)


def reader_for(card: DatasetCard) -> ModuleType:
    """A built-in reader by name, or a plugin's reader module by its dotted path (``reader = "pkg.reader"``)."""
    if card.reader in READERS:
        return READERS[card.reader]
    if "." not in card.reader:
        raise BenchError(f"{card.path}: reader = {card.reader!r} is not implemented; known: {', '.join(READERS)}, "
                         f"or a module path such as 'my_pkg.reader'")
    try:
        module = importlib.import_module(card.reader)
    except Exception as exc:
        raise BenchError(f"{card.path}: reader module {card.reader!r} cannot be imported: "
                         f"{type(exc).__name__}: {exc}") from None
    missing = [f for f in ("needed", "load") if not hasattr(module, f)]
    if missing:
        raise BenchError(f"{card.path}: reader module {card.reader!r} lacks {', '.join(missing)} "
                         f"(see benchmark/data/loader.py)")
    return module


def reader_options(card: DatasetCard, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card's ``[options]`` with command-line overrides; an option the card does not offer is an error."""
    options = dict(card.options)
    for key, value in (overrides or {}).items():
        if key not in card.options:
            raise BenchError(f"dataset {card.name!r} has no option {key!r} (its card offers: "
                             f"{', '.join(card.options) or 'none'})")
        options[key] = value
    return options


def check_dataset(name: str, data_dir: str | os.PathLike | None = None,
                  options: dict[str, Any] | None = None) -> tuple[DatasetCard, Any, str, Verification]:
    """Locate a dataset and verify the files its reader would read, without reading them."""
    card = get_card(name)
    reader = reader_for(card)
    opts = reader_options(card, options)
    folder, how = locate(card, data_dir)
    verification = verify_files(card, folder, reader.needed(card, folder, opts), embedded=how == "embedded")
    return card, folder, how, verification


def load_dataset(name: str, data_dir: str | os.PathLike | None = None,
                 options: dict[str, Any] | None = None) -> Interactions:
    card, folder, how, verification = check_dataset(name, data_dir, options)
    inter = reader_for(card).load(card, folder, how, reader_options(card, options))
    inter.provenance["verification"] = verification.as_record()
    return inter
