"""The non-neural reference rankers and RecVAE, each against a direct computation on a tiny
matrix; the contract's phases (an epoch as alternating parameter groups)."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from aebench.bench.engines.batched import BatchedEngine
from aebench.bench.engines.train import fit
from aebench.models.base import Batch, Phase, Recipe, Recommender
from aebench.models.item_item import keep_top_k
from aebench.models.recvae import MIXTURE, WIDE_LOGVAR, composite_log_prior
from aebench.models.sparse_ops import CSRBatch
from torch import nn

from aebench import datasets, models

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def split():
    return datasets.make_split(datasets.load("synthetic-60x40"), "random-90-10", seed=1)


def batch_of(x: sp.csr_matrix, phase: str = "") -> Batch:
    x = x.tocsr()
    return Batch(torch.arange(x.shape[0]),
                 CSRBatch(torch.as_tensor(x.indptr.astype(np.int64)),
                          torch.as_tensor(x.indices.astype(np.int64)), x.shape[1]),
                 torch.as_tensor(x.data, dtype=torch.float32), phase=phase)


def fitted(name, split, **overrides):
    torch.manual_seed(0)
    model, cfg = models.create(name, split.n_users, split.n_items, **overrides)
    x = cfg.view(split.train)
    model.fit(x)
    return model, x, x.toarray().astype(np.float64)


def scores(model, x):
    model.eval()
    with torch.no_grad():
        return model.score(batch_of(x)).numpy().astype(np.float64)


def test_keep_top_k_keeps_the_k_largest_of_each_column_or_row():
    w = torch.tensor([[5.0, 1.0, 0.5], [2.0, 4.0, 0.7], [3.0, 0.0, 0.9]])
    torch.testing.assert_close(keep_top_k(w, 2, 0),
                               torch.tensor([[5.0, 1.0, 0.0], [0.0, 4.0, 0.7], [3.0, 0.0, 0.9]]))
    torch.testing.assert_close(keep_top_k(w, 1, 1),
                               torch.tensor([[5.0, 0.0, 0.0], [0.0, 4.0, 0.0], [3.0, 0.0, 0.0]]))
    assert torch.equal(keep_top_k(w, 0, 0), w) and torch.equal(keep_top_k(w, 3, 0), w)


def test_keep_top_k_gives_ties_at_the_cut_to_the_lower_index():
    # a column of 3, 2, 2, 2, 1: the k-th value 2 is held by items 1, 2 and 3
    w = torch.tensor([[3.0], [2.0], [2.0], [2.0], [1.0]])
    assert keep_top_k(w, 2, 0).ravel().tolist() == [3.0, 2.0, 0.0, 0.0, 0.0]
    assert keep_top_k(w, 3, 0).ravel().tolist() == [3.0, 2.0, 2.0, 0.0, 0.0]
    assert keep_top_k(w.T, 2, 1).ravel().tolist() == [3.0, 2.0, 0.0, 0.0, 0.0]
    # all tied: the first k
    assert keep_top_k(torch.full((1, 4), -1.0), 2, 1).ravel().tolist() == [-1.0, -1.0, 0.0, 0.0]


def test_keep_top_k_is_a_stable_descending_sort_cut_at_k(monkeypatch):
    """The selection keeps what the first k of a stable descending sort keep, on integer
    matrices full of ties, a few columns (or rows) per block."""
    import aebench.models.item_item as item_item
    g = torch.Generator().manual_seed(0)
    for trial in range(60):
        n, m = torch.randint(2, 30, (2,), generator=g).tolist()
        w = torch.randint(-3, 4, (n, m), generator=g).float()
        monkeypatch.setattr(item_item, "TOP_K_BLOCK", trial % 5 + 1)
        for dim in (0, 1):
            k = int(torch.randint(1, w.shape[dim], (1,), generator=g)) if w.shape[dim] > 1 else 1
            first = torch.sort(w, dim=dim, descending=True, stable=True).indices.narrow(dim, 0, k)
            kept = torch.zeros_like(w, dtype=torch.bool).scatter_(dim, first, True)
            want = torch.where(kept, w, torch.zeros_like(w))
            assert torch.equal(keep_top_k(w, k, dim), want), (trial, dim, k)


def test_itemknn_is_shrunk_cosine_with_top_k_neighbours(split):
    model, x, dense = fitted("itemknn", split, topk=5, shrink=3.0)
    norms = np.sqrt((dense ** 2).sum(0))
    sim = dense.T @ dense / (norms[:, None] * norms[None, :] + 3.0 + 1e-6)
    np.fill_diagonal(sim, 0.0)
    want = np.zeros_like(sim)
    for j in range(sim.shape[1]):  # the 5 most similar items of each target item j
        top = np.argsort(-sim[:, j], kind="stable")[:5]
        want[top, j] = sim[top, j]
    np.testing.assert_allclose(model.weight.numpy(), want, atol=1e-6)
    np.testing.assert_allclose(scores(model, x), dense @ want, atol=1e-5)


def test_rp3beta_weights_are_the_penalised_two_step_walk(split):
    model, x, dense = fitted("rp3beta", split, alpha=0.8, beta=0.3, topk=6, normalize=True)
    p_ui = dense / dense.sum(1, keepdims=True).clip(1)
    p_iu = (dense / dense.sum(0, keepdims=True).clip(1)).T
    w = (p_iu ** 0.8) @ (p_ui ** 0.8)
    pop = dense.sum(0)
    w = w * np.where(pop > 0, pop, 1.0) ** -0.3
    np.fill_diagonal(w, 0.0)
    want = np.zeros_like(w)
    for i in range(w.shape[0]):  # the 6 strongest transitions out of each item i
        top = np.argsort(-w[i], kind="stable")[:6]
        want[i, top] = w[i, top]
    want /= want.sum(1, keepdims=True).clip(1e-12)
    np.testing.assert_allclose(model.weight.numpy(), want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(scores(model, x), dense @ want, atol=1e-5)


def test_puresvd_scores_project_rows_on_the_top_singular_vectors(split):
    model, x, dense = fitted("puresvd", split, factors=6, n_iter=20)
    _, _, vt = np.linalg.svd(dense, full_matrices=False)
    v = vt[:6].T
    np.testing.assert_allclose(scores(model, x), dense @ v @ v.T, atol=1e-4)


def test_slim_solves_scikit_learns_elastic_net_per_item(split):
    from sklearn.linear_model import ElasticNet

    alpha, l1_ratio = 0.01, 0.2
    model, x, dense = fitted("slim", split, alpha=alpha, l1_ratio=l1_ratio, topk=0, tol=1e-10,
                             max_iter=10_000)
    got = model.weight.numpy()
    assert np.all(np.diag(got) == 0) and np.all(got >= 0)
    want = np.zeros_like(got)
    for j in range(dense.shape[1]):
        others = dense.copy()
        others[:, j] = 0.0  # Dacrema et al.'s trick: the target's own column is removed
        enet = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, positive=True, fit_intercept=False,
                          tol=1e-12, max_iter=100_000).fit(others, dense[:, j])
        want[:, j] = enet.coef_
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert (want > 0).sum() > dense.shape[1]  # a test with weights to find


def test_slims_residual_and_covariance_gradients_solve_the_same_problem(split):
    """Weak regularisation: gradients from the residual from the first coordinate on
    (switch 0) and from the Gram matrix throughout take the same steps, and reach
    scikit-learn's W."""
    from aebench.models.slim import slim_weights
    from sklearn.linear_model import ElasticNet

    alpha, l1_ratio = 1e-3, 1e-3
    x = models.config("slim").view(split.train)
    dense = x.toarray().astype(np.float64)
    resid, cov = (slim_weights(x, alpha, l1_ratio, 0, tol=1e-10, max_iter=10_000,
                               switch=s).numpy() for s in (0, 10**6))
    np.testing.assert_allclose(resid, cov, atol=1e-6)
    want = np.zeros_like(resid)
    for j in range(dense.shape[1]):
        others = dense.copy()
        others[:, j] = 0.0
        want[:, j] = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, positive=True,
                                fit_intercept=False, tol=1e-12, max_iter=100_000
                                ).fit(others, dense[:, j]).coef_
    np.testing.assert_allclose(resid, want, atol=2e-5)
    assert (want > 0).sum() > 3 * dense.shape[1]


