"""FLOP counts of the speed report, on a case worked by hand."""

import numpy as np
import pytest
import scipy.sparse as sp
from aebench.bench import speed
from aebench.datasets import Split


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


def test_models_count_their_own_epoch_flops_by_hand():
    """Each family's `epoch_flops`, on the same toy matrix (3 x 3, 4 ratings, 2 rated rows)."""
    from aebench import models

    train = sp.csr_matrix(np.array([[5, 0, 3], [0, 0, 0], [1, 2, 0]], dtype=np.float32))
    sae, _ = models.create("sae-20-10-20", 3, 3, hidden=(2, 1, 2))
    assert sae.epoch_flops(train).total == pytest.approx(2 * 64)  # as worked above
    assert sae.epoch_flops(train).bound == "gather" and sae.epoch_flops(train).width == 2
    # MF, 64 factors: per rating the dot product and both factor gradients, 3 x 64 MACs
    mf, _ = models.create("mf", 3, 3, dim=64)
    assert mf.epoch_flops(train).total == pytest.approx(2 * 3 * 4 * 64)
    # Mult-VAE 3 -> 2 -> (2 x 1) -> 2 -> 3: the sparse first layer 4 ratings x 2 (x2), the
    # dense layers 2x2 + 1x2 + 2x3 = 12 MACs per rated row (x3): 2 x (16 + 72) FLOPs
    vae, _ = models.create("mult-vae", 3, 3, hidden=(2, 1))
    assert vae.epoch_flops(train).total == pytest.approx(2 * (2 * 8 + 3 * 2 * 12))
    assert vae.epoch_flops(train).bound == "matmul"
