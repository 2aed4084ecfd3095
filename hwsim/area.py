"""FPGA area of the PE array (``rtl/``) for each PE kind, from least-squares models; no synthesis needed.

The models were fitted by ``sims/experiments/rtl_area.py`` on Yosys ``synth_ice40`` results of the array's
exported Verilog (single carry-chain adder; Debian Yosys 0.23; data in ``docs/rtl_area.csv``, fit in
``docs/rtl_area_fit.json``). Units are iCE40 cells: 4-input LUTs (``SB_LUT4``), flip-flops
(``SB_DFF*``) and carry cells (``SB_CARRY``). Each kind has its own terms and coefficients
(``P = rows*cols`` PEs, ``R``/``C`` rows/cols, ``W``/``A`` weight/activation bits,
``L = acc_bits - W - A``, i.e. ``log2`` of the longest tile the controller counts):

* ``serial_act`` (Stripes): ``P*acc`` (accumulator and adder per PE), ``P*(W+A-1)`` (gating / negation
  of the shifted weight), ``C*(W+A-1)`` (the column's weight shifter), ``R*A`` (the row's activation
  shifter), ``L`` (step counter and limit), ``1``.
* ``serial_both`` (Loom / BISMO order): ``P*acc``, ``P*(W+A-1)`` (gating / negation of the one-hot),
  ``C*(W+A-1)`` (the column's gated one-hot), ``C*W`` (the column's weight-bit shifter), ``R*A`` (the row's
  activation register and bit select), ``L``, ``W+A`` (the shared bit counters and one-hot decoder), ``1``.
* ``parallel``: ``P*acc``, ``P*acc*min(W, A+1)`` (Yosys merges the multiply and the accumulate into one
  ``$macc``: about one accumulator-wide adder row per partial product of the shorter operand), ``P*W*(A+1)``
  (the partial-product bits of the signed multiplier), ``P*(W+A)``, ``C*W`` and ``R*A`` (operand
  registers), ``L``, ``1``. Without the ``P*acc*min(W, A+1)`` term the LUT error was 35% (max) / 11% (mean).

A bit-serial PE with ``adder_tree: N`` (N lanes summed into one accumulator) is extrapolated, not fitted:
the fitted accumulator share of N - 1 of every N lanes is removed and a binary tree of
``hwsim.kinds.tree_bits`` full adders (one LUT4 and one carry cell each) added.

Fit errors (largest / mean relative error over the sweep's designs) are in ``FIT_ERROR``; the largest
errors are on the smallest designs. ``MODEL_VERSION`` changes whenever the fit changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .accelerator import Accelerator
from .errors import check_choice, check_int
from .kinds import PEKind, tree_bits

__all__ = ["MODEL_VERSION", "KINDS", "TERMS", "FPGAArea", "ICE40_COEFFS", "FIT_ERROR", "FIT_POINTS", "FIT_YOSYS",
           "area_terms", "array_area", "fpga_area", "BRAM_SHAPES", "BufferMemory", "splits_into_banks", "stored_bits", "BufferGeometry", "core_buffer",
           "buffer_memories", "bram_count",
           "CORE_TERMS", "CORE_COEFFS", "CORE_FIT_ERROR", "CORE_FIT_POINTS", "CORE_FIT_YOSYS", "CoreArea", "core_terms",
           "WS_CONTROL_PER_ROW", "ws_datapath", "ws_area", "core_area"]

# Bump whenever TERMS or the coefficients below change (sweep stores record it with every area result).
MODEL_VERSION = "2-ice40-yosys0.23-3kinds"
FIT_YOSYS = "Yosys 0.23 (git sha1 7ce5011c24b), synth_ice40"
KINDS = ("serial_act", "serial_both", "parallel")

_TERM_FNS: dict[str, Callable[[int, int, int, int, int], int]] = {
    # (rows, cols, W, A, acc_bits) -> term
    "pe_acc": lambda r, c, w, a, acc: r * c * acc,
    "pe_operand": lambda r, c, w, a, acc: r * c * (w + a - 1),
    "pe_mult": lambda r, c, w, a, acc: r * c * w * (a + 1),
    "pe_acc_rows": lambda r, c, w, a, acc: r * c * acc * min(w, a + 1),
    "pe_mult_rows": lambda r, c, w, a, acc: r * c * (w + a),
    "col_operand": lambda r, c, w, a, acc: c * (w + a - 1),
    "col_weight": lambda r, c, w, a, acc: c * w,
    "row_act": lambda r, c, w, a, acc: r * a,
    "ctrl_steps": lambda r, c, w, a, acc: acc - w - a,
    "ctrl_bits": lambda r, c, w, a, acc: w + a,
    "const": lambda r, c, w, a, acc: 1,
}
TERMS: dict[str, tuple[str, ...]] = {
    "serial_act": ("pe_acc", "pe_operand", "col_operand", "row_act", "ctrl_steps", "const"),
    "serial_both": ("pe_acc", "pe_operand", "col_operand", "col_weight", "row_act", "ctrl_steps", "ctrl_bits",
                    "const"),
    "parallel": ("pe_acc", "pe_acc_rows", "pe_mult", "pe_mult_rows", "col_weight", "row_act", "ctrl_steps",
                 "const"),
}
# Coefficients per kind of TERMS[kind], from docs/rtl_area_fit.json.
ICE40_COEFFS: dict[str, dict[str, tuple[float, ...]]] = {
    "serial_act": {
        "luts": (1.0175, 0.9148, 1.1504, 1.4472, 3.5449, 7.3259),
        "ffs": (0.9926, -0.0297, 1.1363, 1.2031, 2.0165, 3.6639),
        "carries": (0.8877, 0.0725, 0.1288, 0.183, 2.5286, -8.9342),
    },
    "serial_both": {
        "luts": (0.9804, 1.2505, 0.2024, 1.2461, 0.8997, 4.2632, 2.4729, -3.8166),
        "ffs": (1.0005, -0.0129, 0.0163, 1.0426, 1.0595, 1.9918, 0.5692, 3.4236),
        "carries": (0.8999, 0.1044, -0.0305, 0.0179, -0.0137, 2.4759, 0.7604, -10.5834),
    },
    "parallel": {
        "luts": (-0.5403, 1.2297, 0.7736, 1.8929, 0.6645, -1.0453, 6.8478, -19.2096),
        "ffs": (1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 2.0, 3.0),
        "carries": (1.0014, -0.0233, 0.0741, -0.3552, -0.0444, 0.1416, 2.3435, -7.0949),
    },
}
# Largest and mean relative error of the fit on the sweep's designs, per kind.
FIT_ERROR: dict[str, dict[str, tuple[float, float]]] = {
    "serial_act": {"luts": (0.0379, 0.009), "ffs": (0.0353, 0.009), "carries": (0.0972, 0.0166)},
    "serial_both": {"luts": (0.1387, 0.0383), "ffs": (0.0519, 0.0118), "carries": (0.0661, 0.0163)},
    "parallel": {"luts": (0.1365, 0.044), "ffs": (0.0, 0.0), "carries": (0.0504, 0.0215)},
}
FIT_POINTS: dict[str, int] = {"serial_act": 38, "serial_both": 38, "parallel": 36}


@dataclass(frozen=True, slots=True)
class FPGAArea:
    """iCE40 cell counts; adds up (``a + b``) for designs made of several arrays."""

    luts: int
    ffs: int
    carries: int

    def __add__(self, other: FPGAArea) -> FPGAArea:
        if not isinstance(other, FPGAArea):
            return NotImplemented
        return FPGAArea(self.luts + other.luts, self.ffs + other.ffs, self.carries + other.carries)


def area_terms(kind: str, rows: int, cols: int, weight_bits: int, act_bits: int, acc_bits: int) -> tuple[int, ...]:
    """The model's terms (``TERMS[kind]``) for one array; the fit in ``sims/experiments/rtl_area.py`` uses them too."""
    check_choice("area_terms", "kind", kind, KINDS)
    return tuple(_TERM_FNS[t](rows, cols, weight_bits, act_bits, acc_bits) for t in TERMS[kind])


