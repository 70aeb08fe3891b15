"""SatCLIP location encoders: positional encodings, networks, weights.

The weights members and what needs them (:mod:`.released`: torchvision's
``WeightsEnum``, about two seconds to import) are imported on first access
(PEP 562), so that building or loading an encoder from a file does not
import torchvision.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from ..geo import validate_lonlat
from .export import (
    OFFICIAL_VISION_LAYERS,
    location_encoder_hyper_parameters,
    save_official_checkpoint,
)
from .fusion import (
    Fusion,
    LocationFusionModel,
    LocationInput,
    LocationOnlyModel,
    check_location_embedding,
)
from .geoclip import (
    GEOCLIP_ARCHITECTURE,
    GEOCLIP_SIGMAS,
    find_geoclip_weights,
    geoclip_location_encoder,
    geoclip_to_encoder_state_dict,
    is_geoclip_state_dict,
)
from .location_encoder import LocationEncoder, build_location_encoder
from .networks import (
    MLP,
    NETWORKS,
    FCNet,
    LinearNet,
    MultiScaleMLP,
    SatCLIPMLP,
    SirenLayer,
    SirenNet,
    get_network,
    list_networks,
)
from .positional import (
    GEOCLIP_SCALE_FACTOR,
    POSITIONAL_ENCODINGS,
    Cartesian3D,
    Direct,
    Grid,
    RandomFourierFeatures,
    SphereC,
    SphereCPlus,
    SphereM,
    SphereMPlus,
    Theory,
    Wrap,
    equal_earth_projection,
    get_positional_encoding,
    list_positional_encodings,
)
from .spherical_harmonics import SphericalHarmonics, spherical_harmonics
from .weights import (
    _RELEASED,
    CheckpointError,
    ChecksumError,
    DownloadError,
    GeoCLIPNotInstalledError,
    LocationSource,
    find_geoclip_checkpoint,
    load_location_encoder,
    read_checkpoint,
    satclip_location_encoder,
    sha256sum,
)

if TYPE_CHECKING:
    from .released import (
        GeoCLIPWeights,
        SatCLIPWeights,
        download_checkpoint,
        expected_sha256,
        list_weights,
        weights_table,
    )

__all__ = [
    'GEOCLIP_ARCHITECTURE',
    'GEOCLIP_SCALE_FACTOR',
    'GEOCLIP_SIGMAS',
    'MLP',
    'NETWORKS',
    'OFFICIAL_VISION_LAYERS',
    'POSITIONAL_ENCODINGS',
    'Cartesian3D',
    'CheckpointError',
    'ChecksumError',
    'Direct',
    'DownloadError',
    'FCNet',
    'Fusion',
    'GeoCLIPNotInstalledError',
    'GeoCLIPWeights',
    'Grid',
    'LinearNet',
    'LocationEncoder',
    'LocationFusionModel',
    'LocationInput',
    'LocationOnlyModel',
    'LocationSource',
    'MultiScaleMLP',
    'RandomFourierFeatures',
    'SatCLIPMLP',
    'SatCLIPWeights',
    'SirenLayer',
    'SirenNet',
    'SphereC',
    'SphereCPlus',
    'SphereM',
    'SphereMPlus',
    'SphericalHarmonics',
    'Theory',
    'Wrap',
    'build_location_encoder',
    'check_location_embedding',
    'download_checkpoint',
    'equal_earth_projection',
    'expected_sha256',
    'find_geoclip_checkpoint',
    'find_geoclip_weights',
    'geoclip_location_encoder',
    'geoclip_to_encoder_state_dict',
    'get_network',
    'get_positional_encoding',
    'is_geoclip_state_dict',
    'list_networks',
    'list_positional_encodings',
    'list_weights',
    'load_location_encoder',
    'location_encoder_hyper_parameters',
    'read_checkpoint',
    'satclip_location_encoder',
    'save_official_checkpoint',
    'sha256sum',
    'spherical_harmonics',
    'validate_lonlat',
    'weights_table',
]

__getattr__, __dir__ = lazy_exports(globals(), dict.fromkeys(_RELEASED, '.released'))
