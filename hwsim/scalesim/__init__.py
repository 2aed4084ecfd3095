"""SCALE-Sim 3.0.0 compatibility: its config and topology files, its counts and its three reports.

``hwsim scalesim`` (``parallel`` mode) reproduces what SCALE-Sim 3.0.0 reports for a layer, including
its conventions (docs/scalesim.md lists each one beside the count our native engine reports):

* output size ``ceil((H - F + S) / S)`` with no padding; windows that run past the input read nothing;
* fixed 1-byte words; buffers of ``kB * 1024`` words, half active and half prefetch;
* a fold of the ``R x C`` array takes ``R + C + T - 2`` rows of demands (OS) or ``2R + C + T - 2`` (WS, IS);
* the reported "Total Cycles" is the *index* of the last serviced demand row (one less than the rows);
* SRAM reads are counted per demand slot (out-of-input window slots included) and OFMAP SRAM writes add
  ``R + C`` per OS fold; DRAM reads count each address once per prefetch window of half a buffer;
  DRAM writes count the padding of a partly filled drain line when it is not the last line drained.

One module per concept:

==============  ===========================================================================
``config``      the ``.cfg`` file and SCALE-Sim's memory constants
``topology``    the topology CSV, and the layer shape SCALE-Sim computes with
``folds``       how a layer folds onto the array (the two per-fold overheads), SRAM counts
``layout``      each operand's demands as a layout of folds: rows and counts in closed form
``timeline``    the OFMAP write buffer's drains and stalls (and USER mode's read stalls)
``windows``     CALC-mode read-buffer windows and the DRAM trace they leave
``calc``        read buffers in closed form: disjoint blocks, or one window
``overlap``     the IFMAP read buffer in closed form where windows overlap (OS, IS)
``positions``   the same for OS counted per input position, where channels outnumber rows
``stationary``  the WS IFMAP read buffer where windows overlap (fold patterns, periods)
``sharing``     which WS folds can share an address; windows counted that hold none twice
``periodic``    a stem's WS fold as head, periods of output rows and tail
``replay``      the reference: the demand streams, and read buffers fed fold by fold
``user``        USER mode's prefetching read buffers
``homes``       USER mode without scanning: each demand's own place in the fetch order
``streamfold``  USER mode: a large stream fold's demands by index in closed form, read where checked
``members``     USER mode: the addresses a window holds where an address is held twice
``report``      the report row and SCALE-Sim's three CSV files
``simulate``    a layer and a topology through all of the above
==============  ===========================================================================
"""

from .config import ScaleSimConfig, load_config
from .folds import stall_free_cycles
from .report import REPORT_FILES, ScaleSimLayerReport, report_csvs
from .simulate import simulate_layer, simulate_topology
from .topology import Shape, load_topology, scalesim_shape

__all__ = ["ScaleSimConfig", "ScaleSimLayerReport", "Shape", "load_config", "load_topology", "scalesim_shape",
           "stall_free_cycles", "simulate_layer", "simulate_topology", "report_csvs", "REPORT_FILES"]
