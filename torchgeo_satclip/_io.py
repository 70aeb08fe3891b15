"""Atomic file writes: a temporary sibling, then a rename; and their leftovers.

Every file this package writes for a user (checkpoints, embeddings, caches,
indexes) goes through here, so that an interrupted run never leaves a
half-written file under the final name.

Temporary files are named ``.<name>.<pid>.<random>.tmp<extension>`` in the
destination's folder: ``<name>`` is the final file's name (its first 200
bytes, for a longer one: a name may have 255), ``<pid>`` the id of
the process writing it, ``<random>`` eight characters of :mod:`tempfile` and
``<extension>`` an optional extension for writers that look at it (``.npy``:
one dot, none after it). A name is the temporary of one final file only:
the tail after ``<name>`` is read from the end, so that a final name that
looks like a temporary (``a.1.abcdefgh.tmp``) cannot make its temporaries
read as those of another (``a``).
For example ``.embeddings.parquet.41213.k2x9_a0q.tmp.parquet``. While
:func:`atomic_path` writes one, the process also holds an exclusive
:func:`fcntl.flock` lock on it. A run killed by SIGKILL (or a power cut)
cannot delete its temporary file; :func:`remove_stale_temporaries` finds the
temporaries of a destination whose process is gone (no live process with
that id, and no lock held on the file) and deletes them, so the next run of
the same command cleans up after the killed one and never touches the file of
a run still going. A file is flushed to the disk before it takes its final
name, so that a power cut cannot leave it there empty or cut.

A destination that is a symbolic link is written through, as a plain
``open(path, 'w')`` does: the file it points to is replaced (its temporary
sits beside it, so the rename stays on one file system) and the link is
kept.
"""

import errno
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    'TEMPORARY_INFIX',
    'atomic_path',
    'atomic_write',
    'flush_file',
    'flush_folder',
    'no_room',
    'parse_temporary_name',
    'pid_alive',
    'remove_stale_temporaries',
    'temporary_pattern',
    'temporary_sibling',
]

#: What every temporary name carries before its optional extension.
TEMPORARY_INFIX = '.tmp'

#: Most bytes of the final name a temporary name repeats: with what it adds
#: (some 30 bytes), it stays within the 255 that file systems allow.
_NAME_BYTES = 200

#: The optional extension after ``.tmp``: one dot and a name without any,
#: other than ``tmp`` (``.tmp.tmp`` would read as a random part ``tmp``).
_EXTENSION = r'\.(?!tmp\Z)[^./\x00]+'

#: What a temporary name adds after its name part: ``.<pid>.<random>.tmp<extension>``.
#: A name has at most one such tail: it ends in ``.tmp`` (no extension) or
#: in ``.tmp.<extension>``, and the process id and random part are the two
#: dot-free parts before ``.tmp``.
_TAIL = rf'\.(?P<pid>[0-9]+)\.[a-z0-9_]+{re.escape(TEMPORARY_INFIX)}(?:{_EXTENSION})?'

#: A suffix that :func:`temporary_sibling` accepts: ``.tmp`` and one extension.
_SUFFIX = re.compile(rf'{re.escape(TEMPORARY_INFIX)}(?:{_EXTENSION})?', re.ASCII)

#: Any temporary name, its name part the longest that leaves a tail.
_ANY_TEMPORARY = re.compile(rf'\.(?P<name>.+){_TAIL}', re.ASCII | re.DOTALL)

#: errno values that mean the file system has no room left for the file.
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _name_part(path: str | os.PathLike[str]) -> str:
    """``<name>`` of the temporary names of ``path``: its name, cut to 200 bytes.

    Cut as bytes, as the file system counts them (a character cut in two
    stays a valid file name); a cut name is its own name part.
    """
    name = os.fsencode(Path(path).name)
    return os.fsdecode(name[:_NAME_BYTES])


def temporary_pattern(path: str | os.PathLike[str]) -> re.Pattern[str]:
    """The names of the temporary siblings of ``path``.

    Args:
        path: a final destination.

    Returns:
        A pattern that matches ``.<name>.<pid>.<random>.tmp<extension>`` for
        ``path``'s name (see :func:`_name_part`), with the process id as group
        ``'pid'``.
    """
    return re.compile(rf'\.{re.escape(_name_part(path))}{_TAIL}', re.ASCII)


