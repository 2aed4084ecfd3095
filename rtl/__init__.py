"""Amaranth RTL of the bit-serial PE and the broadcast PE array, Verilog export and Yosys synthesis.

Import the concept you need from its module (``rtl.pe``, ``rtl.array``, ``rtl.export``, ``rtl.synth``);
this package imports nothing at import time, so ``rtl.params`` stays usable without Amaranth.
"""

__all__: list[str] = []
