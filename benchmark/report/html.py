"""The results page: one self-contained HTML file (inline CSS, JS and images; nothing fetched at view time).

Every table of the report, sortable by a click on a column head, with its significance marks and caption; the
figures with their captions; the failed and missing trials; and for every number its provenance (split hash, seeds,
commit and dirty flag, data verification status) on hover and in a details row under each table. No web server:
open the file. The sorting code is a few lines of plain JavaScript, so the page has no dependency to go stale.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from benchmark.report.events import RowEvents
from benchmark.report.table import Table, fmt, metric_title

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0}th,td{padding:.2em .55em;text-align:right;white-space:nowrap}
th{border-bottom:1px solid #444;cursor:pointer;user-select:none}th:first-child,td:first-child{text-align:left}
th.sorted-asc::after{content:' \\25B2'}th.sorted-desc::after{content:' \\25BC'}
tbody.static td{color:#555}tbody.static tr:first-child td{border-top:1px solid #999}
td.best{font-weight:bold}td.second{text-decoration:underline}tr.reference td{background:#f3f7fb}
p.caption,figcaption{color:#444;font-size:.92em;max-width:60em}details{margin:.3em 0 1.2em;font-size:.9em}
figure{display:inline-block;margin:1em 1.5em 1em 0;vertical-align:top;max-width:32em}figure img{max-width:100%}
.failed td{color:#a00}div.scroll{overflow-x:auto}code{font-size:.92em}
"""

# sort a table body by a column: numbers by their data-v value, text otherwise; a second click reverses
JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('thead th').forEach(function(th,col){
    th.addEventListener('click',function(){
      var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      var desc=!th.classList.contains('sorted-desc');
      t.querySelectorAll('thead th').forEach(function(h){h.classList.remove('sorted-asc','sorted-desc')});
      th.classList.add(desc?'sorted-desc':'sorted-asc');
      rows.sort(function(a,b){
        var x=a.cells[col],y=b.cells[col];var u=parseFloat(x.dataset.v),v=parseFloat(y.dataset.v);
        var r=(isNaN(u)||isNaN(v))?x.textContent.localeCompare(y.textContent):u-v;return desc?-r:r});
      rows.forEach(function(r){body.appendChild(r)});
    });
  });
});
"""


@dataclass
class PageTable:
    table: Table
    rows: dict  # RowKey (one dataset and split) -> RowEvents: the trials behind each cell
    anchor: str

    def trials(self, row, k: int) -> RowEvents | None:
        """The trials behind cell (row, column k): the row's method, variant and audit on the column's split."""
        group = self.table.columns[k].group
        for key, r in self.rows.items():
            if ((key.dataset, key.split_hash) == group and (key.method, key.variant, key.audit)
                    == (row.method, row.variant, row.audit)):
                return r
        return None


def provenance(row: RowEvents | None) -> str:
    if row is None:
        return "no stored trials"
    commits = ", ".join(sorted(f"{(c or 'unknown')[:10]}{' (dirty)' if d else ''}" for c, d in row.commits))
    data = ", ".join(sorted(row.data_status)) or "not recorded"
    return (f"split {row.key.split_hash[:12]}; seeds {', '.join(map(str, row.seeds)) or 'none'}; commit {commits}; "
            f"data {data}" + (f"; {row.origin}" if row.origin else ""))


def _cell(pt: PageTable, row, k: int) -> str:
    t = pt.table
    cell = t.cells.get((row, k))
    tip = provenance(pt.trials(row, k))
    if cell is None:
        return f'<td data-v="" title="{html.escape(tip)}">–</td>'
    cls = " ".join(c for c, on in (("best", cell.bold), ("second", cell.underline)) if on)
    text = fmt(cell.mean, t.digits) + ("" if cell.std is None else f" ± {fmt(cell.std, t.digits)}")
    mark = "†" if cell.dagger else "‡" if cell.ddagger else ""
    tip = f"mean over {cell.n_seeds} seeds" + ("" if cell.std is None else " ± sample std") + "; " + tip
    return (f'<td class="{cls}" data-v="{cell.mean:.6f}" title="{html.escape(tip)}">{html.escape(text)}{mark}</td>')


def _table(pt: PageTable) -> str:
    t = pt.table
    head = "".join(f"<th>{html.escape(c.label)} {html.escape(metric_title(c.metric))}</th>" for c in t.columns)
    body, static = [], []
    for row in t.baselines + ([t.reference] if t.reference else []):
        cls = ' class="reference"' if row == t.reference else ""
        body.append(f"<tr{cls}><td data-v=\"\">{html.escape(t.name(row))}</td>"
                    + "".join(_cell(pt, row, k) for k in range(len(t.columns))) + "</tr>")
    if t.reference is not None:
        static.append("<tr><td>Improv.</td>" + "".join(
            f"<td>{'–' if v is None else f'{v:+.1f}%'}</td>" for v in t.improvement) + "</tr>")
    for row in t.extras:
        static.append(f"<tr><td>{html.escape(t.name(row))}</td>"
                      + "".join(_cell(pt, row, k) for k in range(len(t.columns))) + "</tr>")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in t.notes)
    prov = "".join(f"<li><code>{html.escape(key.dataset)} / {html.escape(key.label)}</code>: "
                   f"{html.escape(provenance(r))}</li>" for key, r in sorted(pt.rows.items()))
    caption = t.caption_details(std=True).replace("$\\dagger$", "†").replace("$\\ddagger$", "‡")
    return (f'<h2 id="{pt.anchor}">{html.escape(t.short_caption())}</h2><div class="scroll">'
            f'<table class="sortable"><thead><tr><th>Method</th>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
            + (f'<tbody class="static">{"".join(static)}</tbody>' if static else "") + "</table></div>"
            f'<p class="caption">{html.escape(caption)}</p>'
            + (f"<ul>{notes}</ul>" if notes else "")
            + f"<details><summary>Provenance of every row</summary><ul>{prov}</ul></details>")


def _figure(png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    cap = png.with_suffix(".txt")
    text = cap.read_text().strip() if cap.is_file() else png.stem
    return (f'<figure><img alt="{html.escape(png.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(text)}</figcaption></figure>")


def page(tables: list[PageTable], figures: list[Path], failed: list[dict], results: str) -> str:
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    toc = "".join(f'<li><a href="#{pt.anchor}">{html.escape(pt.table.short_caption())}</a></li>' for pt in tables)
    fails = "".join(f'<tr class="failed"><td>{html.escape(str(f.get("method")))}</td><td>{f.get("seed")}</td>'
                    f'<td style="text-align:left">{html.escape(str(f.get("error", ""))[:300])}</td></tr>'
                    for f in failed)
    fail_html = (f'<table><thead><tr><th>method</th><th>seed</th><th>error</th></tr></thead><tbody>{fails}</tbody>'
                 f"</table>" if failed else "<p>None: every stored trial finished.</p>")
    figs = "".join(_figure(p) for p in figures)
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>promo-bench results</title><style>{CSS}</style></head><body>"
            f"<h1>promo-bench results</h1><p>From <code>{html.escape(results)}</code>, written {when}. Click a "
            f"column head to sort; hover a number for its provenance.</p><ul>{toc}</ul>"
            + "".join(_table(pt) for pt in tables)
            + "<h2 id=\"failed\">Failed trials</h2>" + fail_html
            + ("<h2 id=\"figures\">Figures</h2>" + figs if figs else "")
            + f"<script>{JS}</script></body></html>\n")
