"""The cold-start curve (issue 21 part 4): each method's HR@10 and NDCG@10 on test events binned by how many
training positives the target item had strictly before the event (0, 1-2, 3-5, 6-10, 11-20, 21-50, > 50).

PROMO's open question is how methods behave on items with only one or two interactions; the cold/warm split at tau
hides it. The count is the split's own ``{part}/n_prior_pos`` (the number the cold flag is cut from), read from the
split cache by the records' split hash, so the binning uses training data before each event only, and the events
are those the trials were scored on (their order is the split's). Per bin and metric the reference is tested
against every tested row with the tables' paired test over events (seed means), Holm-corrected across bins,
methods and metrics together; intervals are hierarchical bootstrap intervals over seeds and events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.errors import BenchError
from benchmark.report.events import EventCache, RowEvents
from benchmark.report.table import metric_title
from benchmark.stats import Comparison, apply_holm, compare, hierarchical_bootstrap_cis

BINS: tuple[tuple[int, float, str], ...] = ((0, 0, "0"), (1, 2, "1-2"), (3, 5, "3-5"), (6, 10, "6-10"),
                                            (11, 20, "11-20"), (21, 50, "21-50"), (51, np.inf, ">50"))
METRICS = ("hr@10", "ndcg@10")


@dataclass
class Curve:
    dataset: str
    split_hash: str
    split: str
    bins: list[str]
    n_events: list[int]
    rows: list[str]  # labels, in order
    tested: list[str]  # labels compared with the reference
    reference: str | None
    test: str
    alpha: float
    cells: dict[tuple[str, str, str], tuple[float, float, float]] = field(default_factory=dict)  # (row, metric, bin)
    comparisons: list[Comparison] = field(default_factory=list)

    def mark(self, row: str, metric: str, bin_: str) -> str:
        """'+' the reference significantly better, '-' worse than ``row`` in this bin (after Holm), else ''."""
        for c in self.comparisons:
            if c.b == row and c.metric == f"{metric}|{bin_}" and c.significant:
                return "+" if c.diff > 0 else "-"
        return ""


def prior_positives(row: RowEvents, split: str) -> np.ndarray:
    """The split's per-event count of the target's training positives before the event, from the split cache."""
    from benchmark.protocols import split_path
    from benchmark.protocols.split import Split

    rec = json.loads(row.paths[0].read_text())
    dataset, protocol, full = rec["dataset"]["name"], rec["protocol"]["name"], rec["protocol"]["split_hash"]
    path = split_path(dataset, protocol, full)
    if not path.is_file():
        raise BenchError(f"cold-start curve: split {full[:12]} of {dataset}/{protocol} is not in the split cache "
                         f"({path}); rebuild it with the run that made these records (same data and "
                         f"--protocol-set), or set PROMO_BENCH_CACHE to the cache that holds it")
    arrays = Split.load(path).part(split)
    if "n_prior_pos" not in arrays:
        raise BenchError(f"cold-start curve: {path} has no {split}/n_prior_pos (an older loo version)")
    return np.asarray(arrays["n_prior_pos"])


def build_curve(rows: list[RowEvents], cache: EventCache, reference: str | None, tested: list[str],
                split: str = "test", test: str = "t", alpha: float = 0.05,
                names: dict[str, str] | None = None) -> Curve:
    """One dataset and split's curve; ``rows`` in display order, ``tested``: the labels compared with the
    reference (reference points such as random and popular are shown, not tested)."""
    names = names or {}
    n_prior = prior_positives(rows[0], split)
    masks = [(label, (n_prior >= lo) & (n_prior <= hi)) for lo, hi, label in BINS]
    curve = Curve(rows[0].key.dataset, rows[0].key.split_hash, split, [b for b, _ in masks],
                  [int(m.sum()) for _, m in masks], [names.get(r.key.method, r.key.label) for r in rows],
                  [names.get(t, t) for t in tested], names.get(reference, reference) if reference else None, test, alpha)
    per_row: dict[str, dict[str, np.ndarray]] = {}
    for row in rows:
        label = names.get(row.key.method, row.key.label)
        per_row[label] = {}
        for metric in METRICS:
            x = cache.per_seed(row, split, "all", metric)
            if x.shape[1] != len(n_prior):
                raise BenchError(f"cold-start curve: {row.key.label} has {x.shape[1]} {split} events, its split "
                                 f"{len(n_prior)}")
            per_row[label][metric] = x
            for bin_, m in masks:
                if m.any():  # each bin its own resamples: bins hold different events
                    (lo, hi), = hierarchical_bootstrap_cis([x[:, m]])
                    curve.cells[(label, metric, bin_)] = (float(x[:, m].mean()), lo, hi)
    if curve.reference is not None and curve.reference in per_row:
        ref = per_row[curve.reference]
        for label in curve.tested:
            if label == curve.reference or label not in per_row:
                continue
            for metric in METRICS:
                for bin_, m in masks:
                    if m.sum() < 2:
                        continue
                    c = compare(curve.reference, label, f"{metric}|{bin_}", ref[metric][:, m].mean(axis=0),
                                per_row[label][metric][:, m].mean(axis=0), test, alpha)
                    curve.comparisons.append(c)
        apply_holm(curve.comparisons, alpha)
    return curve


def markdown(curve: Curve) -> str:
    out = []
    for metric in METRICS:
        headers = ["method"] + [f"{b} (n={n})" for b, n in zip(curve.bins, curve.n_events)]
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for label in curve.rows:
            cells = []
            for b in curve.bins:
                got = curve.cells.get((label, metric, b))
                mark = {"+": "†", "-": "‡"}.get(curve.mark(label, metric, b), "")
                cells.append("–" if got is None else f"{got[0]:.4f} [{got[1]:.3f}, {got[2]:.3f}]{mark}")
            lines.append("| " + " | ".join([label] + cells) + " |")
        out.append(f"**{metric_title(metric)}** by the target item's training positives before the event\n\n"
                   + "\n".join(lines))
    n = len(curve.comparisons)
    note = (f"{curve.dataset}, {curve.split} split {curve.split_hash[:12]}: {curve.split} events binned by the target "
            f"item's number of training positives strictly before the event; mean over seeds, [95 % hierarchical "
            f"bootstrap interval over seeds and events].")
    if curve.reference:
        note += (f" {curve.reference} against each of {', '.join(t for t in curve.tested if t != curve.reference)} per "
                 f"bin and metric: paired {curve.test}-test over events (seed means), Holm-Bonferroni across {n} "
                 f"comparisons (bins, methods, metrics), alpha = {curve.alpha}. †: {curve.reference} significantly "
                 f"better than that row in that bin; ‡: that row significantly better than {curve.reference}. "
                 f"Other rows are reference points, not tested.")
        mde = []
        for b in curve.bins:  # what each bin's events can detect: a null result in a small bin is not evidence
            got = [c.mde for c in curve.comparisons if c.metric == f"hr@10|{b}" and c.mde]
            if got:
                mde.append(f"{b}: {float(np.median(got)):.3f}")
        if mde:
            note += (" Smallest HR@10 difference detectable with power 0.8 at alpha (unadjusted; median over "
                     "comparisons), per bin: " + ", ".join(mde) + ".")
    return "\n\n".join(out) + "\n\n" + note + "\n"


def csv(curve: Curve) -> str:
    lines = ["dataset,split_hash,method,metric,bin,n_events,mean,ci_low,ci_high,mark"]
    for (label, metric, b), (m, lo, hi) in curve.cells.items():
        n = curve.n_events[curve.bins.index(b)]
        lines.append(f"{curve.dataset},{curve.split_hash},{label},{metric},{b},{n},{m:.6f},{lo:.6f},{hi:.6f},"
                     f"{curve.mark(label, metric, b)}")
    return "\n".join(lines) + "\n"


def plot(curve: Curve, out: Path, stem: str, styles=None, width: str = "column") -> list[Path]:
    """``styles``: the report's row styles (benchmark.report.plots.Styles), so a method keeps its colour."""
    from benchmark.report import plots

    plt = plots.plt
    styles = styles if styles is not None and all(r in styles.map for r in curve.rows) else plots.Styles(curve.rows)
    with plots.paper_style():
        fig, axes = plt.subplots(1, len(METRICS), figsize=(plots.WIDTHS[width], 2.3 + 0.11 * -(-len(curve.rows) // 3)),
                                 layout="constrained")
        x = np.arange(len(curve.bins))
        for k, label in enumerate(curve.rows):
            colour, marker = styles(label)
            for ax, metric in zip(axes, METRICS):
                pts = [(i, *curve.cells[(label, metric, b)]) for i, b in enumerate(curve.bins)
                       if (label, metric, b) in curve.cells]
                if not pts:
                    continue
                i, m, lo, hi = (np.array(v) for v in zip(*pts))
                off = (k - (len(curve.rows) - 1) / 2) * 0.025
                ax.errorbar(i + off, m, yerr=[m - lo, hi - m], color=colour, marker=marker, capsize=1.2,
                            elinewidth=0.6, label=label,
                            linestyle=styles.line(label))
        for ax, metric in zip(axes, METRICS):
            ax.set_xticks(x, curve.bins, rotation=45)
            ax.set_xlabel("prior positives")  # the caption says: of the target, in training, before the event
            ax.set_ylabel(metric_title(metric))
            ax.grid(alpha=0.3)
        handles, labels = axes[0].get_legend_handles_labels()
        plots._legend_below(fig, handles, labels, width)
        caption = (f"{', '.join(metric_title(m) for m in METRICS)} of each method on {curve.dataset} {curve.split} "
                   f"events binned by the target item's training positives strictly before the event (events per "
                   f"bin: {', '.join(f'{b}: {n}' for b, n in zip(curve.bins, curve.n_events))}); mean over seeds "
                   f"with {plots.CI_NOTE}.")
        return plots._save(fig, out, stem, caption)
