"""Kernel layers (Sparse FC) against a direct dense computation, their gradients by
`gradcheck`, the L-BFGS trainer's rounds and early stopping, and per-dataset defaults."""

import numpy as np
import pytest
import torch
from aebench.bench.engines.batched import BatchedEngine
from aebench.bench.engines.train import Stopping, fit
from aebench.models.base import Recipe
from aebench.models.kernel_ae import KernelLayer, sparsifying_kernel

from aebench import datasets, models
from tests.models.test_references import batch_of

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def split():
    return datasets.make_split(datasets.load("synthetic-60x40"), "random-90-10", seed=1)


def test_the_sparsifying_kernel_is_one_minus_squared_distance_clipped_at_zero():
    u = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    v = torch.tensor([[0.0, 0.5], [2.0, 0.0], [0.5, 0.5]])
    want = torch.tensor([[0.75, 0.0, 0.5], [0.0, 0.0, 0.5]])  # 1 - d^2, hand-worked
    torch.testing.assert_close(sparsifying_kernel(u, v), want)


def test_a_kernel_layer_is_x_times_w_times_w_hat_and_its_gradients_check():
    torch.manual_seed(0)
    layer = KernelLayer(4, 3, dim=2).double()
    with torch.no_grad():  # spread the embeddings so that some kernels are zero, some not
        layer.u.copy_(torch.randn(4, 2, dtype=torch.float64) * 0.6)
        layer.v.copy_(torch.randn(3, 2, dtype=torch.float64) * 0.6)
    x = torch.randn(5, 4, dtype=torch.float64)
    u, v = layer.u.detach().numpy(), layer.v.detach().numpy()
    k = np.maximum(0.0, 1.0 - ((u[:, None, :] - v[None, :, :]) ** 2).sum(-1))
    want = x.numpy() @ (layer.weight.detach().numpy() * k) + layer.bias.detach().numpy()
    np.testing.assert_allclose(layer(x).detach().numpy(), want, atol=1e-12)
    assert (k == 0).any() and (k > 0).any()

    def f(w, b, uu, vv, xx):
        kk = sparsifying_kernel(uu, vv)
        return xx @ (w * kk) + b

    assert torch.autograd.gradcheck(f, (layer.weight.detach().clone().requires_grad_(),
                                        layer.bias.detach().clone().requires_grad_(),
                                        layer.u.detach().clone().requires_grad_(),
                                        layer.v.detach().clone().requires_grad_(),
                                        x.requires_grad_()))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_fused_kernel_weight_matches_autograd_through_the_kernel_and_gradchecks(dtype):
    """`kernel_weight`'s hand-written backward: values and gradients of (W * w_hat, penalty)
    against autograd through `sparsifying_kernel`, with some kernels cut to zero; float32 on
    CPU takes the compiled passes, float64 the torch ops (and the gradient check)."""
    from aebench.models.kernel_ae import _compiled, kernel_weight

    g = torch.Generator().manual_seed(3)
    w = torch.randn(7, 6, dtype=dtype, generator=g)
    u = torch.randn(7, 3, dtype=dtype, generator=g) * 0.5
    v = torch.randn(6, 3, dtype=dtype, generator=g) * 0.5
    up = torch.randn(7, 6, dtype=dtype, generator=g)
    assert _compiled(w) == (dtype == torch.float32)

    def ref(w, u, v):
        k = sparsifying_kernel(u, v)
        return w * k, 0.5 * (0.3 * k.square().sum() + 2.0 * w.square().sum())

    args = [t.clone().requires_grad_() for t in (w, u, v)]
    eff, pen = kernel_weight(*args, 0.3, 2.0)
    want_eff, want_pen = ref(*[t.detach().clone().requires_grad_() for t in (w, u, v)])
    assert (sparsifying_kernel(u, v) == 0).any() and (sparsifying_kernel(u, v) > 0).any()
    torch.testing.assert_close(eff, want_eff)
    torch.testing.assert_close(pen, want_pen)
    got = torch.autograd.grad((eff * up).sum() + 1.7 * pen, args)
    ref_args = [t.clone().requires_grad_() for t in (w, u, v)]
    e2, p2 = ref(*ref_args)
    want = torch.autograd.grad((e2 * up).sum() + 1.7 * p2, ref_args)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    if dtype == torch.float64:
        assert torch.autograd.gradcheck(lambda *t: kernel_weight(*t, 0.3, 2.0), tuple(args))


