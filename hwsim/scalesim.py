"""SCALE-Sim 3.0.0 compatibility: its config and topology files, its counts and its three reports.

``parallel`` mode of ``hwsim scalesim`` reproduces what SCALE-Sim 3.0.0 reports for a layer, including
its conventions (docs/scalesim.md lists each one beside the count our native engine reports):

* output size ``ceil((H - F + S) / S)`` with no padding; windows that run past the input read nothing;
* fixed 1-byte words; buffers of ``kB * 1024`` words, half active and half prefetch;
* a fold of the ``R x C`` array takes ``R + C + T - 2`` rows of demands (OS) or ``2R + C + T - 2`` (WS, IS);
* the reported "Total Cycles" is the *index* of the last serviced demand row (one less than the rows);
* SRAM reads are counted per demand slot (out-of-input window slots included) and OFMAP SRAM writes add
  ``R + C`` per OS fold; DRAM reads count each address once per prefetch window of half a buffer;
  DRAM writes count the padding of a partly filled drain line when it is not the last line drained.

The model is analytical where SCALE-Sim's counts have a closed form (cycles, SRAM counts, utilisation)
and vectorised with numpy where they depend on the order of addresses (DRAM traffic, start/stop
cycles); it never runs SCALE-Sim's per-cycle loops. In ``InterfaceBandwidth: CALC`` mode (SCALE-Sim's
default) no demand stream is built: each operand's demands are a layout of folds in which the row of
the i-th demand, and the demands above a row, have closed forms; the OFMAP buffer's drains are found
by a few such lookups each, and a read buffer's windows in closed form when the operand fits one
window or is made of repeated disjoint blocks (every filter; the IFMAP when windows do not overlap).
Otherwise (overlapping windows on an input larger than a window) the IFMAP is fed fold by fold, each
repeated fold pattern built once, and whole periods of folds are skipped once the window's state at
the start of a cycle of folds recurs. ``_simulate_streams`` replays the full demand streams instead:
it is USER mode's model and CALC mode's reference in the tests. ``InterfaceBandwidth: USER`` reproduces SCALE-Sim's read-buffer stalls at the user's
bandwidths, quirks included: the IFMAP / filter read bandwidths are the ``[layout]`` bank bandwidths
(``Bandwidth`` only sets the OFMAP drain width), prefetches run back to back from the previous one's
completion, a late prefetch's lateness is counted twice and an early one moves the row's service
cycle back; a row stalls by the largest of its three buffers' stalls.
"""

from __future__ import annotations

import bisect
import configparser
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .accelerator import Accelerator, BufferSpec, Dataflow, DRAMSpec, Interconnect, PEKind, PESpec
from .errors import ConfigError, check_int
from .network import Layer, LayerKind

__all__ = ["ScaleSimConfig", "ScaleSimLayerReport", "load_config", "load_topology", "scalesim_shape",
           "stall_free_cycles", "simulate_layer", "simulate_topology", "report_csvs", "REPORT_FILES"]

# Every key SCALE-Sim 3.0.0 reads (plus those its bundled configs carry and it ignores), by section.
_KEYS: dict[str, tuple[str, ...]] = {
    "general": ("run_name",),
    "architecture_presets": ("ArrayHeight", "ArrayWidth", "IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB",
                             "IfmapOffset", "FilterOffset", "OfmapOffset", "Dataflow", "Bandwidth",
                             "ReadRequestBuffer", "WriteRequestBuffer", "MemoryBanks", "TopologyCsvLoc"),
    "layout": ("IfmapCustomLayout", "IfmapSRAMBankBandwidth", "IfmapSRAMBankNum", "IfmapSRAMBankPort",
               "FilterCustomLayout", "FilterSRAMBankBandwidth", "FilterSRAMBankNum", "FilterSRAMBankPort"),
    "sparsity": ("SparsitySupport", "SparseRep", "OptimizedMapping", "BlockSize", "NonZeroElems",
                 "RandomNumberGeneratorSeed"),
    "run_presets": ("InterfaceBandwidth", "UseRamulatorTrace"),
    "network_presets": ("TopologyCsvLoc",),
}
_REQUIRED = {"general": ("run_name",),
             "architecture_presets": ("ArrayHeight", "ArrayWidth", "IfmapSramSzkB", "FilterSramSzkB",
                                      "OfmapSramSzkB", "Dataflow"),
             "run_presets": ("InterfaceBandwidth",)}

READ_BACKING_BW_CALC = 10   # words/cycle SCALE-Sim's estimate-mode read buffers prefetch at
READ_LATENCY_CYCLES = 1     # its DRAM read port latency, and its SRAM hit latency
SETS_PER_BUFFER = 100       # its read buffers track addresses in sets of floor(words / 100)


@dataclass(frozen=True, slots=True)
class ScaleSimConfig:
    """The architecture part of a SCALE-Sim config, validated (sizes in kB of 1-byte words)."""

    run_name: str
    array_rows: int
    array_cols: int
    ifmap_sram_kb: int
    filter_sram_kb: int
    ofmap_sram_kb: int
    dataflow: Dataflow
    ifmap_offset: int = 0
    filter_offset: int = 10_000_000
    ofmap_offset: int = 20_000_000
    user_bandwidth: bool = False
    bandwidths: tuple[int, ...] = ()
    ifmap_read_words_per_cycle: int = 10
    filter_read_words_per_cycle: int = 10

    def __post_init__(self) -> None:
        for f in ("array_rows", "array_cols", "ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb"):
            check_int("ScaleSimConfig", f, getattr(self, f), 1)
        for f in ("ifmap_offset", "filter_offset", "ofmap_offset"):
            check_int("ScaleSimConfig", f, getattr(self, f), 0)
        for f in ("ifmap_read_words_per_cycle", "filter_read_words_per_cycle"):
            check_int("ScaleSimConfig", f, getattr(self, f), 1)
        try:
            object.__setattr__(self, "dataflow", Dataflow(self.dataflow))
        except ValueError:
            raise ValueError(f"ScaleSimConfig.dataflow must be one of {[d.value for d in Dataflow]}, "
                             f"not {self.dataflow!r}") from None
        object.__setattr__(self, "bandwidths", tuple(self.bandwidths))
        for i, b in enumerate(self.bandwidths):
            check_int("ScaleSimConfig", f"bandwidths[{i}]", b, 1)
        if self.user_bandwidth and not self.bandwidths:
            raise ValueError("ScaleSimConfig.bandwidths must be given with user_bandwidth, not ()")

    @property
    def accelerator(self) -> Accelerator:
        """The same array as an :class:`hwsim.Accelerator` (8-bit parallel PEs, systolic, 1-byte words)."""
        def buf(kb: int) -> BufferSpec:
            return BufferSpec(size_bytes=kb * 1024, word_bits=8)
        bw = float(self.bandwidths[0]) if self.user_bandwidth else float(READ_BACKING_BW_CALC)
        return Accelerator(name=self.run_name, rows=self.array_rows, cols=self.array_cols,
                           pe=PESpec(kind=PEKind.PARALLEL, max_weight_bits=8, max_act_bits=8, acc_bits=32),
                           dataflows=(self.dataflow,), interconnect=Interconnect.SYSTOLIC,
                           ifmap_sram=buf(self.ifmap_sram_kb), filter_sram=buf(self.filter_sram_kb),
                           ofmap_sram=buf(self.ofmap_sram_kb), dram=DRAMSpec(bandwidth_bytes_per_cycle=bw))


