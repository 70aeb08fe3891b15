"""The probe report: tasks in, probes run, tables and figures out.

:func:`probe_report` is the whole ``torchgeo-satclip probe`` job in one call:
it loads the built-in and CSV tasks, runs :func:`~.probe.run_probes`, writes
the Markdown and CSV tables and draws the score bars and PCA world maps.
Options left at None take the default of the function they are passed to,
so that there is one default, where the work is done.
"""

import csv
import glob
import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._io import atomic_path
from .outputs import check_outputs, staged_outputs
from .plots import check_map_resolution, plot_pca_map, plot_scores
from .probe import (
    ProbeResult,
    Protocol,
    Split,
    _check_options,
    _deduplicate,
    check_encoders,
    require_sklearn,
    resolve_encoders,
    run_probes,
    write_results,
)
from .references import references_to_markdown
from .tasks import check_sampling, load_task, task_from_csv

__all__ = ['PROBE_OUTPUTS', 'ProbeReport', 'probe_report']

#: The files a run writes into its output folder (``pca_<encoder>.png`` for
#: each encoder but ``raw``). A folder holding any of them is refused without
#: ``overwrite``; with it, only the files the earlier run wrote are deleted
#: (see :func:`_earlier_run_files`).
PROBE_OUTPUTS = (
    'probe_results.md',
    'probe_results.csv',
    'published.md',
    'scores.png',
    'pca_*.png',
)


def _earlier_run_files(directory: Path) -> list[str]:
    """The files an earlier run wrote into *directory*, as patterns.

    The fixed names of :data:`PROBE_OUTPUTS`, and ``pca_<encoder>.png`` for
    each encoder but ``raw`` of the earlier run's ``probe_results.csv`` (none
    when it is missing or cannot be read): a user's ``pca_notes.png`` is no
    run's map, and ``pca_*.png`` would delete it.

    Args:
        directory: the output folder.

    Returns:
        Patterns of :func:`~.outputs.staged_outputs` matching those names
        alone (:func:`glob.escape`).
    """
    fixed = [pattern for pattern in PROBE_OUTPUTS if not glob.has_magic(pattern)]
    encoders: set[str] = set()
    try:
        with (directory / 'probe_results.csv').open(
            encoding='utf-8', newline=''
        ) as handle:
            for row in csv.DictReader(handle):
                name = row.get('encoder')
                if isinstance(name, str) and name and name != 'raw':
                    encoders.add(name)
    except (OSError, UnicodeDecodeError, csv.Error):
        encoders = set()  # no table: no map is known to be the run's
    maps = [f'pca_{name}.png' for name in sorted(encoders)]
    # a name that is not one file of the folder ('a/b') was never written
    return fixed + [glob.escape(m) for m in maps if Path(m).name == m]


def _given(**options: Any) -> dict[str, Any]:
    """The options that are not None (the others take the callee's default)."""
    return {name: value for name, value in options.items() if value is not None}


#: The options of :func:`~.probe.run_probes` that :func:`~.probe._check_options`
#: checks, with their defaults (read once, from its signature: one default).
_PROBE_DEFAULTS: dict[str, Any] = {
    name: parameter.default
    for name, parameter in inspect.signature(run_probes).parameters.items()
    if name in ('folds', 'block_size', 'protocols', 'splits', 'seed')
}


def _check_probe_options(**given: Any) -> None:
    """Run :func:`~.probe.run_probes`' own check of its options, up front.

    Args:
        given: the options given; the others are the defaults of
            :func:`~.probe.run_probes`.
    """
    _check_options(**{**_PROBE_DEFAULTS, **given})


@dataclass
class ProbeReport:
    """What :func:`probe_report` computed and wrote."""

    #: One result per task, encoder, protocol and split.
    results: list[ProbeResult]
    #: ``probe_results.md``.
    markdown: Path
    #: ``probe_results.csv``.
    table: Path
    #: ``scores.png`` then one ``pca_<encoder>.png`` per encoder but ``raw``.
    figures: list[Path] = field(default_factory=list)
    #: ``published.md``: measured scores beside published ones (None when
    #: not asked for, or when no result has a published counterpart).
    published: Path | None = None


