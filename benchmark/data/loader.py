"""``load_dataset``: card name (+ optional folder) to an :class:`Interactions` table."""

from __future__ import annotations

import os

from benchmark.data.card import get_card
from benchmark.data.interactions import Interactions
from benchmark.data.movielens import load_movielens
from benchmark.data.sources import locate
from benchmark.errors import BenchError

_READERS = {"ml-100k": load_movielens}


def load_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Interactions:
    card = get_card(name)
    reader = _READERS.get(card.name)
    if reader is None:
        raise BenchError(f"dataset {name!r}: its card exists ({card.path}) but no reader is implemented yet")
    folder, how = locate(card, data_dir)
    return reader(card, folder, how)
