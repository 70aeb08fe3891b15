"""Transforms that add location embeddings to samples and batches."""

from .location import (
    LocationEmbedding,
    LocationSource,
    get_location_encoder,
    reproject_to_lonlat,
    sample_lonlat,
)

__all__ = [
    'LocationEmbedding',
    'LocationSource',
    'get_location_encoder',
    'reproject_to_lonlat',
    'sample_lonlat',
]
