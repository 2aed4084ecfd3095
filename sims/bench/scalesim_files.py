"""SCALE-Sim 3.0.0's input files written from our specs, for the benchmarks that run it side by side."""

from __future__ import annotations

import hwsim
from hwsim.network import Layer
from hwsim.scalesim import ScaleSimConfig

__all__ = ["config_text", "topology_row"]


def config_text(cfg: ScaleSimConfig) -> str:
    """A SCALE-Sim 3.0.0 config file for ``cfg`` (CALC mode)."""
    return (f"[general]\nrun_name = {cfg.run_name}\n\n[architecture_presets]\nArrayHeight: {cfg.array_rows}\n"
            f"ArrayWidth: {cfg.array_cols}\nIfmapSramSzkB: {cfg.ifmap_sram_kb}\nFilterSramSzkB: {cfg.filter_sram_kb}\n"
            f"OfmapSramSzkB: {cfg.ofmap_sram_kb}\nIfmapOffset: {cfg.ifmap_offset}\nFilterOffset: {cfg.filter_offset}\n"
            f"OfmapOffset: {cfg.ofmap_offset}\nBandwidth : 10\nDataflow : {cfg.dataflow.value}\n"
            "ReadRequestBuffer: 128\nWriteRequestBuffer: 128\n\n[layout]\nIfmapCustomLayout: False\n"
            "IfmapSRAMBankBandwidth: 10\nIfmapSRAMBankNum: 10\nIfmapSRAMBankPort: 2\nFilterCustomLayout: False\n"
            "FilterSRAMBankBandwidth: 10\nFilterSRAMBankNum: 10\nFilterSRAMBankPort: 2\n\n[sparsity]\n"
            "SparsitySupport : false\nSparseRep : ellpack_block\nOptimizedMapping : false\nBlockSize : 8\n"
            "RandomNumberGeneratorSeed : 40\n\n[run_presets]\nInterfaceBandwidth: CALC\nUseRamulatorTrace: False\n")


def topology_row(la: Layer) -> str:
    """A SCALE-Sim conv row; padding is folded into the input size, a linear layer is a 1x1 conv."""
    if la.kind is hwsim.LayerKind.LINEAR:
        return f"{la.name}, 1, 1, 1, 1, {la.in_channels}, {la.out_channels}, 1,"
    return (f"{la.name}, {la.in_h + 2 * la.pad_h}, {la.in_w + 2 * la.pad_w}, {la.kernel_h}, {la.kernel_w}, "
            f"{la.in_channels}, {la.out_channels}, {la.stride_h},")
