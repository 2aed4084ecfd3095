# amaranth: UnusedElaboratable=no
"""Constructors reject bad parameters at once, with ``<Owner>.<field> must be <rule>, not <value!r>``;
the ports follow the parameters."""

from __future__ import annotations

import re

import pytest
from amaranth.hdl import Shape

from rtl.array import PEArray
from rtl.params import ArrayParams, array_acc_bits_needed
from rtl.pe import BitSerialPE


@pytest.mark.parametrize(("kwargs", "exc", "message"), [
    ({"weight_bits": 0, "act_bits": 4}, ValueError, "BitSerialPE.weight_bits must be an integer in [1, 32], not 0"),
    ({"weight_bits": 4, "act_bits": 0}, ValueError, "BitSerialPE.act_bits must be an integer in [1, 32], not 0"),
    ({"weight_bits": 4.0, "act_bits": 4}, TypeError, "BitSerialPE.weight_bits must be an integer in [1, 32], not 4.0"),
    ({"weight_bits": 8, "act_bits": 8, "acc_bits": 15}, ValueError,
     "BitSerialPE.acc_bits must be >= weight_bits + act_bits = 16 (one full-precision product), not 15"),
    ({"weight_bits": 8, "act_bits": 4, "precision": 5}, ValueError,
     "BitSerialPE.precision must be an integer in [1, 4], not 5"),
    ({"weight_bits": 8, "act_bits": 4, "precision": 0}, ValueError,
     "BitSerialPE.precision must be an integer in [1, 4], not 0"),
    ({"weight_bits": 8, "act_bits": 4, "adder": "carry-save"}, ValueError,
     "BitSerialPE.adder must be one of ['single', 'dual'], not 'carry-save'"),
    ({"weight_bits": 8, "act_bits": 4, "act_signed": 1}, TypeError,
     "BitSerialPE.act_signed must be true or false, not 1"),
])
def test_pe_rejects(kwargs: dict[str, object], exc: type[Exception], message: str) -> None:
    with pytest.raises(exc, match="^" + re.escape(message)):
        BitSerialPE(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "exc", "message"), [
    ({"rows": 0}, ValueError, "PEArray.rows must be an integer in [1, 64], not 0"),
    ({"cols": 65}, ValueError, "PEArray.cols must be an integer in [1, 64], not 65"),
    ({"weight_bits": 0}, ValueError, "PEArray.weight_bits must be an integer in [1, 32], not 0"),
    ({"acc_bits": 23}, ValueError, "PEArray.acc_bits must be >= 24 (weight_bits + act_bits + ceil(log2(max_steps)), "
                                   "the worst case of a 256-step tile), not 23"),
    ({"max_steps": 1024, "acc_bits": 24}, ValueError, "PEArray.acc_bits must be >= 26"),
    ({"max_steps": 0}, ValueError, "PEArray.max_steps must be an integer in [1, 1048576], not 0"),
    ({"precision": 9}, ValueError, "PEArray.precision must be an integer in [1, 8], not 9"),
])
def test_array_rejects(kwargs: dict[str, object], exc: type[Exception], message: str) -> None:
    args: dict[str, object] = {"rows": 2, "cols": 2, "weight_bits": 8, "act_bits": 8} | kwargs
    with pytest.raises(exc, match="^" + re.escape(message)):
        PEArray(**args)  # type: ignore[arg-type]


def test_array_worst_case_accumulator() -> None:
    assert array_acc_bits_needed(8, 8, 1) == 16
    assert array_acc_bits_needed(8, 8, 256) == 24
    assert array_acc_bits_needed(8, 8, 257) == 25
    assert ArrayParams(2, 2, 8, 8).acc_bits == 24
    # the bound is tight: 256 products of (-128) * (-128) need all 24 bits
    assert 256 * 128 * 128 == 1 << 22 and (1 << 22) < (1 << 23)


def test_pe_signature_follows_parameters() -> None:
    members = BitSerialPE(5, 3, acc_bits=12).signature.members
    assert Shape.cast(members["weight"].shape) == Shape(5, signed=True)
    assert Shape.cast(members["acc"].shape) == Shape(12, signed=True)
    assert Shape.cast(members["precision"].shape).width == 2   # range(1, 4)
    fixed = BitSerialPE(5, 3, precision=2, act_signed=False).signature.members
    assert "precision" not in fixed and "act_signed" not in fixed


def test_array_signature_follows_parameters() -> None:
    members = PEArray(3, 2, 6, 4, max_steps=100).signature.members
    assert Shape.cast(members["weights"].shape).width == 2 * 6
    assert Shape.cast(members["acts"].shape).width == 3 * 4
    acc_bits = 6 + 4 + 7
    assert Shape.cast(members["acc"].shape).width == 3 * 2 * acc_bits
    assert Shape.cast(members["steps"].shape).width == 7   # range(1, 101)


@pytest.mark.parametrize(("kwargs", "exc", "message"), [
    ({"kind": "fusion"}, ValueError, "PEArray.kind must be one of ['serial_act', 'serial_both', 'parallel'], "
                                     "not 'fusion'"),
    ({"kind": "serial_both", "weight_precision": 9}, ValueError,
     "PEArray.weight_precision must be an integer in [1, 8], not 9"),
    ({"weight_precision": 4}, ValueError, "PEArray.weight_precision must be None for kind 'serial_act' (its "
                                          "weights are not bit-serial), not 4"),
    ({"kind": "parallel", "precision": 4}, ValueError,
     "PEArray.precision must be None for kind 'parallel' (one full product per cycle), not 4"),
    ({"kind": "parallel", "adder": "dual"}, ValueError,
     "PEArray.adder must be 'single' for kind 'parallel' (it adds a full product), not 'dual'"),
])
def test_array_rejects_kind_parameters(kwargs: dict[str, object], exc: type[Exception], message: str) -> None:
    args: dict[str, object] = {"rows": 2, "cols": 2, "weight_bits": 8, "act_bits": 8} | kwargs
    with pytest.raises(exc, match="^" + re.escape(message)):
        PEArray(**args)  # type: ignore[arg-type]


def test_array_ports_follow_the_kind() -> None:
    both = PEArray(2, 3, 6, 4, max_steps=16, kind="serial_both").signature.members
    assert Shape.cast(both["weight_precision"].shape).width == 3 and "precision" in both
    par = PEArray(2, 3, 6, 4, max_steps=16, kind="parallel").signature.members
    assert "precision" not in par and "weight_precision" not in par and "act_signed" in par
    assert ArrayParams(2, 3, 6, 4, kind="parallel").name.startswith("par_array_")
    assert ArrayParams(2, 3, 6, 4, kind="serial_both").name.startswith("bb_array_")
