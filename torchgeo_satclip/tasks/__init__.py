"""TorchGeo tasks: location-aware classification and regression.

Use the full dotted paths in ``torchgeo fit`` YAML, for example
``class_path: torchgeo_satclip.tasks.LocationAwareClassificationTask``.
"""

from .location_aware import (
    Fusion,
    LocationAwareClassificationTask,
    LocationAwareRegressionTask,
    LocationClassificationTask,
    LocationFusionModel,
    LocationOnlyModel,
    LocationRegressionTask,
)
from .satclip import SatCLIPTask, export_official_checkpoint

__all__ = [
    'Fusion',
    'LocationAwareClassificationTask',
    'LocationAwareRegressionTask',
    'LocationClassificationTask',
    'LocationFusionModel',
    'LocationOnlyModel',
    'LocationRegressionTask',
    'SatCLIPTask',
    'export_official_checkpoint',
]
