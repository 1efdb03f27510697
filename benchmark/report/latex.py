"""LaTeX rendering of a TableModel: booktabs, no vertical rules, bold best, underlined second best."""

from __future__ import annotations

from benchmark.report.table import Table, fmt, metric_title

_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
PHANTOM = r"\hphantom{$^{\dagger}$}"


def escape(text: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def _cell(table: Table, row, col: int) -> str:
    cell = table.cells.get((row, col))
    if cell is None:
        return "--" + PHANTOM
    text = fmt(cell.mean, table.digits)
    if cell.bold:
        text = rf"\textbf{{{text}}}"
    if cell.underline:
        text = rf"\underline{{{text}}}"
    mark = r"$^{\dagger}$" if cell.dagger else r"$^{\ddagger}$" if cell.ddagger else PHANTOM
    return text + mark


def tabular(table: Table) -> str:
    cols = table.columns
    groups: list[tuple[str, int, int]] = []  # label, first column, span
    for k, c in enumerate(cols):
        if groups and groups[-1][0] == c.label and groups[-1][1] + groups[-1][2] == k + 1:
            groups[-1] = (c.label, groups[-1][1], groups[-1][2] + 1)
        else:
            groups.append((c.label, k + 1, 1))
    spec = "l" + "".join(" " + "c" * span for _, _, span in groups)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join([""] + [rf"\multicolumn{{{span}}}{{c}}{{{escape(lbl)}}}" for lbl, _, span in groups])
                 + r" \\")
    lines.append(" ".join(rf"\cmidrule(lr){{{first + 1}-{first + span}}}" for _, first, span in groups))
    lines.append(" & ".join(["Method"] + [metric_title(c.metric) for c in cols]) + r" \\")
    lines.append(r"\midrule")
    for row in table.baselines:
        lines.append(" & ".join([escape(table.name(row))] + [_cell(table, row, k) for k in range(len(cols))]) + r" \\")
    if table.reference is not None:
        lines.append(r"\midrule")
        ref = table.reference
        lines.append(" & ".join([escape(table.name(ref))] + [_cell(table, ref, k) for k in range(len(cols))]) + r" \\")
        lines.append(r"\midrule")
        imps = [("--" if v is None else f"{v:+.1f}".replace("-", "$-$") + r"\%") + PHANTOM for v in table.improvement]
        lines.append(" & ".join(["Improv."] + imps) + r" \\")
    if table.extras:
        lines.append(r"\midrule")
        for row in table.extras:
            lines.append(" & ".join([escape(table.name(row))] + [_cell(table, row, k) for k in range(len(cols))]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def document(table: Table) -> str:
    """A compilable article (texlive-latex-recommended has booktabs but not the standalone class)."""
    return "\n".join([
        r"\documentclass{article}", r"\usepackage[T1]{fontenc}", r"\usepackage{booktabs}",
        r"\usepackage[margin=1.5cm,landscape]{geometry}", r"\pagestyle{empty}", r"\begin{document}",
        r"\begin{table}[t]", r"\centering", r"\small", tabular(table).rstrip("\n"),
        rf"\caption{{{escape_caption(table.caption())}}}", r"\end{table}", r"\end{document}", ""])


def escape_caption(text: str) -> str:
    """The caption carries its own math ($\\dagger$); escape only what would break it."""
    return text.replace("%", r"\%").replace("_", r"\_").replace("&", r"\&").replace("#", r"\#")
