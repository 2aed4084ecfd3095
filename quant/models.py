"""Small networks sized for a 2-core CPU: a plain CNN (2-D images or 1-D signals), an MLP, ResNet-20.

Every model is built from :class:`~quant.layers.QConv2d` / :class:`~quant.layers.QLinear` blocks
``conv -> BatchNorm -> clip(0, 1)``; the clip is DoReFa's bounded activation, used by the FP model too,
so FP weights carry over to quantization-aware training unchanged. 1-D signals (MNIST-1D) are
``(N, C, 1, L)`` tensors and use ``1 x k`` kernels, so they map to the IR's conv2d layers.

``model.groups()`` lists the layer groups of progressively decreasing bitwidth: one group per layer
for plain nets, one per stage for ResNet (stem and classifier are groups of their own); each comes with
the module whose output is that group's feature map (for the separability score).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .layers import QConv2d, QLinear, qlayers

__all__ = ["ClipAct", "QNet", "ConvNet", "MLP", "ResNet20", "build_model", "ARCHS", "default_arch"]


class ClipAct(nn.Module):
    """``clip(x, 0, 1)`` (DoReFa's bounded ReLU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, 0.0, 1.0)


def _check_shape(owner: str, in_shape: Any) -> tuple[int, int, int]:
    if (not isinstance(in_shape, tuple | list) or len(in_shape) != 3
            or not all(isinstance(v, int) and v >= 1 for v in in_shape)):
        raise ValueError(f"{owner}.in_shape must be (channels, height, width) of positive ints, not {in_shape!r}")
    c, h, w = in_shape
    return c, h, w


class QNet(nn.Module):
    """Base class: ``config()`` rebuilds the model, ``groups()`` gives the PDB groups."""

    arch = "qnet"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self._kwargs = kwargs

    def config(self) -> dict[str, Any]:
        return {"arch": self.arch, "kwargs": {k: list(v) if isinstance(v, tuple) else v
                                              for k, v in self._kwargs.items()}}

    def groups(self) -> list[tuple[list[int], nn.Module]]:
        raise NotImplementedError


class ConvNet(QNet):
    """Plain CNN: ``len(channels)`` conv blocks ``(out_channels, kernel, stride)`` then a linear classifier.

    ``head='gap'`` pools globally before the classifier; ``head='flatten'`` keeps positions.
    """

    arch = "convnet"

    def __init__(self, in_shape: tuple[int, int, int], num_classes: int,
                 channels: tuple[tuple[int, int, int], ...] = ((16, 3, 1), (32, 3, 2), (32, 3, 1), (64, 3, 2)),
                 head: str = "gap") -> None:
        c, h, w = _check_shape("ConvNet", in_shape)
        if head not in ("gap", "flatten"):
            raise ValueError(f"ConvNet.head must be one of ['gap', 'flatten'], not {head!r}")
        super().__init__(in_shape=list(in_shape), num_classes=num_classes,
                         channels=[list(x) for x in channels], head=head)
        blocks = []
        for out_c, k, s in channels:
            kh = k if h > 1 else 1
            conv = QConv2d(c, out_c, (kh, k), stride=(s if h > 1 else 1, s), padding=(kh // 2, k // 2), bias=False)
            blocks.append(nn.Sequential(conv, nn.BatchNorm2d(out_c), ClipAct()))
            h = (h + 2 * (kh // 2) - kh) // (s if h > 1 else 1) + 1
            w = (w + 2 * (k // 2) - k) // s + 1
            c = out_c
        self.blocks = nn.Sequential(*blocks)
        self.head = head
        self.fc = QLinear(c if head == "gap" else c * h * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(x)
        x = x.mean((2, 3)) if self.head == "gap" else x.flatten(1)
        return self.fc(x)

    def groups(self) -> list[tuple[list[int], nn.Module]]:
        n = len(self.blocks)
        return [([i], self.blocks[i]) for i in range(n)] + [([n], self.fc)]


class MLP(QNet):
    """Multi-layer perceptron on flattened inputs: ``Linear -> BN -> clip`` per hidden layer."""

    arch = "mlp"

    def __init__(self, in_shape: tuple[int, int, int], num_classes: int, hidden: tuple[int, ...] = (128, 64)) -> None:
        c, h, w = _check_shape("MLP", in_shape)
        super().__init__(in_shape=list(in_shape), num_classes=num_classes, hidden=list(hidden))
        d = c * h * w
        blocks = []
        for n in hidden:
            blocks.append(nn.Sequential(QLinear(d, n, bias=False), nn.BatchNorm1d(n), ClipAct()))
            d = n
        self.blocks = nn.Sequential(*blocks)
        self.fc = QLinear(d, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(x.flatten(1)))

    def groups(self) -> list[tuple[list[int], nn.Module]]:
        n = len(self.blocks)
        return [([i], self.blocks[i]) for i in range(n)] + [([n], self.fc)]


class _Block(nn.Module):
    """ResNet basic block; the shortcut subsamples and zero-pads channels (He et al.'s option A)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = QConv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = QConv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act = ClipAct()
        self.stride, self.pad = stride, c_out - c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))
        sc = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        if self.pad:
            sc = nn.functional.pad(sc, (0, 0, 0, 0, 0, self.pad))
        return self.act(y + sc)


class ResNet20(QNet):
    """ResNet-20 for 32x32 images (He et al. 2016): stem, 3 stages x ``blocks`` blocks, classifier.

    ``width`` scales the stage widths (16, 32, 64); ``width=0.5`` is a CPU-sized variant.
    """

    arch = "resnet20"

    def __init__(self, in_shape: tuple[int, int, int], num_classes: int, width: float = 1.0, blocks: int = 3) -> None:
        c, _, _ = _check_shape("ResNet20", in_shape)
        super().__init__(in_shape=list(in_shape), num_classes=num_classes, width=width, blocks=blocks)
        ws = [max(4, int(round(16 * width * m))) for m in (1, 2, 4)]
        self.stem = nn.Sequential(QConv2d(c, ws[0], 3, padding=1, bias=False), nn.BatchNorm2d(ws[0]), ClipAct())
        stages, c_in = [], ws[0]
        for i, c_out in enumerate(ws):
            layers = [_Block(c_in if j == 0 else c_out, c_out, 2 if (i > 0 and j == 0) else 1) for j in range(blocks)]
            stages.append(nn.Sequential(*layers))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.fc = QLinear(ws[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.stages(self.stem(x)).mean((2, 3)))

    def groups(self) -> list[tuple[list[int], nn.Module]]:
        idx = {id(m): i for i, m in enumerate(qlayers(self))}
        out: list[tuple[list[int], nn.Module]] = [([idx[id(self.stem[0])]], self.stem)]
        for st in self.stages:
            out.append(([idx[id(m)] for m in qlayers(st)], st))
        return out + [([idx[id(self.fc)]], self.fc)]


ARCHS: dict[str, type[QNet]] = {"convnet": ConvNet, "mlp": MLP, "resnet20": ResNet20}


def default_arch(in_shape: tuple[int, int, int], num_classes: int) -> QNet:
    """The network we use for a data set of this shape (digits, MNIST-1D, 32x32 images, other images)."""
    c, h, w = in_shape
    if h == 1:  # 1-D signal (MNIST-1D)
        return ConvNet(in_shape, num_classes, channels=((32, 5, 1), (32, 5, 2), (64, 5, 2), (64, 5, 2)),
                       head="flatten")
    if h >= 32 and w >= 32:
        return ResNet20(in_shape, num_classes, width=0.5)
    return ConvNet(in_shape, num_classes)


def build_model(config: dict[str, Any]) -> QNet:
    """Rebuild a model from ``model.config()``."""
    if not isinstance(config, dict) or config.get("arch") not in ARCHS:
        raise ValueError(f"build_model.config must name an arch in {sorted(ARCHS)}, not {config!r}")
    kw = dict(config.get("kwargs", {}))
    if "in_shape" in kw:
        kw["in_shape"] = tuple(kw["in_shape"])
    if "channels" in kw:
        kw["channels"] = tuple(tuple(x) for x in kw["channels"])
    if "hidden" in kw:
        kw["hidden"] = tuple(kw["hidden"])
    return ARCHS[config["arch"]](**kw)
