"""promo-bench: the harness (data, protocols, trials, results, reports).

Methods live in the sibling top-level package ``methods`` and are found through the
``promo_bench.methods`` entry-point group.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("promo-bench")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