def array_area(rows: int, cols: int, weight_bits: int, act_bits: int, acc_bits: int,
               kind: str = "serial_act") -> FPGAArea:
    """The model for one ``rows x cols`` array of ``weight_bits`` x ``act_bits`` PEs of ``kind``."""
    check_choice("array_area", "kind", kind, KINDS)
    check_int("array_area", "rows", rows, 1, 4096)
    check_int("array_area", "cols", cols, 1, 4096)
    check_int("array_area", "weight_bits", weight_bits, 1, 32)
    check_int("array_area", "act_bits", act_bits, 1, 32)
    check_int("array_area", "acc_bits", acc_bits, weight_bits + act_bits, 128)
    terms = area_terms(kind, rows, cols, weight_bits, act_bits, acc_bits)
    coeffs = ICE40_COEFFS[kind]

    def model(what: str) -> int:
        return max(0, round(sum(c * t for c, t in zip(coeffs[what], terms, strict=True))))

    return FPGAArea(model("luts"), model("ffs"), model("carries"))


def fpga_area(acc: Accelerator) -> FPGAArea:
    """Area of ``acc``'s PE array built as ``rtl.array.PEArray`` of its PE kind (broadcast, output stationary)."""
    if not isinstance(acc, Accelerator):
        raise TypeError(f"fpga_area.acc must be an Accelerator, not {acc!r}")
    kind = acc.pe.kind
    if kind.value not in ICE40_COEFFS:
        raise ValueError(f"fpga_area.acc.pe.kind must be one of {list(ICE40_COEFFS)} (the RTL kinds the model was "
                         f"fitted on), not {kind.value!r}")
    base = array_area(acc.rows, acc.cols, acc.pe.max_weight_bits, acc.pe.max_act_bits, acc.pe.acc_bits, kind.value)
    n = acc.pe.adder_tree
    if n == 1:
        return base
    # Extrapolated, not fitted (rtl/ builds one accumulator per PE): groups of n lanes share one
    # accumulator (the fitted per-PE accumulator share is removed for n - 1 of them) and add a binary tree
    # of tree_bits full adders, one LUT4 and one carry cell each on iCE40.
    pes, i = acc.rows * acc.cols, TERMS[kind.value].index("pe_acc")
    width = acc.pe.max_weight_bits if kind is PEKind.SERIAL_ACT else 1
    tree = pes / n * tree_bits(n, width)

    def adjust(what: str, add: float) -> int:
        saved = ICE40_COEFFS[kind.value][what][i] * pes * acc.pe.acc_bits * (1 - 1 / n)
        return max(0, round(getattr(base, what) - saved + add))

    return FPGAArea(adjust("luts", tree), adjust("ffs", 0.0), adjust("carries", tree))


