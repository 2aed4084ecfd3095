"""Per-layer reports of one simulation: a text table, CSV rows and a stacked-bar plot."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hwsim.network import Network
from hwsim.result import SimResult

from .output import atomic_write_text

__all__ = ["format_table", "write_csv", "plot_layers", "layer_notes", "CSV_COLUMNS"]

LOW_EFFICIENCY = 0.25
"""Mapping efficiency below which the table explains where the array's PEs went."""


def layer_notes(res: SimResult, groups: dict[str, int] | None = None) -> list[str]:
    """One line per layer whose numbers need a reason: a grouped / depthwise convolution that leaves most
    columns idle (each group is its own GEMM, and a broadcast or systolic array streams one activation
    set to all columns), a layer bound by its SRAM ports, and one bound by DRAM."""
    notes = []
    for la in res.layers:
        cyc = la.total_cycles or 1
        g = (groups or {}).get(la.layer, 1)
        if la.macs and g > 1 and la.mapping_efficiency < LOW_EFFICIENCY:
            notes.append(f"{la.layer}: {g} convolution groups run one after another, each a GEMM with "
                         f"{la.macs // g:,} MACs whose few filters fill few columns (mapping efficiency "
                         f"{la.mapping_efficiency:.1%}); the columns share one activation stream, so a "
                         f"depthwise layer cannot use them all (docs/models.md, \"Depthwise\")")
        elif la.macs and la.mapping_efficiency < LOW_EFFICIENCY:
            notes.append(f"{la.layer}: mapping efficiency {la.mapping_efficiency:.1%}: the layer's GEMM is small "
                         f"against the array in the dataflow's spatial dimensions")
        if la.port_stall_cycles > 0.2 * cyc:
            notes.append(f"{la.layer}: {100 * la.port_stall_cycles / cyc:.0f}% of the cycles wait on SRAM ports "
                         f"(banks x word_bits per cycle); more banks or another dataflow would help")
        elif la.stall_cycles - la.port_stall_cycles > 0.5 * cyc:
            notes.append(f"{la.layer}: {100 * (la.stall_cycles - la.port_stall_cycles) / cyc:.0f}% of the cycles "
                         f"wait on DRAM")
    return notes

CSV_COLUMNS = ("stage", "layer", "dataflow", "weight_bits", "act_bits", "macs", "compute_cycles", "fill_cycles",
               "stall_cycles", "port_stall_cycles", "total_cycles", "mapping_efficiency", "utilisation", "dram_read_bytes",
               "dram_write_bytes", "mac_pj", "sram_pj", "dram_pj", "noc_pj", "scale_pj", "leakage_pj", "energy_pj")


def _rows(res: SimResult) -> list[dict[str, object]]:
    rows = []
    for st in res.stages:
        for la in st.layers:
            e = la.energy
            rows.append({"stage": st.name, "layer": la.layer, "dataflow": la.dataflow, "weight_bits": la.weight_bits,
                         "act_bits": la.act_bits, "macs": la.macs, "compute_cycles": la.compute_cycles,
                         "fill_cycles": la.fill_cycles, "stall_cycles": la.stall_cycles,
                         "port_stall_cycles": la.port_stall_cycles,
                         "total_cycles": la.total_cycles, "mapping_efficiency": round(la.mapping_efficiency, 4),
                         "utilisation": round(la.utilisation, 4), "dram_read_bytes": la.traffic.dram_read_bytes,
                         "dram_write_bytes": la.traffic.dram_write_bytes, "mac_pj": e.mac_pj, "sram_pj": e.sram_pj,
                         "dram_pj": e.dram_pj, "noc_pj": e.noc_pj, "scale_pj": e.scale_pj,
                         "leakage_pj": e.leakage_pj, "energy_pj": e.total_pj})
    return rows


