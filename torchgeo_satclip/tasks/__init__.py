"""TorchGeo tasks: SatCLIP pretraining, location-aware and location-only tasks.

The fusion models are re-exported from :mod:`torchgeo_satclip.models.fusion`.

Use the full dotted paths in ``torchgeo fit`` YAML, for example
``class_path: torchgeo_satclip.tasks.LocationAwareClassificationTask``.
"""

from ..models import Fusion, LocationFusionModel, LocationInput, LocationOnlyModel
from .location_aware import LocationAwareClassificationTask, LocationAwareRegressionTask
from .location_only import LocationClassificationTask, LocationRegressionTask
from .prediction import EmbeddingWriter
from .satclip import SatCLIPTask, export_official_checkpoint
from .utils import LOCATION_DEFAULTS, LocationEncoderArgs

__all__ = [
    'LOCATION_DEFAULTS',
    'EmbeddingWriter',
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
