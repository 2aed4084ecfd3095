"""quant: PyTorch quantizers, the four methods (PDB, BWA, CQ, CMN), data, training, export to hwsim.

Imports torch; ``hwsim`` never imports this package. Submodules: :mod:`quant.protocol` (the
``hw_bits()`` protocol for mappers), :mod:`quant.quantizers`, :mod:`quant.layers`, :mod:`quant.models`,
:mod:`quant.data`, :mod:`quant.train`, :mod:`quant.pdb`, :mod:`quant.cq`, :mod:`quant.cmn`,
:mod:`quant.recipes`, :mod:`quant.export`.
"""

from .export import export, load_model, load_network, save_model
from .layers import LayerSpec, QConv2d, QLinear, apply_specs, qlayers
from .protocol import HardwareQuantized, HWBits

__all__ = ["HWBits", "HardwareQuantized", "LayerSpec", "QConv2d", "QLinear", "apply_specs", "export", "load_model",
           "load_network", "qlayers", "save_model"]