def _int(path: Path, sec: str, key: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ConfigError(f"{path}: [{sec}] {key} must be an integer, not {raw.strip()!r}") from None


def _bool(path: Path, sec: str, key: str, raw: str) -> bool:
    v = raw.strip().lower()
    if v not in ("true", "false"):
        raise ConfigError(f"{path}: [{sec}] {key} must be True or False, not {raw.strip()!r}")
    return v == "true"


def load_config(path: str | Path) -> ScaleSimConfig:
    """Read a SCALE-Sim ``.cfg`` strictly: unknown sections or keys are errors naming file and key."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: file not found")
    cp = configparser.ConfigParser()
    cp.optionxform = str  # type: ignore[assignment,method-assign]  # keep the user's spelling for messages
    try:
        cp.read_string(p.read_text(), source=str(p))
    except configparser.Error as exc:
        raise ConfigError(f"{p}: malformed config: {str(exc).splitlines()[0]}") from None
    vals: dict[str, dict[str, str]] = {}
    for sec in cp.sections():
        if sec not in _KEYS:
            raise ConfigError(f"{p}: unknown section [{sec}]; allowed sections: {', '.join(_KEYS)}")
        canon = {k.lower(): k for k in _KEYS[sec]}
        vals[sec] = {}
        for key, raw in cp.items(sec):
            if key.lower() not in canon:
                raise ConfigError(f"{p}: unknown key [{sec}] {key}; allowed keys: {', '.join(_KEYS[sec])}")
            vals[sec][canon[key.lower()]] = raw
    for sec, keys in _REQUIRED.items():
        for key in keys:
            if key not in vals.get(sec, {}):
                raise ConfigError(f"{p}: missing key [{sec}] {key}")
    arch, run = vals["architecture_presets"], vals["run_presets"]
    mode = run["InterfaceBandwidth"].strip()
    if mode not in ("CALC", "USER"):
        raise ConfigError(f"{p}: [run_presets] InterfaceBandwidth must be CALC or USER, not {mode!r}")
    if _bool(p, "run_presets", "UseRamulatorTrace", run.get("UseRamulatorTrace", "False")):
        raise ConfigError(f"{p}: [run_presets] UseRamulatorTrace must be False (Ramulator traces are not "
                          "supported), not True")
    lay, spa = vals.get("layout", {}), vals.get("sparsity", {})
    for key in ("IfmapCustomLayout", "FilterCustomLayout"):
        if _bool(p, "layout", key, lay.get(key, "False")):
            raise ConfigError(f"{p}: [layout] {key} must be False (custom layouts are not supported), not True")
    if _bool(p, "sparsity", "SparsitySupport", spa.get("SparsitySupport", "false")):
        raise ConfigError(f"{p}: [sparsity] SparsitySupport must be false (sparsity is not supported), not true")
    bws: tuple[int, ...] = ()
    if mode == "USER":
        if "Bandwidth" not in arch:
            raise ConfigError(f"{p}: missing key [architecture_presets] Bandwidth (needed by InterfaceBandwidth: USER)")
        bws = tuple(_int(p, "architecture_presets", "Bandwidth", b) for b in arch["Bandwidth"].split(","))
    # SCALE-Sim's USER mode reads its IFMAP / filter DRAM bandwidths from the [layout] bank bandwidths
    # (``Bandwidth`` only sets the OFMAP write bandwidth); each must split evenly over the banks.
    read_bw: dict[str, int] = {}
    for op in ("Ifmap", "Filter"):
        bw = _int(p, "layout", f"{op}SRAMBankBandwidth", lay.get(f"{op}SRAMBankBandwidth", "10"))
        banks = _int(p, "layout", f"{op}SRAMBankNum", lay.get(f"{op}SRAMBankNum", "10"))
        if mode == "USER" and (banks < 1 or bw % banks):
            raise ConfigError(f"{p}: [layout] {op}SRAMBankBandwidth must be a multiple of {op}SRAMBankNum "
                              f"({banks}) with InterfaceBandwidth: USER, not {bw}")
        read_bw[f"{op.lower()}_read_words_per_cycle"] = bw
    ints = {}
    for key, f, default in (("ArrayHeight", "array_rows", None), ("ArrayWidth", "array_cols", None),
                            ("IfmapSramSzkB", "ifmap_sram_kb", None), ("FilterSramSzkB", "filter_sram_kb", None),
                            ("OfmapSramSzkB", "ofmap_sram_kb", None), ("IfmapOffset", "ifmap_offset", 0),
                            ("FilterOffset", "filter_offset", 10_000_000), ("OfmapOffset", "ofmap_offset", 20_000_000)):
        ints[f] = _int(p, "architecture_presets", key, arch[key]) if key in arch else default
    try:
        return ScaleSimConfig(run_name=vals["general"]["run_name"].strip(),
                              dataflow=arch["Dataflow"].strip(),  # type: ignore[arg-type]
                              user_bandwidth=mode == "USER", bandwidths=bws, **ints,  # type: ignore[arg-type]
                              **read_bw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{p}: {exc}") from None


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
class _Shape:
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


def scalesim_shape(layer: Layer) -> _Shape:
    """The SCALE-Sim view of a layer; padding is folded into the input size (SCALE-Sim has none)."""
    owner = f"Layer[{layer.name!r}]"
    if layer.kind is LayerKind.LINEAR:
        return _Shape(layer.batch, layer.in_channels, 1, layer.in_channels, 1, layer.out_channels, 1, 1)
    if layer.kind is not LayerKind.CONV2D:
        raise ValueError(f"{owner}.kind must be conv2d or linear for SCALE-Sim, not {layer.kind.value!r}")
    if layer.groups != 1 or layer.batch != 1:
        raise ValueError(f"{owner}.groups and batch must be 1 for SCALE-Sim (it has neither), "
                         f"not {(layer.groups, layer.batch)!r}")
    return _Shape(layer.in_h + 2 * layer.pad_h, layer.in_w + 2 * layer.pad_w, layer.kernel_h, layer.kernel_w,
                  layer.in_channels, layer.out_channels, layer.stride_h, layer.stride_w)


@dataclass(frozen=True, slots=True)
class ScaleSimLayerReport:
    """One layer's row of SCALE-Sim's three reports (same quantities, same units, same conventions)."""

    layer: str
    total_cycles_incl_prefetch: int
    total_cycles: int
    stall_cycles: int
    overall_util_pct: float
    mapping_efficiency_pct: float
    compute_util_pct: float
    ifmap_sram_start: int
    ifmap_sram_stop: int
    ifmap_sram_reads: int
    filter_sram_start: int
    filter_sram_stop: int
    filter_sram_reads: int
    ofmap_sram_start: int
    ofmap_sram_stop: int
    ofmap_sram_writes: int
    ifmap_dram_start: int
    ifmap_dram_stop: int
    ifmap_dram_reads: int
    filter_dram_start: int
    filter_dram_stop: int
    filter_dram_reads: int
    ofmap_dram_start: int
    ofmap_dram_stop: int
    ofmap_dram_writes: int

    def bandwidths(self) -> tuple[float, ...]:
        """BANDWIDTH_REPORT's six averages, in words per cycle, as SCALE-Sim computes them."""
        t = self.total_cycles
        return (self.ifmap_sram_reads / t, self.filter_sram_reads / t, self.ofmap_sram_writes / t,
                self.ifmap_dram_reads / (self.ifmap_dram_stop - self.ifmap_dram_start + 1),
                self.filter_dram_reads / (self.filter_dram_stop - self.filter_dram_start + 1),
                self.ofmap_dram_writes / (self.ofmap_dram_stop - self.ofmap_dram_start + 1))


# ---- demand streams ------------------------------------------------------------------------------

def _ifmap_addr(sp: _Shape, pix: np.ndarray, k: np.ndarray, offset: int) -> np.ndarray:
    """SCALE-Sim's ifmap operand matrix entry (pixel, window index); -1 where the window leaves the input."""
    orow, ocol = np.divmod(pix, sp.ew)
    irow, icol = orow * sp.sh, ocol * sp.sw
    fr, rem = np.divmod(k, sp.s * sp.c)
    fc, ch = np.divmod(rem, sp.c)
    ok = (fr + irow < sp.h) & (fc + icol < sp.w)
    return np.where(ok, ((irow + fr) * sp.w + icol + fc) * sp.c + ch + offset, -1)


@dataclass(frozen=True, slots=True)
class _Stream:
    """The valid entries of one operand's demand matrix in service order: row (cycle) and address."""

    rows: np.ndarray
    addrs: np.ndarray


def _grid(*sizes: int) -> list[np.ndarray]:
    return [a.ravel() for a in np.meshgrid(*(np.arange(n, dtype=np.int64) for n in sizes), indexing="ij")]


def _stream(rows: np.ndarray, cols: np.ndarray, width: int, addrs: np.ndarray, keep: np.ndarray) -> _Stream:
    rows, cols, addrs = rows[keep], cols[keep], addrs[keep]
    order = np.argsort(rows * width + cols, kind="stable")
    return _Stream(rows[order], addrs[order])


def _streams(sp: _Shape, cfg: ScaleSimConfig, reads: bool = True) -> tuple[int, int, _Stream, _Stream, _Stream]:
    """Rows of the whole demand matrix, folds, and the ifmap / filter / ofmap demand streams (the first
    two left empty without ``reads``)."""
    ifm = fil = _Stream(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    flow = cfg.dataflow
    if flow is Dataflow.OS:
        rf, cf, T = -(-P // R), -(-M // C), K
        fold_rows = R + C + T - 2
    elif flow is Dataflow.WS:
        rf, cf, T = -(-K // R), -(-M // C), P
        fold_rows = 2 * R + C + T - 2
    else:
        rf, cf, T = -(-K // R), -(-P // C), M
        fold_rows = 2 * R + C + T - 2
    n_rows = rf * cf * fold_rows

    def filt(k: np.ndarray, m: np.ndarray) -> np.ndarray:
        return m * K + k + cfg.filter_offset

    def ofm(p: np.ndarray, m: np.ndarray) -> np.ndarray:
        return p * M + m + cfg.ofmap_offset

    if flow is Dataflow.OS:
        if reads:
            fc, fr, t, c = _grid(cf, rf, T, R)
            p = fr * R + c
            a = _ifmap_addr(sp, np.minimum(p, P - 1), t, cfg.ifmap_offset)
            base = (fc * rf + fr) * fold_rows
            ifm = _stream(base + t + c, c, R, a, (p < P) & (a >= 0))
            fc, fr, t, c = _grid(cf, rf, T, C)
            m = fc * C + c
            fil = _stream((fc * rf + fr) * fold_rows + t + c, c, C, filt(t, m), m < M)
        fc, fr, r, c = _grid(cf, rf, R, C)
        p, m = fr * R + r, fc * C + c
        out = _stream((fc * rf + fr) * fold_rows + T - 1 + (R - 1 - r) + c, c, C, ofm(p, m), (p < P) & (m < M))
    elif flow is Dataflow.WS:
        if reads:
            fc, fr, t, c = _grid(cf, rf, T, R)
            k = fr * R + c
            a = _ifmap_addr(sp, t, np.minimum(k, K - 1), cfg.ifmap_offset)
            ifm = _stream((fc * rf + fr) * fold_rows + R + t + c, c, R, a, (k < K) & (a >= 0))
            fc, fr, r, c = _grid(cf, rf, R, C)
            k, m = fr * R + r, fc * C + c
            fil = _stream((fc * rf + fr) * fold_rows + R - 1 - r, c, C, filt(k, m), (k < K) & (m < M))
        fc, fr, t, c = _grid(cf, rf, T, C)
        m = fc * C + c
        out = _stream((fc * rf + fr) * fold_rows + 2 * R - 1 + t + c, c, C, ofm(t, m), m < M)
    else:
        if reads:
            fc, fr, r, c = _grid(cf, rf, R, C)
            k, p = fr * R + r, fc * C + c
            a = _ifmap_addr(sp, np.minimum(p, P - 1), np.minimum(k, K - 1), cfg.ifmap_offset)
            ifm = _stream((fc * rf + fr) * fold_rows + R - 1 - r, c, C, a, (k < K) & (p < P) & (a >= 0))
            fc, fr, t, c = _grid(cf, rf, T, R)
            k = fr * R + c
            fil = _stream((fc * rf + fr) * fold_rows + R + t + c, c, R, filt(k, t), k < K)
        fc, fr, t, c = _grid(cf, rf, T, C)
        p = fc * C + c
        out = _stream((fc * rf + fr) * fold_rows + 2 * R - 1 + t + c, c, C, ofm(p, t), p < P)
    return n_rows, rf * cf, ifm, fil, out


# ---- memories ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Timeline:
    """Where the stalls fell: ``shift[r]`` cycles before demand row ``r`` (``shift[-1]``: all of them),
    each buffer's own stall on the rows it stalled, and the OFMAP DRAM ``(start, stop, writes)``."""

    shift: np.ndarray
    write_stalls: dict[int, int]
    read_stalls: tuple[dict[int, int], ...]
    ofmap_dram: tuple[int, int, int]

    def shift_at(self, row: int) -> int:
        return int(self.shift[row])

    def row_cycle(self, row: int) -> int:
        return row + int(self.shift[row])


class _LineQueue:
    """The write buffer's queue of DRAM lines: outputs close into segments of ``bw``-word lines, the last
    line of a segment possibly part-filled (SCALE-Sim pads it when it drains), and its drains."""

    __slots__ = ("bw", "lines_per_drain", "first_line", "full", "rem", "n_lines", "start", "pointer", "drained",
                 "first_drain", "last_end", "writes")

    def __init__(self, bw: int, lines_per_drain: int) -> None:
        self.bw = bw
        self.lines_per_drain = lines_per_drain
        self.pointer = 0                  # next line to drain
        self.drained = 0                  # words SCALE-Sim believes drained (padding included)
        self.first_drain: int | None = None
        self.last_end = 0
        self.writes = 0
        self.first_line: list[int] = []   # first line of each segment
        self.full: list[int] = []         # its full lines
        self.rem: list[int] = []          # valid words in its last, partly filled line (0: none)
        self.n_lines = 0
        self.start = 0                    # first output not yet in a segment

    def close(self, upto: int) -> None:
        """Outputs ``[start, upto)`` become lines."""
        cnt = upto - self.start
        if cnt <= 0:
            return
        self.first_line.append(self.n_lines)
        self.full.append(cnt // self.bw)
        self.rem.append(cnt % self.bw)
        self.n_lines += cnt // self.bw + (1 if cnt % self.bw else 0)
        self.start = upto

    def words(self, q: int) -> int:
        """Valid words in line ``q``."""
        k = bisect.bisect_right(self.first_line, q) - 1
        return self.rem[k] if self.rem[k] and q == self.first_line[k] + self.full[k] else self.bw

    @property
    def pending(self) -> bool:
        return self.pointer < self.n_lines

    def drain_at(self, at: int) -> int:
        """One drain from cycle ``at``, a line per cycle (SCALE-Sim's write port has no latency); returns
        its last cycle."""
        end = min(self.pointer + self.lines_per_drain, self.n_lines)
        lines = end - self.pointer
        words = lines * self.bw - (self.bw - self.words(end - 1))
        self.writes += words
        self.drained += words
        self.pointer = end
        self.first_drain = at if self.first_drain is None else min(self.first_drain, at)
        self.last_end = max(self.last_end, at + lines - 1)  # a final drain may start before a running one ends
        return at + lines - 1

    def dram(self) -> tuple[int, int, int]:
        """``(first drain cycle, last write cycle, words written)``."""
        return (self.first_drain if self.first_drain is not None else 0, self.last_end, self.writes)


def _run(stream: _Stream, kb: int, bw: int, n_rows: int, reads: tuple[_Prefetches, ...] = ()) -> _Timeline:
    """SCALE-Sim's memory loop: the OFMAP write buffer (drains of half the buffer in lines of ``bw``
    words, one line per cycle) together with the read buffers' prefetch stalls (USER mode). A row's
    stall is the largest of its buffers' stalls."""
    total = kb * 1024
    drain = total - math.ceil(total * 0.5)
    lines_per_drain = -(-drain // bw)
    n = stream.rows.size
    orow = stream.rows
    cyc = orow.astype(np.int64).copy()
    shift = np.zeros(n_rows + 1, dtype=np.int64)
    wstall: dict[int, int] = {}
    rstall: tuple[dict[int, int], ...] = tuple({} for _ in reads)
    done = [0] * len(reads)
    # the rows at which some read buffer prefetches, in order, with each buffer's count there
    ev_rows = np.unique(np.concatenate([pf.rows for pf in reads])) if reads else np.zeros(0, np.int64)
    ev_counts = [dict(zip(pf.rows.tolist(), pf.counts.tolist(), strict=True)) for pf in reads]
    ev = 0
    queue = _LineQueue(bw, lines_per_drain)
    drain_end = 0
    j0 = 0

    def read_row(row: int) -> None:
        """The read buffers' stalls on ``row``; later rows move by what exceeds its write stall."""
        c = row + int(shift[row])
        worst = 0
        for b, pf in enumerate(reads):
            cnt = ev_counts[b].get(row, 0)
            if cnt:
                x = _read_stall(pf, done[b], cnt, c)
                done[b] += cnt
                rstall[b][row] = x
                worst = max(worst, x)
        extra = worst - wstall.get(row, 0)
        if extra > 0:
            shift[row + 1:] += extra
            cyc[int(np.searchsorted(orow, row, side="right")):] += extra

    while True:
        event_row = n_rows
        stall_at = drain_from = -1
        if j0 < n:
            ja = int(np.searchsorted(cyc, drain_end, side="left"))
            jb = drain + queue.drained  # element index whose store makes occupancy exceed ``drain``
            jfull = total + queue.drained - 1  # element index whose store leaves no free space
            j = max(j0, ja, jb)
            if j0 <= jfull < min(j, n) and cyc[jfull] < drain_end:
                stall_at, event_row = jfull, int(orow[jfull])
            elif j < n:
                drain_from, event_row = j, int(orow[j])
        if ev < ev_rows.size and ev_rows[ev] < event_row:
            read_row(int(ev_rows[ev]))
            ev += 1
            continue
        if stall_at >= 0:
            stall = drain_end - int(cyc[stall_at])
            cyc[stall_at:] += stall
            shift[event_row + 1:] += stall
            wstall[event_row] = wstall.get(event_row, 0) + stall
            j0 = stall_at + 1
        elif drain_from >= 0:
            queue.close(drain_from + 1)
            drain_end = queue.drain_at(int(cyc[drain_from]))
            j0 = drain_from + 1
        else:
            break
    queue.close(n)
    last = n_rows - 1
    at = last + int(shift[last]) + wstall.get(last, 0)  # SCALE-Sim empties the buffer after the last row
    while queue.pending:
        at = queue.drain_at(at) + 1
    return _Timeline(shift, wstall, rstall, queue.dram())



# ---- USER mode: read buffers that prefetch at a user-given bandwidth and stall -------------------

def _rollout(vals: np.ndarray) -> np.ndarray:
    """A matrix read out along its anti-diagonals (first to last), each from its lowest row up."""
    m, n = vals.shape
    r, c = np.divmod(np.arange(m * n, dtype=np.int64), n)
    return vals.ravel()[np.argsort((r + c) * m + (m - 1 - r), kind="stable")]


def _fetch_orders(sp: _Shape, cfg: ScaleSimConfig) -> tuple[tuple[np.ndarray, int], tuple[np.ndarray, int]]:
    """The order in which SCALE-Sim's USER-mode IFMAP and filter buffers hold addresses (its "prefetch
    matrices"): ``(valid addresses in order, size of the matrix with its null slots)`` for each."""
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    rf_os, rf, cf_os = -(-P // R), -(-K // R), -(-M // C)

    def filt(k: np.ndarray, m: np.ndarray, ok: np.ndarray) -> np.ndarray:
        return np.where(ok, m * K + k + cfg.filter_offset, -1)

    def ifm(p: np.ndarray, k: np.ndarray, ok: np.ndarray) -> np.ndarray:
        return np.where(ok, _ifmap_addr(sp, np.minimum(p, P - 1), np.minimum(k, K - 1), cfg.ifmap_offset), -1)

    flow = cfg.dataflow
    if flow is Dataflow.OS:
        fr, t, c = _grid(rf_os, K, R)
        i_mat = _rollout(ifm(fr * R + c, t, fr * R + c < P).reshape(rf_os * K, R))
        fc, t, c = _grid(cf_os, K, C)
        f_mat = _rollout(filt(t, fc * C + c, fc * C + c < M).reshape(cf_os * K, C))
    elif flow is Dataflow.WS:
        fr, t, c = _grid(rf, P, R)
        i_mat = _rollout(ifm(t, fr * R + c, fr * R + c < K).reshape(rf * P, R))
        fc, t, c = _grid(cf_os, K, C)
        f_mat = filt(t, fc * C + c, fc * C + c < M)
    else:
        cf = -(-P // C)
        fc, k, c = _grid(cf, K, C)
        i_mat = ifm(fc * C + c, k, fc * C + c < P)
        fr, t, c = _grid(rf, M, R)
        f_mat = _rollout(filt(fr * R + c, t, fr * R + c < K).reshape(rf * M, R))
    return (i_mat[i_mat >= 0], i_mat.size), (f_mat[f_mat >= 0], f_mat.size)


@dataclass(frozen=True, slots=True)
class _Prefetches:
    """A USER-mode read buffer's DRAM side: rows whose demands trigger new prefetches (and how many),
    the cycles from one prefetch's completion to the next, and its DRAM trace's start/stop/reads."""

    rows: np.ndarray
    counts: np.ndarray
    gap: int
    dram_start: int
    dram_stop: int
    dram_reads: int


def _prefetches(stream: _Stream, fetch: np.ndarray, fetch_size: int, kb: int, bw: int) -> _Prefetches:
    """Replay SCALE-Sim's USER-mode read buffer on the demand ``stream``.

    The buffer cuts its fetch order into ``N`` sets of ``ceil(words / 100)`` addresses (duplicates
    included); the active half is a cyclic window of ``A`` sets that advances by ``P`` sets at each new
    prefetch. A demand whose address is in no set of the window triggers new prefetches until it is.
    Which demands miss depends on addresses only, so it is found here once; what a miss costs depends
    on the cycle it happens at, found by :func:`_run_user`.
    """
    total = kb * 1024
    active = -(-total // 2)
    prefetch = total - active
    eps = -(-total // SETS_PER_BUFFER)
    cnt = fetch.size
    n_sets = cnt // eps + 1
    a_sets = min(-(-active // eps), n_sets)
    p_sets = min(-(-prefetch // eps), n_sets - a_sets)
    first_lines = min(-(-active // bw), -(-fetch_size // bw))
    lines = -(-prefetch // bw)
    rows: list[int] = []
    counts: list[int] = []
    k = 0
    if p_sets > 0 and stream.addrs.size:
        base = int(min(fetch.min(), stream.addrs.min()))
        span = int(max(fetch.max(), stream.addrs.max())) - base + 1
        dem = stream.addrs - base
        elems = fetch - base
        inwin = np.zeros(span, dtype=bool)
        by_addr = np.argsort(elems, kind="stable")
        sorted_elems = elems[by_addr]

        def window(k: int) -> list[slice]:
            s0 = (k * p_sets) % n_sets
            s1 = s0 + a_sets
            if s1 <= n_sets:
                return [slice(s0 * eps, min(s1 * eps, cnt))]
            return [slice(s0 * eps, cnt), slice(0, min((s1 - n_sets) * eps, cnt))]

        def fill(k: int, on: bool) -> None:
            for sl in window(k):
                inwin[elems[sl]] = on

        fill(0, True)
        n = dem.size
        pos, chunk = 0, 4096
        while pos < n:
            end = min(n, pos + chunk)
            bad = np.flatnonzero(~inwin[dem[pos:end]])
            if bad.size == 0:
                pos, chunk = end, chunk * 2
                continue
            q = pos + int(bad[0])
            a = int(dem[q])
            lo, hi = np.searchsorted(sorted_elems, [a, a + 1])
            if lo == hi:
                raise ValueError(f"address {a + base} is demanded but never fetched")
            sets = by_addr[lo:hi] // eps
            k1 = k + 1
            while not np.any((sets - k1 * p_sets) % n_sets < a_sets):
                k1 += 1
            fill(k, False)
            fill(k1, True)
            row = int(stream.rows[q])
            if rows and rows[-1] == row:
                counts[-1] += k1 - k
            else:
                rows.append(row)
                counts.append(k1 - k)
            k = k1
            pos, chunk = q + 1, 4096
    gap = lines + READ_LATENCY_CYCLES
    return _Prefetches(np.asarray(rows, dtype=np.int64), np.asarray(counts, dtype=np.int64), gap,
                       -first_lines, -1 + k * gap, (first_lines + k * lines) * bw)


def _read_stall(pf: _Prefetches, done: int, count: int, cyc: int) -> int:
    """Stall of a demand row at cycle ``cyc`` whose reads trigger ``count`` new prefetches after
    ``done`` earlier ones. SCALE-Sim issues prefetches back to back from the previous one's
    completion (whatever the demand cycle), and a late one adds its lateness twice; an early one
    moves the row's service cycle back to the prefetch's completion."""
    t = cyc + READ_LATENCY_CYCLES
    for i in range(done + 1, done + count + 1):
        lp = -1 + i * pf.gap
        t = lp if lp <= t else 2 * lp - t
    return t - cyc - READ_LATENCY_CYCLES


# ---- CALC mode read buffers, fold by fold ------------------------------------------------------

_Block = tuple[np.ndarray, np.ndarray]


def _fold_blocks(sp: _Shape, cfg: ScaleSimConfig,
                 operand: str) -> tuple[int, list[tuple[int, int]], Callable[[tuple[int, int]], _Block]]:
    """One read operand's demands, fold by fold: ``(rows per fold, pattern of each fold, block)``,
    where ``block(pattern)`` gives the fold's ``(rows within the fold, addresses)`` in service order.

    Folds repeat (all OS IFMAP folds of one row fold demand the same addresses at the same rows, and
    so on), so a pattern is built once; within a fold, demands are ordered by row, then array column,
    a permutation of the fold's operand block found once.
    """
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    flow = cfg.dataflow
    if flow is Dataflow.OS:
        rf, cf, T, fold_rows = -(-P // R), -(-M // C), K, R + C + K - 2
    elif flow is Dataflow.WS:
        rf, cf, T, fold_rows = -(-K // R), -(-M // C), P, 2 * R + C + P - 2
    else:
        rf, cf, T, fold_rows = -(-K // R), -(-P // C), M, 2 * R + C + M - 2
    preload = (flow, operand) in ((Dataflow.WS, "filter"), (Dataflow.IS, "ifmap"))
    # the fold's slots in service order (by row, then array column), generated in that order
    width = C if preload or (flow, operand) == (Dataflow.OS, "filter") else R

    def grid(w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(row in fold, a, c)`` of the slots of array columns ``c < w``, in service order."""
        if preload:  # a block of R x C loaded, bottom row first, before the stream
            a = np.repeat(np.arange(R - 1, -1, -1, dtype=np.int64), w)
            c = np.tile(np.arange(w, dtype=np.int64), R)
            return R - 1 - a, a, c
        # a stream of T steps skewed over the array's rows (ifmap, IS filter) or columns (OS filter):
        # diagonals d = a + c, the first and last few partly filled
        col = np.arange(w, dtype=np.int64)
        d = np.arange(T + w - 1, dtype=np.int64)
        lo_c, hi_c = np.maximum(d - T + 1, 0), np.minimum(d, w - 1)
        if T >= w:   # the middle diagonals are full: build them without a mask
            c = np.concatenate([col[: k + 1] for k in range(w - 1)] + [np.tile(col, T - w + 1)]
                               + [col[k:] for k in range(1, w)])
        else:
            c = np.concatenate([np.arange(lo, hi + 1, dtype=np.int64) for lo, hi in zip(lo_c.tolist(), hi_c.tolist(), strict=True)])
        rel = np.repeat(d, hi_c - lo_c + 1)
        a = rel - c
        return rel + (0 if flow is Dataflow.OS else R), a, c

    by_fr = (flow, operand) in ((Dataflow.OS, "ifmap"), (Dataflow.WS, "ifmap"), (Dataflow.IS, "filter"))
    by_fc = (flow, operand) == (Dataflow.OS, "filter")
    keys = [(0 if by_fc else fr, 0 if by_fr else fc) for fc in range(cf) for fr in range(rf)]
    # a slot's address is part_a[a] + part_c[c]: one operand index runs along a, the other along c
    ifmap = operand == "ifmap"
    if ifmap:  # pixel p, window index k: the pixel's window corner plus the index's offset
        orow, ocol = np.divmod(np.arange(P, dtype=np.int64), sp.ew)
        room_r, room_c = sp.h - orow * sp.sh, sp.w - ocol * sp.sw   # input rows / columns from the corner
        pbase = ((sp.h - room_r) * sp.w + sp.w - room_c) * sp.c + cfg.ifmap_offset
        kr, rem = np.divmod(np.arange(K, dtype=np.int64), sp.s * sp.c)
        kc, ch = np.divmod(rem, sp.c)
        koff = (kr * sp.w + kc) * sp.c + ch
        partial = bool(room_r[-1] < sp.r or room_c[-1] < sp.s)   # some window runs past the input
    kinds = {(Dataflow.OS, "ifmap"): ("k", "p"), (Dataflow.WS, "ifmap"): ("p", "k"),
             (Dataflow.IS, "ifmap"): ("k", "p"), (Dataflow.OS, "filter"): ("k", "m"),
             (Dataflow.WS, "filter"): ("k", "m"), (Dataflow.IS, "filter"): ("m", "k")}[(flow, operand)]
    bounds = {"p": P, "k": K, "m": M}
    n_a, n_c = (R, C) if preload else (T, width)

    def part(kind: str, start: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Address parts, validity and (clipped) indices of operand indices ``start .. start + n - 1``."""
        idx = np.arange(start, start + n, dtype=np.int64)
        ok = idx < bounds[kind]
        idx = np.minimum(idx, bounds[kind] - 1)
        if kind == "p":
            return pbase[idx], ok, idx
        if kind == "k":
            return (koff[idx] if ifmap else idx), ok, idx
        return idx * K + cfg.filter_offset, ok, idx

    pa0, _, ia0 = part(kinds[0], 0, n_a)
    grids: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = {}

    def block(pattern: tuple[int, int]) -> _Block:
        fr, fc = pattern
        starts = {"p": fc * C if flow is Dataflow.IS else fr * R, "k": fr * R, "m": fc * C}
        pc, okc, ic = part(kinds[1], starts[kinds[1]], n_c)
        # valid columns are a prefix; streams take only those (their a index always starts at 0)
        w = n_c if preload else int(np.count_nonzero(okc))
        if w not in grids:
            rel, a, c = grid(w)
            grids[w] = (rel, a, c, None if preload else pa0[a])
        rel, a, c, slots_a = grids[w]
        if slots_a is None:
            pa, oka, ia = part(kinds[0], starts[kinds[0]], n_a)
            addr = pa[a] + pc[c]
            keep = None if oka.all() and okc.all() else oka[a] & okc[c]
        else:   # the full middle diagonals hold every column in turn: add the column parts by broadcasting
            ia, keep = ia0, None
            h0 = w * (w - 1) // 2
            h1 = slots_a.size - h0
            addr = np.empty_like(slots_a)
            if T >= w:
                np.add(slots_a[h0:h1].reshape(-1, w), pc[:w], out=addr[h0:h1].reshape(-1, w))
                np.add(slots_a[:h0], pc[c[:h0]], out=addr[:h0])
                np.add(slots_a[h1:], pc[c[h1:]], out=addr[h1:])
            else:
                np.add(slots_a, pc[c], out=addr)
        if ifmap and partial:
            p, k = (ia[a], ic[c]) if kinds[0] == "p" else (ic[c], ia[a])
            inside = (kr[k] < room_r[p]) & (kc[k] < room_c[p])
            keep = inside if keep is None else keep & inside
        if keep is None:
            return rel, addr
        return rel[keep], addr[keep]

    return fold_rows, keys, block


def _calc_read_buffer(sp: _Shape, cfg: ScaleSimConfig, operand: str, kb: int, shift_at: Callable[[int], int],
                      fast: bool = True) -> tuple[int, int, int, int, int]:
    """DRAM ``(start, stop, reads)`` of an estimate-mode read buffer and the first / last demand rows.

    The buffer fetches each address once per window of ``cap`` distinct addresses taken in demand
    order; a window closes when full and the next starts empty. Folds are fed one by one (memory of
    one fold), and a fold whose pattern was wholly demanded inside the open window is skipped: it
    adds no new address. Where the folds' patterns come back every ``rf`` folds (OS and WS IFMAP, IS
    filter), the state at the start of each such cycle (where the open window started, relative to
    it, and how full it is) decides all that follows; once a state comes back, whole periods are
    skipped, adding their windows, and the last cycle is fed again.
    """
    total = kb * 1024
    per_set = total // SETS_PER_BUFFER
    cap = (SETS_PER_BUFFER // 2) * per_set
    fold_rows, keys, block = _fold_blocks(sp, cfg, operand)
    cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    firsts: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}   # pattern -> distinct addresses, first demands
    seen: np.ndarray | None = None
    mark: np.ndarray | None = None
    scratch: np.ndarray | None = None
    lo = 0 if operand == "ifmap" else cfg.filter_offset   # addresses are kept relative to lo
    ramp = np.zeros(0, dtype=np.int64)   # 0, 1, 2, ...: each pattern's demand indices
    count = 0           # distinct addresses in the open window
    opened = (0, 0)     # (fold, index in fold) where the open window started
    last_whole: dict[tuple[int, int], int] = {}   # pattern -> last fold fed whole
    closes = 0
    last_close_row = -1
    first_row = last_row = -1
    rf, cf, _, _ = _folds(sp, cfg)
    cyclic = (cfg.dataflow, operand) in ((Dataflow.OS, "ifmap"), (Dataflow.WS, "ifmap"), (Dataflow.IS, "filter"))
    period = rf if fast and cyclic and cf > 1 else 0
    states: dict[tuple[int, int, int], tuple[int, int]] = {}   # state -> (fold, windows closed before)
    f = -1
    while f + 1 < len(keys):
        f += 1
        if period and f % period == 0:
            state = (opened[0] - f, opened[1], count)
            if state not in states:
                states[state] = (f, closes)
            else:
                f0, closes0 = states[state]
                q = (len(keys) - f - period) // (f - f0)   # whole periods to skip, one cycle left
                if q > 0:
                    jump = q * (f - f0)
                    if closes > closes0:
                        last_close_row += jump * fold_rows
                    closes += q * (closes - closes0)
                    opened = (opened[0] + jump, opened[1])
                    last_whole = {k: v + jump for k, v in last_whole.items()}
                    f += jump
                period = 0
        key = keys[f]
        if key not in cache:
            rel, addr = block(key)
            if ramp.size < addr.size:
                ramp = np.arange(addr.size, dtype=np.int64)
            cache[key] = (rel, addr - lo if lo else addr, ramp[: addr.size])
        rel, a, idx = cache[key]
        if a.size == 0:
            continue
        base = f * fold_rows
        if first_row < 0:
            first_row = base + int(rel[0])
        last_row = base + int(rel[-1])
        g = last_whole.get(key)
        if g is not None and (g > opened[0] or (g == opened[0] and opened[1] == 0)):
            last_whole[key] = f
            continue
        if seen is None:
            hi = (sp.h * sp.w * sp.c + cfg.ifmap_offset) if operand == "ifmap" else cfg.filter_offset + sp.window * sp.m
            seen = np.zeros(hi - lo, dtype=bool)
            scratch = np.zeros(hi - lo, dtype=bool)
            mark = np.zeros(hi - lo, dtype=np.int64)
        assert mark is not None and scratch is not None
        start = 0
        if fast:   # fold fed from its start: only its distinct addresses matter
            if key not in firsts:   # the pattern's distinct addresses, and where each is first demanded
                scratch[a] = True
                u = np.flatnonzero(scratch)
                scratch[u] = False
                mark[a[::-1]] = idx[::-1]
                firsts[key] = (u, mark[u])
            u, first_at = firsts[key]
            fresh = u.size - int(np.count_nonzero(seen[u]))   # what the window lacks
            if count + fresh < cap:
                seen[u] = True
                count += fresh
                start = a.size
            else:   # the window fills at the (cap - count)-th new address's first demand
                need = cap - count
                hit = int(np.partition(first_at[~seen[u]], need - 1)[need - 1])
                closes += 1
                last_close_row = base + int(rel[hit])
                seen[:] = False
                count = 0
                start = hit + 1
                opened = (f, start)
                if start < a.size:   # the rest of the fold opens the next window; it is done if it cannot fill it
                    seen[a[start:]] = True
                    rest_new = int(np.count_nonzero(seen))
                    if rest_new < cap:
                        count, start = rest_new, a.size
                    else:
                        seen[:] = False
        while start < a.size:
            sub, sidx = a[start:], idx[: a.size - start]
            mark[sub[::-1]] = sidx[::-1]
            new = (mark[sub] == sidx) & ~seen[sub]
            cs = np.cumsum(new)
            if count + int(cs[-1]) < cap:
                seen[sub[new]] = True
                count += int(cs[-1])
                break
            hit = int(np.searchsorted(cs, cap - count))
            closes += 1
            last_close_row = base + int(rel[start + hit])
            seen[:] = False
            count = 0
            start += hit + 1
            opened = (f, start)
        if opened[0] != f:  # no window closed inside this fold: all of it is in the open window
            last_whole[key] = f
    rest = count
    if closes == 0:
        sets = -(-rest // per_set)
        need = -(-(sets * per_set) // READ_BACKING_BW_CALC)
        return -need, -1, rest, first_row, last_row
    first = first_row + shift_at(first_row)
    start_cyc = first - 1 - READ_LATENCY_CYCLES - -(-cap // READ_BACKING_BW_CALC) + 1 + READ_LATENCY_CYCLES
    stop = last_close_row + shift_at(last_close_row) + READ_LATENCY_CYCLES
    return start_cyc, stop, closes * cap + rest, first_row, last_row


# ---- CALC mode without streams: each operand's demands as a layout of folds ---------------------
#
# Within a fold, the demands of one operand form either a *skewed* block (entry (a, c), a < t, of
# array column c < w at row ``off + a + c``, served by row then column) or a *preloaded* block (w
# rows of t entries, row a at ``off - a``). Counting the demands above a row, and finding the row of
# the i-th demand, have closed forms; the streams are never built (this is how CALC mode runs; the
# streams remain the reference, ``_simulate_streams``).

def _skew_count(x: int, w: int, t: int) -> int:
    """Entries ``(a < t, c < w)`` with ``a + c < x``."""
    if x <= 0 or w <= 0 or t <= 0:
        return 0
    full = min(max(x - t + 1, 0), w)          # columns whose t entries all lie below x
    hi = min(x - 1, w - 1)                    # the others hold x - c entries below x
    n = hi - full + 1
    return full * t + (n * x - (full + hi) * n // 2 if n > 0 else 0)


def _skew_find(i: int, w: int, t: int) -> int:
    """``a + c`` of the i-th entry of a ``t x w`` skewed block, entries ordered by ``a + c`` then ``c``."""
    m, big = min(w, t), max(w, t)
    tri = m * (m + 1) // 2
    if i < tri:
        return (math.isqrt(8 * i + 1) - 1) // 2
    if i < tri + (big - m) * m:
        return m + (i - tri) // m
    j = w * t - 1 - i                          # the last entries mirror the first ones
    return w + t - 2 - (math.isqrt(8 * j + 1) - 1) // 2


class _Fold(NamedTuple):
    """One fold's demands of one operand (see above), ``n`` in all. ``skip``: columns with no
    demand (pixels whose window lies past the input); ``valid``: for skewed blocks whose columns
    demand only some ``a`` (pixels, for WS IFMAP), how many ``a < y`` they demand."""

    off: int
    w: int
    t: int
    n: int
    preload: bool = False
    skip: tuple[int, ...] = ()
    valid: Callable[[int], int] | None = None

    def count_lt(self, x: int) -> int:
        """Demands of the fold served at rows below ``x`` (counted from the fold's first row)."""
        if self.preload:   # w rows of t entries; row a is served at off - a
            return self.t * max(0, self.w - max(self.off + 1 - x, 0))
        y = x - self.off
        if self.valid is None:
            return _skew_count(y, self.w, self.t) - sum(min(max(y - c, 0), self.t) for c in self.skip)
        g = self.valid
        return sum(g(min(max(y - c, 0), self.t)) for c in range(self.w) if c not in self.skip)

    def rel_of(self, i: int) -> int:
        """The row within the fold of the fold's i-th demand (0 <= i < n)."""
        if self.preload:
            return self.off - (self.w - 1 - i // self.t)
        if self.valid is None and not self.skip:
            return self.off + _skew_find(i, self.w, self.t)
        lo, hi = self.off, self.off + self.w + self.t - 2   # smallest x with count_lt(x + 1) > i
        while lo < hi:
            mid = (lo + hi) // 2
            if self.count_lt(mid + 1) > i:
                hi = mid
            else:
                lo = mid + 1
        return lo


@dataclass(frozen=True, slots=True)
class _Layout:
    """An operand's demand stream in service order, fold by fold: ``fold(f)`` describes fold f (of
    ``folds``), whose demands follow the ``start(f)`` demands of the folds before it, at rows from
    ``f * fold_rows``. Fold f = ``fc * rf + fr`` holds either ``cum[f + 1] - cum[f]`` demands or, where
    ``prod = (rf, cf, a, a_last, b, b_last)``, ``A(fr) * B(fc)``: ``a`` for every row fold but the
    last, ``a_last`` for that one, and so for ``B``."""

    fold_rows: int
    folds: int
    n: int
    fold: Callable[[int], _Fold]
    cum: list[int] | None = None
    prod: tuple[int, int, int, int, int, int] | None = None

    def start(self, f: int) -> int:
        if self.cum is not None:
            return self.cum[f]
        assert self.prod is not None
        rf, cf, a, a_last, b, b_last = self.prod
        fc, fr = divmod(f, rf)
        return fc * b * ((rf - 1) * a + a_last) + (b if fc < cf - 1 else b_last) * fr * a

    def locate(self, j: int) -> tuple[int, int]:
        """``(fold, index within it)`` of the stream's j-th demand."""
        if self.cum is not None:
            f = bisect.bisect_right(self.cum, j) - 1
            return f, j - self.cum[f]
        assert self.prod is not None
        rf, cf, a, a_last, b, b_last = self.prod
        per_fc = b * ((rf - 1) * a + a_last)
        fc = min(j // per_fc, cf - 1)
        j -= fc * per_fc
        per_fr = (b if fc < cf - 1 else b_last) * a
        fr = min(j // per_fr, rf - 1)
        return fc * rf + fr, j - fr * per_fr

    def row_of(self, j: int) -> int:
        """Row of the stream's j-th demand."""
        f, i = self.locate(j)
        return f * self.fold_rows + self.fold(f).rel_of(i)

    def count_below(self, row: int) -> int:
        """Number of demands at rows ``< row`` (the index of the first demand at or after ``row``)."""
        if row <= 0:
            return 0
        f = row // self.fold_rows
        if f >= self.folds:
            return self.n
        return self.start(f) + self.fold(f).count_lt(row - f * self.fold_rows)


def _folds(sp: _Shape, cfg: ScaleSimConfig) -> tuple[int, int, int, int]:
    """``(row folds, column folds, steps per fold, rows per fold)`` of the layer on the array."""
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    if cfg.dataflow is Dataflow.OS:
        return -(-P // R), -(-M // C), K, R + C + K - 2
    if cfg.dataflow is Dataflow.WS:
        return -(-K // R), -(-M // C), P, 2 * R + C + P - 2
    return -(-K // R), -(-P // C), M, 2 * R + C + M - 2


def _extent(n: int, size: int, i: int) -> int:
    return min(size, n - i * size)


def _layout(counts: np.ndarray, fold_rows: int, fold: Callable[[int], _Fold]) -> _Layout:
    cum = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=cum[1:])
    return _Layout(fold_rows, counts.size, int(cum[-1]), fold, cum=cum.tolist())


def _prod_layout(fold_rows: int, fold: Callable[[int], _Fold], rf: int, cf: int, a: int, a_last: int, b: int,
                 b_last: int) -> _Layout:
    """A layout whose fold ``(fc, fr)`` holds ``A(fr) * B(fc)`` demands (see :class:`_Layout`)."""
    n = ((rf - 1) * a + a_last) * ((cf - 1) * b + b_last)
    return _Layout(fold_rows, rf * cf, n, fold, prod=(rf, cf, a, a_last, b, b_last))


def _ofmap_layout(sp: _Shape, cfg: ScaleSimConfig) -> _Layout:
    R, C = cfg.array_rows, cfg.array_cols
    M, P = sp.m, sp.npix
    rf, cf, T, fold_rows = _folds(sp, cfg)
    if cfg.dataflow is Dataflow.OS:   # fold: pixels x filters, written along anti-diagonals

        def fold(f: int) -> _Fold:
            u, w = _extent(P, R, f % rf), _extent(M, C, f // rf)
            return _Fold(T - 1 + R - u, w, u, u * w)
        return _prod_layout(fold_rows, fold, rf, cf, R, P - (rf - 1) * R, C, M - (cf - 1) * C)
    n_c = M if cfg.dataflow is Dataflow.WS else P   # fold: T steps x the column fold's filters / pixels

    def fold_t(f: int) -> _Fold:
        w = _extent(n_c, C, f // rf)
        return _Fold(2 * R - 1, w, T, w * T)
    return _prod_layout(fold_rows, fold_t, rf, cf, 1, 1, C * T, (n_c - (cf - 1) * C) * T)


@dataclass(frozen=True, slots=True)
class _Pixels:
    """Which output pixels read their whole window (``True``) or nothing (their window starts past
    the input): SCALE-Sim's last output row / column can do either, or read part of their window,
    in which case ``binary`` is False and no layout is built for the IFMAP."""

    binary: bool
    rows: int   # output rows that read (the others read nothing)
    cols: int

    def below(self, y: int, ew: int) -> int:
        """Reading pixels among the first ``y``."""
        q, r = divmod(y, ew)
        return min(q, self.rows) * self.cols + (min(r, self.cols) if q < self.rows else 0)


def _pixels(sp: _Shape) -> _Pixels:
    vr = sp.h - (sp.eh - 1) * sp.sh
    vc = sp.w - (sp.ew - 1) * sp.sw
    binary = (vr >= sp.r or vr <= 0) and (vc >= sp.s or vc <= 0)
    return _Pixels(binary, sp.eh - (vr <= 0), sp.ew - (vc <= 0))


def _read_layout(sp: _Shape, cfg: ScaleSimConfig, operand: str, px: _Pixels) -> _Layout | None:
    """The layout of a read operand's demands, or None where a pixel reads part of its window."""
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    rf, cf, T, fold_rows = _folds(sp, cfg)
    flow = cfg.dataflow
    ew = sp.ew
    full = px.rows == sp.eh and px.cols == ew
    if operand == "ifmap" and not px.binary:
        return None
    fold: Callable[[int], _Fold]
    if operand == "filter" and flow is Dataflow.OS:   # columns: filters of the column fold; a: window index

        def fold(f: int) -> _Fold:
            w = _extent(M, C, f // rf)
            return _Fold(0, w, K, w * K)
        return _prod_layout(fold_rows, fold, rf, cf, 1, 1, C * K, (M - (cf - 1) * C) * K)
    if operand == "filter" and flow is Dataflow.WS:   # preloaded: rows of window indices, columns of filters

        def fold(f: int) -> _Fold:
            w, t = _extent(K, R, f % rf), _extent(M, C, f // rf)
            return _Fold(R - 1, w, t, w * t, preload=True)
        return _prod_layout(fold_rows, fold, rf, cf, R, K - (rf - 1) * R, C, M - (cf - 1) * C)
    if operand == "filter":                           # columns: window indices of the row fold; a: filter

        def fold(f: int) -> _Fold:
            w = _extent(K, R, f % rf)
            return _Fold(R, w, M, w * M)
        return _prod_layout(fold_rows, fold, rf, cf, R * M, (K - (rf - 1) * R) * M, 1, 1)
    if flow is Dataflow.OS:          # columns: pixels of the row fold; a: window index

        def fold(f: int) -> _Fold:
            fr = f % rf
            w = _extent(P, R, fr)
            skip: tuple[int, ...] = ()
            if not full:
                p0 = fr * R
                skip = tuple(c for c in range(w) if (p0 + c) // ew >= px.rows or (p0 + c) % ew >= px.cols)
            return _Fold(0, w, K, (w - len(skip)) * K, skip=skip)
        if full:
            return _prod_layout(fold_rows, fold, rf, cf, R * K, (P - (rf - 1) * R) * K, 1, 1)
        q, r = np.divmod(np.minimum(R * np.arange(rf + 1), P), ew)
        live = np.diff(np.minimum(q, px.rows) * px.cols + np.where(q < px.rows, np.minimum(r, px.cols), 0))
        return _layout(np.tile(live * K, cf), fold_rows, fold)
    if flow is Dataflow.WS:          # columns: window indices of the row fold; a: pixel
        n_live = px.rows * px.cols
        g = None if full else (lambda y: px.below(y, ew))

        def fold(f: int) -> _Fold:
            w = _extent(K, R, f % rf)
            return _Fold(R, w, P, w * n_live, valid=g)
        return _prod_layout(fold_rows, fold, rf, cf, R * n_live, (K - (rf - 1) * R) * n_live, 1, 1)
    # preloaded: rows of window indices, columns of pixels

    def fold_p(f: int) -> _Fold:
        fc = f // rf
        w = _extent(K, R, f % rf)
        t = px.below(min(fc * C + C, P), ew) - px.below(fc * C, ew)
        return _Fold(R - 1, w, t, w * t, preload=True)
    if full:
        return _prod_layout(fold_rows, fold_p, rf, cf, R, K - (rf - 1) * R, C, P - (cf - 1) * C)
    ku = np.minimum(R, K - R * np.arange(rf))
    q, r = np.divmod(np.minimum(C * np.arange(cf + 1), P), ew)
    live = np.diff(np.minimum(q, px.rows) * px.cols + np.where(q < px.rows, np.minimum(r, px.cols), 0))
    return _layout((live[:, None] * ku[None, :]).ravel(), fold_rows, fold_p)


def _distinct(sp: _Shape, operand: str) -> int:
    """Distinct addresses an operand's demands touch: every filter weight, the input pixels some
    window covers."""
    if operand == "filter":
        return sp.window * sp.m

    def covered(n: int, k: int, s: int, e: int) -> int:
        if s < k:
            return min(n, (e - 1) * s + k)
        return (e - 1) * k + max(0, min(k, n - (e - 1) * s))
    return covered(sp.h, sp.r, sp.sh, sp.eh) * covered(sp.w, sp.s, sp.sw, sp.ew) * sp.c


def _groups(sp: _Shape, cfg: ScaleSimConfig, operand: str, lay: _Layout) -> list[tuple[int, int]] | None:
    """The operand's demands as groups ``(size, times)``: a block of ``size`` distinct addresses
    demanded ``times`` times in a row, no address in two groups; None where windows overlap (an input
    element comes back within a block)."""
    C = cfg.array_cols
    K, M = sp.window, sp.m
    rf, cf, _, _ = _folds(sp, cfg)
    flow = cfg.dataflow
    if operand == "filter":
        if flow is Dataflow.OS:       # a column fold's filters, once per row fold
            return [(C * K, rf)] * (cf - 1) + [((M - (cf - 1) * C) * K, rf)]
        if flow is Dataflow.WS:       # each weight once
            return [(K * M, 1)]
        return [(K * M, cf)]          # all filters, once per column fold
    if sp.r > sp.sh or sp.s > sp.sw:
        return None
    if flow is Dataflow.IS:           # each (pixel, window index) once
        return [(lay.n, 1)]
    return [(lay.n // cf, cf)]        # the whole input, once per column fold


def _group_windows(groups: list[tuple[int, int]], cap: int) -> tuple[int, int, int]:
    """SCALE-Sim's windows of ``cap`` distinct addresses over groups of repeated blocks: ``(windows
    closed, addresses in the open one, index of the demand that closed the last)``.

    A block of at least ``cap`` addresses comes back only after ``cap`` demands, so each of its
    demands fetches. A smaller one, repeated, fetches once unless a window closes in its first copy,
    at offset ``o``: the next window then fetches the ``size`` demands from ``o`` on (what the closed
    window held is fetched again) and nothing after."""
    cnt = closes = 0
    last = -1
    g0 = 0
    for size, times in groups:
        if size >= cap or times == 1:
            tot = cnt + size * times
            k = tot // cap
            if k:
                closes += k
                last = g0 + k * cap - cnt - 1
            cnt = tot % cap
        elif cnt + size < cap:
            cnt += size
        else:
            closes += 1
            last = g0 + cap - cnt - 1
            cnt = min(size, size * times - (cap - cnt))
        g0 += size * times
    return closes, cnt, last


def _calc_read_closed(sp: _Shape, cfg: ScaleSimConfig, operand: str, kb: int, lay: _Layout,
                      shift_at: Callable[[int], int]) -> tuple[int, int, int, int, int] | None:
    """:func:`_calc_read_buffer`'s result in closed form where the operand fits one window or is made
    of repeated disjoint blocks (:func:`_groups`); None otherwise."""
    total = kb * 1024
    per_set = total // SETS_PER_BUFFER
    cap = (SETS_PER_BUFFER // 2) * per_set
    first_row, last_row = lay.row_of(0), lay.row_of(lay.n - 1)
    groups = _groups(sp, cfg, operand, lay)
    if groups is None:
        distinct = _distinct(sp, operand)
        if distinct >= cap:
            return None
        closes, rest, last_close = 0, distinct, -1
    else:
        closes, rest, last_close = _group_windows(groups, cap)
    if closes == 0:
        sets = -(-rest // per_set)
        need = -(-(sets * per_set) // READ_BACKING_BW_CALC)
        return -need, -1, rest, first_row, last_row
    last_close_row = lay.row_of(last_close)
    first = first_row + shift_at(first_row)
    start_cyc = first - 1 - READ_LATENCY_CYCLES - -(-cap // READ_BACKING_BW_CALC) + 1 + READ_LATENCY_CYCLES
    stop = last_close_row + shift_at(last_close_row) + READ_LATENCY_CYCLES
    return start_cyc, stop, closes * cap + rest, first_row, last_row


@dataclass(frozen=True, slots=True)
class _Stalls:
    """The OFMAP write buffer's stalls in CALC mode: ``(row, cycles)`` in row order; rows after a
    stalled row are served that much later."""

    rows: list[int]
    cum: list[int]              # cum[i]: cycles of the first i stalls
    write_stalls: dict[int, int]
    ofmap_dram: tuple[int, int, int]

    def shift_at(self, row: int) -> int:
        return self.cum[bisect.bisect_left(self.rows, row)]

    def row_cycle(self, row: int) -> int:
        return row + self.shift_at(row)


def _run_calc(out: _Layout, kb: int, bw: int, n_rows: int) -> _Stalls:
    """:func:`_run` without read buffers, on a layout instead of a stream: the same drains and stalls,
    found with a handful of lookups per drain. Demands at and after ``j0`` are served ``late`` cycles
    after their row (every stall so far came before them)."""
    total = kb * 1024
    drain = total - math.ceil(total * 0.5)
    lines_per_drain = -(-drain // bw)
    n = out.n
    rows: list[int] = []
    cum = [0]
    wstall: dict[int, int] = {}
    late = 0
    queue = _LineQueue(bw, lines_per_drain)
    drain_end = j0 = 0

    while j0 < n:
        ja = out.count_below(drain_end - late)
        jb = drain + queue.drained
        jfull = total + queue.drained - 1
        j = max(j0, ja, jb)
        if jfull < min(j, n) and jfull >= j0:
            row = out.row_of(jfull)
            if row + late < drain_end:
                stall = drain_end - row - late
                late += stall
                if rows and rows[-1] == row:
                    cum[-1] += stall
                else:
                    rows.append(row)
                    cum.append(cum[-1] + stall)
                wstall[row] = wstall.get(row, 0) + stall
                j0 = jfull + 1
                continue
        if j >= n:
            break
        queue.close(j + 1)
        drain_end = queue.drain_at(out.row_of(j) + late)
        j0 = j + 1
    queue.close(n)
    last = n_rows - 1
    at = last + cum[bisect.bisect_left(rows, last)] + wstall.get(last, 0)
    while queue.pending:
        at = queue.drain_at(at) + 1
    return _Stalls(rows, cum, wstall, queue.dram())


def _fold_stats(sp: _Shape, cfg: ScaleSimConfig) -> tuple[float, float]:
    """Average mapping efficiency and compute utilisation over folds, summed in SCALE-Sim's order
    (column folds outer, row folds inner); folds take at most four values, so the lists are built
    by repetition."""
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    flow = cfg.dataflow
    if flow is Dataflow.OS:
        sr, sc, T, cyc = P, M, K, R + C + K - 2
    elif flow is Dataflow.WS:
        sr, sc, T, cyc = K, M, P, 2 * R + 2 * C + P - 3
    else:
        sr, sc, T, cyc = K, P, M, 2 * R + 2 * C + M - 3
    rf, cf = -(-sr // R), -(-sc // C)
    maps: list[float] = []
    utils: list[float] = []
    for cu, times in ((C, cf - 1), (sc - (cf - 1) * C, 1)):
        if times == 0:
            continue
        used = [R * cu] * (rf - 1) + [(sr - (rf - 1) * R) * cu]
        maps += [u / (R * C) for u in used] * times
        utils += [u * T / (R * C * cyc) for u in used] * times
    return sum(maps) / len(maps), sum(utils) / len(utils)


def stall_free_cycles(layer: Layer, cfg: ScaleSimConfig) -> int:
    """SCALE-Sim's "Total Cycles" of a stall-free run, in closed form: the index of the last demand row,
    ``folds * (R + C + T - 2) - 1`` (OS) or ``folds * (2R + C + T - 2) - 1`` (WS, IS)."""
    sp = scalesim_shape(layer)
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    if cfg.dataflow is Dataflow.OS:
        return -(-P // R) * -(-M // C) * (R + C + K - 2) - 1
    if cfg.dataflow is Dataflow.WS:
        return -(-K // R) * -(-M // C) * (2 * R + C + P - 2) - 1
    return -(-K // R) * -(-P // C) * (2 * R + C + M - 2) - 1


def _sram_counts(sp: _Shape, cfg: ScaleSimConfig, folds: int) -> tuple[int, int, int]:
    R, C = cfg.array_rows, cfg.array_cols
    K, M, P = sp.window, sp.m, sp.npix
    if cfg.dataflow is Dataflow.OS:
        return -(-M // C) * K * P, -(-P // R) * K * M, P * M + folds * (R + C)
    if cfg.dataflow is Dataflow.WS:
        return -(-M // C) * P * K, K * M, -(-K // R) * P * M
    return K * P, -(-P // C) * M * K, -(-K // R) * M * P


def simulate_layer(layer: Layer, cfg: ScaleSimConfig) -> ScaleSimLayerReport:
    """What SCALE-Sim 3.0.0 reports for ``layer`` on ``cfg`` (``InterfaceBandwidth`` CALC or USER).

    CALC mode runs without building demand streams (:func:`_simulate_calc`); USER mode, and CALC mode
    when asked (``_simulate_streams``, the reference the closed forms are tested against), replay them.
    """
    if cfg.user_bandwidth:
        return _simulate_streams(layer, cfg)
    return _simulate_calc(layer, cfg)


_Read = tuple[int, int, int, tuple[int, int], dict[int, int]]   # DRAM start, stop, reads; demand rows; stalls


def _report(layer: Layer, cfg: ScaleSimConfig, sp: _Shape, n_rows: int, folds: int, tl: _Timeline | _Stalls,
            stall: int, ifmap: _Read, filt: _Read, out_rows: tuple[int, int]) -> ScaleSimLayerReport:
    o_start, o_stop, o_writes = tl.ofmap_dram
    total = tl.row_cycle(n_rows - 1) + tl.write_stalls.get(n_rows - 1, 0)
    sram_i, sram_f, sram_o = _sram_counts(sp, cfg, folds)
    mapping, util = _fold_stats(sp, cfg)
    num_compute = sp.npix * sp.m * sp.window

    def span(rows: tuple[int, int], lat: int, own: dict[int, int]) -> tuple[int, int]:
        r0, r1 = rows
        return tl.row_cycle(r0) + lat + own.get(r0, 0), tl.row_cycle(r1) + lat + own.get(r1, 0)

    i_start, i_stop, i_reads, i_rows, i_own = ifmap
    f_start, f_stop, f_reads, f_rows, f_own = filt
    (is0, is1), (fs0, fs1) = span(i_rows, READ_LATENCY_CYCLES, i_own), span(f_rows, READ_LATENCY_CYCLES, f_own)
    os0, os1 = span(out_rows, 0, tl.write_stalls)
    return ScaleSimLayerReport(
        layer=layer.name, total_cycles_incl_prefetch=int(o_stop - min(i_start, f_start)), total_cycles=total,
        stall_cycles=stall, overall_util_pct=num_compute * 100 / (total * cfg.array_rows * cfg.array_cols),
        mapping_efficiency_pct=mapping * 100, compute_util_pct=util * 100,
        ifmap_sram_start=is0, ifmap_sram_stop=is1, ifmap_sram_reads=sram_i,
        filter_sram_start=fs0, filter_sram_stop=fs1, filter_sram_reads=sram_f,
        ofmap_sram_start=os0, ofmap_sram_stop=os1, ofmap_sram_writes=sram_o,
        ifmap_dram_start=i_start, ifmap_dram_stop=i_stop, ifmap_dram_reads=i_reads,
        filter_dram_start=f_start, filter_dram_stop=f_stop, filter_dram_reads=f_reads,
        ofmap_dram_start=o_start, ofmap_dram_stop=o_stop, ofmap_dram_writes=o_writes)


def _simulate_calc(layer: Layer, cfg: ScaleSimConfig) -> ScaleSimLayerReport:
    """CALC mode from layouts: the OFMAP buffer's drains and stalls found by lookups, the read buffers
    in closed form where an operand fits one window or every demand fetches, streamed otherwise."""
    sp = scalesim_shape(layer)
    rf, cf, _, fold_rows = _folds(sp, cfg)
    n_rows = rf * cf * fold_rows
    out = _ofmap_layout(sp, cfg)
    tl = _run_calc(out, cfg.ofmap_sram_kb, cfg.array_cols, n_rows)
    px = _pixels(sp)
    reads: list[_Read] = []
    for operand, kb in (("ifmap", cfg.ifmap_sram_kb), ("filter", cfg.filter_sram_kb)):
        lay = _read_layout(sp, cfg, operand, px)
        got = None if lay is None else _calc_read_closed(sp, cfg, operand, kb, lay, tl.shift_at)
        if got is None:
            got = _calc_read_buffer(sp, cfg, operand, kb, tl.shift_at)
        start, stop, n, first, last = got
        reads.append((start, stop, n, (first, last), {}))
    return _report(layer, cfg, sp, n_rows, rf * cf, tl, tl.cum[-1], reads[0], reads[1],
                   (out.row_of(0), out.row_of(out.n - 1)))


def _simulate_streams(layer: Layer, cfg: ScaleSimConfig) -> ScaleSimLayerReport:
    """Either mode by replaying the demand streams (USER mode's model; CALC mode's reference)."""
    sp = scalesim_shape(layer)
    n_rows, folds, ifm, fil, out = _streams(sp, cfg, reads=cfg.user_bandwidth)
    if cfg.user_bandwidth:
        (i_fetch, i_size), (f_fetch, f_size) = _fetch_orders(sp, cfg)
        i_pf = _prefetches(ifm, i_fetch, i_size, cfg.ifmap_sram_kb, cfg.ifmap_read_words_per_cycle)
        f_pf = _prefetches(fil, f_fetch, f_size, cfg.filter_sram_kb, cfg.filter_read_words_per_cycle)
        tl = _run(out, cfg.ofmap_sram_kb, cfg.bandwidths[0], n_rows, (i_pf, f_pf))
        i_own, f_own = tl.read_stalls
        ifmap: _Read = (i_pf.dram_start, i_pf.dram_stop, i_pf.dram_reads, (int(ifm.rows[0]), int(ifm.rows[-1])), i_own)
        filt: _Read = (f_pf.dram_start, f_pf.dram_stop, f_pf.dram_reads, (int(fil.rows[0]), int(fil.rows[-1])), f_own)
    else:
        tl = _run(out, cfg.ofmap_sram_kb, cfg.array_cols, n_rows)
        i_start, i_stop, i_reads, i_first, i_last = _calc_read_buffer(sp, cfg, "ifmap", cfg.ifmap_sram_kb,
                                                                      tl.shift_at, fast=False)
        f_start, f_stop, f_reads, f_first, f_last = _calc_read_buffer(sp, cfg, "filter", cfg.filter_sram_kb,
                                                                      tl.shift_at, fast=False)
        ifmap, filt = (i_start, i_stop, i_reads, (i_first, i_last), {}), (f_start, f_stop, f_reads, (f_first, f_last), {})
    return _report(layer, cfg, sp, n_rows, folds, tl, int(tl.shift[-1]), ifmap, filt,
                   (int(out.rows[0]), int(out.rows[-1])))


def simulate_topology(layers: tuple[Layer, ...], cfg: ScaleSimConfig) -> tuple[ScaleSimLayerReport, ...]:
    return tuple(simulate_layer(la, cfg) for la in layers)


REPORT_FILES = ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv", "DETAILED_ACCESS_REPORT.csv")
_HEADERS = {
    "COMPUTE_REPORT.csv": "LayerID, Total Cycles (incl. prefetch), Total Cycles, Stall Cycles, Overall Util %, "
                          "Mapping Efficiency %, Compute Util %,",
    "BANDWIDTH_REPORT.csv": "LayerID, Avg IFMAP SRAM BW, Avg FILTER SRAM BW, Avg OFMAP SRAM BW, "
                            "Avg IFMAP DRAM BW, Avg FILTER DRAM BW, Avg OFMAP DRAM BW,",
    "DETAILED_ACCESS_REPORT.csv": ", ".join(
        ["LayerID"] + [f"{mem} {op} {what}" for mem, ops in (("SRAM", ("IFMAP", "Filter", "OFMAP")),
                                                             ("DRAM", ("IFMAP", "Filter", "OFMAP")))
                       for op in ops
                       for what in ("Start Cycle", "Stop Cycle",
                                    "Writes" if op == "OFMAP" else "Reads")]) + ",",
}


def report_csvs(reports: tuple[ScaleSimLayerReport, ...]) -> dict[str, str]:
    """The text of SCALE-Sim's three report files (same header and column names, one row per layer)."""
    out = {name: [head] for name, head in _HEADERS.items()}
    detail = [f.name for f in fields(ScaleSimLayerReport)][7:]
    for i, r in enumerate(reports):
        comp = (r.total_cycles_incl_prefetch, r.total_cycles, r.stall_cycles, r.overall_util_pct,
                r.mapping_efficiency_pct, r.compute_util_pct)
        out["COMPUTE_REPORT.csv"].append(", ".join(map(str, (i, *comp))) + ",")
        out["BANDWIDTH_REPORT.csv"].append(", ".join(map(str, (i, *r.bandwidths()))) + ",")
        out["DETAILED_ACCESS_REPORT.csv"].append(", ".join(map(str, (i, *(getattr(r, f) for f in detail)))) + ",")
    return {name: "\n".join(rows) + "\n" for name, rows in out.items()}
