"""Checks that need more than one option, made before any model trains. Each failure exits
with status 2 (`options.INPUT_ERROR`) and names the option, file, line or key to change."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .options import INPUT_ERROR, suggest


def fail(message: str) -> None:
    """An input error found after parsing (a data file's line, a dataset's shape): the same
    status as a bad option."""
    print(f"aebench: error: {message}", file=sys.stderr)
    sys.exit(INPUT_ERROR)


def load_plugins(sub: argparse.ArgumentParser, specs: list[str]) -> None:
    """The installed plugins (a broken one is reported once, on stderr, and the built-in
    variants still run), then the named ones (a broken one stops the command)."""
    from aebench.models import plugins

    for message in plugins.load_installed():
        print(f"aebench: warning: {message}; its variants are not available", file=sys.stderr)
    for spec in specs:
        try:
            plugins.load(spec)
        except plugins.PluginError as exc:
            sub.error(f"argument --plugin: {exc}")


def resolve_models(sub: argparse.ArgumentParser, patterns: list[str],
                   option: str = "-m/--models") -> list[str]:
    """Every pattern must match a registered variant."""
    from aebench import models

    for pattern in patterns:
        if not models.list(pattern):
            broken = models.plugins.broken()
            sub.error(f"argument {option}: {pattern!r} matches no registered model"
                      + suggest(pattern, models.list())
                      + f"; registered: {', '.join(models.list())}"
                      + (f"; broken plugins: {'; '.join(broken.values())}" if broken else ""))
    return models.list(patterns)


def check_devices(sub: argparse.ArgumentParser, option: str, devices: list[str]) -> None:
    from aebench.bench.engines.device import available

    for dev in devices:
        if dev not in available():
            sub.error(f"argument {option}: {dev}: no CUDA device is available on this machine "
                      f"(available: {', '.join(available())})")


def check_datasets(sub: argparse.ArgumentParser, names: list[str], split: str | None,
                   option: str = "-d/--datasets") -> list[str]:
    """The datasets' names as cells carry them: a file given by path (`-d data/ratings.csv`)
    is registered under its file stem (`ratings`). Unknown names and splits, synthetic shapes
    that cannot be made, and files that do not exist stop here."""
    from aebench.bench.runs.runner import default_split

    from aebench import datasets

    out = []
    for name in names:
        try:
            datasets.check_name(name)
        except datasets.DatasetError as exc:
            sub.error(f"argument {option}: {exc}{suggest(name, datasets.names())}")
        spec = datasets.file_spec(name)
        if spec is not None and datasets.registered(name) is None:  # `-d PATH`
            stem = Path(spec.path).stem
            known = datasets.registered(stem)
            path = str(Path(spec.path).expanduser().resolve())
            if known is not None and known.path != path:
                sub.error(f"argument {option}: {name}: another dataset is registered as "
                          f"{stem!r} ({known.path}); name one of them in an experiment file's "
                          "[dataset.NAME] table")
            try:
                datasets.register_file(dataclasses.replace(spec, name=stem, path=path))
            except datasets.DatasetError as exc:
                sub.error(f"argument {option}: {name}: {exc}; a file given by path is named by "
                          "its stem: rename it, or name it in an experiment file's "
                          "[dataset.NAME] table")
            name = stem
        try:
            datasets.check_split(name, split or default_split(name))
        except datasets.DatasetError as exc:
            sub.error(f"argument --split: {exc}{suggest(split or '', datasets.PROTOCOLS)}")
        out.append(name)
    return out


def preload(cache, names: list[str], split: str | None, seeds: range,
            fraction: float = 0.0) -> None:
    """Load every dataset and make every split and its validation carving once, before the
    grid: a dataset that cannot be had, a shape that cannot fit, or a split it cannot give
    stops the command once with the reason, whatever the number of cells."""
    from aebench.bench.runs.runner import default_split

    from aebench import datasets

    for name in names:
        try:
            datasets.check_size(name, datasets.registered(name))
            for seed in seeds:
                view = cache.fitting_view(name, split or default_split(name), seed, fraction)
                if view.train.nnz == 0:
                    raise datasets.DatasetError(
                        f"{split or default_split(name)} leaves no training rating")
        except datasets.DatasetError as exc:
            text = str(exc)
            fail(text if name in text or str(getattr(datasets.registered(name), "path", ""))
                 in text.split(":")[0] else f"{name}: {text}")


def check_precision(sub: argparse.ArgumentParser, option: str, precision: str,
                    device: str) -> None:
    """Refuse a precision the device lacks, and warn where bf16 is emulated."""
    from aebench.bench.engines import precision as prec

    if precision == prec.AUTO:  # never a precision the device lacks or emulates
        return
    try:
        prec.check(precision, device)
    except ValueError as exc:
        sub.error(f"argument {option}: {exc}")
    if prec.warning(precision, device):
        print(f"aebench: warning: {prec.warning(precision, device)}", file=sys.stderr)


def default_executor(workers: int | None, devices=("cpu",), whole_grid: bool = False) -> str:
    """The executor when `--executor` is not given: worker processes where they pay
    (`--workers` given, or `run --all` of CPU cells on a machine of two or more cores: one
    1-thread worker per core, longest cells first, since most families gain little from a
    second thread), else this process. CUDA cells stay in this process: worker processes
    would share its one device."""
    from aebench.bench.runs.executors import cores

    if workers is not None:
        return "processes"
    if whole_grid and cores() > 1 and set(devices) == {"cpu"}:
        return "processes"
    return "local"


def check_executor(sub: argparse.ArgumentParser, name: str, workers: int | None = None
                   ) -> None:
    """The executor's extra is installed (before the dry run says all is well), and
    `--workers` goes with the executor that has workers."""
    import importlib.util

    if workers is not None and name != "processes":
        sub.error(f"argument --workers: it sizes --executor processes (this is {name})")
    if name == "ray" and importlib.util.find_spec("ray") is None:
        sub.error("argument --executor: ray is not installed; pip install -e .[ray] (or "
                  "pip install 'aebench[ray]')")


def require_extra(command: str, extra: str, *modules: str) -> None:
    """The packages of a command's extra import, else exit naming the missing one and the
    install command (before any work)."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            sys.exit(f"aebench: `{command}` needs the {extra} extra ({exc.name} is missing): "
                     f"pip install 'aebench[{extra}]'")


