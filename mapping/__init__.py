"""mapping: front ends that build a :class:`hwsim.Network`, and the mapper that turns
``Network x Accelerator`` into a :class:`hwsim.Schedule` (docs/mapping.md).

Imports hwsim only; torch and onnx are imported inside the front-end functions that need them.
"""

from .bits import apply_bits, load_bits
from .cascade import CascadePoint, threshold_sweep, with_exit_rates
from .frontends import from_csv, from_onnx, from_torch, from_torch_file, load_model, parse_input_shape
from .lut import PrecisionLUT, precision_lut
from .mapper import OBJECTIVES, LayerChoice, exhaustive_layer, layer_mapspace, map_layer, map_network
from .tiling import run_tiled_conv2d, tile_visits

__all__ = [
    "OBJECTIVES", "CascadePoint", "LayerChoice", "PrecisionLUT", "apply_bits", "exhaustive_layer", "from_csv",
    "from_onnx", "from_torch", "from_torch_file", "layer_mapspace", "load_bits", "load_model", "map_layer",
    "map_network", "parse_input_shape", "precision_lut", "run_tiled_conv2d", "threshold_sweep", "tile_visits",
    "with_exit_rates",
]
