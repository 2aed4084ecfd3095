// A plain Verilator driver of sims/tb/core_tb.v: toggles clk until the testbench raises done (or calls
// $finish). Everything else (the DRAM model, the files, the checks) is the testbench's own.
#include <memory>

#include "Vcore_tb.h"
#include "verilated.h"

int main(int argc, char** argv) {
    const std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
    ctx->commandArgs(argc, argv);
    const std::unique_ptr<Vcore_tb> top{new Vcore_tb{ctx.get()}};
    top->clk = 0;
    top->rst = 1;
    for (int i = 0; i < 4; ++i) {  // two rising edges in reset
        top->clk = !top->clk;
        top->eval();
    }
    top->rst = 0;
    while (!top->done && !ctx->gotFinish()) {
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
    }
    top->final();
    return top->failed ? 1 : 0;
}
