"""Time one RecBole model on a training matrix aebench wrote: run by `bench speed --peers`
in RecBole's own environment (RecBole 1.2.1 pins numpy<2), so it imports nothing of
aebench's, only numpy, torch and recbole.

    python recbole_epoch.py --train train.npz --model MultiVAE --config '{...}' \
        --timed epoch --repeats 3 --threads 2

`train.npz` holds a CSR matrix (`indptr`, `indices`, `shape`): users x items, every entry an
interaction. The script writes it as RecBole atomic files (RecBole's `benchmark_filename`
route, so RecBole splits nothing), builds RecBole's dataset, dataloader, model and trainer
exactly as `recbole.quick_start.run_recbole` does, and times `Trainer._train_epoch` after one
warm-up epoch (`--timed epoch`), or the model's construction, where RecBole's closed-form
models fit (`--timed fit`). Prints one JSON object: the seconds of each timed repeat and the
versions and sizes it ran with.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def write_atomic(train: Path, folder: Path) -> tuple[int, int, int]:
    """`folder/aebench/aebench.{train,valid,test}.inter` from the CSR in `train`; the valid
    and test files hold one interaction of the first users (RecBole wants them non-empty;
    they are never evaluated here). Returns (users, items, interactions)."""
    z = np.load(train)
    indptr, indices = z["indptr"], z["indices"]
    n_users, n_items = (int(v) for v in z["shape"])
    users = np.repeat(np.arange(n_users), np.diff(indptr))
    out = folder / "aebench"
    out.mkdir(parents=True)
    header = "user_id:token\titem_id:token\n"
    with open(out / "aebench.train.inter", "w") as fh:
        fh.write(header)
        fh.write("".join(f"{u}\t{i}\n" for u, i in zip(users.tolist(), indices.tolist())))
    firsts = [(u, indices[indptr[u]]) for u in range(min(n_users, 10)) if indptr[u + 1] > indptr[u]]
    for part in ("valid", "test"):
        with open(out / f"aebench.{part}.inter", "w") as fh:
            fh.write(header + "".join(f"{u}\t{i}\n" for u, i in firsts))
    return n_users, n_items, int(indptr[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True, type=Path)
    ap.add_argument("--model", required=True, help="a RecBole model class, e.g. MultiVAE")
    ap.add_argument("--config", default="{}", help="JSON: RecBole settings for the model")
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
        n_users, n_items, nnz = write_atomic(args.train, folder)
        settings = {"data_path": str(folder), "benchmark_filename": ["train", "valid", "test"],
                    "load_col": {"inter": ["user_id", "item_id"]}, "seed": args.seed,
                    "reproducibility": True, "use_gpu": False, "show_progress": False,
                    "checkpoint_dir": str(folder / "saved"), "log_wandb": False,
                    "state": "WARNING", "worker": 0, "epochs": 1,
                    **json.loads(args.config)}
        config = Config(model=args.model, dataset="aebench", config_dict=settings)
        logging.getLogger().setLevel(logging.WARNING)
        init_seed(config["seed"], config["reproducibility"])
        torch.set_num_threads(args.threads)  # init_seed and Config may reset it
        dataset = create_dataset(config)
        train_data, _, _ = data_preparation(config, dataset)
        times = []
        if args.timed == "fit":
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
    print(json.dumps({"seconds": times, "recbole": recbole.__version__,
                      "torch": torch.__version__, "numpy": np.__version__,
                      "threads": torch.get_num_threads(), "users": n_users, "items": n_items,
                      "interactions": nnz, "model": args.model,
                      "batch_size": config["train_batch_size"]}))


if __name__ == "__main__":
    main()
