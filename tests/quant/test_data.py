"""Data loading: bundled sets, image folders, CIFAR-10 directories, and clear errors."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from quant.data import check_classes, load_dataset, load_mnist1d


def test_digits_splits(digits) -> None:  # type: ignore[no-untyped-def]
    assert digits.in_shape == (1, 8, 8) and digits.num_classes == 10
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    assert float(digits.train.x.min()) >= 0.0 and float(digits.train.x.max()) <= 1.0


def test_mnist1d_generated_locally() -> None:
    d = load_mnist1d(num_samples=500)
    assert d.in_shape == (1, 1, 40) and len(d.test) == 100
    state = np.random.get_state()[1][:4].tolist()
    load_mnist1d(num_samples=200)
    assert np.random.get_state()[1][:4].tolist() == state  # global numpy state untouched


def test_image_folder_and_empty_class(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(8):
            mpimg.imsave(tmp_path / c / f"{i}.png", rng.random((6, 6, 3)))
    d = load_dataset(tmp_path)
    assert d.num_classes == 2 and d.in_shape == (3, 6, 6)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"^ImageFolder\.class 'empty' must hold at least one image, not none$"):
        load_dataset(tmp_path)


def test_cifar10_directory(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = list(range(10)) * 2
        with open(tmp_path / name, "wb") as fh:
            pickle.dump({b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), b"labels": labels}, fh)
    d = load_dataset(tmp_path)
    assert d.in_shape == (3, 32, 32) and len(d.test) == 20 and len(d.train) + len(d.val) == 100


def test_bad_dataset_inputs(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ValueError, match="^" + re.escape("Dataset.spec must be 'digits', 'mnist1d' or an "
                                                   f"existing directory, not {str(missing)!r}") + "$"):
        load_dataset(missing)
    with pytest.raises(TypeError, match=r"^Dataset\.spec must be 'digits', 'mnist1d' or a directory path, not 3$"):
        load_dataset(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^X\.y must hold at least one sample of every class, not none of classes \[1\]$"):
        check_classes("X.y", torch.tensor([0, 2, 2]), 3)
