"""Deep & Cross Network (``dcn``): R. Wang, B. Fu, G. Fu, M. Wang, "Deep & Cross Network for Ad Click
Predictions", ADKDD 2017. Reference implementation as the cold-start literature runs it: ``BestActionNow/CVAR``
``model/dcn.py`` with ``main.py``'s settings (embedding 16, 3 cross layers, MLP (16, 16), dropout 0.2).

A row of PROMO's Table 2. It trains exactly as ``deepfm`` does (same fields, loss, optimiser, negatives and early
stopping), so the two rows differ only in the network.

Method card (paper, defaults, what we changed and why): docs/methods/dcn.md.
"""

from __future__ import annotations

from benchmark.space import Int
from methods.coldstart import layer_sizes
from methods.ctr import DCNNet
from methods.deepfm import DeepFM


class DCN(DeepFM):
    name = "dcn"
    version = "2"  # 2: sampled_negatives=auto is 0 on loo (deepfm negatives_per_positive); patience 5 (was 15)
    cacheable = False
    # not on cold: a trial there took 375 s on 2 CPU cores (full-ranking validation for up to 15 idle epochs)
    # against 55 s on loo and 7 s on warmup, and deepfm already is the CTR row of the cold table (card)
    protocols = frozenset({"loo", "warmup"})
    # patience 5, the one rule (version 1 had 15, chosen after reading DCN's validation curve: a choice no other
    # method got; `--set dcn.patience=15` measures it, docs/methods/dcn.md)
    defaults = {**DeepFM.defaults, "cross_layers": 3}
    search_space = {**DeepFM.search_space, "cross_layers": Int(1, 4)}

    def _build(self, data) -> None:
        o = self.options
        self.net = DCNNet(data, o["dim"], o["cross_layers"], layer_sizes(o["layers"]), o["dropout"],
                          o["multi_hot"]).to(self.device)
