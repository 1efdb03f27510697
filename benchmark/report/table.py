"""TableModel: one paper table (rows = methods, column groups = datasets, sub-columns = metrics), with
the statistics that decide its marks. Renderers (LaTeX, Markdown, CSV, JSON) only format it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from benchmark.errors import BenchError
from benchmark.report.events import (UNVERIFIED, EventCache, RowEvents, RowKey, capacity_note, completeness_notes,
                                     provenance_notes)
from benchmark.registry import OWN_DIST
from benchmark.evaluation import part_of
from benchmark.report.profiles import profile
from benchmark.stats import (BOOTSTRAP_RESAMPLES, EVENT_TESTS, POWER, Comparison, apply_holm, compare,
                             minimum_detectable_effect)

LOWER_IS_BETTER: frozenset[str] = frozenset({"logloss"})
METHOD_ORDER = ("random", "popular", "bpr-mf", "dssm", "content-knn", "deepmusic", "dropoutnet", "heater", "clcrec", "gar",
                "aldi", "deepfm", "dcn", "metaemb", "mwuf", "cvar", "cdn", "plate", "cb2cf", "sasrec", "ppr", "dssm-sasrec",
                "finetune")
TEST_NAMES = {"t": "paired two-sided t-test", "wilcoxon": "two-sided Wilcoxon signed-rank test",
              "permutation": "paired two-sided sign-flip permutation test (10,000 resamples, +1 correction)",
              "seeds": "paired two-sided t-test over seeds",
              "bootstrap": "two-sided Wald test with a hierarchical bootstrap standard error"}


def metric_title(metric: str) -> str:
    name, _, k = metric.partition("@")
    return ({"hr": "HR", "ndcg": "NDCG", "mrr": "MRR", "recall": "Recall", "auc": "AUC", "logloss": "Log-loss",
             "auc_pooled": "pooled AUC"}
            .get(name, name) + (f"@{k}" if k else ""))


@dataclass
class Column:
    group: tuple[str, str]  # (dataset, split hash)
    label: str  # dataset as shown
    metric: str
    n_events: int
    subset: str = ""  # set when one table spans several subsets (the warm-up stages)


@dataclass
class Cell:
    mean: float
    std: float | None
    n_seeds: int
    bold: bool = False
    underline: bool = False
    dagger: bool = False  # the reference is significantly better than every baseline here
    ddagger: bool = False  # this baseline is significantly better than the reference here


@dataclass
class Table:
    protocol: str
    budget: str
    split: str
    subset: str
    columns: list[Column]
    baselines: list[RowKey]
    reference: RowKey | None
    extras: list[RowKey]  # reference variants and audit rows: shown, never ranked or tested
    cells: dict[tuple[RowKey, int], Cell]
    improvement: list[float | None]
    comparisons: list[Comparison]
    test: str
    alpha: float
    digits: int
    notes: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # method -> display name (a suite's paper names)
    title: str = ""  # a suite's one-line description, opening the caption
    origins: dict[str, str] = field(default_factory=dict)  # plugin method -> distribution and version
    incomplete: list[str] = field(default_factory=list)  # rows with failed or missing seeds (also in notes)
    # metric -> smallest true difference detectable with power POWER: at alpha, and at alpha / m (Holm's first step)
    detectable: dict[str, tuple[float, float]] = field(default_factory=dict)
    tuned: dict[str, int] = field(default_factory=dict)  # tuned row label -> trials its configuration came from
    show_std: bool = False  # LaTeX cells carry ± the sample std over seeds (Markdown always does)

    def name(self, row: RowKey) -> str:
        """A row's label (method, variant, audit mark) with the suite's name for the method, if it gives one."""
        return self.names.get(row.method, row.method) + row.label[len(row.method):]

    @property
    def rows(self) -> list[RowKey]:
        return self.baselines + ([self.reference] if self.reference else []) + self.extras

    def seeds(self) -> list[int]:
        return sorted({c.n_seeds for c in self.cells.values()})

    def caption(self, std: bool | None = None) -> str:
        """The whole caption: the short sentence, then the details (what the Markdown table and the article print)."""
        return f"{self.short_caption()} {self.caption_details(std)}"

    def _where(self) -> str:
        prof = profile(self.protocol)
        if self.subset == MULTI:
            return f"per {prof.subset_noun} ({', '.join(dict.fromkeys(c.subset for c in self.columns))})"
        return f"on {SUBSET_WORDS.get(self.subset, f'{self.subset} {prof.subset_noun}')}"

    def _ranking(self) -> str:
        """How the positive was ranked, for the caption of a sampled protocol's table."""
        if profile(self.protocol).rankings == ("sampled",):
            return ""
        return ", full-catalogue ranking" if self.split != part_of(self.split) else ", sampled negatives"

    def short_caption(self) -> str:
        """One sentence for ``\\caption`` (ACM and IEEE put it above the table; details go in a note below)."""
        what = (f"{part_of(self.split).capitalize()} results {self._where()} ({self.protocol} protocol, {self.budget} "
                f"budget{self._ranking()})")
        return f"{self.title} ({what[0].lower() + what[1:]})." if self.title else f"{what}."

    def caption_details(self, std: bool | None = None) -> str:
        """Everything after the first sentence; ``std``: the cells show ± std (default: ``show_std``)."""
        seeds = "/".join(map(str, self.seeds()))
        spread = " (± sample std over seeds)" if (self.show_std if std is None else std) else ""
        def dataset(c: Column) -> str:  # a multi-subset column's label ends with its subset
            return c.label[:-len(c.subset) - 1] if self.subset == MULTI else c.label

        events = ", ".join(f"{dataset(c)}: {c.n_events}" for c in self._groups())
        prof = profile(self.protocol)
        text = (f"Mean over {seeds} seeds{spread}. {prof.unit.capitalize()} per dataset: {events}. "
                f"Bold: best; underlined: second best (by the displayed rounding).")
        if self.reference is not None:
            n = sum(c.testable for c in self.comparisons)
            text += (f" {self._test_sentence(prof.unit)}, Holm-Bonferroni corrected across {n} comparisons, "
                     f"alpha = {self.alpha}. "
                     f"$\\dagger$: {self.name(self.reference)} significantly better than every baseline; "
                     f"$\\ddagger$: baseline significantly better than {self.name(self.reference)}. "
                     f"Improv.: {self.name(self.reference)} against the best baseline.")
            if self.detectable:
                text += (f" Smallest difference these {prof.unit} and seeds detect with power {POWER:g} (median over "
                         f"comparisons; at alpha, and at alpha/{n}): "
                         + ", ".join(f"{metric_title(m)} {lo:.{self.digits}f}/{hi:.{self.digits}f}"
                                     for m, (lo, hi) in self.detectable.items()) + ".")
        if self.tuned:
            text += (" Rows marked tuned use the best validation configuration of a TPE study (seed 1000, test "
                     "events never read): " + "; ".join(f"{r} {n} trials" for r, n in sorted(self.tuned.items())) + ".")
        if self.extras:
            text += (" Rows below the last rule (reference points, variants of the reference, audits) are neither "
                     "ranked nor tested.")
        if self.origins:
            text += " Methods from plugins: " + "; ".join(f"{self.names.get(m, m)} ({o})"
                                                          for m, o in sorted(self.origins.items())) + "."
        if any(UNVERIFIED in c.label for c in self.columns):
            text += (f" Datasets marked {UNVERIFIED} were read from files that failed checksum verification "
                     f"(a partial or modified copy, run with --allow-unverified).")
        if any(r.audit for r in self.extras):
            text += " AUDIT rows reproduce the released PROMO code's label leak and are not valid results."
        if self.incomplete:  # in the caption too: a LaTeX table must not hide a failed or missing row
            text += " Incomplete rows: " + "; ".join(self.incomplete) + "."
        return text

    def _test_sentence(self, unit: str) -> str:
        """Which test decided the marks, and which variance it carries: the caption must say."""
        if self.test in EVENT_TESTS:
            return (f"{TEST_NAMES[self.test].capitalize()} over {unit} (per-{unit[:-1]} values averaged over seeds; "
                    f"seed-to-seed variance is not in the test)")
        if self.test == "seeds":
            return (f"{TEST_NAMES['seeds'].capitalize()} (seed s of the reference against seed s of the baseline, on "
                    f"their means over {unit})")
        return (f"{TEST_NAMES['bootstrap'].capitalize()} (seeds of each method, then {unit}, resampled with "
                f"replacement; {BOOTSTRAP_RESAMPLES:,} resamples)")

    def _groups(self) -> list[Column]:
        seen, out = set(), []
        for c in self.columns:
            if c.group not in seen:
                seen.add(c.group)
                out.append(c)
        return out


