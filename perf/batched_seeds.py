"""Several seeds of one SASRec configuration trained as ONE batched model (issue 20's stretch), against separate
training, on ML-100K ``loo``: do the seeds' numbers match, and how much faster is it?

A d=16 SASRec is overhead-bound: a 128-row step spends its time dispatching small kernels, on a CPU as on a GPU.
Here the K seeds' parameters are stacked (``torch.func.stack_module_state``) and one step runs all K models
(``torch.func.vmap`` over ``functional_call``), so the dispatch is paid once for K seeds.

Each seed keeps every random stream a separate trial of it draws from, in the same order: its initialisation (the
global generator after ``seed_everything(seed)``), its batch order (its own ``ctx.generator``) and its dropout masks
(drawn from a copy of the global generator as it stood after its initialisation, in the encoder's call order, with
the same ``rand >= p`` law as ``methods.layers.Dropout``). Adam is elementwise, so one Adam over the stacked tensors
is K Adams. Early stopping is per seed (patience, best epoch kept): a seed that has stopped keeps training in the
stack (its best state is frozen; dropping it from the stack is not done here) until every seed has stopped. So each
seed's batched run is its separate run up to float rounding (stacked kernels sum in another order), and the
metrics show how far rounding carries.

This is a measurement, not a harness feature: ``run`` trains each seed as its own trial. It prints, per seed, the
epochs run, the best epoch, validation and test HR@10 both ways, then the training wall time of both (validation
passes excluded, measured in this one run) and their ratio.

    python perf/batched_seeds.py [--seeds 5] [--epochs 30] [--threads 1] [--device cuda] [--data-dir DIR]
                                 [--attention math|fused] [--protocol-set loo.train_negatives=1]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.func import functional_call, stack_module_state, vmap  # noqa: E402

from benchmark.cli import parse_set_options  # noqa: E402
from benchmark.data.loader import load_dataset  # noqa: E402
from benchmark.env import resolve_device  # noqa: E402
from benchmark.protocols import get_split, parse_protocol_options  # noqa: E402
from benchmark.trial import TrialEnvironment, seed_everything  # noqa: E402
from methods.layers import Dropout  # noqa: E402
from methods.sasrec import CausalAttention, SASRec  # noqa: E402

BUDGET = "paper"


def attention_math(att: CausalAttention, causal: torch.Tensor):
    """``CausalAttention.forward`` with the attention written as matmul and softmax: the fused CPU kernel has no
    vmap batching rule (vmap falls back to a loop over seeds, no faster than training them one by one). Same
    function, another summation order: rounding differs from the fused kernel's."""
    def forward(q_in: torch.Tensor, kv_in: torch.Tensor) -> torch.Tensor:
        B, L, d = q_in.shape
        h = att.heads
        q = att.q(q_in).view(B, L, h, d // h).transpose(1, 2)
        k, v = att.kv(kv_in).view(B, L, 2, h, d // h).permute(2, 0, 3, 1, 4)
        w = (q @ k.transpose(-2, -1)) * (d // h) ** -0.5
        o = torch.softmax(w.masked_fill(~causal[:L, :L], float("-inf")), dim=-1) @ v
        return att.out(o.transpose(1, 2).reshape(B, L, d))
    return forward


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def global_stream(device: torch.device) -> torch.Generator:
    """A generator holding the global stream of ``device`` as it stands now: what Dropout's ``rand_like`` would
    draw from next (initialisation draws on the CPU, so on CUDA this is the stream right after the seed)."""
    g = torch.Generator(device=device)
    g.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state())
    return g


def new_method(env: TrialEnvironment, options: dict, seed: int) -> SASRec:
    """A SASRec as ``env.fitted`` makes and seeds one for its own trial."""
    seed_everything(seed)
    m = SASRec(dict(options), env.context(seed, BUDGET, False, SASRec))
    m.ctx.generator.manual_seed(seed)
    return m


def evaluate(env: TrialEnvironment, m: SASRec, seed: int) -> tuple[float, float]:
    out = [env.evaluator.evaluate(env, m, part, seed, False, False, {})[part]["all"]["hr@10"] for part in ("valid", "test")]
    return out[0], out[1]


def separate(env: TrialEnvironment, options: dict, seed: int) -> dict:
    m = new_method(env, options, seed)
    info = m.fit(env.views.train(False))
    valid, test = evaluate(env, m, seed)
    return {"epochs": info["epochs_run"], "best": info["best_epoch"], "valid": valid, "test": test}


def profile_step(env: TrialEnvironment, options: dict) -> None:
    """The top operators of 5 training steps of one separate SASRec (torch.profiler, self time)."""
    from torch.profiler import profile

    m = new_method(env, options, 0)
    data = env.views.train(False)
    m._build(data)
    train, o = data.train, options
    opt = torch.optim.Adam(m.net.parameters(), lr=o["lr"], betas=(0.9, 0.98))
    m.net.train()
    batches = train.index_batches(o["batch_size"], m.ctx.generator)

    def step() -> None:
        idx = next(batches)
        s_u = m.net.pooled(train["hist"][idx], train["hist_mask"][idx])
        logits = (s_u * m.net.item_vectors(train["item"][idx])).sum(-1)
        loss = F.binary_cross_entropy_with_logits(logits, train["label"][idx].float())
        opt.zero_grad()
        (loss + o["l2_emb"] * torch.norm(m.net.item_emb.weight)).backward()
        opt.step()

    step()
    with profile() as prof:
        for _ in range(5):
            step()
        sync(env.device)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


def batched(env: TrialEnvironment, options: dict, seeds: list[int], math_attention: bool
            ) -> tuple[list[dict], float, float]:
    o = options
    train = env.views.train(False).train
    data = env.views.train(False)
    methods, dropout_gens = [], []
    for seed in seeds:
        m = new_method(env, o, seed)
        m._build(data)  # what fit() does first: the initialisation draws from the global generator
        methods.append(m)
        dropout_gens.append(global_stream(env.device))  # the rest of that stream: this seed's dropout masks
    params, buffers = stack_module_state([m.net for m in methods])
    base = copy.deepcopy(methods[0].net).to("meta")
    queue: list[torch.Tensor] = []
    n_drop = 0
    for mod in base.modules():
        if isinstance(mod, Dropout) and mod.p > 0:
            mod.forward = lambda x: x * queue.pop(0)  # the mask drawn outside vmap, already scaled
            n_drop += 1
    p_drop, L, d = o["dropout"], min(train["hist"].shape[1], o["max_len"]), o["dim"]
    causal = torch.ones(L, L, dtype=torch.bool, device=env.device).tril()
    for mod in base.modules():
        if math_attention and isinstance(mod, CausalAttention):
            mod.forward = attention_math(mod, causal)
    opt = torch.optim.Adam(params.values(), lr=o["lr"], betas=(0.9, 0.98))

    def loss_one(p, b, hist, hmask, item, label, *masks):
        queue[:] = list(masks)
        out = functional_call(base, (p, b), (hist, hmask))
        n = hmask[:, -o["max_len"]:].sum(1, keepdim=True)
        s_u = out.sum(1) / n.clamp(min=1).to(out.dtype)
        logits = (s_u * F.embedding(item + 1, p["item_emb.weight"], padding_idx=0)).sum(-1)
        loss = F.binary_cross_entropy_with_logits(logits, label.float())
        return loss + o["l2_emb"] * torch.norm(p["item_emb.weight"])

    step = vmap(loss_one)
    K = len(seeds)
    best = [(float("-inf"), -1, None)] * K
    stopped = [False] * K
    epochs_run = [0] * K
    train_s = valid_s = 0.0
    for epoch in range(o["epochs"]):
        t0 = time.perf_counter()
        for idxs in zip(*(train.index_batches(o["batch_size"], m.ctx.generator) for m in methods)):
            idx = torch.stack(idxs)  # K x B: every seed's own batch (the same sizes: the same rows)
            B = idx.shape[1]
            # one K x B x L x d stack per dropout call; seed k's masks come from its own generator in call order
            per_call = [torch.stack([(torch.rand(B, L, d, generator=g, device=env.device) >= p_drop).float() for g in dropout_gens])
                        * (1.0 / (1.0 - p_drop)) for _ in range(n_drop)]
            loss = step(params, buffers, train["hist"][idx], train["hist_mask"][idx], train["item"][idx],
                        train["label"][idx], *per_call).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sync(env.device)
        train_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        for k, m in enumerate(methods):
            if stopped[k]:
                continue
            m.net.load_state_dict({name: t[k].detach() for name, t in params.items()} | dict(buffers))
            m.net.eval()
            value = env.evaluator.validate(env, m, seeds[k], False, "hr@10")
            epochs_run[k] += 1
            if value > best[k][0]:
                best[k] = (value, epoch, copy.deepcopy(m.net.state_dict()))
            stopped[k] = epoch - best[k][1] >= o["patience"]
        valid_s += time.perf_counter() - t0
        if all(stopped):
            break
    rows = []
    for k, m in enumerate(methods):
        m.net.load_state_dict(best[k][2])
        m.net.eval()
        valid, test = evaluate(env, m, seeds[k])
        rows.append({"epochs": epochs_run[k], "best": best[k][1], "valid": valid, "test": test})
    return rows, train_s, valid_s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=None, help="cap (default: the method's, 30)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-dir", default=None, help="ML-100K's folder where recbole (the embedded copy) is absent")
    ap.add_argument("--attention", choices=("math", "fused"), default="math",
                    help="batched attention: matmul + softmax (vmap batches it), or the fused kernel (which vmap runs "
                         "seed by seed: no batching rule)")
    ap.add_argument("--protocol-set", action="append", default=[], metavar="loo.KEY=VALUE")
    ap.add_argument("--profile", action="store_true", help="first print where one separate training step's time goes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    inter = load_dataset("ml-100k", args.data_dir)
    device = resolve_device(args.device)
    proto = parse_protocol_options(parse_set_options(args.protocol_set, "--protocol-set", "PROTOCOL"))
    split, _ = get_split(inter, "loo", proto.get("loo"))
    env = TrialEnvironment(split, inter, device)
    options = SASRec.resolved_defaults(BUDGET)
    if args.epochs:
        options["epochs"] = args.epochs
    seeds = list(range(args.seeds))
    if args.profile:
        profile_step(env, options)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} "
          f"threads, {device}, torch {torch.__version__}; {args.attention} attention in the batched model; SASRec {dict((k, options[k]) for k in ('dim', 'epochs', 'patience'))}"
          f", ML-100K loo {proto.get('loo') or 'defaults'}")
    t0 = time.perf_counter()
    apart = []
    for s in seeds:
        apart.append(separate(env, options, s))
    sync(device)
    apart_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    together, train_s, valid_s = batched(env, options, seeds, args.attention == "math")
    sync(device)
    together_s = time.perf_counter() - t0
    print("seed | epochs (sep / batched) | best epoch | valid HR@10 sep | batched | test HR@10 sep | batched")
    for s, a, b in zip(seeds, apart, together):
        print(f"{s:4d} | {a['epochs']:3d} / {b['epochs']:3d} | {a['best']:3d} / {b['best']:3d} | {a['valid']:.4f} | "
              f"{b['valid']:.4f} | {a['test']:.4f} | {b['test']:.4f}")
    mean = lambda rows, key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    print(f"mean test HR@10: separate {mean(apart, 'test'):.4f}, batched {mean(together, 'test'):.4f}; "
          f"largest per-seed |difference| {max(abs(a['test'] - b['test']) for a, b in zip(apart, together)):.4f}")
    print(f"wall s, fit + final evaluation: separate {apart_s:.1f} (seeds one after another), batched "
          f"{together_s:.1f} (training {train_s:.1f}, validation passes {valid_s:.1f}); ratio {apart_s / together_s:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
