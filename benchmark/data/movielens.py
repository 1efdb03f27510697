"""MovieLens readers: RecBole atomic files and the official GroupLens ML-100K and ML-1M files.

Both readers produce the same raw frames (ratings, items, users) so that feature encoding and
labelling happen once, in :func:`to_interactions`, whatever the source format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.assemble import Entities, Rows, assemble
from benchmark.data.card import DatasetCard
from benchmark.data.encode import buckets, closed_multi_hot, one_hot
from benchmark.data.interactions import Interactions
from benchmark.data.verify import find_file
from benchmark.data.tables import (numeric_column, read_delimited, require_columns, require_complete,
                                   require_in_range, require_time_range, require_unique)
from benchmark.errors import BenchError

# ---------------------------------------------------------------- shared by the three formats


def _ratings(frame: pd.DataFrame, path: Path, *, header: bool, user: str = "user", item: str = "item") -> pd.DataFrame:
    """The ratings frame every format produces: text ids, numeric rating, integer time (errors name the line)."""
    return pd.DataFrame({"user": frame[user].str.strip(), "item": frame[item].str.strip(),
                         "rating": numeric_column(frame, "rating", path, header=header),
                         "time": numeric_column(frame, "timestamp", path, header=header, integer=True)})


def _title_year(titles: pd.Series) -> pd.Series:
    """The film's year: the "(YYYY)" that ends a MovieLens title (NaN where there is none)."""
    return pd.to_numeric(titles.str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")


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
    ratings = _ratings(inter, inter_path, header=True, user="user_id", item="item_id")
    item = _atomic(item_path, ["item_id", "release_year", "class"])
    # RecBole writes 'unkonwn' for no year, and 'V' for one title whose "(YYYY)" it left in the title:
    # fall back to the title's year there, as the GroupLens reader does.
    years = pd.to_numeric(item["release_year"].str.strip(), errors="coerce")
    if "movie_title" in item.columns:
        years = years.fillna(_title_year(item["movie_title"]))
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
    ratings = _ratings(data, data_path, header=False)
    item_cols = ["item", "title", "release", "video", "url"] + [f"g{k}" for k in range(len(genres))]
    item = read_delimited(item_path, "|", item_cols, header=False, encoding="latin-1",
                          expected=f"{len(item_cols)} '|'-separated fields (id|title|release date|video|url|"
                                   f"{len(genres)} genre flags), latin-1")
    require_complete(item, item_path, f"{len(item_cols)} '|'-separated fields", header=False)
    flags = np.stack([numeric_column(item, f"g{k}", item_path, header=False, integer=True)
                      for k in range(len(genres))], axis=1)
    for k in range(len(genres)):  # flags, not counts
        require_in_range(flags[:, k], item_path, f"genre flag {genres[k]!r}", 0, 1)
    # The film's year is the "(YYYY)" at the end of the title (as RecBole's atomic file has it); the
    # release-date field is sometimes a later re-release, so it is only the fallback.
    years = _title_year(item["title"]).fillna(pd.to_numeric(item["release"].str.strip().str[-4:], errors="coerce"))
    items = pd.DataFrame({"item": item["item"].str.strip(), "year": years,
                          "genres": [tuple(g for g, f in zip(genres, row) if f) for row in flags.tolist()]})
    user = read_delimited(user_path, "|", ["user", "age", "gender", "occupation", "zip"], header=False,
                          expected="id|age|gender|occupation|zip")
    require_complete(user, user_path, "5 '|'-separated fields (id|age|gender|occupation|zip)", header=False)
    users = pd.DataFrame({"user": user["user"].str.strip(),
                          "age": numeric_column(user, "age", user_path, header=False, integer=True),
                          "gender": user["gender"].str.strip(), "occupation": user["occupation"].str.strip()})
    return ratings, items, users


# ---------------------------------------------------------------- GroupLens ML-1M

ML1M_RATINGS = "ratings.dat"


def ratings_file(folder: Path) -> tuple[Path, list[str]]:
    """``ratings.dat``; failing that, one ``ratings*.dat`` (a partial copy such as ../shared's prefix), noted."""
    official = folder / ML1M_RATINGS
    if official.is_file():
        return official, []
    others = sorted(folder.glob("ratings*.dat"))
    if len(others) == 1:
        return others[0], [f"read {others[0].name} in place of the official {ML1M_RATINGS}"]
    raise BenchError(f"{official}: file not found (expected UserID::MovieID::Rating::Timestamp lines"
                     + (f"; found several candidates: {', '.join(p.name for p in others)}" if others else "") + ")")


def read_grouplens_1m(folder: Path, occupations: list[str],
                      ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, Path, list[str]]:
    """``ratings.dat``, ``movies.dat`` and ``users.dat``: ``::``-separated, no header, latin-1. Also returns
    the ratings file it read (``ratings.dat`` or a partial copy) and a note when it is not the official one."""
    data_path, notes = ratings_file(folder)
    item_path, user_path = folder / "movies.dat", folder / "users.dat"
    data = read_delimited(data_path, "::", ["user", "item", "rating", "timestamp"], header=False, encoding="latin-1",
                          expected="UserID::MovieID::Rating::Timestamp, no header")
    require_complete(data, data_path, "4 '::'-separated fields (UserID::MovieID::Rating::Timestamp)", header=False)
    ratings = _ratings(data, data_path, header=False)
    item = read_delimited(item_path, "::", ["item", "title", "genres"], header=False, encoding="latin-1",
                          expected="MovieID::Title::Genres (genres '|'-separated), latin-1")
    require_complete(item, item_path, "3 '::'-separated fields (MovieID::Title::Genres)", header=False)
    items = pd.DataFrame({"item": item["item"].str.strip(),
                          "year": _title_year(item["title"]),
                          "genres": [tuple(g for g in s.split("|") if g) for s in item["genres"].tolist()]})
    user = read_delimited(user_path, "::", ["user", "gender", "age", "occupation", "zip"], header=False,
                          encoding="latin-1", expected="UserID::Gender::Age::Occupation::Zip-code")
    require_complete(user, user_path, "5 '::'-separated fields (UserID::Gender::Age::Occupation::Zip-code)",
                     header=False)
    codes = numeric_column(user, "occupation", user_path, header=False, integer=True)
    bad = np.flatnonzero((codes < 0) | (codes >= len(occupations)))
    if len(bad):
        raise BenchError(f"{user_path}, line {bad[0] + 1}, field 'occupation': expected a code 0..{len(occupations) - 1}, "
                         f"got {codes[bad[0]]}")
    users = pd.DataFrame({"user": user["user"].str.strip(),
                          "age": numeric_column(user, "age", user_path, header=False, integer=True),
                          "gender": user["gender"].str.strip(),
                          "occupation": [occupations[c] for c in codes.tolist()]})
    return ratings, items, users, data_path, notes


# ---------------------------------------------------------------- encoding


def to_interactions(card: DatasetCard, ratings: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame,
                    source: str, files: dict[str, Path], notes: list[str] | None = None,
                    first_line: int = 1) -> Interactions:
    """Check the ratings against the card's ``[checks]``, label rows by the card's rule, encode content features,
    and assemble dense ids. ``first_line``: the ratings file's line of the first row (2 below a header)."""
    check_ratings(card, ratings, files["ratings"], first_line)
    fi, fu = card.features["item"], card.features["user"]
    genre_vocab = list(fi["genres"])
    genre = closed_multi_hot(items["genres"].tolist(), genre_vocab, "genre", str(files["item"]),
                             items["item"].tolist())
    year, year_names = buckets(items["year"].to_numpy(dtype=np.float64), list(fi["year_bins"]), "year")
    age, age_names = buckets(users["age"].to_numpy(dtype=np.float64), list(fu["age_bins"]), "age")
    gender = one_hot(users["gender"].tolist(), list(fu["genders"]), f"{files['user']}, field 'gender'")
    occ = one_hot(users["occupation"].tolist(), list(fu["occupations"]), f"{files['user']}, field 'occupation'")

    rule = card.labels
    values = ratings[rule.get("column", "rating")].to_numpy(dtype=np.float64)
    rows = Rows(user=ratings["user"].to_numpy(dtype=str), item=ratings["item"].to_numpy(dtype=str),
                time=ratings["time"].to_numpy(dtype=np.int64), value=values,
                label=(values >= float(rule["positive_min"])).astype(np.int8), path=files["ratings"],
                notes=list(notes or []))
    user_table = Entities("user", users["user"].to_numpy(dtype=str), np.concatenate([age, gender, occ], axis=1),
                          age_names + [f"gender={g}" for g in fu["genders"]]
                          + [f"occupation={o}" for o in fu["occupations"]], files["user"])
    item_table = Entities("item", items["item"].to_numpy(dtype=str), np.concatenate([genre, year], axis=1),
                          [f"genre={g}" for g in genre_vocab] + year_names, files["item"])
    return assemble(card.name, rows, user_table, item_table, source)


def check_ratings(card: DatasetCard, ratings: pd.DataFrame, path: Path, first_line: int) -> None:
    """The card's value checks: the rating scale, the collection period (a line cut inside its timestamp reads
    as 1970) and one rating per (user, item); each failure names the line."""
    checks = card.checks
    if "rating" in checks:
        lo, hi = checks["rating"]
        require_in_range(ratings["rating"].to_numpy(dtype=np.float64), path, "rating", lo, hi, first_line=first_line)
    require_time_range(ratings["time"].to_numpy(dtype=np.int64), checks, path, "timestamp", first_line=first_line)
    if checks.get("unique"):
        cols = list(checks["unique"])
        require_unique([ratings[c].to_numpy(dtype=str) for c in cols], path, "(" + ", ".join(cols) + ")",
                       first_line=first_line)


FORMATS = {  # format -> (files relative to the dataset folder, as the card's [source.files] names them)
    "recbole-atomic": ("ml-100k/ml-100k.inter", "ml-100k/ml-100k.item", "ml-100k/ml-100k.user"),
    "grouplens-100k": ("ml-100k/u.data", "ml-100k/u.item", "ml-100k/u.user"),
    "grouplens-1m": ("ml-1m/ratings.dat", "ml-1m/movies.dat", "ml-1m/users.dat"),
}


def _format(card: DatasetCard, folder: Path) -> tuple[str, Path]:
    """Which of the card's formats the folder holds, and the folder that holds it."""
    for name in card.source.get("readers", []):
        if name not in FORMATS:
            raise BenchError(f"{card.path}: [source] readers names {name!r}; known: {', '.join(FORMATS)}")
        probe = find_file(folder, FORMATS[name][1])  # the item file: ML-1M's ratings may be a partial copy
        if probe is not None:
            return name, probe.parent
    wanted = " or ".join("/".join(Path(f).name for f in FORMATS[n]) for n in card.source.get("readers", []))
    raise BenchError(f"{folder}: no {card.title} files found; expected {wanted}, directly in the folder or in "
                     f"{folder / card.name}")


def needed(card: DatasetCard, folder: Path, options: dict) -> list[str]:
    return list(FORMATS[_format(card, folder)[0]])


def load(card: DatasetCard, folder: Path, how: str, options: dict) -> Interactions:
    fmt, base = _format(card, folder)
    notes: list[str] = []
    if fmt == "recbole-atomic":
        ratings, items, users = read_atomic_ml(base, card.name)
        files = {k: base / f"{card.name}.{e}" for k, e in (("ratings", "inter"), ("item", "item"), ("user", "user"))}
    elif fmt == "grouplens-100k":
        ratings, items, users = read_grouplens_100k(base, list(card.features["item"]["genres"]))
        files = {"ratings": base / "u.data", "item": base / "u.item", "user": base / "u.user"}
    else:
        ratings, items, users, data_path, notes = read_grouplens_1m(base, list(card.features["user"]["occupations"]))
        files = {"ratings": data_path, "item": base / "movies.dat", "user": base / "users.dat"}
    return to_interactions(card, ratings, items, users, f"{fmt}:{how}:{base}", files, notes,
                           first_line=2 if fmt == "recbole-atomic" else 1)
