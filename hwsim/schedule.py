"""The schedule: how every layer is folded onto the array and tiled through the SRAM buffers.

Loop nest of a layer (per convolution group): ``n`` batch, ``m`` output channels, ``c`` input channels,
``p`` output rows, ``q`` output columns; kernels are never split. A :class:`Tile` gives the slice of each
loop held in the SRAM buffers at once; ``loop_order`` orders the tile loops outermost first.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .accelerator import Accelerator, Dataflow
from .errors import check_choice, check_int
from .kinds import kind_model
from .network import Layer, Network

__all__ = ["Tile", "LayerMapping", "Schedule", "LOOPS", "GROUPINGS", "footprints_bytes", "halo_extent", "default_mapping",
           "default_schedule", "tile_fits"]

LOOPS = "nmcpq"
GROUPINGS = ("grouped", "naive")


@dataclass(frozen=True, slots=True)
class Tile:
    n: int
    m: int
    c: int
    p: int
    q: int

    def __post_init__(self) -> None:
        for f in LOOPS:
            check_int("Tile", f, getattr(self, f), 1)

    @staticmethod
    def whole(layer: Layer) -> Tile:
        """The whole loop nest of one convolution group as a tile (memoised: layers are frozen values)."""
        return _whole_tile(layer)

    def counts(self, layer: Layer) -> dict[str, int]:
        """Trip count of every tile loop."""
        whole = Tile.whole(layer)
        return {d: math.ceil(getattr(whole, d) / getattr(self, d)) for d in LOOPS}


@functools.lru_cache(maxsize=4096)
def _whole_tile(layer: Layer) -> Tile:
    g = layer.groups
    return Tile(layer.batch, layer.out_channels // g, layer.in_channels // g, layer.out_h, layer.out_w)


@dataclass(frozen=True, slots=True)
class LayerMapping:
    layer: str
    dataflow: Dataflow
    tile: Tile
    loop_order: str = "nmpqc"
    grouping: str = "grouped"

    def __post_init__(self) -> None:
        owner = f"LayerMapping[{self.layer!r}]"
        try:
            object.__setattr__(self, "dataflow", Dataflow(self.dataflow))
        except ValueError:
            raise ValueError(f"{owner}.dataflow must be one of {[d.value for d in Dataflow]}, "
                             f"not {self.dataflow!r}") from None
        if sorted(self.loop_order) != sorted(LOOPS):
            raise ValueError(f"{owner}.loop_order must be a permutation of {LOOPS!r}, not {self.loop_order!r}")
        check_choice(owner, "grouping", self.grouping, GROUPINGS)

    def check_layer(self, layer: Layer) -> None:
        """Check the tile against its layer's extents; raise naming the field otherwise."""
        whole = Tile.whole(layer)
        for d in LOOPS:
            check_int(f"LayerMapping[{self.layer!r}]", f"tile.{d}", getattr(self.tile, d), 1, getattr(whole, d))

    def validate(self, layer: Layer, acc: Accelerator) -> None:
        """Check the mapping against its layer and accelerator; raise naming the field otherwise."""
        owner = f"LayerMapping[{self.layer!r}]"
        if self.dataflow not in acc.dataflows:
            raise ValueError(f"{owner}.dataflow must be one of the accelerator's {[d.value for d in acc.dataflows]}, "
                             f"not {self.dataflow.value!r}")
        self.check_layer(layer)
        fit = tile_fits(layer, self.tile, acc)
        if fit is not None:
            raise ValueError(f"{owner}.tile {fit}")


def halo_extent(layer: Layer, p: Any, q: Any, minimum: Callable[[Any, Any], Any] = min) -> tuple[Any, Any]:
    """Input rows and columns a tile of ``p x q`` output pixels spans, halo and zero padding included."""
    return (minimum((p - 1) * layer.stride_h + layer.kernel_h, layer.in_h + 2 * layer.pad_h),
            minimum((q - 1) * layer.stride_w + layer.kernel_w, layer.in_w + 2 * layer.pad_w))


