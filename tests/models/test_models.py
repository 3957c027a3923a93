import dataclasses

import pytest
import torch
from aebench.models import sparse_ops
from aebench.models.sparse_ops import CSRBatch, sampled_linear, sparse_linear

from aebench import models


def test_list_patterns_and_natural_names():
    assert models.list("sae-*") == ["sae-20-10-20", "sae-20-10-20-sgd", "sae-200-100-200",
                                    "sae-denoising", "sae-dropout"]
    assert models.list("sae-2*") == ["sae-20-10-20", "sae-20-10-20-sgd", "sae-200-100-200"]
    assert models.list(["sae-*drop*", "*noising"]) == ["sae-denoising", "sae-dropout"]
    assert models.list("nothing*") == []
    assert models.list(kind="reference") == ["bias", "content-knn", "genre-pop", "group-bias",
                                            "group-pop", "ials", "itemknn", "mf", "popularity",
                                            "puresvd", "rp3beta", "side-mf", "slim"]


def test_every_variant_documents_its_source():
    for name in models.list():
        assert len(models.get(name).source) > 20


def test_unknown_model_is_an_error():
    with pytest.raises(KeyError, match="unknown model 'sae-9'.*sae-20-10-20"):
        models.create("sae-9", 10, 10)


def test_overrides_are_checked():
    with pytest.raises(KeyError, match="no option 'dropuot'"):
        models.config("sae-dropout", dropuot=0.5)
    with pytest.raises(TypeError, match="'dropout' must be float"):
        models.config("sae-dropout", dropout="high")
    with pytest.raises(TypeError, match="'epochs' must be int"):
        models.config("sae-20-10-20", **{"per_user.epochs": 2.5})
    with pytest.raises(KeyError, match="no section 'adam'"):
        models.config("sae-20-10-20", **{"adam.lr": 1.0})


def test_none_overrides_keep_defaults():
    base = models.config("sae-200-100-200")
    same = models.config("sae-200-100-200", dropout=None, **{"batched.lr": None})
    assert same == base
    changed = models.config("sae-200-100-200", **{"per_user.lr": 1, "hidden": [8, 4, 8]})
    assert changed.per_user.lr == 1.0 and isinstance(changed.per_user.lr, float)
    assert changed.hidden == (8, 4, 8)
    assert changed.batched == base.batched


def test_config_from_dict_round_trips_and_reads_old_records_as_run():
    cfg = models.config("sae-200-100-200")
    assert models.config_from_dict("sae-200-100-200", dataclasses.asdict(cfg)) == cfg
    old = dataclasses.asdict(cfg)
    del old["per_user"]["loss"], old["batched"]["schedule"]  # a record from before both fields
    back = models.config_from_dict("sae-200-100-200", old)
    assert back.per_user.loss == "items" and back.batched.schedule == "constant"
    assert back.hidden == (200, 100, 200) and back.per_user.lr == 0.005


def test_classic_recipes():
    c = models.config("sae-20-10-20")
    assert c.hidden == (20, 10, 20) and c.activation == "sigmoid"
    assert (c.per_user.optimizer, c.per_user.lr, c.per_user.weight_decay) == ("rmsprop", 0.01, 0.5)
    assert c.per_user.zero_grad is False
    w = models.config("sae-200-100-200")
    assert w.hidden == (200, 100, 200)
    assert (w.per_user.lr, w.per_user.weight_decay) == (0.005, 1.0)


def test_duplicate_registration_is_refused():
    v = models.get("sae-20-10-20")
    with pytest.raises(ValueError, match="already registered"):
        models.register("sae-20-10-20", v.build, v.config, v.source)


def _batch(n_rows=5, n_cols=9, seed=0, column_order=False
           ) -> tuple[torch.Tensor, CSRBatch, torch.Tensor]:
    """A small CSR batch; with `column_order`, carrying its entries' column order as the
    batched engine plans it (the X.T products then gather by it)."""
    g = torch.Generator().manual_seed(seed)
    dense = torch.randint(1, 6, (n_rows, n_cols), generator=g).float()
    dense *= torch.rand(n_rows, n_cols, generator=g) < 0.4
    dense[2] = 0  # an empty row
    csr = dense.to_sparse_csr()
    crow, cols = csr.crow_indices(), csr.col_indices()
    order = {}
    if column_order:
        rows = torch.repeat_interleave(torch.arange(n_rows), crow.diff())
        perm = torch.argsort(cols * n_rows + rows)
        ptr = torch.zeros(n_cols + 1, dtype=torch.long)
        ptr[1:] = torch.bincount(cols, minlength=n_cols).cumsum(0)
        order = {"t_perm": perm, "t_rows": rows[perm], "t_ptr": ptr}
    return dense, CSRBatch(crow, cols, n_cols, **order), csr.values()


@pytest.fixture(params=["whole", "blocked"])
def blocking(request, monkeypatch):
    """Both paths of the sparse products: whole tables, and column blocks (of 2 here, forced
    on whatever the sizes) as large CPU tables take them."""
    if request.param == "blocked":
        monkeypatch.setattr(sparse_ops, "BLOCK", 2)
        monkeypatch.setattr(sparse_ops, "BLOCKED_BYTES", 0)
        monkeypatch.setattr(sparse_ops, "BLOCKED_REUSE", 0)
    return request.param


@pytest.mark.parametrize("column_order", [False, True])
def test_sparse_linear_matches_dense_forward_and_gradients(blocking, column_order):
    dense, batch, vals = _batch(column_order=column_order)
    w = torch.randn(9, 4, dtype=torch.float32, requires_grad=True)  # item-major
    b = torch.randn(4, requires_grad=True)
    z = sparse_linear(w, b, batch, vals)
    ref = dense @ w + b
    torch.testing.assert_close(z, ref)
    up = torch.randn_like(z)
    gw, gb = torch.autograd.grad((z * up).sum(), (w, b))
    rw, rb = torch.autograd.grad((ref * up).sum(), (w, b))
    torch.testing.assert_close(gw, rw)
    torch.testing.assert_close(gb, rb)


