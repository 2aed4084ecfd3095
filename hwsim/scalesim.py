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
default) the read buffers are fed fold by fold, each repeated fold pattern built once, so memory stays
at one fold. ``InterfaceBandwidth: USER`` reproduces SCALE-Sim's read-buffer stalls at the user's
bandwidths, quirks included: the IFMAP / filter read bandwidths are the ``[layout]`` bank bandwidths
(``Bandwidth`` only sets the OFMAP drain width), prefetches run back to back from the previous one's
completion, a late prefetch's lateness is counted twice and an early one moves the row's service
cycle back; a row stalls by the largest of its three buffers' stalls.
"""

from __future__ import annotations

import bisect
import configparser
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

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

    def row_cycle(self, row: int) -> int:
        return row + int(self.shift[row])


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
    seg_first_line: list[int] = []   # first line of each segment of the line queue
    seg_full: list[int] = []         # its full lines
    seg_rem: list[int] = []          # valid words in its last, partly filled line (0: none)
    n_lines = 0
    pointer = 0                      # next line to drain
    drained = 0                      # words SCALE-Sim believes drained (padding included)
    drain_end = 0
    first_drain: int | None = None
    last_end = 0
    writes = 0
    j0 = 0
    seg_start = 0

    def close_segment(upto: int) -> None:
        """Elements ``[seg_start, upto)`` become lines; the last one may be partly filled."""
        nonlocal n_lines, seg_start
        cnt = upto - seg_start
        if cnt <= 0:
            return
        seg_first_line.append(n_lines)
        seg_full.append(cnt // bw)
        seg_rem.append(cnt % bw)
        n_lines += cnt // bw + (1 if cnt % bw else 0)
        seg_start = upto

    def line_words(q: int) -> int:
        k = bisect.bisect_right(seg_first_line, q) - 1
        return seg_rem[k] if seg_rem[k] and q == seg_first_line[k] + seg_full[k] else bw

    # a drain writes one line per cycle from ``at`` (SCALE-Sim's write port has no latency)
    def drain_at(at: int) -> int:
        nonlocal pointer, drained, first_drain, last_end, writes
        end = min(pointer + lines_per_drain, n_lines)
        lines = end - pointer
        words = lines * bw - (bw - line_words(end - 1))
        writes += words
        drained += words
        pointer = end
        first_drain = at if first_drain is None else min(first_drain, at)
        last_end = max(last_end, at + lines - 1)  # a final drain may start before a running one ends
        return at + lines - 1

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
            jb = drain + drained  # element index whose store makes occupancy exceed ``drain``
            jfull = total + drained - 1  # element index whose store leaves no free space
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
            close_segment(drain_from + 1)
            drain_end = drain_at(int(cyc[drain_from]))
            j0 = drain_from + 1
        else:
            break
    close_segment(n)
    last = n_rows - 1
    at = last + int(shift[last]) + wstall.get(last, 0)  # SCALE-Sim empties the buffer after the last row
    while pointer < n_lines:
        at = drain_at(at) + 1
    return _Timeline(shift, wstall, rstall, (first_drain if first_drain is not None else 0, last_end, writes))



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
    if preload:  # a block of R x C loaded, bottom row first, before the stream
        a, c = _grid(R, C)
        rel, width = R - 1 - a, C
    else:  # a stream of T steps skewed over the array's rows (ifmap, IS filter) or columns (OS filter)
        width = C if (flow, operand) == (Dataflow.OS, "filter") else R
        a, c = _grid(T, width)
        rel = a + c + (0 if flow is Dataflow.OS else R)
    perm = np.argsort(rel * width + c, kind="stable")
    rel, a, c = rel[perm], a[perm], c[perm]
    by_fr = (flow, operand) in ((Dataflow.OS, "ifmap"), (Dataflow.WS, "ifmap"), (Dataflow.IS, "filter"))
    by_fc = (flow, operand) == (Dataflow.OS, "filter")
    keys = [(0 if by_fc else fr, 0 if by_fr else fc) for fc in range(cf) for fr in range(rf)]

    def block(pattern: tuple[int, int]) -> _Block:
        fr, fc = pattern
        if flow is Dataflow.OS and operand == "ifmap":
            p, k = fr * R + c, a
        elif flow is Dataflow.WS and operand == "ifmap":
            p, k = a, fr * R + c
        elif flow is Dataflow.IS and operand == "ifmap":
            p, k = fc * C + c, fr * R + a
        elif flow is Dataflow.OS:
            m, k = fc * C + c, a
        elif flow is Dataflow.WS:
            m, k = fc * C + c, fr * R + a
        else:
            m, k = a, fr * R + c
        if operand == "ifmap":
            addr = _ifmap_addr(sp, np.minimum(p, P - 1), np.minimum(k, K - 1), cfg.ifmap_offset)
            keep = (p < P) & (k < K) & (addr >= 0)
        else:
            addr = m * K + k + cfg.filter_offset
            keep = (m < M) & (k < K)
        return rel[keep], addr[keep]

    return fold_rows, keys, block


def _calc_read_buffer(sp: _Shape, cfg: ScaleSimConfig, operand: str, kb: int,
                      shift: np.ndarray) -> tuple[int, int, int, int, int]:
    """DRAM ``(start, stop, reads)`` of an estimate-mode read buffer and the first / last demand rows.

    The buffer fetches each address once per window of ``cap`` distinct addresses taken in demand
    order; a window closes when full and the next starts empty. Folds are fed one by one (memory of
    one fold), and a fold whose pattern was wholly demanded inside the open window is skipped: it
    adds no new address.
    """
    total = kb * 1024
    per_set = total // SETS_PER_BUFFER
    cap = (SETS_PER_BUFFER // 2) * per_set
    fold_rows, keys, block = _fold_blocks(sp, cfg, operand)
    cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    seen: np.ndarray | None = None
    mark: np.ndarray | None = None
    lo = 0
    count = 0           # distinct addresses in the open window
    opened = (0, 0)     # (fold, index in fold) where the open window started
    last_whole: dict[tuple[int, int], int] = {}   # pattern -> last fold fed whole
    closes = 0
    last_close_row = -1
    first_row = last_row = -1
    for f, key in enumerate(keys):
        if key not in cache:
            rel, addr = block(key)
            cache[key] = (rel, addr, np.arange(addr.size, dtype=np.int64))
        rel, addr, idx = cache[key]
        if addr.size == 0:
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
            lo = 0 if operand == "ifmap" else cfg.filter_offset
            hi = (sp.h * sp.w * sp.c + cfg.ifmap_offset) if operand == "ifmap" else cfg.filter_offset + sp.window * sp.m
            seen = np.zeros(hi - lo, dtype=bool)
            mark = np.zeros(hi - lo, dtype=np.int64)
        assert mark is not None
        a = addr - lo
        start = 0
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
    first = first_row + int(shift[first_row])
    start_cyc = first - 1 - READ_LATENCY_CYCLES - -(-cap // READ_BACKING_BW_CALC) + 1 + READ_LATENCY_CYCLES
    stop = last_close_row + int(shift[last_close_row]) + READ_LATENCY_CYCLES
    return start_cyc, stop, closes * cap + rest, first_row, last_row


def _fold_stats(sp: _Shape, cfg: ScaleSimConfig) -> tuple[float, float]:
    """Average mapping efficiency and compute utilisation over folds, summed in SCALE-Sim's order."""
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
    maps, utils = [], []
    for fc in range(cf):
        cu = min(C, sc - fc * C)
        for fr in range(rf):
            used = min(R, sr - fr * R) * cu
            maps.append(used / (R * C))
            utils.append(used * T / (R * C * cyc))
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
    """What SCALE-Sim 3.0.0 reports for ``layer`` on ``cfg`` (``InterfaceBandwidth`` CALC or USER)."""
    sp = scalesim_shape(layer)
    n_rows, folds, ifm, fil, out = _streams(sp, cfg, reads=cfg.user_bandwidth)
    if cfg.user_bandwidth:
        (i_fetch, i_size), (f_fetch, f_size) = _fetch_orders(sp, cfg)
        i_pf = _prefetches(ifm, i_fetch, i_size, cfg.ifmap_sram_kb, cfg.ifmap_read_words_per_cycle)
        f_pf = _prefetches(fil, f_fetch, f_size, cfg.filter_sram_kb, cfg.filter_read_words_per_cycle)
        tl = _run(out, cfg.ofmap_sram_kb, cfg.bandwidths[0], n_rows, (i_pf, f_pf))
        i_start, i_stop, i_reads = i_pf.dram_start, i_pf.dram_stop, i_pf.dram_reads
        f_start, f_stop, f_reads = f_pf.dram_start, f_pf.dram_stop, f_pf.dram_reads
        i_own, f_own = tl.read_stalls
        i_rows = int(ifm.rows[0]), int(ifm.rows[-1])
        f_rows = int(fil.rows[0]), int(fil.rows[-1])
    else:
        tl = _run(out, cfg.ofmap_sram_kb, cfg.array_cols, n_rows)
        i_start, i_stop, i_reads, i_first, i_last = _calc_read_buffer(sp, cfg, "ifmap", cfg.ifmap_sram_kb, tl.shift)
        f_start, f_stop, f_reads, f_first, f_last = _calc_read_buffer(sp, cfg, "filter", cfg.filter_sram_kb,
                                                                      tl.shift)
        i_rows, f_rows = (i_first, i_last), (f_first, f_last)
        i_own, f_own = {}, {}
    o_start, o_stop, o_writes = tl.ofmap_dram
    stall = int(tl.shift[-1])
    total = tl.row_cycle(n_rows - 1) + tl.write_stalls.get(n_rows - 1, 0)
    sram_i, sram_f, sram_o = _sram_counts(sp, cfg, folds)
    mapping, util = _fold_stats(sp, cfg)
    num_compute = sp.npix * sp.m * sp.window

    def span(rows: Sequence[int], lat: int, own: dict[int, int]) -> tuple[int, int]:
        r0, r1 = rows
        return tl.row_cycle(r0) + lat + own.get(r0, 0), tl.row_cycle(r1) + lat + own.get(r1, 0)

    (is0, is1), (fs0, fs1) = span(i_rows, READ_LATENCY_CYCLES, i_own), span(f_rows, READ_LATENCY_CYCLES, f_own)
    os0, os1 = span((int(out.rows[0]), int(out.rows[-1])), 0, tl.write_stalls)
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
