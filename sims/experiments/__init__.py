"""Campaigns that regenerate committed results: the quantization experiments behind docs/results.md
(``quant``) and the FPGA area sweep behind ``hwsim/area.py`` (``rtl_area``)."""
