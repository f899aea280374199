"""Per-epoch statistics of the latent weights of the quantized layers.

flip_ratio: share of binary weights sign(w) that changed since the previous epoch's end (the
binarization is settling when it tends to 0); latent_at_pm1: share of latent weights with
|w| >= 1, where every hard forward quantizer already outputs ±1.

The first reference signs are taken when the monitor is built: build it from the weights training
continues from (a resumed run: after its checkpoint is loaded), or the first epoch's flip ratio
compares against other weights.
"""

from __future__ import annotations

import torch


class BinarizationMonitor:
    def __init__(self, weights: list[torch.Tensor]):
        self.weights = weights
        self.reference = self._signs()

    def _signs(self) -> list[torch.Tensor]:
        # sign with sign(0) = +1, as src.quant.prox.sign
        return [(w.detach() >= 0) for w in self.weights]

    def epoch_metrics(self) -> dict[str, float]:
        if not self.weights:
            return {}
        current = self._signs()
        total = sum(w.numel() for w in self.weights)
        flips = sum(int((a != b).sum()) for a, b in zip(current, self.reference))
        at_pm1 = sum(int((w.detach().abs() >= 1).sum()) for w in self.weights)
        self.reference = current
        return {"flip_ratio": flips / total, "latent_at_pm1": at_pm1 / total}
