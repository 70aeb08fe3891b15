"""Lightning datamodules: S2-100K with SatCLIP's on-device augmentation."""

from .s2_100k import S2100KAugmentation, S2100KDataModule, jitter_points, split_indices

__all__ = ['S2100KAugmentation', 'S2100KDataModule', 'jitter_points', 'split_indices']
