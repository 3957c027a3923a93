"""Each model family on small synthetic data, checked against a direct computation."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from aebench.bench.engines.train import fit
from aebench.bench.evaluation.evaluate import evaluate, predict_at, user_scores
from aebench.models.base import Batch
from aebench.models.cdae import sample_negatives
from aebench.models.sparse_ops import CSRBatch

from aebench import datasets, models

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def split():
    return datasets.make_split(datasets.load("synthetic-60x40"), "random-90-10", seed=1)


def batch_of(x: sp.csr_matrix, progress: float = 0.0) -> Batch:
    x = x.tocsr()
    return Batch(torch.arange(x.shape[0]),
                 CSRBatch(torch.as_tensor(x.indptr.astype(np.int64)),
                          torch.as_tensor(x.indices.astype(np.int64)), x.shape[1]),
                 torch.as_tensor(x.data, dtype=torch.float32), progress=progress)


@pytest.mark.parametrize("name", models.list())
def test_every_variant_scores_full_width_rows(name, split):
    cfg = models.config(name)
    x = cfg.view(split.train)
    torch.manual_seed(0)
    model = models.get(name).make(x.shape[0], x.shape[1], cfg)
    fit(model, x, cfg, "batched", CPU, 0, epochs=2)
    model.eval()
    with torch.no_grad():
        out = model.score(batch_of(x[:7]))
    assert out.shape == (7, x.shape[1]) and torch.isfinite(out).all()
    blocks = list(user_scores(model, cfg, split.train, CPU, batch_users=16))
    assert sum(b.shape[0] for _, b in blocks) == split.n_users
    assert all(b.shape[1] == split.n_items for _, b in blocks)


def test_ease_matches_a_direct_float64_solve(split):
    lam = 7.0
    model, cfg = models.create("ease", split.n_users, split.n_items, lam=lam)
    x = cfg.view(split.train)
    model.fit(x)
    dense = x.toarray().astype(np.float64)
    p = np.linalg.inv(dense.T @ dense + lam * np.eye(split.n_items))
    want = np.eye(split.n_items) - p / np.diag(p)  # B = I - P diag(1 / diag P)
    np.testing.assert_allclose(model.weight.numpy(), want, atol=2e-5)
    assert np.all(np.diag(model.weight.numpy()) == 0)
    with torch.no_grad():
        got = model.score(batch_of(x)).numpy()
    np.testing.assert_allclose(got, dense @ want, atol=1e-4)


def test_bias_converges_to_the_regularised_least_squares_solution(split):
    """The ALS sweeps against the normal equations of sum (r - mu - b_u - b_i)^2 +
    reg_user sum b_u^2 + reg_item sum b_i^2, solved directly."""
    model, cfg = models.create("bias", split.n_users, split.n_items, reg_user=3.0,
                               reg_item=4.0, iterations=300)
    x = split.train.tocoo()
    model.fit(split.train)
    mu = x.data.mean()
    n_u, n_i = split.n_users, split.n_items
    a = np.zeros((x.nnz, n_u + n_i))
    a[np.arange(x.nnz), x.row] = 1
    a[np.arange(x.nnz), n_u + x.col] = 1
    reg = np.diag(np.r_[np.full(n_u, 3.0), np.full(n_i, 4.0)])
    want = np.linalg.solve(a.T @ a + reg, a.T @ (x.data - mu))
    np.testing.assert_allclose(model.user_bias.numpy(), want[:n_u], atol=1e-6)
    np.testing.assert_allclose(model.item_bias.numpy(), want[n_u:], atol=1e-6)
    assert float(model.mean) == pytest.approx(mu)


def test_popularity_ranks_by_training_count(split):
    model, cfg = models.create("popularity", split.n_users, split.n_items)
    x = cfg.view(split.train)
    model.fit(x)
    with torch.no_grad():
        scores = model.score(batch_of(x[:3])).numpy()
    counts = np.bincount(split.train.indices, minlength=split.n_items)
    assert (scores == counts).all()


def test_item_based_autorec_predicts_from_the_item_row(split):
    """I-AutoRec's prediction for (u, i) is entry u of item i's reconstruction, computed here
    densely from the transposed training matrix."""
    torch.manual_seed(0)
    model, cfg = models.create("autorec-i", split.n_items, split.n_users, hidden=(8,))
    assert cfg.rows == "item"
    with torch.no_grad():
        model.layers[-1].weight.normal_(0, 1.0)
        dense_items = torch.tensor(split.train.T.toarray())       # items x users
        recon = model(dense_items).numpy()                        # items x users
    got = predict_at(model, cfg, split.train, split.test, CPU)
    test = split.test.tocoo()
    np.testing.assert_allclose(got, recon[test.col, test.row], atol=1e-5)
    # full-width user scores are the reconstruction's columns
    (a, block), = list(user_scores(model, cfg, split.train, CPU, batch_users=10**6))
    np.testing.assert_allclose(block.numpy(), recon.T, atol=1e-5)


def test_autorec_loss_is_the_papers_objective(split):
    """(SSE on observed + l2/2 sum ||W||^2) / n_observed, biases unpenalised."""
    torch.manual_seed(0)
    model, cfg = models.create("autorec-u", split.n_users, split.n_items, hidden=(5,), l2=3.0)
    b = batch_of(split.train)
    model.eval()
    with torch.no_grad():
        dense = torch.tensor(split.train.toarray())
        err = (model(dense) - dense)[dense > 0]
        penalty = sum(layer.weight.square().sum() for layer in model.layers)
        want = (err.square().sum() + 1.5 * penalty) / err.numel()
        assert float(model.loss(b)) == pytest.approx(float(want), rel=1e-5)


def test_mf_loss_equals_the_per_rating_formula(split):
    torch.manual_seed(0)
    model, cfg = models.create("mf", split.n_users, split.n_items, reg=0.1, dim=6)
    model.setup(split.train)
    x = split.train[:25]
    b = batch_of(x)
    got = model.loss(b)
    users = b.rows[b.entry_rows()]
    cols = b.pattern.cols
    p, q = model.user[users], model.item[cols]
    bu, bi = model.user_bias[users], model.item_bias[cols]
    err = model.mean + bu + bi + (p * q).sum(1) - b.values
    want = (err.square() + 0.1 * (p.square().sum(1) + q.square().sum(1) + bu.square()
                                  + bi.square())).mean()
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    for g1, g2 in zip(torch.autograd.grad(got, [model.user, model.item, model.item_bias]),
                      torch.autograd.grad(want, [model.user, model.item, model.item_bias])):
        torch.testing.assert_close(g1, g2)


def test_mult_likelihood_is_the_multinomial_log_likelihood(split):
    torch.manual_seed(0)
    model, cfg = models.create("mult-dae", split.n_users, split.n_items, hidden=(6, 3), l2=0.0)
    x = cfg.view(split.train)
    model.eval()  # no dropout: the loss is deterministic
    b = batch_of(x)
    with torch.no_grad():
        logits = model.score(b)
        dense = torch.tensor(x.toarray())
        want = -(torch.log_softmax(logits, 1) * dense).sum(1).mean()
        assert float(model.loss(b)) == pytest.approx(float(want), rel=1e-5)


def test_vae_kl_weight_is_annealed_linearly_to_its_cap(split):
    """With the same noise, loss(progress) = NLL + beta(progress) KL, beta rising linearly
    from 0 to `beta_cap` over `anneal_epochs` epochs, then flat."""
    torch.manual_seed(0)
    model, cfg = models.create("mult-vae", split.n_users, split.n_items, hidden=(6, 3),
                               beta_cap=0.3, anneal_epochs=10.0)
    x = cfg.view(split.train)

    def loss_at(progress):
        torch.manual_seed(5)
        with torch.no_grad():
            return float(model.loss(batch_of(x, progress)))

    base = loss_at(0.0)
    kl = (loss_at(10.0) - base) / 0.3
    assert kl > 0
    assert loss_at(5.0) - base == pytest.approx(0.15 * kl, rel=1e-4)
    assert loss_at(2.5) - base == pytest.approx(0.075 * kl, rel=1e-4)
    assert loss_at(40.0) == pytest.approx(loss_at(10.0), rel=1e-6)


def test_vae_samples_z_at_eps_scale_times_sigma_around_mu(split):
    """Training draws z = mu + eps_scale * eps * sigma: at scale 0 the training loss is the
    loss at z = mu (what scoring reads), at 0.01 (RecBole 1.2.1's draw) it is near it, at 1
    (the paper's) it is not."""
    def train_loss(scale, seed):
        torch.manual_seed(0)
        model, cfg = models.create("mult-vae", split.n_users, split.n_items, hidden=(6, 3),
                                   dropout=0.0, eps_scale=scale)
        torch.manual_seed(seed)
        with torch.no_grad():
            return float(model.loss(batch_of(cfg.view(split.train), 0.0)))

    at_mu = train_loss(0.0, 1)
    assert train_loss(0.0, 2) == at_mu  # no noise left: the draw does not matter
    near, far = abs(train_loss(0.01, 1) - at_mu), abs(train_loss(1.0, 1) - at_mu)
    assert 0 < near < far / 20


def test_negatives_never_come_from_observed_items_and_are_uniform():
    g = torch.Generator().manual_seed(0)
    dense = torch.rand(40, 25, generator=g) < torch.linspace(0.0, 0.9, 40)[:, None]
    dense[5] = True   # a user who has every item: no negative can be drawn
    dense[6] = False  # a user without items
    csr = dense.float().to_sparse_csr()
    pattern = CSRBatch(csr.crow_indices(), csr.col_indices(), 25)
    rows, cols = sample_negatives(pattern, torch.full((40,), 600), g)
    assert not dense[rows, cols].any()
    counts = torch.bincount(rows, minlength=40)
    assert counts[5] == 0 and (counts[torch.arange(40) != 5] == 600).all()
    free = (~dense[30]).nonzero().squeeze(1)
    hist = torch.bincount(cols[rows == 30], minlength=25)[free].double()
    chi2 = float(((hist - hist.mean()) ** 2 / hist.mean()).sum())
    assert chi2 < 3 * (len(free) - 1)  # uniform over the free items (df = free - 1)


def test_negatives_are_the_draws_of_listing_each_rows_free_columns():
    """The cumulative-count lookup picks exactly the column that listing a row's free columns
    in order and taking the j-th would, draw for draw (same generator, same draws)."""
    def listed(pattern, per_row, generator):
        crow, cols, n = pattern.crow, pattern.cols, pattern.n_cols
        counts = crow.diff()
        free = n - counts
        per_row = torch.where(free > 0, per_row, torch.zeros_like(per_row))
        rows = torch.repeat_interleave(torch.arange(counts.numel()), per_row)
        mask = torch.ones(counts.numel(), n, dtype=torch.bool)
        mask[torch.repeat_interleave(torch.arange(counts.numel()), counts), cols] = False
        free_cols = [mask[r].nonzero().squeeze(1) for r in range(counts.numel())]
        free_r = free[rows]
        j = torch.minimum((torch.rand(rows.numel(), generator=generator) * free_r).long(),
                          free_r - 1)
        return rows, torch.stack([free_cols[r][k] for r, k in zip(rows.tolist(), j.tolist())])

    for trial, (users, items) in enumerate([(40, 25), (64, 300), (3, 1), (7, 2)] * 2):
        g = torch.Generator().manual_seed(trial)
        dense = torch.rand(users, items, generator=g) < torch.rand(users, 1, generator=g)
        dense[0], dense[-1] = True, False  # a row with nothing free, a row with no entry
        csr = dense.float().to_sparse_csr()
        pattern = CSRBatch(csr.crow_indices(), csr.col_indices(), items)
        per_row = 3 * csr.crow_indices().diff() + 1
        want = listed(pattern, per_row, torch.Generator().manual_seed(trial))
        got = sample_negatives(pattern, per_row, torch.Generator().manual_seed(trial))
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]), trial


