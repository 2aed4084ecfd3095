"""cocotb test benches for the exported RTL: driver, monitor, model and checker, and a runner that builds
the Verilog with Icarus or Verilator through ``cocotb_tools.runner``. Only the bench module itself
(``tile_bench``) imports cocotb at import time; pytest reaches it through :mod:`sims.tb.runner`."""

__all__: list[str] = []
