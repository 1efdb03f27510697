"""The scale of the BPR-MF scores DropoutNet regresses (docs/methods/dropoutnet.md, "Known problem").

Reads every fitted bpr-mf backbone in the fitted cache (PROMO_BENCH_CACHE or the default) and prints, per file, the
std and the largest absolute value of its user x item scores U V^T. Usage: python perf/bpr_score_scale.py
"""

from __future__ import annotations

import torch

from benchmark.files import cache_root


def tensors(obj, out):
    if isinstance(obj, dict):
        for v in obj.values():
            tensors(v, out)
    elif torch.is_tensor(obj) and obj.dim() == 2:
        out.append(obj)
    return out


def main() -> None:
    files = sorted((cache_root() / "fitted").glob("*/bpr-mf-*.pt"))
    if not files:
        print(f"no fitted bpr-mf backbones under {cache_root() / 'fitted'}")
    for path in files:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        tables = sorted(tensors(saved["state"], []), key=lambda t: t.shape[0])
        users, items = tables[0], tables[-1]  # the smaller table is the users' (ML-100K: 943 users, 1,682 items)
        scores = users @ items.T
        print(f"{path.parent.name}/{path.name}: dim {users.shape[1]}, score std {scores.std():.2f}, "
              f"max |score| {scores.abs().max():.1f}")


if __name__ == "__main__":
    main()
