"""``promo-bench validate METHOD``: run a method on a tiny real slice under each protocol it claims and check
what the harness relies on. Every check is listed with pass, fail or skip and a reason."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from benchmark.data.interactions import Interactions, dense_ids
from benchmark.errors import BenchError
from benchmark.method import Method
from benchmark.protocols import PROTOCOLS
from benchmark.protocols.split import Split
from benchmark.registry import check_method_class, get_method, registry

SLICE_USERS = 120  # ML-100K users 1..120: about 13 k ratings, enough for every protocol's tiny split
SLICE_PARAMS = {"loo": {}, "cold": {}, "warmup": {"n_old": 40, "k": 3, "min_eval_rows": 3}}
SEED = 0


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped
    detail: str = ""

    def line(self) -> str:
        mark = {True: "PASS", False: "FAIL", None: "skip"}[self.ok]
        return f"  [{mark}] {self.name}" + (f": {self.detail}" if self.detail else "")


def tiny_slice(inter: Interactions, n_users: int = SLICE_USERS) -> Interactions:
    """The log of the first ``n_users`` users (by raw id), with dense ids and features re-indexed."""
    rows = inter.user < n_users
    items_used = np.unique(inter.item[rows])
    item_new, item_ids = dense_ids(inter.item_ids[items_used].astype(str))
    lookup = np.full(inter.n_items, -1, dtype=np.int64)
    lookup[items_used] = item_new
    order = np.empty(len(items_used), dtype=np.int64)
    order[item_new] = items_used
    return replace(inter, user=inter.user[rows], item=lookup[inter.item[rows]],
                   time=inter.time[rows], value=inter.value[rows], label=inter.label[rows],
                   user_ids=inter.user_ids[:n_users], item_ids=item_ids,
                   user_features=inter.user_features[:n_users], item_features=inter.item_features[order],
                   source=f"slice of {n_users} users: {inter.source}", provenance={})


def _poison_test(split: Split, seed: int = 1) -> Split:
    """The same split with every held-out test array replaced by random values of the same shape and range."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for key, arr in split.arrays.items():
        if not key.startswith("test/") or arr.size == 0:
            arrays[key] = arr
        elif arr.dtype == bool:
            arrays[key] = rng.random(arr.shape) < 0.5
        elif np.issubdtype(arr.dtype, np.integer):
            arrays[key] = rng.integers(max(int(arr.min()), 0), int(arr.max()) + 1, arr.shape).astype(arr.dtype)
        else:
            arrays[key] = rng.random(arr.shape).astype(arr.dtype)
    meta = dict(split.meta, split_hash=split.hash[:-8] + "poisoned")
    return Split(meta=meta, arrays=arrays)


def _environment(split: Split, inter: Interactions, device: torch.device) -> Any:
    from benchmark.trial import TrialEnvironment

    return TrialEnvironment(split, inter, device)


def _fit(cls: type[Method], env: Any, budget: str) -> tuple[Method, Any]:
    """A fresh instance fitted with seed 0 on ``env``'s training rows (nothing cached between fits)."""
    from benchmark.trial import seed_everything

    seed_everything(SEED)
    method = cls(cls.resolved_defaults(budget), env.context(SEED, budget, False, cls))
    return method, method.fit(env.views.train(False))


def _valid_scores(method: Method, env: Any) -> torch.Tensor:
    """The method's raw outputs on the validation events: what the check compares run to run."""
    with torch.no_grad():
        if env.evaluator.kind == "pointwise":
            ev = env.views.events("valid")
            return method.predict({"user": ev["user"], "item": ev["item"]})
        if env.evaluator.kind == "full":
            users = torch.unique(torch.as_tensor(env.split.part("valid")["user"], device=env.device))[:32]
            return method.score_all({"user": users.long()})
        from benchmark.trial import SCORING_FIELDS

        ev = env.views.events("valid")
        idx = torch.arange(min(int(ev["user"].shape[0]), 64), device=env.device)
        return method.score({k: ev[k][idx] for k in SCORING_FIELDS if k in ev})


def _finite_loss(info: Any) -> tuple[bool | None, str]:
    loss = info.get("train_loss") if isinstance(info, dict) else None
    if loss is None:
        return None, "fit() reported no train_loss (fine for methods without a loss)"
    values = loss if isinstance(loss, (list, tuple)) else [loss]
    bad = [v for v in values if not math.isfinite(float(v))]
    return (not bad), (f"{len(values)} epoch losses, last {float(values[-1]):.4g}" if not bad
                       else f"non-finite loss {bad[0]}")


