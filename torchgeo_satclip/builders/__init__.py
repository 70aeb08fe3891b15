"""Dataset builders: new S2-100K-style datasets from the Planetary Computer."""

from ..geo import Region, iter_points, sample_points
from ._state import BuildLockedError
from .config import BuildConfig
from .planetary_computer import COLLECTION, DEFAULT_API_URL, BuildResult, build_dataset

__all__ = [
    'COLLECTION',
    'DEFAULT_API_URL',
    'BuildConfig',
    'BuildLockedError',
    'BuildResult',
    'Region',
    'build_dataset',
    'iter_points',
    'sample_points',
]
