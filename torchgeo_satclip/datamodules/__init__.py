"""Lightning datamodules: S2-100K with SatCLIP's on-device augmentation."""

from .cached import (
    CachedFeatureDataModule,
    CachedFeatureDataset,
    build_feature_cache,
    dihedral_view,
)
from .s2_100k import S2100KAugmentation, S2100KDataModule, jitter_points, split_indices

__all__ = [
    'CachedFeatureDataModule',
    'CachedFeatureDataset',
    'S2100KAugmentation',
    'S2100KDataModule',
    'build_feature_cache',
    'dihedral_view',
    'jitter_points',
    'split_indices',
]
