"""Front ends that build a :class:`hwsim.Network` from a model: PyTorch, ONNX/QONNX, SCALE-Sim CSV, YAML.

torch and onnx are imported inside the functions that need them, never at package import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hwsim.network import Network

from ..bits import apply_bits
from .onnx import from_onnx
from .pytorch import UnsupportedOperatorWarning, from_torch

__all__ = ["from_torch", "from_onnx", "from_csv", "from_torch_file", "load_model", "parse_input_shape",
           "UnsupportedOperatorWarning", "MODEL_SUFFIXES", "TRUST_PICKLE_HINT", "QUANT_FORMAT"]

MODEL_SUFFIXES = (".yaml", ".yml", ".onnx", ".csv", ".pt", ".pth")


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``"1,3,32,32"`` -> ``(1, 3, 32, 32)``."""
    try:
        shape = tuple(int(x) for x in str(text).replace("x", ",").split(",") if x.strip())
    except ValueError:
        raise ValueError(f"input shape must be comma-separated integers like 1,3,32,32, not {text!r}") from None
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"input shape must be comma-separated positive integers like 1,3,32,32, not {text!r}")
    return shape


def _is_gemm_topology(p: Path) -> bool:
    """A SCALE-Sim GEMM topology: the header names ``Layer, M, N, K``."""
    try:
        with p.open() as f:
            head = f.readline()
    except (OSError, UnicodeDecodeError):
        return False
    cells = [c.strip().lower() for c in head.split(",") if c.strip()]
    return cells[1:4] == ["m", "n", "k"]


def from_csv(path: str | Path, *, gemm: bool | None = None, name: str | None = None) -> Network:
    """A SCALE-Sim topology CSV (read by :func:`hwsim.scalesim.load_topology`) as a plain network.

    ``gemm=None`` reads a GEMM topology (header ``Layer, M, N, K``) as GEMMs and any other as convolutions.
    A name used by several rows (SCALE-Sim allows it) gets ``_1``, ``_2``, ... on its later rows.
    """
    import dataclasses

    from hwsim.io import check_network_limits
    from hwsim.scalesim import load_topology

    from .graph import rename_unique
    p = Path(path)
    layers = load_topology(p, gemm=_is_gemm_topology(p) if gemm is None else gemm)
    check_network_limits(layers, str(p))  # before the names are made unique and Network checks them
    used: set[str] = set()
    layers = tuple(dataclasses.replace(la, name=rename_unique(la.name, used)) for la in layers)
    return Network.single(name or p.stem, layers)


TRUST_PICKLE_HINT = ("export it to ONNX (torch.onnx.export, also from a torch.export program) and pass the .onnx "
                     "file, or pass --trust-pickle if you trust the file (it runs the file's code)")


def _is_torchscript(p: Path) -> bool:
    """A TorchScript archive: a zip holding ``constants.pkl`` or a ``code/`` folder (looked at, not loaded)."""
    import zipfile

    if not zipfile.is_zipfile(p):
        return False
    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def from_torch_file(path: str | Path, input_shape: Sequence[int] | None, *, trust_pickle: bool = False,
                    **kw: Any) -> Network:
    """A pickled ``nn.Module`` saved with ``torch.save(model, path)``, traced on zeros of ``input_shape``.

    Unpickling a module runs code from the file, so the file is read with ``weights_only=True`` (plain
    tensors and containers only) unless ``trust_pickle`` says the caller trusts it (docs/limits.md).
    """
    import pickle

    import torch

    from hwsim.errors import short_repr
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"model file {str(path)!r} not found")
    if _is_torchscript(p):
        if not trust_pickle:
            raise ValueError(f"{p}: a TorchScript module runs the file's code when read; not read. Export it to "
                             "ONNX (torch.onnx.export), or pass --trust-pickle to read it through its graph")
        if input_shape is None:
            raise ValueError(f"{p}: a PyTorch model needs an input shape (e.g. --input-shape 1,3,32,32)")
        from .torchscript import from_torchscript_file
        kw.setdefault("name", p.stem)
        return from_torchscript_file(p, input_shape, **kw)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError:
        if trust_pickle:
            raise ValueError(f"{p}: not a PyTorch file (cannot unpickle it)") from None
        raise ValueError(f"{p}: holds pickled Python objects (a full nn.Module?), which would run code when "
                         f"read; not read. {TRUST_PICKLE_HINT}") from None
    except Exception as exc:
        raise ValueError(f"{p}: cannot load the model (corrupt or not a PyTorch file): {type(exc).__name__}: "
                         f"{short_repr(str(exc))}") from None
    if isinstance(obj, dict) and obj.get("format") == QUANT_FORMAT:
        return _quant_checkpoint(p, obj, kw.get("bits"))
    if not isinstance(obj, torch.nn.Module):
        raise ValueError(f"{p}: expected a pickled torch.nn.Module, not {type(obj).__name__} "
                         "(a state_dict carries no architecture)")
    if input_shape is None:
        raise ValueError(f"{p}: a PyTorch model needs an input shape (e.g. --input-shape 1,3,32,32)")
    kw.setdefault("name", p.stem)
    import contextlib
    import io
    with contextlib.redirect_stderr(io.StringIO()):  # torch.fx's ShapeProp prints a traceback before raising
        try:
            return from_torch(obj, torch.zeros(tuple(input_shape)), **kw)
        except (ValueError, TypeError) as exc:  # ours, about the model: name the file
            raise ValueError(f"{p}: {exc}") from None
        except Exception as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{p}: the model does not run on an input of shape {tuple(input_shape)} "
                             f"(--input-shape): {short_repr(first, 160)}") from None


QUANT_FORMAT = "hwsim.quant/1"
"""The ``format`` of a checkpoint written by ``hwsim train`` (``quant.export.FORMAT``)."""


def _quant_checkpoint(p: Path, d: Mapping[str, Any], bits: Mapping[str, Any] | None) -> Network:
    """The network a ``hwsim train`` checkpoint stores (written by quant's one exporter at save time)."""
    from hwsim.io import network_from_dict
    if not isinstance(d.get("network"), Mapping):
        raise ValueError(f"{p}: a {QUANT_FORMAT} checkpoint must hold a 'network' mapping, not "
                         f"{type(d.get('network')).__name__}")
    net = network_from_dict(d["network"], source=str(p))
    return apply_bits(net, bits, str(p)) if bits else net


def load_model(path: str | Path, *, input_shape: Sequence[int] | None = None, bits: Mapping[str, Any] | None = None,
               skip_unsupported: bool = False, default_bits: tuple[int, int] = (8, 8),
               trust_pickle: bool = False) -> Network:
    """Any supported model file, by suffix (``MODEL_SUFFIXES``); ``bits`` overrides widths per layer;
    ``trust_pickle`` lets a ``.pt``/``.pth`` file unpickle arbitrary objects (it runs the file's code)."""
    from hwsim.io import load_network
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ValueError(f"model file must end in one of {list(MODEL_SUFFIXES)}, not {str(path)!r}")
    if suffix in (".yaml", ".yml"):
        net = load_network(p)
    elif suffix == ".csv":
        net = from_csv(p)
    else:
        from hwsim.io import check_network_limits
        if suffix == ".onnx":
            net = from_onnx(p, bits=bits, default_bits=default_bits, skip_unsupported=skip_unsupported)
        else:
            net = from_torch_file(p, input_shape, bits=bits, default_bits=default_bits,
                                  skip_unsupported=skip_unsupported, trust_pickle=trust_pickle)
        check_network_limits(net.layers, str(p))
        return net
    return apply_bits(net, bits, str(p)) if bits else net
