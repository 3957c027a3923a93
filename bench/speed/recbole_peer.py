"""RecBole's side of a peer comparison: run by aebench (`bench speed --peers`,
`bench.speed.peers`) in RecBole's own environment (RecBole 1.2.1 pins numpy<2), so it imports
nothing of aebench's, only numpy, torch and recbole.

    python recbole_peer.py --train train.npz --model MultiVAE --config '{...}' \
        --timed epoch --repeats 3 --threads 2
    python recbole_peer.py --train train.npz --valid valid.npz --test test.npz \
        --model Pop --config '{...}' --evaluate

Each .npz holds a CSR matrix (`indptr`, `indices`, `shape`): users x items, every entry an
interaction, the same ids in all three. The script writes them as RecBole atomic files
(RecBole's `benchmark_filename` route, so RecBole splits nothing) and builds RecBole's
dataset, dataloaders, model and trainer exactly as `recbole.quick_start.run_recbole` does.
`--timed epoch` times `Trainer._train_epoch` after one warm-up epoch, `--timed fit` the
model's construction (where RecBole's closed-form models fit); `--evaluate` trains with
RecBole's own loop and early stopping on the valid file and scores the test file with
RecBole's evaluator (full ranking, training and validation items masked). Prints one JSON
object: the seconds or the metrics, and the versions and sizes it ran with.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

# RecBole 1.2.1 reloads its best checkpoint (its own, just written to a scratch folder) with
# torch.load, which pickles its config: torch >= 2.6 refuses that under weights_only
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")


def read_csr(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    z = np.load(path)
    return z["indptr"], z["indices"], tuple(int(v) for v in z["shape"])


def write_inter(path: Path, users: np.ndarray, items: np.ndarray) -> None:
    with open(path, "w") as fh:
        fh.write("user_id:token\titem_id:token\n")
        fh.write("".join(f"{u}\t{i}\n" for u, i in zip(users.tolist(), items.tolist())))


def pairs(indptr: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) of every entry of a CSR matrix."""
    return np.repeat(np.arange(len(indptr) - 1), np.diff(indptr)), indices


def write_atomic(train: Path, folder: Path, valid: Path | None = None,
                 test: Path | None = None) -> tuple[int, int, int]:
    """`folder/aebench/aebench.{train,valid,test}.inter` from the CSRs; without `valid` and
    `test`, those two files hold one interaction of each of the first users (RecBole wants
    them non-empty; they are then never evaluated). Returns (users, items, interactions)."""
    indptr, indices, (n_users, n_items) = read_csr(train)
    out = folder / "aebench"
    out.mkdir(parents=True)
    write_inter(out / "aebench.train.inter", *pairs(indptr, indices))
    firsts = np.array([u for u in range(min(n_users, 10)) if indptr[u + 1] > indptr[u]],
                      dtype=np.int64)
    for part, path in (("valid", valid), ("test", test)):
        placeholder = (firsts, indices[indptr[firsts]])
        write_inter(out / f"aebench.{part}.inter",
                    *(pairs(*read_csr(path)[:2]) if path is not None else placeholder))
    return n_users, n_items, int(indptr[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True, type=Path)
    ap.add_argument("--model", required=True, help="a RecBole model class, e.g. MultiVAE")
    ap.add_argument("--config", default="{}", help="JSON: RecBole settings for the model")
    ap.add_argument("--valid", type=Path, help="with --evaluate: the validation part")
    ap.add_argument("--test", type=Path, help="with --evaluate: the test part")
    ap.add_argument("--evaluate", action="store_true",
                    help="train with RecBole's loop, early stopping on --valid, and print "
                         "RecBole's metrics on --test")
    ap.add_argument("--timed", choices=["epoch", "fit"], default="epoch")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        n_users, n_items, nnz = write_atomic(args.train, folder, args.valid, args.test)
        settings = {"data_path": str(folder), "benchmark_filename": ["train", "valid", "test"],
                    "load_col": {"inter": ["user_id", "item_id"]}, "seed": args.seed,
                    "reproducibility": True, "use_gpu": False, "show_progress": False,
                    "checkpoint_dir": str(folder / "saved"), "log_wandb": False,
                    "state": "WARNING", "worker": 0, "epochs": 1,
                    **({"epochs": 300, "metrics": ["Recall", "NDCG"], "topk": [10],
                        "valid_metric": "NDCG@10", "eval_args": {"mode": "full"}}
                       if args.evaluate else {}),
                    **json.loads(args.config)}
        config = Config(model=args.model, dataset="aebench", config_dict=settings)
        logging.getLogger().setLevel(logging.WARNING)
        init_seed(config["seed"], config["reproducibility"])
        torch.set_num_threads(args.threads)  # init_seed and Config may reset it
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        times, result = [], {}
        if args.evaluate:
            model = get_model(config["model"])(config, train_data._dataset)
            trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
            t0 = time.perf_counter()
            best, valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
            times.append(time.perf_counter() - t0)
            test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
            result = {"valid": {k: float(v) for k, v in valid.items()},
                      "test": {k: float(v) for k, v in test.items()}}
        elif args.timed == "fit":
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                model = get_model(config["model"])(config, train_data._dataset)
                times.append(time.perf_counter() - t0)
        else:
            model = get_model(config["model"])(config, train_data._dataset)
            trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
            model.train()
            trainer._train_epoch(train_data, 0, show_progress=False)   # warm-up
            for epoch in range(1, args.repeats + 1):
                t0 = time.perf_counter()
                trainer._train_epoch(train_data, epoch, show_progress=False)
                times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": times, **result, "recbole": recbole.__version__,
                      "torch": torch.__version__, "numpy": np.__version__,
                      "threads": torch.get_num_threads(), "users": n_users, "items": n_items,
                      "interactions": nnz, "model": args.model,
                      "batch_size": config["train_batch_size"]}))


if __name__ == "__main__":
    main()
