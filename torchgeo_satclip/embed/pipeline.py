"""The embed job: points in, embeddings out, nothing half-written.

:func:`embed_file` checks everything it can before the work (paths, the
input's header or schema, column names that would clash in the output, the
device), removes the temporaries a killed run of the same output left
(:func:`~torchgeo_satclip._io.remove_stale_temporaries`), then streams:
batches of points are read, embedded and written by a writer thread while
the next batch is embedded, to a temporary file renamed over the output when
complete. Memory is bounded by the batch size (about two batches of
embeddings at a time), whatever the number of points.

Each point is checked once, by its reader (which names its line, row or
feature); a :class:`~torchgeo_satclip.models.LocationEncoder`'s own check of
its input is off while it embeds the checked points.

On the CPU the encoder runs on chunks of :data:`CHUNK` points, and each
chunk's embedding is converted to float32 and laid out as the writer wants it
(transposed into ``emb_*`` columns for Parquet and CSV) while it is still in
the processor's cache; the chunks go to the writer as they are.
"""

import inspect
import math
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from .._checks import check_device, check_int
from .._io import atomic_path, no_room, remove_stale_temporaries
from .._nn import evaluating
from ..models import CheckpointError, LocationEncoder, satclip_location_encoder
from .points import EmbedError, InputError, PointBatch, PointSource
from .read import check_input, open_points, read_points
from .write import (
    OUTPUT_FORMATS,
    Embeddings,
    Layout,
    Orientation,
    Sink,
    SinkOptions,
    make_sink,
    output_columns,
)

__all__ = [
    'CHUNK',
    'MAX_SEED',
    'RANDOM_ENCODER_SEED',
    'DtypeName',
    'EmbedOptions',
    'EmbedPointsResult',
    'EmbedResult',
    'Neighbour',
    'check_output',
    'check_seed',
    'embed_csv',
    'embed_file',
    'embed_points',
    'encode',
    'nearest_neighbours',
]

#: Points embedded at a time on the CPU (16 MiB per hidden layer of width 512).
CHUNK = 8192

#: Seed of a random encoder of :func:`embed_points` when none is given.
RANDOM_ENCODER_SEED = 0

#: The largest seed of a random encoder: :func:`torch.manual_seed` takes 64
#: bits (a negative seed it takes modulo ``2**64``, as another seed's alias,
#: so seeds are 0 to ``2**64 - 1`` here).
MAX_SEED = 2**64 - 1


@dataclass
class EmbedResult:
    """What :func:`embed_file` wrote."""

    path: Path
    num_points: int
    embed_dim: int


