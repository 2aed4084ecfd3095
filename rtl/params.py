"""Validated parameters of the RTL components (no Amaranth import: the CLI checks them before it builds).

Every error follows ``<Owner>.<field> must be <rule>, not <value!r>``; ``Owner`` is the component that
takes the parameters (``BitSerialPE`` or ``PEArray``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.errors import check_bool, check_choice, check_int

__all__ = ["ADDER_STYLES", "PE_KINDS", "KIND_PREFIX", "MAX_BITS", "MAX_DIM", "check_precision", "check_act_signed", "PEParams", "ArrayParams", "array_acc_bits_needed"]

ADDER_STYLES = ("single", "dual")
# The array's PE kinds (names as in hwsim.accelerator.PEKind): activations bit-serial (Stripes), both operands
# bit-serial (Loom / BISMO order), or one full W x A multiply per cycle.
PE_KINDS = ("serial_act", "serial_both", "parallel")
KIND_PREFIX = {"serial_act": "bs_array", "serial_both": "bb_array", "parallel": "par_array"}
MAX_BITS = 32      # widest weight or activation the generators accept
MAX_DIM = 64       # largest rows / cols
MAX_ACC_BITS = 128


def array_acc_bits_needed(weight_bits: int, act_bits: int, max_steps: int) -> int:
    """Accumulator bits that can never overflow a ``max_steps``-long tile of W-bit x A-bit products.

    One product of two signed numbers needs ``W + A`` bits (``(-2**(W-1)) * (-2**(A-1))`` is the
    extreme); a sum of ``K`` of them needs ``ceil(log2(K))`` more.
    """
    return weight_bits + act_bits + (math.ceil(math.log2(max_steps)) if max_steps > 1 else 0)


def check_precision(owner: str, precision: object, act_bits: int) -> None:
    if precision is not None:
        check_int(owner, "precision", precision, 1, act_bits)


def check_act_signed(owner: str, act_signed: object) -> None:
    if act_signed is not None:
        check_bool(owner, "act_signed", act_signed)


@dataclass(frozen=True, slots=True)
class PEParams:
    """A stand-alone bit-serial PE: ``weight_bits`` in parallel, up to ``act_bits`` activation bits.

    ``precision=None`` gives a runtime ``precision`` port (1..act_bits, sampled at start); an int fixes it.
    ``act_signed=None`` gives a runtime ``act_signed`` port; a bool fixes the mode.
    ``acc_bits=None`` means ``weight_bits + act_bits + 8``.
    """

    weight_bits: int
    act_bits: int
    acc_bits: int | None = None
    adder: str = "single"
    precision: int | None = None
    act_signed: bool | None = None
    owner: str = "BitSerialPE"

    def __post_init__(self) -> None:
        o = self.owner
        check_int(o, "weight_bits", self.weight_bits, 1, MAX_BITS)
        check_int(o, "act_bits", self.act_bits, 1, MAX_BITS)
        acc_bits = self.weight_bits + self.act_bits + 8 if self.acc_bits is None else self.acc_bits
        object.__setattr__(self, "acc_bits", acc_bits)
        need = self.weight_bits + self.act_bits
        check_int(o, "acc_bits", acc_bits, None, MAX_ACC_BITS)
        if acc_bits < need:
            raise ValueError(f"{o}.acc_bits must be >= weight_bits + act_bits = {need} (one full-precision "
                             f"product), not {acc_bits!r}")
        check_choice(o, "adder", self.adder, ADDER_STYLES)
        check_precision(o, self.precision, self.act_bits)
        check_act_signed(o, self.act_signed)

    @property
    def operand_bits(self) -> int:
        """Width of the shifted weight ``weight << i`` for ``i < act_bits``."""
        return self.weight_bits + self.act_bits - 1


@dataclass(frozen=True, slots=True)
class ArrayParams:
    """A ``rows x cols`` output-stationary array of PEs of one ``kind`` with one shared tile controller.

    ``max_steps`` is the longest reduction (K) one tile may stream; ``acc_bits=None`` picks the
    smallest accumulator that cannot overflow within one tile (:func:`array_acc_bits_needed`).
    ``kind``: ``serial_act`` (one activation bit per cycle, p cycles per step), ``serial_both`` (one
    weight bit x one activation bit per cycle, pw*pa cycles per step; ``weight_precision=None`` gives a
    runtime ``weight_precision`` port, an int fixes it) or ``parallel`` (one full product per cycle; no
    precision ports, operands are taken at full width). ``precision`` / ``act_signed`` as for the PE.
    """

    rows: int
    cols: int
    weight_bits: int
    act_bits: int
    acc_bits: int | None = None
    max_steps: int = 256
    adder: str = "single"
    precision: int | None = None
    act_signed: bool | None = None
    kind: str = "serial_act"
    weight_precision: int | None = None
    owner: str = "PEArray"

    def __post_init__(self) -> None:
        o = self.owner
        check_choice(o, "kind", self.kind, PE_KINDS)
        check_int(o, "rows", self.rows, 1, MAX_DIM)
        check_int(o, "cols", self.cols, 1, MAX_DIM)
        check_int(o, "weight_bits", self.weight_bits, 1, MAX_BITS)
        check_int(o, "act_bits", self.act_bits, 1, MAX_BITS)
        check_int(o, "max_steps", self.max_steps, 1, 1 << 20)
        need = array_acc_bits_needed(self.weight_bits, self.act_bits, self.max_steps)
        acc_bits = need if self.acc_bits is None else self.acc_bits
        object.__setattr__(self, "acc_bits", acc_bits)
        check_int(o, "acc_bits", acc_bits, None, MAX_ACC_BITS)
        if acc_bits < need:
            raise ValueError(f"{o}.acc_bits must be >= {need} (weight_bits + act_bits + ceil(log2(max_steps)), "
                             f"the worst case of a {self.max_steps}-step tile), not {acc_bits!r}")
        check_choice(o, "adder", self.adder, ADDER_STYLES)
        check_precision(o, self.precision, self.act_bits)
        check_act_signed(o, self.act_signed)
        if self.kind == "serial_both":
            if self.weight_precision is not None:
                check_int(o, "weight_precision", self.weight_precision, 1, self.weight_bits)
        elif self.weight_precision is not None:
            raise ValueError(f"{o}.weight_precision must be None for kind {self.kind!r} (its weights are not "
                             f"bit-serial), not {self.weight_precision!r}")
        if self.kind == "parallel":
            if self.precision is not None:
                raise ValueError(f"{o}.precision must be None for kind 'parallel' (one full product per cycle), "
                                 f"not {self.precision!r}")
            if self.adder != "single":
                raise ValueError(f"{o}.adder must be 'single' for kind 'parallel' (it adds a full product), "
                                 f"not {self.adder!r}")

    @property
    def operand_bits(self) -> int:
        """Width of a PE's addend before sign extension: ``weight << i`` (serial_act), the one-hot
        ``1 << (i+j)`` as a signed number (serial_both); unused by ``parallel``."""
        if self.kind == "serial_both":
            return self.weight_bits + self.act_bits
        return self.weight_bits + self.act_bits - 1

    @property
    def name(self) -> str:
        """A Verilog-safe module name that encodes the parameters (the prefix names the kind)."""
        return (f"{KIND_PREFIX[self.kind]}_r{self.rows}c{self.cols}w{self.weight_bits}a{self.act_bits}"
                f"acc{self.acc_bits}")

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "rows": self.rows, "cols": self.cols, "weight_bits": self.weight_bits,
                "act_bits": self.act_bits, "acc_bits": self.acc_bits, "max_steps": self.max_steps,
                "adder": self.adder, "precision": self.precision, "weight_precision": self.weight_precision,
                "act_signed": self.act_signed}
