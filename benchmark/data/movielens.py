"""MovieLens readers: RecBole atomic files and the official GroupLens ML-100K files.

Both readers produce the same raw frames (ratings, items, users) so that feature encoding and
labelling happen once, in :func:`to_interactions`, whatever the source format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.card import DatasetCard
from benchmark.data.interactions import Interactions, dense_ids
from benchmark.data.tables import numeric_column, read_delimited, require_columns, require_complete
from benchmark.errors import BenchError

# ---------------------------------------------------------------- RecBole atomic files


def _atomic(path: Path, columns: list[str]) -> pd.DataFrame:
    """A RecBole atomic file: tab-separated, first line ``name:type`` headers."""
    frame = read_delimited(path, "\t", None, header=True,
                           expected=f"a tab-separated RecBole atomic file with columns {', '.join(columns)}")
    frame.columns = [str(c).split(":", 1)[0] for c in frame.columns]
    require_columns(frame, path, columns)
    return frame


def read_atomic_ml(folder: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    inter_path, item_path, user_path = (folder / f"{name}.{ext}" for ext in ("inter", "item", "user"))
    inter = _atomic(inter_path, ["user_id", "item_id", "rating", "timestamp"])
    ratings = pd.DataFrame({
        "user": inter["user_id"].str.strip(), "item": inter["item_id"].str.strip(),
        "rating": numeric_column(inter, "rating", inter_path, header=True),
        "time": numeric_column(inter, "timestamp", inter_path, header=True, integer=True)})
    item = _atomic(item_path, ["item_id", "release_year", "class"])
    # RecBole writes 'unkonwn' for no year, and 'V' for one title whose "(YYYY)" it left in the title:
    # fall back to the title's year there, as the GroupLens reader does.
    years = pd.to_numeric(item["release_year"].str.strip(), errors="coerce")
    if "movie_title" in item.columns:
        title_year = pd.to_numeric(item["movie_title"].str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
        years = years.fillna(title_year)
    items = pd.DataFrame({"item": item["item_id"].str.strip(), "year": years,
                          "genres": [tuple(s.split()) for s in item["class"].tolist()]})
    user = _atomic(user_path, ["user_id", "age", "gender", "occupation"])
    users = pd.DataFrame({"user": user["user_id"].str.strip(),
                          "age": numeric_column(user, "age", user_path, header=True, integer=True),
                          "gender": user["gender"].str.strip(), "occupation": user["occupation"].str.strip()})
    return ratings, items, users


# ---------------------------------------------------------------- GroupLens ML-100K

def read_grouplens_100k(folder: Path, genres: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    data_path, item_path, user_path = folder / "u.data", folder / "u.item", folder / "u.user"
    data = read_delimited(data_path, "\t", ["user", "item", "rating", "timestamp"], header=False,
                          expected="user<TAB>item<TAB>rating<TAB>timestamp, no header")
    require_complete(data, data_path, "4 tab-separated fields (user, item, rating, timestamp)", header=False)
    ratings = pd.DataFrame({
        "user": data["user"].str.strip(), "item": data["item"].str.strip(),
        "rating": numeric_column(data, "rating", data_path, header=False),
        "time": numeric_column(data, "timestamp", data_path, header=False, integer=True)})
    item_cols = ["item", "title", "release", "video", "url"] + [f"g{k}" for k in range(len(genres))]
    item = read_delimited(item_path, "|", item_cols, header=False, encoding="latin-1",
                          expected=f"{len(item_cols)} '|'-separated fields (id|title|release date|video|url|"
                                   f"{len(genres)} genre flags), latin-1")
    require_complete(item, item_path, f"{len(item_cols)} '|'-separated fields", header=False)
    flags = np.stack([numeric_column(item, f"g{k}", item_path, header=False, integer=True)
                      for k in range(len(genres))], axis=1)
    # The film's year is the "(YYYY)" at the end of the title (as RecBole's atomic file has it); the
    # release-date field is sometimes a later re-release, so it is only the fallback.
    title_year = pd.to_numeric(item["title"].str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
    years = title_year.fillna(pd.to_numeric(item["release"].str.strip().str[-4:], errors="coerce"))
    items = pd.DataFrame({"item": item["item"].str.strip(), "year": years,
                          "genres": [tuple(g for g, f in zip(genres, row) if f) for row in flags.tolist()]})
    user = read_delimited(user_path, "|", ["user", "age", "gender", "occupation", "zip"], header=False,
                          expected="id|age|gender|occupation|zip")
    require_complete(user, user_path, "5 '|'-separated fields (id|age|gender|occupation|zip)", header=False)
    users = pd.DataFrame({"user": user["user"].str.strip(),
                          "age": numeric_column(user, "age", user_path, header=False, integer=True),
                          "gender": user["gender"].str.strip(), "occupation": user["occupation"].str.strip()})
    return ratings, items, users


# ---------------------------------------------------------------- encoding


def _one_hot(values: list[str], vocab: list[str], what: str) -> np.ndarray:
    index = {v: k for k, v in enumerate(vocab)}
    out = np.zeros((len(values), len(vocab)), dtype=np.float32)
    for row, v in enumerate(values):
        if v not in index:
            raise BenchError(f"{what}: unexpected value {v!r} (row {row + 1}); expected one of {', '.join(vocab)}")
        out[row, index[v]] = 1.0
    return out


def _buckets(values: np.ndarray, bins: list[int], prefix: str) -> tuple[np.ndarray, list[str]]:
    """Fixed-edge buckets as one-hot, plus a 'missing' column; no data statistic is used."""
    edges = [f"<{bins[0]}"] + [f"{a}-{b - 1}" for a, b in zip(bins[:-1], bins[1:])] + [f">={bins[-1]}"]
    names = [f"{prefix}{e}" for e in edges] + [f"{prefix}missing"]
    out = np.zeros((len(values), len(names)), dtype=np.float32)
    missing = np.isnan(values)
    idx = np.digitize(np.where(missing, 0, values), bins)
    out[np.arange(len(values)), np.where(missing, len(names) - 1, idx)] = 1.0
    return out, names


def to_interactions(card: DatasetCard, ratings: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame,
                    source: str, files: dict[str, Path]) -> Interactions:
    """Label rows by the card's rule, give dense ids, and encode content features."""
    for kind, frame, key in (("item", items, "item"), ("user", users, "user")):
        dup = frame[key].duplicated()
        if dup.any():
            raise BenchError(f"{files[kind]}: {kind} id {frame[key][dup].iloc[0]!r} appears twice")
    unknown_items = set(ratings["item"]) - set(items["item"])
    if unknown_items:
        raise BenchError(f"{files['ratings']}: item id {sorted(unknown_items)[0]!r} is not in {files['item']}")
    unknown_users = set(ratings["user"]) - set(users["user"])
    if unknown_users:
        raise BenchError(f"{files['ratings']}: user id {sorted(unknown_users)[0]!r} is not in {files['user']}")

    item_dense, item_ids = dense_ids(items["item"].to_numpy())
    user_dense, user_ids = dense_ids(users["user"].to_numpy())
    items = items.iloc[np.argsort(item_dense)]
    users = users.iloc[np.argsort(user_dense)]
    item_lookup = {r: k for k, r in enumerate(item_ids.tolist())}
    user_lookup = {r: k for k, r in enumerate(user_ids.tolist())}

    fi = card.features["item"]
    genre_vocab = list(fi["genres"])
    genre = np.zeros((len(items), len(genre_vocab)), dtype=np.float32)
    gidx = {g: k for k, g in enumerate(genre_vocab)}
    for row, gs in enumerate(items["genres"].tolist()):
        for g in gs:
            if g not in gidx:
                raise BenchError(f"{files['item']}: item {items['item'].iloc[row]!r} has genre {g!r}; "
                                 f"expected one of {', '.join(genre_vocab)}")
            genre[row, gidx[g]] = 1.0
    year, year_names = _buckets(items["year"].to_numpy(dtype=np.float64), list(fi["year_bins"]), "year")
    fu = card.features["user"]
    age, age_names = _buckets(users["age"].to_numpy(dtype=np.float64), list(fu["age_bins"]), "age")
    gender = _one_hot(users["gender"].tolist(), list(fu["genders"]), f"{files['user']}, field 'gender'")
    occ = _one_hot(users["occupation"].tolist(), list(fu["occupations"]), f"{files['user']}, field 'occupation'")

    rule = card.labels
    values = ratings[rule.get("column", "rating")].to_numpy(dtype=np.float64)
    label = (values >= float(rule["positive_min"])).astype(np.int8)
    return Interactions(
        dataset=card.name,
        user=np.fromiter((user_lookup[u] for u in ratings["user"].tolist()), dtype=np.int64, count=len(ratings)),
        item=np.fromiter((item_lookup[i] for i in ratings["item"].tolist()), dtype=np.int64, count=len(ratings)),
        time=ratings["time"].to_numpy(dtype=np.int64), value=values, label=label,
        user_ids=user_ids, item_ids=item_ids,
        user_features=np.concatenate([age, gender, occ], axis=1),
        item_features=np.concatenate([genre, year], axis=1),
        user_feature_names=tuple(age_names + [f"gender={g}" for g in fu["genders"]]
                                 + [f"occupation={o}" for o in fu["occupations"]]),
        item_feature_names=tuple([f"genre={g}" for g in genre_vocab] + year_names),
        source=source,
    )


def load_movielens(card: DatasetCard, folder: Path, how: str) -> Interactions:
    """Detect the format inside ``folder`` (or ``folder/<name>``) and read it."""
    for base in (folder, folder / card.name):
        if (base / f"{card.name}.inter").is_file():
            ratings, items, users = read_atomic_ml(base, card.name)
            files = {k: base / f"{card.name}.{e}" for k, e in (("ratings", "inter"), ("item", "item"), ("user", "user"))}
            return to_interactions(card, ratings, items, users, f"recbole-atomic:{how}:{base}", files)
        if (base / "u.data").is_file() and card.name == "ml-100k":
            ratings, items, users = read_grouplens_100k(base, list(card.features["item"]["genres"]))
            files = {"ratings": base / "u.data", "item": base / "u.item", "user": base / "u.user"}
            return to_interactions(card, ratings, items, users, f"grouplens-100k:{how}:{base}", files)
    raise BenchError(f"{folder}: no {card.title} files found; expected {card.name}.inter/.item/.user (RecBole atomic) "
                     f"or u.data/u.item/u.user (GroupLens), directly in the folder or in {folder / card.name}")
