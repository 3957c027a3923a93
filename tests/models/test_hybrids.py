"""The families that read side information: a hybrid given all-zero features is its plain
parent, and every such variant scores a cold item (or user) from its features."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from aebench.bench.engines.train import fit
from aebench.models.base import Batch, ContractError, ModelConfig, Recommender, Side
from aebench.models.sparse_ops import CSRBatch

from aebench import datasets, models

CPU = torch.device("cpu")
READERS = [n for n in models.list() if models.config(n).features]


def ratings(n_users=30, n_items=20, seed=0, cold_item=None, cold_user=None) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.4) * rng.integers(1, 6, (n_users, n_items))
    if cold_item is not None:
        dense[:, cold_item] = 0
    if cold_user is not None:
        dense[cold_user] = 0
    return sp.csr_matrix(dense.astype(np.float32))


def batch_of(x: sp.csr_matrix) -> Batch:
    return Batch(torch.arange(x.shape[0]),
                 CSRBatch(torch.as_tensor(x.indptr.astype(np.int64)),
                          torch.as_tensor(x.indices.astype(np.int64)), x.shape[1]),
                 torch.as_tensor(x.data, dtype=torch.float32))


def trained(name: str, x: sp.csr_matrix, user_f: np.ndarray, item_f: np.ndarray):
    cfg = models.config(name)
    view = cfg.view(x)
    torch.manual_seed(0)
    model = models.get(name).make(view.shape[0], view.shape[1], cfg, cfg.side(user_f, item_f))
    fit(model, view, cfg, "batched", CPU, 0, epochs=3)
    model.eval()
    return model, cfg, view


def user_scores(model, cfg, x):
    view = cfg.view(x)
    with torch.no_grad():
        out = model.score(batch_of(view))
    return out if cfg.rows == "user" else out.t()


def test_the_registry_holds_hybrids_of_both_kinds():
    kinds = {k for n in READERS for k in models.config(n).features}
    assert kinds == {"item", "user"}
    assert {"cfn-i-side", "cfn-u-side", "dropoutnet-i", "dropoutnet-u", "genre-pop",
            "group-pop", "content-knn", "side-mf"} <= set(READERS)


@pytest.mark.parametrize("hybrid,parent", [("cfn-i-side", "cfn-i"), ("cfn-u-side", "cfn-u"),
                                           ("mult-vae-side", "mult-vae")])
def test_a_hybrid_given_zero_features_is_its_parent(hybrid, parent):
    """Side information all zero: the appended inputs add nothing (Strub et al.'s network;
    the encoder input of the Mult-VAE hybrid), so from the same seed the hybrid scores
    exactly as its plain parent."""
    x = ratings()
    cfg_h, cfg_p = models.config(hybrid), models.config(parent)
    view = cfg_h.view(x)
    zeros = Side(torch.zeros(view.shape[0], 7))
    torch.manual_seed(0)
    h = models.get(hybrid).make(view.shape[0], view.shape[1], cfg_h, zeros)
    torch.manual_seed(0)
    p = models.get(parent).make(view.shape[0], view.shape[1], cfg_p)
    h.setup(view), p.setup(view)
    h.eval(), p.eval()
    with torch.no_grad():
        assert torch.equal(h.score(batch_of(view)), p.score(batch_of(view)))
        assert h.side_in is not None and getattr(p, "side_in", None) is None


@pytest.mark.parametrize("name,kind", [(n, k) for n in READERS
                                       for k in models.config(n).features])
def test_a_cold_rows_scores_depend_on_its_features(name, kind):
    """Two fits from one seed on the same ratings, where only the features of a film nobody
    rated (or of a user with no rating) differ: that film's (user's) scores differ."""
    cold = 5 if kind == "item" else 3
    x = ratings(cold_item=cold) if kind == "item" else ratings(cold_user=cold)
    rng = np.random.default_rng(1)
    feats = (rng.random((x.shape[1] if kind == "item" else x.shape[0], 6)) < 0.4).astype(
        np.float32)
    other = feats.copy()
    other[cold] = 1.0 - other[cold]  # another film (person), as far as its features tell

    def scores(f):
        model, cfg, _ = trained(name, x, *((None, f) if kind == "item" else (f, None)))
        out = user_scores(model, cfg, x)
        return out[:, cold] if kind == "item" else out[cold]

    assert not torch.allclose(scores(feats), scores(other))


def test_a_family_that_declares_features_must_take_them():
    class Plain(Recommender):
        trainer = "closed-form"

        def fit(self, x):
            pass

        def score(self, batch):
            return torch.zeros(batch.size, 2)

    variant = models.registry.Variant("plain", lambda r, c, cfg: Plain(), ModelConfig(
        features=("item",)), "test")
    with pytest.raises(ContractError, match="declares features but does not implement "
                                            "attach"):
        variant.make(2, 2, variant.config)
    with pytest.raises(ValueError, match=r"features \['genre'\] unknown"):
        ModelConfig(features=("genre",)).validate()


@pytest.mark.parametrize("name", [n for n in READERS if models.config(n).inductive
                                  and "user" in models.config(n).features])
def test_a_folded_in_user_reads_no_features(name):
    """A user the split does not index (a new visitor of the service) has no features: the
    row past the table reads zeros, as a user with none would."""
    from aebench.bench.recommend import Scorer
    from aebench.datasets.features import Column, FeatureTable

    x = ratings()
    n_users, n_items = x.shape
    rows = [(u + 1, i + 1, float(v), 0) for u, i, v in zip(*x.nonzero(), x.data)]
    ds = datasets.Dataset("hand", pd.DataFrame(rows, columns=["user", "item", "rating",
                                                              "timestamp"]),
                          pd.DataFrame({"item": range(1, n_items + 1), "title": "t",
                                        "genres": ""}),
                          user_features=FeatureTable("user", np.arange(1, n_users + 1), (
                              Column("g", "categorical", tuple("ab"[u % 2]
                                                               for u in range(n_users))),),
                              "hand"))
    split = datasets.make_split(ds, "random-90-10", seed=0)
    model, cfg, _ = trained(name, split.train, split.user_side, None)
    scores = Scorer(model, cfg, split).fold_in(np.array([0, 3]), np.array([5.0, 4.0]))
    assert scores.shape == (split.n_items,) and np.isfinite(scores).all()


def test_group_bias_without_features_is_bias():
    """No demographic column: the alternation is `bias`'s (item biases, then user biases),
    so with the same shrinkage a warm user's predictions are `bias`'s."""
    x = ratings()
    cfg_g = models.config("group-bias", reg_user=2.0, reg_item=2.0)
    cfg_b = models.config("bias", reg_user=2.0, reg_item=2.0)
    g = models.get("group-bias").make(*x.shape, cfg_g, Side(torch.zeros(x.shape[0], 0)))
    b = models.get("bias").make(*x.shape, cfg_b)
    g.fit(x), b.fit(x)
    with torch.no_grad():
        assert torch.allclose(g.score(batch_of(x)), b.score(batch_of(x)), atol=1e-5)


def test_group_bias_folds_a_new_user_in_by_hand():
    """A user with features f and ratings (item 0: 5, item 1: 3) scores
    mu + b_i + f.w + sum(r - mu - b_i - f.w) / (reg_user + 2), worked from the fitted
    parameters; with no rating, mu + b_i + f.w."""
    x = ratings()
    rng = np.random.default_rng(2)
    feats = torch.as_tensor((rng.random((x.shape[0], 3)) < 0.5).astype(np.float32))
    cfg = models.config("group-bias")
    m = models.get("group-bias").make(*x.shape, cfg, Side(feats))
    m.fit(x)
    mu, bi, w = float(m.mean), m.item_bias.double(), m.weights.double()
    f = feats[4].double()
    group = mu + float(f @ w)
    new = sp.csr_matrix((np.array([5.0, 3.0], np.float32), ([0, 0], [0, 1])), (1, x.shape[1]))
    batch = batch_of(new)
    batch = Batch(torch.tensor([4]), batch.pattern, batch.values)
    left = (5 - group - bi[0]) + (3 - group - bi[1])
    want = group + left / (cfg.reg_user + 2) + bi
    with torch.no_grad():
        assert torch.allclose(m.score(batch)[0].double(), want, atol=1e-5)
        empty = sp.csr_matrix((1, x.shape[1]), dtype=np.float32)
        e = batch_of(empty)
        got = m.score(Batch(torch.tensor([4]), e.pattern, e.values))[0].double()
        assert torch.allclose(got, group + bi, atol=1e-5)
