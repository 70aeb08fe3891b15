"""Checks before any work, and one line for any error after.

Every subcommand answers a user's mistake with one line that names the value
or file and says what was expected: exit status 2 for a mistake in the
command (a bad value, a missing input, a directory where a file belongs, an
output folder that cannot be written, a device this machine does not have),
1 for a failure while working (the disk fills up, a download fails, a file
the data lists is missing). The command's paths and ``--device`` are checked
here before the subcommand runs, so that such a mistake is reported in a
second, not after the work; :func:`exit_status` says which error is which.

Nothing here imports torch until a device is checked.
"""

import errno
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from .._errors import DataError

__all__ = [
    'PathRole',
    'UsageError',
    'check_device',
    'check_path',
    'describe',
    'exit_status',
    'lacks_parts',
    'name_flag',
    'output_of',
]

#: What a path argument must be:
#:
#: * ``input_file``: an existing, readable regular file;
#: * ``output_file``: not a directory, in a folder that exists (or can be
#:   created) and can be written;
#: * ``output_dir``: a folder that exists or can be created, and can be written;
#: * ``dataset_dir``: an existing folder that can be read and written;
#: * ``input_dataset``: an existing folder that can be read, with an
#:   ``index.csv`` (an S2-100K-style dataset that is only read).
PathRole = Literal[
    'input_file', 'output_file', 'output_dir', 'dataset_dir', 'input_dataset'
]

#: The roles of a dataset folder (see :func:`lacks_parts`).
DATASET_ROLES: tuple[PathRole, ...] = ('dataset_dir', 'input_dataset')


class UsageError(ValueError):
    """A mistake in the command line, found before any work (exit status 2)."""


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _existing_ancestor(path: Path) -> Path:
    """``path`` itself or its nearest ancestor that exists."""
    path = path.absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor)  # pragma: no cover - the root always exists


def _check_writable(folder: Path, label: str, value: str) -> None:
    """Create and delete a file in ``folder``: the only test root cannot fool.

    ``os.access`` says yes to root on a read-only folder and knows nothing of
    a read-only file system; a real file says what writing will meet.
    """
    try:
        handle, name = tempfile.mkstemp(prefix='.torchgeo-satclip-check-', dir=folder)
    except OSError as error:
        raise UsageError(
            f'{label} {value}: cannot write in {folder} ({_reason(error)})'
        ) from None
    os.close(handle)
    os.unlink(name)


def _check_folder_target(path: Path, label: str, value: str) -> None:
    """The nearest existing ancestor is a folder that can be written."""
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise UsageError(
            f'{label} {value}: {ancestor} is a file, so no folder can be made there'
        )
    _check_writable(ancestor, label, value)


def _check_folder_exists(path: Path, label: str, text: str) -> None:
    """Refuse a dataset folder that does not exist or is a file."""
    if not path.exists():
        raise UsageError(f'{label} {text} does not exist; expected a dataset folder')
    if not path.is_dir():
        raise UsageError(f'{label} {text} is a file; expected a dataset folder')


