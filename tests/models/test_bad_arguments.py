"""Bad arguments to the encoder builder, the encodings and the networks.

Generated, table-driven: every argument gets values of the wrong type (a bool
where a number belongs, a float where an integer belongs, a string, None) and
out of range, on every network and every encoding that takes it. Each case
must raise ``ValueError`` whose message names the argument and says what was
expected; none may build an encoder (a silent wrong answer).
"""

import math
import re
from typing import Any

import pytest
import torch

from torchgeo_satclip.models import (
    NETWORKS,
    POSITIONAL_ENCODINGS,
    build_location_encoder,
    get_network,
    get_positional_encoding,
)
from torchgeo_satclip.models.networks import SirenLayer, SirenNet

NOT_INTEGERS: list[Any] = [True, False, 2.5, 3.0, '8', None, [4], math.nan]
NOT_REALS: list[Any] = [True, '0.5', None, [0.5], math.nan, math.inf, -math.inf]
NOT_FLAGS: list[Any] = [1, 0, 'yes', None, 1.0]
NOT_NAMES: list[Any] = [3, None, ['siren'], b'siren', 1.5]

#: (argument, bad value, fragment the message must hold)
SIZES: list[tuple[str, Any, str]] = [
    *(
        (name, value, f'{name} must be an integer, got {value!r}')
        for name in ('legendre_polys', 'embed_dim', 'capacity', 'num_hidden_layers')
        for value in NOT_INTEGERS
    ),
    *(
        (name, value, f'{name} must be a positive integer, got {value}')
        for name in ('embed_dim', 'capacity', 'num_hidden_layers')
        for value in (0, -1, -512)
    ),
    *(('legendre_polys', value, 'legendre_polys must be') for value in (0, -1)),
]
DROPOUTS: list[tuple[str, Any, str]] = [
    *(
        ('dropout', value, 'dropout must be in [0, 1), got')
        for value in (-0.1, 1, 1.0, 1.5, -1)
    ),
    *(('dropout', value, 'dropout must be') for value in NOT_REALS),
]
FLAGS: list[tuple[str, Any, str]] = [
    ('validate', value, f'validate must be True or False, got {value!r}')
    for value in NOT_FLAGS
]
ARCHITECTURE = SIZES + DROPOUTS + FLAGS


def _ids(cases: list[tuple[str, Any, str]]) -> list[str]:
    return [f'{name}={value!r}' for name, value, _ in cases]


@pytest.mark.parametrize('network', sorted(NETWORKS))
@pytest.mark.parametrize(
    ('name', 'value', 'fragment'), ARCHITECTURE, ids=_ids(ARCHITECTURE)
)
def test_build_location_encoder_refuses(
    network: str, name: str, value: Any, fragment: str
) -> None:
    kwargs: dict[str, Any] = {'legendre_polys': 2, 'capacity': 4, 'embed_dim': 3}
    kwargs[name] = value
    if (
        network == 'mlp'
        and name == 'num_hidden_layers'
        and value == 0
        and type(value) is int
    ):
        # SatCLIP's MLP has a hidden input layer: none after it is allowed
        assert build_location_encoder(network=network, **kwargs).embed_dim == 3
        return
    with pytest.raises(ValueError, match=re.escape(fragment)):
        build_location_encoder(network=network, **kwargs)


@pytest.mark.parametrize('value', [101, 1000])
def test_legendre_polys_above_the_maximum(value: int) -> None:
    with pytest.raises(ValueError, match=f'between 1 and 100, got {value}'):
        build_location_encoder(legendre_polys=value)


