"""Claims: an operating-system file lock per trial (and per fitted backbone), so that several processes on one
results folder, or several machines on a shared filesystem whose locks work (NFSv4, Lustre, GPFS), share a plan
without computing anything twice.

We use ``filelock`` (already installed wherever torch is): its ``FileLock`` is an ``fcntl``/``msvcrt`` lock, which
the kernel drops when the holding process dies, so a killed run never leaves a claim that blocks the next one.
The lock files stay on disk (empty, under ``.claims/``); holding the lock, not the file's existence, is the claim.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

CLAIMS = ".claims"


class Claims:
    """The claims of one folder: ``<folder>/.claims/<name>.lock``."""

    def __init__(self, folder: Path) -> None:
        self.dir = Path(folder) / CLAIMS

    def _lock(self, name: str) -> FileLock:
        self.dir.mkdir(parents=True, exist_ok=True)
        # thread_local=False: the runner may release a claim from another thread than the one that took it
        return FileLock(self.dir / f"{name}.lock", thread_local=False, is_singleton=False)

    def try_claim(self, name: str) -> FileLock | None:
        """The held lock, or None when a live process holds it."""
        lock = self._lock(name)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return None
        return lock

    def wait(self, name: str) -> FileLock:
        """Block until the holder (if any) finishes; return the held lock."""
        lock = self._lock(name)
        lock.acquire()
        return lock

    def held(self) -> set[str]:
        """Names claimed by a live process right now (for ``status``: what is running)."""
        if not self.dir.is_dir():
            return set()
        out = set()
        for path in self.dir.glob("*.lock"):
            lock = self.try_claim(path.stem)
            if lock is None:
                out.add(path.stem)
            else:
                lock.release()
        return out