def check_path(value: str | os.PathLike[str], label: str, role: PathRole) -> None:
    """Check one path argument before any work.

    Args:
        value: the path as given.
        label: how the user typed the argument (``'--output-dir'``,
            ``'INPUT'``), for the message.
        role: what the path must be (see :data:`PathRole`).

    Raises:
        UsageError: naming the argument, the path and what was expected.
    """
    text = os.fspath(value)
    if not text:
        raise UsageError(f'{label} is empty; expected a path')
    path = Path(text)
    if role == 'input_file':
        if not path.exists():
            raise UsageError(f'{label} {text} does not exist; expected a file')
        if path.is_dir():
            raise UsageError(f'{label} {text} is a directory; expected a file')
        try:
            with path.open('rb'):
                pass
        except OSError as error:
            raise UsageError(
                f'{label} {text}: cannot read it ({_reason(error)})'
            ) from None
    elif role == 'output_file':
        if path.is_dir():
            raise UsageError(
                f'{label} {text} is a directory; expected the path of a file to write'
            )
        _check_folder_target(path.parent, label, text)
    elif role == 'output_dir':
        if path.exists() and not path.is_dir():
            raise UsageError(f'{label} {text} is a file; expected a directory')
        _check_folder_target(path, label, text)
    elif role == 'dataset_dir':
        _check_folder_exists(path, label, text)
        _check_writable(path, label, text)
    elif role == 'input_dataset':
        _check_folder_exists(path, label, text)
        try:
            with os.scandir(path):
                pass
        except OSError as error:
            raise UsageError(
                f'{label} {text}: cannot read it ({_reason(error)})'
            ) from None
        if not (path / 'index.csv').is_file():
            raise UsageError(
                f'{label} {text} has no index.csv; expected an S2-100K-style '
                'dataset folder (index.csv, images/)'
            )
    else:  # pragma: no cover - a programming error in a subcommand's table
        raise AssertionError(f'unknown path role {role!r}')


def check_paths(args: Any, paths: Iterable[tuple[str, str, PathRole]]) -> None:
    """Check the path arguments of a parsed command line.

    Args:
        args: the parsed arguments.
        paths: ``(dest, label, role)`` of each path argument; one left at
            None (an optional argument not given) is not checked.

    Raises:
        UsageError: for the first path that is not what its role needs.
    """
    for dest, label, role in paths:
        value = getattr(args, dest, None)
        if value is not None:
            check_path(value, label, role)


def check_device(value: str, label: str = '--device') -> None:
    """Check that a torch device exists on this machine.

    The library's own check (:func:`torchgeo_satclip._checks.check_device`),
    run before any work, so the command line refuses exactly what the
    library would refuse later.

    Args:
        value: the device as given (``'cpu'``, ``'cuda'``, ``'cuda:1'``,
            ``'mps'``).
        label: the option, for the message.

    Raises:
        UsageError: for a name torch does not know, a device this machine
            does not have, or a type of device the package does not run on.
    """
    from .._checks import check_device as check

    try:
        check(label, value)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _runtime_value_errors() -> tuple[type[BaseException], ...]:
    """Library errors that subclass ValueError but are failures at run time."""
    weights = sys.modules.get('torchgeo_satclip.models.weights')
    if weights is None:
        return ()
    return (weights.DownloadError, weights.ChecksumError)


#: Errors of a path: a mistake in the command when about a path it names
#: (see :func:`exit_status`), else a fault met while working.
_PATH_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


def _same_path(a: str | os.PathLike[str] | bytes, b: str | os.PathLike[str]) -> bool:
    return os.path.abspath(os.fsdecode(a)) == os.path.abspath(os.fspath(b))


def lacks_parts(
    args: Any, paths: Iterable[tuple[str, str, PathRole]], parts: Iterable[str]
) -> bool:
    """Whether a dataset folder of the command line lacks what makes it one.

    Args:
        args: the parsed arguments.
        paths: the subcommand's ``(dest, label, role)`` path arguments; those
            of a role in :data:`DATASET_ROLES` are looked at.
        parts: the files, relative to the folder, that the subcommand reads
            first (``index.csv``).

    Returns:
        True if such a folder was given and one of *parts* is not a file in it.
    """
    wanted = tuple(parts)
    for dest, _, role in paths:
        value = getattr(args, dest, None)
        if (
            value
            and role in DATASET_ROLES
            and not all((Path(value) / part).is_file() for part in wanted)
        ):
            return True
    return False


