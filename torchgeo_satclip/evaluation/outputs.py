"""The files a probe run writes into its output folder, and an earlier run's.

A probe's output folder holds the results of one run. :func:`check_outputs`
refuses, before any work, a folder that already holds a run's results unless
the caller passes ``overwrite=True``; :func:`remove_earlier_outputs` then
deletes, once the new results are written, the files of the earlier run that
this one did not write again (a map of an encoder no longer probed, a table
no longer asked for), so that the folder never mixes two runs. Every result
file is written under a temporary name and renamed
(:func:`~torchgeo_satclip._io.atomic_path`): a failed run leaves the earlier
results as they were.
"""

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ['check_outputs', 'earlier_outputs', 'remove_earlier_outputs']


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
    """
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f'{out} is a file, not an output folder')
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

    Args:
        directory: the output folder.
        patterns: the report's files, as for :func:`earlier_outputs`.
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
