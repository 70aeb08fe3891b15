"""SatCLIP location encoders: positional encodings, networks, weights."""

from .location_encoder import LocationEncoder, build_location_encoder, validate_lonlat
from .networks import MLP, NETWORKS, FCNet, LinearNet, SirenLayer, SirenNet, get_network
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
)
from .spherical_harmonics import SphericalHarmonics, spherical_harmonics
from .weights import (
    CheckpointError,
    SatCLIPWeights,
    download_checkpoint,
    load_location_encoder,
    save_official_checkpoint,
)

__all__ = [
    'GEOCLIP_SCALE_FACTOR',
    'MLP',
    'NETWORKS',
    'POSITIONAL_ENCODINGS',
    'Cartesian3D',
    'CheckpointError',
    'Direct',
    'FCNet',
    'Grid',
    'LinearNet',
    'LocationEncoder',
    'RandomFourierFeatures',
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
    'download_checkpoint',
    'equal_earth_projection',
    'get_network',
    'get_positional_encoding',
    'load_location_encoder',
    'save_official_checkpoint',
    'spherical_harmonics',
    'validate_lonlat',
]