def test_sparse_fc_loss_is_half_the_squared_error_plus_the_penalties(split):
    torch.manual_seed(0)
    model, cfg = models.create("sparse-fc", split.n_items, split.n_users, hidden=(6, 5),
                               lambda_2=2.0, lambda_s=0.3)
    x = cfg.view(split.train)  # items x users
    dense = torch.from_numpy(x.toarray())
    h = dense
    penalty = 0.0
    for i, layer in enumerate(model.layers):
        k = sparsifying_kernel(layer.u, layer.v)
        h = h @ (layer.weight * k) + layer.bias
        h = torch.sigmoid(h) if i < len(model.layers) - 1 else h
        penalty += 0.5 * (0.3 * k.square().sum() + 2.0 * layer.weight.square().sum())
    mask = dense > 0
    want = 0.5 * ((h - dense)[mask]).square().sum() + penalty
    batch = batch_of(x)
    torch.testing.assert_close(model.loss(batch), want, rtol=1e-5, atol=1e-3)
    model.eval()
    with torch.no_grad():
        scores = model.score(batch)
    assert scores.shape == (split.n_items, split.n_users)  # item rows over users
    torch.testing.assert_close(scores, h.detach(), rtol=1e-4, atol=1e-4)


def test_lbfgs_rounds_reduce_the_loss_from_a_fresh_memory(split):
    torch.manual_seed(0)
    model, cfg = models.create("sparse-fc", split.n_items, split.n_users, hidden=(8, 8),
                               lambda_2=1.0, lambda_s=0.01)
    x = cfg.view(split.train)
    recipe = Recipe(optimizer="lbfgs", lr=1.0, weight_decay=0.0, epochs=3, batch_size=0,
                    iterations=4)
    engine = BatchedEngine(model, x, recipe, CPU, seed=0)
    losses = [engine.epoch() for _ in range(3)]
    assert losses[0] > losses[1] > losses[2]
    state = engine.opts[0].state[engine.opts[0]._params[0]]
    assert state["n_iter"] <= 4  # the memory and the count restart every round
    assert engine.steps == 3  # one full-batch step (a round) per epoch
    # the last round's work, as the epoch's history row reports it
    assert engine.counts["lbfgs_iterations"] == state["n_iter"]
    assert engine.counts["lbfgs_evaluations"] == state["func_evals"] >= state["n_iter"]
    # the round's reported loss (its lowest evaluation) is the loss where it ended
    from aebench.models.base import Batch

    values, plan = engine._epoch_plan()
    lo, hi, rows, pattern = plan[0]
    with torch.no_grad():
        at_end = model.loss(Batch(rows, pattern, values[lo:hi]))
    assert losses[2] == pytest.approx(float(at_end), rel=1e-6)


def test_lbfgs_rounds_are_what_early_stopping_counts(split):
    torch.manual_seed(0)
    model, cfg = models.create("sparse-fc", split.n_items, split.n_users, hidden=(8, 8),
                               **{"batched.epochs": 40, "batched.iterations": 3})
    x = cfg.view(split.train)
    reads = iter([1.0, 0.9, 0.95, 0.96, 0.97] + [0.99] * 40)
    result = fit(model, x, cfg, "batched", CPU, seed=0, monitor=lambda epoch: next(reads),
                 stopping=Stopping(eval_every=1, patience=3))
    assert result.best_epoch == 2 and result.epochs_run == 5 and result.stopped_early
    # each round's row says how many iterations it ran and how many evaluations they took
    for row in result.history:
        assert 1 <= row["lbfgs_iterations"] <= 3
        assert row["lbfgs_evaluations"] >= row["lbfgs_iterations"]


