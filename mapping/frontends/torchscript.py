"""TorchScript front end: a ``torch.jit.ScriptModule`` read through its graph.

A scripted or traced module has no Python ``forward`` that fx or hooks could follow, but its graph is
what ``torch.onnx.export``'s TorchScript-based exporter (``dynamo=False``) consumes; the module is
exported in memory on the example input and read by :func:`mapping.frontends.onnx.from_onnx`, so the
layers, costs and widths are those of the ONNX route. Loading a TorchScript file runs the file's code:
:func:`from_torchscript_file` is reached only when the caller trusts the file.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from hwsim.network import Network

__all__ = ["from_torchscript", "from_torchscript_file"]


def from_torchscript(module: Any, example_input: Any, *, name: str = "model", **kw: Any) -> Network:
    """``module`` (a ``ScriptModule``) on ``example_input`` as a :class:`hwsim.Network` (module docstring)."""
    import onnx
    import torch

    from .onnx import from_onnx

    if not isinstance(module, torch.jit.ScriptModule):
        raise TypeError(f"from_torchscript.module must be a torch.jit.ScriptModule, not {type(module).__name__}")
    if not isinstance(example_input, torch.Tensor):
        raise TypeError(f"from_torchscript.example_input must be a torch.Tensor, not {type(example_input).__name__}")
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), (example_input,), cast(Any, buf), dynamo=False)
    except Exception as exc:  # the exporter raises many kinds (symbolic missing, shape errors)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"from_torchscript[{name}]: cannot read the TorchScript graph on an input of shape "
                         f"{tuple(example_input.shape)}: {type(exc).__name__}: {first[:200]}") from None
    return from_onnx(onnx.load_from_string(buf.getvalue()), name=name, **kw)


def from_torchscript_file(path: str | Path, input_shape: Sequence[int], **kw: Any) -> Network:
    """A TorchScript archive (``torch.jit.save``), traced on zeros of ``input_shape``."""
    import torch
    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated; the files are not
            module = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:  # torch.jit raises RuntimeError and others on a bad archive
        raise ValueError(f"{p}: cannot load the TorchScript module: {type(exc).__name__}: "
                         f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}") from None
    kw.setdefault("name", p.stem)
    return from_torchscript(module, torch.zeros(tuple(input_shape)), **kw)
