"""SCALE-Sim 3.0.0's ``.cfg`` file, read strictly, and the constants of its memory model."""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

from ..accelerator import Accelerator, BufferSpec, Dataflow, DRAMSpec, Interconnect, PEKind, PESpec
from ..errors import ConfigError, check_int

__all__ = ["ScaleSimConfig", "load_config", "READ_BACKING_BW_CALC", "READ_LATENCY_CYCLES",
           "SETS_PER_BUFFER"]

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
        """The same array as an :class:`hwsim.Accelerator`: 8-bit parallel PEs, systolic, 1-byte words in
        the read buffers; the OFMAP buffer's words hold a 32-bit partial sum (our engine's rule; SCALE-Sim
        counts 1-byte words there too, its sizes are kept)."""
        def buf(kb: int, bits: int = 8) -> BufferSpec:
            return BufferSpec(size_bytes=kb * 1024, word_bits=bits)
        bw = float(self.bandwidths[0]) if self.user_bandwidth else float(READ_BACKING_BW_CALC)
        return Accelerator(name=self.run_name, rows=self.array_rows, cols=self.array_cols,
                           pe=PESpec(kind=PEKind.PARALLEL, max_weight_bits=8, max_act_bits=8, acc_bits=32),
                           dataflows=(self.dataflow,), interconnect=Interconnect.SYSTOLIC,
                           ifmap_sram=buf(self.ifmap_sram_kb), filter_sram=buf(self.filter_sram_kb),
                           ofmap_sram=buf(self.ofmap_sram_kb, 32), dram=DRAMSpec(bandwidth_bytes_per_cycle=bw))


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

