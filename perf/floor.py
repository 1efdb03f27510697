"""Lower bounds for issue 18's targets on this machine: the time the references' own work needs here at the best
rate this CPU reaches, whatever the framework overhead.

- DropoutNet: one training step of the real ``DropoutNetModel`` (batch 1,024, ML-100K's preference and content
  widths) against the same FLOPs at this machine's measured GEMM peak (a 2048^3 matmul); times the reference's
  work on ML-100K (2.5 M targets an epoch = 2,442 steps, 10 epochs) times the seeds and protocols of ``run --all``.
- SASRec: the attention alone (``scaled_dot_product_attention``, causal, forward + backward) on one step's maps
  (128 windows x 4 heads x 50 x 4, two blocks) times ML-100K ``loo``'s 740 steps an epoch, against the issue's
  target of 2 s an epoch.

    python perf/floor.py [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_kernels import median_s  # noqa: E402  (median of repeated timings after warm-up calls)


def gemm_peak() -> float:
    """FLOP/s of a large fp32 matmul: what this CPU reaches at best."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    return 2 * 2048**3 / median_s(lambda: a @ b, repeats=5)


def dropoutnet_step(pref: int, content: int, batch: int = 1024) -> tuple[float, float]:
    """(seconds per real training step, FLOPs per step) of DropoutNet's towers at their defaults."""
    from methods.dropoutnet import DropoutNetModel

    net = DropoutNetModel(pref, content, [200], 200)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    xu, xi, y = torch.randn(batch, pref), torch.randn(batch, pref + content), torch.randn(batch)

    def step() -> None:
        loss = ((net.user_tower(xu) * net.item_tower(xi)).sum(1) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    forward = 2 * batch * (pref * 200 + 200 * 200 + (pref + content) * 200 + 200 * 200)
    return median_s(step, 20), 3 * forward  # backward: two GEMMs per forward GEMM


def sasrec_attention_step(batch: int = 128, heads: int = 4, length: int = 50, d: int = 16, blocks: int = 2) -> float:
    q, k, v = (torch.randn(batch, heads, length, d // heads, requires_grad=True) for _ in range(3))

    def step() -> None:
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        out.sum().backward()

    return blocks * median_s(step, 20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pref", type=int, default=64, help="bpr-mf's d: DropoutNet's preference width")
    ap.add_argument("--content", type=int, default=None, help="item content width (default: ML-100K's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    content = args.content
    if content is None:
        from benchmark.data.loader import load_dataset

        content = load_dataset("ml-100k").item_features.shape[1]
    peak = gemm_peak()
    step_s, flops = dropoutnet_step(args.pref, content)
    steps, epochs, seeds, protocols = 2442, 10, 3, 3
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
          f"torch {torch.__version__}")
    print(f"GEMM peak (2048^3 fp32): {peak / 1e9:.0f} GFLOP/s")
    print(f"DropoutNet step (batch 1024, pref {args.pref}, content {content}): {step_s * 1e3:.1f} ms, "
          f"{flops / 1e9:.2f} GFLOP = {flops / step_s / 1e9:.0f} GFLOP/s ({flops / step_s / peak:.0%} of peak); "
          f"at peak {flops / peak * 1e3:.1f} ms")
    real = steps * epochs * seeds * protocols * step_s
    ideal = steps * epochs * seeds * protocols * flops / peak
    print(f"DropoutNet in run --all ({steps} steps x {epochs} epochs x {seeds} seeds x {protocols} protocols): "
          f"{real / 60:.1f} min at this step time, {ideal / 60:.1f} min at the GEMM peak (floor)")
    att = sasrec_attention_step()
    print(f"SASRec attention alone (2 blocks, 128 x 4 x 50 x 4, fwd + bwd): {att * 1e3:.1f} ms a step; "
          f"x 740 steps = {att * 740:.1f} s an epoch (target: 2 s for the whole step)")


if __name__ == "__main__":
    main()
