"""The hostile-user drill (issue 17): bad inputs through the real CLI, each classified.

    python perf/drill.py            # a few minutes on 2 CPU cores; prints one line per case and the counts

Every case runs ``benchmark.cli.main`` in this process on a synthetic ML-100K-format folder (no real data
needed) and is classified by what a user would see:

- ``clear``: exit status 2 (or the expected 1 for a failed trial) and a one-line ``promo-bench: error:`` /
  ``FAILED`` message that contains the expected words;
- ``traceback``: an exception escaped ``main`` (a Python traceback in the terminal);
- ``silent``: the command succeeded (or failed) without saying what the case expects.

It exits non-zero unless every case is ``clear``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from conftest import write_grouplens  # noqa: E402  (the tests' synthetic GroupLens writer)

from benchmark.cli import main  # noqa: E402


@dataclass
class Case:
    name: str
    args: Callable[["Drill"], list[str]]
    expect: str  # words the message must contain
    status: int = 2  # 2: refused before any trial; 1: a failed trial, the run went on; 0: ran, said so
    setup: Callable[["Drill"], None] | None = None


class Drill:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.clean = write_grouplens(root / "clean" / "ml-100k")
        self.data = self.clean
        self.results = root / "results"
        self.n = 0

    def fresh(self, edit: Callable[[list[str]], None] | None = None, file: str = "u.data") -> Path:
        """A copy of the clean folder with one file's lines edited."""
        self.n += 1
        folder = self.root / f"data{self.n}" / "ml-100k"
        shutil.copytree(self.clean, folder)
        if edit is not None:
            path = folder / file
            lines = path.read_text(encoding="latin-1").splitlines()
            edit(lines)
            path.write_text("".join(f"{x}\n" for x in lines), encoding="latin-1")
        self.data = folder
        return folder

    def run(self, *extra: str, method: str = "random", protocol: str = "loo") -> list[str]:
        return ["run", "--method", method, "--protocol", protocol, "--dataset", "ml-100k", "--data-dir",
                str(self.data), "--allow-unverified", "--seeds", "1", "--results", str(self.results),
                "--no-progress", *extra]

    def report(self, *extra: str) -> list[str]:
        return ["report", "--results", str(self.results), "--out", str(self.root / "rep"), *extra]


def _set(lines: list[str], k: int, text: str) -> None:
    lines[k] = text


PLUGIN = '''
import sys
import numpy as np
import torch
from benchmark.method import Method

class _B(Method):
    protocols = frozenset({"loo", "cold"})
    def fit(self, data):
        return {}
    def score(self, batch):
        return torch.rand(batch["cand"].shape, generator=self.ctx.generator)
    def score_all(self, batch):
        return torch.rand((len(batch["user"]), self.ctx.n_items), generator=self.ctx.generator)

class NumpyInfo(_B):
    name = "numpy-info"
    def fit(self, data):
        return {"loss": np.float32(0.5), "t": torch.tensor(1.0), "curve": np.arange(3)}

class NanLoss(_B):
    name = "nan-loss"
    def fit(self, data):
        return {"train_loss": [0.7, float("nan")]}

class Exits(_B):
    name = "exits"
    def fit(self, data):
        sys.exit(3)

class Inf(_B):
    name = "inf-scores"
    def score(self, batch):
        return torch.full(batch["cand"].shape, float("inf"))
    def score_all(self, batch):
        return torch.full((len(batch["user"]), self.ctx.n_items), float("inf"))
'''


