"""Finding a dataset's files: a local folder, the user cache, or a verified download.

Order: the explicit data dir (`--data-dir`, else `BENCH_DATA_DIR`) holding `<name>/` or
`<name>.zip`; then the cache; else a download from GroupLens into the cache. A download is
written to a temporary file, checked against the spec's md5 and only then renamed into
place, so a corrupt or interrupted download never lands in the cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from . import settings
from .specs import DatasetSpec


class DatasetError(Exception):
    """A dataset file is missing, corrupt or malformed; the message names the file."""


def locate(spec: DatasetSpec, data_dir: str | os.PathLike | None = None,
           download: bool = True) -> Path:
    """Return the folder holding the extracted files of `spec`."""
    base = Path(data_dir) if data_dir is not None else settings.data_dir()
    if base is not None:
        if not base.is_dir():
            raise DatasetError(
                f"data dir {base} does not exist (from --data-dir or BENCH_DATA_DIR)")
        found = _folder_or_zip(spec, base)
        if found is not None:
            return found
    cache = settings.cache_dir()
    found = _folder_or_zip(spec, cache) if cache.is_dir() else None
    if found is not None:
        return found
    where = f"{base} or {cache}" if base is not None else str(cache)
    if not download:
        raise DatasetError(f"{spec.name} not found in {where} and downloads are off. "
                           + supply_hint(spec, cache))
    try:
        archive = download_archive(spec.url, spec.md5, cache / f"{spec.folder}.zip")
    except DatasetError as exc:
        raise DatasetError(f"{spec.name} not found in {where}, and {exc}. "
                           + supply_hint(spec, cache)) from exc
    return extract(archive, spec.folder, cache)


def supply_hint(spec: DatasetSpec, cache: Path) -> str:
    """How to supply a dataset by hand."""
    md5 = f"md5 {spec.md5}, " if spec.md5 else ""
    return (f"Put {spec.folder}.zip ({md5}from {spec.url}) or its extracted "
            f"{spec.folder}/ folder in a folder named by --data-dir or BENCH_DATA_DIR, or in "
            f"the cache folder {cache} (BENCH_CACHE_DIR)")


def _folder_or_zip(spec: DatasetSpec, base: Path) -> Path | None:
    folder = base / spec.folder
    if (folder / spec.ratings_file).is_file():
        return folder
    archive = base / f"{spec.folder}.zip"
    if archive.is_file():
        target = base if os.access(base, os.W_OK) else settings.cache_dir()
        return extract(archive, spec.folder, target)
    return None


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download_archive(url: str, md5: str | None, dest: Path, timeout: float = 60.0) -> Path:
    """Download `url` to `dest` through a temporary file, keeping it only if its md5 matches
    and it is a sound zip archive (with no published md5, the zip check alone; its md5 is
    printed so that a user can pin it)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}",
                      leave=False) as bar:
                while block := resp.read(1 << 16):
                    out.write(block)
                    bar.update(len(block))
        got = md5sum(tmp)
        if md5 is not None and got != md5:
            raise DatasetError(
                f"checksum mismatch for {url}: md5 {got}, expected {md5}; nothing was kept")
        try:
            with zipfile.ZipFile(tmp) as zf:
                bad = zf.testzip()
        except zipfile.BadZipFile as exc:
            raise DatasetError(f"{url} is not a valid zip archive ({exc}); nothing was kept"
                               ) from exc
        if bad is not None:
            raise DatasetError(f"{url}: member {bad} is corrupt; nothing was kept")
        if md5 is None:
            print(f"downloaded {url} (no published checksum; md5 {got})")
        os.replace(tmp, dest)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"download of {url} failed: {exc}") from exc
    return dest


def extract(archive: Path, folder: str, target: Path) -> Path:
    """Extract `folder/` from `archive` into `target`, atomically (temp dir, then rename)."""
    final = target / folder
    if final.is_dir():
        return final
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder}.", dir=target))
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise DatasetError(f"{archive}: member {bad} is corrupt")
            names = [n for n in zf.namelist() if n.startswith(f"{folder}/")]
            if not names:
                raise DatasetError(f"{archive}: no {folder}/ folder inside")
            zf.extractall(tmp, members=names)
        os.replace(tmp / folder, final)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{archive}: not a valid zip archive ({exc})") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
