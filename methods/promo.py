"""PROMO (Jiang et al., RecSys 2024): item-wise personalised prompts on a frozen DSSM+SASRec backbone,
and the paper's ablations PROMO-I/-F/-IF/-M/-T.

Method card (every place we follow the paper, the released code, or neither): docs/methods/promo.md.
Tensor-level description of the release: promo-spec.md sections 3 to 6.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.space import Choice, Float
from benchmark.method import Method, TrainData
from benchmark.training import train_epochs
from methods.dssm_sasrec import DSSMSASRec
from methods.pinnacle import ScoredPinnacle
from methods.popularity import CausalPopularity

LOG2 = math.log(2.0)


def generator_size(d: int, h: int) -> int:
    """Output size of the shared generator: prompt token (d) + W1 (d*h) + b1 (h) + W2 (h*d) + b2 (d)."""
    return d + d * h + h + h * d + d


def pfpe_released(P: torch.Tensor, N: torch.Tensor, n_pos: torch.Tensor, n_neg: torch.Tensor) -> torch.Tensor:
    """The released code's L_pfpe: mean over samples of sum_c softplus(-(|Neg| P_c - |Pos| N_c)).

    Signed and per dimension; an empty list gives softplus(0) = log 2 per dimension, with no gradient.
    """
    return F.softplus(-(n_neg.unsqueeze(1) * P - n_pos.unsqueeze(1) * N)).sum(1).mean()


def pfpe_l1(P: torch.Tensor, N: torch.Tensor, n_pos: torch.Tensor, n_neg: torch.Tensor) -> torch.Tensor:
    """Our reading of the paper's L_pfpe: softplus(-||mean P - mean N||_1); log 2 when a list is empty."""
    diff = (P / n_pos.clamp(min=1).unsqueeze(1) - N / n_neg.clamp(min=1).unsqueeze(1)).abs().sum(1)
    valid = (n_pos > 0) & (n_neg > 0)
    return torch.where(valid, F.softplus(-diff), torch.full_like(diff, LOG2)).mean()


def pape(logits: torch.Tensor, labels: torch.Tensor, cold: torch.Tensor) -> torch.Tensor:
    """The released L_pape ("fape"): softplus(-(|H| sum C - |C| sum H)) over the batch, where C are the
    logits of cold-item positives and H of warm-item negatives; not normalised; log 2 if either is empty."""
    c = (labels > 0) & cold
    h = (labels <= 0) & ~cold
    return F.softplus(-(h.sum() * logits[c].sum() - c.sum() * logits[h].sum()))


