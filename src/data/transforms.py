"""timm's transform factory, with one fix for the Pillow installed here.

timm's RandAugment ``PosterizeIncreasing`` keeps 4 − ⌊4·level/10⌋ bits, so 0 bits at level 10, which
``rand-m9-mstd0.5`` draws (magnitude ~ N(9, 0.5) clipped to [0, 10]) about 2 % of the time. Pillow
computes posterize as ``pixel & ~(2^(8 − bits) − 1)``, a black image for 0 bits, but Pillow 13 (here)
checks 1 ≤ bits ≤ 8 first and raises, which would stop a DeiT-recipe run within its first epoch.
:func:`timm_transform` restores the unchecked result for that one case; everything else is timm's.
"""

from __future__ import annotations

from typing import Any, Callable

import timm.data
from PIL import Image
from timm.data import auto_augment


def posterize(img: Image.Image, bits_to_keep: int, **kwargs: Any) -> Image.Image:
    """timm's posterize; for 0 bits kept, Pillow's formula without its range check: every bit masked."""
    if bits_to_keep <= 0:
        return img.point(lambda _: 0)
    return auto_augment.posterize(img, bits_to_keep, **kwargs)


def timm_transform(**kwargs: Any) -> Callable:
    """``timm.data.create_transform(**kwargs)`` whose RandAugment posterize ops use :func:`posterize`."""
    transform = timm.data.create_transform(**kwargs)
    for step in getattr(transform, "transforms", []):
        for op in getattr(step, "ops", []):
            if op.aug_fn is auto_augment.posterize:
                op.aug_fn = posterize
    return transform
