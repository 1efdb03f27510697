"""Reading large comma-separated logs fast, falling back to a line-exact error when a value is bad."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.tables import numeric_column
from benchmark.errors import BenchError


def read_int_columns(path: Path, columns: list[str], expected: str, optional: tuple[str, ...] = (),
                     dtype: str = "int64") -> pd.DataFrame:
    """The named integer columns of a CSV with a header. Typed parsing first (fast on millions of rows);
    if it fails, the columns are re-read as text so the error names the line, field and value.
    ``optional`` columns, where present, are floats with NaN for an empty field (TMall's brand_id)."""
    if not path.is_file():
        raise BenchError(f"{path}: file not found (expected {expected})")
    try:
        header = pd.read_csv(path, nrows=0).columns.tolist()
    except (pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: not a CSV with a header ({exc}); expected {expected}") from None
    missing = [c for c in columns if c not in header]
    if missing:
        raise BenchError(f"{path}: missing column(s) {', '.join(missing)}; found header {', '.join(header)}; "
                         f"expected {expected}")
    extra = [c for c in optional if c in header]
    wanted = columns + extra
    types = {c: dtype for c in columns} | {c: "float64" for c in extra}
    try:
        return pd.read_csv(path, usecols=wanted, dtype=types, keep_default_na=False, na_values={c: [""] for c in extra})
    except (ValueError, pd.errors.ParserError):
        pass
    try:
        text = pd.read_csv(path, usecols=wanted, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise BenchError(f"{path}: malformed line ({exc}); expected {expected}") from None
    out = {c: numeric_column(text, c, path, header=True, integer=True).astype(dtype) for c in columns}
    out.update({c: pd.to_numeric(text[c].str.strip(), errors="coerce").to_numpy() for c in extra})
    return pd.DataFrame(out)


def require_binary(values: np.ndarray, path: Path, column: str) -> None:
    bad = np.flatnonzero((values != 0) & (values != 1))
    if len(bad):
        raise BenchError(f"{path}, line {int(bad[0]) + 2}, field {column!r}: expected 0 or 1, got {values[bad[0]]}")