def _json_info(tag: str, info: Any) -> Check:
    """What ``run`` stores of fit()'s info: plain JSON values pass; anything it must convert is named."""
    from benchmark.store import json_safe

    if not isinstance(info, dict):
        return Check(f"{tag} fit() info is JSON-writable", False, f"fit() returned {type(info).__name__}, "
                     f"expected a dict")
    _, nonfinite, converted = json_safe(info)
    problems = ([f"non-finite {', '.join(nonfinite)} (stored as null)"] if nonfinite else []) + \
               ([f"{', '.join(converted)} (converted; return plain Python values)"] if converted else [])
    return Check(f"{tag} fit() info is JSON-writable", not problems, "; ".join(problems))


def validate(name: str, inter: Interactions, device: torch.device, budget: str = "quick") -> list[Check]:
    entry = registry().get(name)
    if entry is None:
        get_method(name)  # raises the 'unknown method' error with suggestions
    checks = [Check("origin", True, entry.origin)]
    try:
        cls = entry.load()
        check_method_class(cls, name)
        checks.append(Check("class: Method subclass, name, requires, protocols, budgets", True,
                            f"protocols {', '.join(sorted(cls.protocols))}; requires "
                            f"{', '.join(sorted(cls.requires)) or 'nothing'}"))
    except (BenchError, TypeError) as exc:
        return checks + [Check("class: Method subclass, name, requires, protocols, budgets", False, str(exc))]
    from benchmark.runner import provided

    data = tiny_slice(inter)
    for protocol in sorted(cls.protocols):
        tag = f"{protocol}:"
        try:
            split = PROTOCOLS[protocol].build(data, PROTOCOLS[protocol].resolve_params(
                PROTOCOLS[protocol].DEFAULTS, SLICE_PARAMS.get(protocol, {})))
        except BenchError as exc:
            checks.append(Check(f"{tag} tiny split", None, f"could not build it on the slice: {exc}"))
            continue
        missing = set(cls.requires) - provided(data, protocol)
        checks.append(Check(f"{tag} declared requirements are provided", not missing,
                            f"missing {sorted(missing)}" if missing else ""))
        if missing:
            continue
        try:
            env = _environment(split, data, device)
            method, info = _fit(cls, env, budget)
            out = _valid_scores(method, env)
        except Exception as exc:  # noqa: BLE001 - the report is the point
            checks.append(Check(f"{tag} fit and score", False, f"{type(exc).__name__}: {exc}"))
            continue
        ok, detail = _finite_loss(info)
        checks.append(Check(f"{tag} finite training loss", ok, detail))
        checks.append(_json_info(tag, info))
        shape_ok = out.dim() == (1 if env.evaluator.kind == "pointwise" else 2) and torch.is_floating_point(out)
        checks.append(Check(f"{tag} score shape and dtype", shape_ok, f"{tuple(out.shape)} {out.dtype}"))
        checks.append(Check(f"{tag} no NaN or inf in scores", bool(torch.isfinite(out).all()),
                            "" if torch.isfinite(out).all() else f"{int((~torch.isfinite(out)).sum())} bad values"))
        checks.append(Check(f"{tag} scores on the trial device", out.device.type == device.type,
                            f"{out.device} (trial device {device})"))
        try:
            again, _ = _fit(cls, env, budget)
            same = torch.equal(_valid_scores(again, env), out)
            checks.append(Check(f"{tag} deterministic with a seed", same, "" if same else
                                "two fits with seed 0 gave different validation scores (seed every random "
                                "draw from self.ctx.generator or torch's global seed)"))
            if not same:  # the leak check compares fits, so it cannot tell a leak from noise here
                checks.append(Check(f"{tag} fit does not read evaluation data", None,
                                    "cannot tell: the method is not deterministic (see above)"))
                continue
            poisoned, _ = _fit(cls, _environment(_poison_test(split), data, device), budget)
            clean = torch.equal(_valid_scores(poisoned, env), out)
            checks.append(Check(f"{tag} fit does not read evaluation data", clean, "" if clean else
                                "randomising the held-out test events changed the fitted model, which is "
                                "deterministic otherwise: fit reads evaluation data"))
        except Exception as exc:  # noqa: BLE001
            checks.append(Check(f"{tag} repeat fits", False, f"{type(exc).__name__}: {exc}"))
    return checks
