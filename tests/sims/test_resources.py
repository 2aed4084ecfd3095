"""Small inputs take bounded time and memory: each case runs in a subprocess under an address-space
limit (``RLIMIT_AS``) and a timeout, and must end cleanly within them (the answer, or one line and exit
code 2). Inputs are a few hundred bytes each -- the blow-ups found by a hostile-user review."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEMORY_BYTES = 2 * 2**30
"""Address space a case may map (numpy and hwsim map about 0.15 GiB at import)."""
SECONDS = 20.0
"""Wall time a case may take, start-up included (on a loaded two-core machine)."""


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def _run(args: list[str], timeout: float = SECONDS) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                       preexec_fn=_limit)
    return r, time.monotonic() - t0


def _cli(*args: str, timeout: float = SECONDS) -> subprocess.CompletedProcess[str]:
    r, took = _run(["-m", "sims.cli", *args], timeout)
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr, r.stderr[-2000:]
    assert took < timeout
    return r


def _python(code: str, timeout: float = SECONDS) -> str:
    r, _ = _run(["-c", textwrap.dedent(code)], timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    """926 bytes that expand to 9^9 list elements (and hung the error formatter's repr)."""
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi", strict=True)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    assert bomb.stat().st_size < 1000
    r = _cli("simulate", "--arch", str(bomb), "--network", "small_cnn")
    assert r.returncode == 2 and "aliases (*a) are not allowed" in r.stderr


def test_error_message_of_a_huge_shared_structure_is_bounded() -> None:
    """Without aliases the same structure can come from Python: its repr in a message stays short."""
    out = _python("""
        from hwsim.errors import check_int
        x = [1]
        for _ in range(40):
            x = [x] * 9
        try:
            check_int("Accelerator", "rows", x, 1, 4096)
        except TypeError as exc:
            print(len(str(exc)))
        """)
    assert int(out) < 200


def test_ten_million_channels_from_a_file_are_refused(tmp_path: Path) -> None:
    net = tmp_path / "big.yaml"
    net.write_text("name: big\nlayers:\n  - {name: c, kind: conv2d, in_channels: 10000000, out_channels: 16, "
                   "in_size: 8, kernel: 3, padding: 1}\n")
    for cmd in ("simulate", "map"):
        r = _cli(cmd, "--arch", "edge16_serial", "--network", str(net))
        assert r.returncode == 2 and "in_channels must be an integer in [1, 65536], not 10000000" in r.stderr


def test_engine_on_ten_million_channels_is_bounded() -> None:
    """The engine itself (Python API, no file limit in the way) sums tile costs without materialising the
    tile grid."""
    out = _python("""
        import hwsim
        from hwsim.network import Layer, Network
        net = Network.single("big", [Layer("c", "conv2d", 10_000_000, 16, in_h=8, in_w=8, kernel_h=3, kernel_w=3,
                                           pad_h=1, pad_w=1)])
        print(hwsim.simulate(net, hwsim.resolve_accelerator("edge16_serial")).macs)
        """)
    assert int(out) == 10_000_000 * 16 * 8 * 8 * 9


def test_fast_path_on_a_huge_ifmap_is_bounded() -> None:
    """A 10^5 x 10^5 input map, the closed-form model (it took 16 s and 3.9 GB)."""
    out = _python("""
        import hwsim
        from hwsim.fast import layer_cost
        from hwsim.network import Layer
        from hwsim.schedule import default_mapping
        acc = hwsim.resolve_accelerator("edge16_serial")
        la = Layer("c", "conv2d", 3, 16, in_h=100_000, in_w=100_000, kernel_h=3, kernel_w=3, pad_h=1, pad_w=1)
        print(layer_cost(la, default_mapping(la, acc), acc).cycles)
        """)
    assert int(out) > 0


def test_mapper_at_the_layer_limits_is_bounded(tmp_path: Path) -> None:
    """The largest layer a file may give (docs/limits.md) maps within the bounds."""
    net = tmp_path / "wide.yaml"
    net.write_text("name: w\nlayers:\n  - {name: c, kind: conv2d, in_channels: 65536, out_channels: 16, "
                   "in_size: 8, kernel: 3, padding: 1}\n")
    r = _cli("map", "--arch", "edge16_serial", "--network", str(net), "--objective", "latency")
    assert r.returncode == 0, r.stderr
    assert "mappings evaluated" in r.stdout


def test_billion_point_grid_is_refused_before_it_is_built(tmp_path: Path) -> None:
    spec = tmp_path / "huge.yaml"
    spec.write_text("accelerator: edge16_serial\nnetwork: small_cnn\naxes:\n  rows: {range: [1, 1000]}\n"
                    "  cols: {range: [1, 1000]}\n  ifmap_sram.size_bytes: {range: [1024, 2023]}\n")
    r = _cli("sweep", str(spec), "--db", str(tmp_path / "s.sqlite"), "--workers", "0")
    assert r.returncode == 2 and "the grid has 1,000,000,000 points" in r.stderr
    assert not (tmp_path / "s.sqlite").exists()


def test_long_axes_are_checked_in_linear_time() -> None:
    """10^4 values (the limit; the O(n^2) dedupe took minutes at 10^5) and a 10^12-value range."""
    out = _python("""
        import time
        from hwsim.errors import ConfigError
        from sims.sweep.spec import spec_from_dict
        t = time.monotonic()
        s = spec_from_dict({"accelerator": "edge16_serial", "network": "small_cnn",
                            "axes": {"ifmap_sram.size_bytes": list(range(1024, 11024))}})
        print(len(s.acc_axes[0]), end=" ")
        try:
            spec_from_dict({"accelerator": "edge16_serial", "network": "small_cnn",
                            "axes": {"dram.bandwidth_bytes_per_cycle": {"range": [1, 10**12]}}})
        except ConfigError as exc:
            print("refused" if "more than the 10000" in str(exc) else str(exc), end=" ")
        print(round(time.monotonic() - t, 1))
        """)
    n, verdict, took = out.split()
    assert (n, verdict) == ("10000", "refused") and float(took) < SECONDS


def test_depthwise_csv_expanding_past_the_layer_limit_is_refused(tmp_path: Path) -> None:
    topo = tmp_path / "dw.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                    "Strides,\nconvDP1, 8, 8, 3, 3, 100000, 1, 1,\n")
    r = _cli("simulate", "--arch", "edge16_serial", "--network", str(topo))
    assert r.returncode == 2 and "network must have at most 16384 layers, not 100000" in r.stderr


def test_depthwise_csv_of_ten_million_channels_is_refused_at_once(tmp_path: Path) -> None:
    topo = tmp_path / "dw.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                    "Strides,\nconvDP1, 8, 8, 3, 3, 10000000, 1, 1,\n")
    r = _cli("simulate", "--arch", "edge16_serial", "--network", str(topo), timeout=8.0)
    assert r.returncode == 2 and "16384 layers" in r.stderr
