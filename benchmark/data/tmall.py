"""TMall (Tianchi IJCAI-15 repeat buyers, ``data_format1``): ``user_log_format1.csv`` and ``user_info_format1.csv``.

Labels follow PROMO's preprocessing [D] (promo-spec section 2): a purchase (``action_type`` 2) is a positive,
a click (0) an explicit negative where the user did not buy the item; add-to-cart (1) and favourite (3) are
dropped. "Did not buy" is decided causally: a click is a negative when the user has no purchase of that item
*earlier in the total order* (day, then file row), and is dropped otherwise. An earlier row is a training
row whenever the click is one, under every protocol here (loo cuts each user's rows at a time; cold and
warmup split by item), so the label never looks at an evaluation row; clicks followed by a later purchase
stay negatives, because that purchase may be the held-out event. ``time_stamp`` is ``mmdd`` of 2015: the
time is that day's midnight in unix seconds, and same-day rows keep their file order (the stable tie rule).

The card's ``core`` filter reproduces the paper's: keep purchases of users and items with at least
``core`` purchases, repeated ``core_rounds`` times, then keep clicks of the surviving users and items. It is
a whole-log definition of the population, like MovieLens' 20 ratings per user, applied before any split.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.data.assemble import Entities, Rows, assemble
from benchmark.data.card import DatasetCard
from benchmark.data.encode import encode_table
from benchmark.data.interactions import Interactions
from benchmark.data.logs import read_int_columns
from benchmark.data.tables import read_delimited, require_columns
from benchmark.data.verify import find_file
from benchmark.errors import BenchError

LOG = "data_format1/user_log_format1.csv"
INFO = "data_format1/user_info_format1.csv"
LOG_COLUMNS = ["user_id", "item_id", "time_stamp", "action_type"]
ITEM_COLUMNS = ["cat_id", "seller_id", "brand_id"]
PURCHASE, CLICK = 2, 0
YEAR = 2015


def needed(card: DatasetCard, folder: Path, options: dict[str, Any]) -> list[str]:
    return [LOG, INFO]


def _path(folder: Path, rel: str) -> Path:
    path = find_file(folder, rel)
    if path is None:
        raise BenchError(f"{folder}: {Path(rel).name} not found (looked for {rel} and its tails; expected the "
                         f"official IJCAI-15 data_format1 files)")
    return path


def day_seconds(mmdd: np.ndarray, path: Path) -> np.ndarray:
    """``mmdd`` -> unix seconds at that 2015 day's midnight (UTC); an impossible date names its line."""
    days, inverse = np.unique(mmdd, return_inverse=True)
    seconds = np.empty(len(days), dtype=np.int64)
    for k, value in enumerate(days.tolist()):
        try:
            day = date(YEAR, int(value) // 100, int(value) % 100)
        except ValueError:
            line = int(np.flatnonzero(inverse == k)[0]) + 2
            raise BenchError(f"{path}, line {line}, field 'time_stamp': expected a 2015 date as mmdd, got {value}") from None
        seconds[k] = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())
    return seconds[inverse]


def core_filter(user: np.ndarray, item: np.ndarray, buy: np.ndarray, core: int, rounds: int) -> np.ndarray:
    """Rows kept: purchases of users and items with >= ``core`` purchases (repeated), clicks of survivors."""
    keep_buy = buy.copy()
    for _ in range(rounds):
        u_count = pd.Series(user[keep_buy]).value_counts()
        i_count = pd.Series(item[keep_buy]).value_counts()
        ok_u = u_count.index[u_count.to_numpy() >= core]
        ok_i = i_count.index[i_count.to_numpy() >= core]
        new = keep_buy & np.isin(user, ok_u) & np.isin(item, ok_i)
        if new.sum() == keep_buy.sum():
            break
        keep_buy = new
    users, items = np.unique(user[keep_buy]), np.unique(item[keep_buy])
    return keep_buy | (~buy & np.isin(user, users) & np.isin(item, items))


