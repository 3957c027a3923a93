"""aebench datasets: MovieLens 100K / 1M and synthetic ratings, and named split protocols."""

AEBENCH = True  # lets the CLI tell this package from a foreign `datasets` on sys.path

from .dataset import Dataset, load, names  # noqa: E402
from .fetch import DatasetError, download_archive, locate  # noqa: E402
from .specs import SPECS, DatasetSpec  # noqa: E402
from .splits import PROTOCOLS, Split, fingerprint, make_split  # noqa: E402

__all__ = ["AEBENCH", "Dataset", "DatasetError", "DatasetSpec", "PROTOCOLS", "SPECS", "Split",
           "download_archive", "fingerprint", "load", "locate", "make_split", "names"]
