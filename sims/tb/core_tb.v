// The accelerator core's testbench: the one DRAM model of the project's core runs, in HDL so that no
// host code runs per cycle. Simulation only; Verilog-2005 plus the SystemVerilog subset that Icarus
// (-g2012) and Verilator both accept (string, $sformatf).
//
// Drivers: a cocotb test (sims/tb/core_bench.py; Icarus or Verilator) or a plain Verilator binary
// (sims/tb/core_tb_main.cpp). Either drives `clk` and `rst` and waits for `done`; all data come from
// files written by sims/tb/core_tb.py (write_run) in the directory given by +hwsim_dir=DIR, binary words
// as $fread loads them (each ceil(width/8) bytes, most significant first; a file shorter than its count
// is an error):
//
//   run.bin            64-bit words: number of layers, cycle limit per layer, progress lines (0/1)
//   l<k>.hdr.bin       64-bit words: descriptors, transfers, index-table entries, tensor words, outputs
//   l<k>.desc.bin      the layer's phase descriptors (DESC_BITS each), in order
//   l<k>.xfer.bin      per transfer (its tag), 96 bits: {kind[31:0], elements[31:0], first index-table
//                      entry[31:0]}; kind 0 reads x, 1 reads w, 2 writes y
//   l<k>.idx.bin       32-bit words: the transfers' element indices, concatenated (reads: into the tensor
//                      words, where w follows x; writes: into y)
//   l<k>.ten.bin       32-bit words: the operand elements (two's complement)
//
// Per layer it presents the descriptors (valid/ready) and plays DRAM on the core's external port with
// no latency: in every cycle with ext_rd high it supplies ext_n elements of transfer ext_tag, the
// elements packed ext_bits apart from bit 0; in every cycle with ext_wr high it takes them. It drives
// the core's inputs on the falling edge and looks at the core on the rising edge (the core samples on
// the rising edge). A beat beyond its transfer's elements, a beat of a transfer of the wrong direction,
// an index outside its tensor, unknown bits on write data (4-state simulators) and a layer that does not
// finish within the cycle limit are errors: the run stops and reports it. When the core raises
// `finished` after the last descriptor, it appends the layer's counters and incomplete transfers to
// DIR/results.txt and writes l<k>.y.hex (the output elements' raw bits) and l<k>.wc.hex (how often
// each output element was written, saturating at 255).
`timescale 1ns/1ps
// MEM[0 .. N-1] from the binary file `fname`; `got`: the bytes read (-1: the file does not open)
`define CORE_TB_READ_FILE(MEM, N) \
    bfd = $fopen(fname, "rb"); \
    got = -1; \
    if (bfd != 0) begin \
        got = $fread(MEM, bfd, 0, N); \
        $fclose(bfd); \
    end
// the same inside a layer, unless the run has failed: a file shorter than its N words of BYTES stops the
// run (short_file)
`define CORE_TB_READ(MEM, N, BYTES) \
    if (!failed) begin \
        `CORE_TB_READ_FILE(MEM, N) \
        if (got != (N) * (BYTES)) short_file((N) * (BYTES)); \
    end
