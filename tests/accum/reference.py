"""Independent integer references: b-bit registers that add products one at a time with
wrap-around (numpy int8/int16 overflow, or an explicit masked two's-complement register).
Nothing here uses src.accum."""

from __future__ import annotations

import warnings

import numpy as np


class NumpyRegister:
    """A register of a numpy signed dtype (np.int8 / np.int16): numpy wraps on overflow."""

    def __init__(self, dtype):
        self.dtype = dtype

    def zero(self):
        return self.dtype(0)

    def add(self, acc, p):
        return acc + self.dtype(p)  # wraps (numpy scalar overflow), warning silenced by caller


class MaskedRegister:
    """b-bit two's complement by hand: keep the low b bits, reinterpret the sign bit."""

    def __init__(self, bits: int):
        self.mask = (1 << bits) - 1
        self.sign = 1 << (bits - 1)
        self.modulus = 1 << bits

    def zero(self):
        return 0

    def add(self, acc, p):
        s = (acc + p) & self.mask
        return s - self.modulus if s & self.sign else s


def register(bits: int):
    if bits == 8:
        return NumpyRegister(np.int8)
    if bits == 16:
        return NumpyRegister(np.int16)
    return MaskedRegister(bits)


def _run(fn):
    with warnings.catch_warnings(), np.errstate(over="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn()


def linear_reference(x, w, bits):
    """x: (N, K), w: (O, K) of ±1 ints; register accumulation of Σ_k x[n,k]·w[o,k]."""
    reg = register(bits)
    x, w = np.asarray(x).tolist(), np.asarray(w).tolist()

    def go():
        out = []
        for row in x:
            out_row = []
            for wrow in w:
                acc = reg.zero()
                for a, b in zip(row, wrow):
                    acc = reg.add(acc, a * b)
                out_row.append(int(acc))
            out.append(out_row)
        return np.array(out, dtype=np.int64)
    return _run(go)


def conv2d_reference(x, w, bits, stride=1, padding=0, dilation=1, groups=1):
    """Explicit-loop conv2d (cross-correlation, zero padding) with a b-bit register."""
    reg = register(bits)
    x, w = np.asarray(x), np.asarray(w)
    n_img, c_in, h, wd = x.shape
    c_out, c_per_group, kh, kw = w.shape
    oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out_per_group = c_out // groups
    xl, wl = x.tolist(), w.tolist()

    def go():
        out = np.zeros((n_img, c_out, oh, ow), dtype=np.int64)
        for n in range(n_img):
            for o in range(c_out):
                g = o // out_per_group
                for i in range(oh):
                    for j in range(ow):
                        acc = reg.zero()
                        for c in range(c_per_group):
                            plane = xl[n][g * c_per_group + c]
                            for a in range(kh):
                                r = i * stride - padding + a * dilation
                                for b in range(kw):
                                    s = j * stride - padding + b * dilation
                                    inside = 0 <= r < h and 0 <= s < wd
                                    product = plane[r][s] * wl[o][c][a][b] if inside else 0
                                    acc = reg.add(acc, product)
                        out[n, o, i, j] = int(acc)
        return out
    return _run(go)


def conv2d_unwrapped(x, w, stride=1, padding=0, dilation=1, groups=1):
    """The same loops with Python integers (no register), to check that overflow occurred."""
    return conv2d_reference(x, w, 62, stride, padding, dilation, groups)


def signs(rng, shape, p_plus=0.5):
    """±1 integers, +1 with probability p_plus (biased signs make large sums, i.e. overflow)."""
    return np.where(rng.random(shape) < p_plus, 1, -1).astype(np.int64)
