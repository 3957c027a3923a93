"""Low-rank EDLAE against the closed forms it approximates: at full rank the authors'
alternating updates land on DLAE (free diagonal) and EDLAE (zero diagonal) exactly, an item
nobody has gets zero weights, and at low rank the diagonal stays zero."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from aebench.models.edlae import dlae_weights, edlae_weights
from aebench.models.edlae_lowrank import LowRankConfig, lowrank_factors

from aebench import models


def data(seed=0):
    rng = np.random.default_rng(seed)
    d = (rng.random((300, 40)) < 0.2).astype(np.float32)
    d[:, 7] = 0  # an item no training user has
    return sp.csr_matrix(d)


@pytest.mark.parametrize("zero_diag, closed_form", [(False, dlae_weights),
                                                    (True, edlae_weights)])
def test_full_rank_is_the_closed_form(zero_diag, closed_form):
    x = data()
    u, v = lowrank_factors(x, LowRankConfig(rank=40, iterations=10, zero_diag=zero_diag,
                                            lam=10.0, p=0.3), iterate_at_full_rank=True)
    b = (u @ v.T).float()
    assert torch.allclose(b, closed_form(x, 10.0, 0.3), atol=1e-5)
    assert b[7].abs().max() == 0 and b[:, 7].abs().max() == 0


def test_low_rank_keeps_a_zero_diagonal_and_its_rank():
    x = data(1)
    u, v = lowrank_factors(x, LowRankConfig(rank=5, iterations=10, lam=10.0, p=0.3))
    b = u @ v.T
    assert u.shape == v.shape == (40, 5)
    assert b.diagonal().abs().max() < 1e-10
    assert torch.linalg.matrix_rank(b) <= 5


def test_the_variant_scores_x_u_v():
    x = data(2)
    cfg = models.config("edlae-lowrank", rank=8, iterations=3)
    m = models.get("edlae-lowrank").make(*x.shape, cfg)
    torch.manual_seed(0)
    m.fit(x)
    from tests.models.test_hybrids import batch_of

    with torch.no_grad():
        want = torch.as_tensor(x.toarray()) @ m.u @ m.v.T
        assert torch.allclose(m.score(batch_of(x)), want, atol=1e-5)
