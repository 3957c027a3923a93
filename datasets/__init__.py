"""aebench datasets: MovieLens (100K to 25M), users' own rating files, synthetic ratings, and
named split protocols."""

from aebench._shadow import hand_over

if not hand_over(__name__, __file__):  # see aebench/_shadow.py
    from .dataset import (
        Dataset,
        available_memory,
        check_name,
        check_size,
        estimated_bytes,
        file_spec,
        load,
        names,
        register_file,
        registered,
    )
    from .fetch import DatasetError, download_archive, locate
    from .specs import SPECS, DatasetSpec
    from .splits import (
        PROTOCOLS,
        Split,
        carve_validation,
        check_split,
        fingerprint,
        make_split,
    )
    from .user import FileSpec

    __all__ = ["Dataset", "DatasetError", "DatasetSpec", "FileSpec", "available_memory",
               "check_size", "estimated_bytes",
               "file_spec", "register_file", "registered", "PROTOCOLS", "SPECS", "Split",
               "carve_validation", "check_name", "check_split", "download_archive", "fingerprint",
               "load", "locate", "make_split", "names"]
