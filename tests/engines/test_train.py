"""Training engines: the faithful per-user engine follows the classic loop; batched learns."""

import math

import pytest
import torch
from aebench.bench.engines import classic
from aebench.bench.engines.optim import rmsprop_, rmsprop_torch
from aebench.bench.engines.train import fit

from aebench import datasets, models


def _classic_vs_fast(split, name, epochs, **overrides):
    torch.manual_seed(0)
    model, cfg = models.create(name, split.n_users, split.n_items, **overrides)
    ref = classic.ClassicSAE(split.n_items, cfg.hidden).load_from(model)
    opt = classic.make_optimizer(ref, cfg.per_user.lr, cfg.per_user.weight_decay)
    train = torch.tensor(split.train.toarray())
    test = torch.tensor(split.test.toarray())
    criterion = classic.CRITERIA[cfg.per_user.loss]
    classic_losses = [classic.train_epoch(ref, opt, train, criterion) for _ in range(epochs)]
    result = fit(model, split.train, cfg, "per-user", torch.device("cpu"), 0, epochs)
    fast = classic.ClassicSAE(split.n_items, cfg.hidden).load_from(model)
    return (classic_losses, [h["train_loss"] for h in result.history],
            classic.test_loss(ref, train, test), classic.test_loss(fast, train, test))


def test_per_user_follows_classic_trajectory_on_synthetic():
    split = datasets.make_split(datasets.load("synthetic"), "random-90-10")
    want, got, want_test, got_test = _classic_vs_fast(split, "sae-20-10-20", 4)
    assert got == pytest.approx(want, abs=1e-4)
    assert got_test == pytest.approx(want_test, abs=1e-4)


def test_per_user_follows_the_ml1m_notebook_loss():
    """`loss="rated"` (the ML-1M notebook's masked MSE) against the classic loop run with
    that notebook's criterion: the same weights, so the same test loss; and not the same
    model as the classic `nn.MSELoss` scaling gives."""
    split = datasets.make_split(datasets.load("synthetic"), "random-90-10")
    *_, want_test, got_test = _classic_vs_fast(split, "sae-200-100-200", 3)
    *_, items_test, _ = _classic_vs_fast(split, "sae-200-100-200", 3, **{"per_user.loss": "items"})
    assert models.config("sae-200-100-200").per_user.loss == "rated"
    assert got_test == pytest.approx(want_test, abs=1e-4)
    assert items_test != pytest.approx(want_test, abs=1e-3)


@pytest.mark.realdata
def test_per_user_follows_classic_trajectory_on_u1(ml100k):
    """The faithful engine's legacy loss stays within 0.005 of the classic loop's."""
    split = datasets.make_split(ml100k, "u1")
    want, got, want_test, got_test = _classic_vs_fast(split, "sae-20-10-20", 4)
    assert got[-1] == pytest.approx(want[-1], abs=0.005)
    assert got_test == pytest.approx(want_test, abs=0.005)


def test_zero_grad_option_changes_the_trajectory():
    split = datasets.make_split(datasets.load("synthetic"), "random-90-10")
    cfg = models.config("sae-20-10-20", **{"per_user.epochs": 2})
    runs = []
    for zero in (False, True):
        torch.manual_seed(0)
        c = models.config("sae-20-10-20", **{"per_user.zero_grad": zero})
        model = models.get("sae-20-10-20").make(split.n_users, split.n_items, c)
        runs.append(fit(model, split.train, c, "per-user", torch.device("cpu"), 0,
                        2).history[-1])
    assert cfg.per_user.zero_grad is False
    assert runs[0]["train_loss"] != pytest.approx(runs[1]["train_loss"], abs=1e-3)


def test_fused_rmsprop_matches_torch_optimizer():
    torch.manual_seed(0)
    p = torch.randn(1000)
    ref = p.clone().requires_grad_()
    opt = torch.optim.RMSprop([ref], lr=0.01, weight_decay=0.5)
    g, v = torch.zeros(1000), torch.zeros(1000)
    v2, p2 = torch.zeros(1000), p.clone()
    for _ in range(5):
        step = torch.randn(1000)
        g += step
        ref.grad = g.clone()
        opt.step()
        rmsprop_(p, g, v, 0.01, 0.5)
        rmsprop_torch(p2, g, v2, 0.01, 0.5)
    torch.testing.assert_close(p, ref.detach())
    torch.testing.assert_close(p2, ref.detach())


GRADIENT_MODES = [(name, mode) for name in models.list() for mode in ("batched", "per-user")
                  if models.config(name).recipe(mode) is not None]


@pytest.mark.parametrize("name, mode", GRADIENT_MODES)
def test_every_gradient_variant_trains_in_each_of_its_modes(name, mode):
    split = datasets.make_split(datasets.load("synthetic"), "random-90-10")
    torch.manual_seed(0)
    cfg = models.config(name)
    x = cfg.view(split.train)
    model = models.get(name).make(x.shape[0], x.shape[1], cfg)
    hist = fit(model, x, cfg, mode, torch.device("cpu"), 0, 3).history
    assert all(math.isfinite(h["train_loss"]) and h["epoch_s"] > 0 for h in hist)
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]