module core_tb #(
    parameter DESC_BITS = 512,
    parameter LINK_BITS = 64,
    parameter TAG_BITS = 20,
    parameter COUNT_BITS = 32,
    parameter DESC_DEPTH = 1024,
    parameter XFER_DEPTH = 4096,
    parameter IDX_DEPTH = 65536,
    parameter TEN_DEPTH = 65536,
    parameter Y_DEPTH = 65536
) (
    input clk,
    input rst,
    output reg done,
    output reg failed
);
    localparam S_LOAD = 3'd0, S_RUN = 3'd1, S_GAP = 3'd2, S_DONE = 3'd3;

    // ---- the core ----------------------------------------------------------------------------------
    reg desc_valid;
    reg [DESC_BITS-1:0] desc_data;
    reg [LINK_BITS-1:0] ext_rdata;
    wire desc_ready, ext_rd, ext_wr, running, finished;
    wire [TAG_BITS-1:0] ext_tag;
    wire [7:0] ext_n;
    wire [5:0] ext_bits;
    wire [LINK_BITS-1:0] ext_wdata;
    wire [COUNT_BITS-1:0] c_cycles, c_compute, c_fill, c_stall, c_if_rd, c_if_wr, c_f_rd, c_f_wr, c_o_rd, c_o_wr;
    wire [COUNT_BITS-1:0] c_dram_rd, c_dram_wr;

    // The core's reset is `rst` registered: logic of the core that reads its reset combinationally would
    // otherwise depend on a top-level input, and Verilator re-evaluates such logic at every clock edge.
    reg core_rst = 1'b1;
    always @(posedge clk) core_rst <= rst;

    accel_core core (
        .clk(clk), .rst(core_rst), .desc_valid(desc_valid), .desc_data(desc_data), .desc_ready(desc_ready),
        .ext_rd(ext_rd), .ext_wr(ext_wr), .ext_tag(ext_tag), .ext_n(ext_n), .ext_bits(ext_bits),
        .ext_rdata(ext_rdata), .ext_wdata(ext_wdata), .running(running), .finished(finished),
        .cycles(c_cycles), .compute_cycles(c_compute), .fill_cycles(c_fill), .stall_cycles(c_stall),
        .ifmap_sram_reads(c_if_rd), .ifmap_sram_writes(c_if_wr), .filter_sram_reads(c_f_rd),
        .filter_sram_writes(c_f_wr), .ofmap_sram_reads(c_o_rd), .ofmap_sram_writes(c_o_wr),
        .dram_read_bits(c_dram_rd), .dram_write_bits(c_dram_wr)
    );

    // ---- the run's data ------------------------------------------------------------------------------
    reg [63:0] run_hdr [0:3];
    reg [63:0] hdr [0:7];
    reg [DESC_BITS-1:0] desc [0:DESC_DEPTH-1];
    reg [95:0] xfer [0:XFER_DEPTH-1];
    reg [31:0] ptr [0:XFER_DEPTH-1];      // elements moved so far, per transfer
    reg [31:0] idx [0:IDX_DEPTH-1];
    reg [31:0] ten [0:TEN_DEPTH-1];
    reg [31:0] yv [0:Y_DEPTH-1];
    reg [7:0] wc [0:Y_DEPTH-1];

    string dir, fname, kname;
    integer rfd, bfd, got;
    integer n_layers, progress;
    reg [63:0] max_cycles;

    // state of the rising-edge process (the falling-edge process only reads it)
    reg [2:0] state;
    integer layer, n_desc, n_xfer, n_idx, n_ten, y_size, di, j;
    reg [63:0] lcycles;
    reg seen_run;
    integer t, n, l, e;
    reg [31:0] base, raw;
    reg [63:0] mask;

    initial begin
        done = 0;
        failed = 0;
        state = S_LOAD;
        desc_valid = 0;
        desc_data = 0;
        ext_rdata = 0;
        if (!$value$plusargs("hwsim_dir=%s", dir)) begin
            $display("core_tb: no +hwsim_dir=DIR given");
            $finish;
        end
        fname = $sformatf("%s/run.bin", dir);
        `CORE_TB_READ_FILE(run_hdr, 3)
        if (got != 3 * 8) begin
            $display("core_tb: %s holds %0d of its 24 bytes", fname, got);
            $finish;
        end
        n_layers = run_hdr[0];
        max_cycles = run_hdr[1];
        progress = run_hdr[2];
        fname = $sformatf("%s/results.txt", dir);
        rfd = $fopen(fname, "w");
    end

    task stop_run;  // the message is already in the results file; stop the run
        begin
            $fwrite(rfd, "\n");
            $fflush(rfd);
            failed = 1;
            done = 1;
            state = S_DONE;
        end
    endtask

    task short_file;  // a data file ended before its words
        input integer want_bytes;
        begin
            $fwrite(rfd, "error %0d %s holds %0d of its %0d bytes", layer, fname, got, want_bytes);
            stop_run;
        end
    endtask

    task load_layer;
        begin
            fname = $sformatf("%s/l%0d.hdr.bin", dir, layer);
            `CORE_TB_READ(hdr, 8, 8)
            n_desc = hdr[0];
            n_xfer = hdr[1];
            n_idx = hdr[2];
            n_ten = hdr[3];
            y_size = hdr[4];
            if (failed) begin
                // short_file stopped the run
            end else if (n_desc < 1 || n_desc > DESC_DEPTH || n_xfer < 1 || n_xfer > XFER_DEPTH || n_idx < 1
                    || n_idx > IDX_DEPTH || n_ten < 1 || n_ten > TEN_DEPTH || y_size < 1 || y_size > Y_DEPTH) begin
                $fwrite(rfd, "error %0d layer needs %0d descriptors, %0d transfers, %0d index entries, %0d tensor words, %0d outputs; the testbench holds %0d, %0d, %0d, %0d, %0d",
                        layer, n_desc, n_xfer, n_idx, n_ten, y_size, DESC_DEPTH, XFER_DEPTH, IDX_DEPTH,
                        TEN_DEPTH, Y_DEPTH);
                stop_run;
            end else begin
                fname = $sformatf("%s/l%0d.desc.bin", dir, layer);
                `CORE_TB_READ(desc, n_desc, (DESC_BITS + 7) / 8)
                fname = $sformatf("%s/l%0d.xfer.bin", dir, layer);
                `CORE_TB_READ(xfer, n_xfer, 12)
                fname = $sformatf("%s/l%0d.idx.bin", dir, layer);
                `CORE_TB_READ(idx, n_idx, 4)
                fname = $sformatf("%s/l%0d.ten.bin", dir, layer);
                `CORE_TB_READ(ten, n_ten, 4)
                for (j = 0; j < n_xfer; j = j + 1) ptr[j] = 0;
                for (j = 0; j < y_size; j = j + 1) begin
                    yv[j] = 0;
                    wc[j] = 0;
                end
                di = 0;
                lcycles = 0;
                seen_run = 0;
                if (!failed) state = S_RUN;
            end
        end
    endtask

    task finish_layer;
        begin
            $fwrite(rfd, "counters %0d %0d %0d %0d %0d %0d %0d %0d %0d %0d %0d %0d %0d\n", layer, c_cycles,
                    c_compute, c_fill, c_stall, c_if_rd, c_if_wr, c_f_rd, c_f_wr, c_o_rd, c_o_wr, c_dram_rd,
                    c_dram_wr);
            $fwrite(rfd, "incomplete %0d", layer);
            for (j = 0; j < n_xfer; j = j + 1)
                if (ptr[j] != xfer[j][63:32]) $fwrite(rfd, " %0d", j);
            $fwrite(rfd, "\n");
            fname = $sformatf("%s/l%0d.y.hex", dir, layer);
            $writememh(fname, yv, 0, y_size - 1);
            fname = $sformatf("%s/l%0d.wc.hex", dir, layer);
            $writememh(fname, wc, 0, y_size - 1);
            $fflush(rfd);
            if (progress != 0) $display("core_tb: layer %0d of %0d finished after %0d cycles", layer + 1,
                                        n_layers, lcycles);
            layer = layer + 1;
            state = S_GAP;
        end
    endtask

    task serve_read;  // the elements were put on ext_rdata at the falling edge; account for them
        begin
            t = ext_tag;
            n = ext_n;
            if (t >= n_xfer) begin
                $fwrite(rfd, "error %0d read beat of transfer %0d, but the layer has %0d transfers", layer, t, n_xfer);
                stop_run;
            end else if (xfer[t][95:64] == 2 || ptr[t] + n > xfer[t][63:32]) begin
                kname = xfer[t][95:64] == 0 ? "x" : xfer[t][95:64] == 1 ? "w" : "y";
                $fwrite(rfd, "error %0d read beat of transfer %0d (%s) beyond its %0d elements (cycle %0d)", layer, t,
                        kname, xfer[t][63:32], lcycles);
                stop_run;
            end else begin
                for (l = 0; l < n; l = l + 1)
                    if (idx[xfer[t][31:0] + ptr[t] + l] >= n_ten && !failed) begin
                        $fwrite(rfd, "error %0d read beat of transfer %0d: element index %0d outside the tensors' %0d words",
                                layer, t, idx[xfer[t][31:0] + ptr[t] + l], n_ten);
                        stop_run;
                    end
                ptr[t] = ptr[t] + n;
            end
        end
    endtask

    task take_write;
        begin
            t = ext_tag;
            n = ext_n;
            if (t >= n_xfer || xfer[t][95:64] != 2 || ptr[t] + n > xfer[t][63:32]) begin
                $fwrite(rfd, "error %0d write beat of transfer %0d beyond its %0d elements (cycle %0d)", layer, t,
                        t < n_xfer ? xfer[t][63:32] : 0, lcycles);
                stop_run;
            end else if ((^ext_wdata) === 1'bx) begin
                $fwrite(rfd, "error %0d write beat of transfer %0d carries unknown bits %b (cycle %0d)", layer, t,
                        ext_wdata, lcycles);
                stop_run;
            end else begin
                mask = (64'd1 << ext_bits) - 64'd1;
                base = xfer[t][31:0] + ptr[t];
                for (l = 0; l < n; l = l + 1) begin
                    e = idx[base + l];
                    if (e >= y_size) begin
                        if (!failed) begin
                            $fwrite(rfd, "error %0d write beat of transfer %0d: output index %0d outside the %0d outputs",
                                    layer, t, e, y_size);
                            stop_run;
                        end
                    end else begin
                        raw = (ext_wdata >> (l * ext_bits)) & mask;
                        yv[e] = raw;
                        if (wc[e] != 8'hff) wc[e] = wc[e] + 8'd1;
                    end
                end
                ptr[t] = ptr[t] + n;
            end
        end
    endtask

    always @(posedge clk) begin
        if (rst) begin
            state = S_LOAD;
            layer = 0;
            done = 0;
            failed = 0;
        end else if (state == S_LOAD) begin
            if (layer >= n_layers) begin
                state = S_DONE;
                done = 1;
            end else begin
                load_layer;
            end
        end else if (state == S_RUN) begin
            lcycles = lcycles + 1;
            if (desc_valid && desc_ready) di = di + 1;
            if (running) seen_run = 1;
            if (ext_rd) serve_read;
            if (ext_wr && !failed) take_write;
            if (!failed) begin
                if (finished && seen_run && di >= n_desc) begin
                    finish_layer;
                end else if (lcycles > max_cycles) begin
                    $fwrite(rfd, "error %0d no finish after %0d cycles", layer, max_cycles);
                    stop_run;
                end
            end
        end else if (state == S_GAP) begin
            state = S_LOAD;
        end
    end

    // ---- the core's inputs, driven between its rising edges ------------------------------------------
    integer nt, nl;
    reg [31:0] nbase;
    reg [63:0] nmask;
    reg [LINK_BITS-1:0] word, elem;

    always @(negedge clk) begin
        desc_valid <= state == S_RUN && di < n_desc;
        if (state == S_RUN && di < n_desc) desc_data <= desc[di];
        if (state == S_RUN && ext_rd) begin
            nt = ext_tag;
            word = 0;
            if (nt < n_xfer && xfer[nt][95:64] != 2 && ptr[nt] + ext_n <= xfer[nt][63:32]) begin
                nbase = xfer[nt][31:0] + ptr[nt];
                nmask = (64'd1 << ext_bits) - 64'd1;
                for (nl = 0; nl < ext_n; nl = nl + 1) begin
                    elem = ten[idx[nbase + nl]] & nmask;
                    word = word | (elem << (nl * ext_bits));
                end
            end
            ext_rdata <= word;
        end
    end
endmodule
