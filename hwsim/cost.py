"""Prices: the one function that turns counted events into energy (DESIGN rule 4).

The engine, the fast path (on arrays) and the sweep cache all count :class:`hwsim.result.Events` and
call :func:`price`; nothing else multiplies a count by an energy coefficient.
"""

from __future__ import annotations

from .accelerator import Accelerator
from .kinds import mac_pj, multiply_add_pj
from .result import Energy, Events

__all__ = ["price", "SCALE_BITS"]

SCALE_BITS = 16
"""Width of a BWA bit-plane scale (alpha) in fixed point: one ``SCALE_BITS x acc_bits`` multiply-add per
plane per output."""


def price(ev: Events, acc: Accelerator) -> Energy:
    """Energy of ``ev`` on ``acc``: MACs by the PE kind's law, SRAM reads and writes at each buffer's
    read and write energy per word, DRAM per byte, operand network per byte, leakage per cycle."""
    e, t, pe = acc.energy, ev.traffic, acc.pe
    mac = sum(n * mac_pj(e, pe, w, a) for w, a, n in ev.macs) + ev.vector_op_bits * e.add_pj_per_bit
    ib, fb, ob = acc.ifmap_sram, acc.filter_sram, acc.ofmap_sram
    return Energy(
        mac_pj=mac,
        ifmap_sram_pj=t.ifmap_sram_reads * ib.read_energy_pj + t.ifmap_sram_writes * ib.write_energy_pj,
        filter_sram_pj=t.filter_sram_reads * fb.read_energy_pj + t.filter_sram_writes * fb.write_energy_pj,
        ofmap_sram_pj=t.ofmap_sram_reads * ob.read_energy_pj + t.ofmap_sram_writes * ob.write_energy_pj,
        dram_pj=(t.dram_read_bytes + t.dram_write_bytes) * acc.dram_pj_per_byte,
        noc_pj=ev.noc_bytes * e.noc_pj_per_byte,
        scale_pj=ev.scale_ops * multiply_add_pj(e, SCALE_BITS, pe.acc_bits, pe.acc_bits),
        leakage_pj=ev.cycles * acc.leakage_pj_per_cycle,
    )