def test_cdae_loss_uses_the_users_own_input_node(split):
    torch.manual_seed(0)
    model, cfg = models.create("cdae", split.n_users, split.n_items, hidden=4, corruption=0.0)
    x = cfg.view(split.train)
    model.eval()
    b = batch_of(x[:5])
    with torch.no_grad():
        a = model.score(b)
        model.user[2] += 1.0
        c = model.score(b)
    assert torch.equal(a[[0, 1, 3, 4]], c[[0, 1, 3, 4]]) and not torch.equal(a[2], c[2])


@pytest.mark.parametrize("name", ["ease", "popularity", "mult-vae", "cdae"])
def test_ranking_only_models_have_no_rating_errors(name, split):
    """The contract: a rating metric asked of a ranking-only model is absent ("—" in the
    tables), not a crash; its ranking metrics are there."""
    cfg = models.config(name)
    x = cfg.view(split.train)
    model = models.get(name).make(x.shape[0], x.shape[1], cfg)
    fit(model, x, cfg, "batched", CPU, 0, epochs=1)
    metrics, per_user = evaluate(model, cfg, split, CPU)
    assert not cfg.rates
    assert "rmse" not in metrics and "legacy_topk_acc@10" not in metrics
    assert "test_sse" not in per_user
    assert math.isfinite(metrics["ndcg@10"]) and len(per_user["ndcg@10"]) > 0
