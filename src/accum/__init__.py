"""b-bit cyclic (wrap-around) accumulators for BWAA: binary weights, binary activations and
low-bit integer accumulation (WrapNet, Ni et al., ICLR 2021; ProxConnect++ §4, §4.2, b = 8).

wrap_b(x) = ((x + 2^(b−1)) mod 2^b) − 2^(b−1) is exact evaluation; ``cyclic`` is its continuous
training surrogate; ``overflow_penalty`` / ``overflow_rate`` measure and discourage overflow.
"""

from ._checks import FLOAT32_EXACT_LIMIT, assert_exact_fan_in, check_bits, no_autocast
from .cyclic import check_width, cyclic
from .functional import (accumulate_conv2d, accumulate_linear, binary_accumulate, wrapped_conv2d,
                         wrapped_linear)
from .module import WrapAccumulator
from .penalty import overflow_penalty, overflow_rate
from .wrap import wrap

__all__ = [
    "FLOAT32_EXACT_LIMIT", "WrapAccumulator", "accumulate_conv2d", "accumulate_linear",
    "assert_exact_fan_in", "binary_accumulate", "check_bits", "check_width", "cyclic",
    "no_autocast", "overflow_penalty", "overflow_rate", "wrap", "wrapped_conv2d", "wrapped_linear",
]
