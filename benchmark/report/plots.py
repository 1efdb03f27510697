"""Figures for papers (matplotlib, PDF and PNG): metrics with confidence intervals, HR/NDCG over K, cold against
warm targets as lift over chance, the warm-up curve, and score distributions of cold positives against warm
negatives.

Made to drop into a paper: no titles (each figure's caption is written next to it as ``STEM.txt``, saying what
the error bars carry), TrueType fonts embedded as Type 42 (no bitmap Type 3), a fixed width of one column (3.3 in)
or two (7 in, ``width="page"``) with 7-8 pt text, one colour-blind-safe palette (Okabe-Ito) with a distinct marker
(and, past eight rows, line style) per row, fixed across every figure of a report, and legends outside the data.
Intervals are 95 % hierarchical bootstrap intervals over seeds and events (``stats.hierarchical_bootstrap_cis``).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmark.metrics import metric_from_counts  # noqa: E402
from benchmark.report.profiles import profile
from benchmark.report.events import EventCache, RowEvents, RowKey  # noqa: E402
from benchmark.report.table import METHOD_ORDER, metric_title  # noqa: E402
from benchmark.stats import hierarchical_bootstrap_cis  # noqa: E402

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", ":", "-."]
WIDTHS = {"column": 3.3, "page": 7.0}  # inches: ACM/IEEE one column, two columns
CI_NOTE = "95 % hierarchical bootstrap intervals over seeds and events"
PAPER_RC = {"pdf.fonttype": 42, "ps.fonttype": 42, "font.family": "DejaVu Sans", "font.size": 7,
            "axes.labelsize": 7, "xtick.labelsize": 6.5, "ytick.labelsize": 6.5, "legend.fontsize": 6.5,
            "axes.linewidth": 0.6, "lines.linewidth": 1.0, "lines.markersize": 3.5, "grid.linewidth": 0.4,
            "savefig.dpi": 300}


@contextmanager
def paper_style() -> Iterator[None]:
    with plt.rc_context(PAPER_RC):
        yield


class Styles:
    """Row label -> (colour, marker, line style), assigned once per report in a fixed order."""

    def __init__(self, labels: list[str]) -> None:
        self.map = {lbl: (OKABE_ITO[k % 8], MARKERS[(k // 8 + k) % 8], LINESTYLES[(k // 8) % 4])
                    for k, lbl in enumerate(labels)}

    def __call__(self, label: str) -> tuple[str, str]:
        return self.map[label][:2]

    def line(self, label: str) -> str:
        return self.map[label][2]


def row_order(keys: list[RowKey]) -> list[RowKey]:
    def key(k: RowKey) -> tuple:
        known = METHOD_ORDER.index(k.method) if k.method in METHOD_ORDER else len(METHOD_ORDER)
        return (k.audit, known, k.method.startswith("promo"), k.method, k.variant)

    return sorted(keys, key=key)


def _save(fig: plt.Figure, out: Path, stem: str, caption: str) -> list[Path]:
    """PDF and PNG at the figure's own size (no tight bounding box: the width is the column's), and the caption."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.pdf", out / f"{stem}.png"]
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    (out / f"{stem}.txt").write_text(caption.strip() + "\n")
    return paths + [out / f"{stem}.txt"]


def _ci(row: RowEvents, cache: EventCache, split: str, subset: str, metric: str) -> tuple[float, float, float]:
    x = cache.per_seed(row, split, subset, metric)
    (lo, hi), = hierarchical_bootstrap_cis([x])
    return float(x.mean()), lo, hi


def _legend_below(fig: plt.Figure, handles: list, labels: list, width: str) -> None:
    ncol = 3 if width == "column" else 5
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False, handlelength=2.2,
               columnspacing=1.0)


def metric_ci(rows: list[RowEvents], cache: EventCache, styles: Styles, metrics: list[str], split: str, subset: str,
              what: str, out: Path, stem: str, width: str = "column") -> list[Path]:
    with paper_style():
        fig, axes = plt.subplots(1, len(metrics), figsize=(WIDTHS[width], 0.13 * len(rows) + 0.55), sharey=True,
                                 squeeze=False, layout="constrained")
        labels = [r.key.label for r in rows]
        for ax, metric in zip(axes[0], metrics):
            for y, row in enumerate(rows):
                mean, lo, hi = _ci(row, cache, split, subset, metric)
                colour, marker = styles(row.key.label)
                ax.errorbar(mean, y, xerr=[[mean - lo], [hi - mean]], fmt=marker, color=colour, capsize=1.5,
                            elinewidth=0.8, markersize=3)
            ax.set_xlabel(metric_title(metric))
            ax.grid(axis="x", alpha=0.3)
        axes[0][0].set_yticks(range(len(rows)), labels)
        axes[0][0].invert_yaxis()
        caption = (f"{', '.join(metric_title(m) for m in metrics)} per method, {what}: mean over seeds with "
                   f"{CI_NOTE}.")
        return _save(fig, out, stem, caption)


