"""Data sets as in-memory tensors: bundled (scikit-learn digits, MNIST-1D generated locally) or user data.

``load_dataset(spec)`` takes ``"digits"``, ``"mnist1d"`` or a directory path:

* a CIFAR-10 directory (python version: ``data_batch_1..5`` and ``test_batch``), or
* an image folder with one sub-folder per class (``root/<class>/<image>.png|.jpg``); all images must have
  the same size.

Inputs are scaled to [0, 1] (the range of the first layer's 8-bit activation quantizer): digits /16,
images /255, MNIST-1D ``clip((x + 3) / 6, 0, 1)`` (its samples are standardised, so +-3 sigma). The
splits are stratified and fixed by ``split_seed`` (independent of the training seed).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["Split", "DataSplits", "load_dataset", "load_digits", "load_mnist1d", "load_image_folder",
           "load_cifar10_dir", "check_classes", "batches", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass(frozen=True, slots=True)
class Split:
    """One split of a data set held in memory: inputs ``x`` (N, C, H, W, scaled to [0, 1]; MNIST-1D is
    N, 1, 1, 40) and integer labels ``y`` (N), kept together so they cannot be shuffled or cut apart."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, slots=True)
class DataSplits:
    """A data set as the training code uses it: fixed train / val / test splits, the number of classes and
    the input shape; every split holds every class (checked when built), so a per-class statistic (CQ's
    class counts, accuracy per class) never divides by zero."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    in_shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        for f in ("train", "val", "test"):
            check_classes(f"DataSplits[{self.name!r}].{f}", getattr(self, f).y, self.num_classes)


def check_classes(owner: str, y: torch.Tensor, num_classes: int) -> None:
    """Every class ``0..num_classes-1`` must occur in ``y``; labels must lie in that range."""
    y = torch.as_tensor(y)
    if y.numel() == 0:
        raise ValueError(f"{owner} must be a non-empty set of samples, not an empty one")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise ValueError(f"{owner} labels must be in [0, {num_classes - 1}], not {sorted(set(y.tolist()))[:10]!r}")
    counts = torch.bincount(y, minlength=num_classes)
    empty = [int(i) for i in torch.nonzero(counts == 0).flatten()]
    if empty:
        raise ValueError(f"{owner} must hold at least one sample of every class, not none of classes {empty!r}")


def _stratified(y: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in fractions]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        cuts = np.round(np.cumsum(fractions)[:-1] * len(idx)).astype(int)
        for i, chunk in enumerate(np.split(idx, cuts)):
            parts[i].extend(chunk.tolist())
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def _splits(name: str, x: np.ndarray, y: np.ndarray, num_classes: int, fractions: tuple[float, ...],
            seed: int, test: tuple[np.ndarray, np.ndarray] | None = None) -> DataSplits:
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    check_classes(f"Dataset[{name!r}]", torch.from_numpy(y), num_classes)
    parts = _stratified(y, fractions, seed)
    if test is not None:
        parts = parts[:2]
    tx, ty = (x[parts[2]], y[parts[2]]) if test is None else test
    mk = lambda a, b: Split(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)),  # noqa: E731
                            torch.from_numpy(np.asarray(b, dtype=np.int64)))
    return DataSplits(name, mk(x[parts[0]], y[parts[0]]), mk(x[parts[1]], y[parts[1]]), mk(tx, ty),
                      num_classes, tuple(int(v) for v in x.shape[1:]))  # type: ignore[arg-type]


def load_digits(split_seed: int = 0) -> DataSplits:
    """scikit-learn's 8x8 digits (1,797 samples, bundled with the package): 60/20/20 train/val/test."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images / 16.0).reshape(-1, 1, 8, 8)
    return _splits("digits", x, d.target, 10, (0.6, 0.2, 0.2), split_seed)


