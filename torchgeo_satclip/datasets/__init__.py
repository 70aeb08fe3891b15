"""Datasets: S2-100K (GeoTIFF or packed layout) and its one-time packer."""

from .pack import PackResult, pack_s2_100k
from .s2_100k import S2100K

__all__ = ['S2100K', 'PackResult', 'pack_s2_100k']
