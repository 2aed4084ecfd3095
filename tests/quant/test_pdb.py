"""PDB: Fisher ratio, the separability heuristic, schedule validation, spec layout, memory."""

from __future__ import annotations

import pytest
import torch

from quant.layers import qlayers
from quant.models import ConvNet
from quant.pdb import (
    check_schedule,
    fisher_ratio,
    pdb_specs,
    separability,
    separability_schedule,
    weight_memory_bits,
)


def test_fisher_ratio_by_hand() -> None:
    f = torch.tensor([[0.0], [2.0], [10.0], [12.0]])
    y = torch.tensor([0, 0, 1, 1])
    # means 1 and 11, grand mean 6: S_B = 2*25 + 2*25 = 100; S_W = 4 * 1 = 4
    assert fisher_ratio(f, y) == pytest.approx(25.0)
    # pooled 4-D features give the same
    assert fisher_ratio(f.view(4, 1, 1, 1).expand(4, 1, 2, 2), y) == pytest.approx(25.0)
    assert fisher_ratio(f * 7 + 3, y) == pytest.approx(25.0)  # invariant to scale and shift


def test_separability_measured_per_group(digits) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    m = ConvNet((1, 8, 8), 10)
    j = separability(m, digits.train.x[:200], digits.train.y[:200])
    assert len(j) == len(m.groups()) and all(v > 0 for v in j)


@pytest.mark.parametrize(("scores", "expected"), [
    ([1.0, 2.0, 3.0, 5.0], (8, 5, 4, 2)),  # log scale: r = log(J/J1) / log(JG/J1) = 0, .43, .68, 1
    ([1.0, 1.0, 1.0], (8, 8, 8)),
    ([3.0, 1.0, 5.0, 2.0], (8, 8, 2, 2)),  # dips pooled with their neighbours: non-increasing schedule
    ([1.0, 4.0, 2.0, 8.0], (8, 5, 5, 2)),  # 4, 2 pooled to their geometric mean sqrt(8): r = .5
])
def test_schedule_heuristic(scores: list[float], expected: tuple[int, ...]) -> None:
    s = separability_schedule(scores, 8, 2)
    assert s == expected
    assert all(b <= a for a, b in zip(s, s[1:], strict=False))


def test_isotonic_fit() -> None:
    from quant.pdb import isotonic

    assert isotonic([1.0, 3.0, 2.0, 4.0]) == [1.0, 2.5, 2.5, 4.0]
    assert isotonic([3.0, 2.0, 1.0]) == [2.0, 2.0, 2.0]
    assert isotonic([1.0, 2.0]) == [1.0, 2.0]


def test_schedule_rejects_increase_and_bad_bits() -> None:
    with pytest.raises(ValueError, match=r"^PDB\.schedule must be non-increasing, not \(2, 4, 3\)$"):
        check_schedule([2, 4, 3], 3)
    with pytest.raises(ValueError, match=r"^PDB\.schedule\[1\] must be an integer in \[1, 16\], not 0$"):
        check_schedule([2, 0], 2)
    with pytest.raises(ValueError, match=r"^PDB\.schedule must have one bitwidth per group \(3\), not \(4, 2\)$"):
        check_schedule([4, 2], 3)
    with pytest.raises(ValueError, match=r"^PDB\.b_min must be <= b_max=2, not 4$"):
        separability_schedule([1.0], 2, 4)


def test_specs_and_memory() -> None:
    m = ConvNet((1, 8, 8), 10)
    specs = pdb_specs(m, (4, 3, 2), first_last="8bit")
    assert [(s.weight_bits, s.act_bits) for s in specs] == [(8, 8), (4, 4), (3, 3), (2, 2), (8, 8)]
    specs = pdb_specs(m, (4, 1, 1, 1, 1), first_last="same")
    assert [(s.weight_bits, s.act_bits) for s in specs][:2] == [(4, 4), (1, 1)]
    from quant.layers import apply_specs
    apply_specs(m, pdb_specs(m, (4, 3, 2), first_last="fp"))
    w = [la.weight.numel() for la in qlayers(m)]
    assert weight_memory_bits(m) == 32 * (w[0] + w[4]) + 4 * w[1] + 3 * w[2] + 2 * w[3]
    assert weight_memory_bits(m, [1, 2]) == 4 * w[1] + 3 * w[2]