def load_mnist1d(split_seed: int = 0, num_samples: int = 5000, data_seed: int = 42) -> DataSplits:
    """MNIST-1D generated procedurally by the ``mnist1d`` package (no download); its own 80/20 split
    gives train+val (85/15 of it) and test. Shape ``(N, 1, 1, 40)``."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = data_seed
    state = np.random.get_state()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)  # make_dataset seeds numpy's global generator

    def scale(a: np.ndarray) -> np.ndarray:
        return np.clip((a + 3.0) / 6.0, 0.0, 1.0).reshape(len(a), 1, 1, -1)

    return _splits("mnist1d", scale(d["x"]), d["y"], 10, (0.85, 0.15), split_seed,
                   test=(scale(d["x_test"]), np.asarray(d["y_test"])))


class _CifarUnpickler(pickle.Unpickler):
    """Reads a CIFAR-10 batch (a dict of bytes, lists of ints and one uint8 array) and nothing else: only
    numpy's array reconstruction is admitted, so a file cannot name a callable that runs code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name} (a CIFAR-10 batch holds only arrays)")
        if name == "encode":  # protocol-2 pickles of bytes written by Python 3: latin-1 text -> bytes
            return _latin1_encode
        return super().find_class(module, name)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused codec {encoding!r}")
    return text.encode("latin1")


def load_cifar10_dir(path: str | Path, split_seed: int = 0, val_fraction: float = 0.1) -> DataSplits:
    """CIFAR-10, python version, from a directory holding ``data_batch_1..5`` and ``test_batch``."""
    root = Path(path)

    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        f = root / name
        if not f.is_file():
            raise ValueError(f"CIFAR10.path must be a directory holding {name}, not {str(root)!r}")
        try:
            with f.open("rb") as fh:
                d = _CifarUnpickler(fh, encoding="bytes").load()
            data, labels = np.asarray(d[b"data"]), np.asarray(d[b"labels"])
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.ndim != 1 \
                    or len(labels) != len(data) or labels.dtype.kind not in "iu":
                raise ValueError("unexpected layout")
        except (pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError, EOFError, AttributeError) as exc:
            why = (str(exc).strip() or type(exc).__name__).splitlines()[0][:120]
            raise ValueError(f"{f}: not a CIFAR-10 python batch file ({why})") from None
        return data.astype(np.float32).reshape(-1, 3, 32, 32) / 255.0, labels.astype(np.int64)

    tr = [read(f"data_batch_{i}") for i in range(1, 6)]
    x, y = np.concatenate([a for a, _ in tr]), np.concatenate([b for _, b in tr])
    return _splits("cifar10", x, y, 10, (1 - val_fraction, val_fraction), split_seed, test=read("test_batch"))


def load_image_folder(path: str | Path, split_seed: int = 0) -> DataSplits:
    """``root/<class>/<image>``: classes in sorted folder order, 70/15/15 train/val/test."""
    import matplotlib.image as mpimg

    root = Path(path)
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise ValueError(f"ImageFolder.path must hold at least 2 class sub-folders, not {len(classes)} in "
                         f"{str(root)!r}")
    xs, ys, shape = [], [], None
    for ci, cdir in enumerate(classes):
        files = sorted(f for f in cdir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"ImageFolder.class {cdir.name!r} must hold at least one image, not none")
        for f in files:
            img = np.asarray(mpimg.imread(f), dtype=np.float32)
            if img.max() > 1.0:
                img = img / 255.0
            img = img[None] if img.ndim == 2 else np.moveaxis(img[..., :3], -1, 0)
            if shape is None:
                shape = img.shape
            if img.shape != shape:
                raise ValueError(f"ImageFolder.image {f.name!r} must have shape {shape}, not {img.shape}")
            xs.append(img)
            ys.append(ci)
    return _splits(root.name or "images", np.stack(xs), np.asarray(ys), len(classes), (0.7, 0.15, 0.15), split_seed)


def load_dataset(spec: str | Path, split_seed: int = 0) -> DataSplits:
    """``"digits"``, ``"mnist1d"``, a CIFAR-10 directory or an image folder (see the module docstring)."""
    if not isinstance(spec, str | Path):
        raise TypeError(f"Dataset.spec must be 'digits', 'mnist1d' or a directory path, not {spec!r}")
    if str(spec) == "digits":
        return load_digits(split_seed)
    if str(spec) == "mnist1d":
        return load_mnist1d(split_seed)
    p = Path(spec)
    if not p.is_dir():
        raise ValueError(f"Dataset.spec must be 'digits', 'mnist1d' or an existing directory, not {str(spec)!r}")
    if (p / "data_batch_1").is_file():
        return load_cifar10_dir(p, split_seed)
    return load_image_folder(p, split_seed)


def batches(split: Split, batch_size: int, generator: torch.Generator | None = None
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` mini-batches; shuffled when a generator is given (deterministic per generator)."""
    n = len(split)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        idx = order[i:i + batch_size]
        yield split.x[idx], split.y[idx]
