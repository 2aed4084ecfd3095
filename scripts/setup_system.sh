#!/usr/bin/env bash
# Installs the Debian tools the RTL flow needs (Icarus Verilog, Yosys, nextpnr-ice40, a C++ toolchain
# for Verilator) when they are missing. Idempotent: does nothing when all are present.
set -euo pipefail
need=()
command -v iverilog >/dev/null || need+=(iverilog)
command -v yosys >/dev/null || need+=(yosys)
command -v nextpnr-ice40 >/dev/null || need+=(nextpnr-ice40)
command -v icepack >/dev/null || need+=(fpga-icestorm)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v perl >/dev/null || need+=(perl)
command -v ccache >/dev/null || need+=(ccache)
[ ${#need[@]} -eq 0 ] && exit 0
echo "setup: installing Debian packages: ${need[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then SUDO="sudo"; else
        echo "setup: need root to run: apt-get install -y ${need[*]}" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