@pytest.mark.parametrize('value', [*NOT_NAMES, 'nope', '', 'SIREN'])
def test_unknown_network(value: Any) -> None:
    expected = (
        'network must be a name' if not isinstance(value, str) else 'unknown network'
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        build_location_encoder(network=value, legendre_polys=2)


@pytest.mark.parametrize('value', [*NOT_NAMES, 'nope', '', 'SphericalHarmonics'])
def test_unknown_positional_encoding(value: Any) -> None:
    expected = (
        'positional encoding must be a name'
        if not isinstance(value, str)
        else 'unknown positional encoding'
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        build_location_encoder(positional_encoding=value)


@pytest.mark.parametrize(
    'dtype',
    [torch.int64, torch.int32, torch.bool, torch.complex64, 'float32', None, 64],
)
def test_dtype_must_be_floating(dtype: Any) -> None:
    with pytest.raises(ValueError, match='dtype must be a floating torch dtype'):
        build_location_encoder(legendre_polys=2, dtype=dtype)


@pytest.mark.parametrize('name', sorted(POSITIONAL_ENCODINGS))
@pytest.mark.parametrize('argument', ['foo', 'legendre', 'frequency'])
def test_unknown_encoding_argument(name: str, argument: str) -> None:
    with pytest.raises(
        ValueError, match=f"positional encoding '{name}' takes no argument '{argument}'"
    ):
        build_location_encoder(positional_encoding=name, **{argument: 1})  # type: ignore[arg-type]


@pytest.mark.parametrize('name', sorted(POSITIONAL_ENCODINGS))
def test_get_positional_encoding_unknown_argument(name: str) -> None:
    """The same ValueError as the builder's, not Python's TypeError."""
    with pytest.raises(
        ValueError,
        match=f"positional encoding '{name}' takes no argument 'foo'; it takes",
    ):
        get_positional_encoding(name, foo=1)


MULTISCALE = ['grid', 'theory', 'spherec', 'spherecplus', 'spherem', 'spheremplus']
RADII: list[tuple[str, Any, str]] = [
    *(
        ('frequency_num', value, 'frequency_num must be an integer')
        for value in NOT_INTEGERS
    ),
    *(
        ('frequency_num', value, 'frequency_num must be at least 1')
        for value in (0, -4)
    ),
    *(
        (name, value, f'{name} must be')
        for name in ('min_radius', 'max_radius')
        for value in [*NOT_REALS, 0, 0.0, -1.0]
    ),
]


@pytest.mark.parametrize('name', MULTISCALE)
@pytest.mark.parametrize(('argument', 'value', 'fragment'), RADII, ids=_ids(RADII))
def test_multiscale_arguments(
    name: str, argument: str, value: Any, fragment: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        build_location_encoder(positional_encoding=name, **{argument: value})


@pytest.mark.parametrize('name', MULTISCALE)
def test_min_radius_above_max_radius(name: str) -> None:
    with pytest.raises(
        ValueError, match=r'min_radius \(10\) must not exceed max_radius \(1\)'
    ):
        get_positional_encoding(name, min_radius=10.0, max_radius=1.0)


@pytest.mark.parametrize('name', ['spherec', 'spherecplus', 'spherem', 'spheremplus'])
@pytest.mark.parametrize('convention', ['paper', '', None, 1, 'SatCLIP'])
def test_sphere_convention(name: str, convention: Any) -> None:
    with pytest.raises(ValueError, match='convention must be'):
        get_positional_encoding(name, convention=convention)


@pytest.mark.parametrize('normalization', ['schmidt', '', None, 1, True])
def test_spherical_harmonics_normalization(normalization: Any) -> None:
    with pytest.raises(ValueError, match='normalization must be'):
        build_location_encoder(legendre_polys=2, normalization=normalization)


RFF: list[tuple[str, Any, str]] = [
    ('sigmas', (), 'sigmas must not be empty'),
    ('sigmas', 'abc', 'sigmas must be a sequence of numbers'),
    ('sigmas', 3.0, 'sigmas must be a sequence of numbers'),
    ('sigmas', None, 'sigmas must be a sequence of numbers'),
    ('sigmas', (1.0, 0.0), 'sigmas[1] must be finite and positive'),
    ('sigmas', (-1.0,), 'sigmas[0] must be finite and positive'),
    ('sigmas', (True,), 'sigmas[0] must be a real number'),
    ('sigmas', ('1',), 'sigmas[0] must be a real number'),
    ('sigmas', (math.nan,), 'sigmas[0] must be finite'),
    ('sigmas', (1.0, math.inf), 'sigmas[1] must be finite'),
    *(
        ('encoded_size', value, 'encoded_size must be')
        for value in [*NOT_INTEGERS, 0, -2]
    ),
    *(('seed', value, 'seed must be') for value in [*NOT_INTEGERS, -1, 2**64]),
]


@pytest.mark.parametrize(('argument', 'value', 'fragment'), RFF, ids=_ids(RFF))
def test_random_fourier_features_arguments(
    argument: str, value: Any, fragment: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        build_location_encoder(positional_encoding='rff', **{argument: value})


NETWORK_SIZES: list[tuple[str, Any, str]] = [
    *(
        (name, value, f'{name} must be an integer')
        for name in ('dim_in', 'dim_hidden', 'dim_out')
        for value in (True, 2.5, '4', None)
    ),
    *(
        (name, value, f'{name} must be a positive integer, got {value}')
        for name in ('dim_in', 'dim_hidden', 'dim_out')
        for value in (0, -3)
    ),
]


NETWORK_CASES = [
    (network, *case)
    for network in sorted(NETWORKS)
    for case in NETWORK_SIZES
    if not (network == 'linear' and case[0] == 'dim_hidden')  # no hidden layer
]


@pytest.mark.parametrize(
    ('network', 'argument', 'value', 'fragment'),
    NETWORK_CASES,
    ids=[f'{case[0]}-{case[1]}={case[2]!r}' for case in NETWORK_CASES],
)
def test_get_network_sizes(
    network: str, argument: str, value: Any, fragment: str
) -> None:
    kwargs: dict[str, Any] = {'dim_in': 4, 'dim_hidden': 5, 'dim_out': 3}
    kwargs[argument] = value
    with pytest.raises(ValueError, match=re.escape(fragment)):
        get_network(network, **kwargs)


SIREN: list[tuple[str, Any, str]] = [
    *(('w0', value, 'w0 must be') for value in [*NOT_REALS, 0.0, -30.0]),
    *(('w0_initial', value, 'w0_initial must be') for value in [*NOT_REALS, 0.0, -1]),
    *(('use_bias', value, 'use_bias must be True or False') for value in NOT_FLAGS),
    *(('num_layers', value, 'num_layers must be') for value in [*NOT_INTEGERS, 0, -1]),
]


@pytest.mark.parametrize(('argument', 'value', 'fragment'), SIREN, ids=_ids(SIREN))
def test_siren_arguments(argument: str, value: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        SirenNet(dim_in=4, dim_hidden=5, dim_out=3, **{argument: value})


@pytest.mark.parametrize(
    ('argument', 'value'),
    [('c', 0.0), ('c', -6.0), ('c', True), ('is_first', 1), ('activation', 'no')],
)
def test_siren_layer_arguments(argument: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f'{argument} must be'):
        SirenLayer(dim_in=4, dim_out=3, **{argument: value})


@pytest.mark.parametrize('value', [True, 2.5, -1, '4'])
def test_fcnet_num_blocks(value: Any) -> None:
    from torchgeo_satclip.models import FCNet

    with pytest.raises(ValueError, match='num_blocks must be'):
        FCNet(dim_in=4, num_blocks=value)


def test_valid_arguments_still_build() -> None:
    """The checks refuse mistakes only: the edge values that are valid build."""
    encoder = build_location_encoder(
        legendre_polys=1, capacity=1, embed_dim=1, num_hidden_layers=1, dropout=0
    )
    assert encoder.embed_dim == 1
    import numpy as np

    build_location_encoder(legendre_polys=np.int64(3), dropout=np.float64(0.99))  # type: ignore[arg-type]
    get_positional_encoding('grid', min_radius=2, max_radius=2)  # equal radii


#: get_network's common arguments that some networks do not use, with a bad
#: value of each and the message fragment.
IGNORED: list[tuple[str, Any, str]] = [
    ('dim_hidden', True, 'dim_hidden must be an integer, got True'),
    ('dim_hidden', 0, 'dim_hidden must be a positive integer, got 0'),
    ('num_layers', -3, 'num_layers must be a positive integer, got -3'),
    ('num_layers', 2.5, 'num_layers must be an integer, got 2.5'),
    ('dropout', 7, 'dropout must be in [0, 1), got 7'),
    ('dropout', 'x', "dropout must be a real number, got 'x'"),
]
IGNORED_CASES = [
    (network, *case)
    for network in sorted(NETWORKS)
    for case in IGNORED
    # the arguments each network ignores: linear has no hidden layer, fcnet
    # a fixed depth, and mlp, linear and geoclip have no dropout
    if (network, case[0])
    in {
        ('linear', 'dim_hidden'),
        ('linear', 'num_layers'),
        ('fcnet', 'num_layers'),
        ('mlp', 'dropout'),
        ('linear', 'dropout'),
        ('geoclip', 'dropout'),
    }
]


@pytest.mark.parametrize(
    ('network', 'argument', 'value', 'fragment'),
    IGNORED_CASES,
    ids=[f'{case[0]}-{case[1]}={case[2]!r}' for case in IGNORED_CASES],
)
def test_get_network_refuses_bad_ignored_arguments(
    network: str, argument: str, value: Any, fragment: str
) -> None:
    """An argument a network does not use is still checked, as by the builder."""
    kwargs: dict[str, Any] = {'dim_in': 6, 'dim_hidden': 5, 'dim_out': 3}
    kwargs[argument] = value
    with pytest.raises(ValueError, match=re.escape(fragment)):
        get_network(network, **kwargs)


@pytest.mark.parametrize('network', sorted(NETWORKS))
def test_get_network_ignored_arguments_with_good_values_build(network: str) -> None:
    net = get_network(network, 6, dim_hidden=5, dim_out=3, num_layers=1, dropout=0.0)
    assert net(torch.zeros(2, 6)).shape == (2, 3)
