"""Whole jobs in one call: what the ``torchgeo-satclip`` subcommands run.

Each function here is the library side of one subcommand that needs more
than one library call (``pack``, ``build`` and ``demo-data`` call
:func:`~torchgeo_satclip.datasets.pack_s2_100k`,
:func:`~torchgeo_satclip.builders.build_dataset` and
:func:`~torchgeo_satclip.datasets.demo.make_demo_dataset` directly):

* :func:`embed_points` (``embed``): make or load an encoder, embed a file of
  points and, optionally, find each point's nearest neighbour in embedding
  space (:func:`nearest_neighbours`).
* :func:`probe_report` (``probe``): load tasks, run the probes, write the
  tables and the figures.

Options left at None take the default of the library function they are
passed to, so that there is one default, where the work is done.
"""

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack

import torch
from torch import nn

from .embed import EmbedResult, embed_file, read_points
from .evaluation import (
    ProbeResult,
    load_task,
    plot_pca_map,
    plot_scores,
    run_probes,
    task_from_csv,
    write_results,
)
from .evaluation.probe import Protocol, Split
from .models import satclip_location_encoder

__all__ = [
    'DtypeName',
    'EmbedOptions',
    'EmbedPointsResult',
    'Neighbour',
    'ProbeReport',
    'embed_points',
    'nearest_neighbours',
    'probe_report',
]

#: Compute dtypes of :func:`embed_points`, by name.
DtypeName = Literal['float64', 'float32', 'bfloat16']


class EmbedOptions(TypedDict, total=False):
    """Options of :func:`~torchgeo_satclip.embed.embed_file` (its defaults)."""

    batch_size: int
    device: str | torch.device | None
    overwrite: bool
    progress: bool
    layout: Literal['columns', 'list']


@dataclass(frozen=True)
class Neighbour:
    """A point and its nearest other point in embedding space."""

    #: The point's name: its first non-coordinate column, else its row number.
    name: str
    #: The nearest point's name.
    nearest: str
    #: Cosine similarity of the two embeddings.
    similarity: float


@dataclass
class EmbedPointsResult:
    """What :func:`embed_points` did."""

    #: The file written.
    written: EmbedResult
    #: Each point's nearest neighbour; None if not asked for, or too many points.
    neighbours: list[Neighbour] | None = None


def _given(**options: Any) -> dict[str, Any]:
    """The options that are not None (the others take the callee's default)."""
    return {name: value for name, value in options.items() if value is not None}


def embed_points(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    weights: str = 'random',
    legendre_polys: int | None = None,
    seed: int = 0,
    dtype: DtypeName = 'float64',
    lon_column: str = 'lon',
    lat_column: str = 'lat',
    neighbours: bool = False,
    max_neighbour_points: int = 1000,
    **options: Unpack[EmbedOptions],
) -> EmbedPointsResult:
    """Embed the points of a file with a new or pretrained location encoder.

    Args:
        input_path: CSV, Parquet or GeoJSON points (see
            :func:`~torchgeo_satclip.embed.read_points`).
        output_path: ``.parquet``, ``.csv`` or ``.npy`` (see
            :func:`~torchgeo_satclip.embed.embed_file`).
        weights: ``'random'`` for a new, randomly initialised encoder, else
            anything :func:`~torchgeo_satclip.models.load_location_encoder`
            accepts (a checkpoint path, a ``SatCLIPWeights`` name).
        legendre_polys: spherical-harmonic degrees of a random encoder
            (default: :func:`~torchgeo_satclip.models.build_location_encoder`'s).
        seed: torch seed set before initialising a random encoder.
        dtype: compute dtype of the encoder (float64: the checkpoints' own).
        lon_column: longitude column (degrees).
        lat_column: latitude column (degrees).
        neighbours: also find each point's nearest neighbour in embedding
            space (see :func:`nearest_neighbours`).
        max_neighbour_points: skip the neighbours for larger inputs.
        **options: further options of :func:`~torchgeo_satclip.embed.embed_file`.

    Returns:
        The file written and, if asked for, the neighbours.
    """
    torch_dtype = getattr(torch, dtype)
    if weights == 'random':
        torch.manual_seed(seed)
        encoder = satclip_location_encoder(
            dtype=torch_dtype, **_given(legendre_polys=legendre_polys)
        )
    else:
        encoder = satclip_location_encoder(weights, dtype=torch_dtype)
    written = embed_file(
        encoder,
        input_path,
        output_path,
        lon_column=lon_column,
        lat_column=lat_column,
        **options,
    )
    found = None
    if neighbours:
        found = nearest_neighbours(
            encoder, input_path, lon_column, lat_column, max_neighbour_points
        )
    return EmbedPointsResult(written, found)