def probe_report(
    output_dir: str | os.PathLike[str],
    tasks: Sequence[str] = ('air_temperature', 'land_ocean'),
    encoders: Sequence[str] = ('raw', 'wrap', 'sh'),
    *,
    csv_tasks: Sequence[tuple[str | os.PathLike[str], str]] = (),
    csv_kind: Literal['auto', 'regression', 'classification'] = 'auto',
    lon_column: str | None = None,
    lat_column: str | None = None,
    num_points: int | None = None,
    protocols: Sequence[Protocol] | None = None,
    splits: Sequence[Split] = ('random', 'spatial'),
    folds: int | None = None,
    block_size: float | None = None,
    seed: int | None = None,
    plots: bool = True,
    map_resolution: float | None = None,
    references: bool = False,
    progress: Callable[[str], None] | None = None,
    progress_bar: bool = False,
    overwrite: bool = False,
) -> ProbeReport:
    """Probe location features on tasks and write tables and figures.

    Args:
        output_dir: where ``probe_results.md``, ``probe_results.csv``,
            ``scores.png`` and ``pca_<encoder>.png`` go (created).
        tasks: built-in task names (see
            :func:`~torchgeo_satclip.evaluation.load_task`).
        encoders: features side by side (see
            :func:`~torchgeo_satclip.evaluation.run_probes`).
        csv_tasks: user tasks, ``(CSV path, target column)`` pairs, named
            ``stem:target`` (``folder/stem:target`` when two files have the
            same name and target).
        csv_kind: what the CSV tasks' targets are: 'regression',
            'classification' (for example more than 20 integer class codes,
            which 'auto' reads as a regression target), or 'auto' (see
            :func:`~torchgeo_satclip.evaluation.task_from_csv`).
        lon_column: longitude column of the CSV tasks.
        lat_column: latitude column of the CSV tasks.
        num_points: points of the sampled built-in tasks.
        protocols: probes to run.
        splits: cross-validation schemes to run.
        folds: folds per cross-validation.
        block_size: spatial block side in degrees.
        seed: seed of the sampled tasks, the folds and the MLPs.
        plots: also draw ``scores.png`` and the PCA maps.
        map_resolution: grid step of the PCA maps in degrees.
        references: also write ``published.md``, the measured scores beside
            published figures measured the same way, with their sources
            (:func:`~torchgeo_satclip.evaluation.references_to_markdown`).
        progress: called with a line of text after each result.
        progress_bar: show a tqdm bar over the probes.
        overwrite: replace the results of an earlier run in *output_dir*
            (:data:`PROBE_OUTPUTS`); once this run's files are written, the
            earlier run's files it did not write again (the map of an encoder
            of its ``probe_results.csv`` no longer probed, ``published.md``)
            are deleted, and no other file.

    Returns:
        The results and the files written (one ``pca_<name>.png`` per
        encoder, ``<name>`` its short unique name): all into a staging folder
        first, then renamed into place together
        (:func:`~.outputs.staged_outputs`), so that a failed run changes
        nothing in *output_dir*.

    Raises:
        ValueError: for no task or no encoder, *csv_tasks* that are not
            ``(path, target)`` pairs, an unknown encoder, a
            checkpoint that cannot be read or downloaded, a task, CSV task or
            encoder given twice, or a *map_resolution* outside [0.05, 90]
            degrees, before anything is computed or written.
        FileExistsError: if *output_dir* holds an earlier run's results and
            *overwrite* is False, before anything is computed.
    """
    if isinstance(tasks, str):
        raise ValueError(f'tasks must be a list of task names, got {tasks!r}')
    check_encoders(encoders)
    _check_csv_tasks(csv_tasks)
    _check_distinct('task', tasks, tasks)
    _check_distinct(
        'CSV task',
        [f'{path}:{target}' for path, target in csv_tasks],
        [(_same_file(path), target) for path, target in csv_tasks],
    )
    _check_distinct('encoder', encoders, [_encoder_key(spec) for spec in encoders])
    if not tasks and not csv_tasks:
        raise ValueError(
            'no task given: name built-in tasks (tasks) or CSV tasks (csv_tasks)'
        )
    check_sampling(**_given(num_points=num_points, seed=seed))
    _check_probe_options(
        **_given(folds=folds, block_size=block_size, protocols=protocols, seed=seed),
        splits=splits,
    )
    require_sklearn()  # before any checkpoint or task is loaded
    if plots and map_resolution is not None:
        check_map_resolution(map_resolution, 'map_resolution')  # before the probes
    check_outputs(output_dir, PROBE_OUTPUTS, overwrite)
    named = resolve_encoders(encoders)
    loaded = [
        load_task(name, **_given(num_points=num_points, seed=seed)) for name in tasks
    ]
    columns = _given(lon_column=lon_column, lat_column=lat_column)
    loaded += [
        task_from_csv(path, target, name=name, kind=csv_kind, **columns)
        for (path, target), name in zip(
            csv_tasks, _csv_task_names(csv_tasks), strict=True
        )
    ]
    results = run_probes(
        loaded,
        named,
        splits=splits,
        progress=progress,
        progress_bar=progress_bar,
        **_given(protocols=protocols, folds=folds, block_size=block_size, seed=seed),
    )
    out = Path(output_dir)
    figures: list[Path] = []
    published = None
    with staged_outputs(out, _earlier_run_files(out)) as stage:
        write_results(results, stage)
        if references:
            text = references_to_markdown(results)
            if text:
                published = out / 'published.md'
                with atomic_path(stage / published.name) as tmp:
                    tmp.write_text(text, encoding='utf-8')
        if plots:
            figures.append(out / plot_scores(results, stage / 'scores.png').name)
            resolution = _given(resolution=map_resolution)
            for name, encoder in named.items():
                if name == 'raw':
                    continue
                path = stage / f'pca_{name}.png'
                title = f'{name}: first three PCA components as RGB'
                plot_pca_map(encoder, path, title=title, **resolution)
                figures.append(out / path.name)
    return ProbeReport(
        results,
        out / 'probe_results.md',
        out / 'probe_results.csv',
        figures,
        published,
    )


