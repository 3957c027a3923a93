"""aebench model variants. Importing this package registers every variant."""

from . import sae  # noqa: F401  (registers the SAE family)
from .registry import Variant, config, create, get, list, override, register  # noqa: A004
from .sae import SAE, Recipe, SAEConfig

__all__ = ["SAE", "Recipe", "SAEConfig", "Variant", "config", "create", "get", "list",
           "override", "register"]
