"""Figures (matplotlib, PDF and PNG): metrics with confidence intervals, HR/NDCG over K, cold against
warm targets, and score distributions of cold positives against warm negatives.

One colour-blind-safe palette (Okabe-Ito) and one marker per row, fixed across every figure of a
report; legends sit outside the axes so they never cover data.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmark.metrics import metric_from_counts  # noqa: E402
from benchmark.report.events import EventCache, RowEvents, RowKey  # noqa: E402
from benchmark.report.table import METHOD_ORDER, metric_title  # noqa: E402
from benchmark.stats import bootstrap_ci  # noqa: E402

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


class Styles:
    """Row label -> (colour, marker), assigned once per report in a fixed order."""

    def __init__(self, labels: list[str]) -> None:
        self.map = {lbl: (OKABE_ITO[k % 8], MARKERS[(k // 8 + k) % 8]) for k, lbl in enumerate(labels)}

    def __call__(self, label: str) -> tuple[str, str]:
        return self.map[label]


def row_order(keys: list[RowKey]) -> list[RowKey]:
    def key(k: RowKey) -> tuple:
        known = METHOD_ORDER.index(k.method) if k.method in METHOD_ORDER else len(METHOD_ORDER)
        return (k.audit, known, k.method.startswith("promo"), k.method, k.variant)

    return sorted(keys, key=key)


def _save(fig: plt.Figure, out: Path, stem: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.pdf", out / f"{stem}.png"]
    for p in paths:
        fig.savefig(p, bbox_inches="tight", dpi=150)
    plt.close(fig)
    return paths


def metric_ci(rows: list[RowEvents], cache: EventCache, styles: Styles, metrics: list[str], split: str, subset: str,
              title: str, out: Path, stem: str) -> list[Path]:
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.35 * len(rows) + 1.4), sharey=True,
                             squeeze=False)
    labels = [r.key.label for r in rows]
    for ax, metric in zip(axes[0], metrics):
        for y, row in enumerate(rows):
            values = cache.per_seed(row, split, subset, metric).mean(axis=0)
            lo, hi = bootstrap_ci(values)
            colour, marker = styles(row.key.label)
            ax.errorbar(values.mean(), y, xerr=[[values.mean() - lo], [hi - values.mean()]], fmt=marker,
                        color=colour, capsize=3)
        ax.set_xlabel(f"{metric_title(metric)} (95% CI)")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(rows)), labels)
    axes[0][0].invert_yaxis()
    fig.suptitle(title, fontsize=10)
    return _save(fig, out, stem)


def metric_over_k(rows: list[RowEvents], cache: EventCache, styles: Styles, split: str, subset: str, title: str,
                  out: Path, stem: str, max_k: int = 20) -> list[Path]:
    ks = np.arange(1, max_k + 1)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for row in rows:
        ranks = cache.ranks(row, split, subset)
        colour, marker = styles(row.key.label)
        for ax, kind in zip(axes, ("hr", "ndcg")):
            curve = [np.mean([metric_from_counts(f"{kind}@{k}", s, e).mean() for s, e in ranks]) for k in ks]
            ax.plot(ks, curve, color=colour, marker=marker, markersize=3, linewidth=1.2, label=row.key.label)
    for ax, kind in zip(axes, ("HR", "NDCG")):
        ax.set_xlabel("K")
        ax.set_ylabel(f"{kind}@K")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out, stem)


def over_stages(rows: list[RowEvents], cache: EventCache, styles: Styles, split: str, metric: str,
                stages: tuple[str, ...], title: str, out: Path, stem: str) -> list[Path]:
    """The warm-up curve: a metric at each stage (base, warm-a, ...) per method, with 95% bootstrap CIs."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    x = np.arange(len(stages))
    for k, row in enumerate(rows):
        colour, marker = styles(row.key.label)
        means, lows, highs = [], [], []
        for stage in stages:
            values = cache.per_seed(row, split, stage, metric).mean(axis=0)
            lo, hi = bootstrap_ci(values)
            means.append(values.mean())
            lows.append(values.mean() - lo)
            highs.append(hi - values.mean())
        offset = (k - (len(rows) - 1) / 2) * 0.03  # keep overlapping error bars apart
        ax.errorbar(x + offset, means, yerr=[lows, highs], color=colour, marker=marker, markersize=4, capsize=2,
                    linewidth=1.2, label=row.key.label)
    ax.set_xticks(x, list(stages))
    ax.set_ylabel(f"{metric_title(metric)} (95% CI)")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    return _save(fig, out, stem)


def cold_vs_warm(rows: list[RowEvents], cache: EventCache, styles: Styles, split: str, metric: str, title: str,
                 out: Path, stem: str, noun: str = "targets") -> list[Path]:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    for row in rows:
        warm = cache.per_seed(row, split, "warm", metric).mean()
        cold = cache.per_seed(row, split, "cold", metric).mean()
        colour, marker = styles(row.key.label)
        ax.scatter(warm, cold, color=colour, marker=marker, s=40, label=row.key.label)
    lim = max(ax.get_xlim()[1], ax.get_ylim()[1])
    ax.plot([0, lim], [0, lim], color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel(f"{metric_title(metric)} on warm {noun}")
    ax.set_ylabel(f"{metric_title(metric)} on cold {noun}")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    return _save(fig, out, stem)


def score_distributions(rows: list[RowEvents], cache: EventCache, styles: Styles, split: str, title: str, out: Path,
                        stem: str) -> list[Path]:
    """Scores of cold-item positives against warm-item negatives (needs trials run with --save-scores)."""
    # per row, the lowest seed whose trial saved scores (rows' seeds are in seed order): scores of different
    # seeds are different models and are never pooled; the panel title names the seed
    chosen: list[tuple[RowEvents, int, Path]] = []
    for r in rows:
        found = next(((sd, p) for sd, p in zip(r.seeds, r.paths) if f"{split}.scores" in cache.vectors(p)), None)
        if found is not None:
            chosen.append((r, *found))
    if not chosen:
        return []
    ncols = min(4, len(chosen))
    nrows = -(-len(chosen) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.6 * nrows), squeeze=False)
    for ax in axes.ravel()[len(chosen):]:
        ax.set_visible(False)
    for ax, (row, seed, path) in zip(axes.ravel(), chosen):
        v = cache.vectors(path)
        scores, cand_cold, mask = v[f"{split}.scores"], v[f"{split}.cand_cold"], v[f"{split}.cand_mask"]
        cold_pos = scores[:, 0][cand_cold[:, 0]]
        warm_neg = scores[:, 1:][~cand_cold[:, 1:] & mask[:, 1:]]
        bins = np.histogram_bin_edges(np.concatenate([cold_pos, warm_neg]), bins=40)
        ax.hist(warm_neg, bins=bins, density=True, alpha=0.6, color=OKABE_ITO[1], label="warm-item negatives")
        ax.hist(cold_pos, bins=bins, density=True, alpha=0.6, color=OKABE_ITO[0], label="cold-item positives")
        ax.set_title(f"{row.key.label} (seed {seed})", fontsize=9)
        ax.set_xlabel("score")
    for r in range(nrows):
        axes[r][0].set_ylabel("density")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out, stem)
