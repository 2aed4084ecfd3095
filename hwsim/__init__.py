"""hwsim: the shared vocabulary and the cycle-approximate simulator of variable-precision MAC arrays.

Imports numpy and PyYAML only (never torch, amaranth or cocotb, and nothing else of this project).
"""

from .accelerator import Accelerator, BufferSpec, Dataflow, DRAMSpec, Interconnect, PEKind, PESpec
from .energy import EnergyTable
from .engine import simulate, simulate_layer
from .errors import ConfigError
from .io import (
    accelerator_from_dict,
    load_accelerator,
    load_network,
    network_from_dict,
    resolve_accelerator,
    resolve_network,
)
from .network import Layer, LayerKind, Network, Stage
from .result import Energy, LayerResult, SimResult, StageResult, Traffic
from .schedule import LayerMapping, Schedule, Tile, default_mapping, default_schedule

__all__ = [
    "Accelerator", "BufferSpec", "ConfigError", "DRAMSpec", "Dataflow", "Energy", "EnergyTable", "Interconnect",
    "Layer", "LayerKind", "LayerMapping", "LayerResult", "Network", "PEKind", "PESpec", "Schedule", "SimResult",
    "Stage", "StageResult", "Tile", "Traffic", "accelerator_from_dict", "default_mapping", "default_schedule",
    "load_accelerator", "load_network", "network_from_dict", "resolve_accelerator", "resolve_network", "simulate",
    "simulate_layer",
]
__version__ = "0.1.0"
