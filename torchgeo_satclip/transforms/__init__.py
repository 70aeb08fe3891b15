"""Transforms that add location embeddings to samples and batches."""

from ..geo import reproject_to_lonlat
from ..models import LocationSource
from .location import LocationEmbedding, get_location_encoder, sample_lonlat

__all__ = [
    'LocationEmbedding',
    'LocationSource',
    'get_location_encoder',
    'reproject_to_lonlat',
    'sample_lonlat',
]
