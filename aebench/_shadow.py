"""The clone's top-level folders are packages of `aebench` (`aebench.datasets`, ...), but a
bare `import datasets` run with the clone as the current folder finds the folder first. Where
another distribution ships that name (Hugging Face's `datasets`), that one is what the import
means: `hand_over` loads it in place of the folder."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def hand_over(name: str, file: str) -> bool:
    """Called at the top of a clone folder's `__init__` with its `__name__` and `__file__`:
    when it is being imported under the bare name `name` and another package of that name is
    on sys.path, load that one into `sys.modules[name]` (which the import returns) and say so;
    the caller then skips its own body."""
    if name != os.path.basename(os.path.dirname(file)) or "." in name:
        return False  # imported as aebench.<name>: the normal case
    clone = os.path.realpath(os.path.dirname(os.path.dirname(file)))
    path = [p for p in sys.path if os.path.realpath(p or os.getcwd()) != clone]
    spec = importlib.machinery.PathFinder.find_spec(name, path)
    if spec is None or spec.loader is None:
        return False  # nothing else of that name: the folder may serve
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return True