def _check_csv_tasks(csv_tasks: Any) -> None:
    """Refuse *csv_tasks* unless it is a list of ``(CSV path, target)`` pairs.

    One pair given without its list (``('stations.csv', 'meanT')``) was read
    item by item and failed with Python's bare "too many values to unpack".

    Args:
        csv_tasks: what the caller passed as ``csv_tasks``.

    Raises:
        ValueError: naming the argument, the first item that is not a pair of
            a path (``str`` or path-like) and a column name (``str``) and its
            number (from 1).
    """
    expected = 'csv_tasks must be a list of (CSV path, target column) pairs'
    if isinstance(csv_tasks, str | bytes | os.PathLike) or not isinstance(
        csv_tasks, Sequence
    ):
        raise ValueError(f'{expected}, got {csv_tasks!r}')
    for number, item in enumerate(csv_tasks, start=1):
        if (
            isinstance(item, str | bytes)
            or not isinstance(item, Sequence)
            or len(item) != 2
            or not isinstance(item[0], str | os.PathLike)
            or not isinstance(item[1], str)
        ):
            raise ValueError(
                f'{expected}; item {number} is {item!r}, expected a pair such '
                "as ('stations.csv', 'meanT')"
            )


def _csv_task_names(
    csv_tasks: Sequence[tuple[str | os.PathLike[str], str]],
) -> list[str]:
    """Unique names of CSV tasks: ``stem:target``, with the folder when repeated.

    Two files of the same name in different folders (``a/stations.csv`` and
    ``b/stations.csv``, target ``y``) are ``a/stations:y`` and
    ``b/stations:y``, then numbered if still the same: results are tabled by
    task name, so one name for two tasks would show one task's scores only.

    Args:
        csv_tasks: ``(CSV path, target column)`` pairs.

    Returns:
        One name per task, in order.
    """
    short = [f'{Path(path).stem}:{target}' for path, target in csv_tasks]
    names = [
        f'{Path(path).parent.name}/{name}'
        if short.count(name) > 1 and Path(path).parent.name
        else name
        for (path, _), name in zip(csv_tasks, short, strict=True)
    ]
    return _deduplicate(names)


def _same_file(spec: str | os.PathLike[str]) -> str:
    """An existing file's resolved path (two spellings of it compare equal)."""
    path = Path(spec)
    return str(path.resolve()) if path.is_file() else os.fspath(spec)


def _encoder_key(spec: str) -> str:
    """What an encoder is: a file's path, a weights name in any spelling."""
    if Path(spec).is_file():
        return _same_file(spec)
    name = str(spec).rsplit('.', 1)[-1].upper()
    from ..models import GeoCLIPWeights, list_weights

    return (
        name if name in list_weights() or name in GeoCLIPWeights.__members__ else spec
    )


def _check_distinct(what: str, given: Sequence[Any], keys: Sequence[Any]) -> None:
    """Refuse a value given twice (it would be computed, and shown, twice)."""
    first: dict[Any, Any] = {}
    for value, key in zip(given, keys, strict=True):
        if key in first:
            spelling = (
                '' if first[key] == value else f' (as {first[key]!r} and {value!r})'
            )
            raise ValueError(f'{what} {value!r} is given twice{spelling}; give it once')
        first[key] = value