# ---- block RAM of the accelerator core's buffers (exact from the geometry; rtl/core.py, rtl/program.py) ----

# (depth, width) configurations of one block RAM: iCE40 SB_RAM40_4K (4 kbit), ECP5 DP16KD (18 kbit; 512 x 36
# only as the simple-dual-port PDPW16KD). Lattice iCE40 / ECP5 memory usage guides (TN1250, TN1264).
BRAM_SHAPES: dict[str, tuple[tuple[int, int], ...]] = {
    "ice40": ((256, 16), (512, 8), (1024, 4), (2048, 2)),
    "ecp5": ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)),
}


def splits_into_banks(banks: int) -> bool:
    """Whether the core's FPGA build holds a buffer half of ``banks`` ports as one memory per bank
    (``rtl.core.BankedMemory``): for a power of two from 2 on, whose bank is the address's low bits."""
    return banks > 1 and banks & (banks - 1) == 0


@dataclass(frozen=True, slots=True)
class BufferMemory:
    """One buffer half of the core as Yosys infers it: ``depth`` words of the ``width`` bits the core
    actually stores and reads, ``read_ports`` / ``write_ports`` (one each per bank that is used)."""

    buffer: str
    depth: int
    width: int
    read_ports: int
    write_ports: int

    def brams(self, target: str) -> int:
        """Block RAMs for this half on ``target``: one copy per read port (Yosys replicates a memory for
        each extra read port). A block RAM has one write port: a half with a power-of-two number of write
        ports (banks) is built as one memory per bank of ``1/banks`` the depth (``rtl.core.BankedMemory``),
        each replicated per read port; with any other number above one, 0 (no block RAM can hold it and it
        becomes flip-flops)."""
        check_choice("BufferMemory.brams", "target", target, tuple(BRAM_SHAPES))
        banks = self.write_ports
        if banks > 1 and not splits_into_banks(banks):
            return 0
        depth = -(-self.depth // banks)
        one = min(-(-depth // d) * -(-self.width // w) for d, w in BRAM_SHAPES[target])
        return banks * self.read_ports * one


def stored_bits(buf: str, word_bits: int, weight_bits: int, act_bits: int, acc_bits: int, link_bits: int,
                ws: bool) -> int:
    """The bits of each ``buf`` word that the core (``rtl/core.py``) stores and reads, and so the width of
    its memories: one element per word, ifmap ``act_bits``, filter ``weight_bits``; ofmap the bits the
    write-back reads (its element is at most 63 bits and one DRAM link wide) or, with WS, the ``acc_bits``
    of a partial sum, at most the ``acc_bits + 1`` bits of a drained result; all at most ``word_bits``."""
    check_choice("stored_bits", "buf", buf, ("ifmap", "filter", "ofmap"))
    elem = {"ifmap": act_bits, "filter": weight_bits,
            "ofmap": min(acc_bits + 1, max(min(link_bits, 63), acc_bits if ws else 0))}[buf]
    return min(word_bits, elem)


@dataclass(frozen=True, slots=True)
class BufferGeometry:
    """One buffer of the accelerator core as ``rtl/core.py`` builds it (:func:`core_buffer`): per half
    ``banks`` memories of ``word_bits``-bit words, ``words_per_half`` words in all, one element per word, of
    which the core stores ``data_bits``."""

    word_bits: int
    banks: int
    words_per_half: int
    data_bits: int


def core_buffer(acc: Accelerator, buf: str) -> BufferGeometry:
    """``buf`` (``ifmap``, ``filter`` or ``ofmap``) of ``acc`` as the core builds it.

    The core keeps one element per word. A packed buffer (``BufferSpec.packed``) whose word holds ``k =
    word_bits // e`` elements of the core's widest (``e``: ``act_bits``, ``weight_bits``, or ``acc_bits`` for
    the ofmap's partial sums) is built as ``k`` interleaved banks of ``word_bits // k`` bits per bank of the
    spec: the same capacity in elements and the same elements per cycle as the engine's packed ports
    (``banks * word_bits / e``, ``hwsim.engine.element_cycles``), each narrow bank with its own address, as the
    engine assumes (a wide word under one address would move only elements of that one word per cycle).
    Layers narrower than ``e`` are packed denser by the engine than by the core (docs/models.md)."""
    check_choice("core_buffer", "buf", buf, ("ifmap", "filter", "ofmap"))
    spec = getattr(acc, f"{buf}_sram")
    W, A, ab = acc.pe.max_weight_bits, acc.pe.max_act_bits, acc.pe.acc_bits
    elem = {"ifmap": A, "filter": W, "ofmap": ab}[buf]
    k = max(1, spec.word_bits // elem) if spec.packed else 1
    wb = spec.word_bits // k
    ws = any(d.value == "ws" for d in acc.dataflows)
    data = stored_bits(buf, wb, W, A, ab, round(acc.dram.bandwidth_bytes_per_cycle * 8), ws)
    return BufferGeometry(wb, spec.banks * k, spec.size_bytes * 8 // 2 // wb, data)


def buffer_memories(acc: Accelerator) -> list[BufferMemory]:
    """The six buffer halves (ifmap, filter, ofmap x 2) of ``acc``'s core (:func:`core_buffer`), as wide as
    the bits it stores; ports as ``rtl/core.py`` declares them."""
    if not isinstance(acc, Accelerator):
        raise TypeError(f"buffer_memories.acc must be an Accelerator, not {acc!r}")
    R, C = acc.rows, acc.cols
    ws = any(d.value == "ws" for d in acc.dataflows)
    out = []
    for buf, readers in (("ifmap", R), ("filter", R * C if ws else C), ("ofmap", 0)):
        g = core_buffer(acc, buf)
        reads = g.banks if buf == "ofmap" else min(g.banks, readers)
        for _ in range(2):
            out.append(BufferMemory(buf, g.words_per_half, g.data_bits, reads, g.banks))
    return out


def bram_count(acc: Accelerator, target: str = "ice40") -> int:
    """Block RAMs of ``acc``'s core buffers on ``target`` (``ice40`` or ``ecp5``), exact from the geometry."""
    check_choice("bram_count", "target", target, tuple(BRAM_SHAPES))
    return sum(m.brams(target) for m in buffer_memories(acc))


# ---- the whole core (rtl/core.py) on iCE40: the array model + the block RAMs + a fitted controller term ----

# What the core adds to its PE array (controller, descriptor registers, fetcher address generators, drain,
# DMA, twelve 32-bit counters): a constant, a per-row term (each row's im2col coordinate chain) and a
# per-accumulator-bit term (the array's result registers and the drain's lookup over them), in iCE40 cells.
CORE_TERMS = ("const", "rows", "pe_acc")
# Fitted by sims/experiments/core_fpga.py (fit_core) on the iCE40 builds in docs/core_fpga.csv (Yosys 0.70,
# synth_ice40, OS-only serial_act cores, buffers in block RAM); FIT_ERROR-style (max, mean) relative error
# on those builds, and the leave-one-out maximum, the figure to quote for so few designs.
CORE_COEFFS: dict[str, tuple[float, ...]] = {
    "luts": (1170.4815, 633.0564, 0.3501),
    "ffs": (1233.5212, 129.1382, 0.77),
    "carries": (720.2866, 172.2645, -0.248),
}
# (max, mean) relative error of the model on the builds it was fitted on, and the leave-one-out maximum
# (each build predicted by the fit of the other three).
CORE_FIT_ERROR: dict[str, tuple[float, float, float]] = {
    "luts": (0.0436, 0.0266, 0.3073), "ffs": (0.0138, 0.0084, 0.1086), "carries": (0.0213, 0.0127, 0.1775)}
CORE_FIT_POINTS = 4
CORE_FIT_YOSYS = "Yosys 0.70 (git sha1 28ba3cb92), synth_ice40"


@dataclass(frozen=True, slots=True)
class CoreArea:
    """iCE40 cells of a whole core: LUT4s, flip-flops, carry cells and SB_RAM40_4K block RAMs."""

    luts: int
    ffs: int
    carries: int
    bram: int


def core_terms(acc: Accelerator) -> tuple[int, ...]:
    """The core model's terms (:data:`CORE_TERMS`) for ``acc``."""
    if not isinstance(acc, Accelerator):
        raise TypeError(f"core_terms.acc must be an Accelerator, not {acc!r}")
    return (1, acc.rows, acc.rows * acc.cols * acc.pe.acc_bits)


# What a core's WS control adds per array row beyond its datapath (``ws_datapath``): the per-row reduction
# coordinate chains, the weight fetcher and the partial-sum read-back, in iCE40 cells. Calibrated on the one
# core built with and without WS (docs/core_fpga.json: small_4x4_ws - small_4x4 - ws_datapath, / rows), so
# it has no error estimate of its own; per row is an assumption (the coordinate chains are per row).
WS_CONTROL_PER_ROW: dict[str, float] = {"luts": 476.25, "ffs": 81.5, "carries": 49.25}


def ws_datapath(acc: Accelerator) -> FPGAArea:
    """What WS adds to a core's one PE array (``rtl.core_array.CoreArray``), counted from its structure in
    iCE40 cells (not fitted): per PE its fold weight and its staged weight (``W`` flip-flops each; OS stages
    only one weight per column), the staged weight's bypass and the operand's OS/WS multiplexer (one LUT per
    bit), and for the bit-serial kinds the accumulator base's multiplexer (``acc_bits`` LUTs; ``serial_both``
    also a ``W``-bit weight shift register per PE); per column an adder tree over the rows (``rows - 1`` adds
    of ``acc_bits``, one LUT and one carry per bit) and the drain's choice of column sum or result register."""
    R, C, W, A, ab = acc.rows, acc.cols, acc.pe.max_weight_bits, acc.pe.max_act_bits, acc.pe.acc_bits
    pes, kind = R * C, acc.pe.kind
    operand = W if kind is PEKind.PARALLEL else W + A - 1      # the shifted weight or the gated one-hot
    ffs = pes * W + (pes - C) * W + (pes * W if kind is PEKind.SERIAL_BOTH else 0) + R * A
    luts = pes * (W + operand + ab) + (pes * W if kind is PEKind.SERIAL_BOTH else 0) + C * (R - 1) * ab + C * ab
    return FPGAArea(luts, ffs, C * (R - 1) * ab)


def ws_area(acc: Accelerator) -> FPGAArea:
    """All that WS adds to a core: :func:`ws_datapath` and :data:`WS_CONTROL_PER_ROW` per array row."""
    dp, k = ws_datapath(acc), WS_CONTROL_PER_ROW
    return FPGAArea(round(dp.luts + k["luts"] * acc.rows), round(dp.ffs + k["ffs"] * acc.rows),
                    round(dp.carries + k["carries"] * acc.rows))


def core_area(acc: Accelerator) -> CoreArea:
    """Area of the accelerator core generated for ``acc`` on iCE40: :func:`fpga_area` of its PE array, the
    exact block-RAM count of its buffers (:func:`bram_count`) and the fitted controller term. Fitted on
    OS-only cores; a core with WS adds :func:`ws_area` (its datapath counted, its control calibrated on the
    one WS build)."""
    array = fpga_area(acc)
    if any(d.value == "ws" for d in acc.dataflows):
        array = array + ws_area(acc)
    terms = core_terms(acc)

    def extra(what: str) -> float:
        return sum(c * t for c, t in zip(CORE_COEFFS[what], terms, strict=True))

    return CoreArea(max(0, round(array.luts + extra("luts"))), max(0, round(array.ffs + extra("ffs"))),
                    max(0, round(array.carries + extra("carries"))), bram_count(acc, "ice40"))
