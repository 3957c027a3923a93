"""aebench datasets: MovieLens 100K / 1M and synthetic ratings, and named split protocols."""

AEBENCH = True  # lets the CLI tell this package from a foreign `datasets` on sys.path

from .dataset import Dataset, check_name, load, names  # noqa: E402
from .fetch import DatasetError, download_archive, locate  # noqa: E402
from .specs import SPECS, DatasetSpec  # noqa: E402
from .splits import (  # noqa: E402
    PROTOCOLS,
    Split,
    carve_validation,
    check_split,
    fingerprint,
    make_split,
)

__all__ = ["AEBENCH", "Dataset", "DatasetError", "DatasetSpec", "PROTOCOLS", "SPECS", "Split",
           "carve_validation", "check_name", "check_split", "download_archive", "fingerprint",
           "load", "locate", "make_split", "names"]
