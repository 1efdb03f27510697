"""Code identity: the content hash of the harness code that can move a stored number.

A trial id and a fitted-backbone key hold the method's declared version, but the numbers also come from code no
method owns: the training loop, the device views, candidate shuffling, the evaluators and the warm-up loop. Their
source files are hashed here (raw bytes, line endings normalised, so the hash is the same on every machine and
Python version) and the hash joins every trial id and backbone key: an edit of any of them, comments included,
makes ``run`` train again instead of serving a stored result. Safe over convenient: a comment edit costs a rerun,
a silent change of a number costs trust. Protocol code is covered the same way by each protocol's split hash.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# Every module whose code runs between a split and a stored number, other than the methods (which carry versions)
# and the protocols (whose code joins their split hashes).
HARNESS_FILES = ("method.py", "tensors.py", "views.py", "training.py", "trial.py", "evaluation.py", "metrics.py",
                 "fullrank.py", "catalogue.py", "pointwise.py", "warmup_loop.py")


def files_hash(paths: list[Path] | tuple[Path, ...], root: Path = PACKAGE) -> str:
    """sha256 over (name relative to ``root``, content with ``\\r\\n`` as ``\\n``) of each file, in the given order."""
    h = hashlib.sha256(b"promo-bench/code/v1\n")
    for path in paths:
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        h.update(name.encode("utf-8") + b"\x1f")
        h.update(path.read_bytes().replace(b"\r\n", b"\n"))
        h.update(b"\x1e")
    return h.hexdigest()


@lru_cache(maxsize=1)
def harness_hash() -> str:
    """The harness code's hash (16 hex digits are plenty to tell versions apart; computed once per process)."""
    return files_hash(tuple(PACKAGE / name for name in HARNESS_FILES))[:16]


@lru_cache(maxsize=None)
def protocol_code_hash(*module_files: str) -> str:
    """A built-in protocol's code (its module plus the shared window and split code) for its split hash."""
    return files_hash(tuple(Path(f).resolve() for f in module_files))[:16]
