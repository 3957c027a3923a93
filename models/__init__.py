"""aebench model variants. Importing this package registers every variant."""

from . import sae  # noqa: F401  (registers the SAE family)
from .registry import (  # noqa: A004
    Variant,
    config,
    config_from_dict,
    create,
    get,
    list,
    override,
    register,
)
from .sae import SAE, Recipe, SAEConfig

__all__ = ["SAE", "Recipe", "SAEConfig", "Variant", "config", "config_from_dict", "create", "get",
           "list", "override", "register"]
