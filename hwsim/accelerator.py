"""The accelerator spec: a 2-D array of variable-precision PEs, three SRAM buffers and a DRAM link.

Every class is a frozen, validated value; sweeps derive new specs with ``dataclasses.replace``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .energy import EnergyTable, sram_access_pj
from .errors import check_bool, check_float, check_int, check_name
from .kinds import Dataflow, PEKind, kind_options

__all__ = ["PEKind", "Dataflow", "Interconnect", "PESpec", "BufferSpec", "DRAMSpec", "Accelerator"]


class Interconnect(StrEnum):
    """How operands reach the PEs: ``systolic`` forwards PE to PE (fill/drain skew of rows+cols),
    ``broadcast`` drives a row/column bus (no skew; what the bit-serial RTL in ``rtl/`` builds)."""

    SYSTOLIC = "systolic"
    BROADCAST = "broadcast"


@dataclass(frozen=True, slots=True)
class PESpec:
    """One processing element: its kind, widest operands and accumulator, and micro-architecture options.

    ``adder_tree`` (bit-serial kinds): bit-products summed by an adder tree before each accumulator add
    (1: one accumulator per PE, as rtl/ builds; Stripes' SIP sums 16). It changes energy, not cycles.
    ``brick_bits`` (fusion): the BitBrick width, the floor below which lower precision gains nothing
    (2 in Bit Fusion). ``skip_zero_weights``: the PE skips pruned (zero) weights, so a layer's reduction
    streams ``weight_density`` of its length (ideal load balance).
    """

    kind: PEKind = PEKind.PARALLEL
    max_weight_bits: int = 8
    max_act_bits: int = 8
    acc_bits: int = 32
    signed_act: bool = True
    adder_tree: int = 1
    brick_bits: int = 2
    skip_zero_weights: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.kind, PEKind):
            try:
                object.__setattr__(self, "kind", PEKind(self.kind))
            except ValueError:
                raise ValueError(f"PESpec.kind must be one of {[k.value for k in PEKind]}, not {self.kind!r}") from None
        check_int("PESpec", "max_weight_bits", self.max_weight_bits, 1, 32)
        check_int("PESpec", "max_act_bits", self.max_act_bits, 1, 32)
        check_int("PESpec", "acc_bits", self.acc_bits, 2, 64)
        check_bool("PESpec", "signed_act", self.signed_act)
        check_int("PESpec", "adder_tree", self.adder_tree, 1, 1024)
        if self.adder_tree & (self.adder_tree - 1):
            raise ValueError(f"PESpec.adder_tree must be a power of two in [1, 1024], not {self.adder_tree!r}")
        options = kind_options(self.kind)
        check_int("PESpec", "brick_bits", self.brick_bits, 1,
                  min(self.max_weight_bits, self.max_act_bits) if "brick_bits" in options else 32)
        check_bool("PESpec", "skip_zero_weights", self.skip_zero_weights)
        if self.adder_tree != 1 and "adder_tree" not in options:
            raise ValueError(f"PESpec.adder_tree must be 1 for a {self.kind.value} PE (an option of the kinds "
                             f"{sorted(k.value for k in PEKind if 'adder_tree' in kind_options(k))}), "
                             f"not {self.adder_tree!r}")
        need = self.max_weight_bits + self.max_act_bits
        if self.acc_bits < need:
            raise ValueError(f"PESpec.acc_bits must be >= max_weight_bits + max_act_bits = {need}, "
                             f"not {self.acc_bits!r}")

    def check_bits(self, owner: str, weight_bits: int, act_bits: int) -> None:
        """Reject a layer whose precision the PE cannot run."""
        check_int(owner, "weight_bits", weight_bits, 1, self.max_weight_bits)
        check_int(owner, "act_bits", act_bits, 1, self.max_act_bits)


@dataclass(frozen=True, slots=True)
class BufferSpec:
    """One on-chip SRAM buffer. ``read_pj``/``write_pj`` are per word; ``None`` derives them from the
    size and word width with Horowitz's table (see :func:`hwsim.energy.sram_access_pj`).

    ``packed``: elements are packed into words, ``word_bits / bits`` of them per word (default), or each
    element takes whole words of its own (``false``: how the generated RTL core stores them), which sets
    the buffer's capacity, its words read and written and its ports' element rate."""

    size_bytes: int
    word_bits: int = 64
    banks: int = 1
    read_pj: float | None = None
    write_pj: float | None = None
    packed: bool = True

    def __post_init__(self) -> None:
        check_int("BufferSpec", "size_bytes", self.size_bytes, 1)
        check_int("BufferSpec", "word_bits", self.word_bits, 1, 4096)
        check_int("BufferSpec", "banks", self.banks, 1, 1024)
        for f in ("read_pj", "write_pj"):
            v = getattr(self, f)
            if v is not None:
                check_float("BufferSpec", f, v, lo=0.0)
        check_bool("BufferSpec", "packed", self.packed)

    def stored_bits(self, bits: Any) -> Any:
        """Bits an element of ``bits`` occupies in this buffer (numbers or numpy arrays)."""
        return bits if self.packed else -(-bits // self.word_bits) * self.word_bits

    @property
    def read_energy_pj(self) -> float:
        return self.read_pj if self.read_pj is not None else sram_access_pj(self.size_bytes // self.banks, self.word_bits)

    @property
    def write_energy_pj(self) -> float:
        # Writes cost about as much as reads in Horowitz's table; keep them equal unless given.
        return self.write_pj if self.write_pj is not None else self.read_energy_pj


@dataclass(frozen=True, slots=True)
class DRAMSpec:
    bandwidth_bytes_per_cycle: float = 16.0
    energy_pj_per_byte: float | None = None  # None -> EnergyTable.dram_pj_per_byte

    def __post_init__(self) -> None:
        check_float("DRAMSpec", "bandwidth_bytes_per_cycle", self.bandwidth_bytes_per_cycle, lo=0.0, lo_open=True)
        if self.energy_pj_per_byte is not None:
            check_float("DRAMSpec", "energy_pj_per_byte", self.energy_pj_per_byte, lo=0.0)


@dataclass(frozen=True, slots=True)
class Accelerator:
    """An embedded accelerator: ``rows x cols`` PEs of one kind, its dataflows, buffers and DRAM link.

    ``split_reduction``: whether a layer's reduction may be split over DRAM tiles (partial sums kept in the
    ofmap buffer or sent through DRAM and accumulated again); the generated RTL core cannot (``false``)."""

    name: str
    rows: int
    cols: int
    pe: PESpec = field(default_factory=PESpec)
    dataflows: tuple[Dataflow, ...] = (Dataflow.OS,)
    interconnect: Interconnect = Interconnect.SYSTOLIC
    ifmap_sram: BufferSpec = field(default_factory=lambda: BufferSpec(64 * 1024))
    filter_sram: BufferSpec = field(default_factory=lambda: BufferSpec(64 * 1024))
    ofmap_sram: BufferSpec = field(default_factory=lambda: BufferSpec(64 * 1024))
    dram: DRAMSpec = field(default_factory=DRAMSpec)
    clock_hz: float = 200e6
    leakage_mw: float = 5.0
    energy: EnergyTable = field(default_factory=EnergyTable)
    split_reduction: bool = True

    def __post_init__(self) -> None:
        check_name("Accelerator", "name", self.name)
        check_bool("Accelerator", "split_reduction", self.split_reduction)
        check_int("Accelerator", "rows", self.rows, 1, 4096)
        check_int("Accelerator", "cols", self.cols, 1, 4096)
        if not isinstance(self.pe, PESpec):
            raise TypeError(f"Accelerator.pe must be a PESpec, not {self.pe!r}")
        flows = tuple(self.dataflows) if isinstance(self.dataflows, list | tuple) else self.dataflows
        if not isinstance(flows, tuple) or not flows:
            raise ValueError(f"Accelerator.dataflows must be a non-empty list of {[d.value for d in Dataflow]}, "
                             f"not {self.dataflows!r}")
        try:
            flows = tuple(Dataflow(d) for d in flows)
        except ValueError:
            raise ValueError(f"Accelerator.dataflows must be a non-empty list of {[d.value for d in Dataflow]}, "
                             f"not {self.dataflows!r}") from None
        if len(set(flows)) != len(flows):
            raise ValueError(f"Accelerator.dataflows must not repeat a dataflow, not {[d.value for d in flows]!r}")
        object.__setattr__(self, "dataflows", flows)
        try:
            object.__setattr__(self, "interconnect", Interconnect(self.interconnect))
        except ValueError:
            raise ValueError(f"Accelerator.interconnect must be one of {[i.value for i in Interconnect]}, "
                             f"not {self.interconnect!r}") from None
        for f in ("ifmap_sram", "filter_sram", "ofmap_sram"):
            if not isinstance(getattr(self, f), BufferSpec):
                raise TypeError(f"Accelerator.{f} must be a BufferSpec, not {getattr(self, f)!r}")
        # ports that cannot deliver one operand per access can never feed the array
        for f, need, why in (("ifmap_sram", self.pe.max_act_bits, "pe.max_act_bits"),
                             ("filter_sram", self.pe.max_weight_bits, "pe.max_weight_bits"),
                             ("ofmap_sram", self.pe.acc_bits, "pe.acc_bits (partial sums)")):
            wb = getattr(self, f).word_bits
            if wb < need:
                raise ValueError(f"Accelerator.{f}.word_bits must be >= {why} = {need} (one operand per access), "
                                 f"not {wb!r}")
        check_float("Accelerator", "clock_hz", self.clock_hz, lo=0.0, lo_open=True)
        check_float("Accelerator", "leakage_mw", self.leakage_mw, lo=0.0)

    @property
    def num_pes(self) -> int:
        return self.rows * self.cols

    @property
    def dram_pj_per_byte(self) -> float:
        e = self.dram.energy_pj_per_byte
        return e if e is not None else self.energy.dram_pj_per_byte

    @property
    def leakage_pj_per_cycle(self) -> float:
        # mW / Hz = mJ per cycle = 1e9 pJ per cycle
        return self.leakage_mw * 1e9 / self.clock_hz
