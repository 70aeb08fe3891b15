"""The files a probe run writes into its output folder, and an earlier run's.

A probe's output folder holds the results of one run. :func:`check_outputs`
refuses, before any work, a folder that already holds a run's results unless
the caller passes ``overwrite=True``. A run writes its files into a hidden
staging folder inside the output folder (:func:`staged_outputs`); only when
all are written are they renamed into place, one after the other, and the
files of the earlier run that this one did not write again (a map of an
encoder no longer probed, a table no longer asked for) deleted. A run that
fails, or is interrupted, before that leaves the earlier results as they
were (only a stop during those few renames leaves a mix); the staging folder
of a killed run is removed by the next run.
"""

import glob
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .._io import flush_folder, pid_alive

__all__ = [
    'check_outputs',
    'earlier_outputs',
    'markdown_cell',
    'remove_earlier_outputs',
    'staged_outputs',
]


def markdown_cell(text: object) -> str:
    r"""Text for one cell of a Markdown table row.

    A ``|`` in a name (a CSV column, a checkpoint file) ended its cell and
    shifted the rest of the row; a line break ended the row. ``|`` is
    escaped as ``\|`` and line breaks become spaces.

    Args:
        text: the cell's value (converted with :func:`str`).

    Returns:
        The text, safe inside ``| ... |``.
    """
    return ' '.join(str(text).splitlines()).replace('|', '\\|')


#: Name of a run's staging folder: ``.stage.<pid>.<random>``.
_STAGE = re.compile(r'\.stage\.(?P<pid>[0-9]+)\.[A-Za-z0-9_]+')


def earlier_outputs(directory: Path, patterns: Sequence[str]) -> list[Path]:
    """The files in *directory* that a run of the report may have written.

    Args:
        directory: the output folder (absent: none).
        patterns: :meth:`pathlib.Path.glob` patterns of the report's files
            (``'probe_results.md'``, ``'pca_*.png'``).

    Returns:
        The matching regular files, sorted by name.
    """
    if not directory.is_dir():
        return []
    found = {
        path
        for pattern in patterns
        for path in directory.glob(pattern)
        if path.is_file() and not path.name.startswith('.')
    }
    return sorted(found)


def check_outputs(
    directory: str | os.PathLike[str], patterns: Sequence[str], overwrite: bool
) -> None:
    """Refuse an output folder that holds an earlier run's results.

    Args:
        directory: the output folder.
        patterns: the report's files, as for :func:`earlier_outputs`.
        overwrite: accept such a folder (its files are replaced).

    Raises:
        FileExistsError: if *directory* holds one of the report's files and
            *overwrite* is False; the message names the folder, the files
            and the option.
        NotADirectoryError: if *directory* is an existing file.
        IsADirectoryError: if *directory* holds a folder (or anything but a
            regular file) under the fixed name of one of the report's files
            (a pattern without wildcards), which no file can replace,
            whatever *overwrite*; the message names it.
    """
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f'{out} is a file, not an output folder')
    if out.is_dir():
        blocked = [
            out / pattern
            for pattern in sorted(patterns)
            if not glob.has_magic(pattern)
            and (out / pattern).exists()
            and not (out / pattern).is_file()
        ]
        if blocked:
            what = 'a folder' if blocked[0].is_dir() else 'not a regular file'
            raise IsADirectoryError(
                f'{out} holds {blocked[0].name}, {what}, under the name of one '
                "of the probe's files, which the run could not replace; move or "
                'remove it, or choose another output folder'
            )
    found = earlier_outputs(out, patterns)
    if found and not overwrite:
        shown = ', '.join(path.name for path in found[:4])
        more = f' and {len(found) - 4} more' if len(found) > 4 else ''
        raise FileExistsError(
            f'{out} already holds the results of a probe run ({shown}{more}); '
            'pass --overwrite (overwrite=True) to replace them, or choose '
            'another output folder'
        )


def remove_earlier_outputs(
    directory: str | os.PathLike[str],
    patterns: Sequence[str],
    written: Iterable[Path],
) -> list[Path]:
    """Delete the files of an earlier run that this run did not write again.

    Every regular file matching a pattern is taken for the earlier run's: a
    caller whose file names vary (a map per encoder) passes the names that
    run wrote (:func:`glob.escape`), not a wildcard that a user's own file
    would match too.

    Args:
        directory: the output folder.
        patterns: the earlier run's files, as for :func:`earlier_outputs`.
        written: the files this run wrote.

    Returns:
        The files deleted.
    """
    keep = {Path(path).resolve() for path in written}
    removed = []
    for path in earlier_outputs(Path(directory), patterns):
        if path.resolve() not in keep:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextmanager
def staged_outputs(
    directory: str | os.PathLike[str], patterns: Sequence[str]
) -> Iterator[Path]:
    """Write a run's files into a staging folder; move them into place at the end.

    Args:
        directory: the output folder (created).
        patterns: the earlier run's files, as for
            :func:`remove_earlier_outputs`.

    Yields:
        The staging folder (inside *directory*): write every file there, under
        its final name. When the ``with`` block ends without an error, each
        is renamed into *directory* and the earlier run's files it did not
        replace are deleted; on an error, nothing in *directory* changes.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for entry in out.iterdir():  # the staging folders of killed runs
        found = _STAGE.fullmatch(entry.name)
        if found and entry.is_dir() and not pid_alive(int(found['pid'])):
            shutil.rmtree(entry, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=f'.stage.{os.getpid()}.', dir=out))
    try:
        yield stage
        written = []
        for path in sorted(stage.iterdir()):
            os.replace(path, out / path.name)
            written.append(out / path.name)
        remove_earlier_outputs(out, patterns, written)
        flush_folder(out)  # the renames and removals, through a power cut
    finally:
        shutil.rmtree(stage, ignore_errors=True)
