"""Peers: each family's counterpart in a well-kept library, timed back to back with it on the
same split, machine and thread count (`bench speed --peers`).

A peer is data: the library, its model, the settings that match the variant's default recipe
(read off the variant's config, so a changed default changes the peer), what is timed (an
epoch, or a closed-form fit) and what still differs. RecBole 1.2.1 pins numpy<2, so it runs in
its own environment: `recbole_peer.py` beside this file is its whole side, run by that
environment's Python (`--peer-python`, or BENCH_RECBOLE_PYTHON), reading the matrices from
.npz files this side writes. `evaluate_peer` trains and scores a RecBole model on an aebench
split with RecBole's own loop and evaluator (the reproduction's checks of a published
figure). Build the environment with

    python3 -m venv .recbole && .recbole/bin/pip install torch==2.13.0 recbole==1.2.1 "numpy<2"

iALS needs no peer: the suite's `ials` is the `implicit` package's own.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ENV = "BENCH_RECBOLE_PYTHON"
WORKER = Path(__file__).with_name("recbole_peer.py")
START, END = "<!-- peers:start -->", "<!-- peers:end -->"  # README's block of a peers file
BUILD = ('python3 -m venv .recbole && .recbole/bin/pip install torch==2.13.0 recbole==1.2.1 '
         '"numpy<2"')


@dataclass(frozen=True)
class Peer:
    family: str                       # the aebench variant
    model: str                        # the library's model class
    settings: Callable[[object, int], dict]  # (variant config, training rows) -> settings
    timed: str                        # "epoch" (one training epoch) or "fit" (closed form)
    target: float                     # the speedup over the peer the suite aims for
    differs: str = ""                 # what the two still do differently
    library: str = "recbole"


def _adam(recipe) -> dict:
    return {"learner": "adam", "learning_rate": recipe.lr, "train_batch_size": recipe.batch_size,
            "weight_decay": recipe.weight_decay}


PEERS = {p.family: p for p in (
    Peer("mult-vae", "MultiVAE", lambda c, n: {
        **_adam(c.batched), "mlp_hidden_size": list(c.hidden[:-1]),
        # RecBole's encoder emits [mu, logvar] in one layer of latent_dimension units
        "latent_dimension": 2 * c.hidden[-1], "dropout_prob": c.dropout,
        # RecBole's beta is min(anneal_cap, step / total_anneal_steps), the notebook's rule:
        # it reaches the cap after cap x total steps, so aebench's epochs to the cap, in
        # steps, are that product
        "anneal_cap": c.beta_cap,
        "total_anneal_steps": round(c.anneal_epochs * -(-n // c.batched.batch_size)
                                    / c.beta_cap)},
        "epoch", 3.0,
        "RecBole draws z's noise from N(0, 0.01^2), the paper from N(0, 1) (aebench's "
        "eps_scale, 1 by default)"),
    Peer("mult-dae", "MultiDAE", lambda c, n: {
        **_adam(c.batched), "mlp_hidden_size": list(c.hidden[:-1]),
        "latent_dimension": c.hidden[-1], "dropout_prob": c.dropout}, "epoch", 2.0,
        "RecBole has no L2 term"),
    Peer("recvae", "RecVAE", lambda c, n: {
        **_adam(c.batched), "hidden_dimension": c.hidden, "latent_dimension": c.latent,
        "dropout_prob": c.dropout, "gamma": c.gamma, "n_enc_epochs": c.encoder_passes,
        "n_dec_epochs": c.decoder_passes}, "epoch", 2.0),
    Peer("cdae", "CDAE", lambda c, n: {
        **_adam(c.batched), "embedding_size": c.hidden, "corruption_ratio": c.corruption,
        "hid_activation": c.activation, "out_activation": "sigmoid", "loss_type": "BCE",
        "reg_weight_2": 0.0}, "epoch", 2.0,
        "RecBole's loss reads every item of a user (dense BCE), aebench's the observed items "
        "and sampled negatives, as the CDAE paper does"),
    Peer("diffrec", "DiffRec", lambda c, n: {
        **_adam(c.batched), "noise_schedule": "linear-var", "noise_scale": c.noise_scale,
        "noise_min": c.noise_min, "noise_max": c.noise_max, "steps": c.steps,
        "sampling_steps": c.sampling_steps, "sampling_noise": False, "reweight": c.reweight,
        "mean_type": "x0", "beta_fixed": True, "embedding_size": c.emb_size,
        # the authors' --dims are the decoder's widths, the encoder's the same reversed:
        # (200, 600) is items -> 600 -> 200 -> 600 -> items, RecBole's dims_dnn [600, 200, 600]
        "dims_dnn": [*c.dims[::-1], *c.dims[1:]], "mlp_act_func": "tanh", "norm": False,
        "time-aware": False}, "epoch", 1.0,
        "RecBole's denoiser starts its biases at zero (the authors' and aebench's: N(0, 1e-3)); "
        "its input dropout is fixed at 0.5 (aebench's default)"),
    Peer("ease", "EASE", lambda c, n: {"reg_weight": c.lam}, "fit", 2.0),
    Peer("itemknn", "ItemKNN", lambda c, n: {"k": c.topk, "shrink": c.shrink}, "fit", 2.0),
    Peer("slim", "SLIMElastic", lambda c, n: {"alpha": c.alpha, "l1_ratio": c.l1_ratio,
                                           "positive_only": True, "hide_item": True}, "fit",
         2.0, "RecBole keeps every weight, aebench the top k per item"),
)}


def find_python(given: str | None = None) -> tuple[str | None, str]:
    """The Python that has RecBole: `given`, else $BENCH_RECBOLE_PYTHON, else this one if it
    imports recbole. Returns (path or None, why not)."""
    for path, origin in ((given, "--peer-python"), (os.environ.get(ENV), ENV)):
        if path:
            # the worker runs in a scratch folder: a relative path must not depend on it
            # (abspath, not resolve: a venv's python is a link that must stay one)
            path = os.path.abspath(path) if os.sep in path else path
            probe = subprocess.run([path, "-c", "import recbole; print(recbole.__version__)"],
                                   capture_output=True, text=True)
            if probe.returncode:
                return None, (f"{origin} {path} cannot import recbole "
                              f"({probe.stderr.strip().splitlines()[-1:] or 'no output'})")
            return path, ""
    try:
        import recbole  # noqa: F401
        return sys.executable, ""
    except ImportError:
        return None, (f"RecBole is not installed here and {ENV} is not set; build its own "
                      f"environment ({BUILD}) and pass --peer-python .recbole/bin/python")


def _save(path: Path, x: sp.spmatrix) -> Path:
    x = x.tocsr()
    np.savez(path, indptr=x.indptr, indices=x.indices, shape=np.array(x.shape))
    return path


def _call(python: str, args: list[str], threads: int, timeout: float) -> dict:
    """The worker's JSON; it runs in a scratch folder, where RecBole writes its logs."""
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run([python, str(WORKER), *args, "--threads", str(threads)],
                              capture_output=True, text=True, timeout=timeout, cwd=scratch,
                              env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if done.returncode:
        raise RuntimeError("RecBole failed: " + "\n".join(done.stderr.strip().splitlines()[-5:]))
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_peer(peer: Peer, cfg, train: sp.csr_matrix, python: str, repeats: int, threads: int,
              seed: int = 0, timeout: float = 3600) -> dict:
    """Run the peer on `train` (users x items, every entry an interaction) in `python`: the
    seconds of each timed repeat and the versions it ran with."""
    with tempfile.TemporaryDirectory() as tmp:
        return _call(python, ["--train", str(_save(Path(tmp) / "train.npz", train)),
                              "--model", peer.model,
                              "--config", json.dumps(peer.settings(cfg, train.shape[0])),
                              "--timed", peer.timed, "--repeats", str(repeats),
                              "--seed", str(seed)], threads, timeout)


def evaluate_peer(model: str, settings: dict, train: sp.spmatrix, valid: sp.spmatrix,
                  test: sp.spmatrix, python: str, threads: int, seed: int = 0,
                  timeout: float = 7200) -> dict:
    """Train RecBole's `model` (with RecBole `settings`) on `train`, early-stopping on
    `valid`, and score `test` with RecBole's evaluator: {"valid": ..., "test": {"ndcg@10":
    ...}, "seconds": [fit seconds], versions}. Every stored entry counts as an interaction."""
    with tempfile.TemporaryDirectory() as tmp:
        parts = {name: _save(Path(tmp) / f"{name}.npz", (x != 0).astype(np.float32))
                 for name, x in (("train", train), ("valid", valid), ("test", test))}
        return _call(python, ["--train", str(parts["train"]), "--valid", str(parts["valid"]),
                              "--test", str(parts["test"]), "--model", model, "--evaluate",
                              "--config", json.dumps(settings), "--seed", str(seed)],
                     threads, timeout)


def compare(peer: Peer, split, device, python: str, repeats: int, threads: int,
            precisions: tuple[str, ...] = ("fp32",)) -> list[dict]:
    """The variant's epoch (or fit) on `split` in each of `precisions`, then its peer's (in
    float32: RecBole has no mixed-precision mode), back to back: medians of `repeats`, the
    speedup and whether it meets the peer's target; one row per precision. A closed-form fit
    runs in float32 whatever is asked, so it is timed once."""
    from aebench.bench import speed

    from aebench import models

    cfg = models.config(peer.family, split.dataset)
    path = "fit" if peer.timed == "fit" else "batched"
    ours = {}
    for p in precisions if path == "batched" else ("fp32",):
        row = speed.measure(peer.family, split, device, (path,), repeats, precision=p)[0]
        ours.setdefault(row["precision"], row["epoch_s"])
    theirs = time_peer(peer, cfg, cfg.view(split.train), python, repeats, threads)
    their_s = statistics.median(theirs["seconds"])
    return [{"model": peer.family, "precision": p,
             "peer": f"{peer.library} {theirs['recbole']} {peer.model}", "timed": peer.timed,
             "aebench_s": s, "peer_s": their_s, "peer_runs": theirs["seconds"],
             "speedup": their_s / s, "target": peer.target, "meets": their_s / s >= peer.target,
             "differs": peer.differs} for p, s in ours.items()]


def markdown(rows: list[dict]) -> str:
    """The table of `compare`'s rows (what `speed --peers` prints, and README's block of a
    `speed --peers --out` file)."""
    from tabulate import tabulate

    return tabulate([[f"`{r['model']}`", r.get("precision", "fp32"), r["timed"],
                      f"{r['aebench_s']:.3g}", f"{r['peer_s']:.3g}", f"{r['speedup']:.2f}x",
                      f"{r['target']:g}x", "yes" if r["meets"] else "no", r["differs"] or "—"]
                     for r in rows],
                    headers=["family", "aebench precision", "timed", "aebench s",
                             f"{rows[0]['peer'].rsplit(' ', 1)[0] if rows else 'peer'} s",
                             "speedup", "target", "meets", "what still differs"],
                    tablefmt="github", disable_numparse=True)
