"""One layer, or a topology, through SCALE-Sim 3.0.0's model: the three reports' numbers.

CALC mode (:func:`simulate_calc`) works on layouts of folds and closed forms and never builds a demand
stream; USER mode (:func:`simulate_user`) replays the read operands' demands fold by fold (a fold
replayed from an earlier one of its pattern unread) and runs the OFMAP buffer on its layout;
:func:`simulate_streams`, the reference of both, replays the full streams.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial

from ..accelerator import Dataflow
from ..network import Layer
from .calc import closed_read_buffer
from .config import READ_LATENCY_CYCLES, ScaleSimConfig
from .folds import fold_grid, fold_stats, sram_counts
from .homes import home_map, prefetches_again, replay_homes
from .layout import ofmap_layout, read_layout, reading_pixels
from .overlap import overlap_read_buffer
from .positions import position_read_buffer
from .replay import FoldBlocks, demand_streams, fold_blocks, stream_read_buffer
from .report import ReadBuffer, ScaleSimLayerReport
from .stationary import ws_read_buffer
from .timeline import Stalls, Timeline, run_layout, run_stream
from .topology import Shape, scalesim_shape
from .user import Chunk, Prefetches, fetch_orders, replay_prefetches, user_prefetches

__all__ = ["simulate_layer", "simulate_topology", "simulate_calc", "simulate_user", "simulate_user_fed",
           "simulate_streams", "build_report",
           "FoldFeed", "SPAN_DEMANDS"]


def simulate_layer(layer: Layer, cfg: ScaleSimConfig,
                   progress: Callable[[float], None] | None = None) -> ScaleSimLayerReport:
    """What SCALE-Sim 3.0.0 reports for ``layer`` on ``cfg`` (``InterfaceBandwidth`` CALC or USER);
    ``progress(fraction)`` hears how far a long CALC-mode layer has come (a progress bar's hook)."""
    if cfg.user_bandwidth:
        return simulate_user(layer, cfg)
    return simulate_calc(layer, cfg, progress)


def simulate_topology(layers: Iterable[Layer], cfg: ScaleSimConfig,
                      progress: Callable[[float], None] | None = None) -> tuple[ScaleSimLayerReport, ...]:
    """Every layer of a topology; ``progress(layers done, as a float)`` is called within and after each
    layer (``2.5``: half of the third layer done), for a progress bar over the layers."""
    layers = tuple(layers)
    out = []
    for i, la in enumerate(layers):
        hook = None if progress is None else (lambda x, i=i: progress(i + x))
        out.append(simulate_layer(la, cfg, hook))
        if progress is not None:
            progress(i + 1.0)
    return tuple(out)


def build_report(layer: Layer, cfg: ScaleSimConfig, sp: Shape, n_rows: int, tl: Timeline | Stalls, stall: int,
                 ifmap: ReadBuffer, filt: ReadBuffer, out_rows: tuple[int, int],
                 own: tuple[dict[int, int], dict[int, int]] = ({}, {})) -> ScaleSimLayerReport:
    """The report row from the timeline and the buffers' traces; ``own``: each read buffer's own stalls
    on the rows it stalled (USER mode), which its SRAM start / stop cycles include."""
    od = tl.ofmap_dram
    total = tl.row_cycle(n_rows - 1) + tl.write_stalls.get(n_rows - 1, 0)
    sram_i, sram_f, sram_o = sram_counts(sp, cfg)
    mapping, util = fold_stats(sp, cfg)
    num_compute = sp.npix * sp.m * sp.window

    def span(r0: int, r1: int, lat: int, stalls: dict[int, int]) -> tuple[int, int]:
        return tl.row_cycle(r0) + lat + stalls.get(r0, 0), tl.row_cycle(r1) + lat + stalls.get(r1, 0)

    is0, is1 = span(ifmap.first_row, ifmap.last_row, READ_LATENCY_CYCLES, own[0])
    fs0, fs1 = span(filt.first_row, filt.last_row, READ_LATENCY_CYCLES, own[1])
    os0, os1 = span(out_rows[0], out_rows[1], 0, tl.write_stalls)
    return ScaleSimLayerReport(
        layer=layer.name, total_cycles_incl_prefetch=int(od.stop - min(ifmap.dram_start, filt.dram_start)),
        total_cycles=total, stall_cycles=stall,
        overall_util_pct=num_compute * 100 / (total * cfg.array_rows * cfg.array_cols),
        mapping_efficiency_pct=mapping * 100, compute_util_pct=util * 100,
        ifmap_sram_start=is0, ifmap_sram_stop=is1, ifmap_sram_reads=sram_i,
        filter_sram_start=fs0, filter_sram_stop=fs1, filter_sram_reads=sram_f,
        ofmap_sram_start=os0, ofmap_sram_stop=os1, ofmap_sram_writes=sram_o,
        ifmap_dram_start=ifmap.dram_start, ifmap_dram_stop=ifmap.dram_stop, ifmap_dram_reads=ifmap.dram_reads,
        filter_dram_start=filt.dram_start, filter_dram_stop=filt.dram_stop, filter_dram_reads=filt.dram_reads,
        ofmap_dram_start=od.start, ofmap_dram_stop=od.stop, ofmap_dram_writes=od.writes)


def simulate_calc(layer: Layer, cfg: ScaleSimConfig,
                  progress: Callable[[float], None] | None = None) -> ScaleSimLayerReport:
    """CALC mode from layouts: the OFMAP buffer's drains and stalls found by lookups, the read buffers
    in closed form (disjoint blocks, one window, or overlapping windows: :mod:`.overlap` in OS and IS,
    :mod:`.stationary` in WS); never a demand stream."""
    sp = scalesim_shape(layer)
    n_rows = fold_grid(sp, cfg).demand_rows
    out = ofmap_layout(sp, cfg)
    tl = run_layout(out, cfg.ofmap_sram_kb, cfg.array_cols, n_rows, progress)
    px = reading_pixels(sp)
    reads: list[ReadBuffer] = []
    for operand, kb in (("ifmap", cfg.ifmap_sram_kb), ("filter", cfg.filter_sram_kb)):
        lay = read_layout(sp, cfg, operand, px)
        got = None if lay is None else closed_read_buffer(sp, cfg, operand, kb, lay, tl.shift_at)
        if got is None:   # only an IFMAP whose windows overlap (or run past the input) comes here
            got = position_read_buffer(sp, cfg, operand, kb, tl.shift_at)
        if got is None:
            fast = ws_read_buffer if cfg.dataflow is Dataflow.WS else overlap_read_buffer
            got = fast(sp, cfg, operand, kb, tl.shift_at)
        if got is None:
            raise AssertionError(f"no closed form for the {operand} of {layer.name!r} in {cfg.dataflow.value}")
        reads.append(got)
    return build_report(layer, cfg, sp, n_rows, tl, tl.cum[-1], reads[0], reads[1],
                        (out.row_of(0), out.row_of(out.n - 1)))


SPAN_DEMANDS = 2**19   # demands of the folds a USER-mode read buffer is fed at once, where it is fed runs


class FoldFeed:
    """A read operand's demands in service order, as :data:`~hwsim.scalesim.user.Chunk` ``(pattern,
    first row, build)``: the buffer builds a chunk's demands only when it reads them.

    ``sweep == 0``: fold by fold, each named by its pattern (an OS filter column fold recurs right
    after itself once per row fold, an OS IFMAP row fold once per column fold: replayed unread where
    its window recurs). Otherwise runs of folds of about
    ``SPAN_DEMANDS`` demands, built at once (``FoldBlocks.span``), cut at every ``sweep``-th fold
    (a column fold's row folds); with ``named`` a run is named by its first and last fold's patterns
    and its length, which within a column fold determine it (a WS IFMAP or IS filter sweep recurs
    once per column fold: built once, replayed where its window recurs), else unnamed (WS filter and
    IS IFMAP folds never recur)."""

    def __init__(self, fb: FoldBlocks, sweep: int = 0, named: bool = False) -> None:
        self.fb = fb
        self.sweep = sweep
        self.named = named

    def __iter__(self) -> Iterator[Chunk]:
        fb = self.fb
        if not self.sweep:
            for f, key in enumerate(fb.keys):
                yield key, f * fb.fold_rows, partial(fb.block, key)
            return
        per = max(1, SPAN_DEMANDS // max(1, fb.block(fb.keys[0])[1].size))
        for s0 in range(0, len(fb.keys), self.sweep):
            s1 = min(s0 + self.sweep, len(fb.keys))
            for f0 in range(s0, s1, per):
                f1 = min(f0 + per, s1)
                name = (fb.keys[f0], fb.keys[f1 - 1], f1 - f0) if self.named else None
                yield name, f0 * fb.fold_rows, partial(fb.span, f0, f1)

    def demand_rows(self) -> tuple[int, int]:
        """The rows of the operand's first and last demand (-1, -1 without any)."""
        fb = self.fb
        first = last = -1
        for f, key in enumerate(fb.keys):
            got = fb.ends(key)
            if got is not None:
                first = f * fb.fold_rows + got[0]
                break
        for f in range(len(fb.keys) - 1, -1, -1):
            got = fb.ends(fb.keys[f])
            if got is not None:
                last = f * fb.fold_rows + got[1]
                break
        return first, last


def simulate_user(layer: Layer, cfg: ScaleSimConfig) -> ScaleSimLayerReport:
    """USER mode without demand streams: each read buffer is replayed on its demand folds reading only
    those where its window's edge falls (:func:`~hwsim.scalesim.homes.replay_homes`: a demand whose own
    entry is in the window hits), and the OFMAP buffer's drains and the read buffers' stalls are found on
    the OFMAP layout (:func:`~hwsim.scalesim.timeline.run_layout`). Equal to :func:`simulate_streams`
    and :func:`simulate_user_fed` (tested)."""
    sp = scalesim_shape(layer)
    n_rows = fold_grid(sp, cfg).demand_rows
    i_order, f_order = fetch_orders(sp, cfg, lazy=True)
    i_fb, f_fb = fold_blocks(sp, cfg, "ifmap"), fold_blocks(sp, cfg, "filter")
    i_hm = home_map(sp, cfg, "ifmap") if prefetches_again(i_order, cfg.ifmap_sram_kb) else None
    f_hm = home_map(sp, cfg, "filter") if prefetches_again(f_order, cfg.filter_sram_kb) else None
    i_pf = replay_homes(i_fb, i_hm, i_order, cfg.ifmap_sram_kb, cfg.ifmap_read_words_per_cycle)
    f_pf = replay_homes(f_fb, f_hm, f_order, cfg.filter_sram_kb, cfg.filter_read_words_per_cycle)
    return _user_report(layer, cfg, sp, n_rows, (i_pf, f_pf), (FoldFeed(i_fb), FoldFeed(f_fb)))


def simulate_user_fed(layer: Layer, cfg: ScaleSimConfig) -> ScaleSimLayerReport:
    """USER mode with every demand of a fold read (:class:`FoldFeed` into
    :func:`~hwsim.scalesim.user.replay_prefetches`, the fetch orders built), except folds replayed where
    their window recurs: the path :func:`simulate_user` replaced, kept as a second reference (it is
    fast enough for the benchmark's layers, which :func:`simulate_streams` is not)."""
    sp = scalesim_shape(layer)
    g = fold_grid(sp, cfg)
    i_order, f_order = fetch_orders(sp, cfg)
    flow = cfg.dataflow
    sweep = 0 if flow is Dataflow.OS else g.row_folds
    i_feed = FoldFeed(fold_blocks(sp, cfg, "ifmap"), sweep, named=flow is Dataflow.WS)
    f_feed = FoldFeed(fold_blocks(sp, cfg, "filter"), sweep, named=flow is Dataflow.IS)
    i_pf = replay_prefetches(i_feed, i_order, cfg.ifmap_sram_kb, cfg.ifmap_read_words_per_cycle)
    f_pf = replay_prefetches(f_feed, f_order, cfg.filter_sram_kb, cfg.filter_read_words_per_cycle)
    return _user_report(layer, cfg, sp, g.demand_rows, (i_pf, f_pf), (i_feed, f_feed))


def _user_report(layer: Layer, cfg: ScaleSimConfig, sp: Shape, n_rows: int, pfs: tuple[Prefetches, Prefetches],
                 feeds: tuple[FoldFeed, FoldFeed]) -> ScaleSimLayerReport:
    """The report of a USER-mode layer from its read buffers' prefetches (IFMAP, filter) and the feeds
    that give their first and last demand rows: the OFMAP buffer's drains and the read stalls on the
    OFMAP layout."""
    out = ofmap_layout(sp, cfg)
    tl = run_layout(out, cfg.ofmap_sram_kb, cfg.bandwidths[0], n_rows, reads=pfs)
    px = reading_pixels(sp)

    def demand_rows(operand: str, feed: FoldFeed) -> tuple[int, int]:
        """The operand's first and last demand rows from its folds' ends, except the IS IFMAP's where it
        has a CALC-mode layout (a few lookups): its preloaded folds' ends are found by building them
        where a window is cut, walking back over every empty fold of the last column fold."""
        lay = read_layout(sp, cfg, operand, px) if (cfg.dataflow, operand) == (Dataflow.IS, "ifmap") else None
        if lay is None:
            return feed.demand_rows()
        return (lay.row_of(0), lay.row_of(lay.n - 1)) if lay.n else (-1, -1)

    ifmap, filt = (ReadBuffer(pf.dram_start, pf.dram_stop, pf.dram_reads, *demand_rows(operand, feed))
                   for pf, feed, operand in zip(pfs, feeds, ("ifmap", "filter"), strict=True))
    return build_report(layer, cfg, sp, n_rows, tl, tl.cum[-1], ifmap, filt,
                        (out.row_of(0), out.row_of(out.n - 1)), (tl.read_stalls[0], tl.read_stalls[1]))


def simulate_streams(layer: Layer, cfg: ScaleSimConfig) -> ScaleSimLayerReport:
    """Either mode by replaying the demand streams (USER mode's model; CALC mode's reference)."""
    sp = scalesim_shape(layer)
    st = demand_streams(sp, cfg, reads=cfg.user_bandwidth)
    ifm, fil, out = st.ifmap, st.filter, st.ofmap
    if cfg.user_bandwidth:
        i_order, f_order = fetch_orders(sp, cfg)
        i_pf = user_prefetches(ifm, i_order, cfg.ifmap_sram_kb, cfg.ifmap_read_words_per_cycle)
        f_pf = user_prefetches(fil, f_order, cfg.filter_sram_kb, cfg.filter_read_words_per_cycle)
        tl = run_stream(out, cfg.ofmap_sram_kb, cfg.bandwidths[0], st.n_rows, (i_pf, f_pf))
        i_own, f_own = tl.read_stalls
        ifmap = ReadBuffer(i_pf.dram_start, i_pf.dram_stop, i_pf.dram_reads, int(ifm.rows[0]), int(ifm.rows[-1]))
        filt = ReadBuffer(f_pf.dram_start, f_pf.dram_stop, f_pf.dram_reads, int(fil.rows[0]), int(fil.rows[-1]))
        own = (i_own, f_own)
    else:
        tl = run_stream(out, cfg.ofmap_sram_kb, cfg.array_cols, st.n_rows)
        ifmap = stream_read_buffer(sp, cfg, "ifmap", cfg.ifmap_sram_kb, tl.shift_at)
        filt = stream_read_buffer(sp, cfg, "filter", cfg.filter_sram_kb, tl.shift_at)
        own = ({}, {})
    return build_report(layer, cfg, sp, st.n_rows, tl, int(tl.shift[-1]), ifmap, filt,
                        (int(out.rows[0]), int(out.rows[-1])), own)
