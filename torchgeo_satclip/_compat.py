"""Every difference between the supported torchgeo versions, and nothing else.

torchgeo 0.8.1 (the newest on Python 3.11) keeps its Lightning tasks in
``torchgeo.trainers`` with a ``Task`` suffix; torchgeo 0.10 (Python >= 3.12)
moved them to ``torchgeo.tasks`` without the suffix and added the ``S2100k``
dataset and a SatCLIP location model. The rest of the package imports these
names from here and never checks versions itself.
"""

from importlib.metadata import version
from typing import Any

import torchgeo

__all__ = [
    'TORCHGEO_VERSION',
    'TORCHGEO_AT_LEAST_0_10',
    'BaseTask',
    'ClassificationTask',
    'RegressionTask',
    'TorchGeoS2100k',
    'TorchGeoSatCLIP',
    'TorchGeoSatCLIPWeights',
    'load_backbone_state_dict',
]


def _parse(text: str) -> tuple[int, int]:
    """Return ``(major, minor)`` of a version string such as ``'0.10.1'``."""
    major, minor = text.split('.')[:2]
    return int(major), int(''.join(ch for ch in minor if ch.isdigit()) or 0)


#: The installed torchgeo version string.
TORCHGEO_VERSION: str = getattr(torchgeo, '__version__', version('torchgeo'))

#: True on torchgeo 0.10 and newer.
TORCHGEO_AT_LEAST_0_10: bool = _parse(TORCHGEO_VERSION) >= (0, 10)

TorchGeoS2100k: Any
TorchGeoSatCLIP: Any
TorchGeoSatCLIPWeights: Any

if TORCHGEO_AT_LEAST_0_10:
    from torchgeo.datasets import S2100k as TorchGeoS2100k
    from torchgeo.models import SatCLIP as TorchGeoSatCLIP
    from torchgeo.models import SatCLIP_Weights as TorchGeoSatCLIPWeights
    from torchgeo.tasks import BaseTask
    from torchgeo.tasks import Classification as ClassificationTask
    from torchgeo.tasks import Regression as RegressionTask
    from torchgeo.tasks.utils import load_state_dict as load_backbone_state_dict
else:  # torchgeo 0.8
    from torchgeo.trainers import BaseTask, ClassificationTask, RegressionTask
    from torchgeo.trainers.utils import load_state_dict as load_backbone_state_dict

    TorchGeoS2100k = None
    TorchGeoSatCLIP = None
    TorchGeoSatCLIPWeights = None
