"""Datasets: S2-100K, its packer, the demo world, and file-centroid wrappers."""

from .located import FileCentroids, file_centroid, file_paths
from .pack import PackResult, pack_s2_100k
from .s2_100k import S2100K, SampleBatch

__all__ = [
    'S2100K',
    'FileCentroids',
    'PackResult',
    'SampleBatch',
    'file_centroid',
    'file_paths',
    'pack_s2_100k',
]
