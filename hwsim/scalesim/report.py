"""SCALE-Sim 3.0.0's three report files: one row per layer, its header lines and column names."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["ScaleSimLayerReport", "OfmapDram", "ReadBuffer", "REPORT_FILES", "report_csvs"]


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


@dataclass(frozen=True, slots=True)
class OfmapDram:
    """The OFMAP write buffer's DRAM trace: first drain cycle, last write cycle, words written
    (SCALE-Sim's padding of part-filled lines included)."""

    start: int
    stop: int
    writes: int


@dataclass(frozen=True, slots=True)
class ReadBuffer:
    """What one read buffer (IFMAP or filter) contributes to the reports: its DRAM trace
    (``dram_start`` / ``dram_stop`` cycles, ``dram_reads`` words) and the first / last demand rows
    its SRAM serves (before stalls; the report adds them)."""

    dram_start: int
    dram_stop: int
    dram_reads: int
    first_row: int
    last_row: int