def nearest_neighbours(
    encoder: nn.Module,
    path: str | os.PathLike[str],
    lon_column: str = 'lon',
    lat_column: str = 'lat',
    max_points: int = 1000,
) -> list[Neighbour] | None:
    """Each point's nearest other point by cosine similarity of embeddings.

    Args:
        encoder: the location encoder.
        path: the points (see :func:`~torchgeo_satclip.embed.read_points`).
        lon_column: longitude column (degrees).
        lat_column: latitude column (degrees).
        max_points: the similarity matrix is ``N x N``: None for larger inputs.

    Returns:
        One neighbour per point, in input order; None if there are more than
        ``max_points`` points.
    """
    names: list[str] = []
    coords = []
    for batch in read_points(path, lon_column, lat_column):
        others = [k for k in batch.columns if k not in (lon_column, lat_column)]
        for i in range(len(batch.lonlat)):
            label = batch.columns[others[0]][i] if others else len(names)
            names.append(str(label))
        coords.append(torch.from_numpy(batch.lonlat))
        if len(names) > max_points:
            return None
    with torch.no_grad():
        device = next(encoder.parameters()).device
        emb = encoder(torch.cat(coords).to(device)).double().cpu()
    emb = nn.functional.normalize(emb, dim=1)
    similarity = emb @ emb.T
    similarity.fill_diagonal_(-2.0)
    nearest = similarity.argmax(dim=1).tolist()
    return [
        Neighbour(name, names[j], float(similarity[i, j]))
        for i, (name, j) in enumerate(zip(names, nearest, strict=True))
    ]


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


def probe_report(
    output_dir: str | os.PathLike[str],
    tasks: Sequence[str] = ('air_temperature', 'land_ocean'),
    encoders: Sequence[str] = ('raw', 'wrap', 'sh'),
    *,
    csv_tasks: Sequence[tuple[str | os.PathLike[str], str]] = (),
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
    progress: Callable[[str], None] | None = None,
) -> ProbeReport:
    """Probe location features on tasks and write tables and figures.

    Args:
        output_dir: where ``probe_results.md``, ``probe_results.csv``,
            ``scores.png`` and ``pca_<encoder>.png`` go (created).
        tasks: built-in task names (see
            :func:`~torchgeo_satclip.evaluation.load_task`).
        encoders: features side by side (see
            :func:`~torchgeo_satclip.evaluation.run_probes`).
        csv_tasks: user tasks, ``(CSV path, target column)`` pairs.
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
        progress: called with a line of text after each result.

    Returns:
        The results and the files written.
    """
    loaded = [
        load_task(name, **_given(num_points=num_points, seed=seed)) for name in tasks
    ]
    columns = _given(lon_column=lon_column, lat_column=lat_column)
    loaded += [task_from_csv(path, target, **columns) for path, target in csv_tasks]
    results = run_probes(
        loaded,
        encoders,
        splits=splits,
        progress=progress,
        **_given(protocols=protocols, folds=folds, block_size=block_size, seed=seed),
    )
    markdown, table = write_results(results, output_dir)
    report = ProbeReport(results, markdown, table)
    if plots:
        out = Path(output_dir)
        report.figures.append(plot_scores(results, out / 'scores.png'))
        resolution = _given(resolution=map_resolution)
        for encoder in encoders:
            if encoder == 'raw':
                continue
            name = Path(encoder).stem if Path(encoder).suffix else encoder
            path = out / f'pca_{name}.png'
            report.figures.append(plot_pca_map(encoder, path, **resolution))
    return report