def cases(d: Drill) -> list[Case]:
    plugin = d.root / "drill_plugins.py"
    plugin.write_text(PLUGIN)
    inc = ["--include", str(plugin)]
    out: list[Case] = []

    def data_case(name: str, edit, expect: str, file: str = "u.data") -> None:
        out.append(Case(name, lambda d, e=edit, f=file: (d.fresh(e, f), d.run())[1], expect))

    # ---- data
    data_case("empty u.data", lambda ls: ls.clear(), "file is empty")
    data_case("u.data: only blank lines", lambda ls: ls.__setitem__(slice(None), ["", ""]), "u.data")
    data_case("every row duplicated", lambda ls: ls.extend(list(ls)), "repeats line 1")
    data_case("rating 99", lambda ls: _set(ls, 3, "1\t2\t99\t880000000"), "line 4, field 'rating'")
    data_case("rating -3", lambda ls: _set(ls, 3, "1\t2\t-3\t880000000"), "line 4, field 'rating'")
    data_case("rating not a number", lambda ls: _set(ls, 3, "1\t2\tthree\t880000000"), "line 4, field 'rating'")
    data_case("last line cut in its timestamp", lambda ls: _set(ls, -1, ls[-1][: ls[-1].rindex("\t") + 3]),
              "field 'timestamp'")
    data_case("5th field on line 1", lambda ls: _set(ls, 0, ls[0] + "\t7"), "line 1: 5 fields")
    data_case("too few fields on line 3", lambda ls: _set(ls, 2, "1\t2\t3"), "line 3: too few fields")
    data_case("genre flag 2", lambda ls: _set(ls, 2, ls[2][:-1] + "2"), "genre flag", "u.item")
    data_case("unknown occupation", lambda ls: _set(ls, 1, "2|30|F|astronaut|10002"), "occupation", "u.user")
    data_case("fractional timestamp", lambda ls: _set(ls, 3, "1\t2\t3\t880000000.5"), "expected an integer")
    out.append(Case("u.item missing", lambda d: (d.fresh(), (d.data / "u.item").unlink(), d.run())[2], "u.item"))
    out.append(Case("--data-dir does not exist", lambda d: ["run", "--method", "random", "--dataset", "ml-100k",
                                                           "--data-dir", str(d.root / "nope")], "nope"))
    out.append(Case("--data-dir is a file", lambda d: ["run", "--method", "random", "--dataset", "ml-100k",
                                                      "--data-dir", str(d.clean / "u.data")], "u.data"))

    # ---- method and protocol options (the clean data from here on)
    def opt(name: str, extra: list[str], expect: str, method: str = "dssm", protocol: str = "loo") -> None:
        out.append(Case(name, lambda d, x=extra, m=method, p=protocol: (setattr(d, "data", d.clean),
                                                                        d.run(*x, method=m, protocol=p))[1], expect))

    opt("lr=nan", ["--set", "dssm.lr=nan"], "expected a finite number")
    opt("lr=inf", ["--set", "dssm.lr=inf"], "expected a finite number")
    opt("lr<0", ["--set", "dssm.lr=-0.1"], "dssm.lr=-0.1")
    opt("epochs=0", ["--set", "dssm.epochs=0"], "dssm.epochs=0")
    opt("epochs=-5", ["--set", "dssm.epochs=-5"], "dssm.epochs=-5")
    opt("batch_size=0", ["--set", "dssm.batch_size=0"], "dssm.batch_size=0")
    opt("dim=-1", ["--set", "dssm.dim=-1"], "dssm.dim=-1")
    opt("epochs=many", ["--set", "dssm.epochs=many"], "expected an integer")
    opt("audit_leak=maybe", ["--set", "sasrec.audit_leak=maybe"], "expected true or false", "sasrec")
    opt("unknown option", ["--set", "dssm.lrr=1"], "unknown option")
    opt("--set without =", ["--set", "dssm.lr"], "expected METHOD.KEY=VALUE")
    opt("--set for a method not in the run", ["--set", "bpr-mf.lr=0.1"], "not part of this run")
    opt("warm_lr=inf", ["--protocol-set", "warmup.warm_lr=inf"], "warm_lr", "random", "warmup")
    opt("split_seed=-1", ["--protocol-set", "loo.split_seed=-1"], "split_seed", "random")
    opt("tau=0", ["--protocol-set", "loo.tau=0"], "tau", "random")
    opt("candidates=bogus", ["--protocol-set", "loo.candidates=bogus"], "candidates", "random")
    opt("cold_share=1.5", ["--protocol-set", "cold.cold_share=1.5"], "cold_share", "random", "cold")
    opt("unknown protocol parameter", ["--protocol-set", "loo.bogus=1"], "unknown parameter", "random")
    opt("unknown protocol", [], "unknown protocol", "random", "nosuch")
    opt("unknown method", [], "unknown method", "dsm")
    opt("--budget bogus", ["--budget", "bogus"], "--budget")
    opt("--seeds 0", ["--seeds", "0"], "--seeds 0")
    opt("--device bogus", ["--device", "tpu"], "--device")
    out.append(Case("n_negatives=100000 (bounded, said)", lambda d: (setattr(d, "data", d.clean), d.run(
        "--protocol-set", "loo.n_negatives=100000"))[1], "each event gets at most", status=0))
    out.append(Case("unknown dataset", lambda d: ["run", "--method", "random", "--dataset", "ml-10k"],
                    "unknown dataset"))

    # ---- a trial's failure stays that trial's
    out.append(Case("fit info with NumPy/torch values (stored, converted)", lambda d: d.run(*inc, method="numpy-info"),
                    "ok     numpy-info", status=0))
    out.append(Case("NaN loss in fit info (stored as null)", lambda d: d.run(*inc, method="nan-loss"),
                    "ok     nan-loss", status=0))
    out.append(Case("sys.exit() in fit", lambda d: d.run(*inc, method="exits"), "SystemExit(3)", status=1))
    out.append(Case("+inf scores on loo", lambda d: d.run(*inc, method="inf-scores"), "NaN or infinite", status=1))
    out.append(Case("+inf scores on cold", lambda d: d.run(*inc, method="inf-scores", protocol="cold"),
                    "NaN or infinite", status=1))

    # ---- results and reports (on the results the cases above stored)
    def corrupt(kind: str) -> None:
        folder = d.results / "ml-100k" / "loo" / "random"
        rec = next(p for p in sorted(folder.glob("*.json")) if not p.name.startswith("broken-"))
        if kind == "npz":
            npz = rec.with_suffix(".npz")
            npz.write_bytes(npz.read_bytes()[:100])
        else:
            (folder / f"broken-{kind}.json").write_text({"empty": "{}", "list": "[1, 2]",
                                                         "nometrics": json.dumps({"trial_id": "x", "status": "ok",
                                                             "dataset": {"name": "ml-100k"}, "protocol": {"name": "loo"},
                                                             "method": {"name": "random"}})}[kind])

    out.append(Case("record {} (skipped, named)", lambda d: (corrupt("empty"), ["status", "--results", str(d.results)])[1],
                    "skipping result record", status=0))
    out.append(Case("record [1, 2] (skipped, named)", lambda d: (corrupt("list"), d.report("--format", "md"))[1],
                    "skipping result record", status=0))
    out.append(Case("record without metrics (skipped, named)",
                    lambda d: (corrupt("nometrics"), d.report("--format", "md"))[1], "skipping result record", status=0))
    out.append(Case("report --metrics auc on ranking results", lambda d: d.report("--metrics", "auc"),
                    "no stored protocol has them"))
    out.append(Case("report --metrics hr@0", lambda d: d.report("--metrics", "hr@0"), "K at least 1"))
    out.append(Case("report --out is a file", lambda d: ["report", "--results", str(d.results), "--out",
                                                        str(d.clean / "u.data")], "is a file"))
    out.append(Case("report --results TYPO", lambda d: ["report", "--results", str(d.root / "TYPO"), "--out",
                                                       str(d.root / "rep")], "does not exist"))
    out.append(Case("status --results TYPO", lambda d: ["status", "--results", str(d.root / "TYPO")],
                    "does not exist"))
    out.append(Case("report --reference nosuch", lambda d: d.report("--reference", "nosuch"), "--reference nosuch"))
    out.append(Case("report --methods nosuch", lambda d: d.report("--methods", "nosuch"), "nosuch"))
    out.append(Case("report --format bogus", lambda d: d.report("--format", "docx"), "--format"))
    out.append(Case("report --alpha 2", lambda d: d.report("--alpha", "2"), "--alpha"))
    out.append(Case("report --subset bogus", lambda d: d.report("--subset", "bogus"), "--subset"))
    out.append(Case("truncated .npz: report names it", lambda d: (corrupt("npz"), d.report("--format", "md"))[1],
                    "unreadable per-event vectors"))
    out.append(Case("truncated .npz: run redoes the trial", lambda d: (setattr(d, "data", d.clean), d.run())[1],
                    "ok     random", status=0))

    # ---- data commands
    out.append(Case("data fetch --data-dir FILE", lambda d: ["data", "fetch", "ml-100k", "--data-dir",
                                                            str(d.clean / "u.data")], "u.data"))
    out.append(Case("PROMO_BENCH_CACHE is a file", lambda d: (os.environ.__setitem__("PROMO_BENCH_CACHE",
                    str(d.clean / "u.data")), d.run(protocol="cold"))[1], "u.data"))
    out.append(Case("data verify unknown dataset", lambda d: ["data", "verify", "ml-10k"], "unknown dataset"))
    out.append(Case("data info with no dataset", lambda d: ["data", "info"], "dataset"))
    return out


