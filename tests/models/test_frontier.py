"""The frontier's closed forms against their formulas computed directly in float64: DLAE and
EDLAE (EDLAE at p = 0 is EASE; the diagonals the paper states), SVD-AE (full rank: the
pseudo-inverse formula), and the infinite-width autoencoder's NTK (a 2x2 case by hand, the
empirical NTK of a wide finite network, the kernel ridge regression)."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from aebench.models import edlae, inf_ae, svd_ae
from aebench.models.ease import ease_weights

from aebench import models


def random_binary(users=40, items=12, density=0.3, seed=0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    x = (rng.random((users, items)) < density).astype(np.float32)
    x[np.arange(users), rng.integers(0, items, users)] = 1.0  # no empty row
    return sp.csr_matrix(x)


def scores_of(model, x: sp.csr_matrix) -> np.ndarray:
    """What evaluation asks of a fitted model: scores of every row of `x`."""
    from aebench.bench.evaluation.evaluate import user_scores

    cfg = model.cfg
    blocks = [b for _, b in user_scores(model, cfg, x, torch.device("cpu"))]
    return torch.cat(blocks).double().numpy()


def fitted(name, x, **over):
    model, cfg = models.create(name, *x.shape, **over)
    torch.manual_seed(0)
    model.fit(x)
    return model


# ---- DLAE and EDLAE

def direct_penalty(x, lam, p):
    g = (x.T @ x).toarray().astype(np.float64)
    return g, np.diag(lam + p / (1 - p) * np.diag(g))


@pytest.mark.parametrize("lam, p", [(5.0, 0.25), (30.0, 0.6)])
def test_dlae_and_edlae_are_their_closed_forms(lam, p):
    x = random_binary()
    g, penalty = direct_penalty(x, lam, p)
    dlae = np.linalg.solve(g + penalty, g)  # B = (G + Lambda)^-1 G
    inv = np.linalg.inv(g + penalty)
    want = np.eye(len(g)) - inv / np.diag(inv)  # I - P diag(1/diag P)
    got = edlae.edlae_weights(x, lam, p).double().numpy()
    np.testing.assert_allclose(got, want, atol=2e-5)
    np.testing.assert_allclose(np.diag(got), 0.0, atol=0.0)  # the paper: a zero diagonal
    got = edlae.dlae_weights(x, lam, p).double().numpy()
    np.testing.assert_allclose(got, dlae, atol=2e-5)
    # DLAE's diagonal, as the paper states it: 1 - P_jj Lambda_jj, strictly inside (0, 1)
    np.testing.assert_allclose(np.diag(got), 1 - np.diag(inv) * np.diag(penalty), atol=2e-5)
    assert ((np.diag(got) > 0) & (np.diag(got) < 1)).all()


def test_edlae_without_dropout_is_ease_and_more_dropout_shrinks_popular_items_more():
    x = random_binary(seed=1)
    torch.testing.assert_close(edlae.edlae_weights(x, 50.0, 0.0), ease_weights(x, 50.0))
    g = (x.T @ x).toarray()
    # DLAE's self-weight falls with p, fastest for the most popular item
    low, high = (np.diag(edlae.dlae_weights(x, 10.0, p).numpy()) for p in (0.1, 0.5))
    assert (high < low).all()
    assert np.diag(g)[np.argmax(low - high)] == np.diag(g).max()


def test_dropout_probability_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="p must lie in"):
        edlae.edlae_weights(random_binary(), 1.0, 1.0)


def test_dlae_and_edlae_score_rows_as_x_times_b():
    x = random_binary(seed=2)
    for name in ("dlae", "edlae"):
        model = fitted(name, x, lam=20.0, p=0.3)
        np.testing.assert_allclose(scores_of(model, x), x.toarray() @ model.weight.double().numpy(),
                                   rtol=1e-5, atol=1e-5)


# ---- SVD-AE

def test_svd_ae_at_full_rank_is_the_pseudo_inverse_formula():
    x = random_binary(users=30, items=10, seed=3)
    r = x.toarray().astype(np.float64)
    du = 1 / np.sqrt(r.sum(1))
    di = 1 / np.sqrt(np.where(r.sum(0) == 0, 1, r.sum(0)))
    norm = du[:, None] * r * di[None, :]
    want = norm @ np.linalg.pinv(norm) @ r  # R~ (R~)^+ R
    model = fitted("svd-ae", x, k=10, n_iter=6)
    np.testing.assert_allclose(scores_of(model, x), want, atol=2e-4)


def test_svd_ae_at_low_rank_projects_on_the_top_left_singular_vectors():
    # five taste groups, each dense on its own block of items, plus sparse noise: a clear gap
    # after the fifth singular value, so that the randomised SVD finds that subspace
    rng = np.random.default_rng(4)
    blocks = np.kron(np.eye(5), np.ones((10, 4)))
    x = sp.csr_matrix(np.maximum(blocks * (rng.random(blocks.shape) < 0.9),
                                 rng.random(blocks.shape) < 0.05).astype(np.float32))
    r = x.toarray().astype(np.float64)
    norm = svd_ae.normalised(x).toarray()
    u, s, vt = np.linalg.svd(norm)
    k = 5
    want = norm @ (vt[:k].T / s[:k]) @ u[:, :k].T @ r
    assert s[k - 1] > 1.5 * s[k]
    model = fitted("svd-ae", x, k=k, n_iter=8)
    np.testing.assert_allclose(scores_of(model, x), want, atol=1e-3)


# ---- the infinite-width autoencoder

def test_ntk_by_hand_on_two_points():
    # d = 2: a = (1, 0), b = (1, 1). S1(a,a) = 2*1/2 + .01 = 1.01; S1(b,b) = 2*2/2 + .01 = 2.01;
    # S1(a,b) = 2*1/2 + .01 = 1.01
    a = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    s_ab, s_aa, s_bb = 1.01, 1.01, 2.01
    cos = s_ab / math.sqrt(s_aa * s_bb)
    theta = math.acos(cos)
    e_relu = math.sqrt(s_aa * s_bb) * (math.sin(theta) + (math.pi - theta) * cos) / (2 * math.pi)
    e_drelu = (math.pi - theta) / (2 * math.pi)
    want = 2 * e_relu + 0.01 + 2 * e_drelu * s_ab
    assert inf_ae.ntk(a, b).item() == pytest.approx(want, rel=1e-12)
    # on the diagonal theta = 0: E[relu^2] = S/2, E[relu'^2] = 1/2, so NTK = 2S + 0.01
    assert inf_ae.ntk(b, b).item() == pytest.approx(2 * s_bb + 0.01, rel=1e-12)


def test_ntk_is_the_limit_of_a_wide_networks_empirical_ntk():
    """Dense(sqrt 2, 0.1) -> ReLU -> Dense(sqrt 2, 0.1), NTK parameterisation, one output:
    the empirical NTK (gradient inner products over every parameter, by torch.func) of a
    network 100,000 wide is within a few per cent of the closed form."""
    from torch.func import jacrev

    torch.manual_seed(0)
    d, width = 6, 100_000
    x = (torch.rand(4, d) < 0.5).double()
    params = {"w1": torch.randn(width, d, dtype=torch.float64),
              "b1": torch.randn(width, dtype=torch.float64),
              "w2": torch.randn(1, width, dtype=torch.float64),
              "b2": torch.randn(1, dtype=torch.float64)}

    def net(p, inputs):
        h = torch.relu(math.sqrt(2.0 / d) * inputs @ p["w1"].T + 0.1 * p["b1"])
        return (math.sqrt(2.0 / width) * h @ p["w2"].T + 0.1 * p["b2"]).squeeze(-1)

    jac = jacrev(lambda p: net(p, x))(params)
    flat = torch.cat([j.reshape(len(x), -1) for j in jac.values()], dim=1)
    empirical = flat @ flat.T
    torch.testing.assert_close(empirical, inf_ae.ntk(x, x), rtol=0.03, atol=0.0)


def test_inf_ae_is_kernel_ridge_regression_with_the_authors_ridge():
    x = random_binary(users=25, items=9, seed=5)
    r = torch.from_numpy(x.toarray()).double()
    k = inf_ae.ntk(r, r)
    lam = 3.0
    want = (k @ torch.linalg.solve(k + lam * torch.trace(k) / len(k) * torch.eye(len(k)), r))
    model = fitted("inf-ae", x, lam=lam)
    np.testing.assert_allclose(scores_of(model, x), want.numpy(), rtol=1e-4, atol=1e-4)


def test_inf_ae_with_a_user_support_keeps_that_many_training_rows():
    x = random_binary(users=30, items=8, seed=6)
    model = fitted("inf-ae", x, user_support=12)
    support = model.support.numpy()
    assert support.shape == (12, 8)
    rows = {tuple(row) for row in (x.toarray() != 0)}
    assert all(tuple(row) in rows for row in support)
    assert np.isfinite(scores_of(model, x)).all()


# ---- higher-order EASE

@pytest.mark.parametrize("block", [1, 2, 1024])
def test_top_pairs_by_hand_ties_to_the_lower_flat_index(block):
    from aebench.models.ease_higher import top_pairs

    # upper pairs: (0, 1) 2, (0, 2) 2, (1, 2) 3, (0, 3) 1, (1, 3) 0, (2, 3) 2
    g = torch.tensor([[5.0, 2.0, 2.0, 1.0], [2.0, 5.0, 3.0, 0.0], [2.0, 3.0, 5.0, 2.0],
                      [1.0, 0.0, 2.0, 4.0]], dtype=torch.float64)
    assert top_pairs(g, 4, block).tolist() == [[1, 2], [0, 1], [0, 2], [2, 3]]
    assert top_pairs(g, 6, block).tolist()[-2:] == [[0, 3], [1, 3]]



def authors_higher(x, pairs, lam_b, lam_c, rho, epochs):
    """`train_higher` of hasteck/Higher_Recsys_2021 as the notebook writes it (numpy, float64)."""
    x = x.toarray().astype(np.float64)
    xtx = x.T @ x
    xtxdiag = np.diag(xtx).copy()
    mm = np.zeros((len(pairs), x.shape[1]))
    mm[np.arange(len(pairs)), pairs[:, 0]] = 1.0
    mm[np.arange(len(pairs)), pairs[:, 1]] = 1.0
    ccmask = 1.0 - mm
    z = ((x @ mm.T) == 2.0) * 1.0
    ztz, ztx = z.T @ z, z.T @ x
    ztzdiag = np.diag(ztz).copy()
    ii = np.diag_indices(xtx.shape[0])
    xtx[ii] = xtxdiag + lam_b
    pp = np.linalg.inv(xtx)
    jj = np.diag_indices(ztz.shape[0])
    ztz[jj] = ztzdiag + lam_c + rho
    qq = np.linalg.inv(ztz)
    cc = np.zeros((ztz.shape[0], xtx.shape[0]))
    dd = np.zeros_like(cc)
    uu = np.zeros_like(cc)
    for _ in range(epochs):
        xtx[ii] = xtxdiag
        bb = pp.dot(xtx - ztx.T.dot(cc))
        gamma = np.diag(bb) / np.diag(pp)
        bb -= pp * gamma
        cc = qq.dot(ztx - ztx.dot(bb) + rho * (dd - uu))
        dd = cc * ccmask
        uu += cc - dd
    return bb, dd


def test_higher_order_ease_is_the_authors_admm():
    from aebench.models import ease_higher

    x = random_binary(users=60, items=10, density=0.4, seed=7)
    cfg = models.config("ease-higher", pairs=6, lam_b=5.0, lam_c=20.0, rho=50.0, rounds=7)
    b, c, pairs = ease_higher.higher_weights(x, cfg)
    g = (x.T @ x).toarray()
    counts = [g[i, j] for i, j in pairs.numpy()]
    assert counts == sorted(counts, reverse=True)  # the most frequent pairs, i < j
    assert (pairs[:, 0] < pairs[:, 1]).all() and min(counts) >= max(
        g[i, j] for i in range(10) for j in range(i + 1, 10) if [i, j] not in pairs.tolist())
    want_b, want_c = authors_higher(x, pairs.numpy(), 5.0, 20.0, 50.0, 7)
    np.testing.assert_allclose(b.numpy(), want_b, atol=1e-9)
    np.testing.assert_allclose(c.numpy(), want_c, atol=1e-9)
    np.testing.assert_allclose(np.diag(want_b), 0.0, atol=1e-9)
    # scoring: x B + z C, z_p = x_i x_j
    model = fitted("ease-higher", x, pairs=6, lam_b=5.0, lam_c=20.0, rho=50.0, rounds=7)
    r = x.toarray()
    z = r[:, pairs[:, 0]] * r[:, pairs[:, 1]]
    np.testing.assert_allclose(scores_of(model, x), r @ want_b + z @ want_c, atol=1e-4)


def test_higher_order_ease_without_pairs_weight_is_ease():
    x = random_binary(seed=8)
    model = fitted("ease-higher", x, pairs=3, lam_c=1e12, rounds=3, lam_b=50.0)
    np.testing.assert_allclose(model.weight.numpy(), ease_weights(x, 50.0).numpy(), atol=1e-5)
    assert model.pair_weight.abs().max() < 1e-6


# ---- VASP

def test_vasp_views_are_the_row_and_its_two_halves():
    from aebench.bench.evaluation.evaluate import user_scores  # noqa: F401 (import check)
    from aebench.models.base import Batch
    from aebench.models.sparse_ops import CSRBatch

    x = random_binary(users=6, items=10, density=0.5, seed=9)
    model, cfg = models.create("vasp", 6, 10, hidden=8, latent=4, encoder_layers=2,
                               decoder_layers=2)
    crow = torch.from_numpy(x.indptr.astype(np.int64))
    cols = torch.from_numpy(x.indices.astype(np.int64))
    batch = Batch(torch.arange(6), CSRBatch(crow, cols, 10), torch.ones(x.nnz))
    inputs, targets, pattern = model._views(batch)
    # the entries the shallow path reads are the inputs' nonzero entries, row by row
    dense = torch.zeros_like(inputs)
    dense[torch.repeat_interleave(torch.arange(18), pattern.crow.diff()), pattern.cols] = 1.0
    torch.testing.assert_close(dense, inputs)
    assert pattern.t_perm is not None  # B's gradient gathers, column by column
    full = torch.from_numpy(x.toarray())
    a, b = inputs[6:12], inputs[12:]
    torch.testing.assert_close(inputs[:6], full)
    torch.testing.assert_close(targets[:6], full)
    torch.testing.assert_close(a + b, full)  # the halves partition each row
    torch.testing.assert_close(targets[6:12], b)
    torch.testing.assert_close(targets[12:], a)
    assert (a.sum(1) == torch.div(full.sum(1), 2, rounding_mode="floor")).all()
    # the shallow path never learns the identity: its diagonal stays zero through a step
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model.train()
    model.loss(batch).backward()
    opt.step()
    assert (model.shallow.diagonal() == 0).all()


def test_vasp_shallow_product_equals_autograd_through_the_zeroed_diagonal():
    """X @ (B - diag(B)) and B's gradient as autograd takes them through the dense copy, from
    X's pattern with and without its column view, on binary rows with an empty row and a
    row holding a diagonal column; B's gradient has an exactly zero diagonal (Adam would
    move it by lr on any residue)."""
    from aebench.models.sparse_ops import CSRBatch
    from aebench.models.vasp import _ZeroDiagonalProduct

    x = torch.from_numpy(random_binary(users=6, items=9, density=0.4, seed=4).toarray()).double()
    x[2] = 0.0
    x[3, 3] = 1.0
    gen = torch.Generator().manual_seed(5)
    b = torch.randn(9, 9, dtype=torch.float64, generator=gen, requires_grad=True)
    g = torch.randn(6, 9, dtype=torch.float64, generator=gen)
    want = x @ (b - torch.diag_embed(b.diagonal()))
    (wb,) = torch.autograd.grad(want, (b,), g)
    pattern = CSRBatch.of_rows(*x.nonzero(as_tuple=True), 6, 9)
    for p in (pattern, pattern.with_column_view()):
        got = _ZeroDiagonalProduct.apply(b, p)
        (db,) = torch.autograd.grad(got, (b,), g)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(db, wb)
        assert (db.diagonal() == 0).all() and (got[2] == 0).all()


def test_vasp_focal_loss_matches_its_formula_on_fixed_logits():
    x = random_binary(users=4, items=6, density=0.5, seed=10)
    model, _ = models.create("vasp", 4, 6, hidden=4, latent=2, encoder_layers=1,
                             decoder_layers=1, halves=False)
    model.eval()  # z = mu: deterministic
    from aebench.models.base import Batch
    from aebench.models.sparse_ops import CSRBatch

    batch = Batch(torch.arange(4), CSRBatch(torch.from_numpy(x.indptr.astype(np.int64)),
                                            torch.from_numpy(x.indices.astype(np.int64)), 6),
                  torch.ones(x.nnz))
    t = torch.from_numpy(x.toarray()).double()
    r, lat, s, kl = model._logits(t.float(), batch.pattern)
    y = (torch.sigmoid(r) * torch.sigmoid(lat) * torch.sigmoid(s)).double().clamp(1e-7, 1 - 1e-7)
    ce = -(t * y.log() + (1 - t) * (1 - y).log())
    p_t = t * y + (1 - t) * (1 - y)
    alpha = t * 0.25 + (1 - t) * 0.75
    want = (alpha * (1 - p_t) ** 2 * ce).sum(1).mean() + kl.double()
    assert model.loss(batch).item() == pytest.approx(want.item(), rel=1e-4)
    torch.testing.assert_close(model.score(batch).double(), y, atol=1e-6, rtol=1e-4)


# ---- DiffRec

def test_diffrec_forward_noising_is_the_chain_of_its_steps():
    """q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) is what t steps of
    x_s = sqrt(1 - beta_s) x_{s-1} + sqrt(beta_s) eps give: both moments, by hand from the
    betas and by simulating the chain."""
    from aebench.models import diffrec

    betas = diffrec.linear_var_betas(6, 0.5, 0.1, 0.4)
    sched = diffrec.Schedule(betas)
    abar = np.cumprod(1 - betas)
    np.testing.assert_allclose(sched.abar.numpy(), abar)
    # linear-var: 1 - abar_t / (1 - beta_1) * (1 - scale*min) runs linearly to scale * max
    np.testing.assert_allclose(1 - abar[1:] / (1 - betas[0]) * (1 - 0.05),
                               np.linspace(0.05, 0.2, 6)[1:], rtol=1e-6)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.full((200_000, 1), 0.7, dtype=torch.float64)
    x = x0.clone()
    for s in range(4):
        x = math.sqrt(1 - betas[s]) * x + math.sqrt(betas[s]) * torch.randn(x.shape,
                                                                           generator=gen,
                                                                           dtype=torch.float64)
    t = torch.full((len(x0),), 3)
    direct = sched.q_sample(x0.float(), t, torch.randn(x0.shape, generator=gen).float())
    for sample in (x, direct.double()):
        assert sample.mean().item() == pytest.approx(math.sqrt(abar[3]) * 0.7, abs=3e-3)
        assert sample.var().item() == pytest.approx(1 - abar[3], rel=2e-2)


def test_diffrec_posterior_is_the_gaussian_conditional():
    """q(x_{t-1} | x_t, x_0) from the joint Gaussian of (x_{t-1}, x_t) given x_0, conditioned
    by the textbook formula, against the schedule's coefficients and variance."""
    from aebench.models import diffrec

    betas = diffrec.linear_var_betas(5, 1.0, 0.05, 0.3)
    sched = diffrec.Schedule(betas)
    for t in range(1, 5):
        abar_prev = float(np.prod(1 - betas[:t]))
        alpha = 1 - betas[t]
        # x_{t-1} = sqrt(abar_prev) x0 + sqrt(1 - abar_prev) e1; x_t = sqrt(alpha) x_{t-1} + ...
        var_prev = 1 - abar_prev
        cov = math.sqrt(alpha) * var_prev
        var_t = alpha * var_prev + betas[t]
        # E[x_{t-1} | x_t] = m_prev + cov / var_t (x_t - m_t), m_t = sqrt(alpha) m_prev
        k = cov / var_t
        coef_xt = k
        coef_x0 = math.sqrt(abar_prev) * (1 - k * math.sqrt(alpha))
        assert sched.coef2[t].item() == pytest.approx(coef_xt, rel=1e-10)
        assert sched.coef1[t].item() == pytest.approx(coef_x0, rel=1e-10)
        assert sched.posterior_variance[t].item() == pytest.approx(var_prev - k * cov,
                                                                   rel=1e-10)


def test_diffrec_trains_and_scores_through_the_contract():
    x = random_binary(users=30, items=12, density=0.4, seed=11)
    from aebench.models.base import Batch
    from aebench.models.sparse_ops import CSRBatch

    model, _ = models.create("diffrec", 30, 12, dims=(8,), steps=4, noise_scale=0.5,
                             noise_min=0.1, noise_max=0.4)
    batch = Batch(torch.arange(30), CSRBatch(torch.from_numpy(x.indptr.astype(np.int64)),
                                             torch.from_numpy(x.indices.astype(np.int64)), 12),
                  torch.ones(x.nnz))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(12):  # 30 draws a step: every step's history fills, then importance
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    assert (model.lt_count == 10).all()
    t, pt = model.sample_steps(1000, torch.device("cpu"))
    assert pt.min() > 0 and set(t.tolist()) <= set(range(4))
    model.eval()
    assert np.isfinite(scores_of(model, x)).all()
