"""Reading delimited source files with errors that name the file, the line and the expected shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import BenchError


def read_delimited(path: Path, sep: str, names: list[str] | None, *, header: bool, encoding: str = "utf-8",
                   expected: str = "", quoted: bool = False) -> pd.DataFrame:
    """Read every field as text. ``names`` fixes the columns of a header-less file. ``quoted``: fields may be
    double-quoted (the KuaiRand and Tianchi CSVs); MovieLens quotes nothing, so a '"' there is literal."""
    if not path.is_file():
        raise BenchError(f"{path}: file not found{' (expected ' + expected + ')' if expected else ''}")
    try:
        # header-less files are read without names first: given names, pandas would silently take a first line
        # with an extra field as an index column and shift every field
        frame = pd.read_csv(path, sep=sep, header=0 if header else None, names=None,
                            dtype=str, keep_default_na=False, encoding=encoding, quoting=0 if quoted else 3,
                            engine="python" if len(sep) > 1 else "c")
    except pd.errors.ParserError as exc:
        raise BenchError(f"{path}: malformed line ({exc}); expected {expected or 'a ' + repr(sep) + '-separated table'}") from None
    except UnicodeDecodeError as exc:
        raise BenchError(f"{path}: not {encoding} text ({exc})") from None
    except pd.errors.EmptyDataError:
        raise BenchError(f"{path}: file is empty; expected {expected or 'a table'}") from None
    if frame.empty:
        raise BenchError(f"{path}: no data lines; expected {expected or 'a table'}")
    if not header and names is not None:
        if frame.shape[1] > len(names):
            extra = frame.iloc[:, len(names):].apply(lambda c: c.astype(str).str.len() > 0).any(axis=1).to_numpy()
            line = int(np.flatnonzero(extra)[0]) + 1
            raise BenchError(f"{path}, line {line}: {frame.shape[1]} fields, more than the {len(names)} expected "
                             f"({expected or ', '.join(names)})")
        for k in range(frame.shape[1], len(names)):  # a file whose every line is short: require_complete names it
            frame[k] = ""
        frame.columns = names
    return frame


def require_in_range(values: np.ndarray, path: Path, column: str, low: float, high: float, *,
                     first_line: int = 1, show=None) -> None:
    """Every value within [low, high]; the first one outside is named with its line."""
    bad = np.flatnonzero((values < low) | (values > high))
    if len(bad):
        row = int(bad[0])
        got = show(values[row]) if show else f"{values[row]:g}"
        lo, hi = (show(low), show(high)) if show else (f"{low:g}", f"{high:g}")
        raise BenchError(f"{path}, line {row + first_line}, field {column!r}: expected a value in [{lo}, {hi}] "
                         f"(the dataset card's range), got {got}")


def require_time_range(values: np.ndarray, checks: dict, path: Path, column: str, *, first_line: int = 1,
                       per_second: int = 1) -> None:
    """A card's ``[checks] time = [first day, day after the last]`` (UTC dates): a line cut inside its timestamp,
    or one in other units, reads as another era. ``per_second``: 1000 for millisecond times."""
    if "time" not in checks:
        return
    lo, hi = (int(pd.Timestamp(t, tz="UTC").timestamp()) * per_second for t in checks["time"])
    require_in_range(values, path, column, lo, hi, first_line=first_line,
                     show=lambda t: f"{int(t)} ({pd.Timestamp(int(t) // per_second, unit='s'):%Y-%m-%d})")


def require_unique(keys: list[np.ndarray], path: Path, what: str, *, first_line: int = 1) -> None:
    """No two lines share ``keys`` (e.g. one rating per user and item); the first repeat names both lines."""
    frame = pd.DataFrame({f"k{j}": k for j, k in enumerate(keys)})
    dup = frame.duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        same = (frame == frame.iloc[row]).all(axis=1).to_numpy()
        first = int(np.flatnonzero(same)[0])
        raise BenchError(f"{path}, line {row + first_line}: repeats line {first + first_line} ({what} must be "
                         f"unique, as the dataset card says)")


def require_columns(frame: pd.DataFrame, path: Path, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BenchError(f"{path}: missing column(s) {', '.join(missing)}; found header "
                         f"{', '.join(map(str, frame.columns))}; expected at least {', '.join(columns)}")


def numeric_column(frame: pd.DataFrame, column: str, path: Path, *, header: bool, integer: bool = False) -> np.ndarray:
    """Convert a text column to numbers; the first bad value is reported with its line number."""
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        line = row + 1 + (1 if header else 0)
        raise BenchError(f"{path}, line {line}, field {column!r}: expected a number, got {frame[column].iloc[row]!r}")
    arr = values.to_numpy(dtype=np.float64)
    if integer:
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            row = int(np.flatnonzero(np.mod(arr, 1) != 0)[0])
            raise BenchError(f"{path}, line {row + 1 + int(header)}, field {column!r}: expected an integer, "
                             f"got {frame[column].iloc[row]!r}")
        return arr.astype(np.int64)
    return arr


def require_complete(frame: pd.DataFrame, path: Path, expected: str, *, header: bool) -> None:
    """A line with too few fields leaves the last column empty: report its line number."""
    last = frame.iloc[:, -1]
    short = np.flatnonzero((last.isna() | (last.astype(str).str.len() == 0)).to_numpy())
    if len(short):
        line = int(short[0]) + 1 + int(header)
        raise BenchError(f"{path}, line {line}: too few fields; expected {expected}")