def run_case(d: Drill, case: Case) -> tuple[str, str]:
    err, outb = io.StringIO(), io.StringIO()
    try:
        args = case.args(d)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(outb):
            try:
                code = main(args)
            except SystemExit as exc:  # argparse's own usage errors exit 2 with a message
                code = exc.code if isinstance(exc.code, int) else 2
    except BaseException:  # noqa: BLE001 - the drill's point
        return "traceback", traceback.format_exc().strip().splitlines()[-1]
    text = err.getvalue() + outb.getvalue()
    if "Traceback (most recent call last)" in text:
        return "traceback", text.strip().splitlines()[-1]
    said = [x for x in text.splitlines() if case.expect in x]
    if code == case.status and said:
        return "clear", said[0].strip()[:150]
    return "silent", f"exit {code} (expected {case.status}); {text.strip().splitlines()[-1][:150] if text.strip() else 'no output'}"


def drill() -> int:
    with tempfile.TemporaryDirectory(prefix="promo-drill-") as tmp:
        root = Path(tmp)
        os.environ["PROMO_BENCH_CACHE"] = str(root / "cache")
        d = Drill(root)
        counts = {"clear": 0, "traceback": 0, "silent": 0}
        all_cases = cases(d)
        for case in all_cases:
            os.environ["PROMO_BENCH_CACHE"] = str(root / "cache")
            kind, line = run_case(d, case)
            counts[kind] += 1
            print(f"{kind:9s} {case.name}: {line}")
        print(f"\n{len(all_cases)} bad inputs: {counts['clear']} clear, {counts['traceback']} tracebacks, "
              f"{counts['silent']} silent")
        return 0 if counts["clear"] == len(all_cases) else 1


if __name__ == "__main__":
    sys.exit(drill())
