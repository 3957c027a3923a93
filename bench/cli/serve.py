"""`serve`: an HTTP API and a web page over the models a run folder trained."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import POSITIVE, data_dir_option, int_at_least, plugin_option


def add(sub, default) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="serve a run's trained models over HTTP, with a page "
                                     "that compares two of them on one person")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a folder `bench run` wrote "
                                                      "(runs.jsonl and weights/)")
    p.add_argument("--models", nargs="+", metavar="NAME",
                   help="served names (the variant, `name:tuned` for a tuned recipe); "
                        "default: every variant the run trained on the dataset")
    p.add_argument("--dataset", help="the dataset served (needed when the run has several)")
    p.add_argument("--seed", type=int_at_least(0),
                   help="the cell seed served (default: the lowest every model has)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default %(default)s: this machine only)")
    p.add_argument("--port", type=int_at_least(0), default=8000,
                   help="port (default %(default)s; 0 picks a free one)")
    p.add_argument("--threads", type=POSITIVE, default=1,
                   help="torch threads per request (default %(default)s: concurrent "
                        "requests are the parallelism)")
    data_dir_option(p)
    plugin_option(p)
    p.add_argument("--config", metavar="FILE.toml",
                   help="the run's experiment file: its [dataset.NAME] tables and plugins")
    return p


def main(args, sub) -> int:
    from .checks import require_extra

    require_extra("serve", "serve", "fastapi", "uvicorn")
    import torch
    import uvicorn
    from aebench.bench.runs.runner import SplitCache
    from aebench.bench.service.app import create_app
    from aebench.bench.service.served import ServeError, load_run
    from aebench.datasets import DatasetError

    torch.set_num_threads(args.threads)
    try:
        cat = load_run(Path(args.run_dir), SplitCache(args.data_dir), args.dataset,
                       args.models, args.seed)
    except (ServeError, DatasetError) as exc:
        sys.exit(f"aebench: {exc}")
    seed = next(iter(cat.models.values())).record.seed
    print(f"serving {', '.join(cat.models)} ({cat.split.dataset} {cat.split.name}, cell seed "
          f"{seed}) on http://{args.host}:{args.port}/ (API: /v1, OpenAPI: "
          "/openapi.json)", flush=True)
    uvicorn.run(create_app(cat), host=args.host, port=args.port, log_level="warning",
                access_log=False)
    return 0
