"""The accelerator core: PE array, three double-buffered SRAM buffers, a DMA engine on one external
memory port, and a controller that runs one layer from a stream of phase descriptors (:mod:`rtl.program`).

Blocks (all in this component, one clock):

* **Array**: :class:`rtl.core_array.CoreArray` of the accelerator's kind, one set of PEs for OS and WS
  folds, with ``hold`` so a step boundary can wait for operands (a port stall).
* **Buffers**: ifmap, filter and ofmap, each two halves (ping-pong) of ``words_per_half`` words with
  ``banks`` ports per half (one access per port per cycle). Only one agent uses a half at a time: the DMA
  fills one ifmap/filter half while the fetcher reads the other; the drain writes one ofmap half while the
  DMA writes the other back.
* **Fetcher**: generates the im2col addresses of every step of every fold (rows <- output pixels, columns
  <- filters, time <- the reduction), reads ``banks`` words per cycle per buffer (row ``r`` on ifmap port
  ``r % banks``, column ``c`` on filter port ``c % banks``), runs one step ahead of the array and bypasses
  the words it reads in the cycle the array takes them; zero padding is not read. In WS the weights have a
  fetcher of their own, one fold ahead: from the cycle after a fold starts it stages the next fold's
  weights (lane ``r*C + c`` for PE ``(r, c)``, ``banks`` per cycle, up to the fold's last used PE).
* **Drain**: reads a finished fold's outputs from the array's ``results`` (which keep them while the next
  fold computes), requantises them (arithmetic shift right, clip to ``ob`` bits;
  :func:`rtl.program.requantize`) and writes ``banks`` of them per cycle into the ofmap half in fold
  order.
* **DMA**: up to three transfers per phase, one after another on the external port: a read moves
  ``lanes`` elements per cycle from ``ext_rdata`` into a buffer half, a write moves ``lanes`` ofmap
  words per cycle to ``ext_wdata`` (never ahead of the drain). The port is ``link_bits`` wide; the
  external side identifies a transfer by ``ext_tag`` and supplies/takes ``ext_n`` elements of
  ``ext_bits`` bits, packed from bit 0, in every cycle with ``ext_rd``/``ext_wr`` high (no latency).
* **Controller**: a phase begins in the cycle after the previous one ends, i.e. when its compute (the
  last fold's last busy cycle) and its DMA (the last beat) are both over; descriptors are taken from
  ``desc_data`` (valid/ready) into a one-entry prefetch register so no cycle is lost between phases.

Counters (``Out``, frozen after the ``end`` phase): ``cycles`` (every cycle of the run's phases),
``compute_cycles`` (array advancing), ``fill_cycles`` (fold start cycles), ``stall_cycles`` (the rest:
waiting on the DMA or on a port), SRAM reads/writes per buffer in words, DRAM bits read/written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth.hdl import C, Cat, Elaboratable, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.area import splits_into_banks

from .core_array import CoreArray
from .program import BUFFERS, COUNTER_BITS, COUNTERS, N_SLOTS, TAG, CoreParams, slot_fields

__all__ = ["AccelCore", "desc_layout"]

def desc_layout(params: CoreParams) -> data.StructLayout:
    """The phase descriptor of ``params``' core as a struct (:meth:`CoreParams.descriptor_fields`)."""
    return data.StructLayout({name: signed(bits) if sg else unsigned(bits)
                              for name, bits, sg in params.descriptor_fields()})


def _mask(bits: Value, width: int) -> Value:
    """The low ``bits`` of ``width`` bits set. A right shift of a constant: a variable left shift would be
    ``2**len(bits)`` bits wider than its result, and simulators compute it at that width."""
    ones = C((1 << width) - 1, width)
    return Mux(bits >= width, ones, ones >> (C(width, 8) - bits)[:8])


def _sext(raw: Value, bits: Value, width: int, signed_: Value) -> Value:
    """``raw``'s low ``bits`` bits, sign-extended (``signed_``) or zero-extended to ``width`` bits. The sign
    bit is selected among the low ``width`` bits only (``bits <= width``): selected from all of a wider word,
    every bit of the word would be read, and synthesis could not drop the bits above the element."""
    m = _mask(bits, width)
    neg = signed_ & raw[:width].bit_select((bits - 1).as_unsigned(), 1)
    return Mux(neg, raw[:width] | ~m, raw[:width] & m)[:width]


def _held(m: Module, value: Value, name: str) -> Signal:
    """``value`` in a signal of its own: an expression used in several places is emitted (and simulated)
    once instead of once per use."""
    sig = Signal(value.shape(), name=name)
    m.d.comb += sig.eq(value)
    return sig


def _used(m: Module, left: Value, limit: int, name: str) -> Signal:
    """``min(left, limit)`` cut to the range of ``limit`` (the array's rows or columns): how many of them
    a fold or a WS step uses. At the full width of ``left`` the products these feed (a fold's output
    count, a WS step's weight count) would be multipliers of 24 or more bits."""
    return _held(m, Mux(left >= limit, limit, left[:limit.bit_length()]), name)


def _times(value: Value, n: int) -> Value:
    """``value * n`` for a constant ``n >= 0`` as shifted additions: no multiplier for synthesis to map
    to a DSP or a LUT array (a stride times the array's columns or banks)."""
    terms = [value << i for i in range(n.bit_length()) if n >> i & 1]
    return sum(terms[1:], terms[0]) if terms else C(0, 1)


def _pick(m: Module, values: list[Value], index: Value, name: str) -> Signal:
    """``values[index]`` as a chain of multiplexers (the last value for an index out of range), index and
    result each held once (:func:`_held`). Unlike an ``Array`` lookup this is defined from the first cycle
    in every simulator (Icarus does not evaluate the lookup of a constant index until an input changes)."""
    idx = _held(m, index, f"{name}_idx") if not isinstance(index, Signal) else index
    out = values[-1]
    for i in range(len(values) - 2, -1, -1):
        out = Mux(idx == i, values[i], out)
    return _held(m, out, name)


