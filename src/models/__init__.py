"""Model constructors referenced by configs/model/*.yaml (``net._target_``), and what binarization
needs to know of the transformers:

- CNNs: ``resnet20/32/44/56``, ``resnet18`` (CIFAR), ``vgg_small``, ``resnet50`` (torchvision)
- vision transformers over timm: ``timm_model``, ``transformer_blocks``, ``block_linears``,
  ``add_attention_norms``
- the PC++ §4.3 protocols: ``apply_protocols``; distillation from the FP model: ``Distiller``
"""

from src.models.distill import Distiller, frozen_copy
from src.models.protocols import ProtocolSetup, apply_protocols
from src.models.resnet_cifar import resnet18, resnet20, resnet32, resnet44, resnet56
from src.models.torchvision_models import resnet50
from src.models.transformers import add_attention_norms, block_linears, timm_model, transformer_blocks
from src.models.vgg import vgg_small

__all__ = [
    "Distiller", "ProtocolSetup", "add_attention_norms", "apply_protocols", "block_linears", "frozen_copy",
    "resnet18", "resnet20", "resnet32", "resnet44", "resnet50", "resnet56", "timm_model", "transformer_blocks",
    "vgg_small",
]
