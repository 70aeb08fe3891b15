"""Safe extraction of downloaded archives: nothing lands outside the target.

``tarfile.extractall`` without a filter writes a member named
``../../ESCAPED.txt`` outside the target folder, and follows links an archive
plants. :func:`extract_safely` checks every member before writing anything:
only regular files and folders whose resolved path stays inside the target are
accepted, and any other member (a path that escapes, an absolute path, a
symbolic or hard link, a device, a FIFO) refuses the whole archive. Where
Python has the ``data`` extraction filter (3.12, 3.11.4 and later) every
member must pass it as well. The files are then written by this module, one
by one, each atomically (:func:`~torchgeo_satclip._io.atomic_path`): an
extraction that fails or is killed half-way (a full disk, Ctrl-C) leaves
every file as it was or complete, never cut, even when it rewrites the images
already there to bring back a lost one. It returns the names of the files
written, which the dataset records as what the archive gave (so that a file
the archive lacks is not a reason to extract it again).
"""

import gzip
import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO

from .._io import atomic_path

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


def _check_file_paths(
    archive: Path, root: Path, members: list[tuple[str, Path, bool]]
) -> None:
    """Refuse a file member whose path is a folder, before anything is written.

    A file named ``.`` (or ``a/..``) resolves to *root* itself, and a file
    named as a folder member (or as the parent of another member) cannot be
    both; writing either failed half-way with an unclear ``OSError``.

    Args:
        archive: the archive, for the message.
        root: the resolved target folder.
        members: each member's name, resolved target and whether it is a folder.

    Raises:
        ValueError: naming the first such file member.
    """
    folders = {root}
    for _, target, is_dir in members:
        folders.update(target.parents)
        if is_dir:
            folders.add(target)
    for name, target, is_dir in members:
        if not is_dir and target in folders:
            if target == root:
                what = 'the target folder itself'
            else:
                what = 'a folder of the archive'
            raise _refuse(archive, name, f'is a file whose path ({target}) is {what}')


def _written(root: Path, target: Path) -> str:
    """The name of a file written at *target*, relative to *root* (``a/b.tif``)."""
    return target.relative_to(root).as_posix()


def _write(source: IO[bytes], target: Path) -> None:
    """Copy one member's data to *target* atomically (never a cut file)."""
    with source, atomic_path(target) as tmp, open(tmp, 'wb') as out:
        shutil.copyfileobj(source, out)


def _tar_members(
    archive: Path, tar: tarfile.TarFile, root: Path
) -> list[tuple[tarfile.TarInfo, Path]]:
    """Every member of a tar archive, checked (see the module docstring).

    Returns:
        Each member with the resolved path it is written to.
    """
    members = []
    for member in tar.getmembers():
        target = _inside(root, member.name)
        if target is None:
            raise _refuse(archive, member.name, f'would be written outside {root}')
        if not (member.isfile() or member.isdir()):
            kind = 'a link' if member.issym() or member.islnk() else 'a special file'
            raise _refuse(archive, member.name, f'is {kind}, not a regular file')
        if HAS_DATA_FILTER:
            try:
                tarfile.data_filter(member, str(root))  # type: ignore[attr-defined]
            except tarfile.FilterError as error:  # type: ignore[attr-defined]
                raise _refuse(
                    archive, member.name, f'is refused by the data filter ({error})'
                ) from None
        members.append((member, target))
    _check_file_paths(
        archive, root, [(m.name, target, m.isdir()) for m, target in members]
    )
    return members


def _extract_tar(archive: Path, root: Path) -> list[str]:
    files: list[str] = []
    with tarfile.open(archive, 'r:*') as tar:
        for member, target in _tar_members(archive, tar, root):
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            source = tar.extractfile(member)
            if source is None:  # pragma: no cover - isfile() members have data
                raise _refuse(archive, member.name, 'has no data')
            _write(source, target)
            files.append(_written(root, target))
    return files


def _extract_zip(archive: Path, root: Path) -> list[str]:
    with zipfile.ZipFile(archive) as handle:
        members: list[tuple[str, Path]] = []
        for info in handle.infolist():
            name = info.filename
            target = _inside(root, name)
            if target is None:
                raise _refuse(archive, name, f'would be written outside {root}')
            # A Unix mode in the high bits says what the member is; a file
            # type other than a regular file or folder (a symbolic link, a
            # FIFO) is refused as in a tar (0: no type recorded, a file).
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                what = 'a link' if kind == stat.S_IFLNK else 'a special file'
                raise _refuse(archive, name, f'is {what}, not a regular file')
            members.append((name, target))
        _check_file_paths(
            archive,
            root,
            [(name, target, name.endswith('/')) for name, target in members],
        )
        files: list[str] = []
        for name, target in members:
            if name.endswith('/'):  # a folder entry ends with a slash
                target.mkdir(parents=True, exist_ok=True)
                continue
            _write(handle.open(name), target)
            files.append(_written(root, target))
    return files


def extract_safely(
    archive: str | os.PathLike[str], directory: str | os.PathLike[str]
) -> list[str]:
    """Extract a tar (any compression) or zip archive into ``directory``.

    Args:
        archive: the archive file.
        directory: where its members go (created if absent).

    Returns:
        The regular files written, as paths relative to ``directory`` with
        ``/`` separators (``patch_0.tif``, ``sub/patch_1.tif``), sorted, each
        once (an archive may hold a name twice; the last copy wins).

    Raises:
        ValueError: if the file is neither a tar nor a zip archive, is
            damaged or truncated, or if a member would be written outside
            ``directory``, is not a regular file or folder, or is a file
            whose path is a folder (``.``, ``a/..``, a folder of the archive);
            the message names the member, and nothing is written.
    """
    archive, root = Path(archive), Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    try:
        if tarfile.is_tarfile(archive):
            files = _extract_tar(archive, root)
        elif zipfile.is_zipfile(archive):
            files = _extract_zip(archive, root)
        else:
            raise ValueError(f'{archive} is neither a tar nor a zip archive')
    except _DAMAGED as error:
        raise ValueError(
            f'{archive} is damaged or truncated ({type(error).__name__}: {error}); '
            'delete it and download it again'
        ) from error
    return sorted(set(files))