def test_slim_keeps_its_top_k_weights_per_item(split):
    full, _, _ = fitted("slim", split, alpha=0.001, l1_ratio=0.1, topk=0)
    top, _, _ = fitted("slim", split, alpha=0.001, l1_ratio=0.1, topk=3)
    assert ((top.weight > 0).sum(0) <= 3).all()
    torch.testing.assert_close(top.weight, keep_top_k(full.weight, 3, 0))


def test_ials_fold_in_is_the_direct_least_squares_solve(split):
    """The scores of a user are p_u Y^T with p_u minimising
    sum_i c_ui (p_ui - p_u . y_i)^2 + lambda |p_u|^2, c = alpha on observed pairs, 1 elsewhere,
    the item factors fixed: solved here in float64 from the normal equations."""
    lam, alpha = 3.0, 4.0
    model, x, dense = fitted("ials", split, factors=5, regularization=lam, alpha=alpha,
                             iterations=4)
    y = model.items.numpy().astype(np.float64)
    want = np.empty((dense.shape[0], y.shape[0]))
    for u, row in enumerate(dense):
        c = np.where(row > 0, alpha, 1.0)
        a = (y.T * c) @ y + lam * np.eye(y.shape[1])
        p = np.linalg.solve(a, (y.T * c) @ (row > 0))
        want[u] = y @ p
    np.testing.assert_allclose(scores(model, x), want, atol=2e-4)
    # a row the model never trained on is scored from that row alone
    new = sp.csr_matrix(dense[:1] * 0 + (np.arange(dense.shape[1]) % 7 == 0))
    assert np.isfinite(scores(model, new)).all()


