"""SCALE-Sim 3.0.0's topology CSV (conv or GEMM rows) as :class:`hwsim.Layer` values, and the layer
shape SCALE-Sim computes with (no padding, its own output size)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..io import MAX_NETWORK_LAYERS
from ..network import Layer, LayerKind

__all__ = ["Shape", "load_topology", "scalesim_shape"]


def load_topology(path: str | Path, gemm: bool = False) -> tuple[Layer, ...]:
    """Read a SCALE-Sim topology CSV (conv, or GEMM ``M, N, K`` rows with ``gemm``) as :class:`Layer` values.

    A conv row ``name, H, W, R, S, C, M, stride,`` becomes a ``conv2d`` layer without padding (SCALE-Sim
    has none); a GEMM row becomes a ``linear`` layer with ``batch = M``, ``in_channels = K`` and
    ``out_channels = N``. A name containing ``DP`` is a depthwise layer that SCALE-Sim splits into one
    single-channel layer per channel; so does this loader. Trailing commas are optional.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: file not found")
    layers: list[Layer] = []
    lines = p.read_text().splitlines()
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.strip().split(",")]
        if cells and cells[-1] == "":
            cells = cells[:-1]
        want = (4, 5) if gemm else (8, 9)
        if len(cells) not in want:
            kind = "name, M, N, K[, N:M]" if gemm else "name, H, W, R, S, C, M, stride[, N:M]"
            raise ConfigError(f"{p}: line {lineno}: expected {kind}, not {line.strip()!r}")
        if len(cells) == want[1] and cells[-1].replace(" ", "") != "1:1":
            raise ConfigError(f"{p}: line {lineno}: sparsity ratio must be 1:1 (sparsity is not supported), "
                              f"not {cells[-1]!r}")
        name = cells[0]
        try:
            nums = [int(c) for c in cells[1:want[0]]]
        except ValueError:
            raise ConfigError(f"{p}: line {lineno}: sizes must be integers, not {line.strip()!r}") from None
        try:
            if gemm:
                m, n, k = nums
                layers.append(Layer(name, LayerKind.LINEAR, in_channels=k, out_channels=n, batch=m))
                continue
            h, w, r, s, c, mm, st = nums
            if r > h or s > w:
                raise ValueError(f"Layer[{name!r}].kernel_h/kernel_w must fit the input {h}x{w}, not {r}x{s}")
            expands = c if "DP" in name else 1
            if len(layers) + expands > MAX_NETWORK_LAYERS:  # checked before a depthwise line is expanded
                raise ValueError(f"network must have at most {MAX_NETWORK_LAYERS} layers, not "
                                 f"{len(layers) + expands} or more (a depthwise line expands to one layer per "
                                 f"channel; docs/limits.md)")
            chans = [(f"{name}Channel_{i}", 1) for i in range(c)] if "DP" in name else [(name, c)]
            for nm, cin in chans:
                layers.append(Layer(nm, LayerKind.CONV2D, in_channels=cin, out_channels=mm, in_h=h, in_w=w,
                                    kernel_h=r, kernel_w=s, stride_h=st, stride_w=st))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{p}: line {lineno}: {exc}") from None
    if not layers:
        raise ConfigError(f"{p}: no layers (the first line is the header)")
    return tuple(layers)


@dataclass(frozen=True, slots=True)
class Shape:
    """A layer as SCALE-Sim sees it: ifmap H x W x C, M filters of R x S, strides, output E_h x E_w."""

    h: int
    w: int
    r: int
    s: int
    c: int
    m: int
    sh: int
    sw: int

    @property
    def eh(self) -> int:
        return -(-(self.h - self.r + self.sh) // self.sh)

    @property
    def ew(self) -> int:
        return -(-(self.w - self.s + self.sw) // self.sw)

    @property
    def npix(self) -> int:
        return self.eh * self.ew

    @property
    def window(self) -> int:
        return self.r * self.s * self.c


def scalesim_shape(layer: Layer) -> Shape:
    """The SCALE-Sim view of a layer; padding is folded into the input size (SCALE-Sim has none)."""
    owner = f"Layer[{layer.name!r}]"
    if layer.kind is LayerKind.LINEAR:
        return Shape(layer.batch, layer.in_channels, 1, layer.in_channels, 1, layer.out_channels, 1, 1)
    if layer.kind is not LayerKind.CONV2D:
        raise ValueError(f"{owner}.kind must be conv2d or linear for SCALE-Sim, not {layer.kind.value!r}")
    if layer.groups != 1 or layer.batch != 1:
        raise ValueError(f"{owner}.groups and batch must be 1 for SCALE-Sim (it has neither), "
                         f"not {(layer.groups, layer.batch)!r}")
    return Shape(layer.in_h + 2 * layer.pad_h, layer.in_w + 2 * layer.pad_w, layer.kernel_h, layer.kernel_w,
                  layer.in_channels, layer.out_channels, layer.stride_h, layer.stride_w)
