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
    # classic: every item of each rated user's row: 3 x (2 + 2) + (2 x 1 + 1 x 2) = 16
    # multiply-adds per user, 2 users, x2 FLOPs, x3 for forward + backward
    assert speed.epoch_flops(split, (2, 1, 2), "classic") == pytest.approx(3 * 2 * 2 * 16)
    # sparse paths: 4 ratings x (2 + 2) + 2 users x 4 = 24 multiply-adds
    for path in ("per-user", "batched"):
        assert speed.epoch_flops(split, (2, 1, 2), path) == pytest.approx(3 * 2 * 24)
