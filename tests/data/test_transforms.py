"""src.data.transforms: timm's create_transform, whose RandAugment Posterize keeping 0 bits gives the
black image Pillow computed before it checked the range (Pillow 13 raises instead)."""

from __future__ import annotations

import numpy as np
import pytest
import timm.data
from PIL import Image

from src.data.transforms import timm_transform

DEIT = dict(input_size=32, is_training=True, color_jitter=0.3, auto_augment="rand-m9-mstd0.5-inc1",
            interpolation="bicubic", re_prob=0.25, re_mode="pixel", re_count=1)
IMAGE = Image.fromarray(np.random.default_rng(0).integers(1, 256, size=(32, 32, 3), dtype=np.uint8))


def _at_the_top_of_the_range(transform):
    """The RandAugment ops of ``transform``, each forced to apply at the largest (clipped) level, 10."""
    (rand_augment,) = [t for t in transform.transforms if type(t).__name__ == "RandAugment"]
    for op in rand_augment.ops:
        op.prob, op.magnitude, op.magnitude_std = 1.0, 20, 0.0
    return rand_augment.ops


def test_every_rand_augment_op_applies_at_level_10_and_posterize_then_keeps_no_bit():
    ops = {op.name: op for op in _at_the_top_of_the_range(timm_transform(**DEIT))}
    assert len(ops) == 15
    for op in ops.values():
        assert op(IMAGE).size == IMAGE.size, op.name
    assert not np.asarray(ops["PosterizeIncreasing"](IMAGE)).any()  # 0 bits kept: all black
    ops["PosterizeIncreasing"].magnitude = 5                           # 2 bits kept: Pillow's own posterize
    assert np.array_equal(np.asarray(ops["PosterizeIncreasing"](IMAGE)), np.asarray(IMAGE) & 0b11000000)


def test_the_rest_is_timms_transform():
    ours, theirs = timm_transform(**DEIT), timm.data.create_transform(**DEIT)
    assert repr(ours) == repr(theirs)
    plain = _at_the_top_of_the_range(theirs)
    with pytest.raises(ValueError, match="bits must be between or equal to 1 and 8"):  # what the fix is for
        next(op for op in plain if op.name == "PosterizeIncreasing")(IMAGE)