class PromptNet(nn.Module):
    """The prompt side of PROMO (promo-spec section 4) with the switches the ablations need.

    ``prompt_input``: "feedback" (PROMO: the item's pinnacle users through a per-user table), "id",
    "features" or "id+features" (PROMO-I/-F/-IF). ``network``: "item" (PROMO: a per-item network whose
    weights a shared generator produces from the item's prompt seed), "shared" (PROMO-M: one MLP for
    all items) or "none" (PROMO-T: inputs summed directly, prompt token zero).
    """

    def __init__(self, n_users: int, n_items: int, n_item_feat: int, d: int, h: int, activation: str,
                 prompt_input: str, network: str) -> None:
        super().__init__()
        self.d, self.h, self.prompt_input, self.network = d, h, prompt_input, network
        self.act = {"identity": nn.Identity(), "relu": nn.ReLU()}[activation]
        if prompt_input == "feedback":
            self.user_prm = nn.Embedding(n_users, d)  # E^prm_user: trainable, separate from the backbone
        if "id" in prompt_input.split("+"):
            self.item_in = nn.Embedding(n_items, d)
        if "features" in prompt_input.split("+"):
            self.feat_in = nn.Linear(n_item_feat, d)
        if network in ("item", "shared"):
            self.item_prm = nn.Embedding(n_items, d)  # prompt seed p_i
        if network == "item":
            self.gen = nn.Linear(d, generator_size(d, h))  # G, b_G: shared by all items
        elif network == "shared":
            self.token = nn.Linear(d, d)
            self.mlp1, self.mlp2 = nn.Linear(d, h), nn.Linear(h, d)
        self.fuse = nn.Linear(3 * d, d, bias=False)  # W_f
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)

    def item_networks(self, items: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per item: prompt token t (N,d), W1 (N,d,h), b1 (N,h), W2 (N,h,d), b2 (N,d)."""
        d, h = self.d, self.h
        g = self.gen(self.item_prm(items))
        t, w1, b1, w2, b2 = torch.split(g, [d, d * h, h, h * d, d], dim=1)
        return t, w1.view(-1, d, h), b1, w2.view(-1, h, d), b2

    def _encode(self, items: torch.Tensor, q: torch.Tensor, mask: torch.Tensor,
                nets: tuple[torch.Tensor, ...] | None) -> torch.Tensor:
        """Masked sum over the k inputs of each item's own network f_i (N,k,d) -> (N,d)."""
        if self.network == "item":
            _, w1, b1, w2, b2 = nets  # type: ignore[misc]
            hidden = self.act(torch.bmm(q, w1) + b1.unsqueeze(1))
            out = torch.bmm(hidden, w2) + b2.unsqueeze(1)
        elif self.network == "shared":
            out = self.mlp2(self.act(self.mlp1(q)))
        else:
            out = q
        return (out * mask.unsqueeze(-1).to(out.dtype)).sum(1)

    def prompt(self, items: torch.Tensor, fb_users: torch.Tensor, fb_mask: torch.Tensor, item_feats: torch.Tensor,
               neg_users: torch.Tensor | None = None, neg_mask: torch.Tensor | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(P_i, t_i, N_i): the prompt sum, the prompt token and (when asked) the negative-feedback sum."""
        nets = self.item_networks(items) if self.network == "item" else None
        if self.network == "item":
            t = nets[0]  # type: ignore[index]
        elif self.network == "shared":
            t = self.token(self.item_prm(items))
        else:
            t = torch.zeros(len(items), self.d, device=items.device)
        if self.prompt_input == "feedback":
            P = self._encode(items, self.user_prm(fb_users), fb_mask, nets)
            N = self._encode(items, self.user_prm(neg_users), neg_mask, nets) if neg_users is not None else None
            return P, t, N
        x = torch.zeros(len(items), self.d, device=items.device)
        if hasattr(self, "item_in"):
            x = x + self.item_in(items)
        if hasattr(self, "feat_in"):
            x = x + self.feat_in(item_feats[items])
        ones = torch.ones(len(items), 1, dtype=torch.bool, device=items.device)
        return self._encode(items, x.unsqueeze(1), ones, nets), t, None

    def fused(self, v: torch.Tensor, P: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v'_i = W_f [v_i ; P_i ; t_i]; it replaces the backbone's item vector."""
        return self.fuse(torch.cat([v, P, t], dim=-1))


def split_tau(data: TrainData) -> int:
    """The split's cold threshold (``loo``'s tau): PROMO's L_pape and pinnacle warm set read it."""
    tau = data.meta.get("params", {}).get("tau")
    if tau is None:
        raise ValueError("promo: this split has no cold threshold tau (PROMO runs on loo-like protocols)")
    return int(tau)


class Promo(Method):
    name = "promo"
    uses = ("dssm-sasrec",)
    version = "2"  # 2: L_pape's and the scored pinnacle's cold/warm flags are causal (as of each row's time)
    requires = frozenset({"history", "feedback", "item_features", "user_features"})
    prompt_input: ClassVar[str] = "feedback"
    network: ClassVar[str] = "item"
    defaults = {"hidden": 16, "activation": "identity", "lambda1": 0.01, "lambda2": 0.01, "lr": 1e-3,
                "batch_size": 128, "epochs": 20, "patience": 5, "pinnacle": "recent", "pfpe": "released",
                "audit_leak": False}
    budgets = {"quick": {"epochs": 2, "patience": 2}}
    search_space = {"lr": Float(1e-4, 1e-2, log=True), "lambda1": Float(1e-3, 1.0, log=True),
                    "lambda2": Float(1e-3, 1.0, log=True), "hidden": Choice((16, 32, 64))}
    option_ranges = {"activation": ("identity", "relu"), "pinnacle": ("recent", "scored"), "pfpe": ("released", "l1")}

    def _check(self) -> None:
        o = self.options
        for key, allowed in (("activation", ("identity", "relu")), ("pinnacle", ("recent", "scored")),
                             ("pfpe", ("released", "l1"))):
            if key in o and o[key] not in allowed:
                raise ValueError(f"option {key}={o[key]!r}: expected one of {', '.join(allowed)}")
        if o.get("pinnacle") == "scored" and o["audit_leak"]:
            raise ValueError("pinnacle=scored with audit_leak=true is not offered: the released code had no scoring")

    def fit(self, data: TrainData) -> dict[str, Any]:
        o = self.options
        self._check()
        self.backbone: DSSMSASRec = self.ctx.fitted("dssm-sasrec", {"audit_leak": o["audit_leak"]})  # type: ignore
        train = data.train
        with torch.no_grad():  # the backbone is frozen: its user and item vectors are fixed
            U = self.backbone.user_vectors(train["user"], self.backbone.history_vectors(train["hist"], train["hist_mask"]))
            self.V = self.backbone.item_vectors(torch.arange(data.n_items, device=self.device))
        self.item_feats = data.item_features
        # cold as of each row's time: fewer than tau training positives strictly before it (promo-spec 11.9)
        self.pop, self.tau = CausalPopularity(data), split_tau(data)
        row_cold = self.pop.counts(train["item"].long(), train["time"]) < self.tau
        d = self.V.shape[1]
        self.net = PromptNet(data.n_users, data.n_items, data.item_features.shape[1], d, o["hidden"],
                             o["activation"], self.prompt_input, self.network).to(self.device)
        self.pinnacle: ScoredPinnacle | None = None
        fbp, fbp_mask = train["fb_pos"], train["fb_pos_mask"]
        n_pseudo = 0
        if o.get("pinnacle") == "scored":
            self.pinnacle = ScoredPinnacle(train, self.V, self._warm_at, fbp.shape[1])
            v, m, n_pseudo = self.pinnacle.windows(train.numpy("item"), train.numpy("time"))
            fbp, fbp_mask = torch.from_numpy(v).long().to(self.device), torch.from_numpy(m).to(self.device)
        use_pfpe = self.prompt_input == "feedback" and o.get("lambda1", 0.0) > 0
        pfpe_fn = pfpe_l1 if o.get("pfpe") == "l1" else pfpe_released
        opt = torch.optim.Adam(self.net.parameters(), lr=o["lr"], betas=(0.9, 0.98))
        zero = torch.zeros((), device=self.device)

        def step(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            i, y = train["item"][idx], train["label"][idx].float()
            P, t, N = self.net.prompt(i, fbp[idx], fbp_mask[idx], self.item_feats,
                                      train["fb_neg"][idx] if use_pfpe else None,
                                      train["fb_neg_mask"][idx] if use_pfpe else None)
            logits = (U[idx] * self.net.fused(self.V[i], P, t)).sum(-1)
            rec = F.binary_cross_entropy_with_logits(logits, y)
            l_pfpe = (pfpe_fn(P, N, fbp_mask[idx].sum(1).float(), train["fb_neg_mask"][idx].sum(1).float())
                      if use_pfpe else zero)
            l_pape = pape(logits, y, row_cold[idx])
            loss = rec + o.get("lambda1", 0.0) * l_pfpe + o["lambda2"] * l_pape
            return loss, {"rec": rec, "pfpe": l_pfpe, "pape": l_pape}

        info = train_epochs(self, self.net, opt, lambda: train.index_batches(o["batch_size"], self.ctx.generator),
                            step, o["epochs"], o["patience"], f"{self.name} epochs")
        return {**info, "n_train_rows_pseudo_pinnacle": n_pseudo,
                "trainable_parameters": sum(p.numel() for p in self.net.parameters()),
                "backbone": self.backbone.fitted_info, "sasrec": self.backbone.sasrec.fitted_info}

    def _warm_at(self, items: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Items with at least tau training positives strictly before ``times`` (broadcast against ``items``)."""
        it = torch.from_numpy(np.ascontiguousarray(items, dtype=np.int64)).to(self.device)
        tt = torch.from_numpy(np.array(np.broadcast_to(times, items.shape), dtype=np.int64)).to(self.device)
        return (self.pop.counts(it, tt) >= self.tau).cpu().numpy()

    def score(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.net.eval()
        u = self.backbone.user_vectors(batch["user"], self.backbone.history_vectors(batch["hist"], batch["hist_mask"]))
        cand = batch["cand"]
        B, C = cand.shape
        flat = cand.reshape(-1)
        if self.pinnacle is not None:
            times = batch["time"].unsqueeze(1).expand(B, C).reshape(-1)
            v, m, _ = self.pinnacle.windows(flat.cpu().numpy(), times.cpu().numpy())
            fb, fb_mask = torch.from_numpy(v).long().to(self.device), torch.from_numpy(m).to(self.device)
        else:
            k = batch["fb_pos"].shape[-1]
            fb, fb_mask = batch["fb_pos"].reshape(-1, k), batch["fb_pos_mask"].reshape(-1, k)
        P, t, _ = self.net.prompt(flat, fb, fb_mask, self.item_feats)
        v = self.net.fused(self.V[flat], P, t).view(B, C, -1)
        return torch.einsum("bd,bcd->bc", u, v)


_NO_FEEDBACK = {k: v for k, v in Promo.defaults.items() if k not in ("pinnacle", "pfpe", "lambda1")}


class PromoI(Promo):
    """PROMO-I: the prompt input is a learned item-ID embedding instead of feedback users; no L_pfpe."""

    name = "promo-i"
    prompt_input = "id"
    requires = frozenset({"history", "item_features", "user_features"})
    defaults = dict(_NO_FEEDBACK)
    search_space = {k: v for k, v in Promo.search_space.items() if k in _NO_FEEDBACK}


class PromoF(PromoI):
    """PROMO-F: the prompt input is the item's content features through a linear layer; no L_pfpe."""

    name = "promo-f"
    prompt_input = "features"


class PromoIF(PromoI):
    """PROMO-IF: the item-ID embedding plus the feature projection; no L_pfpe."""

    name = "promo-if"
    prompt_input = "id+features"


class PromoM(Promo):
    """PROMO-M: one shared two-layer MLP replaces the item-specific generated networks."""

    name = "promo-m"
    network = "shared"


class PromoT(Promo):
    """PROMO-T: feedback-user embeddings summed directly; no prompt network and a zero prompt token."""

    name = "promo-t"
    network = "none"