def test_ials_learns_the_training_interactions(split):
    model, x, dense = fitted("ials", split, factors=8, regularization=0.1, alpha=10.0)
    s = scores(model, x)
    assert s[dense > 0].mean() > s[dense == 0].mean() + 0.3


def test_recvae_composite_prior_is_the_mixture_density():
    z = torch.tensor([[0.3, -1.2]])
    mu, logvar = torch.tensor([[0.1, -1.0]]), torch.tensor([[-0.5, 0.2]])

    def normal(x, m, var):
        return math.exp(-(x - m) ** 2 / (2 * var)) / math.sqrt(2 * math.pi * var)

    got = composite_log_prior(z, mu, logvar)[0]
    for d in range(2):
        x = float(z[0, d])
        dens = (MIXTURE[0] * normal(x, 0.0, 1.0)
                + MIXTURE[1] * normal(x, float(mu[0, d]), math.exp(float(logvar[0, d])))
                + MIXTURE[2] * normal(x, 0.0, math.exp(WIDE_LOGVAR)))
        assert float(got[d]) == pytest.approx(math.log(dens), rel=1e-6)


def test_recvae_prior_refreshes_to_the_encoder_after_its_phase(split):
    torch.manual_seed(0)
    model, cfg = models.create("recvae", split.n_users, split.n_items, hidden=8, latent=3)
    enc, old = model.encoder.state_dict(), model.old.state_dict()
    assert not torch.equal(enc["mu.weight"], old["mu.weight"])  # its own draw at the start
    model.end_phase("decoder")
    assert not torch.equal(model.encoder.mu.weight, model.old.mu.weight)
    model.end_phase("encoder")
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(v, model.old.state_dict()[k])
    assert not any(p.requires_grad for p in model.old.parameters())


def test_recvae_old_posterior_is_cached_until_the_next_refresh(split):
    torch.manual_seed(0)
    model, cfg = models.create("recvae", split.n_users, split.n_items, hidden=8, latent=3)
    b = batch_of(cfg.view(split.train)[:9])
    with torch.no_grad():
        first = model._old(b)
        direct = model.old(b, 0.0)
        torch.testing.assert_close(first, direct)
        model.encoder.mu.weight.add_(1.0)
        model.end_phase("encoder")  # q_old <- the moved encoder
        torch.testing.assert_close(model._old(b), model.old(b, 0.0))
        assert not torch.equal(model._old(b)[0], first[0])


def test_recvae_decoder_phase_loss_is_the_multinomial_likelihood(split):
    torch.manual_seed(0)
    model, cfg = models.create("recvae", split.n_users, split.n_items, hidden=8, latent=3)
    x = cfg.view(split.train)
    b = batch_of(x, phase="decoder")
    torch.manual_seed(3)
    got = model.loss(b)
    torch.manual_seed(3)
    with torch.no_grad():
        mu, logvar = model.encoder(b, 0.0)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        want = -(torch.log_softmax(model.decoder(z), 1) * torch.tensor(x.toarray())).sum(1).mean()
    assert float(got.detach()) == pytest.approx(float(want), rel=1e-5)


