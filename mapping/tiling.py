"""Executing a layer mapping tile by tile: which slices each DRAM tile covers, in loop order, and a
functional run of a convolution that follows them (partial sums accumulated across reduction tiles).

This is how the tests check that a schedule is *correct*, not just cheap: the tiles of a mapping cover
every loop exactly once, and the tiled result equals :func:`hwsim.golden.conv2d` of the whole layer.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from hwsim.golden import conv2d
from hwsim.network import Layer, LayerKind
from hwsim.schedule import LOOPS, LayerMapping, Tile

__all__ = ["tile_visits", "run_tiled_conv2d"]


def tile_visits(layer: Layer, mapping: LayerMapping) -> Iterator[tuple[int, dict[str, range]]]:
    """``(group, {loop: range})`` of every DRAM tile, in the mapping's loop order (groups outermost)."""
    whole = Tile.whole(layer)
    tile = mapping.tile
    starts = {d: range(0, getattr(whole, d), min(getattr(tile, d), getattr(whole, d))) for d in LOOPS}
    for g in range(layer.groups):
        for idx in itertools.product(*(starts[d] for d in mapping.loop_order)):
            pos = dict(zip(mapping.loop_order, idx, strict=True))
            yield g, {d: range(pos[d], min(pos[d] + getattr(tile, d), getattr(whole, d))) for d in LOOPS}


def run_tiled_conv2d(layer: Layer, mapping: LayerMapping, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The layer's integer output computed tile by tile following ``mapping`` (exact int64 sums).

    ``x`` is NCHW (``(batch, in_channels)`` for a linear layer), ``w`` is PyTorch's MCRS (``(out, in)``).
    """
    lin = layer.kind is LayerKind.LINEAR
    if lin:
        x, w = x.reshape(*x.shape, 1, 1), w.reshape(*w.shape, 1, 1)
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    sh, sw, ph, pw = layer.stride_h, layer.stride_w, layer.pad_h, layer.pad_w
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cg, mg = layer.in_channels // layer.groups, layer.out_channels // layer.groups
    out = np.zeros((layer.batch, layer.out_channels, layer.out_h, layer.out_w), dtype=np.int64)
    for g, r in tile_visits(layer, mapping):
        n, m, c, p, q = (r[d] for d in LOOPS)
        xs = xp[n.start:n.stop, g * cg + c.start:g * cg + c.stop,
                p.start * sh:(p.stop - 1) * sh + layer.kernel_h, q.start * sw:(q.stop - 1) * sw + layer.kernel_w]
        ws = w[g * mg + m.start:g * mg + m.stop, c.start:c.stop]
        out[n.start:n.stop, g * mg + m.start:g * mg + m.stop, p.start:p.stop, q.start:q.stop] += conv2d(
            xs, ws, stride=(sh, sw), acc_bits=63)
    return out.reshape(out.shape[0], out.shape[1]) if lin else out
