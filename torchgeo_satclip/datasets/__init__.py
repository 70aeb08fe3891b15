"""Datasets: S2-100K, its packer, the demo world, and file-centroid wrappers."""

from .located import FileCentroids, file_centroid, file_paths
from .pack import PackResult, VerifyResult, pack_s2_100k, verify_packed
from .s2_100k import S2100K, SampleBatch
from .s2_100k_files import (
    DatasetTableError,
    GeoTIFFError,
    MissingFilesError,
    PackedLayoutError,
)

__all__ = [
    'S2100K',
    'DatasetTableError',
    'FileCentroids',
    'GeoTIFFError',
    'MissingFilesError',
    'PackResult',
    'PackedLayoutError',
    'SampleBatch',
    'VerifyResult',
    'file_centroid',
    'file_paths',
    'pack_s2_100k',
    'verify_packed',
]
