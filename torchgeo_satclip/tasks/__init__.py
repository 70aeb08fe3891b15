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
    LocationInput,
    LocationOnlyModel,
    LocationRegressionTask,
)
from .satclip import SatCLIPTask, export_official_checkpoint
from .utils import LOCATION_DEFAULTS, LocationEncoderArgs

__all__ = [
    'LOCATION_DEFAULTS',
    'Fusion',
    'LocationAwareClassificationTask',
    'LocationAwareRegressionTask',
    'LocationClassificationTask',
    'LocationEncoderArgs',
    'LocationFusionModel',
    'LocationInput',
    'LocationOnlyModel',
    'LocationRegressionTask',
    'SatCLIPTask',
    'export_official_checkpoint',
]
