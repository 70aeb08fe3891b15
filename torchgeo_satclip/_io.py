"""Atomic file writes: a temporary sibling, then a rename.

Every file this package writes for a user (checkpoints, embeddings, caches,
indexes) goes through here, so that an interrupted run never leaves a
half-written file under the final name.
"""

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ['atomic_path', 'atomic_write', 'temporary_sibling']


def temporary_sibling(path: str | os.PathLike[str], suffix: str = '.tmp') -> Path:
    """Create an empty temporary file in ``path``'s directory.

    Unlike a bare :func:`tempfile.mkstemp` file (mode 0600), it gets the
    permissions any new file gets under the process umask, so the final file
    is as readable as the user expects after the rename.

    Args:
        path: the final destination (its directory is created if needed).
        suffix: suffix of the temporary name (keep the final extension last
            for writers that look at it, for example ``'.tmp.npy'``).

    Returns:
        The temporary file's path: ``<dir>/.<name>.<random><suffix>``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        prefix=f'.{path.name}.', suffix=suffix, dir=path.parent
    )
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)
    return Path(name)


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = '.tmp') -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` on success.

    Write the content to the yielded path inside the ``with`` block. On an
    exception the temporary file is removed and ``path`` is left as it was.
    Temporary names are ``.<name>.<random><suffix>``, so a resumable job can
    find and delete the leftovers of a killed run.

    Args:
        path: the final destination.
        suffix: suffix of the temporary name.

    Yields:
        The temporary path.
    """
    tmp = temporary_sibling(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[str], None], suffix: str = '.tmp'
) -> None:
    """Write ``path`` atomically: ``write`` fills a temporary sibling, then rename.

    Args:
        path: the final destination.
        write: called with the temporary file's path; it writes the content.
        suffix: suffix of the temporary name.

    Raises:
        BaseException: whatever ``write`` raises; the temporary file is
            removed and ``path`` is left as it was.
    """
    with atomic_path(path, suffix) as tmp:
        write(os.fspath(tmp))