MULTI = "stages"  # Table.subset of a table whose columns span several subsets
# What a sampled protocol's subset counts, said in every caption (two counts exist; docs/protocols.md)
SUBSET_WORDS = {
    "cold-model": "targets cold for the model (fewer than tau positives in the training rows)",
    "warm-model": "targets warm for the model (at least tau positives in the training rows)",
    "cold-event": "targets cold at the event (fewer than tau training positives before the event)",
    "warm-event": "targets warm at the event (at least tau training positives before the event)",
}


def chosen_rows(keys: list[RowKey], methods: list[str] | None, plain_only: bool, tuned: bool) -> list[RowKey]:
    """The rows a table (or a curve) shows: with ``plain_only`` each method's default options only (no variants,
    no audit rows), and with ``tuned`` a method's tuned row (``run --tuned``) standing in for its default one."""
    chosen = [k for k in keys if (methods is None or k.method in methods)
              and not (plain_only and (k.variant or k.audit) and not (tuned and is_tuned(k)))]
    if tuned:
        have = {k.method for k in chosen if is_tuned(k)}
        chosen = [k for k in chosen if is_tuned(k) or k.method not in have]
    return chosen


def rank_agreement(sampled: "Table", full: "Table") -> list[str]:
    """Notes for a sampled table and its full-catalogue twin: per metric, Kendall's tau-b between the two orders of
    the rows both rank (reference, baselines and reference points; audit rows left out), and the pairs whose order
    flips (one ahead under one ranking, behind under the other; a tie on either side is no flip)."""
    from scipy.stats import kendalltau

    notes = []
    rows = [r for r in sampled.rows if not r.audit and r in full.rows]
    for col, c in enumerate(sampled.columns):
        fcol = next((j for j, f in enumerate(full.columns) if (f.group, f.metric) == (c.group, c.metric)), None)
        have = [r for r in rows if (r, col) in sampled.cells and fcol is not None and (r, fcol) in full.cells]
        if len(have) < 2:
            continue
        a = np.array([sampled.cells[(r, col)].mean for r in have])
        b = np.array([full.cells[(r, fcol)].mean for r in have])
        tau = kendalltau(a, b).statistic
        flips = [f"{sampled.name(have[x])}/{sampled.name(have[y])}" for x in range(len(have))
                 for y in range(x + 1, len(have)) if (a[x] - a[y]) * (b[x] - b[y]) < 0]
        where = f"{c.label} " if len({f.group for f in sampled.columns}) > 1 else ""
        tau_text = "undefined (a constant column)" if np.isnan(tau) else f"{tau:.2f}"
        notes.append(f"{where}{metric_title(c.metric)}: rank agreement of the {len(have)} rows between sampled and "
                     f"full-catalogue ranking, Kendall's tau-b {tau_text}; "
                     + (f"order flips: {', '.join(flips)}" if flips else "no pair flips"))
    return notes


