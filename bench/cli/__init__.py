"""aebench's command line: `python -m bench COMMAND` (or `aebench COMMAND` where installed).

One module per command; each has `add(sub, default)`, which declares its options, and
`main(args, sub)`, which runs it. This module only wires them. Every option is checked
before any data is loaded or any model trains.

Exit status: 0 done; 1 a cell failed, or a gate failed (`perf-check`); 2 bad input: an
option, an experiment file's key, a data file's line, a dataset's size, a plugin, an output
folder that cannot be written; 130 interrupted (finished cells are kept; the message prints
the `--resume` command).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import time

from .options import Parser

# command -> module: names as data; `list` is `listing` so the module does not shadow a builtin
COMMANDS = {"run": "run", "tune": "tune", "list": "listing", "report": "report",
            "compare": "compare", "speed": "speed", "perf-check": "perf_check",
            "timings": "timings", "recommend": "recommend", "serve": "serve",
            "load-test": "load_test", "site": "site"}


def module(command: str):
    return importlib.import_module(f"{__name__}.{COMMANDS[command]}")


def default(name: str):
    """A cell setting's default, written once in `RunConfig`."""
    from aebench.bench.runs.runner import RunConfig

    return {f.name: f.default for f in dataclasses.fields(RunConfig)}[name]


def parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    p = Parser(prog="python -m bench",
               description="aebench: compare autoencoder recommenders on MovieLens.",
               epilog=__doc__[__doc__.index("Exit status"):],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           parser_class=Parser)
    subs = {name: module(name).add(sub, default) for name in COMMANDS}
    return p, subs


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    p, subs = parser()
    args, extra = p.parse_known_args(argv)
    args.started = started  # `run` reports its start-up from here (grids.jsonl)
    if args.command == "timings":
        return module("timings").main(args, extra)
    sub = subs[args.command]
    if extra:
        sub.error(f"unrecognized arguments: {' '.join(extra)}")
    args.experiment = None
    if getattr(args, "config", None):
        from .checks import read_experiment

        rest = list(sys.argv[1:] if argv is None else argv)
        rest = rest[rest.index(args.command) + 1:]
        if args.command in ("recommend", "serve"):  # a run's file: its datasets, plugins
            run = read_experiment(subs["run"], argparse.Namespace(config=args.config), [],
                                  report=sub)
            args.plugins = [*run.values.get("plugins", []), *args.plugins]
        else:
            args.experiment = read_experiment(sub, args, rest)
    if hasattr(args, "plugins"):
        from .checks import load_plugins

        load_plugins(sub, args.plugins)
    if args.experiment is not None:
        from aebench.bench.runs.experiment import ExperimentError

        try:
            args.experiment.check_overrides()
        except ExperimentError as exc:
            sub.error(f"argument --config: {exc}")
    return module(args.command).main(args, sub)
