"""Where promo-bench keeps its caches, and the one way it writes a file: never half-written.

Every file the harness writes (result records and vectors, frozen splits, fitted backbones, the verification
manifest and hash cache, report tables) goes through ``atomic_write``: a temporary ``.tmp-*`` file in the same
folder, flushed and fsynced, then renamed over the target, so a reader sees the old file or the new one. The
temporary file's name starts with ``.tmp-<target stem>.``, so whoever owns the target (the claim of a trial) can
tell its own abandoned temporaries from a live writer's.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable

TMP_PREFIX = ".tmp-"


def cache_root() -> Path:
    """``$PROMO_BENCH_CACHE`` or ``~/.cache/promo-bench``: splits, fitted backbones and file hashes live here."""
    env = os.environ.get("PROMO_BENCH_CACHE")
    root = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "promo-bench"
    if root.exists() and not root.is_dir():
        from benchmark.errors import BenchError

        raise BenchError(f"{'$PROMO_BENCH_CACHE' if env else 'the cache folder'} {root}: is a file; expected a folder "
                         f"for splits, fitted backbones and file hashes")
    return root


def writable_folder(folder: Path, what: str, fix: str) -> None:
    """Make ``folder`` if needed and prove it can be written, before any work that would write there; the error
    names ``what`` it is (``--out``, the results folder, ...) and the ``fix``."""
    from benchmark.errors import BenchError

    if folder.exists() and not folder.is_dir():
        raise BenchError(f"{what} {folder}: is a file; expected a folder; {fix}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # a probe of its own: with one shared name, two processes starting on one folder (Dask or --jobs workers)
        # removed each other's probe and one of them failed with "No such file or directory"
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
            pass
    except OSError as exc:
        raise BenchError(f"{what} {folder}: cannot be written ({exc.strerror or exc}); {fix}") from None


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """``write(fh)`` into a temporary file next to ``path``, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.stem}.", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
