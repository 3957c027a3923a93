"""aebench model variants. Importing this package registers every variant.

The contract between models and the rest of aebench is `models/base.py`; each family is one
file here that registers its variants."""

from aebench._shadow import hand_over

if not hand_over(__name__, __file__):  # see aebench/_shadow.py
    from . import (  # noqa: F401 (registers)
        autorec,
        bias,
        cdae,
        cfn,
        content_knn,
        deeprec,
        diffrec,
        ease,
        ease_higher,
        edlae,
        edlae_lowrank,
        group_bias,
        ials,
        inf_ae,
        kernel_ae,
        mf,
        mult,
        mult_side,
        neighbors,
        plugins,
        popularity,
        puresvd,
        recvae,
        sae,
        side_mf,
        side_popularity,
        slim,
        svd_ae,
        vasp,
    )
    from .base import ModelConfig, Recipe, Recommender
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
    from .sae import SAE, SAEConfig

    __all__ = ["SAE", "ModelConfig", "Recipe", "Recommender", "SAEConfig", "Variant", "config",
               "config_from_dict", "create", "get", "list", "override", "plugins", "register"]