@pytest.mark.parametrize("column_order", [False, True])
def test_sampled_linear_matches_dense_at_observed_pairs(blocking, column_order):
    dense, batch, _ = _batch(seed=1, column_order=column_order)
    rows = torch.repeat_interleave(torch.arange(5), batch.crow.diff())
    h = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(9, 3, requires_grad=True)
    b = torch.randn(9, requires_grad=True)
    out = sampled_linear(h, w, b, batch)
    assert (sparse_ops._blocks(w, batch.cols.numel()) is not None) == (blocking == "blocked")
    ref = (h @ w.t() + b)[rows, batch.cols]
    torch.testing.assert_close(out, ref)
    up = torch.randn_like(out)
    got = torch.autograd.grad((out * up).sum(), (h, w, b))
    want = torch.autograd.grad((ref * up).sum(), (h, w, b))
    for g1, g2 in zip(got, want):
        torch.testing.assert_close(g1, g2)


def test_an_item_item_model_scores_from_held_column_blocks(monkeypatch):
    """Evaluation gathers an item-item weight by column blocks copied once: the scores are
    those of the whole-row gather, bit for bit; the copy is reused across batches, renewed
    when the weight changes (in place or replaced), and not made while the model trains."""
    import scipy.sparse as sp
    from aebench.models.base import Batch

    monkeypatch.setattr(sparse_ops, "BLOCK", 4)
    monkeypatch.setattr(sparse_ops, "BLOCKED_BYTES", 0)
    model, _ = models.create("ease", 5, 9)
    dense, pattern, vals = _batch(n_rows=12, n_cols=9, seed=3)
    model.fit(sp.csr_matrix((dense > 0).float().numpy()))
    batch = Batch(torch.arange(12), pattern, vals)
    model.eval()
    got = model.score(batch)
    assert model.__dict__["_held_blocks"][0] is model.weight  # scored from the blocks
    torch.testing.assert_close(got, dense @ model.weight)
    whole = torch.nn.functional.embedding_bag(pattern.cols, model.weight, pattern.crow[:-1],
                                              mode="sum", per_sample_weights=vals)
    assert torch.equal(got, whole)
    held = sparse_ops.held_blocks(model, model.weight)
    assert len(held) == 3 and held[-1].shape == (9, 1)  # 4 + 4 + 1 columns
    assert held is sparse_ops.held_blocks(model, model.weight)  # one copy for every batch
    model.weight.mul_(2)  # changed in place: a new copy
    torch.testing.assert_close(model.score(batch), 2 * whole)
    model.weight = torch.ones(9, 9)  # replaced: a new copy
    torch.testing.assert_close(model.score(batch), dense @ torch.ones(9, 9))
    model.train()
    assert sparse_ops.held_blocks(model, model.weight) is None


def test_sae_sparse_and_dense_paths_agree():
    model, _ = models.create("sae-200-100-200", 5, 9)
    model.eval()
    dense, batch, vals = _batch(seed=2)
    h = model.encode_sparse(batch, vals)
    torch.testing.assert_close(model.decode(h), model(dense))
    rows = torch.repeat_interleave(torch.arange(5), batch.crow.diff())
    torch.testing.assert_close(model.decode_at(h, batch), model(dense)[rows, batch.cols])


def test_denoising_corrupts_only_in_training():
    model, _ = models.create("sae-denoising", 5, 9, corruption=0.5)
    dense, batch, vals = _batch(seed=3)
    model.eval()
    a, b = model.encode_sparse(batch, vals), model.encode_sparse(batch, vals)
    torch.testing.assert_close(a, b)
    model.train()
    torch.manual_seed(0)
    assert not torch.allclose(model.encode_sparse(batch, vals), a)


def test_planned_column_order_gives_the_same_gradients():
    """The batched engine's per-epoch column-order plan against the CSR-transpose fallback."""
    import dataclasses

    from aebench.bench.engines.batched import BatchedEngine

    from aebench import datasets

    split = datasets.make_split(datasets.load("synthetic"), "random-90-10")
    model, cfg = models.create("sae-200-100-200", split.n_users, split.n_items,
                               **{"batched.batch_size": 32})
    engine = BatchedEngine(model, split.train, cfg.batched, torch.device("cpu"), 0)
    values, plan = engine._epoch_plan()
    assert sum(hi - lo for lo, hi, _, _ in plan) == split.train.nnz
    rows = sorted((int(u[r]),) + tuple(zip(b.cols[b.crow[r]:b.crow[r + 1]].tolist(),
                                           values[lo:hi][b.crow[r]:b.crow[r + 1]].tolist()))
                  for lo, hi, u, b in plan for r in range(b.n_rows))
    want = sorted((u,) + tuple(zip(split.train[u].indices.tolist(), split.train[u].data.tolist()))
                  for u in range(split.train.shape[0]) if split.train[u].nnz)
    assert rows == want
    for lo, hi, _, batch in plan[:3]:
        grads = []
        for b in (batch, dataclasses.replace(batch, t_perm=None, t_rows=None, t_ptr=None)):
            model.zero_grad()
            h = model.encode_sparse(b, values[lo:hi])
            (model.decode_at(h, b) - values[lo:hi]).square().sum().backward()
            grads.append([p.grad.clone() for p in model.parameters()])
        for g1, g2 in zip(*grads):
            torch.testing.assert_close(g1, g2)
