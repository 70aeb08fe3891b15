"""SatCLIP location encoders: positional encodings, networks, weights."""

from .location_encoder import LocationEncoder, build_location_encoder, validate_lonlat
from .networks import MLP, NETWORKS, FCNet, LinearNet, SirenLayer, SirenNet, get_network
from .positional import POSITIONAL_ENCODINGS, get_positional_encoding
from .spherical_harmonics import SphericalHarmonics, spherical_harmonics
from .weights import (
    CheckpointError,
    SatCLIPWeights,
    download_checkpoint,
    load_location_encoder,
    save_official_checkpoint,
)

__all__ = [
    'MLP',
    'CheckpointError',
    'SatCLIPWeights',
    'download_checkpoint',
    'load_location_encoder',
    'save_official_checkpoint',
    'NETWORKS',
    'POSITIONAL_ENCODINGS',
    'FCNet',
    'LinearNet',
    'LocationEncoder',
    'SirenLayer',
    'SirenNet',
    'SphericalHarmonics',
    'build_location_encoder',
    'get_network',
    'get_positional_encoding',
    'spherical_harmonics',
    'validate_lonlat',
]