def footprints_bytes(layer: Layer, tile: Tile | Sequence[Any], acc: Accelerator) -> dict[str, Any]:
    """Bytes one tile occupies in each buffer at the layer's bitwidths (packed bits, rounded up; whole words
    per element in a buffer that is not ``packed``).

    The one footprint rule (the tiler, the mapper's vectorised filter and the engine use it). ``tile`` is
    a :class:`Tile` or a sequence of five extents ``n m c p q`` (ints or numpy arrays). The ifmap tile
    includes the halo a kernel needs; filters are counted at the widest channel, compressed when pruned;
    the ofmap tile holds partial sums at ``acc_bits`` while the reduction is split over several tiles
    (one per bit plane for BWA), and final values at ``out_bits`` otherwise.
    """
    n, m, c, p, q = (getattr(tile, d) for d in LOOPS) if isinstance(tile, Tile) else tile
    scalar = all(isinstance(v, int) for v in (n, m, c, p, q))  # the tiler's inner loop: plain integers
    minimum, where = (min, _pick) if scalar else (np.minimum, np.where)
    ih, iw = halo_extent(layer, p, q, minimum)
    n_in = 2 if layer.kind.value == "eltwise" else 1
    cin = c if layer.has_macs else m
    acc_bits = acc.pe.acc_bits
    ifmap_bits = n_in * n * cin * ih * iw * acc.ifmap_sram.stored_bits(layer.act_bits)
    # a matmul's second operand is held in the filter buffer at its own width
    filt_bits = -(-(m * c * layer.kernel_h * layer.kernel_w
                    * acc.filter_sram.stored_bits(layer.compressed_bits(layer.weight_bits)) * int(layer.has_macs)) // 1)
    split_k = (c < layer.in_channels // layer.groups) & layer.has_macs
    store = acc.ofmap_sram.stored_bits
    out_b = where(split_k, store(acc_bits), store(layer.out_bits)) if layer.bit_scales == 0 else \
        store(acc_bits) * layer.bit_scales
    ofmap_bits = n * m * p * q * out_b
    fp = {"ifmap_sram": -(-ifmap_bits // 8), "filter_sram": -(-filt_bits // 8), "ofmap_sram": -(-ofmap_bits // 8)}
    return {k: int(v) for k, v in fp.items()} if scalar else fp


def _pick(cond: bool, yes: int, no: int) -> int:
    return yes if cond else no


def tile_fits(layer: Layer, tile: Tile, acc: Accelerator) -> str | None:
    """``None`` if the tile fits every buffer twice over (double buffering) and splits the reduction only
    where the accelerator can, else the reason."""
    whole_c = layer.in_channels // layer.groups
    if not acc.split_reduction and layer.has_macs and tile.c < whole_c:
        return (f"splits the reduction (tile.c={tile.c} of {whole_c}), which {acc.name!r} cannot "
                f"(split_reduction: false)")
    fp = footprints_bytes(layer, tile, acc)
    for buf, need in fp.items():
        cap = getattr(acc, buf).size_bytes // 2
        if need > cap:
            return (f"needs {need} bytes of {buf} per buffer half, but {buf}.size_bytes={getattr(acc, buf).size_bytes} "
                    f"holds {cap} per half (double buffering)")
    return None


def default_mapping(layer: Layer, acc: Accelerator, dataflow: Dataflow | None = None,
                    footprint: Callable[[Layer, list[int]], Mapping[str, int]] | None = None) -> LayerMapping:
    """A simple fold that needs no search: the whole layer if it fits; else, while a buffer overflows,
    halve the largest loop that buffer's tile depends on (ties: output rows, filters, columns, batch, then
    the reduction). Per-channel widths are grouped on PEs whose cycles depend on weight bits, kept in
    order elsewhere. The mapper (``mapping.map_network``) searches properly; this is its baseline.
    ``footprint(layer, [n, m, c, p, q])`` (default :func:`footprints_bytes`) gives a tile's bytes per buffer
    for hardware that stores it otherwise (the RTL core keeps one element per word). The reduction ``c`` is
    split only where ``acc.split_reduction``."""
    flow = dataflow or acc.dataflows[0]
    t = Tile.whole(layer)
    sizes = {d: getattr(t, d) for d in LOOPS}
    depends = {"ifmap_sram": "pqnc" if layer.has_macs else "pqnm", "filter_sram": "mc", "ofmap_sram": "pmqn"}
    while True:
        ext = [sizes[d] for d in LOOPS]
        fp = footprints_bytes(layer, ext, acc) if footprint is None else footprint(layer, ext)
        over = [b for b in depends if fp[b] > getattr(acc, b).size_bytes // 2]
        if not over:
            break
        dims = "".join(depends[b] for b in over)
        free = "pmqnc" if acc.split_reduction or not layer.has_macs else "pmqn"
        cands = [d for d in free if d in dims and sizes[d] > 1]
        if not cands and footprint is None and acc.split_reduction:
            raise ValueError(f"Layer[{layer.name!r}]: buffers too small to hold even a 1x1x1x1x1 tile: "
                             f"{tile_fits(layer, Tile(**sizes), acc)}")
        if not cands:
            b = over[0]
            raise ValueError(f"Layer[{layer.name!r}]: no tile splitting only {list(free)} fits {b}: it needs "
                             f"{fp[b]} bytes per buffer half, which holds {getattr(acc, b).size_bytes // 2}")
        d = max(cands, key=lambda x: (sizes[x], -"pmqnc".index(x)))
        sizes[d] = -(-sizes[d] // 2)
    # Grouping channels by width only pays where weight bits set the cycles; elsewhere it just fragments folds.
    grouping = "grouped" if kind_model(acc.pe).weight_bits_set_cycles else "naive"
    return LayerMapping(layer.name, flow, Tile(**sizes), grouping=grouping)


@dataclass(frozen=True, slots=True)
class Schedule:
    network: Network
    mappings: tuple[LayerMapping, ...]

    def __post_init__(self) -> None:
        maps = tuple(self.mappings)
        object.__setattr__(self, "mappings", maps)
        names = [la.name for la in self.network.layers]
        got = [m.layer for m in maps]
        if got != names:
            missing = sorted(set(names) - set(got))
            extra = sorted(set(got) - set(names))
            raise ValueError(f"Schedule.mappings must map every layer of {self.network.name!r} once, in order; "
                             f"missing {missing}, unknown {extra}")
        for la, m in zip(self.network.layers, maps, strict=True):   # a tile within its layer, before any use
            m.check_layer(la)

    def mapping_for(self, layer_name: str) -> LayerMapping:
        for m in self.mappings:
            if m.layer == layer_name:
                return m
        raise KeyError(layer_name)

    def to_dict(self) -> dict[str, Any]:
        from .io import network_to_dict
        return {"network": network_to_dict(self.network),
                "mappings": [{"layer": m.layer, "dataflow": m.dataflow.value, "tile": asdict(m.tile),
                              "loop_order": m.loop_order, "grouping": m.grouping} for m in self.mappings]}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<schedule>") -> Schedule:
        from .io import network_from_dict
        net = network_from_dict(d["network"], source)
        maps = tuple(LayerMapping(m["layer"], Dataflow(m["dataflow"]), Tile(**m["tile"]), m["loop_order"],
                                  m["grouping"]) for m in d["mappings"])
        return cls(net, maps)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def default_schedule(network: Network, acc: Accelerator) -> Schedule:
    return Schedule(network, tuple(default_mapping(la, acc) for la in network.layers))