class TwoPhase(Recommender):
    """A toy with two parameter groups trained in alternating phases."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(3, 4)
        self.seen, self.after = [], {}

    def phases(self):
        return (Phase("first", ("a.",), 2), Phase("second", ("b.",), 1))

    def end_phase(self, name):
        self.seen.append(("end", name))
        self.after[name] = (self.a.weight.detach().clone(), self.b.weight.detach().clone())

    def loss(self, batch):
        self.seen.append(batch.phase)
        grads = (self.a.weight.requires_grad, self.b.weight.requires_grad)
        assert grads == {"first": (True, False), "second": (False, True)}[batch.phase]
        return self.b(torch.tanh(self.a(batch.dense()))).square().mean()


def test_each_phase_steps_only_its_parameters_in_order():
    torch.manual_seed(0)
    model = TwoPhase()
    x = sp.random(10, 4, density=0.5, format="csr", random_state=0)
    engine = BatchedEngine(model, x, Recipe(optimizer="adam", lr=0.1, weight_decay=0.0,
                                            batch_size=0), CPU, 0)
    assert len(engine.opts) == 2
    a0, b0 = model.a.weight.detach().clone(), model.b.weight.detach().clone()
    engine.epoch()
    assert model.seen == ["first", "first", ("end", "first"), "second", ("end", "second")]
    a1, b1 = model.after["first"]
    a2, b2 = model.after["second"]
    assert not torch.equal(a1, a0) and torch.equal(b1, b0)   # the first phase moved a only
    assert torch.equal(a2, a1) and not torch.equal(b2, b1)   # the second b only
    assert all(p.requires_grad for p in model.parameters())  # nothing stays frozen


def test_recvae_trains_and_ranks_its_training_items_first(split):
    torch.manual_seed(0)
    model, cfg = models.create("recvae", split.n_users, split.n_items, hidden=16, latent=8,
                               **{"batched.lr": 0.01, "batched.batch_size": 16})
    x = cfg.view(split.train)
    result = fit(model, x, cfg, "batched", CPU, 0, epochs=15)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    s = scores(model, x)
    assert s[x.toarray() > 0].mean() > s[x.toarray() == 0].mean()


def test_the_gram_matrix_over_blocks_of_users_is_the_whole_product(monkeypatch):
    """`gram` never holds a dense users x items matrix larger than its block: over blocks of
    3 users, filling 5 columns at a time, it gives X^T X exactly (binary data) and to float32
    rounding (ratings)."""
    from aebench.models import item_item
    from aebench.models.item_item import gram

    monkeypatch.setattr(item_item, "GRAM_COLUMNS", 5)
    x = sp.random(50, 12, density=0.3, format="csr", random_state=0, dtype=np.float32)
    x.data = np.round(x.data * 4 + 1)
    binary = x.copy()
    binary.data[:] = 1
    want = (binary.T @ binary).toarray()
    assert torch.equal(gram(binary, block_bytes=3 * 4 * 12), torch.from_numpy(want))
    assert torch.equal(gram(binary), torch.from_numpy(want))
    ratings = gram(x, torch.float64, block_bytes=3 * 4 * 12).numpy()
    assert np.allclose(ratings, (x.T @ x).toarray(), rtol=1e-6)
    assert gram(sp.csr_matrix((0, 4), dtype=np.float32)).abs().sum() == 0


@pytest.mark.parametrize("threads", [1, 2])
def test_the_gram_matrix_by_pairs_of_entries_is_the_dense_paths_product(monkeypatch, threads):
    """Both ways `gram` has give X^T X: by pairs of each user's entries (a band of rows a
    task, bands a few rows wide so that many tasks split the rows, indices unsorted, empty
    users and items) exactly on binary data and to float64 rounding on ratings, and the dense
    path the same; the work count picks pairs on sparse data and the dense path on rows that
    hold most columns."""
    from aebench.models import item_item
    from aebench.models.item_item import gram

    monkeypatch.setattr(item_item, "PAIR_ROWS", 3)
    monkeypatch.setattr(item_item, "PAIR_TASKS", 7)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = sp.random(80, 30, density=0.15, format="csr", random_state=1, dtype=np.float32)
        x.data = np.round(x.data * 9 + 1) / 2            # half stars
        keep = np.ones(x.shape, bool)
        keep[5] = keep[:, 7] = False                      # an empty user, an empty item
        x = x.multiply(sp.csr_matrix(keep.astype(np.float32))).tocsr()
        x.eliminate_zeros()
        x.sort_indices()
        assert x.getnnz(axis=1)[5] == 0 and x.getnnz(axis=0)[7] == 0
        for r in range(x.shape[0]):                       # each row's entries reversed
            s, e = x.indptr[r], x.indptr[r + 1]
            x.indices[s:e] = x.indices[s:e][::-1].copy()
            x.data[s:e] = x.data[s:e][::-1].copy()
        x.has_sorted_indices = False
        binary = x.copy()
        binary.data[:] = 1
        for cost in (0, 10 ** 9):                         # 0: pairs always; 10^9: dense
            monkeypatch.setattr(item_item, "PAIR_COST", cost)
            assert torch.equal(gram(binary), torch.from_numpy((binary.T @ binary).toarray()))
            want = (x.astype(np.float64).T @ x.astype(np.float64)).toarray()
            got = gram(x, torch.float64)
            assert got.dtype == torch.float64
            assert np.allclose(got.numpy(), want, rtol=1e-6, atol=0)
    finally:
        torch.set_num_threads(old)
    monkeypatch.setattr(item_item, "PAIR_COST", 8)
    taken = []
    monkeypatch.setattr(item_item, "_gram_pairs", lambda x, dtype: taken.append("pairs"))
    monkeypatch.setattr(item_item, "_gram_block",
                        lambda *a: taken.append("dense") or torch.zeros(a[0].shape[1], 0))
    gram(sp.random(2000, 500, density=0.01, format="csr", random_state=0, dtype=np.float32))
    gram(sp.random(20, 500, density=0.9, format="csr", random_state=0, dtype=np.float32))
    assert taken == ["pairs", "dense"]