def test_nonfinite_loss_raises():
    split = datasets.make_split(datasets.load("synthetic"), "random-90-10")
    cfg = models.config("sae-20-10-20", **{"batched.lr": 1e30})
    model = models.get("sae-20-10-20").make(split.n_users, split.n_items, cfg)
    with pytest.raises(FloatingPointError, match="training loss is nan"):
        fit(model, split.train, cfg, "batched", torch.device("cpu"), 0, 5)


def test_fused_rprop_matches_torch_rprop():
    """Sign changes, growth, shrinkage and both step-size clamps, step for step."""
    from aebench.bench.engines.optim import FusedRprop

    torch.manual_seed(0)
    p = torch.randn(4000)
    a, b = p.clone().requires_grad_(), p.clone().requires_grad_()
    ref = torch.optim.Rprop([a], lr=0.3, step_sizes=(1e-3, 1.0))
    fused = FusedRprop([b], lr=0.3, step_sizes=(1e-3, 1.0))
    for k in range(12):
        g = torch.randn(4000)
        g[::7] = 0.0
        g[1::5] = g[1::5].abs() * (1 if k % 2 else -1)  # some coordinates flip every step
        a.grad, b.grad = g.clone(), g.clone()
        ref.step()
        fused.step()
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
    torch.testing.assert_close(fused.state[b]["step_size"], ref.state[a]["step_size"])
    torch.testing.assert_close(fused.state[b]["prev"], ref.state[a]["prev"])


def test_early_stopping_keeps_the_best_state_and_stops_after_patience():
    """Validation reads every 2 epochs: the best is at epoch 4, two worse reads follow, and
    training stops at epoch 8 with epoch 4's weights restored."""
    from aebench.bench.engines.train import Stopping

    split = datasets.make_split(datasets.load("synthetic"), "random-90-10")
    cfg = models.config("sae-20-10-20")
    torch.manual_seed(0)
    model = models.get("sae-20-10-20").make(split.n_users, split.n_items, cfg)
    readings = iter([0.9, 0.8, 0.85, 0.82, 0.7])
    saved = {}

    def monitor(epoch):
        saved[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
        return next(readings)

    result = fit(model, split.train, cfg, "batched", torch.device("cpu"), 0, epochs=20,
                 monitor=monitor, stopping=Stopping(eval_every=2, patience=2))
    assert (result.best_epoch, result.best_value) == (4, 0.8)
    assert result.epochs_run == 8 and result.stopped_early
    assert [h["epoch"] for h in result.history if "valid" in h] == [2, 4, 6, 8]
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, saved[4][k])


def test_higher_is_better_validation_and_closed_form_read_once():
    from aebench.bench.engines.train import Stopping

    split = datasets.make_split(datasets.load("synthetic"), "random-90-10")
    cfg = models.config("mult-dae")
    model = models.get("mult-dae").make(split.n_users, split.n_items, cfg)
    readings = iter([0.1, 0.3, 0.2, 0.25])
    result = fit(model, cfg.view(split.train), cfg, "batched", torch.device("cpu"), 0,
                 epochs=4, monitor=lambda e: next(readings),
                 stopping=Stopping(eval_every=1, patience=5, higher_is_better=True))
    assert (result.best_epoch, result.best_value, result.epochs_run) == (2, 0.3, 4)
    ease_cfg = models.config("ease")
    ease = models.get("ease").make(split.n_users, split.n_items, ease_cfg)
    result = fit(ease, ease_cfg.view(split.train), ease_cfg, "batched", torch.device("cpu"), 0,
                 monitor=lambda e: 0.5)
    assert (result.epochs_run, result.best_epoch, result.best_value) == (1, 1, 0.5)


def test_validation_reads_are_timed_apart_from_the_epochs():
    """A monitor that sleeps 0.2 s: its reads land in `valid_s`; `fit_s` stays the sum of
    the epochs' own seconds, for an epoch trainer and a closed-form fit alike."""
    import time

    from aebench.bench.engines.train import Stopping

    split = datasets.make_split(datasets.load("synthetic"), "random-90-10")
    for name, epochs in (("sae-20-10-20", 4), ("ease", None)):
        cfg = models.config(name)
        model = models.get(name).make(split.n_users, split.n_items, cfg)

        def slow(epoch):
            time.sleep(0.2)
            return 1.0 / epoch

        result = fit(model, cfg.view(split.train), cfg, "batched", torch.device("cpu"), 0,
                     epochs=epochs, monitor=slow, stopping=Stopping(eval_every=1, patience=9))
        reads = len(result.curve)
        assert reads == (4 if epochs else 1)
        assert result.valid_s >= 0.2 * reads
        assert result.fit_s == pytest.approx(sum(h["epoch_s"] for h in result.history))
