"""The network IR: layers with shapes and bitwidths, grouped into cascade stages.

A plain network is a single stage. A cascade (e.g. a binary network that exits early on confident
inputs, then an 8-bit network) is an ordered list of stages; ``exit_rate`` of a stage is the fraction
of the inputs *reaching* that stage that leave after it (the last stage takes all that remain).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from .errors import check_choice, check_float, check_int, check_name

__all__ = ["LayerKind", "Layer", "Stage", "Network", "EXIT_RULES"]

EXIT_RULES = ("none", "confidence", "margin", "entropy")


class LayerKind(StrEnum):
    CONV2D = "conv2d"    # includes grouped and depthwise (groups == in_channels)
    LINEAR = "linear"    # in_h = in_w = 1; ``batch`` carries the number of rows (tokens / samples)
    POOL = "pool"        # max/avg pooling: no MACs, moves data, kernel/stride as a conv
    ELTWISE = "eltwise"  # residual add / multiply: no MACs, reads two tensors, writes one
    MATMUL = "matmul"    # activation x activation GEMM (attention's QK^T, AV): shaped like ``linear``, but the
    #                      second operand ("weights", ``weight_bits`` wide) is produced at run time, not stored


_MAC_KINDS = (LayerKind.CONV2D, LayerKind.LINEAR, LayerKind.MATMUL)
_GEMM_KINDS = (LayerKind.LINEAR, LayerKind.MATMUL)


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer. Shapes follow PyTorch (NCHW); bitwidths are the integer widths the hardware streams.

    ``channel_weight_bits`` gives each output channel (filter) its own weight width, as class-based
    quantization produces; ``weight_bits`` must then equal their maximum.
    """

    name: str
    kind: LayerKind
    in_channels: int
    out_channels: int
    in_h: int = 1
    in_w: int = 1
    kernel_h: int = 1
    kernel_w: int = 1
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    groups: int = 1
    batch: int = 1
    weight_bits: int = 8
    act_bits: int = 8
    out_bits: int = 8
    channel_weight_bits: tuple[int, ...] | None = None
    bit_scales: int = 0
    """Extra per-bit-plane scale multiplies per output value (BWA: one per activation bit plane)."""
    inputs: tuple[str, ...] = ()
    """Names of the producer layers (optional); when given, the network checks that shapes agree."""
    weight_density: float = 1.0
    """Fraction of the weights that are non-zero (pruning), in (0, 1]. Below 1 the weights are stored
    compressed (values plus a per-weight index, see docs/models.md); cycles drop only on a PE that skips zeros."""

    def __post_init__(self) -> None:
        owner = f"Layer[{self.name!r}]" if isinstance(self.name, str) else "Layer"
        check_name("Layer", "name", self.name)
        try:
            object.__setattr__(self, "kind", LayerKind(self.kind))
        except ValueError:
            raise ValueError(f"{owner}.kind must be one of {[k.value for k in LayerKind]}, not {self.kind!r}") from None
        for f in ("in_channels", "out_channels", "in_h", "in_w", "kernel_h", "kernel_w", "stride_h", "stride_w",
                  "groups", "batch"):
            check_int(owner, f, getattr(self, f), 1)
        for f in ("pad_h", "pad_w", "bit_scales"):
            check_int(owner, f, getattr(self, f), 0)
        for f in ("weight_bits", "act_bits", "out_bits"):
            check_int(owner, f, getattr(self, f), 1, 32)
        check_float(owner, "weight_density", self.weight_density, 0.0, 1.0, lo_open=True)
        if self.weight_density != 1.0 and not self.has_stored_weights:
            raise ValueError(f"{owner}.weight_density must be 1 for a {self.kind.value} layer (it has no stored "
                             f"weights), not {self.weight_density!r}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"{owner}.groups must divide in_channels={self.in_channels} and "
                             f"out_channels={self.out_channels}, not {self.groups!r}")
        if self.kind in _GEMM_KINDS and (self.in_h, self.in_w, self.kernel_h, self.kernel_w) != (1, 1, 1, 1):
            raise ValueError(f"{owner}.in_h/in_w/kernel_h/kernel_w must be 1 for a {self.kind.value} layer, not "
                             f"{(self.in_h, self.in_w, self.kernel_h, self.kernel_w)!r}")
        if self.kind in (LayerKind.POOL, LayerKind.ELTWISE) and self.in_channels != self.out_channels:
            raise ValueError(f"{owner}.out_channels must equal in_channels={self.in_channels} for a "
                             f"{self.kind.value} layer, not {self.out_channels!r}")
        if self.in_h + 2 * self.pad_h < self.kernel_h or self.in_w + 2 * self.pad_w < self.kernel_w:
            raise ValueError(f"{owner}.kernel_h/kernel_w must fit the padded input "
                             f"{self.in_h + 2 * self.pad_h}x{self.in_w + 2 * self.pad_w}, not "
                             f"{self.kernel_h}x{self.kernel_w}")
        object.__setattr__(self, "inputs", tuple(self.inputs))
        for i, src in enumerate(self.inputs):
            check_name(owner, f"inputs[{i}]", src)
        if self.channel_weight_bits is not None:
            cwb = tuple(self.channel_weight_bits)
            object.__setattr__(self, "channel_weight_bits", cwb)
            if len(cwb) != self.out_channels:
                raise ValueError(f"{owner}.channel_weight_bits must have out_channels={self.out_channels} "
                                 f"entries, not {len(cwb)}")
            for i, b in enumerate(cwb):
                check_int(owner, f"channel_weight_bits[{i}]", b, 1, 32)
            if max(cwb) != self.weight_bits:
                raise ValueError(f"{owner}.weight_bits must equal max(channel_weight_bits)={max(cwb)}, "
                                 f"not {self.weight_bits!r}")

    # ---- derived shapes -------------------------------------------------------------------------
    @property
    def out_h(self) -> int:
        return (self.in_h + 2 * self.pad_h - self.kernel_h) // self.stride_h + 1

    @property
    def out_w(self) -> int:
        return (self.in_w + 2 * self.pad_w - self.kernel_w) // self.stride_w + 1

    @property
    def has_macs(self) -> bool:
        return self.kind in _MAC_KINDS

    @property
    def gemm(self) -> tuple[int, int, int, int]:
        """The layer as ``groups`` independent GEMMs ``(P x K) @ (K x N)``: returns ``(G, P, K, N)``.

        P = output pixels x batch, K = reduction length (in_channels/groups x kernel), N = filters per group.
        """
        g = self.groups
        return (g, self.batch * self.out_h * self.out_w,
                (self.in_channels // g) * self.kernel_h * self.kernel_w, self.out_channels // g)

    @property
    def macs(self) -> int:
        if not self.has_macs:
            return 0
        g, p, k, n = self.gemm
        return g * p * k * n

    @property
    def has_stored_weights(self) -> bool:
        """Conv and linear layers read weights from memory; a matmul's second operand is an activation."""
        return self.kind is LayerKind.CONV2D or self.kind is LayerKind.LINEAR

    @property
    def weight_count(self) -> int:
        if not self.has_macs:
            return 0
        return self.out_channels * (self.in_channels // self.groups) * self.kernel_h * self.kernel_w

    @property
    def ifmap_count(self) -> int:
        n_inputs = 2 if self.kind is LayerKind.ELTWISE else 1
        return n_inputs * self.batch * self.in_channels * self.in_h * self.in_w

    @property
    def ofmap_count(self) -> int:
        return self.batch * self.out_channels * self.out_h * self.out_w

    def compressed_bits(self, bits: float) -> float:
        """Stored bits per dense weight of width ``bits``: a pruned layer (``weight_density`` d < 1) keeps its
        non-zero values and a one-bit-per-weight presence map, ``d·bits + 1``, when that is smaller (the
        bitmap format of SparTen, Gondimalla et al., MICRO 2019)."""
        d = self.weight_density
        return bits if d >= 1.0 else min(bits, d * bits + 1.0)

    @property
    def weight_bits_total(self) -> int:
        """Weight memory in bits: per-channel widths counted channel by channel, compressed when pruned."""
        if not self.has_stored_weights:
            return 0
        return math.ceil(self.weight_count * self.stored_weight_bits - 1e-9)

    @property
    def stored_weight_bits(self) -> float:
        """Mean stored bits per dense weight: what memory traffic counts (per-channel widths and pruning
        honoured)."""
        cwb = self.channel_weight_bits
        return self.compressed_bits(self.weight_bits if cwb is None else sum(cwb) / len(cwb))

    def channel_bit_groups(self) -> list[tuple[int, int]]:
        """Channels of equal weight width as ``[(weight_bits, n_channels), ...]``, widest first."""
        if self.channel_weight_bits is None:
            return [(self.weight_bits, self.out_channels)]
        return sorted(Counter(self.channel_weight_bits).items(), reverse=True)

    def bops(self) -> int:
        """Bit operations (MACs with a non-zero weight x weight bits x activation bits), per-channel widths
        honoured."""
        if not self.has_macs:
            return 0
        g, p, k, n = self.gemm
        dense = sum(p * k * c * b * self.act_bits for b, c in self.channel_bit_groups())
        return round(dense * self.weight_density)


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    layers: tuple[Layer, ...]
    exit_rate: float = 1.0
    exit_rule: str = "none"
    threshold: float | None = None

    def __post_init__(self) -> None:
        owner = f"Stage[{self.name!r}]"
        check_name("Stage", "name", self.name)
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers:
            raise ValueError(f"{owner}.layers must be a non-empty list, not []")
        for la in layers:
            if not isinstance(la, Layer):
                raise TypeError(f"{owner}.layers must hold Layer values, not {la!r}")
        check_float(owner, "exit_rate", self.exit_rate, 0.0, 1.0)
        check_choice(owner, "exit_rule", self.exit_rule, EXIT_RULES)
        if self.threshold is not None:
            check_float(owner, "threshold", self.threshold)


@dataclass(frozen=True, slots=True)
class Network:
    name: str
    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        check_name("Network", "name", self.name)
        stages = tuple(self.stages)
        object.__setattr__(self, "stages", stages)
        if not stages:
            raise ValueError("Network.stages must be a non-empty list, not []")
        names = [la.name for s in stages for la in s.layers]
        dup = sorted(n for n, k in Counter(names).items() if k > 1)
        if dup:
            raise ValueError(f"Network[{self.name!r}].layers must have unique names, not repeated {dup!r}")
        if len({s.name for s in stages}) != len(stages):
            raise ValueError(f"Network[{self.name!r}].stages must have unique names")
        self._check_connections()

    def _check_connections(self) -> None:
        """Each named producer must come earlier and its output must be this layer's input."""
        seen: dict[str, Layer] = {}
        for la in self.layers:
            for src in la.inputs:
                if src not in seen:
                    raise ValueError(f"Layer[{la.name!r}].inputs must name earlier layers, not {src!r}")
                p = seen[src]
                if la.kind in _GEMM_KINDS:
                    ok = la.in_channels == p.out_channels * p.out_h * p.out_w and la.batch == p.batch
                    want = f"in_channels={p.out_channels * p.out_h * p.out_w} (flattened {src!r})"
                else:
                    ok = (la.in_channels, la.in_h, la.in_w, la.batch) == (p.out_channels, p.out_h, p.out_w, p.batch)
                    want = f"input {p.out_channels}x{p.out_h}x{p.out_w} (output of {src!r})"
                if not ok:
                    raise ValueError(f"Layer[{la.name!r}] input shape must match {want}, not "
                                     f"{la.in_channels}x{la.in_h}x{la.in_w}")
            seen[la.name] = la

    @classmethod
    def single(cls, name: str, layers: list[Layer] | tuple[Layer, ...]) -> Network:
        """A plain (non-cascaded) network."""
        return cls(name, (Stage("main", tuple(layers)),))

    @property
    def layers(self) -> tuple[Layer, ...]:
        return tuple(la for s in self.stages for la in s.layers)

    @property
    def is_cascade(self) -> bool:
        return len(self.stages) > 1

    def reach_probabilities(self) -> list[float]:
        """Probability that an input runs stage k: 1, (1-e1), (1-e1)(1-e2), ..."""
        probs, p = [], 1.0
        for s in self.stages:
            probs.append(p)
            p *= 1.0 - s.exit_rate
        return probs

    @property
    def macs(self) -> int:
        return sum(la.macs for la in self.layers)

    @property
    def weight_bits_total(self) -> int:
        return sum(la.weight_bits_total for la in self.layers)
