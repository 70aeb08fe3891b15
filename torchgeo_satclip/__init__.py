"""torchgeo-satclip: SatCLIP location encoders and pretraining for TorchGeo.

The location encoder maps ``(N, 2)`` tensors of **(longitude, latitude) in
degrees** (longitude first) to embeddings usable as features in any
geospatial model.
"""

from .models import LocationEncoder, build_location_encoder

__version__ = '0.1.0'

__all__ = ['LocationEncoder', '__version__', 'build_location_encoder']