def small_glocal_k(split, pretrain, finetune):
    """A tiny GLocal-K of `pretrain` rounds of 3 iterations and `finetune` rounds of 2, its
    view of the training matrix, and the list of stages it is told to start."""
    torch.manual_seed(0)
    model, cfg = models.create("glocal-k", split.n_items, split.n_users, hidden=(8, 8),
                               pretrain_rounds=pretrain, pretrain_iterations=3,
                               finetune_rounds=finetune, finetune_iterations=2,
                               **{"batched.epochs": pretrain + finetune})
    seen = []
    model.start_stage = lambda name, f=model.start_stage: (seen.append(name), f(name))
    return model, cfg, cfg.view(split.train), seen


def test_early_stopping_waits_for_the_last_stage_and_counts_patience_from_its_start(split):
    # validation best at round 1 and flat after: without stages training would stop at round
    # 4; with a 6-round pre-training it must reach fine-tuning and run `patience` reads there
    model, cfg, x, seen = small_glocal_k(split, 6, 10)
    reads = iter([0.5] + [0.9] * 20)
    result = fit(model, x, cfg, "batched", CPU, seed=0, monitor=lambda epoch: next(reads),
                 stopping=Stopping(eval_every=1, patience=3))
    assert seen == ["pretrain", "finetune"]
    assert result.best_epoch == 1 and result.epochs_run == 9 and result.stopped_early


def test_lbfgs_recipes_are_checked():
    with pytest.raises(ValueError, match="lbfgs takes full batches"):
        models.config("sparse-fc", **{"batched.batch_size": 64})


def test_a_variant_default_can_differ_per_dataset():
    v = models.get("sparse-fc")
    assert v.datasets["ml-100k"]["lambda_2"] == 20.0
    assert models.config("sparse-fc", "ml-100k").batched.iterations == 5
    assert models.config("sparse-fc", "ml-1m").batched.iterations == 50
    assert models.config("sparse-fc", "ml-100k", lambda_2=7.0).lambda_2 == 7.0


