"""The cold-start curve (issues 21 and 36): each method's HR@10 and NDCG@10 on test events binned by how many
positives of the target item there were (0, 1-2, 3-5, 6-10, 11-20, 21-50, > 50), under two counts:

- ``n_train_pos`` (*for the model*): the item's positives in the training rows the method was fit on, whatever their
  time. This is what the model has seen of the item; the tables' ``cold-model`` subset is its first bins.
- ``n_prior_pos`` (*at the event*): its positives before the event's time in the event's context (on ``loo`` the
  training rows before it; on ``temporal`` every logged row before it). Under ``loo``'s per-user split a target can
  be cold at the event and warm for the model (other users' later rows are training rows).

The counts are the trials' own per-event vectors (records since issue 36) or, for older records, the split's arrays
from the split cache by the records' split hash. Each curve is drawn for one evaluation (sampled negatives, or the
full catalogue). Per bin and metric the reference is tested against every tested row with the report's ``--test``
(event tests on seed means, seed-aware tests on the per-seed values), Holm-corrected across bins, methods and
metrics together; intervals are hierarchical bootstrap intervals over seeds and events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.errors import BenchError
from benchmark.evaluation import part_of
from benchmark.report.events import EventCache, RowEvents
from benchmark.report.table import TEST_NAMES, metric_title
from benchmark.stats import EVENT_TESTS, Comparison, apply_holm, compare, hierarchical_bootstrap_cis

COUNTS = ("n_train_pos", "n_prior_pos")
TAGS = {"n_train_pos": "-model", "n_prior_pos": "-event"}  # file-name suffixes
WORDS = {"n_train_pos": "the target item's positives in the training rows the model was fit on",
         "n_prior_pos": "the target item's positives before the event (in the event's context)"}
AXIS = {"n_train_pos": "training positives", "n_prior_pos": "positives before event"}  # the caption says whose
BINS: tuple[tuple[int, float, str], ...] = ((0, 0, "0"), (1, 2, "1-2"), (3, 5, "3-5"), (6, 10, "6-10"),
                                            (11, 20, "11-20"), (21, 50, "21-50"), (51, np.inf, ">50"))
METRICS = ("hr@10", "ndcg@10")


@dataclass
class Curve:
    dataset: str
    split_hash: str
    split: str  # "test", or "test.full" for the full-catalogue ranking
    count: str  # COUNTS: what the bins count
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


def target_counts(row: RowEvents, cache: EventCache, split: str, count: str) -> np.ndarray:
    """The per-event ``count`` of the row's targets: from its trials' vectors, else from the split cache."""
    stored = cache.counts(row, split, count)
    if stored is not None:
        return stored
    from benchmark.protocols import split_path
    from benchmark.protocols.split import Split

    part = part_of(split)
    rec = json.loads(row.paths[0].read_text())
    dataset, protocol, full = rec["dataset"]["name"], rec["protocol"]["name"], rec["protocol"]["split_hash"]
    path = split_path(dataset, protocol, full)
    if not path.is_file():
        raise BenchError(f"cold-start curve: split {full[:12]} of {dataset}/{protocol} is not in the split cache "
                         f"({path}); rebuild it with the run that made these records (same data and "
                         f"--protocol-set), or set PROMO_BENCH_CACHE to the cache that holds it")
    split_obj = Split.load(path)
    arrays = split_obj.part(part)
    if count in arrays:
        return np.asarray(arrays[count])
    if count == "n_train_pos":  # splits before issue 36: the training period's count (equal at the defaults)
        return np.asarray(split_obj.arrays["item/train_pos_count"])[arrays["item"]]
    raise BenchError(f"cold-start curve: {path} has no {part}/{count} (an older loo version)")


def build_curve(rows: list[RowEvents], cache: EventCache, reference: str | None, tested: list[str],
                split: str = "test", test: str = "t", alpha: float = 0.05,
                names: dict[str, str] | None = None, count: str = "n_train_pos") -> Curve:
    """One dataset and split's curve; ``rows`` in display order, ``tested``: the labels compared with the
    reference (reference points such as random and popular are shown, not tested)."""
    names = names or {}
    n = target_counts(rows[0], cache, split, count)
    masks = [(label, (n >= lo) & (n <= hi)) for lo, hi, label in BINS]
    curve = Curve(rows[0].key.dataset, rows[0].key.split_hash, split, count, [b for b, _ in masks],
                  [int(m.sum()) for _, m in masks], [names.get(r.key.method, r.key.label) for r in rows],
                  [names.get(t, t) for t in tested], names.get(reference, reference) if reference else None, test, alpha)
    per_row: dict[str, dict[str, np.ndarray]] = {}
    seeds: dict[str, list[int]] = {}
    for row in rows:
        label = names.get(row.key.method, row.key.label)
        per_row[label], seeds[label] = {}, list(row.seeds)
        for metric in METRICS:
            x = cache.per_seed(row, split, "all", metric)
            if x.shape[1] != len(n):
                raise BenchError(f"cold-start curve: {row.key.label} has {x.shape[1]} {split} events, its split "
                                 f"{len(n)}")
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
                    c = compare(curve.reference, label, f"{metric}|{bin_}", ref[metric][:, m],
                                per_row[label][metric][:, m], test, alpha, seeds_a=seeds[curve.reference],
                                seeds_b=seeds[label])
                    curve.comparisons.append(c)
        apply_holm(curve.comparisons, alpha)
    return curve


def _evaluation(curve: Curve) -> str:
    return "full-catalogue ranking" if curve.split != part_of(curve.split) else "sampled negatives"


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
        out.append(f"**{metric_title(metric)}** by {WORDS[curve.count]} ({_evaluation(curve)})\n\n"
                   + "\n".join(lines))
    n = len(curve.comparisons)
    part = part_of(curve.split)
    note = (f"{curve.dataset}, {part} split {curve.split_hash[:12]}, {_evaluation(curve)}: {part} events binned by "
            f"{WORDS[curve.count]}; mean over seeds, [95 % hierarchical bootstrap interval over seeds and events].")
    if curve.reference:
        unit = "over events, seed means" if curve.test in EVENT_TESTS else "seeds and events"
        note += (f" {curve.reference} against each of {', '.join(t for t in curve.tested if t != curve.reference)} per "
                 f"bin and metric: {TEST_NAMES[curve.test]} ({unit}), Holm-Bonferroni across {n} "
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
    lines = ["dataset,split_hash,evaluation,count,method,metric,bin,n_events,mean,ci_low,ci_high,mark"]
    for (label, metric, b), (m, lo, hi) in curve.cells.items():
        n = curve.n_events[curve.bins.index(b)]
        lines.append(f"{curve.dataset},{curve.split_hash},{_evaluation(curve)},{curve.count},{label},{metric},{b},{n},"
                     f"{m:.6f},{lo:.6f},{hi:.6f},{curve.mark(label, metric, b)}")
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
            ax.set_xlabel(AXIS[curve.count])
            ax.set_ylabel(metric_title(metric))
            ax.grid(alpha=0.3)
        handles, labels = axes[0].get_legend_handles_labels()
        plots._legend_below(fig, handles, labels, width)
        caption = (f"{', '.join(metric_title(m) for m in METRICS)} of each method on {curve.dataset} "
                   f"{part_of(curve.split)} events ({_evaluation(curve)}) binned by {WORDS[curve.count]} (events per "
                   f"bin: {', '.join(f'{b}: {n}' for b, n in zip(curve.bins, curve.n_events))}); mean over seeds "
                   f"with {plots.CI_NOTE}.")
        return plots._save(fig, out, stem, caption)