def executor(sub: argparse.ArgumentParser, args):
    from aebench.bench.runs import executors

    try:
        return executors.make(args.executor, args.address, args.threads,
                              workers=getattr(args, "workers", None))
    except RuntimeError as exc:
        sub.error(f"argument --executor: {exc}")


def check_out(sub: argparse.ArgumentParser, out: Path, need_bytes: int = 0,
              option: str = "--out") -> None:
    """The output folder can be written (its nearest existing ancestor, when it does not
    exist yet) and its disk has room for `need_bytes`; nothing is created."""
    probe = Path(out).resolve()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        sub.error(f"argument {option}: {out}: {probe} is a file, not a folder")
    try:  # a real write: permission bits do not stop root, a read-only file system does
        fd, name = tempfile.mkstemp(prefix=".aebench-probe-", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        sub.error(f"argument {option}: {out}: {probe} is not writable ({exc.strerror})")
    free = shutil.disk_usage(probe).free
    if need_bytes > free:
        sub.error(f"argument {option}: {out}: the plan writes about {need_bytes / 1e6:,.0f} MB "
                  f"(records, weights, per-user values) and {probe} has "
                  f"{free / 1e6:,.0f} MB free")


def check_records(sub: argparse.ArgumentParser, out: Path, option: str = "--out") -> list:
    """An existing runs.jsonl parses before anything is appended to it (its records, or [])."""
    from aebench.bench.runs import records

    if not (Path(out) / "runs.jsonl").is_file():
        return []
    try:
        return records.read(Path(out))
    except ValueError as exc:
        sub.error(f"argument {option}: {exc}; mend or move that line before writing more "
                  "records there")


def read_experiment(sub: argparse.ArgumentParser, args: argparse.Namespace,
                    argv: list[str], report: argparse.ArgumentParser | None = None):
    """Read `--config` against `sub`'s options, register its datasets, and fill the options
    the command line did not set (naming the file, line and key on any error, through
    `report`, default `sub`)."""
    from aebench.bench.runs import experiment

    from aebench import datasets

    report = report or sub
    try:
        exp = experiment.load(args.config, sub)
        for spec in exp.datasets:
            try:
                datasets.register_file(spec)
            except datasets.DatasetError as exc:
                raise experiment.ExperimentError(
                    f"{exp.path}:{experiment.header_line(exp.text, f'dataset.{spec.name}')}: "
                    f"{exc}") from None
    except experiment.ExperimentError as exc:
        report.error(f"argument --config: {exc}")
    experiment.merge(exp, args, experiment.given(sub, argv))
    return exp


def memory_for(args) -> float | None:
    """The memory the cells of a run on this machine may hold at once (MB): what it has
    available now; None for a Ray cluster joined at an address (Ray places the cells by
    their memory requests) or with --ignore-memory."""
    from aebench.bench.engines.device import available_mb

    if getattr(args, "address", None) or getattr(args, "ignore_memory", False):
        return None
    return available_mb()


def check_memory(sub: argparse.ArgumentParser, the_plan, args) -> None:
    """Refuse, before any work, a plan with a cell whose estimated peak exceeds the memory
    this machine has available (unless --ignore-memory)."""
    from aebench.bench.runs.plan import too_big

    lacking = too_big(the_plan, memory_for(args))
    if lacking:
        more = f" (and {len(lacking) - 3} more)" if len(lacking) > 3 else ""
        sub.error("this plan does not fit this machine's memory: " + "; ".join(lacking[:3])
                  + more + ". Run those cells on a larger machine (or a Ray cluster: "
                  "--executor ray --address), or add --ignore-memory to try anyway")
