"""The one random stream of training: counter-based draws shared by every engine.

Each draw is a hash of the epoch seed and a counter, so it depends only on
its position in the epoch, never on the order in which threads or batches
reach it. The compiled kernel computes the same hashes in C++
(``skbpr/_kernel``); this module computes them with torch integer operations,
on any device, so that a fit of one ``random_state`` draws the same epoch
order and the same negatives whichever engine trains it.

The arithmetic is unsigned 64-bit. torch has no unsigned 64-bit shifts, so
values live in ``int64`` tensors: addition, multiplication and xor wrap
exactly as their unsigned counterparts, and a logical right shift is an
arithmetic one masked to the bits that remain.
"""

from __future__ import annotations

import torch

_MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
PERMUTATION_SALT = 0x5BD1E9955BD1E995
_KEY_STEP = 0x632BE59BD9B4E019


def _signed(value: int) -> int:
    """The int64 with the bits of the unsigned 64-bit ``value``."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def _shr(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of the 64-bit patterns in ``x``."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def mix64_int(z: int) -> int:
    """SplitMix64's finaliser on a Python integer (unsigned 64-bit result)."""
    z = (z + GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def mix64(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser on int64 tensors (bit patterns of unsigned values)."""
    z = z + _signed(GOLDEN)
    z = (z ^ _shr(z, 30)) * _signed(_MIX1)
    z = (z ^ _shr(z, 27)) * _signed(_MIX2)
    return z ^ _shr(z, 31)


def uniform01(seed: int, counter: torch.Tensor) -> torch.Tensor:
    """Uniform float64 draws in ``[0, 1)``, one per counter, for this ``seed``."""
    bits = mix64(mix64(counter) ^ _signed(seed))
    return _shr(bits, 11).to(torch.float64) * 2.0**-53


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch of a fit seeded with ``seed`` (unsigned 64-bit)."""
    return mix64_int(mix64_int(seed) ^ epoch)


def permutation(n: int, seed: int, positions: torch.Tensor | None = None, *, device=None) -> torch.Tensor:
    """The epoch order: sample index at each of ``positions`` (default ``0..n-1``).

    A 4-round Feistel network on the smallest even number of bits that
    covers ``n``, with cycle walking, keyed by ``seed``: a bijection of
    ``[0, n)`` whose value at a position needs no other position.
    """
    if positions is None:
        positions = torch.arange(n, dtype=torch.int64, device=device)
    bits = 2
    while (1 << bits) < n:
        bits += 2
    half = bits // 2
    mask = (1 << half) - 1
    salted = (seed ^ PERMUTATION_SALT) & _MASK64
    keys = [_signed(mix64_int(salted + _KEY_STEP * (k + 1))) for k in range(4)]
    out = positions.to(torch.int64).clone()
    todo = torch.arange(out.numel(), device=out.device)
    x = out
    while todo.numel():
        left, right = x >> half, x & mask
        for key in keys:
            left, right = right, left ^ (mix64(right ^ key) & mask)
        x = (left << half) | right
        out[todo] = x
        walk = x >= n
        todo, x = todo[walk], x[walk]
    return out
