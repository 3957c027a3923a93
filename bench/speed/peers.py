"""Peers: each family's counterpart in a well-kept library, timed back to back with it on the
same split, machine and thread count (`bench speed --peers`).

A peer is data: the library, its model, the settings that match the variant's default recipe
(read off the variant's config, so a changed default changes the peer), what is timed (an
epoch, or a closed-form fit) and what still differs. RecBole 1.2.1 pins numpy<2, so it runs in
its own environment: `recbole_epoch.py` beside this file is its whole side, run by that
environment's Python (`--peer-python`, or BENCH_RECBOLE_PYTHON), reading the training matrix
from an .npz this side writes. Build the environment with

    python3 -m venv .recbole && .recbole/bin/pip install torch==2.13.0 recbole==1.2.1 "numpy<2"

iALS needs no peer: the suite's `ials` is the `implicit` package's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ENV = "BENCH_RECBOLE_PYTHON"
WORKER = Path(__file__).with_name("recbole_epoch.py")
BUILD = 'python3 -m venv .recbole && .recbole/bin/pip install torch==2.13.0 recbole==1.2.1 "numpy<2"'


@dataclass(frozen=True)
class Peer:
    family: str                       # the aebench variant
    model: str                        # the library's model class
    settings: Callable[[object], dict]  # variant config -> the library's settings
    timed: str                        # "epoch" (one training epoch) or "fit" (closed form)
    target: float                     # the speedup over the peer the suite aims for
    differs: str = ""                 # what the two still do differently
    library: str = "recbole"


def _adam(recipe) -> dict:
    return {"learner": "adam", "learning_rate": recipe.lr, "train_batch_size": recipe.batch_size,
            "weight_decay": recipe.weight_decay}


PEERS = {p.family: p for p in (
    Peer("mult-vae", "MultiVAE", lambda c: {
        **_adam(c.batched), "mlp_hidden_size": list(c.hidden[:-1]),
        # RecBole's encoder emits [mu, logvar] in one layer of latent_dimension units
        "latent_dimension": 2 * c.hidden[-1], "dropout_prob": c.dropout,
        "anneal_cap": c.beta_cap}, "epoch", 3.0,
        "RecBole anneals beta per step over 200,000 steps, aebench per epoch"),
    Peer("mult-dae", "MultiDAE", lambda c: {
        **_adam(c.batched), "mlp_hidden_size": list(c.hidden[:-1]),
        "latent_dimension": c.hidden[-1], "dropout_prob": c.dropout}, "epoch", 2.0,
        "RecBole has no L2 term"),
    Peer("recvae", "RecVAE", lambda c: {
        **_adam(c.batched), "hidden_dimension": c.hidden, "latent_dimension": c.latent,
        "dropout_prob": c.dropout, "gamma": c.gamma, "n_enc_epochs": c.encoder_passes,
        "n_dec_epochs": c.decoder_passes}, "epoch", 2.0),
    Peer("cdae", "CDAE", lambda c: {
        **_adam(c.batched), "embedding_size": c.hidden, "corruption_ratio": c.corruption,
        "hid_activation": c.activation, "out_activation": "sigmoid", "loss_type": "BCE",
        "reg_weight_2": 0.0}, "epoch", 2.0,
        "RecBole's loss reads every item of a user (dense BCE), aebench's the observed items "
        "and sampled negatives, as the CDAE paper does"),
    Peer("ease", "EASE", lambda c: {"reg_weight": c.lam}, "fit", 2.0),
    Peer("itemknn", "ItemKNN", lambda c: {"k": c.topk, "shrink": c.shrink}, "fit", 2.0),
    Peer("slim", "SLIMElastic", lambda c: {"alpha": c.alpha, "l1_ratio": c.l1_ratio,
                                           "positive_only": True, "hide_item": True}, "fit",
         2.0, "RecBole keeps every weight, aebench the top k per item"),
)}


def find_python(given: str | None = None) -> tuple[str | None, str]:
    """The Python that has RecBole: `given`, else $BENCH_RECBOLE_PYTHON, else this one if it
    imports recbole. Returns (path or None, why not)."""
    for path, origin in ((given, "--peer-python"), (os.environ.get(ENV), ENV)):
        if path:
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


def time_peer(peer: Peer, cfg, train: sp.csr_matrix, python: str, repeats: int, threads: int,
              seed: int = 0, timeout: float = 3600) -> dict:
    """Run the peer on `train` (users x items, every entry an interaction) in `python`: the
    seconds of each timed repeat and the versions it ran with."""
    x = train.tocsr()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.npz"
        np.savez(path, indptr=x.indptr, indices=x.indices, shape=np.array(x.shape))
        cmd = [python, str(WORKER), "--train", str(path), "--model", peer.model,
               "--config", json.dumps(peer.settings(cfg)), "--timed", peer.timed,
               "--repeats", str(repeats), "--threads", str(threads), "--seed", str(seed)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if done.returncode:
        raise RuntimeError(f"{peer.library} {peer.model} failed: "
                           + "\n".join(done.stderr.strip().splitlines()[-5:]))
    return json.loads(done.stdout.strip().splitlines()[-1])
