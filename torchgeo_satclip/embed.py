"""Embed a table of points with a location encoder, streaming in batches.

The library side of ``torchgeo-satclip embed``: :func:`embed_csv` reads a CSV
of points in batches, embeds each batch (on the GPU when there is one) and
writes the result as CSV (identifier columns kept) or ``.npy``, to a temporary
file that is renamed when complete. Memory stays bounded by the batch size,
whatever the number of points.
"""

import csv
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from .models import LocationEncoder

__all__ = ['EmbedResult', 'InputError', 'embed_csv', 'read_points_csv']


class InputError(ValueError):
    """An input table is malformed: the message names the file and line."""


@dataclass
class EmbedResult:
    """What :func:`embed_csv` wrote."""

    path: Path
    num_points: int
    embed_dim: int


def _parse_row(
    row: dict[str, str], lon_column: str, lat_column: str, path: Path, line: int
) -> tuple[float, float]:
    """Return ``(lon, lat)`` of one CSV row, with errors naming file and line."""
    try:
        lon, lat = float(row[lon_column]), float(row[lat_column])
    except (TypeError, ValueError):
        raise InputError(
            f'{path}, line {line}: cannot read a number from '
            f'{lon_column}={row.get(lon_column)!r}, {lat_column}={row.get(lat_column)!r}'
        ) from None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise InputError(f'{path}, line {line}: non-finite coordinate ({lon}, {lat})')
    if abs(lat) > 90:
        swapped = abs(lat) <= 180 and abs(lon) <= 90
        hint = (
            f'; the columns look swapped: is {lat_column!r} the longitude? '
            'Pass --lon-column/--lat-column'
            if swapped
            else ''
        )
        raise InputError(
            f'{path}, line {line}: latitude {lat} in column {lat_column!r} is '
            f'outside [-90, 90]{hint}'
        )
    if abs(lon) > 180:
        raise InputError(
            f'{path}, line {line}: longitude {lon} in column {lon_column!r} is '
            'outside [-180, 180]'
        )
    return lon, lat


def read_points_csv(
    path: str | os.PathLike[str],
    lon_column: str = 'lon',
    lat_column: str = 'lat',
    batch_size: int = 65536,
) -> Iterator[tuple[list[dict[str, str]], np.ndarray]]:
    """Read a CSV of points in batches.

    Args:
        path: CSV file with a header line.
        lon_column: name of the longitude column (degrees).
        lat_column: name of the latitude column (degrees).
        batch_size: rows per batch.

    Yields:
        ``(rows, lonlat)``: the raw rows and a float64 ``(n, 2)`` array of
        (lon, lat).

    Raises:
        InputError: if a column is missing or a row is malformed or out of
            range (naming the line number, counting the header as line 1).
    """
    path = Path(path)
    with path.open(newline='') as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        for column in (lon_column, lat_column):
            if column not in fields:
                raise InputError(
                    f'{path}: no column {column!r}; columns are {fields}'
                )
        rows: list[dict[str, str]] = []
        coords: list[tuple[float, float]] = []
        for row in reader:
            coords.append(_parse_row(row, lon_column, lat_column, path, reader.line_num))
            rows.append(row)
            if len(rows) == batch_size:
                yield rows, np.asarray(coords, dtype=np.float64)
                rows, coords = [], []
        if rows:
            yield rows, np.asarray(coords, dtype=np.float64)


def _count_rows(path: Path) -> int:
    with path.open(newline='') as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)


@torch.no_grad()
def _embed(encoder: LocationEncoder, lonlat: np.ndarray, device: torch.device) -> Tensor:
    coords = torch.from_numpy(lonlat).to(device)
    return encoder(coords).float().cpu()


def embed_csv(
    encoder: LocationEncoder,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    lon_column: str = 'lon',
    lat_column: str = 'lat',
    batch_size: int = 65536,
    device: str | torch.device | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> EmbedResult:
    """Embed every point of a CSV file and write the embeddings.

    Args:
        encoder: the location encoder (put in eval mode here).
        input_path: CSV with a header and longitude/latitude columns.
        output_path: ``.csv`` (input columns other than the coordinates kept
            first, then ``emb_0 .. emb_{D-1}``) or ``.npy`` (a float32
            ``(N, D)`` array in input order).
        lon_column: longitude column name.
        lat_column: latitude column name.
        batch_size: points per batch (bounds memory).
        device: where to run the encoder; default CUDA when available.
        overwrite: replace an existing output file.
        progress: show a progress bar.

    Returns:
        What was written.

    Raises:
        FileExistsError: if the output exists and ``overwrite`` is False.
        InputError: for a malformed input row (naming its line).
        ValueError: for an unsupported output suffix.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    suffix = output_path.suffix.lower()
    if suffix not in ('.csv', '.npy'):
        raise ValueError(f'output must end in .csv or .npy, got {output_path}')
    if output_path.exists() and not overwrite:
        raise FileExistsError(f'{output_path} exists; pass overwrite=True (--overwrite)')
    dev = torch.device(device) if device is not None else torch.device(
        'cuda' if torch.cuda.is_available() else 'cpu'
    )
    encoder = encoder.to(dev).eval()
    total = _count_rows(input_path)
    dim = encoder.embed_dim
    output_path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(
        prefix=f'.{output_path.name}.', suffix=f'.tmp{suffix}', dir=output_path.parent
    )
    os.close(handle)
    tmp = Path(tmp_name)
    written = 0
    try:
        bar = tqdm(total=total, unit='pt', disable=not progress, desc='embedding')
        batches = read_points_csv(input_path, lon_column, lat_column, batch_size)
        if suffix == '.npy':
            array = np.lib.format.open_memmap(tmp, mode='w+', dtype=np.float32, shape=(total, dim))
            for _, lonlat in batches:
                array[written : written + len(lonlat)] = _embed(encoder, lonlat, dev).numpy()
                written += len(lonlat)
                bar.update(len(lonlat))
            array.flush()
            del array
        else:
            with tmp.open('w', newline='') as out:
                writer = None
                keep: list[str] = []
                for rows, lonlat in batches:
                    emb = _embed(encoder, lonlat, dev).numpy()
                    if writer is None:
                        keep = [c for c in rows[0] if c not in (lon_column, lat_column)]
                        writer = csv.writer(out)
                        writer.writerow(
                            [*keep, lon_column, lat_column, *(f'emb_{i}' for i in range(dim))]
                        )
                    for row, (lon, lat), vec in zip(rows, lonlat, emb, strict=True):
                        writer.writerow(
                            [
                                *(row[c] for c in keep),
                                repr(float(lon)),
                                repr(float(lat)),
                                *(f'{v:.7g}' for v in vec),
                            ]
                        )
                    written += len(rows)
                    bar.update(len(rows))
        bar.close()
        if written != total:
            raise InputError(f'{input_path}: read {written} rows, expected {total}')
        os.replace(tmp, output_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return EmbedResult(path=output_path, num_points=written, embed_dim=dim)
