"""What the accelerator core (:mod:`rtl.core`) runs: its parameters derived from an ``hwsim.Accelerator``,
the descriptor format, and the host-side compiler that turns one layer's ``LayerMapping`` into the
descriptor stream and the DRAM transfer table. Plain Python and numpy (no Amaranth), so the CLI can
check a schedule against the core before anything is built.

The compiler walks the DRAM tiles exactly as ``hwsim.engine`` does (convolution group outermost, then
``loop_order``; an operand is loaded only when a loop it depends on changes) and emits one *phase*
descriptor per period of the double-buffered pipeline:

* phase 0 loads tile 0; phase ``j`` (1..T) computes tile ``j-1`` while the DMA loads tile ``j`` and
  writes back tile ``j-2``; phase ``T+1`` writes back the last tile.

Storage convention of the core: one element per SRAM word (``word_bits`` >= the element's width), so
the core counts SRAM accesses in elements; the engine counts ``elements * bits / word_bits`` words. The
two agree exactly when a buffer's ``word_bits`` equals its elements' width.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwsim.accelerator import Accelerator, Dataflow, Interconnect
from hwsim.area import BufferGeometry, core_buffer
from hwsim.network import Layer
from hwsim.schedule import LOOPS, LayerMapping, Tile, default_mapping, halo_extent

from .params import PE_KINDS, array_acc_bits_needed

__all__ = ["CoreParams", "phase_fields", "slot_fields", "N_SLOTS", "COUNTER_BITS", "TAG", "Transfer", "Phase", "LayerProgram",
           "compile_layer", "check_counts", "core_mapping", "tile_words", "tile_limits", "core_tiles", "check_layer", "pack_descriptor", "requantize", "choose_shift", "BUFFERS", "COUNTERS"]

BUFFERS = ("ifmap", "filter", "ofmap")
N_SLOTS = 3            # DMA transfers per phase: ifmap load, filter load, ofmap write-back
COUNTER_BITS = 32      # the core's event counters: one layer's counts (the host checks they fit, check_counts)
MIN_DIM_BITS = 12      # a tile extent / coordinate field holds at least a 4095-wide layer input
TAG = 20               # bits of a transfer tag (the external memory side's index of the transfer)
MAX_WORDS_PER_HALF = 1 << 24   # the widest SRAM address the core builds
MAX_BANKS = 64                 # memories per buffer half the core builds
COUNTERS = ("cycles", "compute_cycles", "fill_cycles", "stall_cycles", "ifmap_sram_reads", "ifmap_sram_writes",
            "filter_sram_reads", "filter_sram_writes", "ofmap_sram_reads", "ofmap_sram_writes", "dram_read_bits",
            "dram_write_bits")


# The ifmap buffer's address of an im2col entry is a pixel's part plus a reduction element's part, each
# moved on by adding a stride (no multiplier in the core): the pixel part starts at ``a0`` and moves by
# ``sw`` along a row, ``a_p`` to the next output row, ``a_n`` to the next image; the reduction part starts
# at 0 and moves by 1 along a kernel row, ``a_h`` to the next kernel row, ``a_c`` to the next channel.
# Each is stored modulo 2**cnt (addresses wrap at the buffer's address width, so a negative one is exact).
IFMAP_STRIDES = ("a0", "a_p", "a_n", "a_h", "a_c")


def ifmap_strides(top: int, left: int, ylo: int, xlo: int, ih: int, iw: int, tc: int, tp: int, tq: int,
                  kh: int, kw: int, sh: int, sw: int) -> dict[str, int]:
    """The :data:`IFMAP_STRIDES` of a tile whose ifmap block (``tc`` channels of ``ih x iw`` from input row
    ``ylo`` and column ``xlo``, images outer) is read for ``tp x tq`` output pixels whose first window
    starts at (``top``, ``left``), unwrapped (negative where a stride moves back)."""
    return {"a0": (top - ylo) * iw + left - xlo, "a_p": sh * iw - (tq - 1) * sw,
            "a_n": tc * ih * iw - (tp - 1) * sh * iw - (tq - 1) * sw,
            "a_h": iw - (kw - 1), "a_c": ih * iw - (kh - 1) * iw - (kw - 1)}


def phase_fields(cnt: int, dim: int) -> tuple[tuple[str, int, bool], ...]:
    """(name, bits, signed) of one phase descriptor for a core whose element counts and SRAM addresses take
    ``cnt`` bits and tile extents and coordinates ``dim`` (:attr:`CoreParams.cnt_bits`, ``dim_bits``)."""
    return (
        ("end", 1, False), ("compute", 1, False), ("P", cnt, False), ("K", cnt, False), ("tm", dim, False),
        ("tn", dim, False), ("tp", dim, False), ("tq", dim, False), ("kh", 8, False),
        ("kw", 8, False), ("sh", 8, False), ("sw", 8, False), ("gy0", dim + 1, True), ("gx0", dim + 1, True),
        *((name, cnt, False) for name in IFMAP_STRIDES), ("in_h", dim, False), ("in_w", dim, False), ("hi", 1, False), ("hf", 1, False), ("ho", 1, False), ("pa", 6, False),
        ("pw", 6, False), ("sgn", 1, False), ("osg", 1, False), ("shift", 7, False), ("ob", 6, False),
        ("n_slots", 2, False), ("ws", 1, False),
    )


def slot_fields(cnt: int) -> tuple[tuple[str, int, bool], ...]:
    """(name, bits, signed) of one DMA transfer slot of a phase descriptor (fields ``s{i}_{name}``)."""
    return (("dir", 1, False), ("buf", 2, False), ("half", 1, False), ("count", cnt, False), ("lanes", 8, False),
            ("bits", 6, False), ("tag", TAG, False))


def pack_descriptor(values: dict[str, int], fields: tuple[tuple[str, int, bool], ...]) -> int:
    """The descriptor as one integer, ``fields`` (:meth:`CoreParams.descriptor_fields`) from the least
    significant bits (missing fields are 0)."""
    word, pos = 0, 0
    for name, bits, signed in fields:
        v = int(values.get(name, 0))
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        if not lo <= v <= hi:
            raise ValueError(f"descriptor.{name} must fit {bits} bits, not {v!r}")
        word |= (v & ((1 << bits) - 1)) << pos
        pos += bits
    return word


@dataclass(frozen=True, slots=True)
class CoreParams:
    """The core generated for an accelerator: its array, buffers (two halves each, ``banks`` ports per
    half), DRAM link width and longest fold. Built by :meth:`from_accelerator`, which rejects what the
    core cannot build with one line naming the field."""

    name: str
    rows: int
    cols: int
    kind: str
    weight_bits: int
    act_bits: int
    acc_bits: int
    signed_act: bool
    link_bits: int
    max_steps: int
    ifmap: BufferGeometry
    filter: BufferGeometry
    ofmap: BufferGeometry
    dataflows: tuple[str, ...] = ("os",)

    @staticmethod
    def from_accelerator(acc: Accelerator) -> CoreParams:
        o = f"Accelerator[{acc.name!r}]"
        if acc.pe.kind.value not in PE_KINDS:
            raise ValueError(f"{o}.pe.kind must be one of {list(PE_KINDS)} for the RTL core, not {acc.pe.kind.value!r}")
        if acc.interconnect is not Interconnect.BROADCAST:
            raise ValueError(f"{o}.interconnect must be 'broadcast' for the RTL core, not {acc.interconnect.value!r}")
        flows = tuple(d.value for d in acc.dataflows if d in (Dataflow.OS, Dataflow.WS))
        if not flows:
            raise ValueError(f"{o}.dataflows must include 'os' or 'ws' for the RTL core, not "
                             f"{[d.value for d in acc.dataflows]}")
        bw = acc.dram.bandwidth_bytes_per_cycle
        if bw != int(bw) or bw > 64:
            raise ValueError(f"{o}.dram.bandwidth_bytes_per_cycle must be a whole number of bytes in [1, 64] for the "
                             f"RTL core's link, not {bw!r}")
        W, A = acc.pe.max_weight_bits, acc.pe.max_act_bits
        max_steps = 1 << min(12, acc.pe.acc_bits - W - A)   # the longest fold whose sum cannot overflow
        assert array_acc_bits_needed(W, A, max_steps) <= acc.pe.acc_bits
        geo = {}
        for buf, elem in (("ifmap", A), ("filter", W), ("ofmap", 1)):
            spec = getattr(acc, f"{buf}_sram")
            if spec.word_bits < elem:
                raise ValueError(f"{o}.{buf}_sram.word_bits must be >= {elem} (the core keeps one element per "
                                 f"word), not {spec.word_bits!r}")
            g = geo[buf] = core_buffer(acc, buf)   # a packed buffer as narrow banks
            if g.words_per_half > MAX_WORDS_PER_HALF or g.banks > MAX_BANKS:
                k = spec.word_bits // g.word_bits
                why = f" (a packed word is {k} narrow banks)" if k > 1 else ""
                raise ValueError(f"{o}.{buf}_sram must give the RTL core at most {MAX_WORDS_PER_HALF} words per half and "
                                 f"{MAX_BANKS} banks{why}, not {g.words_per_half} and {g.banks}")
        return CoreParams(f"core_{acc.pe.kind.value}_r{acc.rows}c{acc.cols}", acc.rows, acc.cols, acc.pe.kind.value,
                          W, A, acc.pe.acc_bits, acc.pe.signed_act, int(bw) * 8, max_steps, geo["ifmap"],
                          geo["filter"], geo["ofmap"], flows)

    def geometry(self, buf: str) -> BufferGeometry:
        return {"ifmap": self.ifmap, "filter": self.filter, "ofmap": self.ofmap}[buf]

    @property
    def cnt_bits(self) -> int:
        """Bits of an element count or SRAM address: enough for the largest buffer half's word count (a
        tile's ``P``, ``K`` and every transfer's count are at most that, as the tile fits its buffers)."""
        return max(g.words_per_half for g in (self.ifmap, self.filter, self.ofmap)).bit_length()

    @property
    def dim_bits(self) -> int:
        """Bits of a tile extent or coordinate: a tile's extents fit :attr:`cnt_bits`; the layer's input
        height and width need at least ``MIN_DIM_BITS``."""
        return max(MIN_DIM_BITS, self.cnt_bits)

    def descriptor_fields(self) -> tuple[tuple[str, int, bool], ...]:
        """(name, bits, signed) of this core's phase descriptor, slot fields as ``s{i}_{name}``, first field
        in the least significant bits."""
        return phase_fields(self.cnt_bits, self.dim_bits) + tuple(
            (f"s{i}_{n}", b, sg) for i in range(N_SLOTS) for n, b, sg in slot_fields(self.cnt_bits))


@dataclass(frozen=True, slots=True)
class Transfer:
    """One DMA transfer: ``indices`` are flat element indices into the layer's ``tensor`` (``x``, ``w`` or
    ``y``) in the order they cross the link; ``direction`` ``read`` (DRAM -> SRAM) or ``write``."""

    tensor: str
    direction: str
    bits: int
    indices: np.ndarray


@dataclass(frozen=True, slots=True)
class Phase:
    fields: dict[str, int]


@dataclass(frozen=True, slots=True)
class LayerProgram:
    layer: Layer
    mapping: LayerMapping
    phases: tuple[Phase, ...]
    transfers: tuple[Transfer, ...]
    shift: int
    out_signed: bool
    folds: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    words: tuple[int, ...] = ()   # the phases packed in the core's descriptor fields (CoreParams.descriptor_fields)

    def descriptors(self) -> list[int]:
        return list(self.words)


def check_counts(core: CoreParams, prog: LayerProgram, max_cycles: int) -> None:
    """Refuse a layer whose counts could pass the core's ``COUNTER_BITS``-bit counters when it runs for
    at most ``max_cycles``: cycle counts are at most that, a buffer's accesses at most one per port per half
    and cycle, DRAM bits exactly what the transfers move."""
    dram = {d: sum(int(t.indices.size) * t.bits for t in prog.transfers if t.direction == d) for d in ("read", "write")}
    bounds = {"cycles": max_cycles, "dram_read_bits": dram["read"], "dram_write_bits": dram["write"]}
    bounds.update({f"{buf}_sram_reads": max_cycles * 2 * core.geometry(buf).banks for buf in BUFFERS})
    for key, bound in bounds.items():
        if bound >= 1 << COUNTER_BITS:
            raise ValueError(f"Layer[{prog.layer.name!r}]: its {key} may reach {bound}, past the core's "
                             f"{COUNTER_BITS}-bit counters (at most {(1 << COUNTER_BITS) - 1}; cycle bound "
                             f"{max_cycles})")


def requantize(acc: np.ndarray, shift: int, out_bits: int, signed: bool) -> np.ndarray:
    """What the core writes for an accumulator value: arithmetic shift right by ``shift`` (floor), then
    clip to the ``out_bits`` range (two's complement when ``signed``, else ``[0, 2**out_bits - 1]``)."""
    v = np.asarray(acc, dtype=np.int64) >> np.int64(shift)
    lo, hi = (-(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1) if signed else (0, (1 << out_bits) - 1)
    return np.clip(v, lo, hi)


def choose_shift(acc: np.ndarray, out_bits: int, signed: bool) -> int:
    """The smallest shift that brings the largest magnitude of ``acc`` into the ``out_bits`` range."""
    peak = int(np.max(np.abs(acc))) if acc.size else 0
    room = out_bits - 1 if signed else out_bits
    return max(0, peak.bit_length() - room)


def check_layer(core: CoreParams, layer: Layer) -> None:
    """Reject a layer this core cannot execute under any mapping (its kind and widths): one line naming the
    layer and the limit."""
    o = f"Layer[{layer.name!r}]"
    if not layer.has_macs or not layer.has_stored_weights:
        raise ValueError(f"{o}.kind must be conv2d or linear for the RTL core, not {layer.kind.value!r}")
    if layer.weight_bits > core.weight_bits or layer.act_bits > core.act_bits:
        raise ValueError(f"{o}: weight_bits={layer.weight_bits}, act_bits={layer.act_bits} exceed the core's "
                         f"pe.max_weight_bits={core.weight_bits}, pe.max_act_bits={core.act_bits}")
    if layer.out_bits > min(core.ofmap.word_bits, core.acc_bits):
        raise ValueError(f"{o}.out_bits must be <= {min(core.ofmap.word_bits, core.acc_bits)} (ofmap_sram.word_bits "
                         f"and pe.acc_bits), not {layer.out_bits}")
    if layer.channel_weight_bits is not None:
        raise ValueError(f"{o}.channel_weight_bits: per-channel weight widths are not built into the RTL core")
    if layer.weight_density != 1.0:
        raise ValueError(f"{o}.weight_density must be 1 on the RTL core (compressed weights are not built), "
                         f"not {layer.weight_density!r}")
    if layer.bit_scales:
        raise ValueError(f"{o}.bit_scales must be 0 on the RTL core (BWA's scale unit is not built), "
                         f"not {layer.bit_scales!r}")
    for what, bits in (("act_bits", layer.act_bits), ("weight_bits", layer.weight_bits),
                       ("out_bits", layer.out_bits)):
        if bits > core.link_bits:
            raise ValueError(f"{o}.{what}={bits} is wider than the core's DRAM link of {core.link_bits} bits "
                             f"(dram.bandwidth_bytes_per_cycle * 8)")
    reduction = Tile.whole(layer).c * layer.kernel_h * layer.kernel_w
    if "ws" not in core.dataflows and reduction > core.max_steps:   # a WS fold's steps are pixels: any layer fits
        raise ValueError(f"{o}: its reduction of {reduction} steps is past an OS fold's max_steps={core.max_steps} "
                         f"(pe.acc_bits={core.acc_bits}), and the core splits no reduction; WS (dataflows) would run it")


def _check(core: CoreParams, layer: Layer, mapping: LayerMapping, acc: Accelerator) -> None:
    """Reject what this core cannot execute: one line naming the layer and the limit."""
    o = f"Layer[{layer.name!r}]"
    check_layer(core, layer)
    if mapping.dataflow.value not in core.dataflows:
        raise ValueError(f"{o}: dataflow {mapping.dataflow.value!r} is not built into the RTL core "
                         f"(it has {list(core.dataflows)})")
    mapping.validate(layer, acc)
    t = mapping.tile
    limits = tile_limits(core, layer, mapping.dataflow, np.array([dataclasses.astuple(t)]))
    for name, (value, bound) in limits.items():
        v, bnd = int(value[0]), int(np.broadcast_to(bound, value.shape)[0])
        if v > bnd:
            raise ValueError(_limit_message(core, layer, name, v, bnd))


def _limit_message(core: CoreParams, layer: Layer, name: str, value: int, bound: int) -> str:
    """The compiler's one line for a tile past the core's limit ``name`` of :func:`tile_limits`."""
    o = f"Layer[{layer.name!r}]"
    if name == "whole_reduction":
        return (f"{o}.tile.c must be the whole reduction {value} on the RTL core (split reductions need "
                f"partial-sum accumulation, not built), not {bound}")
    if name == "steps":
        return f"{o}: a fold of {value} steps exceeds the core's max_steps={bound} (pe.acc_bits={core.acc_bits})"
    if name == "ws_cols":
        return (f"{o}: WS needs {value} ofmap ports (one partial sum per column and cycle), the core has {bound} "
                f"(ofmap_sram.banks times the partial sums a packed word holds; a WS tile of tile.m <= {bound}, or OS, "
                f"runs)")
    if name == "drain":
        return (f"{o}: the core's {core.ofmap.banks} ofmap ports (ofmap_sram.banks times the partial sums a packed "
                f"word holds) drain a fold's results in {value} cycles, but the next fold is done after {bound}")
    buf = name.removesuffix("_words")
    g = core.geometry(buf)
    return (f"{o}.tile needs {value} words of {buf}_sram per half, but the core holds {bound} ({buf}_sram: one "
            f"element per {g.word_bits}-bit word, double buffered)")


def tile_words(layer: Layer, tile: list[Any]) -> dict[str, Any]:
    """SRAM words a tile ``[n, m, c, p, q]`` (ints, or arrays of tiles) takes in each buffer half of the
    core (one element per word; the ifmap tile includes the kernel's halo)."""
    n, m, c, p, q = tile
    ih, iw = halo_extent(layer, p, q, np.minimum)
    return {"ifmap": n * c * ih * iw, "filter": m * c * layer.kernel_h * layer.kernel_w, "ofmap": n * p * q * m}


def tile_limits(core: CoreParams, layer: Layer, dataflow: Dataflow,
                tiles: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray | int]]:
    """The core's tile-dependent limits under ``dataflow``, in the order the compiler checks them: per limit
    ``(value, bound)``, per tile (rows ``n m c p q``), the tile runs where ``value <= bound`` for every one.
    ``whole_reduction`` (the layer's reduction, at most the tile's: no split reductions), ``steps`` of a fold
    (at most ``max_steps``), ``<buffer>_words`` per buffer half (one element per word), and in WS ``ws_cols``
    (partial sums a step writes per cycle, at most the ofmap's banks), in OS ``drain`` (a fold's drain cycles,
    at most the next fold's). One computation for the compiler's refusals and the mapper's filter
    (:func:`core_tiles`)."""
    n, m, c, p, q = (tiles[:, i].astype(np.int64) for i in range(5))
    npq = n * p * q
    ws = dataflow is Dataflow.WS
    steps = npq if ws else c * layer.kernel_h * layer.kernel_w
    cols = np.minimum(core.cols, m)
    words = tile_words(layer, [n, m, c, p, q])
    out: dict[str, tuple[np.ndarray, np.ndarray | int]] = {
        "whole_reduction": (np.full(len(tiles), Tile.whole(layer).c), c), "steps": (steps, core.max_steps),
        **{f"{b}_words": (w, core.geometry(b).words_per_half) for b, w in words.items()}}
    if ws:
        out["ws_cols"] = (cols, core.ofmap.banks)
    else:
        out["drain"] = (-(-np.minimum(core.rows, npq) * cols // core.ofmap.banks),
                        1 + steps * _step_cycles(core, layer))
    return out


def core_tiles(core: CoreParams, layer: Layer, dataflow: Dataflow, tiles: np.ndarray) -> np.ndarray:
    """Which of ``tiles`` (rows ``n m c p q``) the core executes under ``dataflow`` (a boolean per tile): every
    limit of :func:`tile_limits` met, vectorised for the mapper (``hwsim map --for-rtl``); the layer's own
    limits (kinds, widths) are :func:`check_layer`'s."""
    ok = np.full(len(tiles), dataflow.value in core.dataflows)
    for value, bound in tile_limits(core, layer, dataflow, tiles).values():
        ok &= value <= bound
    return ok


def core_mapping(core: CoreParams, layer: Layer, acc: Accelerator) -> LayerMapping:
    """``hwsim.schedule.default_mapping`` with the core's capacity: tiles halved until they fit its buffers
    in its own words (one element per word), a whole reduction per tile."""
    def footprint(la: Layer, tile: list[int]) -> dict[str, int]:
        return {f"{b}_sram": w * core.geometry(b).word_bits // 8 for b, w in tile_words(la, tile).items()}

    return default_mapping(layer, dataclasses.replace(acc, split_reduction=False), footprint=footprint)


def _step_cycles(core: CoreParams, layer: Layer) -> int:
    if core.kind == "parallel":
        return 1
    if core.kind == "serial_both":
        return layer.act_bits * layer.weight_bits
    return layer.act_bits


def _lanes(core: CoreParams, buf: str, bits: int) -> int:
    return max(1, min(core.geometry(buf).banks, core.link_bits // bits))


def compile_layer(core: CoreParams, layer: Layer, mapping: LayerMapping, acc: Accelerator, shift: int = 0,
                  out_signed: bool | None = None, act_signed: bool | None = None) -> LayerProgram:
    """The descriptor stream and transfer table that run ``layer`` under ``mapping`` on ``core``.

    ``act_signed`` (default ``pe.signed_act``) is the activations' mode in the array, set per layer: a
    trained model streams unsigned codes (``[0, 2**act_bits - 1]``) on a core built signed. ``out_signed``
    (default the same) is the clip range of the requantised results.

    Tensors (PyTorch layouts, flat row-major indices): ``x`` (N, C, H, W), ``w`` (M, C/g, KH, KW),
    ``y`` (N, M, OH, OW). Raises ``ValueError`` (one line naming the layer and the limit) if the core
    cannot execute the mapping.
    """
    _check(core, layer, mapping, acc)
    a_sgn = core.signed_act if act_signed is None else act_signed
    sgn = a_sgn if out_signed is None else out_signed
    whole = Tile.whole(layer)
    tile = Tile(*(min(getattr(mapping.tile, d), getattr(whole, d)) for d in LOOPS))
    counts = tile.counts(layer)
    order = mapping.loop_order
    G = layer.groups
    cg, mg = layer.in_channels // G, layer.out_channels // G
    KH, KW, sh, sw, ph, pw = (layer.kernel_h, layer.kernel_w, layer.stride_h, layer.stride_w, layer.pad_h,
                              layer.pad_w)
    H, Wd, OH, OW = layer.in_h, layer.in_w, layer.out_h, layer.out_w
    relevant = {"ifmap": set("ncpq"), "filter": set("mc"), "ofmap": set("nmpq")}

    tiles = []
    for gi in range(G):
        for idx in itertools.product(*[range(counts[d]) for d in order]):
            pos = dict(zip(order, idx, strict=True))
            st = {d: pos[d] * getattr(tile, d) for d in LOOPS}
            ext = {d: min(getattr(tile, d), getattr(whole, d) - st[d]) for d in LOOPS}
            tiles.append((gi, pos, st, ext))

    transfers: list[Transfer] = []

    def add(tensor: str, direction: str, bits: int, indices: np.ndarray) -> int:
        transfers.append(Transfer(tensor, direction, bits, np.asarray(indices, dtype=np.int64).reshape(-1)))
        return len(transfers) - 1

    def ifmap_block(gi: int, st: dict[str, int], ext: dict[str, int]) -> tuple[np.ndarray, dict[str, int]]:
        top, left = st["p"] * sh - ph, st["q"] * sw - pw
        ylo, yhi = max(0, top), min(H, (st["p"] + ext["p"] - 1) * sh - ph + KH)
        xlo, xhi = max(0, left), min(Wd, (st["q"] + ext["q"] - 1) * sw - pw + KW)
        n = np.arange(st["n"], st["n"] + ext["n"])[:, None, None, None]
        c = (gi * cg + np.arange(st["c"], st["c"] + ext["c"]))[None, :, None, None]
        y = np.arange(ylo, yhi)[None, None, :, None]
        x = np.arange(xlo, xhi)[None, None, None, :]
        flat = ((n * layer.in_channels + c) * H + y) * Wd + x
        strides = ifmap_strides(top, left, ylo, xlo, yhi - ylo, xhi - xlo, ext["c"], ext["p"], ext["q"], KH, KW,
                                sh, sw)
        return flat, {"gy0": top, "gx0": left, **{k: v % (1 << core.cnt_bits) for k, v in strides.items()}}

    def filter_block(gi: int, st: dict[str, int], ext: dict[str, int]) -> np.ndarray:
        m = (gi * mg + np.arange(st["m"], st["m"] + ext["m"]))[:, None, None, None]
        c = np.arange(st["c"], st["c"] + ext["c"])[None, :, None, None]
        r = np.arange(KH)[None, None, :, None]
        s_ = np.arange(KW)[None, None, None, :]
        return ((m * cg + c) * KH + r) * KW + s_

    def ofmap_order(gi: int, st: dict[str, int], ext: dict[str, int]) -> np.ndarray:
        """Output elements in the order the core drains them. OS: folds (row folds outer, column folds
        inner), then rows, then columns of each fold. WS: column folds, then pixels, then columns."""
        P, N = ext["n"] * ext["p"] * ext["q"], ext["m"]
        pix = np.arange(P)
        n_, rem = np.divmod(pix, ext["p"] * ext["q"])
        p_, q_ = np.divmod(rem, ext["q"])
        out = []
        if mapping.dataflow is Dataflow.WS:
            for c0 in range(0, N, core.cols):
                rr = pix[:, None]
                mm = gi * mg + st["m"] + np.arange(c0, min(N, c0 + core.cols))[None, :]
                out.append((((st["n"] + n_[rr]) * layer.out_channels + mm) * OH + st["p"] + p_[rr]) * OW
                           + st["q"] + q_[rr])
            return np.concatenate([o.reshape(-1) for o in out])
        for r0 in range(0, P, core.rows):
            for c0 in range(0, N, core.cols):
                rr = np.arange(r0, min(P, r0 + core.rows))[:, None]
                cc = np.arange(c0, min(N, c0 + core.cols))[None, :]
                mm = gi * mg + st["m"] + cc
                out.append((((st["n"] + n_[rr]) * layer.out_channels + mm) * OH + st["p"] + p_[rr]) * OW
                           + st["q"] + q_[rr])
        return np.concatenate([o.reshape(-1) for o in out])

    loads, computes, wbs, folds = [], [], [], 0
    half = {"ifmap": 1, "filter": 1}
    prev = None
    for ti, (gi, pos, st, ext) in enumerate(tiles):
        changed = {b: prev is None or prev[0] != gi or any(prev[1][d] != pos[d] for d in rel)
                   for b, rel in relevant.items()}
        slots = []
        blk, geo = ifmap_block(gi, st, ext)
        if changed["ifmap"]:
            half["ifmap"] ^= 1
            tag = add("x", "read", layer.act_bits, blk)
            slots.append({"dir": 0, "buf": 0, "half": half["ifmap"], "count": blk.size,
                          "lanes": _lanes(core, "ifmap", layer.act_bits), "bits": layer.act_bits, "tag": tag})
        if changed["filter"]:
            half["filter"] ^= 1
            fb = filter_block(gi, st, ext)
            tag = add("w", "read", layer.weight_bits, fb)
            slots.append({"dir": 0, "buf": 1, "half": half["filter"], "count": fb.size,
                          "lanes": _lanes(core, "filter", layer.weight_bits), "bits": layer.weight_bits, "tag": tag})
        loads.append(slots)
        P, K = ext["n"] * ext["p"] * ext["q"], ext["c"] * KH * KW
        spatial = -(-K // core.rows) if mapping.dataflow is Dataflow.WS else -(-P // core.rows)
        folds += spatial * -(-ext["m"] // core.cols)
        computes.append({"compute": 1, "P": P, "K": K, "tm": ext["m"], "tn": ext["n"], "tp": ext["p"],
                         "tq": ext["q"], "kh": KH, "kw": KW, "sh": sh, "sw": sw, "in_h": H,
                         "in_w": Wd, "hi": half["ifmap"], "hf": half["filter"], "ho": ti % 2,
                         "pa": layer.act_bits, "pw": layer.weight_bits, "sgn": int(a_sgn), "osg": int(sgn),
                         "shift": shift, "ob": layer.out_bits, "ws": int(mapping.dataflow is Dataflow.WS), **geo})
        ob = ofmap_order(gi, st, ext)
        tag = add("y", "write", layer.out_bits, ob)
        wbs.append({"dir": 1, "buf": 2, "half": ti % 2, "count": ob.size,
                    "lanes": _lanes(core, "ofmap", layer.out_bits), "bits": layer.out_bits, "tag": tag})
        prev = (gi, pos)

    T = len(tiles)
    phases = []
    for j in range(T + 2):
        f: dict[str, int] = dict(computes[j - 1]) if 1 <= j <= T else {"compute": 0}
        slots = (loads[j] if j < T else []) + ([wbs[j - 2]] if j >= 2 else [])
        f["n_slots"] = len(slots)
        for i, s in enumerate(slots):
            f.update({f"s{i}_{k}": v for k, v in s.items()})
        f["end"] = int(j == T + 1)
        phases.append(Phase(f))
    fields = core.descriptor_fields()
    try:   # a value over its field (a layer input wider than dim_bits, a tag past TAG) is refused here
        words = tuple(pack_descriptor(phase.fields, fields) for phase in phases)
    except ValueError as e:
        raise ValueError(f"Layer[{layer.name!r}]: {e} (the core's fields: cnt_bits={core.cnt_bits}, "
                         f"dim_bits={core.dim_bits}, tag {TAG} bits)") from None
    return LayerProgram(layer, mapping, tuple(phases), tuple(transfers), shift, sgn, folds, words=words)
