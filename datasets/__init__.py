"""aebench datasets: MovieLens (100K to 25M), users' own rating files, synthetic ratings, and
named split protocols."""

AEBENCH = True  # lets the CLI tell this package from a foreign `datasets` on sys.path

from .dataset import (  # noqa: E402
    Dataset,
    check_name,
    file_spec,
    load,
    names,
    register_file,
    registered,
)
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
from .user import FileSpec  # noqa: E402

__all__ = ["AEBENCH", "Dataset", "DatasetError", "DatasetSpec", "FileSpec",
           "file_spec", "register_file", "registered", "PROTOCOLS", "SPECS", "Split",
           "carve_validation", "check_name", "check_split", "download_archive", "fingerprint",
           "load", "locate", "make_split", "names"]