@dataclass(frozen=True)
class _Port:
    """A memory port as the core drives it: ``en`` is None for a read port."""

    addr: Signal
    data: Signal
    en: Signal | None = None


class BankedMemory(Elaboratable):
    """A buffer half as ``banks`` memories of one write port each: bank ``j`` holds the words whose address
    is ``j`` modulo ``banks`` (a power of two), each read port reads every bank and selects by the address's
    low bits. An FPGA block RAM has one write port, so a half with ``banks`` write ports can only be block
    RAM this way. It behaves as one memory with ``banks`` write ports provided no two ports enabled in a
    cycle write the same bank, which holds in the core: its write lanes always write consecutive addresses
    (the DMA's ``x_ptr + lane``, the drain's ``addr0 + lane``). The banks are made when this is created, so
    a subclass of the core that replaces ``Memory`` while it elaborates (``rtl.synth.bram_core``) replaces
    theirs too."""

    def __init__(self, width: int, depth: int, banks: int, name: str) -> None:
        assert splits_into_banks(banks), banks
        self.lb, ab = banks.bit_length() - 1, max(1, (depth - 1).bit_length())
        self.banks = [Memory(shape=unsigned(width), depth=-(-depth // banks), init=[]) for _ in range(banks)]
        self.bank_r = [[mem.read_port(domain="comb") for _ in range(banks)] for mem in self.banks]
        self.bank_w = [mem.write_port() for mem in self.banks]
        self.read = [_Port(Signal(ab, name=f"{name}_ra{i}"), Signal(width, name=f"{name}_rd{i}")) for i in range(banks)]
        self.write = [_Port(Signal(ab, name=f"{name}_wa{i}"), Signal(width, name=f"{name}_wd{i}"),
                            Signal(name=f"{name}_we{i}")) for i in range(banks)]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        lb = self.lb
        for j, mem in enumerate(self.banks):
            m.submodules[f"bank{j}"] = mem
            hits = [w.en & (w.addr[:lb] == j) for w in self.write if w.en is not None]
            wp = self.bank_w[j]
            addr: Value = self.write[0].addr[lb:]
            data_: Value = self.write[0].data
            for w, hit in zip(self.write[1:], hits[1:], strict=True):
                addr, data_ = Mux(hit, w.addr[lb:], addr), Mux(hit, w.data, data_)
            m.d.comb += [wp.addr.eq(addr), wp.data.eq(data_), wp.en.eq(Cat(*hits).any())]
        for i, r in enumerate(self.read):
            m.d.comb += [self.bank_r[j][i].addr.eq(r.addr[lb:]) for j in range(len(self.banks))]
            m.d.comb += r.data.eq(_pick(m, [self.bank_r[j][i].data for j in range(len(self.banks))], r.addr[:lb],
                                        f"sel{i}"))
        return m


def _popcount(bits: list[Value]) -> Value:
    total: Value = C(0, 8)
    for b in bits:
        total = total + b
    return total


class AccelCore(wiring.Component):
    """The core for :class:`rtl.program.CoreParams` (see the module docstring)."""

    # each buffer half with a power-of-two number of banks >= 2 as a :class:`BankedMemory` (the FPGA build,
    # whose block RAMs have one write port); otherwise one memory with a port per bank
    split_banks = False

    def __init__(self, params: CoreParams) -> None:
        self.params = p = params
        self.layout = desc_layout(params)
        sig: dict[str, object] = {
            "desc_valid": In(1), "desc_data": In(self.layout.size), "desc_ready": Out(1),
            "ext_rd": Out(1), "ext_wr": Out(1), "ext_tag": Out(TAG), "ext_n": Out(8), "ext_bits": Out(6),
            "ext_rdata": In(p.link_bits), "ext_wdata": Out(p.link_bits),
            "running": Out(1), "finished": Out(1),
        }
        for name in COUNTERS:
            sig[name] = Out(COUNTER_BITS)
        super().__init__(sig)

    def elaborate(self, platform: object) -> Module:  # noqa: C901 - one datapath, kept in one place
        m = Module()
        p = self.params
        R, Cc, W, A = p.rows, p.cols, p.weight_bits, p.act_bits
        CNT, DIM = p.cnt_bits, p.dim_bits   # widths of counts / addresses and of extents / coordinates
        lay = self.layout

        # ---- descriptors: prefetch register `nxt`, current phase `cur` ---------------------------------
        cur = Signal(lay)
        nxt = Signal(lay)
        nxt_valid = Signal()
        running = Signal()
        finished = Signal()
        m.d.comb += [self.desc_ready.eq(~nxt_valid), self.running.eq(running), self.finished.eq(finished)]

        # ---- memories ----------------------------------------------------------------------------------
        rports: dict[str, list[list[Any]]] = {}
        wports: dict[str, list[list[Any]]] = {}
        for buf in BUFFERS:
            g = p.geometry(buf)
            rports[buf], wports[buf] = [], []
            for h in range(2):
                if self.split_banks and splits_into_banks(g.banks):
                    half = BankedMemory(g.data_bits, g.words_per_half, g.banks, f"{buf}_h{h}")
                    m.submodules[f"{buf}_h{h}"] = half
                    rports[buf].append(half.read)
                    wports[buf].append(half.write)
                    continue
                mem = Memory(shape=unsigned(g.data_bits), depth=g.words_per_half, init=[])
                m.submodules[f"{buf}_h{h}"] = mem
                rports[buf].append([mem.read_port(domain="comb") for _ in range(g.banks)])
                wports[buf].append([mem.write_port() for _ in range(g.banks)])
        abits = {buf: max(1, (p.geometry(buf).words_per_half - 1).bit_length()) for buf in BUFFERS}

        # ---- array -------------------------------------------------------------------------------------
        has_ws = "ws" in p.dataflows
        hold = Signal()
        accept = Signal()      # a fold starts (the array's load cycle)
        arr = CoreArray(R, Cc, W, A, acc_bits=p.acc_bits, max_steps=p.max_steps, kind=p.kind, dataflows=p.dataflows)
        m.submodules.array = arr
        take = arr.load        # the array samples its operand inputs this cycle

        # ---- phase control ----------------------------------------------------------------------------
        boundary = Signal()    # the current phase (or idle) ends this cycle and `nxt` becomes `cur`
        phase_end = Signal()
        src = Signal(lay)      # dims for coordinate generation: nxt at a boundary, else cur
        m.d.comb += src.eq(Mux(boundary, nxt, cur))

        with m.If(self.desc_valid & ~nxt_valid):
            m.d.sync += [nxt.eq(self.desc_data), nxt_valid.eq(1)]
        with m.If(boundary):
            m.d.sync += [cur.eq(nxt), nxt_valid.eq(0), running.eq(1), finished.eq(0)]
        with m.Elif(phase_end & cur.end):
            m.d.sync += [running.eq(0), finished.eq(1)]

        # ---- fetcher state -----------------------------------------------------------------------------
        f_active = Signal()
        k = Signal(CNT)
        ka, kr, ks = Signal(CNT, name="k_a"), Signal(8, name="k_h"), Signal(8, name="k_w")   # ka: the reduction
        # element's part of the ifmap address (rtl.program.IFMAP_STRIDES)
        pix_base = Signal(CNT + 1)
        col_base = Signal(DIM + 1)
        bi, bf, bo = p.ifmap.banks, p.filter.banks, p.ofmap.banks
        n_wl = R * Cc if has_ws else Cc          # weight lanes: C (OS, one per column) or R*C (WS, one per PE)
        n_gi, n_gf_os, n_gf_ws = -(-R // bi), -(-Cc // bf), -(-(R * Cc) // bf)
        gi = Signal(range(n_gi + 1))
        gf = Signal(range(n_gf_os + 1))
        # WS: a weight fetcher of its own runs one fold ahead: from the cycle after a fold starts it loads the
        # next fold's weights into the stage (lane r*C + c for PE (r, c), up to the fold's last used PE), so
        # a fold waits for its weights only when the fold before computes for fewer cycles than that load.
        wgf = Signal(range(n_gf_ws + 1), name="w_gf")
        wk0, wcol = Signal(CNT, name="w_k0"), Signal(DIM + 1, name="w_col")
        wck = Signal(CNT, name="w_colk")   # wcol * K, stepped by C * K: a weight's address with no multiplier
        w_have, w_act = Signal(name="w_have"), Signal(name="w_act")
        ws = cur.ws if has_ws else C(0, 1)   # an OS-only core: no WS logic, whatever the descriptor holds
        k0 = Signal(CNT)
        fk = Signal(CNT, name="f_k")      # OS: the filter address of the fold's first column at step k,
        gk = Signal(CNT, name="f_gk")     # col_base * K + k, and of the fetch group, gf * bf * K
        cbp = Signal(CNT, name="col_p")   # WS: col_base * P, where the column fold's partial sums start
        a_done, f_done = Signal(name="a_done"), Signal(name="f_done")
        # data registers without reset (nothing reads them before they are written): a reset would be one more
        # condition per register in every simulated cycle
        s_a = [Signal(A, name=f"stage_a{r}", reset_less=True) for r in range(R)]
        s_w = [Signal(signed(W), name=f"stage_w{c}", reset_less=True) for c in range(n_wl)]

        def coord(name: str) -> dict[str, Signal]:
            return {"a": Signal(CNT, name=f"{name}_a"), "p": Signal(DIM + 1, name=f"{name}_p"),
                    "q": Signal(DIM + 1, name=f"{name}_q"), "gy": Signal(signed(DIM + 3), name=f"{name}_gy"),
                    "gx": Signal(signed(DIM + 3), name=f"{name}_gx"), "i": Signal(CNT + 1, name=f"{name}_i")}

        rows = [coord(f"row{r}") for r in range(R)]    # OS: the pixel of each row
        px = coord("pix")                               # WS: the pixel of the step
        rk = [{"a": Signal(CNT, name=f"rk{r}_a"), "h": Signal(8, name=f"rk{r}_h"), "w": Signal(8, name=f"rk{r}_w"),
               "i": Signal(CNT + 1, name=f"rk{r}_i")} for r in range(R)]   # WS: the reduction element of each row

        def inc(c: dict[str, Value]) -> dict[str, Value]:
            q_wrap = c["q"] + 1 == src.tq
            p_wrap = c["p"] + 1 == src.tp
            return {"q": Mux(q_wrap, 0, c["q"] + 1), "gx": Mux(q_wrap, src.gx0, c["gx"] + src.sw),
                    "p": Mux(q_wrap, Mux(p_wrap, 0, c["p"] + 1), c["p"]),
                    "gy": Mux(q_wrap, Mux(p_wrap, src.gy0, c["gy"] + src.sh), c["gy"]),
                    "a": (c["a"] + Mux(q_wrap, Mux(p_wrap, src.a_n, src.a_p), src.sw))[:CNT], "i": c["i"] + 1}

        n_sig = [0]

        def held(values: dict[str, Value], like: dict[str, Signal]) -> dict[str, Value]:
            """Each value in a signal of its own, so a chain of incrementers stays linear in size."""
            out: dict[str, Value] = {}
            for key, v in values.items():
                n_sig[0] += 1
                sig = Signal.like(like[key], name=f"ch{n_sig[0]}_{key}")
                m.d.comb += sig.eq(v)
                out[key] = sig
            return out

        def chain(first: dict[str, Value]) -> list[dict[str, Value]]:
            out = [held(first, rows[0])]
            for _ in range(R - 1):
                out.append(held(inc(out[-1]), rows[0]))
            return out

        start_coords = {"a": src.a0, "p": C(0, 1), "q": C(0, 1), "gy": src.gy0, "gx": src.gx0, "i": C(0, 1)}
        init_rows = chain(start_coords)
        next_rows = chain(inc({key: rows[R - 1][key] for key in rows[0]}))
        next_px = inc({key: px[key] for key in px})

        def inc_k(c: dict[str, Value]) -> dict[str, Value]:
            w_wrap = c["w"] + 1 == src.kw
            h_wrap = c["h"] + 1 == src.kh
            return {"w": Mux(w_wrap, 0, c["w"] + 1), "h": Mux(w_wrap, Mux(h_wrap, 0, c["h"] + 1), c["h"]),
                    "a": (c["a"] + Mux(w_wrap, Mux(h_wrap, src.a_c, src.a_h), 1))[:CNT], "i": c["i"] + 1}

        def chain_k(first: dict[str, Value]) -> list[dict[str, Value]]:
            out = [held(first, rk[0])]
            for _ in range(R - 1):
                out.append(held(inc_k(out[-1]), rk[0]))
            return out

        init_rk = chain_k({"a": C(0, 1), "h": C(0, 1), "w": C(0, 1), "i": C(0, 1)})
        next_rk = chain_k(inc_k({key: rk[R - 1][key] for key in rk[0]}))

        # ---- fetch addresses and operands -------------------------------------------------------------
        a_ready = Signal()
        w_ready = Signal()
        vec_ready = Signal()
        if_valid: list[Value] = []
        a_lane_now: list[Value] = []
        for b in range(min(bi, R)):
            members = [rows[r] for r in range(b, R, bi)]
            kmembers = [rk[r] for r in range(b, R, bi)]
            if len(members) == 1:
                sel, ksel = dict(members[0]), dict(kmembers[0])
            else:
                sel = {key: _pick(m, [mem[key] for mem in members], gi, f"if{b}_{key}") for key in rows[0]}
                ksel = {key: _pick(m, [mem[key] for mem in kmembers], gi, f"if{b}_k{key}") for key in rk[0]}
            if has_ws:   # WS: the step's pixel, the row's reduction element
                sel = {key: _held(m, Mux(ws, px[key], sel[key]), f"if{b}_ws_{key}") for key in sel}
                kcur = {"a": Mux(ws, ksel["a"], ka), "h": Mux(ws, ksel["h"], kr), "w": Mux(ws, ksel["w"], ks)}
                row_ok = (gi * bi + b < R) & Mux(ws, ksel["i"] < cur.K, sel["i"] < cur.P)
            else:
                kcur = {"a": ka, "h": kr, "w": ks}
                row_ok = (gi * bi + b < R) & (sel["i"] < cur.P)
            gy = Signal(signed(DIM + 4), name=f"if_gy{b}")
            gx = Signal(signed(DIM + 4), name=f"if_gx{b}")
            inside = Signal(name=f"if_inside{b}")
            m.d.comb += [gy.eq(sel["gy"] + kcur["h"]), gx.eq(sel["gx"] + kcur["w"]),
                         inside.eq((gy >= 0) & (gy < cur.in_h) & (gx >= 0) & (gx < cur.in_w))]
            # the pixel's part plus the reduction element's, cut to the address width (exact modulo it)
            addr = _held(m, (sel["a"] + kcur["a"])[:abits["ifmap"]], f"if_addr{b}")
            ok = Signal(name=f"if_ok{b}")
            m.d.comb += ok.eq(f_active & ~a_done & row_ok & inside)
            for h in range(2):
                m.d.comb += rports["ifmap"][h][b].addr.eq(addr[:abits["ifmap"]])
            raw = Mux(cur.hi, rports["ifmap"][1][b].data, rports["ifmap"][0][b].data)
            val = Signal(A, name=f"if_val{b}")
            m.d.comb += val.eq(Mux(ok, _sext(raw, cur.pa, A, cur.sgn), 0))
            if_valid.append(ok)
            a_lane_now.append(val)
        f_valid: list[Value] = []
        w_lane_now: list[Value] = []
        f_need = ~ws if has_ws else C(1, 1)   # the step fetcher reads weights in OS; WS has its own
        addr_os = fk + gk   # lane b: the next lane's plus K
        if has_ws:   # WS lane (r, c) of the fold from (wk0, wcol) reads (wcol + c) * K + wk0 + r
            ws_base = _held(m, wck + wk0, "w_base")
            col_k = [_held(m, _times(cur.K, c), f"w_colk{c}") for c in range(Cc)]   # c * K, shared by the lanes
        for b in range(min(bf, n_wl)):
            col = gf * bf + b
            mloc = col_base + col
            ok = Signal(name=f"f_ok{b}")
            addr_os = _held(m, addr_os[:abits["filter"]] if b == 0 else (addr_os + cur.K)[:abits["filter"]],
                            f"f_addr_os{b}")
            if has_ws:
                lanes = [g * bf + b for g in range(n_gf_ws)]
                lr = _pick(m, [C(min(ln, R * Cc - 1) // Cc, range(R + 1)) for ln in lanes], wgf, f"wl{b}_r")
                lc = _pick(m, [C(min(ln, R * Cc - 1) % Cc, range(Cc + 1)) for ln in lanes], wgf, f"wl{b}_c")
                lk = _pick(m, [col_k[min(ln, R * Cc - 1) % Cc] for ln in lanes], wgf, f"wl{b}_k")
                lvalid = _pick(m, [C(int(ln < R * Cc), 1) for ln in lanes], wgf, f"wl{b}_v")
                ws_ok = w_act & ~w_have & lvalid & (wcol + lc < cur.tm) & (wk0 + lr < cur.K)
                os_ok = f_active & ~f_done & (col < Cc) & (mloc < cur.tm)
                m.d.comb += ok.eq(Mux(ws, ws_ok, os_ok))
                addr = _held(m, Mux(ws, (ws_base + lk + lr)[:abits["filter"]], addr_os), f"f_addr{b}")
            else:
                m.d.comb += ok.eq(f_active & ~f_done & (col < Cc) & (mloc < cur.tm))
                addr = addr_os
            for h in range(2):
                m.d.comb += rports["filter"][h][b].addr.eq(addr[:abits["filter"]])
            raw = Mux(cur.hf, rports["filter"][1][b].data, rports["filter"][0][b].data)
            val = Signal(signed(W), name=f"f_val{b}")
            m.d.comb += val.eq(Mux(ok, _sext(raw, cur.pw, W, C(1, 1)), 0))
            f_valid.append(ok)
            w_lane_now.append(val)
        os_w_ready = f_done | (gf == n_gf_os - 1)
        w_last = C(0, 1)
        if has_ws:     # a fold starts when its weights are staged or its last group is read (bypassed) now
            rows_u = _used(m, cur.K - wk0, R, "ws_rows")
            cols_u = _used(m, cur.tm - wcol, Cc, "ws_cols")
            w_last = Signal(name="w_last")
            m.d.comb += w_last.eq((wgf + 1) * bf >= (rows_u - 1) * Cc + cols_u)
            m.d.comb += w_ready.eq(Mux(ws, (k != 0) | w_have | (w_act & w_last), os_w_ready))
        else:
            m.d.comb += w_ready.eq(os_w_ready)
        m.d.comb += [a_ready.eq(a_done | (gi == n_gi - 1)), vec_ready.eq(f_active & a_ready & w_ready)]
        acts_now = [Mux(a_done | (gi != r // bi), s_a[r], a_lane_now[r % bi]) for r in range(R)]
        w_staged = [Mux(ws, w_have | (wgf != c // bf), f_done | (gf != c // bf)) if has_ws else f_done | (gf != c // bf)
                    for c in range(n_wl)]
        w_now = [Mux(w_staged[c], s_w[c], w_lane_now[c % bf]) for c in range(n_wl)]
        steps_now = Mux(ws, cur.P, cur.K) if has_ws else cur.K
        # the array: start a fold when idle and step 0 is ready; hold a step boundary until operands are
        m.d.comb += [accept.eq(f_active & (k == 0) & vec_ready & ~arr.busy), hold.eq(arr.want_load & ~vec_ready)]
        m.d.comb += [arr.start.eq(accept), arr.ws.eq(ws), arr.steps.eq(steps_now), arr.act_signed.eq(cur.sgn),
                     arr.hold.eq(hold)]
        m.d.comb += [arr.acts[r].eq(acts_now[r]) for r in range(R)]
        if p.kind != "parallel":
            m.d.comb += arr.precision.eq(cur.pa)
        if p.kind == "serial_both":
            m.d.comb += arr.weight_precision.eq(cur.pw)
        m.d.comb += [arr.weights[c].eq(w_now[c]) for c in range(Cc)]
        if has_ws:
            m.d.comb += [arr.pe_weights[i].eq(w_now[i]) for i in range(R * Cc)]

        def next_ws_fold(k0s: Signal, cols: Signal, active: Signal, on_wrap: list[Any], on_next: list[Any]) -> None:
            """Move a WS fetcher to the next fold: row folds (the reduction, ``R`` at a time) inner, column
            folds (``C`` filters) outer; ``active`` falls after the tile's last fold. The step fetcher and
            the weight fetcher both walk this order."""
            with m.If(k0s + R >= cur.K):
                m.d.sync += [k0s.eq(0), *on_wrap]
                with m.If(cols + Cc >= cur.tm):
                    m.d.sync += active.eq(0)
                with m.Else():
                    m.d.sync += cols.eq(cols + Cc)
            with m.Else():
                m.d.sync += [k0s.eq(k0s + R), *on_next]

        last_k = k == steps_now - 1
        with m.If(boundary):
            m.d.sync += [f_active.eq(nxt.compute), k.eq(0), ka.eq(0), kr.eq(0), ks.eq(0), pix_base.eq(0),
                         col_base.eq(0), gi.eq(0), gf.eq(0), a_done.eq(0), f_done.eq(0), k0.eq(0), fk.eq(0),
                         gk.eq(0), cbp.eq(0)]
            for r in range(R):
                m.d.sync += [rows[r][key].eq(init_rows[r][key]) for key in rows[r]]
                m.d.sync += [rk[r][key].eq(init_rk[r][key]) for key in rk[r]]
            m.d.sync += [px[key].eq(start_coords[key]) for key in px]
        with m.Elif(take & ws):
            m.d.sync += [gi.eq(0), gf.eq(0), a_done.eq(0), f_done.eq(0), gk.eq(0)]
            with m.If(last_k):
                m.d.sync += [k.eq(0)] + [px[key].eq(init_rows[0][key]) for key in px]
                next_ws_fold(k0, col_base, f_active,
                             [cbp.eq(cbp + _times(cur.P, Cc))]
                             + [rk[r][key].eq(init_rk[r][key]) for r in range(R) for key in rk[r]],
                             [rk[r][key].eq(next_rk[r][key]) for r in range(R) for key in rk[r]])
            with m.Else():
                m.d.sync += [k.eq(k + 1)] + [px[key].eq(next_px[key]) for key in px]
        with m.Elif(take):
            m.d.sync += [gi.eq(0), gf.eq(0), a_done.eq(0), f_done.eq(0), gk.eq(0)]
            with m.If(last_k):
                m.d.sync += [k.eq(0), ka.eq(0), kr.eq(0), ks.eq(0), fk.eq(fk + _times(cur.K, Cc - 1) + 1)]
                with m.If(col_base + Cc >= cur.tm):
                    m.d.sync += [col_base.eq(0), fk.eq(0)]
                    with m.If(pix_base + R >= cur.P):
                        m.d.sync += f_active.eq(0)
                    with m.Else():
                        m.d.sync += pix_base.eq(pix_base + R)
                        for r in range(R):
                            m.d.sync += [rows[r][key].eq(next_rows[r][key]) for key in rows[r]]
                with m.Else():
                    m.d.sync += col_base.eq(col_base + Cc)
            with m.Else():
                m.d.sync += [k.eq(k + 1), fk.eq(fk + 1)]
                with m.If(ks + 1 == cur.kw):
                    m.d.sync += ks.eq(0)
                    with m.If(kr + 1 == cur.kh):
                        m.d.sync += [kr.eq(0), ka.eq(ka + cur.a_c)]
                    with m.Else():
                        m.d.sync += [kr.eq(kr + 1), ka.eq(ka + cur.a_h)]
                with m.Else():
                    m.d.sync += [ks.eq(ks + 1), ka.eq(ka + 1)]
        with m.Elif(f_active):
            with m.If(~a_done):
                for r in range(R):
                    with m.If(gi == r // bi):
                        m.d.sync += s_a[r].eq(a_lane_now[r % bi])
                with m.If(gi == n_gi - 1):
                    m.d.sync += a_done.eq(1)
                with m.Else():
                    m.d.sync += gi.eq(gi + 1)
            with m.If(~f_done & f_need):
                for c in range(Cc):      # OS stages one weight per column
                    with m.If(gf == c // bf):
                        m.d.sync += s_w[c].eq(w_lane_now[c % bf])
                with m.If(gf == n_gf_os - 1):
                    m.d.sync += f_done.eq(1)
                with m.Else():
                    m.d.sync += [gf.eq(gf + 1), gk.eq(gk + _times(cur.K, bf))]

        if has_ws:     # the WS weight fetcher, one fold ahead of the step fetcher
            with m.If(boundary):
                m.d.sync += [w_act.eq(nxt.compute & nxt.ws), wk0.eq(0), wcol.eq(0), wck.eq(0), wgf.eq(0),
                             w_have.eq(0)]
            with m.Elif(accept & ws):
                m.d.sync += [wgf.eq(0), w_have.eq(0)]
                next_ws_fold(wk0, wcol, w_act, [wck.eq(wck + _times(cur.K, Cc))], [])
            with m.Elif(ws & w_act & ~w_have):
                for c in range(n_wl):
                    with m.If(wgf == c // bf):
                        m.d.sync += s_w[c].eq(w_lane_now[c % bf])
                with m.If(w_last):
                    m.d.sync += w_have.eq(1)
                with m.Else():
                    m.d.sync += wgf.eq(wgf + 1)

        # ---- fold bookkeeping and drain ----------------------------------------------------------------
        out_ptr = Signal(CNT)
        written = [Signal(CNT + 1, name=f"written{h}") for h in range(2)]
        run = {"sr": Signal(range(R + 1)), "sc": Signal(range(Cc + 1)), "base": Signal(CNT), "half": Signal(),
               "shift": Signal(7), "ob": Signal(6), "osg": Signal(), "ws": Signal(), "first": Signal(),
               "final": Signal()}
        sr_now = _used(m, cur.P - pix_base, R, "fold_sr")
        sc_now = _used(m, cur.tm - col_base, Cc, "fold_sc")
        ws_ptr = Signal(CNT)     # WS: address of the next step's sc partial sums ([column fold][pixel][column])
        trigger = _held(m, arr.os_done | arr.step_out, "trigger")
        with m.If(boundary):
            m.d.sync += out_ptr.eq(0)
        with m.Elif(accept):
            m.d.sync += [run["sr"].eq(Mux(ws, 1, sr_now)), run["sc"].eq(sc_now), run["base"].eq(out_ptr),
                         run["half"].eq(cur.ho), run["shift"].eq(cur.shift), run["ob"].eq(cur.ob),
                         run["osg"].eq(cur.osg), out_ptr.eq(out_ptr + sr_now * sc_now), run["ws"].eq(ws),
                         run["first"].eq(~ws | (k0 == 0)), run["final"].eq(~ws | (k0 + R >= cur.K))]
        with m.If(accept):
            m.d.sync += ws_ptr.eq(cbp)
        with m.Elif(arr.step_out):
            m.d.sync += ws_ptr.eq(ws_ptr + run["sc"])

        # The drain starts in the `done` cycle itself and writes `bo` results per cycle in fold order: lane b
        # takes the entry b after lane b-1 (row-major over the fold's sr x sc results). (A queue in fold order, compacted from the PE
        # grid, needs fewer multiplexer inputs only when bo is close to the array's columns; FPGA cores have
        # one or two ofmap banks, where this lookup is the smaller one.)
        d_active = Signal()
        d_r = Signal(range(R + 1))
        d_c = Signal(range(Cc + 1))
        d_addr = Signal(CNT + 1)
        dinfo = {key: Signal.like(v, name=f"d_{key}") for key, v in run.items()}
        now = {key: _held(m, Mux(trigger, run[key], dinfo[key]), f"now_{key}") for key in run}
        draining = _held(m, trigger | d_active, "draining")
        r0 = _held(m, Mux(trigger, 0, d_r), "drain_r0")
        c0 = _held(m, Mux(trigger, 0, d_c), "drain_c0")
        addr0 = _held(m, Mux(trigger, Mux(run["ws"], ws_ptr, run["base"]), d_addr), "drain_addr0")
        # the fold's outputs: the array's results (an OS fold's are there in its done cycle), a WS step's
        # column sums in its step_out cycle
        src_vals = [_held(m, Mux(arr.step_out, arr.colsum[i], arr.results[i]), f"src{i}") if has_ws and i < Cc
                    else arr.results[i] for i in range(R * Cc)]
        with m.If(trigger):
            m.d.sync += [dinfo[key].eq(run[key]) for key in run]
        ab = p.acc_bits
        obm1 = Signal(6)
        top = Signal(signed(ab + 2))     # 2**(ob-1), at most 2**acc_bits: no clip bites beyond the accumulator
        m.d.comb += [obm1.eq(now["ob"] - 1),
                     top.eq(C(1 << ab, ab + 1) >> (ab - Mux(obm1 >= ab, ab, obm1)).as_unsigned())]
        ob_lo = Signal(signed(ab + 3))
        ob_hi = Signal(signed(ab + 3))
        m.d.comb += [ob_lo.eq(Mux(now["osg"], -top, 0)), ob_hi.eq(Mux(now["osg"], top - 1, (top << 1) - 1))]
        o_lanes: list[Value] = []
        o_reads: list[Value] = []
        o_final: list[Value] = []
        o_data: list[Value] = []
        rr, cc = r0, c0
        rmw = now["ws"] & ~now["first"]        # WS: add the partial sum of the earlier row folds
        # WS reads those partial sums one cycle early, in the step's last bit cycle (still inside the compute
        # phase), so the drain itself only writes; the compiler requires cols <= ofmap banks for WS.
        ws_pre = Signal()
        m.d.comb += ws_pre.eq((arr.busy & arr.load) | arr.last if has_ws else 0)
        pre_rmw = ws_pre & run["ws"] & ~run["first"]
        pre_addr = Signal(CNT + 1)   # the next step's partial sums (with s = 1 the current step_out moves ws_ptr on)
        m.d.comb += pre_addr.eq(ws_ptr + Mux(arr.step_out, run["sc"], 0))
        pre_old = [Signal(signed(p.acc_bits), name=f"o_pre{b}") for b in range(bo)]
        pre_reads: list[Value] = []
        for b in range(bo):
            with m.If(pre_rmw):
                m.d.sync += pre_old[b].eq(Mux(run["half"], rports["ofmap"][1][b].data,
                                              rports["ofmap"][0][b].data)[:p.acc_bits].as_signed())
            pre_reads.append(pre_rmw & (b < run["sc"]))
        for b in range(bo):
            ok = Signal(name=f"o_ok{b}")
            m.d.comb += ok.eq(draining & (rr < now["sr"]))
            old = pre_old[b]
            total = Signal(signed(p.acc_bits), name=f"o_sum{b}")
            entry = _pick(m, src_vals, rr * Cc + cc, f"o_entry{b}")
            m.d.comb += total.eq(Mux(rmw, old + entry, entry))
            v = Signal(signed(p.acc_bits), name=f"o_acc{b}")
            m.d.comb += v.eq(total >> now["shift"])
            q = Signal(signed(p.acc_bits + 1), name=f"o_q{b}")
            m.d.comb += q.eq(Mux(now["final"], Mux(v < ob_lo, ob_lo, Mux(v > ob_hi, ob_hi, v)), total))
            for h in range(2):
                wp = wports["ofmap"][h][b]
                m.d.comb += [wp.addr.eq((addr0 + b)[:abits["ofmap"]]), wp.data.eq(q),
                             wp.en.eq(ok & (now["half"] == h))]
            o_lanes.append(ok)
            o_reads.append(pre_reads[b])
            o_final.append(ok & now["final"])
            o_data.append(q)
            wrap = cc + 1 >= now["sc"]
            rr_n, cc_n = Signal(range(R + 2), name=f"o_r{b + 1}"), Signal(range(Cc + 1), name=f"o_c{b + 1}")
            m.d.comb += [rr_n.eq(Mux(wrap, rr + 1, rr)), cc_n.eq(Mux(wrap, 0, cc + 1))]
            rr, cc = rr_n, cc_n
        o_written = _popcount(o_lanes)
        o_finals = _popcount(o_final)
        with m.If(draining):
            m.d.sync += [d_addr.eq(addr0 + o_written), d_r.eq(rr), d_c.eq(cc), d_active.eq(rr < now["sr"])]

        # ---- DMA -------------------------------------------------------------------------------------
        x_active = Signal()
        x_slot = Signal(range(N_SLOTS + 1))
        x_ptr = Signal(CNT)
        slots = []
        names = [name for name, _, _ in slot_fields(CNT)]
        for i in range(N_SLOTS):
            slots.append({name: getattr(cur, f"s{i}_{name}") for name in names})
        sl = {name: _pick(m, [s[name] for s in slots], x_slot, f"slot_{name}") for name in names}
        remaining = sl["count"] - x_ptr
        x_n = Signal(8)
        m.d.comb += x_n.eq(Mux(remaining >= sl["lanes"], sl["lanes"], remaining))
        o_half = Mux(sl["half"], written[1], written[0])
        same_half = draining & (now["half"] == sl["half"])
        # final results drained this cycle count; a WS read-modify-write holds the half's read ports
        wb_ok = x_ptr + x_n <= o_half + Mux(same_half, o_finals, 0)
        beat = Signal()
        m.d.comb += beat.eq(x_active & ((sl["dir"] == 0) | wb_ok))
        x_last = x_ptr + x_n >= sl["count"]
        x_ending = Signal()
        m.d.comb += x_ending.eq(beat & x_last & (x_slot + 1 == cur.n_slots))
        m.d.comb += [self.ext_rd.eq(x_active & (sl["dir"] == 0)), self.ext_wr.eq(x_active & (sl["dir"] == 1) & wb_ok),
                     self.ext_tag.eq(sl["tag"]), self.ext_n.eq(x_n), self.ext_bits.eq(sl["bits"])]
        elem_w = max(W, A)       # reads fill the ifmap and filter buffers
        lb = max(1, (p.link_bits - 1).bit_length())      # offsets inside one link beat
        for bix, buf in enumerate(BUFFERS[:2]):
            g = p.geometry(buf)
            for lane in range(g.banks):
                raw = (self.ext_rdata >> (sl["bits"] * lane)[:lb])[:elem_w] & _mask(sl["bits"], elem_w)
                for h in range(2):
                    wp = wports[buf][h][lane]
                    m.d.comb += [wp.addr.eq((x_ptr + lane)[:abits[buf]]), wp.data.eq(raw),
                                 wp.en.eq(beat & (sl["dir"] == 0) & (sl["buf"] == bix) & (sl["half"] == h)
                                          & (lane < x_n))]
        wdata: Value = C(0, p.link_bits)
        fwd = _held(m, x_ptr - addr0, "fwd")
        for lane in range(p.ofmap.banks):
            for h in range(2):
                mine = pre_rmw & (run["half"] == h) if lane < bo else C(0, 1)
                d_ad = (pre_addr + lane if lane < bo else C(0, 1))
                m.d.comb += rports["ofmap"][h][lane].addr.eq(Mux(mine, d_ad, x_ptr + lane)[:abits["ofmap"]])
            raw = Mux(sl["half"], rports["ofmap"][1][lane].data, rports["ofmap"][0][lane].data)
            # forward a result the drain writes in this very cycle: drain lane b writes addr0 + b, so the
            # only lane that can write this word is b = x_ptr + lane - addr0 (final lanes are a prefix)
            fb = _held(m, fwd + lane, f"fwd{lane}")
            hit = same_half & now["final"] & (fb >= 0) & (fb < o_written)
            raw = Mux(hit, _pick(m, [d[:p.ofmap.data_bits] for d in o_data], fb.as_unsigned(), f"fwd_data{lane}"),
                      raw)
            part = Mux(lane < x_n, raw & _mask(sl["bits"], p.ofmap.data_bits), 0)
            wdata = wdata | (part[:p.link_bits] << (sl["bits"] * lane)[:lb])[:p.link_bits]
        m.d.comb += self.ext_wdata.eq(Mux(self.ext_wr, wdata, 0))   # 0 outside write beats
        with m.If(boundary):
            m.d.sync += [x_active.eq(nxt.n_slots != 0), x_slot.eq(0), x_ptr.eq(0)]
        with m.Elif(beat):
            with m.If(x_last):
                m.d.sync += x_ptr.eq(0)
                with m.If(x_slot + 1 == cur.n_slots):
                    m.d.sync += x_active.eq(0)
                with m.Else():
                    m.d.sync += x_slot.eq(x_slot + 1)
            with m.Else():
                m.d.sync += x_ptr.eq(x_ptr + x_n)
        # written counters: reset for the half a new compute tile will drain into; the drain adds to its half
        for h in range(2):
            with m.If(boundary & nxt.compute & (nxt.ho == h)):
                m.d.sync += written[h].eq(0)
            with m.Elif(draining & (now["half"] == h)):
                m.d.sync += written[h].eq(written[h] + o_finals)

        # ---- phase end -------------------------------------------------------------------------------
        comp_over = ~f_active & (~arr.busy | arr.last)
        dma_over = ~x_active | x_ending
        m.d.comb += phase_end.eq(running & comp_over & dma_over)
        m.d.comb += boundary.eq(nxt_valid & (~running | (phase_end & ~cur.end)))

        # ---- counters ----------------------------------------------------------------------------------
        cnt = {name: Signal(COUNTER_BITS, name=f"cnt_{name}") for name in COUNTERS}
        adv = arr.adv
        x_rd = beat & (sl["dir"] == 0)
        x_wr = beat & (sl["dir"] == 1)
        incs = {
            "cycles": running, "compute_cycles": running & adv, "fill_cycles": running & accept,
            "stall_cycles": running & ~adv & ~accept,
            "ifmap_sram_reads": _popcount(if_valid), "filter_sram_reads": _popcount(f_valid),
            "ofmap_sram_writes": o_written,
            "ifmap_sram_writes": Mux(x_rd & (sl["buf"] == 0), x_n, 0),
            "filter_sram_writes": Mux(x_rd & (sl["buf"] == 1), x_n, 0),
            "ofmap_sram_reads": Mux(x_wr, x_n, 0) + _popcount(o_reads),
            "dram_read_bits": Mux(x_rd, x_n * sl["bits"], 0), "dram_write_bits": Mux(x_wr, x_n * sl["bits"], 0),
        }
        with m.If(boundary & ~running):
            m.d.sync += [c.eq(0) for c in cnt.values()]
        with m.Else():
            m.d.sync += [cnt[name].eq(cnt[name] + incs[name]) for name in COUNTERS]
        m.d.comb += [getattr(self, name).eq(cnt[name]) for name in COUNTERS]
        return m
