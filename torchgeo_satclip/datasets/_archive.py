"""Safe extraction of downloaded archives: nothing lands outside the target.

``tarfile.extractall`` without a filter writes a member named
``../../ESCAPED.txt`` outside the target folder, and follows links an archive
plants. :func:`extract_safely` checks every member before writing anything:
only regular files and folders whose resolved path stays inside the target are
accepted, and any other member (a path that escapes, an absolute path, a
symbolic or hard link, a device, a FIFO) refuses the whole archive. Where
Python has the ``data`` extraction filter (3.12, 3.11.4 and later) it is
applied as well; elsewhere the files are written by this module, one by one.
"""

import gzip
import lzma
import os
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path

__all__ = ['extract_safely']

#: What a damaged or truncated archive raises while it is read.
_DAMAGED = (
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    gzip.BadGzipFile,
    zlib.error,
    lzma.LZMAError,
)
#: Whether ``tarfile`` has extraction filters (PEP 706).
HAS_DATA_FILTER = hasattr(tarfile, 'data_filter')


def _inside(root: Path, name: str) -> Path | None:
    """The resolved path of ``name`` under ``root``, None if it leaves ``root``."""
    if os.path.isabs(name) or name.startswith(('/', '\\')):
        return None
    target = (root / name).resolve()
    return target if target == root or target.is_relative_to(root) else None


def _refuse(archive: Path, name: str, why: str) -> ValueError:
    return ValueError(
        f'{archive}: member {name!r} {why}; refusing to extract this archive '
        '(nothing was written)'
    )


def _tar_members(
    archive: Path, tar: tarfile.TarFile, root: Path
) -> list[tarfile.TarInfo]:
    """Every member of a tar archive, checked (see the module docstring)."""
    members = tar.getmembers()
    for member in members:
        if _inside(root, member.name) is None:
            raise _refuse(archive, member.name, f'would be written outside {root}')
        if not (member.isfile() or member.isdir()):
            kind = 'a link' if member.issym() or member.islnk() else 'a special file'
            raise _refuse(archive, member.name, f'is {kind}, not a regular file')
    return members


def _extract_tar(archive: Path, root: Path) -> None:
    with tarfile.open(archive, 'r:*') as tar:
        members = _tar_members(archive, tar, root)
        if HAS_DATA_FILTER:
            tar.extractall(root, members=members, filter='data')
            return
        for member in members:  # no filter: write the checked files by hand
            target = root / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is None:  # pragma: no cover - isfile() members have data
                raise _refuse(archive, member.name, 'has no data')
            with source, open(target, 'wb') as out:
                shutil.copyfileobj(source, out)


def _extract_zip(archive: Path, root: Path) -> None:
    with zipfile.ZipFile(archive) as handle:
        names = handle.namelist()
        for name in names:
            if _inside(root, name) is None:
                raise _refuse(archive, name, f'would be written outside {root}')
        handle.extractall(root, members=names)


def extract_safely(
    archive: str | os.PathLike[str], directory: str | os.PathLike[str]
) -> None:
    """Extract a tar (any compression) or zip archive into ``directory``.

    Args:
        archive: the archive file.
        directory: where its members go (created if absent).

    Raises:
        ValueError: if the file is neither a tar nor a zip archive, is
            damaged or truncated, or if a member would be written outside
            ``directory`` or is not a regular file or folder; the message
            names the member, and nothing is written.
    """
    archive, root = Path(archive), Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    try:
        if tarfile.is_tarfile(archive):
            _extract_tar(archive, root)
        elif zipfile.is_zipfile(archive):
            _extract_zip(archive, root)
        else:
            raise ValueError(f'{archive} is neither a tar nor a zip archive')
    except _DAMAGED as error:
        raise ValueError(
            f'{archive} is damaged or truncated ({type(error).__name__}: {error}); '
            'delete it and download it again'
        ) from error
