"""Transforms and wrappers that add locations and location embeddings to samples."""

from .located import EuroSATLocationDataModule, FileCentroids, file_centroid, file_paths
from .location import (
    LocationEmbedding,
    LocationSource,
    get_location_encoder,
    reproject_to_lonlat,
    sample_lonlat,
)

__all__ = [
    'EuroSATLocationDataModule',
    'FileCentroids',
    'LocationEmbedding',
    'LocationSource',
    'file_centroid',
    'file_paths',
    'get_location_encoder',
    'reproject_to_lonlat',
    'sample_lonlat',
]