def exit_status(
    error: BaseException,
    given: Iterable[str | os.PathLike[str]] = (),
    *,
    incomplete: bool = False,
) -> int:
    """The exit status for an error: 2 for a mistake in the command, else 1.

    The rule: 2 for what changing the command line fixes, 1 for the rest.

    * 2: a value refused (``ValueError``: :class:`UsageError` from the checks
      before any work, and the library's checks of its arguments); an output
      that exists, refused without ``--overwrite`` (the library's
      ``FileExistsError``, raised with a message and no ``errno``); a
      ``FileNotFoundError``, ``IsADirectoryError`` or ``NotADirectoryError``
      about a path the user typed: the operating system's names it, or (the
      library's, naming no file) a dataset folder given lacks what makes it
      one (*incomplete*: no ``index.csv``).
    * 1: everything else, met while working: a file the data lists but the
      disk lacks (an image of ``index.csv``, a shard), the disk full, a
      failed download or checksum, damaged data
      (:class:`~torchgeo_satclip._errors.DataError`), a bug.

    Args:
        error: what the subcommand raised.
        given: the paths typed on the command line.
        incomplete: whether a dataset folder of the command line lacks what
            makes it one (see :func:`lacks_parts`).

    Returns:
        2 or 1.
    """
    if isinstance(error, (DataError, *_runtime_value_errors())):
        return 1
    if isinstance(error, ValueError):
        return 2
    if isinstance(error, FileExistsError):
        return 2 if error.errno is None else 1
    if isinstance(error, _PATH_ERRORS):
        if error.filename is not None:
            return 2 if any(_same_path(error.filename, p) for p in given) else 1
        return 2 if incomplete else 1
    return 1


def output_of(args: Any, paths: Iterable[tuple[str, str, PathRole]]) -> str | None:
    """The first output path of a parsed command line (what it writes under).

    Args:
        args: the parsed arguments.
        paths: the subcommand's ``(dest, label, role)`` path arguments.

    Returns:
        The value of its first output file, output folder or dataset folder,
        None if it has none.
    """
    for dest, _, role in paths:
        value = getattr(args, dest, None)
        if role != 'input_file' and value:
            return str(value)
    return None


def describe(error: BaseException, where: str | None = None) -> str:
    """One line saying what went wrong, naming the file where there is one.

    Args:
        error: what the subcommand raised.
        where: the path the command writes under, named for an ``OSError``
            that names no file (a full disk met by ``write``).

    Returns:
        The message on one line: an ``OSError`` as ``file: reason`` (``no
        space left on device`` spelled out), a ``ValueError`` or a
        :class:`~torchgeo_satclip._errors.DataError` (a damaged file, whose
        message names it and the repair) as its message, anything else with
        its type first.
    """
    if isinstance(error, OSError) and error.strerror:
        reason = error.strerror
        if error.errno == errno.ENOSPC:
            reason = 'no space left on device'
        elif error.errno == errno.EROFS:
            reason = 'read-only file system'
        if error.filename is not None:
            text = f'{os.fsdecode(error.filename)}: {reason}'
        elif where is not None:
            text = f'{reason} (writing under {where})'
        else:
            text = reason
        if error.filename2 is not None:
            text += f' (and {os.fsdecode(error.filename2)})'
    elif isinstance(error, ValueError | OSError | DataError):
        text = str(error) or type(error).__name__
    else:
        text = f'{type(error).__name__}: {error}'
    return ' '.join(text.split())


def name_flag(message: str, flags: Mapping[str, str]) -> str:
    """Name the option the user typed where a library message names its parameter.

    The library's checks begin their messages with the parameter's name
    (``batch_size must be at least 1, got 0``); the user typed an option
    (``--batch-size``). Only the message's first word is replaced, the
    convention of those checks: the same word later in a sentence may be
    plain English.

    Args:
        message: the error's one line (see :func:`describe`).
        flags: each library parameter whose option carried a value, mapped
            to that option (``{'batch_size': '--batch-size'}``).

    Returns:
        The message with the option in place of a leading parameter name (or
        of ``name (--option)``), else unchanged.
    """
    for parameter, flag in flags.items():
        for head in (f'{parameter} ({flag})', parameter):
            rest = message[len(head) :]
            if message.startswith(head) and not rest[:1].isalnum() and rest[:1] != '_':
                return flag + rest
    return message
