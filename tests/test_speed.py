"""FLOP counts of the speed report, on a case worked by hand."""

import numpy as np
import pytest
import scipy.sparse as sp

from bench import speed
from datasets import Split


def test_epoch_flops_by_hand():
    # 3 users (one without ratings), 3 items, 4 ratings; model 3 -> 2 -> 1 -> 2 -> 3
    train = sp.csr_matrix(np.array([[5, 0, 3], [0, 0, 0], [1, 2, 0]], dtype=np.float32))
    split = Split("toy", "toy", 0, train, train, np.arange(3), np.arange(3), "")
    # classic, per rated user (2 of them), multiply-adds: first layer 3 items x 2 = 6, inner
    # 2 x 1 + 1 x 2 = 4, output 2 x 3 = 6. The first layer runs forward and weight gradient
    # (x2), the others also the input gradient (x3): 2 x (2 x 6 + 3 x 10) = 84; x2 FLOPs.
    assert speed.epoch_flops(split, (2, 1, 2), "classic") == pytest.approx(2 * 84)
    # sparse paths: first layer 4 ratings x 2 = 8, inner 2 users x 4 = 8, output 4 x 2 = 8:
    # 2 x 8 + 3 x 16 = 64 multiply-adds
    for path in ("per-user", "batched"):
        assert speed.epoch_flops(split, (2, 1, 2), path) == pytest.approx(2 * 64)
