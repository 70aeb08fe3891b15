"""Embed a table of points with a location encoder, streaming in batches.

The library side of ``torchgeo-satclip embed``: :func:`embed_file` reads
points from CSV, Parquet or GeoJSON in batches, embeds each batch (on the GPU
when there is one) and writes Parquet (identifier columns kept, the embedding
as ``emb_*`` columns or one fixed-size list column), CSV or ``.npy``, to a
temporary file in the output's folder that is renamed when complete. Only one
batch of points and about two of embeddings are in memory at a time, whatever
the number of points (GeoJSON, a single JSON document, is the exception: it
is parsed whole). A bad input is refused with its file and line, row or
feature, before the work where it can be found there.

* :mod:`~torchgeo_satclip.embed.points`: the batch, the errors, the number rule;
* :mod:`~torchgeo_satclip.embed.csv_points`: the strict CSV reader;
* :mod:`~torchgeo_satclip.embed.table_points`: Parquet and GeoJSON;
* :mod:`~torchgeo_satclip.embed.read`: opening a file by its suffix;
* :mod:`~torchgeo_satclip.embed.write`: the Parquet, CSV and ``.npy`` writers;
* :mod:`~torchgeo_satclip.embed.pipeline`: the job, :func:`embed_file` and
  :func:`embed_points`.
"""

from .pipeline import (
    DtypeName,
    EmbedOptions,
    EmbedPointsResult,
    EmbedResult,
    Neighbour,
    embed_csv,
    embed_file,
    embed_points,
    nearest_neighbours,
)
from .points import EmbedError, InputError, PointBatch, PointSource
from .read import (
    INPUT_FORMATS,
    count_points,
    open_points,
    read_points,
    read_points_csv,
)
from .write import OUTPUT_FORMATS

__all__ = [
    'INPUT_FORMATS',
    'OUTPUT_FORMATS',
    'DtypeName',
    'EmbedError',
    'EmbedOptions',
    'EmbedPointsResult',
    'EmbedResult',
    'InputError',
    'Neighbour',
    'PointBatch',
    'PointSource',
    'count_points',
    'embed_csv',
    'embed_file',
    'embed_points',
    'nearest_neighbours',
    'open_points',
    'read_points',
    'read_points_csv',
]
