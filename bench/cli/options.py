"""Option types and the option groups several commands share.

Each type names what it accepts, so that argparse's message names the option and the valid
values. `Parser` adds "did you mean" to argparse's errors for mistyped options and choices.
"""

from __future__ import annotations

import argparse
import difflib
import math
import re

INPUT_ERROR = 2  # the exit status of every input error: an option, a file, a line, a plugin


def suggest(word: str, candidates, n: int = 3) -> str:
    """`; did you mean 'x'?` for the closest candidates, or nothing."""
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=n, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


class Parser(argparse.ArgumentParser):
    """argparse with suggestions: an unknown option or a mistyped choice names the closest
    valid ones."""

    def error(self, message: str):
        bad = re.match(r"unrecognized arguments: (.*)", message)
        if bad:
            options = [s for a in self._actions for s in a.option_strings]
            hints = [suggest(w.split("=")[0], options) for w in bad.group(1).split()
                     if w.startswith("-")]
            message += "".join(h for h in hints if h)
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            valid = [c.strip().strip("'") for c in choice.group(2).split(",")]
            message += suggest(choice.group(1), valid)
        super().error(message)


def int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer "
                                             f"(give an integer >= {low})") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is out of range (give an integer "
                                             f">= {low})")
        return value
    return parse


def float_in(low: float, high: float = math.inf, low_open: bool = False,
             high_open: bool = True):
    lo, hi = "(" if low_open else "[", ")" if high_open else "]"
    span = f"a finite number in {lo}{low:g}, {'inf' if high == math.inf else f'{high:g}'}{hi}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number (give {span})") from None
        if not math.isfinite(value) or value < low or value > high or (
                low_open and value == low) or (high_open and value == high):
            raise argparse.ArgumentTypeError(f"{text} is out of range (give {span})")
        return value
    return parse


POSITIVE = int_at_least(1)
NONNEGATIVE = int_at_least(0)
LR = float_in(0.0, low_open=True)
WEIGHT_DECAY = float_in(0.0)
FRACTION = float_in(0.0, 1.0)
RELEVANCE = float_in(1.0, 5.0, high_open=False)


def executor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", choices=["local", "processes", "ray"],
                        help="run cells (or trials) in this process, in worker processes on "
                             "this machine (--workers, longest cells first, within the "
                             "machine's memory), or as Ray tasks (pip install -e .[ray]); "
                             "default: processes with --workers, and for `run --all` of CPU "
                             "cells on a machine of two or more cores; else local")
    parser.add_argument("--workers", type=POSITIVE,
                        help="worker processes of --executor processes (default: the cores "
                             "divided by --threads)")
    parser.add_argument("--address", help="with --executor ray: join this Ray cluster "
                                           "(default: start a local one)")
    parser.add_argument("--threads", type=POSITIVE,
                        help="torch and numba threads per cell or trial (Ray and processes: "
                             "CPUs per task, default 1; local: default torch's)")


def config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE.toml",
                        help="experiment file: its keys are these options' long names, plus "
                             "[dataset.NAME] tables; options given here override it")
    parser.add_argument("--dry-run", action="store_true",
                        help="check and resolve everything (plugins, datasets, splits and "
                             "carvings, recipes, devices, the output folder), print the cells "
                             "with their estimated cost, and stop")


def plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", dest="plugins", action="append", default=[],
                        metavar="MODULE_OR_FILE",
                        help="load model variants from this module, .py file or installed "
                             "entry point first (repeatable; installed `aebench.models` "
                             "entry points load anyway)")


def data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder with ml-100k/, ml-1m/ or their zips "
                                           "(default: BENCH_DATA_DIR, then the cache)")
