"""Lightning datamodules: S2-100K, cached features, location-aware EuroSAT."""

from .cached import (
    CachedFeatureDataModule,
    CachedFeatureDataset,
    FeatureExtractor,
    build_feature_cache,
    dihedral_view,
)
from .eurosat import EuroSATLocationDataModule
from .loader import ThreadedBatchLoader
from .s2_100k import (
    S2100KAugmentation,
    S2100KDataModule,
    collate_all_dates,
    collate_sample_batch,
    jitter_points,
    split_indices,
)

__all__ = [
    'CachedFeatureDataModule',
    'CachedFeatureDataset',
    'EuroSATLocationDataModule',
    'FeatureExtractor',
    'S2100KAugmentation',
    'S2100KDataModule',
    'ThreadedBatchLoader',
    'build_feature_cache',
    'collate_all_dates',
    'collate_sample_batch',
    'dihedral_view',
    'jitter_points',
    'split_indices',
]