def parse_temporary_name(name: str) -> tuple[str, int] | None:
    """Read a temporary file's name back: the name part and the process id.

    The one reader of the format for a folder's names (whose final files are
    not known beforehand); :func:`temporary_pattern` matches the names of
    one final file.

    Args:
        name: a file name (not a path).

    Returns:
        ``(name_part, pid)`` when *name* is ``.<name>.<pid>.<random>.tmp
        <extension>``, else None. The name part is the final file's name,
        or its first 200 bytes for a longer one (see :func:`_name_part`):
        ``temporary_pattern(folder / name_part)`` matches *name*, and
        ``remove_stale_temporaries(folder / name_part)`` looks at it. A name
        that itself holds ``.<digits>.<random>.tmp`` is read whole: the
        extension written after ``.tmp`` has no dot, so a name has one
        reading only.
    """
    match = _ANY_TEMPORARY.fullmatch(name)
    if match is None:
        return None
    return match['name'], int(match['pid'])


def _destination(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` replaces: ``path`` with its links followed."""
    return Path(os.path.realpath(path))


def _make_folder(path: Path) -> None:
    """Create the folder of the file ``path``, refusing a folder in its place.

    Raises:
        IsADirectoryError: if ``path`` is a folder.
        NotADirectoryError: if ``path``'s folder, or one above it, is a file.
    """
    if path.is_dir():
        raise IsADirectoryError(
            f'cannot write {path}: it is a folder, expected a file (or none)'
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocker is None:
            raise
        raise NotADirectoryError(
            f'cannot write {path}: {blocker} is a file, expected a folder'
        ) from None


def _umask() -> int:
    """The process umask, read without changing it where the system allows.

    Linux tells it in ``/proc/self/status``. Elsewhere it is set to 0 and
    back, which leaves a moment when a file that another thread creates is
    open to all.
    """
    try:
        with open('/proc/self/status', encoding='ascii') as status:
            for line in status:
                if line.startswith('Umask:'):
                    return int(line.split(':', 1)[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _mode_for(path: Path) -> int:
    """The permissions ``path`` should get: its own if it exists, else the umask's."""
    try:
        return path.stat().st_mode & 0o7777
    except (FileNotFoundError, NotADirectoryError):
        return 0o666 & ~_umask()


def temporary_sibling(path: str | os.PathLike[str], suffix: str = '.tmp') -> Path:
    """Create an empty temporary file in ``path``'s directory.

    Its permissions are those of the file it will replace when ``path``
    exists (so ``--overwrite`` keeps a private 0600 file private, even while
    it is being written), else those any new file gets under the process
    umask (not :func:`tempfile.mkstemp`'s private 0600), so the final file is
    as readable as the user expects after the rename. The owner may always
    read and write it (:func:`atomic_path` puts the exact mode back before
    the rename, for a read-only file).

    Args:
        path: the final destination (its directory is created if needed); a
            symbolic link stands for the file it points to.
        suffix: ``'.tmp'`` followed by an optional extension for writers that
            look at it, for example ``'.tmp.npy'`` (one extension: no dot nor
            ``/`` after its own, and not ``'.tmp.tmp'``).

    Returns:
        The temporary file's path: ``<dir>/.<name>.<pid>.<random><suffix>``,
        beside the file a link points to.

    Raises:
        ValueError: if ``suffix`` is not ``'.tmp'`` followed by at most one
            extension.
        IsADirectoryError: if ``path`` is a folder (refused before anything
            is written, not when the finished file is renamed onto it).
        NotADirectoryError: if ``path``'s folder, or one above it, is a file.
    """
    if _SUFFIX.fullmatch(suffix) is None:
        raise ValueError(
            f'suffix must be {TEMPORARY_INFIX!r} followed by at most one extension '
            f"other than '.tmp', without a dot or '/' (such as '.tmp.npy'), "
            f'got {suffix!r}'
        )
    path = _destination(path)
    _make_folder(path)
    mode = _mode_for(path)
    handle, name = tempfile.mkstemp(
        prefix=f'.{_name_part(path)}.{os.getpid()}.', suffix=suffix, dir=path.parent
    )
    try:
        os.fchmod(handle, mode | 0o600)
    except BaseException:  # KeyboardInterrupt too: no file left behind
        os.unlink(name)
        raise
    finally:
        os.close(handle)
    return Path(name)


def _lock(path: Path) -> int | None:
    """Open ``path`` and hold an exclusive lock on it; None where unsupported."""
    if fcntl is None:  # pragma: no cover - not on Windows
        return None
    handle = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(handle)
        return None
    return handle


def _is_locked(path: str) -> bool:
    """Whether some process holds a lock on ``path`` (False where unsupported)."""
    if fcntl is None:  # pragma: no cover - not on Windows
        return False
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return True  # cannot tell: leave it alone
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False  # no locks on this file system: rely on the process id
    finally:
        os.close(handle)
    return False


def _flush(path: Path, *, directory: bool = False) -> None:
    """Flush a file's content (or a folder's entries) to the disk: ``fsync``.

    Args:
        path: the file or folder.
        directory: *path* is a folder; flushing it is best effort (some file
            systems and platforms cannot open or flush one).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def flush_file(path: str | os.PathLike[str]) -> None:
    """Flush a written file's content to the disk (``fsync``).

    :func:`atomic_path` flushes each file just before its rename; a writer
    of several files flushes them all first with this, so that an error or
    an interrupt during the slow part renames none of them.

    Args:
        path: the file.

    Raises:
        OSError: if the file cannot be opened or flushed.
    """
    _flush(Path(path))


def flush_folder(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries to the disk (``fsync``), best effort.

    After files are renamed into a folder, a power cut can bring back the
    folder without the renames unless its entries are flushed. Some file
    systems and platforms cannot open or flush a folder: then nothing is done.

    Args:
        path: the folder.
    """
    _flush(Path(path), directory=True)


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = '.tmp') -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` on success.

    Write the content to the yielded path inside the ``with`` block. On an
    exception the temporary file is removed and ``path`` is left as it was.
    On success the temporary file is flushed to the disk (``fsync``) before
    the rename, and the folder after it: a lost machine (a power cut), unlike
    a killed process, would otherwise lose what the page cache held, and
    could bring back ``path`` renamed but empty or cut.
    While the block runs, the process holds a lock on the temporary file, so
    :func:`remove_stale_temporaries` in another process never deletes it.

    Args:
        path: the final destination; a symbolic link is kept, and the file
            it points to replaced.
        suffix: suffix of the temporary name (see :func:`temporary_sibling`).

    Yields:
        The temporary path.
    """
    path = _destination(path)
    mode = _mode_for(path)
    lock = None
    tmp = temporary_sibling(path, suffix)
    try:
        lock = _lock(tmp)
        yield tmp
        if mode & 0o600 != 0o600:
            os.chmod(tmp, mode)
        _flush(tmp)
        os.replace(tmp, path)
        _flush(path.parent, directory=True)
    finally:
        tmp.unlink(missing_ok=True)
        if lock is not None:
            os.close(lock)


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[str], object], suffix: str = '.tmp'
) -> None:
    """Write ``path`` atomically: ``write`` fills a temporary sibling, then rename.

    Args:
        path: the final destination.
        write: called with the temporary file's path; it writes the content
            (what it returns is ignored).
        suffix: suffix of the temporary name.

    Raises:
        IsADirectoryError: if ``path`` is a folder, before ``write`` is called.
        NotADirectoryError: if ``path``'s folder, or one above it, is a file.
        BaseException: whatever ``write`` raises; the temporary file is
            removed and ``path`` is left as it was.
    """
    with atomic_path(path, suffix) as tmp:
        write(os.fspath(tmp))


def pid_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` runs on this machine.

    Args:
        pid: a process id.

    Returns:
        True if it runs (or cannot be checked), False if there is none.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no process has such an id
        return False
    except OSError:  # PermissionError: alive, owned by someone else
        return True
    return True


def remove_stale_temporaries(
    path: str | os.PathLike[str], after: str = ''
) -> list[Path]:
    """Delete the temporary siblings of ``path`` that killed runs left behind.

    A temporary file (named as :func:`temporary_pattern` describes) is stale
    when no process with its process id is alive and no process holds a lock
    on it. Files of this process and of live processes are never touched,
    nor anything that is not a regular file.

    Call it before writing ``path`` again, so that a run killed by SIGKILL
    costs no disk space once the command is run again.

    Args:
        path: a final destination (a symbolic link: the file it points to,
            beside which its temporaries are written).
        after: a regular expression of what follows the temporary name in
            the files to delete (another tool's name for a file it streams
            into beside a temporary, such as torch hub's
            ``.<hex>.partial``; optional, ``(?:...)?``, for both kinds in one
            pass); empty for the temporaries themselves.

    Returns:
        The files deleted.
    """
    path = _destination(path)
    pattern = temporary_pattern(path)
    if after:
        pattern = re.compile(pattern.pattern + after, pattern.flags)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        pid = int(match['pid'])
        if pid == os.getpid() or pid_alive(pid):
            continue
        if not entry.is_file(follow_symlinks=False) or _is_locked(entry.path):
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue  # another run cleaned it up first
        removed.append(Path(entry.path))
    return removed


def no_room(error: BaseException) -> str | None:
    """Whether an error says that the file system has no room for the file.

    Args:
        error: an exception raised while writing (an :class:`OSError`, or a
            pyarrow error that carries the operating system's message).

    Returns:
        The reason ("No space left on device", "Disk quota exceeded" or
        "File too large"), or None for any other error.
    """
    if isinstance(error, OSError) and error.errno in _FULL:
        return os.strerror(error.errno)
    text = str(error)
    for code in sorted(_FULL):
        if os.strerror(code) in text:
            return os.strerror(code)
    return None
