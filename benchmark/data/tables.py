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
        frame = pd.read_csv(path, sep=sep, header=0 if header else None, names=None if header else names,
                            dtype=str, keep_default_na=False, encoding=encoding, quoting=0 if quoted else 3,
                            engine="python" if len(sep) > 1 else "c")
    except pd.errors.ParserError as exc:
        raise BenchError(f"{path}: malformed line ({exc}); expected {expected or 'a ' + repr(sep) + '-separated table'}") from None
    except UnicodeDecodeError as exc:
        raise BenchError(f"{path}: not {encoding} text ({exc})") from None
    except pd.errors.EmptyDataError:
        raise BenchError(f"{path}: file is empty; expected {expected or 'a table'}") from None
    return frame


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
