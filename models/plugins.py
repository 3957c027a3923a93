"""Model plugins: variants registered from outside the repository, through the same
`models.register(...)` the built-in families use.

- Installed: a distribution declares an entry point in the group `aebench.models`; the object
  it names is a module (importing it registers its variants) or a callable of no arguments
  (called once, it registers them). `load_installed()` loads every one; a broken one is
  reported (`broken()`) and the built-in variants still run.
- Named: `load(spec)` takes an importable module name, a `.py` file, or the name of an
  installed entry point; a failure raises `PluginError` naming the plugin, its entry point and
  the error, and the command stops before any work.

A plugin that raises, registers a name already taken, or declares an invalid config or
search space leaves the registry as it was. `info(name)` is what a record carries: the
plugin's module, entry point, distribution and version.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import importlib.util
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

from . import registry

GROUP = "aebench.models"


class PluginError(Exception):
    """A plugin that could not be imported or could not register its variants."""


@dataclass(frozen=True)
class Plugin:
    name: str                       # the entry point's name, or the module or file given
    module: str                     # the module it imported
    entry_point: str | None = None  # "name = value" of an installed entry point
    distribution: str | None = None
    version: str | None = None
    variants: tuple[str, ...] = ()


_LOADED: dict[str, Plugin] = {}    # by name
_BROKEN: dict[str, str] = {}       # installed entry points that failed: name -> message


def _run(name: str, module: str, entry: str | None, loader) -> tuple[str, ...]:
    """Call `loader` with registrations credited to `name`; the variants it added."""
    where = f"plugin {name!r}" + (f" (entry point {entry!r})" if entry else "")
    try:
        with registry.registering_for(name) as added:
            obj = loader()
            if callable(obj) and not isinstance(obj, ModuleType):
                obj()
    except PluginError:
        raise
    except BaseException as exc:  # noqa: BLE001 - a plugin may raise anything
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise PluginError(f"{where}: {type(exc).__name__}: {exc}") from exc
    if not added:
        sys.modules.pop(module, None)
        raise PluginError(f"{where}: importing {module!r} registered no variant "
                          "(call models.register(...) at import, or name a function that "
                          "does)")
    return tuple(added)


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name)


def _load_entry_point(ep: metadata.EntryPoint) -> Plugin:
    entry = f"{ep.name} = {ep.value}"
    dist = getattr(ep, "dist", None)
    added = _run(ep.name, ep.module, entry, ep.load)
    plugin = Plugin(ep.name, ep.module, entry, dist.name if dist else None,
                    dist.version if dist else None, added)
    _LOADED[ep.name] = plugin
    return plugin


def load_installed() -> list[str]:
    """Load every installed `aebench.models` entry point not loaded yet; returns the messages
    of those that failed this time (each is reported once; see `broken()`)."""
    failed = []
    for ep in _entry_points():
        if ep.name in _LOADED or ep.name in _BROKEN:
            continue
        try:
            _load_entry_point(ep)
        except PluginError as exc:
            _BROKEN[ep.name] = str(exc)
            failed.append(str(exc))
    return failed


def broken() -> dict[str, str]:
    """Installed plugins that failed to load: name -> why."""
    return dict(_BROKEN)


def _distribution_of(module: str) -> tuple[str | None, str | None]:
    top = module.split(".")[0]
    for dist in metadata.packages_distributions().get(top, []):
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None, None


def load(spec: str) -> Plugin:
    """Load the plugin `spec` names (once): an installed entry point's name, a `.py` file, or
    an importable module. Raises PluginError."""
    key = str(Path(spec).resolve()) if spec.endswith(".py") else spec
    if key in _LOADED:
        return _LOADED[key]
    same = [p for p in _LOADED.values() if p.module == spec]
    if same:  # an installed plugin already imported this module
        return same[0]
    eps = {ep.name: ep for ep in _entry_points()}
    if spec in eps:
        _BROKEN.pop(spec, None)
        return _load_entry_point(eps[spec])
    if spec.endswith(".py"):
        path = Path(spec)
        if not path.is_file():
            raise PluginError(f"plugin {spec!r}: no such file")
        module = f"aebench_plugin_{path.stem.replace('-', '_')}"

        def loader():
            mod_spec = importlib.util.spec_from_file_location(module, path)
            mod = importlib.util.module_from_spec(mod_spec)
            sys.modules[module] = mod
            try:
                mod_spec.loader.exec_module(mod)
            except BaseException:
                sys.modules.pop(module, None)
                raise
            return mod

        plugin = Plugin(key, module, variants=_run(key, module, None, loader))
    else:
        if importlib.util.find_spec(spec.split(".")[0]) is None:
            raise PluginError(f"plugin {spec!r}: no module, .py file or installed entry point "
                              f"(group {GROUP!r}) of that name"
                              + (f"; installed: {', '.join(eps)}" if eps else ""))
        added = _run(spec, spec, None, lambda: importlib.import_module(spec))
        plugin = Plugin(spec, spec, None, *_distribution_of(spec), added)
    _LOADED[key] = plugin
    return plugin


def loaded() -> list[Plugin]:
    return list(_LOADED.values())


def info(name: str) -> dict | None:
    """What a record says of where variant `name` came from: None for a built-in one."""
    origin = registry.get(name).plugin
    if origin is None:
        return None
    plugin = _LOADED.get(origin)
    out = asdict(plugin) if plugin else {"name": origin}
    out.pop("variants", None)
    return out