def _order(key: RowKey, order: tuple[str, ...] = METHOD_ORDER) -> tuple:
    known = order.index(key.method) if key.method in order else len(order)
    return (known, key.method, key.variant, key.audit)


def build_table(rows: dict[RowKey, RowEvents], cache: EventCache, *, split: str, subset: str | list[str],
                metrics: list[str],
                reference: str | None, methods: list[str] | None = None, test: str = "t", alpha: float = 0.05,
                digits: int = 4, order: list[str] | None = None, names: dict[str, str] | None = None,
                plain_only: bool = False, title: str = "", below_rule: list[str] | None = None,
                tuned: bool = False) -> Table:
    """One table; with a list of subsets (the warm-up stages) its columns are (dataset, subset, metric) and the
    Holm correction runs across every column, so the marks hold for the table as a whole.

    With ``plain_only`` and ``tuned`` a method's tuned row (``run --tuned``) stands in for its default one where it
    has one. A suite's table passes its row ``order`` and display ``names``, ``plain_only`` to keep each method's
    default options only (no variants, no audit rows), and ``below_rule``: reference points (random, popular)
    shown under the rule with the variants, never ranked or tested."""
    subsets = [subset] if isinstance(subset, str) else list(subset)
    chosen = chosen_rows(list(rows), methods, plain_only, tuned)
    keys = [k for k in chosen if rows[k].seeds]  # a row whose every trial failed has no cells, only a note
    if not keys:
        raise BenchError("no stored trials match the chosen methods")
    protocol, budget = keys[0].protocol, keys[0].budget
    groups = sorted({(k.dataset, k.split_hash) for k in keys})
    counts: dict[str, int] = {}
    for d, _ in groups:
        counts[d] = counts.get(d, 0) + 1
    label = {g: g[0] if counts[g[0]] == 1 else f"{g[0]} ({g[1][:8]})" for g in groups}

    ref_key = None
    if reference:  # the reference's default row, or in a tuned table the tuned row that stands in for it
        cands = [k for k in keys if k.method == reference and not k.audit and (not k.variant or (tuned and is_tuned(k)))]
        ref_key = cands[0] if cands else None
    # a row is (method, variant, audit); its cells may come from several datasets
    rank = tuple(order) if order else METHOD_ORDER
    row_ids = sorted({(k.method, k.variant, k.audit) for k in keys},
                     key=lambda t: _order(RowKey("", "", "", "", *t), rank))

    def row_key(t: tuple) -> RowKey:
        return RowKey("*", protocol, "*", budget, *t)

    ref_row = row_key((reference, ref_key.variant, False)) if ref_key is not None else None
    baselines, extras = [], []
    for t in row_ids:
        rk = row_key(t)
        if rk == ref_row:
            continue
        (extras if (t[2] or (reference and t[0] == reference) or t[0] in (below_rule or ())) else baselines).append(rk)

    columns: list[Column] = []
    cells: dict[tuple[RowKey, int], Cell] = {}
    per_event: dict[tuple[RowKey, int], tuple[np.ndarray, list[int]]] = {}  # (seeds x events, the seeds)
    for g, sub in [(g, s) for g in groups for s in subsets]:
        in_group = {(k.method, k.variant, k.audit): rows[k] for k in keys if (k.dataset, k.split_hash) == g}
        events = None
        for t, row in in_group.items():
            ev = cache.events(row, split, sub)
            if events is None:
                events, first = ev, t
            elif not (np.array_equal(ev[0], events[0]) and np.array_equal(ev[1], events[1])):
                raise BenchError(f"{g[0]}: {row_key(t).label} and {row_key(first).label} were evaluated on "
                                 f"different events; the report compares methods only on identical events")
        for metric in metrics:
            col = len(columns)
            columns.append(Column(g, label[g] + (f" {sub}" if len(subsets) > 1 else ""), metric,
                                  len(events[0]) if events is not None else 0, sub))
            for t, row in in_group.items():
                vals = cache.per_seed(row, split, sub, metric)
                # a subset with no events (a tiny log) shows an empty cell, never a warning
                seed_means = vals.mean(axis=1) if vals.shape[1] else np.full(len(vals), np.nan)
                cells[(row_key(t), col)] = Cell(float(seed_means.mean()),
                                                float(seed_means.std(ddof=1)) if len(seed_means) > 1 else None,
                                                len(seed_means))
                per_event[(row_key(t), col)] = (vals, row.seeds)

    comparisons: list[Comparison] = []
    by_col: dict[int, list[Comparison]] = {}
    if ref_row is not None:
        for col, c in enumerate(columns):
            if (ref_row, col) not in per_event or c.n_events == 0:  # nothing to compare on an empty subset
                continue
            for b in baselines:
                if (b, col) in per_event:
                    (va, sa), (vb, sb) = per_event[(ref_row, col)], per_event[(b, col)]
                    cmp = compare(ref_row.label, b.label, c.metric, va, vb, test, alpha,
                                  c.metric not in LOWER_IS_BETTER, seeds_a=sa, seeds_b=sb)
                    comparisons.append(cmp)
                    by_col.setdefault(col, []).append(cmp)
        apply_holm(comparisons, alpha)

    notes = [f"{c.a} vs {c.b} on {c.metric}: identical on every one of the {c.n_events} events; not tested"
             if c.identical else f"{c.a} vs {c.b} on {c.metric}: {c.reason}; not marked" if c.reason else
             f"{c.a} vs {c.b} on {c.metric}: the test cannot reach alpha={alpha} with {c.n_events} events "
             f"(smallest possible p = {c.min_p:.3g}); not marked" for c in comparisons if not c.testable]
    incomplete = completeness_notes([rows[k] for k in chosen])
    notes += incomplete + provenance_notes([rows[k] for k in keys]) + capacity_note([rows[k] for k in keys])
    improvement: list[float | None] = []
    for col, c in enumerate(columns):
        higher = c.metric not in LOWER_IS_BETTER
        ranked = [r for r in baselines + ([ref_row] if ref_row else []) if (r, col) in cells]
        shown = {r: round(cells[(r, col)].mean, digits) for r in ranked}
        distinct = sorted(set(shown.values()), reverse=higher)
        for r in ranked:
            cells[(r, col)].bold = bool(distinct) and shown[r] == distinct[0]
            cells[(r, col)].underline = len(distinct) > 1 and shown[r] == distinct[1]
        imp = None
        if ref_row is not None and (ref_row, col) in cells:
            base = [cells[(b, col)].mean for b in baselines if (b, col) in cells]
            if base:
                best = max(base) if higher else min(base)
                ref_mean = cells[(ref_row, col)].mean
                if best != 0:
                    imp = 100.0 * (ref_mean - best) / abs(best) * (1 if higher else -1)
            cmps = by_col.get(col, [])
            ref_better = [(cm.diff > 0) == higher and cm.diff != 0 for cm in cmps]
            cells[(ref_row, col)].dagger = bool(cmps) and all(cm.significant for cm in cmps) and all(ref_better)
            for b, cm in zip([b for b in baselines if (b, col) in per_event], cmps):
                cells[(b, col)].ddagger = cm.significant and (cm.diff < 0) == higher and cm.diff != 0
        improvement.append(imp)
    tuned = {RowKey("*", protocol, "*", budget, k.method, k.variant, k.audit).label:
             int(rows[k].tuning.get("n_trials", rows[k].tuning.get("n_complete", 0))) for k in keys if rows[k].tuning}
    return Table(protocol, budget, split, subset if len(subsets) == 1 else MULTI, columns, baselines, ref_row, extras, cells, improvement,
                 comparisons, test, alpha, digits, notes, dict(names or {}), title,
                 {k.method: rows[k].origin for k in keys  # built-ins' origin is "promo-bench <version>"
                  if rows[k].origin and rows[k].origin.split()[0] != OWN_DIST}, incomplete,
                 detectable(comparisons, metrics, alpha), tuned)


def detectable(comparisons: list[Comparison], metrics: list[str], alpha: float) -> dict[str, tuple[float, float]]:
    """Per metric, the minimum detectable effect of the median comparison's standard error, at ``alpha`` and at
    alpha / m, the level Holm's first step needs: a table whose differences lie below it could not have shown them."""
    testable = [c for c in comparisons if c.testable and c.se is not None]
    out = {}
    for metric in metrics:
        mine = [c for c in testable if c.metric == metric]
        if not mine:
            continue
        se = float(np.median([c.se for c in mine]))
        df = None if any(c.df is None for c in mine) else float(np.median([c.df for c in mine]))
        out[metric] = (minimum_detectable_effect(se, df, alpha), minimum_detectable_effect(se, df, alpha / len(testable)))
    return out


def is_tuned(key: RowKey) -> bool:
    """A row of ``run --tuned`` (its variant names the chosen configuration), which a tuned table shows."""
    return key.variant.startswith("tuned=") and not key.audit


def fmt(value: float, digits: int) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
