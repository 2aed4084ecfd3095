"""Small torchvision-style architectures built with torch alone (their independent MAC count is the
front-end benchmark's, ``sims.bench.frontends.hook_macs``: forward hooks, attention analytically).

Each network keeps the operators its torchvision namesake is built from (residual adds, depthwise and
dilated convolutions, squeeze-excite gating, channel shuffle with ``x.size()`` and integer division,
inception branches and concatenation, dense concatenation, ``ceil_mode`` pooling, LayerNorm, GELU,
SiLU, hard-swish, ``nn.MultiheadAttention``, permutes and a class token) at a size that exports and
traces in well under a second.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ARCHS"]


class Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.down is None else self.down(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += idt
        return F.relu(out)


class ResNetish(nn.Module):
    """ResNet: stem, max pool, basic blocks with a downsampling shortcut, global pool, fc."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Basic(8, 8, 1), Basic(8, 16, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.avgpool(self.layer1(x)), 1))


class SE(nn.Module):
    def __init__(self, c: int, s: int, gate: nn.Module) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, s, 1)
        self.fc2 = nn.Conv2d(s, c, 1)
        self.act = nn.ReLU()
        self.gate = gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.avgpool(x)))))


class InvRes(nn.Module):
    def __init__(self, c: int, e: int, act: type[nn.Module], gate: nn.Module, dilation: int = 1) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(c, e, 1, bias=False), nn.BatchNorm2d(e), act(),
            nn.Conv2d(e, e, 3, 1, dilation, dilation=dilation, groups=e, bias=False), nn.BatchNorm2d(e), act(),
            SE(e, 4, gate), nn.Conv2d(e, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x) + x


class MobileNetish(nn.Module):
    """MobileNetV3 / EfficientNet: inverted residuals, depthwise (one dilated), squeeze-excite, hard-swish
    and SiLU, a ``mean`` global pool."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.Hardswish())
        self.b1 = InvRes(8, 16, nn.Hardswish, nn.Hardsigmoid())
        self.b2 = InvRes(8, 24, nn.SiLU, nn.Sigmoid(), dilation=2)
        self.head = nn.Sequential(nn.Linear(8, 12), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(12, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.b2(self.b1(self.stem(x)))
        return self.head(x.mean((2, 3)))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, -1, h, w)


class Shuffle(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        h = c // 2
        self.branch2 = nn.Sequential(nn.Conv2d(h, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU(),
                                     nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False), nn.BatchNorm2d(h),
                                     nn.Conv2d(h, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat((x1, self.branch2(x2)), dim=1), 2)


class ShuffleNetish(nn.Module):
    """ShuffleNetV2: chunk, a branch, concatenation and the view/transpose channel shuffle."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.stage = nn.Sequential(Shuffle(16), Shuffle(16))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage(self.maxpool(self.conv1(x)))
        return self.fc(x.mean([2, 3]))


class Inception(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(c, 8, 1)
        self.b2 = nn.Sequential(nn.Conv2d(c, 4, 1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(c, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 5, padding=2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), nn.Conv2d(c, 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class GoogLeNetish(nn.Module):
    """GoogLeNet: ``ceil_mode`` max pools (odd sizes) and an inception module."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, 2, 3)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inc = Inception(8)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(24, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool2(self.inc(self.maxpool1(F.relu(self.conv1(x)))))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


class DenseLayer(nn.Module):
    def __init__(self, c: int, k: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c)
        self.conv1 = nn.Conv2d(c, 2 * k, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(2 * k)
        self.conv2 = nn.Conv2d(2 * k, k, 3, 1, 1, bias=False)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(feats, 1)
        return self.conv2(F.relu(self.norm2(self.conv1(F.relu(self.norm1(x))))))


class DenseNetish(nn.Module):
    """DenseNet: a dense block (every layer reads the concatenation of all before), a transition with
    average pooling, ``F.adaptive_avg_pool2d``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.layers = nn.ModuleList([DenseLayer(8 + 4 * i, 4) for i in range(3)])
        self.trans = nn.Sequential(nn.BatchNorm2d(20), nn.ReLU(), nn.Conv2d(20, 10, 1, bias=False),
                                   nn.AvgPool2d(2, 2))
        self.classifier = nn.Linear(10, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.conv0(x)]
        for layer in self.layers:
            feats.append(layer(feats))
        x = F.relu(self.trans(torch.cat(feats, 1)))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1))


class EncoderBlock(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.self_attention = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(0.0), nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch._assert(x.dim() == 3, "expected (batch, seq, hidden)")
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + y
        return x + self.mlp(self.ln_2(x))


class ViTish(nn.Module):
    """ViT: patch convolution, reshape/permute, an expanded class token, a positional embedding,
    encoder blocks (LayerNorm, ``nn.MultiheadAttention``, GELU MLP), the class token's head."""

    def __init__(self, d: int = 16, heads: int = 4, patch: int = 4, image: int = 16) -> None:
        super().__init__()
        self.d, self.patch = d, patch
        self.conv_proj = nn.Conv2d(3, d, patch, patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embedding = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, d))
        self.layers = nn.Sequential(EncoderBlock(d, heads), EncoderBlock(d, heads))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        x = self.conv_proj(x).reshape(n, self.d, -1).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        x = self.ln(self.layers(x + self.pos_embedding))
        return self.head(x[:, 0])


class ConvNeXtish(nn.Module):
    """ConvNeXt: a 7x7 depthwise convolution, permute to channels-last, LayerNorm and Linear layers on 4-D
    tensors, GELU, a learned layer scale, permute back, residual add."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 4, 4)
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c)
        self.pw1 = nn.Linear(c, 4 * c)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(4 * c, c)
        self.layer_scale = nn.Parameter(torch.ones(c, 1, 1))
        self.fc = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(self.act(self.pw1(self.norm(y)))).permute(0, 3, 1, 2)
        x = x + self.layer_scale * y
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


ARCHS: dict[str, tuple[type[nn.Module], tuple[int, ...]]] = {
    "residual": (ResNetish, (1, 3, 32, 32)),
    "inverted_residual_se": (MobileNetish, (1, 3, 16, 16)),
    "channel_shuffle": (ShuffleNetish, (1, 3, 16, 16)),
    "inception": (GoogLeNetish, (1, 3, 29, 29)),
    "dense_block": (DenseNetish, (1, 3, 8, 8)),
    "attention": (ViTish, (2, 3, 16, 16)),
    "convnext": (ConvNeXtish, (1, 3, 16, 16)),
}
"""name -> (class, input shape)."""