def causal_negatives(user: np.ndarray, item: np.ndarray, time: np.ndarray, buy: np.ndarray) -> np.ndarray:
    """For each click: True when the user bought the item nowhere earlier in the (day, row) order."""
    n = len(user)
    order = np.lexsort((np.arange(n), time))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    pair = pd.MultiIndex.from_arrays([user, item])
    codes = pd.factorize(pair)[0]
    first_buy = np.full(codes.max() + 1 if n else 0, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_buy, codes[buy], rank[buy])
    return ~buy & (rank < first_buy[codes])


def read_rows(card: DatasetCard, folder: Path, options: dict[str, Any]) -> tuple[Rows, pd.DataFrame]:
    """The labelled rows, and the item table (cat, seller, brand from each item's first kept row)."""
    path = _path(folder, LOG)
    log = read_int_columns(path, LOG_COLUMNS, "the official user_log_format1 columns "
                           "(user_id,item_id,cat_id,seller_id,brand_id,time_stamp,action_type)",
                           optional=tuple(ITEM_COLUMNS), dtype="int32")
    action = log["action_type"].to_numpy()
    bad = np.flatnonzero((action < 0) | (action > 3))
    if len(bad):
        raise BenchError(f"{path}, line {int(bad[0]) + 2}, field 'action_type': expected 0-3, got {action[bad[0]]}")
    keep = (action == PURCHASE) | (action == CLICK)
    seconds = day_seconds(log["time_stamp"].to_numpy(), path)  # every row's date is checked, kept or not
    user, item = log["user_id"].to_numpy()[keep], log["item_id"].to_numpy()[keep]
    time, buy = seconds[keep], action[keep] == PURCHASE
    src_rows = np.flatnonzero(keep)
    core = int(options.get("core", 0))
    if core > 0:
        kept = core_filter(user, item, buy, core, int(options.get("core_rounds", 1)))
        user, item, time, buy, src_rows = user[kept], item[kept], time[kept], buy[kept], src_rows[kept]
    label_row = buy | causal_negatives(user, item, time, buy)
    user, item, time, buy, src_rows = user[label_row], item[label_row], time[label_row], buy[label_row], src_rows[label_row]
    dropped = int(keep.sum() - len(user))
    items = log.iloc[src_rows].drop_duplicates("item_id")
    item_table = pd.DataFrame({"item": items["item_id"].astype(str)})
    for col in ITEM_COLUMNS:  # float with NaN for an empty field -> "123" or "" (missing: no column)
        item_table[col] = ([("" if np.isnan(v) else str(int(v))) for v in items[col].to_numpy(dtype=np.float64)]
                           if col in items else "")
    notes = [f"{int((action == 1).sum() + (action == 3).sum())} add-to-cart/favourite rows and {dropped} "
             f"purchase/click rows (core filter, clicks after a purchase) dropped"]
    return Rows(user=user.astype(str), item=item.astype(str), time=time, value=buy.astype(np.float64),
                label=buy.astype(np.int8), path=path, notes=notes), item_table


def read_users(card: DatasetCard, folder: Path) -> Entities:
    path = _path(folder, INFO)
    info = read_delimited(path, ",", None, header=True, quoted=True, expected="user_id,age_range,gender")
    require_columns(info, path, ["user_id"])
    mat, names = encode_table(info, card.features["user"], str(path))
    return Entities("user", info["user_id"].str.strip().to_numpy(dtype=str), mat, names, path)


def _item_entities(card: DatasetCard, items: pd.DataFrame, path: Path | str) -> Entities:
    mat, names = encode_table(items, card.features["item"], str(path))
    return Entities("item", items["item"].to_numpy(dtype=str), mat, names, path)


def load(card: DatasetCard, folder: Path, how: str, options: dict[str, Any]) -> Interactions:
    rows, items = read_rows(card, folder, options)
    users = read_users(card, folder)
    return assemble(card.name, rows, users, _item_entities(card, items, rows.path),
                    f"tmall-ijcai15:{how}:{folder}", missing="zeros")
