"""LaTeX rendering of a TableModel: booktabs, no vertical rules, bold best, underlined second best.

What a paper ``\\input``s is a float (``table`` for one column, ``table*`` for two) with its short caption above
(ACM and IEEE both want it there), a stable ``\\label``, the details in a footnote-size note below, and a width that
fits the column: ``\\small`` with tighter column gaps, shrunk to ``\\linewidth`` only when still too wide
(``fit="shrink"``, measured by TeX itself), always scaled to the width (``"resize"``), or left alone (``"none"``).
It needs ``booktabs`` and, for shrinking, ``graphicx`` (acmart loads it; add it for IEEEtran).
"""

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
    spread = ""
    if table.show_std and cell.std is not None:  # compact: 0.4123{\pm}.0121
        spread = r"\,{\scriptsize$\pm$" + fmt(cell.std, table.digits).removeprefix("0") + "}"
    return text + mark + spread


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


FITS = ("shrink", "resize", "none")


def fragment(table: Table, label: str, star: bool = False, fit: str = "shrink") -> str:
    """The float a paper inputs: caption above, label, the table fitted to the column, the details below."""
    if fit not in FITS:
        raise ValueError(f"fit {fit!r}: expected one of {', '.join(FITS)}")
    env = "table*" if star else "table"
    body = tabular(table).rstrip("\n")
    if fit == "shrink":  # TeX measures the tabular and scales it down only if it overflows the column
        body = ("\\setbox0=\\hbox{%\n" + body + "}%\n"
                "\\ifdim\\wd0>\\linewidth\\resizebox{\\linewidth}{!}{\\box0}\\else\\box0\\fi")
    elif fit == "resize":
        body = "\\resizebox{\\linewidth}{!}{%\n" + body + "}"
    # the caption's details (seeds, test, marks, incomplete rows) go under the table; the table's longer notes
    # (sizes and schedules, method remarks: some 15 lines at column width) would double the float: notes_paragraph()
    details = escape_caption(table.caption_details())
    if table.notes:
        details += " Notes on the rows follow in the text."
    return "\n".join([
        f"% promo-bench {env}: \\input it where the table goes; needs \\usepackage{{booktabs}}"
        + (" and graphicx" if fit != "none" else ""),
        rf"\begin{{{env}}}[t]", r"\centering", rf"\caption{{{escape_caption(table.short_caption())}}}",
        rf"\label{{{label}}}", r"\small", r"\setlength{\tabcolsep}{4pt}", body, r"\par\smallskip",
        r"\begin{minipage}{\linewidth}\footnotesize\raggedright", details, r"\end{minipage}", rf"\end{{{env}}}", ""])


def notes_paragraph(table: Table, label: str) -> str:
    """The table's notes as a footnote-size paragraph for the text (``STEM-notes.tex``), naming the table."""
    if not table.notes:
        return ""
    items = "".join(f"\\item {escape_caption(n.rstrip('.'))}.\n" for n in table.notes)
    # sloppy: a note's file paths and long names must break rather than run into the margin
    return ("{\\footnotesize\\sloppy\\noindent Notes on Table~\\ref{" + label + "}:\n\\begin{itemize}\n" + items
            + "\\end{itemize}}\n")


def document(table: Table, label: str = "tab:table") -> str:
    """A compilable article around the one-column fragment: Latin Modern in T1, so the PDF embeds Type 1 fonts
    (the default Computer Modern in T1 falls back to bitmap Type 3 fonts)."""
    return "\n".join([
        r"\documentclass{article}", r"\usepackage[T1]{fontenc}", r"\usepackage{lmodern}", r"\usepackage{booktabs}",
        r"\usepackage{graphicx}", r"\usepackage[margin=1.5cm,landscape]{geometry}", r"\pagestyle{empty}",
        r"\begin{document}", fragment(table, label).rstrip("\n"), notes_paragraph(table, label), r"\end{document}",
        ""])


def escape_caption(text: str) -> str:
    """The caption carries its own math ($\\dagger$); escape only what would break it."""
    return text.replace("%", r"\%").replace("_", r"\_").replace("&", r"\&").replace("#", r"\#")