def check_output(
    path: str | os.PathLike[str],
    overwrite: bool = False,
    input_path: str | os.PathLike[str] | None = None,
) -> Path:
    """Check that an output file may be written.

    Args:
        path: the output file.
        overwrite: whether an existing file may be replaced.
        input_path: the input, which the output must not be.

    Returns:
        The path.

    Raises:
        ValueError: for an unsupported suffix, a folder, a path under a file
            or the input file itself.
        FileExistsError: if the output exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise ValueError(f'output must end in {", ".join(OUTPUT_FORMATS)}, got {path}')
    if path.is_dir():
        raise ValueError(f'{path} is a folder; name the output file inside it')
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f'{path}: {parent} is not a folder')
            break
    if path.exists():
        if input_path is not None and os.path.samefile(path, input_path):
            raise ValueError(f'{path} is the input file; write the output elsewhere')
        if not overwrite:
            raise FileExistsError(f'{path} exists; pass overwrite=True (--overwrite)')
    return path


def check_seed(seed: int, name: str = 'seed') -> int:
    """Check the seed of a random encoder: an integer from 0 to :data:`MAX_SEED`.

    Args:
        seed: the seed.
        name: what messages call it (``'--seed'`` on the command line).

    Returns:
        The seed as a plain ``int``.

    Raises:
        ValueError: naming *name* and the value, for a seed that is not an
            integer (a ``bool`` is not) or is out of range.
    """
    return check_int(name, seed, minimum=0, maximum=MAX_SEED)


def _device(device: str | torch.device | None) -> torch.device:
    """*device* checked (:func:`check_device`), or CUDA if available for None."""
    if device is None:
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return check_device('device', device)


def _first_non_finite(piece: np.ndarray, columns: bool) -> int | None:
    """The first point of a piece whose embedding is not finite, if any."""
    with np.errstate(over='ignore', invalid='ignore'):
        if math.isfinite(float(piece.sum())):
            return None  # one cheap pass: a NaN or an infinity makes the sum one
    finite = np.isfinite(piece).all(axis=0 if columns else 1)
    bad = np.flatnonzero(~finite)
    return int(bad[0]) if len(bad) else None


@torch.inference_mode()
def encode(
    encoder: nn.Module,
    lonlat: np.ndarray,
    device: torch.device,
    orientation: Orientation = 'rows',
) -> tuple[Embeddings, int | None]:
    """Embed points as float32, laid out for a writer.

    On the CPU the encoder runs on chunks of :data:`CHUNK` points, and each
    chunk's embedding is converted to float32 and laid out (transposed for
    ``'columns'``) while it is still in the processor's cache; the chunks
    are kept as they are, as the pieces of the result (no copy into one
    array).

    Args:
        encoder: the location encoder, on ``device``, in eval mode.
        lonlat: float64 ``(n, 2)`` (lon, lat) in degrees.
        device: where the encoder is.
        orientation: ``'rows'`` for ``(n, D)`` pieces, ``'columns'`` for
            ``(D, n)`` pieces.

    Returns:
        The embeddings and the index of the first point whose embedding is
        not finite (None if all are).
    """
    coords = torch.from_numpy(lonlat)
    columns = orientation == 'columns'
    step = CHUNK if device.type == 'cpu' else max(len(lonlat), 1)
    pieces = []
    for start in range(0, len(lonlat), step):
        out: Tensor = encoder(coords[start : start + step].to(device))
        out = out.to(torch.float32)
        piece = (out.T if columns else out).contiguous().cpu().numpy()
        bad = _first_non_finite(piece, columns)
        pieces.append(piece)
        if bad is not None:
            return Embeddings(pieces, orientation), start + bad
    return Embeddings(pieces, orientation), None


def _clashes(source: PointSource, suffix: str, options: SinkOptions) -> None:
    """Refuse output columns of the same name.

    An input column that an output column would overwrite, or a coordinate
    column named like an embedding column.
    """
    if suffix == '.npy':
        return
    own = set(source.schema.names)
    ours = output_columns(suffix, options)[len(source.schema.names) :]
    embedding = ours[2:]
    for axis, flag, name in (
        ('longitude', '--lon-column', options.lon_column),
        ('latitude', '--lat-column', options.lat_column),
    ):
        if name in embedding:
            repair = (
                f'pass another {flag}'
                if source.coordinate_columns is None
                else 'rename it in the input'
            )
            raise InputError(
                f'{source.path}: the {axis} column {name!r} has the name of an '
                f'output embedding column, so the output would have two columns '
                f'{name!r}; {repair}'
            )
    for name in ours:
        if name in own:
            what = 'property' if source.coordinate_columns is None else 'input column'
            role = (
                'coordinate'
                if name in (options.lon_column, options.lat_column)
                else 'embedding'
            )
            raise InputError(
                f'{source.path}: the {what} {name!r} has the name of an output '
                f'{role} column and would be lost; rename or drop it first'
                + (
                    ' (or name the output coordinates with --lon-column/--lat-column)'
                    if role == 'coordinate'
                    else ''
                )
            )


def _write_error(
    error: BaseException, output: Path, done: int, total: int
) -> Exception:
    """The error to report for a failure to write the output."""
    reason = no_room(error)
    if reason is not None:
        return EmbedError(
            f'{output}: {reason.lower()} after {done:,} of about {total:,} points; '
            'nothing was written (the partial file is removed)'
        )
    if isinstance(error, OSError):
        reason = error.strerror or str(error)
        return EmbedError(f'{output}: cannot write the output ({reason})')
    return EmbedError(f'{output}: cannot write the output ({error})')


class _Writer:
    """Writes batches on a thread while the next one is embedded."""

    def __init__(self, sink: Sink, output: Path, total: int, bar: Any) -> None:
        self.sink, self.output, self.total, self.bar = sink, output, total, bar
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix='embed-write')
        self.pending: Future[None] | None = None
        self.done = 0
        self.queued = 0

    def _wait(self) -> None:
        if self.pending is None:
            return
        try:
            self.pending.result()
        except Exception as error:
            raise _write_error(error, self.output, self.done, self.total) from error
        self.pending = None
        self.bar.update(self.queued - self.done)
        self.done = self.queued

    def submit(self, batch: PointBatch, embedding: Embeddings) -> None:
        self._wait()
        self.pending = self.pool.submit(self.sink.write, batch, embedding)
        self.queued += len(batch.lonlat)

    def finish(self) -> int:
        self._wait()
        try:
            self.sink.close()
        except Exception as error:
            raise _write_error(error, self.output, self.done, self.total) from error
        return self.done

    def abort(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.sink.abort()


def embed_file(
    encoder: LocationEncoder,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    lon_column: str = 'lon',
    lat_column: str = 'lat',
    batch_size: int = 65536,
    device: str | torch.device | None = None,
    overwrite: bool = False,
    progress: bool = True,
    layout: Layout = 'columns',
) -> EmbedResult:
    """Embed every point of an input file and write the embeddings.

    Args:
        encoder: the location encoder; it runs on ``device`` in eval mode,
            and is put back on its own device and in its own mode after.
        input_path: CSV, Parquet or GeoJSON points (see
            :func:`~torchgeo_satclip.embed.read_points`).
        output_path: ``.parquet``/``.pq`` (input columns kept, then lon, lat
            and the embedding as float32 ``emb_0 .. emb_{D-1}`` columns or one
            ``embedding`` fixed-size list column), ``.csv`` (same columns) or
            ``.npy`` (a float32 ``(N, D)`` array in input order).
        lon_column: longitude column name.
        lat_column: latitude column name.
        batch_size: points per batch (bounds memory).
        device: where to run the encoder; default CUDA when available.
        overwrite: replace an existing output file (keeping its permissions).
        progress: show a progress bar.
        layout: Parquet embedding layout, 'columns' or 'list'.

    Returns:
        What was written.

    Raises:
        FileExistsError: if the output exists and ``overwrite`` is False.
        FileNotFoundError: if the input does not exist.
        InputError: for a malformed input (naming its line, row or feature),
            or an input column that an output column would overwrite.
        ValueError: for an unsupported suffix, device or layout.
        EmbedError: for a non-finite embedding or an output that cannot be
            written (a full disk); nothing is left at the output path.
    """
    job = _prepare(
        input_path,
        output_path,
        lon_column,
        lat_column,
        batch_size,
        device,
        overwrite,
        layout,
    )
    return _run(encoder, job, progress)


@dataclass(frozen=True)
class _Job:
    """An embed job whose paths, options and input header are checked."""

    source: PointSource
    output: Path
    device: torch.device
    lon_column: str
    lat_column: str
    layout: Layout


def _prepare(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    lon_column: str,
    lat_column: str,
    batch_size: int,
    device: str | torch.device | None,
    overwrite: bool,
    layout: Layout,
) -> _Job:
    """Check the paths and the options, and open the input (its header)."""
    input_path = check_input(input_path)
    output_path = check_output(output_path, overwrite, input_path)
    if layout not in ('columns', 'list'):
        raise ValueError(f"layout must be 'columns' or 'list', got {layout!r}")
    dev = _device(device)
    source = open_points(input_path, lon_column, lat_column, batch_size)
    return _Job(source, output_path, dev, lon_column, lat_column, layout)


@contextmanager
def _points_checked(encoder: nn.Module) -> Iterator[None]:
    """Run a location encoder without its own check of the points.

    Every reader has checked each batch with
    :func:`~torchgeo_satclip.geo.validate_lonlat` (naming the line, row or
    feature of a bad point); the encoder's check of every chunk would make
    the same finite and range checks again. Its ``validate`` flag is put back
    after, an error included.

    Args:
        encoder: the encoder (one that is not a ``LocationEncoder`` is left
            as it is).
    """
    if not isinstance(encoder, LocationEncoder) or not encoder.validate:
        yield
        return
    encoder.validate = False
    try:
        yield
    finally:
        encoder.validate = True


def _run(encoder: LocationEncoder, job: _Job, progress: bool) -> EmbedResult:
    """Embed every point of a prepared job and write the output."""
    source, output_path, dev = job.source, job.output, job.device
    suffix = output_path.suffix.lower()
    dim = int(encoder.embed_dim)
    options = SinkOptions(
        dim, job.lon_column, job.lat_column, job.layout, source.schema, source.estimate
    )
    _clashes(source, suffix, options)
    remove_stale_temporaries(output_path)
    with (
        evaluating(encoder, dev),
        _points_checked(encoder),
        atomic_path(output_path, f'.tmp{suffix}') as tmp,
        tqdm(
            total=source.estimate, unit='pt', disable=not progress, desc='embedding'
        ) as bar,
    ):
        try:
            sink = make_sink(tmp, suffix, options)
        except OSError as error:
            raise _write_error(error, output_path, 0, source.estimate) from error
        writer = _Writer(sink, output_path, source.estimate, bar)
        try:
            for batch in source.batches():
                embedding, bad = encode(encoder, batch.lonlat, dev, sink.orientation)
                if bad is not None:
                    lon, lat = batch.lonlat[bad]
                    raise EmbedError(
                        f'{batch.describe(bad)}: the encoder gave a non-finite '
                        f'embedding for (lon, lat) = ({lon}, {lat}); its weights '
                        'or its dtype are broken'
                    )
                writer.submit(batch, embedding)
            written = writer.finish()
        except BaseException:
            writer.abort()
            raise
        bar.total = written
        bar.refresh()
    return EmbedResult(path=output_path, num_points=written, embed_dim=dim)


#: Backwards-compatible name of :func:`embed_file` (CSV input).
embed_csv = embed_file


#: Compute dtypes of :func:`embed_points`, by name.
DtypeName = Literal['float64', 'float32', 'bfloat16']


class EmbedOptions(TypedDict, total=False):
    """Options of :func:`~torchgeo_satclip.embed.embed_file` (its defaults)."""

    batch_size: int
    device: str | torch.device | None
    overwrite: bool
    progress: bool
    layout: Layout


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


def _check_weights(encoder: nn.Module, weights: str) -> None:
    """Refuse an encoder with a non-finite weight, naming it."""
    for name, tensor in encoder.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(
                f'{weights}: the weight {name!r} holds non-finite values (NaN or '
                'infinity); refusing to embed with it'
            )


def embed_points(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    weights: str = 'random',
    legendre_polys: int | None = None,
    seed: int | None = None,
    dtype: DtypeName = 'float64',
    lon_column: str = 'lon',
    lat_column: str = 'lat',
    neighbours: bool = False,
    max_neighbour_points: int = 1000,
    **options: Unpack[EmbedOptions],
) -> EmbedPointsResult:
    """Embed the points of a file with a new or pretrained location encoder.

    The paths, the options and the input's header or schema are checked
    before the weights are loaded (or downloaded).

    Args:
        input_path: CSV, Parquet or GeoJSON points (see
            :func:`~torchgeo_satclip.embed.read_points`).
        output_path: ``.parquet``, ``.csv`` or ``.npy`` (see
            :func:`~torchgeo_satclip.embed.embed_file`).
        weights: ``'random'`` for a new, randomly initialised encoder, else
            anything :func:`~torchgeo_satclip.models.load_location_encoder`
            accepts (a checkpoint path, a ``SatCLIPWeights`` name).
        legendre_polys: spherical-harmonic degrees of a random encoder
            (default: :func:`~torchgeo_satclip.models.build_location_encoder`'s);
            refused with other *weights*, which bring their own architecture.
        seed: torch seed set before initialising a random encoder, from 0
            to :data:`MAX_SEED` (default: :data:`RANDOM_ENCODER_SEED`);
            refused with other *weights*, which are not random.
        dtype: compute dtype of the encoder (float64: the checkpoints' own).
        lon_column: longitude column (degrees).
        lat_column: latitude column (degrees).
        neighbours: also find each point's nearest neighbour in embedding
            space (see :func:`nearest_neighbours`).
        max_neighbour_points: skip the neighbours for larger inputs.
        **options: further options of :func:`~torchgeo_satclip.embed.embed_file`.

    Returns:
        The file written and, if asked for, the neighbours.

    Raises:
        CheckpointError: if the weights hold a non-finite value.
        ValueError: for an unknown dtype, a *seed* that is not an integer
            from 0 to :data:`MAX_SEED`, or *legendre_polys* or *seed* given
            with weights other than ``'random'`` (and see :func:`embed_file`).
    """
    if dtype not in ('float64', 'float32', 'bfloat16'):
        raise ValueError(
            f"dtype must be 'float64', 'float32' or 'bfloat16', got {dtype!r}"
        )
    if weights != 'random':
        for name, value, why in (
            ('legendre_polys', legendre_polys, 'bring their own architecture'),
            ('seed', seed, 'are not random'),
        ):
            if value is not None:
                raise ValueError(
                    f"{name}={value!r} applies to a random encoder (weights='random') "
                    f'only: the weights {weights!r} {why}; leave {name} out'
                )
    if seed is not None:
        seed = check_seed(seed)
    # The cheap checks first: no checkpoint is loaded (or downloaded) for a
    # missing input, a missing column or a bad option.
    defaults = inspect.signature(embed_file).parameters
    job = _prepare(
        input_path,
        output_path,
        lon_column,
        lat_column,
        options.get('batch_size', defaults['batch_size'].default),
        options.get('device', defaults['device'].default),
        options.get('overwrite', defaults['overwrite'].default),
        options.get('layout', defaults['layout'].default),
    )
    torch_dtype = getattr(torch, dtype)
    if weights == 'random':
        torch.manual_seed(RANDOM_ENCODER_SEED if seed is None else seed)
        architecture: dict[str, Any] = (
            {} if legendre_polys is None else {'legendre_polys': legendre_polys}
        )
        encoder = satclip_location_encoder(dtype=torch_dtype, **architecture)
    else:
        encoder = satclip_location_encoder(weights, dtype=torch_dtype)
    _check_weights(encoder, weights)
    encoder.to(job.device)  # our own encoder: the neighbours run there too
    written = _run(encoder, job, options.get('progress', defaults['progress'].default))
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
        encoder: the location encoder; it runs where its weights are, in
            eval mode (no dropout), and is put back in its own mode after.
        path: the points (see :func:`~torchgeo_satclip.embed.read_points`).
        lon_column: longitude column (degrees).
        lat_column: latitude column (degrees).
        max_points: the similarity matrix is ``N x N``: None for larger inputs.

    Returns:
        One neighbour per point, in input order; empty with fewer than two
        points (no other point to be nearest); None if there are more than
        ``max_points`` points.
    """
    names: list[str] = []
    coords = []
    for batch in read_points(path, lon_column, lat_column):
        if batch.columns:
            values = next(iter(batch.columns.values())).to_pylist()
            names += [str(value) for value in values]
        else:
            names += [str(len(names) + i) for i in range(len(batch.lonlat))]
        coords.append(torch.from_numpy(batch.lonlat))
        if len(names) > max_points:
            return None
    if len(names) < 2:
        return []
    device = next(encoder.parameters()).device
    with torch.no_grad(), evaluating(encoder, device):
        emb = encoder(torch.cat(coords).to(device)).double().cpu()
    emb = nn.functional.normalize(emb, dim=1)
    similarity = emb @ emb.T
    similarity.fill_diagonal_(-2.0)
    nearest = similarity.argmax(dim=1).tolist()
    return [
        Neighbour(name, names[j], float(similarity[i, j]))
        for i, (name, j) in enumerate(zip(names, nearest, strict=True))
    ]
