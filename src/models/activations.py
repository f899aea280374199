"""The activation of the CNNs, chosen by the task (configs/task/*.yaml `activation`).

ReLU feeds only non-negative values to the next layer: under BWA their sign would be +1 everywhere,
so binary-activation networks use hard tanh (BNN, IR-Net, Bi-Real's sign-preserving inputs) and keep
the sign information. BW and FP runs keep ReLU.
"""

from __future__ import annotations

import torch.nn as nn

ACTIVATIONS = {"relu": nn.ReLU, "hardtanh": nn.Hardtanh}


def build_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not one of {tuple(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def replace_relu(model: nn.Module, name: str) -> nn.Module:
    """Swap every nn.ReLU module of a library model (torchvision) for ``name``'s activation."""
    build_activation(name)
    if name != "relu":
        for parent_name, parent in list(model.named_modules()):
            for child_name, child in list(parent.named_children()):
                if isinstance(child, nn.ReLU):
                    setattr(parent, child_name, build_activation(name))
    return model