def format_table(res: SimResult, network: Network | None = None) -> str:
    """A human-readable per-layer table with totals (worst case and, for cascades, expected), and notes
    on the layers whose numbers need a reason (:func:`layer_notes`; ``network`` names grouped layers)."""
    head = (f"{'layer':<22} {'df':>3} {'w/a':>5} {'MACs':>12} {'cycles':>12} {'stall%':>7} {'util%':>6} "
            f"{'energy uJ':>10} {'MAC%':>5} {'SRAM%':>6} {'DRAM%':>6}")
    lines = [f"{res.network} on {res.accelerator} @ {res.clock_hz / 1e6:g} MHz", head, "-" * len(head)]
    for st in res.stages:
        if len(res.stages) > 1:
            lines.append(f"[stage {st.name}: reached by {st.reach_probability:.1%} of inputs]")
        for la in st.layers:
            e = la.energy
            tot = e.total_pj or 1.0
            cyc = la.total_cycles or 1
            lines.append(f"{la.layer[:22]:<22} {la.dataflow:>3} {la.weight_bits:>2}/{la.act_bits:<2} {la.macs:>12,} "
                         f"{la.total_cycles:>12,} {100 * la.stall_cycles / cyc:>6.1f} {100 * la.utilisation:>6.1f} "
                         f"{e.total_pj / 1e6:>10.3f} {100 * e.mac_pj / tot:>5.1f} {100 * e.sram_pj / tot:>6.1f} "
                         f"{100 * e.dram_pj / tot:>6.1f}")
    lines.append("-" * len(head))
    lines.append(f"total (worst case): {res.cycles:,} cycles, {res.latency_s * 1e3:.3f} ms, "
                 f"{res.energy.total_pj / 1e6:.3f} uJ, {res.macs:,} MACs")
    if len(res.stages) > 1:
        lines.append(f"total (expected):   {res.expected_cycles:,.0f} cycles, {res.expected_latency_s * 1e3:.3f} ms, "
                     f"{res.expected_energy.total_pj / 1e6:.3f} uJ")
    notes = layer_notes(res, {la.name: la.groups for la in network.layers} if network is not None else None)
    if notes:
        lines.append("notes:")
        lines.extend(f"  {n}" for n in notes)
    return "\n".join(lines)


def write_csv(res: SimResult, path: str | Path) -> None:
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    w.writeheader()
    w.writerows(_rows(res))
    atomic_write_text(Path(path), buf.getvalue())


def plot_layers(res: SimResult, path: str | Path) -> None:
    """Two stacked bars per layer: cycles (compute / fill / stall) and energy (MAC / SRAM / DRAM / other)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = res.layers
    x = range(len(layers))
    names = [la.layer for la in layers]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(8, 0.35 * len(layers) + 3), 8), sharex=True)
    bottom = [0.0] * len(layers)
    for label, cycles in (("compute", [la.compute_cycles for la in layers]),
                          ("fill/drain", [la.fill_cycles for la in layers]),
                          ("DRAM stall", [la.stall_cycles - la.port_stall_cycles for la in layers]),
                          ("SRAM port stall", [la.port_stall_cycles for la in layers])):
        ax1.bar(x, cycles, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, cycles, strict=True)]
    ax1.set_ylabel("cycles")
    ax1.set_title(f"{res.network} on {res.accelerator}: {res.cycles:,} cycles, {res.energy.total_pj / 1e6:.2f} uJ")
    ax1.legend()
    bottom = [0.0] * len(layers)
    for label, vals in (("MAC", [la.energy.mac_pj + la.energy.scale_pj for la in layers]),
                        ("SRAM", [la.energy.sram_pj for la in layers]),
                        ("DRAM", [la.energy.dram_pj for la in layers]),
                        ("NoC + leakage", [la.energy.noc_pj + la.energy.leakage_pj for la in layers])):
        vals_uj = [v / 1e6 for v in vals]
        ax2.bar(x, vals_uj, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, vals_uj, strict=True)]
    ax2.set_ylabel("energy (uJ)")
    ax2.legend()
    ax2.set_xticks(list(x))
    ax2.set_xticklabels(names, rotation=75, ha="right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