def conv_of(r: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """`global_conv` of a dense matrix, from its nonzero entries."""
    from aebench.models.kernel_ae import conv_cells, global_conv

    rows, cols = r.nonzero(as_tuple=True)
    cells = conv_cells(rows, cols, tuple(r.shape), kernel.shape[0])
    return global_conv(cells, r[rows, cols], kernel, tuple(r.shape))


def test_glocal_k_global_kernel_and_convolution_on_a_hand_worked_4x4_case():
    from aebench.models.kernel_ae import global_kernel

    means = torch.tensor([1.0, 2.0])  # two items' mean reconstructions
    conv = torch.zeros(2, 9)
    conv[0, 4] = 1.0   # centre weight 1 * 1
    conv[1, 1] = 0.5   # the cell above: 2 * 0.5
    kernel = global_kernel(means, conv, 3, dot_scale=2.0)
    want_kernel = torch.zeros(3, 3)
    want_kernel[1, 1], want_kernel[0, 1] = 2.0, 2.0
    torch.testing.assert_close(kernel, want_kernel)
    r = torch.tensor([[1.0, 0.0, 0.0, 2.0],
                      [0.0, 3.0, 0.0, 0.0],
                      [0.0, 0.0, 0.0, 0.0],
                      [4.0, 0.0, 5.0, 0.0]])
    # out[i, j] = 2 r[i, j] + 2 r[i - 1, j] (zero padding above the first row), then ReLU
    want = torch.tensor([[2.0, 0.0, 0.0, 4.0],
                         [2.0, 6.0, 0.0, 4.0],
                         [0.0, 6.0, 0.0, 0.0],
                         [8.0, 0.0, 10.0, 0.0]])
    torch.testing.assert_close(conv_of(r, kernel), want)
    assert (conv_of(r, -kernel) == 0).all()  # the ReLU


def test_glocal_k_convolution_matches_conv2d_with_its_kernel_gradient():
    """The convolution from the observed entries against torch's conv2d of the dense matrix
    (what the authors' TF conv2d is), values and the gradient of the 3 x 3 kernel."""
    g = torch.Generator().manual_seed(0)
    r = torch.rand(17, 23, generator=g) * (torch.rand(17, 23, generator=g) < 0.3)
    weights = torch.randn(17, 23, generator=g)
    got_k = torch.randn(3, 3, generator=g).requires_grad_()
    ref_k = got_k.detach().clone().requires_grad_()
    got = conv_of(r, got_k)
    ref = torch.relu(torch.nn.functional.conv2d(r[None, None], ref_k[None, None],
                                                padding=1)[0, 0])
    torch.testing.assert_close(got, ref)
    (got * weights).sum().backward()
    (ref * weights).sum().backward()
    torch.testing.assert_close(got_k.grad, ref_k.grad)
    # rows in another order (a batch's), and a subset of them: the same cells, placed
    from aebench.models.kernel_ae import conv_cells, global_conv

    rows, cols = r.nonzero(as_tuple=True)
    order = torch.randperm(17, generator=g)[:11]
    keep = torch.isin(rows, order)
    cells = conv_cells(rows[keep], cols[keep], (17, 23), 3, order=order)
    only = torch.zeros_like(r)
    only[order] = r[order]
    want = torch.relu(torch.nn.functional.conv2d(only[None, None], ref_k.detach()[None, None],
                                                 padding=1)[0, 0])[order]
    torch.testing.assert_close(global_conv(cells, r[rows[keep], cols[keep]], ref_k.detach(),
                                           (11, 23)), want)


def test_glocal_k_item_means_skip_the_full_output(split):
    """The fine-tuning input's item means (each row's output averaged over users) equal the
    mean of the full output they replace."""
    model, cfg, x, _ = small_glocal_k(split, 1, 1)
    batch = batch_of(x)
    with torch.no_grad():
        eff = model._effective()
        h = model._hidden(batch, eff)
        torch.testing.assert_close(model._mean_output(h, eff),
                                   model._output(h, eff).mean(1))


def test_glocal_k_pretrains_then_finetunes_in_stages_and_scores_whole_matrices(split):
    model, cfg, x, seen = small_glocal_k(split, 2, 2)
    engine = BatchedEngine(model, x, cfg.batched, CPU, seed=0)
    losses = [engine.epoch() for _ in range(4)]
    assert seen == ["pretrain", "finetune"] and bool(model.finetuning)
    assert engine.opts[0].param_groups[0]["max_iter"] == 2
    assert all(np.isfinite(losses)) and losses[1] < losses[0]
    model.eval()
    with torch.no_grad():
        scores = model.score(batch_of(x))
    assert scores.shape == (split.n_items, split.n_users) and torch.isfinite(scores).all()
    # the convolution mixes neighbouring rows: scoring one row alone would differ. Under a
    # fixed global-kernel weight: the trained one's neighbour terms can end below rounding
    # after four tiny rounds (on an Intel Xeon with AMX they moved the score by 4e-7)
    with torch.no_grad():
        model.conv.fill_(1.0)
        whole = model.score(batch_of(x))
        alone = model.score(batch_of(x[:1]))
    assert not torch.allclose(alone[0], whole[0])


def test_deeprec_refeeds_its_dense_output_as_input_and_target(split):
    from aebench.models.base import Batch

    torch.manual_seed(0)
    model, cfg = models.create("deeprec", split.n_users, split.n_items, hidden=(8, 4),
                               dropout=0.0, **{"batched.batch_size": 16})
    x = cfg.view(split.train)
    batch = batch_of(x)
    first = model.loss(batch)
    refed = model._refeed.clone()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(refed, model.score(batch))  # f(x), dense
    model.train()
    again = model.refeed_loss(batch)
    with torch.no_grad():
        y = model._out(model._hidden(model._code(model.first(refed))))
    torch.testing.assert_close(again, (y - refed).square().mean())
    assert isinstance(batch, Batch) and torch.isfinite(first)
    steps = []
    engine = BatchedEngine(model, x, cfg.batched, CPU, seed=0)
    original = model.refeed_loss
    model.refeed_loss = lambda b: (steps.append(b.size), original(b))[1]
    engine.epoch()
    assert len(steps) == engine.steps  # one re-feeding step after every step


def test_speed_reports_an_lbfgs_iterations_seconds_and_flops(tmp_path):
    import json

    from aebench.bench.cli import main

    out = tmp_path / "speed.json"
    assert main(["speed", "-m", "sparse-fc", "-d", "synthetic-60x40", "--repeats", "1",
                 "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["path"] == "batched" and row["iteration_s"] == pytest.approx(row["epoch_s"] / 50)
    assert row["gflop_per_epoch"] > 0 and row["bound"] == "gather"