def metric_over_k(rows: list[RowEvents], cache: EventCache, styles: Styles, split: str, subset: str, what: str,
                  out: Path, stem: str, max_k: int = 20, width: str = "column") -> list[Path]:
    ks = np.arange(1, max_k + 1)
    with paper_style():
        height = 2.1 + 0.11 * -(-len(rows) // (3 if width == "column" else 5))
        fig, axes = plt.subplots(1, 2, figsize=(WIDTHS[width], height), layout="constrained")
        for row in rows:
            ranks = cache.ranks(row, split, subset)
            colour, marker = styles(row.key.label)
            for ax, kind in zip(axes, ("hr", "ndcg")):
                per_k = [np.stack([metric_from_counts(f"{kind}@{k}", s, e) for s, e in ranks]) for k in ks]
                curve = np.array([x.mean() for x in per_k])
                band = np.array(hierarchical_bootstrap_cis(per_k))
                ax.fill_between(ks, band[:, 0], band[:, 1], color=colour, alpha=0.15, linewidth=0)
                ax.plot(ks, curve, color=colour, marker=marker, markevery=4, linestyle=styles.line(row.key.label),
                        label=row.key.label)
        for ax, kind in zip(axes, ("HR", "NDCG")):
            ax.set_xlabel("K")
            ax.set_ylabel(f"{kind}@K")
            ax.set_xticks([1, 5, 10, 15, 20])
            ax.grid(alpha=0.3)
        handles, labels = axes[0].get_legend_handles_labels()
        _legend_below(fig, handles, labels, width)
        caption = f"HR@K and NDCG@K for K = 1..{max_k}, {what}: mean over seeds; bands: {CI_NOTE}."
        return _save(fig, out, stem, caption)


def over_stages(rows: list[RowEvents], cache: EventCache, styles: Styles, split: str, metric: str,
                stages: tuple[str, ...], what: str, out: Path, stem: str, width: str = "column") -> list[Path]:
    """The warm-up curve: a metric at each stage (base, warm-a, ...) per method."""
    with paper_style():
        fig, ax = plt.subplots(figsize=(WIDTHS[width], 2.2 + 0.11 * -(-len(rows) // 3)), layout="constrained")
        x = np.arange(len(stages))
        for k, row in enumerate(rows):
            colour, marker = styles(row.key.label)
            arrays = [cache.per_seed(row, split, stage, metric) for stage in stages]
            means = np.array([a.mean() for a in arrays])
            band = np.array(hierarchical_bootstrap_cis(arrays))
            offset = (k - (len(rows) - 1) / 2) * 0.02  # keep overlapping error bars apart
            ax.errorbar(x + offset, means, yerr=[means - band[:, 0], band[:, 1] - means], color=colour, marker=marker,
                        capsize=1.5, elinewidth=0.7, linestyle=styles.line(row.key.label), label=row.key.label)
        ax.set_xticks(x, list(stages))
        ax.set_ylabel(metric_title(metric))
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        _legend_below(fig, handles, labels, width)
        caption = f"{metric_title(metric)} of each method at each warm-up stage, {what}: mean over seeds; bars: {CI_NOTE}."
        return _save(fig, out, stem, caption)


CHANCE_METHOD = "random"


def lift_over_chance(rows: list[RowEvents], cache: EventCache, split: str, metric: str
                     ) -> tuple[list[RowEvents], dict[str, dict[str, tuple[float, float, float]]], bool]:
    """(rows shown, label -> subset -> (mean, CI low, CI high) divided by the random row's mean on that subset,
    whether it could divide): raw values when there is no random row (or it scores 0 on a subset)."""
    chance_row = next((r for r in rows if r.key.method == CHANCE_METHOD and not r.key.variant and not r.key.audit),
                      None)
    # the protocol's cold and warm subsets (on a sampled protocol: cold and warm for the model)
    names = dict(zip(("cold", "warm"), profile(rows[0].key.protocol).pair)) if rows else {}
    chance = ({sub: float(cache.per_seed(chance_row, split, names[sub], metric).mean()) for sub in ("cold", "warm")}
              if chance_row is not None else None)
    if chance is not None and min(chance.values()) <= 0:
        chance = None
    shown = [r for r in rows if r is not chance_row] if chance is not None else list(rows)
    out = {}
    for row in shown:
        out[row.key.label] = {}
        for sub in ("warm", "cold"):
            mean, lo, hi = _ci(row, cache, split, names[sub], metric)
            scale = chance[sub] if chance is not None else 1.0
            out[row.key.label][sub] = (mean / scale, lo / scale, hi / scale)
    return shown, out, chance is not None


def cold_vs_warm(rows: list[RowEvents], cache: EventCache, styles: Styles, split: str, metric: str, what: str,
                 out: Path, stem: str, noun: str = "targets", width: str = "column") -> list[Path]:
    """Cold against warm as lift over chance: each subset's metric divided by the ``random`` row's on the same
    subset (its expectation is the chance level of that subset's candidate sets). Raw values would mislead where the
    subsets' candidate sets differ in size (``cold``: 145 cold against 1,158 warm candidates put random far above
    the diagonal by set size alone). One line per method, so no two methods' markers overlap."""
    shown, lifts, normalised = lift_over_chance(rows, cache, split, metric)
    chance = normalised or None
    with paper_style():
        fig, ax = plt.subplots(figsize=(WIDTHS[width], 0.13 * len(shown) + 0.75), layout="constrained")
        for y, row in enumerate(shown):
            colour, marker = styles(row.key.label)
            vals = lifts[row.key.label]
            ax.plot([vals["warm"][0], vals["cold"][0]], [y, y], color=colour, linewidth=0.8, alpha=0.7)
            for sub, face in (("warm", colour), ("cold", "white")):
                m, lo, hi = vals[sub]
                ax.errorbar(m, y, xerr=[[m - lo], [hi - m]], fmt=marker, color=colour, markerfacecolor=face,
                            markersize=3.5, capsize=1.2, elinewidth=0.6)
        ax.set_yticks(range(len(shown)), [r.key.label for r in shown])
        ax.invert_yaxis()
        if chance is not None:
            ax.axvline(1.0, color="grey", linewidth=0.6, linestyle=":")
            ax.set_xlabel(f"{metric_title(metric)} / random's {metric_title(metric)} (lift over chance)")
        else:
            ax.set_xlabel(metric_title(metric))
        ax.grid(axis="x", alpha=0.3)
        from matplotlib.lines import Line2D

        keys = [Line2D([], [], color="black", marker="o", linestyle="", markersize=3.5, label=f"warm {noun}"),
                Line2D([], [], color="black", marker="o", markerfacecolor="white", linestyle="", markersize=3.5,
                       label=f"cold {noun}")]
        fig.legend(handles=keys, loc="outside lower center", ncol=2, frameon=False)
        scale = (f"divided by the random row's value on the same subset (1 = chance: the subsets' candidate sets "
                 f"differ, so raw values do not compare)" if chance is not None else
                 "raw values (no random row to normalise by: subsets whose candidate sets differ in size do not "
                 "compare)")
        pair = profile(rows[0].key.protocol).pair if rows else ("cold", "warm")
        which = (" (cold: fewer than tau positives in the training rows)" if pair[0] == "cold-model" else "")
        caption = (f"{metric_title(metric)} on warm (filled) and cold (open) {noun}{which} per method, {what}, {scale}; "
                   f"mean over seeds with {CI_NOTE}.")
        return _save(fig, out, stem, caption)


def score_distributions(rows: list[RowEvents], cache: EventCache, styles: Styles, split: str, what: str, out: Path,
                        stem: str, width: str = "page") -> list[Path]:
    """Scores of cold-item positives against warm-item negatives (needs trials run with --save-scores)."""
    # per row, the lowest seed whose trial saved scores (rows' seeds are in seed order): scores of different
    # seeds are different models and are never pooled; the panel label names the seed
    chosen: list[tuple[RowEvents, int, Path]] = []
    for r in rows:
        found = next(((sd, p) for sd, p in zip(r.seeds, r.paths) if f"{split}.scores" in cache.vectors(p)), None)
        if found is not None:
            chosen.append((r, *found))
    if not chosen:
        return []
    ncols = min(4 if width == "page" else 2, len(chosen))
    nrows = -(-len(chosen) // ncols)
    with paper_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(WIDTHS[width], 1.35 * nrows + 0.3), squeeze=False,
                                 layout="constrained")
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
            ax.text(0.02, 0.95, f"{row.key.label} (seed {seed})", transform=ax.transAxes, va="top", fontsize=6.5)
            ax.set_xlabel("score")
        for r in range(nrows):
            axes[r][0].set_ylabel("density")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False)
        count = {"loo": "training positives before the event", "temporal": "positives in the training rows"}.get(
            rows[0].key.protocol, "training positives") if rows else "training positives"
        caption = (f"Score densities of cold-item positives and warm-item negatives per method, {what} (cold: fewer "
                   f"than tau {count}; one seed each, named in its panel: scores of different seeds are different "
                   f"models).")
        return _save(fig, out, stem, caption)
