"""quant.recipes: a method's configuration is checked when it is built."""

from __future__ import annotations

import pytest

from quant.recipes import MethodConfig


def test_method_config_rejects_increasing_pdb() -> None:
    with pytest.raises(ValueError, match=r"^PDB\.schedule must be non-increasing, not \(1, 2\)$"):
        MethodConfig("pdb", bits=(1, 2))
    with pytest.raises(ValueError, match=r"^MethodConfig\.method must be one of "
                       r"\['fp', 'uniform', 'pdb', 'bwa', 'cq', 'cmn'\], not 'haq'$"):
        MethodConfig("haq")
