import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torchgeo_satclip.models import (
    LocationEncoder,
    MultiScaleMLP,
    SirenNet,
    SphericalHarmonics,
    build_location_encoder,
    spherical_harmonics,
    validate_lonlat,
)


@pytest.fixture(scope='module')
def encoder() -> LocationEncoder:
    torch.manual_seed(0)
    return build_location_encoder(legendre_polys=10).eval()


def test_released_parameter_counts() -> None:
    for legendre_polys, count in ((10, 445_696), (40, 1_213_696)):
        enc = build_location_encoder(legendre_polys=legendre_polys)
        assert sum(p.numel() for p in enc.parameters()) == count
        assert enc.dtype == torch.float64
        assert enc.embed_dim == 256


def test_forward_is_posenc_then_network(encoder: LocationEncoder) -> None:
    lonlat = torch.tensor([[2.35, 48.86], [-74.0, 40.71]], dtype=torch.float64)
    expected = encoder.nnet(spherical_harmonics(lonlat, 10))
    torch.testing.assert_close(encoder(lonlat), expected)
    # float32 input is promoted to the float64 network
    out = encoder(lonlat.float())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_state_dict_keys_match_torchgeo_layout(encoder: LocationEncoder) -> None:
    assert set(encoder.state_dict()) == {
        'nnet.layers.0.weight',
        'nnet.layers.0.bias',
        'nnet.layers.1.weight',
        'nnet.layers.1.bias',
        'nnet.last_layer.weight',
        'nnet.last_layer.bias',
    }


def test_mismatched_parts() -> None:
    with pytest.raises(ValueError, match=r'expects 50 input features.*produces 100'):
        LocationEncoder(SphericalHarmonics(10), SirenNet(dim_in=50))


@pytest.mark.parametrize(
    'nnet',
    [
        torch.nn.Linear(10, 4),
        torch.nn.Sequential(
            torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)
        ),
    ],
    ids=['Linear', 'Sequential'],
)
def test_mismatched_plain_torch_network(nnet: torch.nn.Module) -> None:
    """A torch network without dim_in is checked by its first linear layer."""
    with pytest.raises(ValueError, match=r'expects 10 input features.*produces 9'):
        LocationEncoder(SphericalHarmonics(3), nnet)


@pytest.mark.parametrize(
    'nnet',
    [
        torch.nn.Linear(9, 4),
        torch.nn.Sequential(
            torch.nn.Linear(9, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)
        ),
    ],
    ids=['Linear', 'Sequential'],
)
def test_plain_torch_network_embed_dim(nnet: torch.nn.Module) -> None:
    encoder = LocationEncoder(SphericalHarmonics(3), nnet.double())
    assert encoder.embed_dim == 4
    points = torch.tensor([[2.35, 48.86]], dtype=torch.float64)
    assert encoder(points).shape == (1, encoder.embed_dim)


def test_embed_dim_of_a_network_of_unknown_width() -> None:
    nnet = torch.nn.Sequential(torch.nn.Linear(9, 4), torch.nn.Tanh())
    encoder = LocationEncoder(SphericalHarmonics(3), nnet)
    # Not an AttributeError: nn.Module.__getattr__ would replace its message
    # with "'LocationEncoder' object has no attribute 'embed_dim'".
    with pytest.raises(TypeError, match=r'embedding size of the network Sequential'):
        encoder.embed_dim  # noqa: B018


@pytest.mark.parametrize(
    ('lonlat', 'match'),
    [
        (
            [[0.0, 0.0], [181.0, 0.0]],
            r'row 1: longitude 181.0 is outside \[-180, 180\]',
        ),
        ([[0.0, 91.0]], r'row 0: latitude 91.0 is outside \[-90, 90\]'),
        ([[48.8, 120.0]], 'look like \\(latitude, longitude\\)'),
        ([[1.0, 2.0], [float('nan'), 0.0]], 'row 1: non-finite'),
        ([[float('inf'), 0.0]], 'row 0: non-finite'),
    ],
)
def test_validation_messages(
    encoder: LocationEncoder, lonlat: list[list[float]], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        encoder(torch.tensor(lonlat, dtype=torch.float64))


def test_validation_shapes_and_dtypes(encoder: LocationEncoder) -> None:
    with pytest.raises(ValueError, match=r'shape \(N, 2\).*got shape \(2,\)'):
        encoder(torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r'got shape \(4, 3\)'):
        encoder(torch.zeros(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r'floating dtype.*torch\.int64'):
        encoder(torch.zeros(4, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r'must be a torch\.Tensor'):
        validate_lonlat([[0.0, 0.0]])  # type: ignore[arg-type]
    assert encoder(torch.zeros(0, 2, dtype=torch.float64)).shape == (0, 256)


def test_validation_can_be_disabled() -> None:
    enc = build_location_encoder(legendre_polys=3, validate=False).eval()
    out = enc(torch.tensor([[0.0, 95.0]], dtype=torch.float64))
    assert out.shape == (1, 256)


@pytest.mark.parametrize('validate', [True, False])
def test_numpy_points_get_a_type_error(validate: bool) -> None:
    """Not an AttributeError from deep inside, after validation passed."""
    import numpy as np

    enc = build_location_encoder(legendre_polys=3, validate=validate).eval()
    with pytest.raises(TypeError, match=r'got a ndarray: pass torch\.as_tensor'):
        enc(np.zeros((2, 2)))


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
lons = st.floats(min_value=-180, max_value=180)
lats = st.floats(min_value=-90, max_value=90)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(lons, lats), min_size=1, max_size=20))
def test_property_valid_points_accepted(points: list[tuple[float, float]]) -> None:
    tensor = torch.tensor(points, dtype=torch.float64)
    validate_lonlat(tensor)
    validate_lonlat(tensor.float())


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(lons, lats), min_size=0, max_size=10),
    st.one_of(
        st.tuples(finite.filter(lambda v: abs(v) > 180), lats),
        st.tuples(lons, finite.filter(lambda v: abs(v) > 90)),
        st.tuples(st.sampled_from([math.nan, math.inf, -math.inf]), lats),
        st.tuples(lons, st.sampled_from([math.nan, math.inf, -math.inf])),
    ),
    st.lists(st.tuples(lons, lats), min_size=0, max_size=10),
)
def test_property_first_bad_row_named(
    before: list[tuple[float, float]],
    bad: tuple[float, float],
    after: list[tuple[float, float]],
) -> None:
    tensor = torch.tensor([*before, bad, *after], dtype=torch.float64)
    with pytest.raises(ValueError, match=f'row {len(before)}[ :]'):
        validate_lonlat(tensor)


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from([torch.int32, torch.int64, torch.uint8, torch.bool]),
    st.integers(min_value=1, max_value=5),
)
def test_property_integer_dtypes_refused(dtype: torch.dtype, n: int) -> None:
    with pytest.raises(ValueError, match='floating dtype'):
        validate_lonlat(torch.zeros(n, 2, dtype=dtype))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=4), min_size=0, max_size=4))
def test_property_wrong_shapes_refused(shape: list[int]) -> None:
    if len(shape) == 2 and shape[1] == 2:
        return
    with pytest.raises(ValueError, match=r'shape \(N, 2\)'):
        validate_lonlat(torch.zeros(tuple(shape), dtype=torch.float64))


def test_dtype_difference() -> None:
    """Embedding difference between compute dtypes (figures in docs/precision.md)."""
    torch.manual_seed(0)
    enc64 = build_location_encoder(legendre_polys=40).eval()
    gen = torch.Generator().manual_seed(1)
    lonlat = torch.stack(
        [
            torch.rand(4096, generator=gen) * 360 - 180,
            torch.rand(4096, generator=gen) * 180 - 90,
        ],
        dim=1,
    ).double()
    with torch.no_grad():
        ref = enc64(lonlat)
        scale = ref.abs().max()
        out32 = build_location_encoder(legendre_polys=40)
        out32.load_state_dict(enc64.state_dict())
        diff32 = (
            out32.to(torch.float32).eval()(lonlat).double() - ref
        ).abs().max() / scale
        out16 = build_location_encoder(legendre_polys=40)
        out16.load_state_dict(enc64.state_dict())
        emb16 = out16.to(torch.bfloat16).eval()(lonlat)
        assert emb16.dtype == torch.bfloat16
        diff16 = (emb16.double() - ref).abs().max() / scale
    # Documented bounds (relative to the largest embedding value):
    assert diff32 < 1e-4
    assert diff16 < 1e-1
    print(
        f'max relative difference float32 {float(diff32):.2e}, bf16 {float(diff16):.2e}'
    )


def test_gradients_flow_to_input_and_weights() -> None:
    enc = build_location_encoder(legendre_polys=5)
    lonlat = torch.tensor(
        [[10.0, 90.0], [20.0, -30.0]], dtype=torch.float64, requires_grad=True
    )
    enc(lonlat).sum().backward()
    assert lonlat.grad is not None
    assert torch.isfinite(lonlat.grad).all()
    assert all(p.grad is not None for p in enc.parameters())


def test_half_precision_network_computes_coordinates_in_float32() -> None:
    # bfloat16 holds 100.0 and 100.1 as the same number (its spacing there is
    # 0.5): a bfloat16 encoder must compute the harmonics before casting, or
    # two points 11 km apart get the same embedding.
    torch.manual_seed(0)
    encoder = build_location_encoder(legendre_polys=10).to(torch.bfloat16).eval()
    lonlat = torch.tensor([[100.0, 40.0], [100.1, 40.1]])
    assert torch.equal(lonlat.to(torch.bfloat16)[0], lonlat.to(torch.bfloat16)[1])
    with torch.no_grad():
        embedding = encoder(lonlat)
    assert embedding.dtype == torch.bfloat16
    assert not torch.equal(embedding[0], embedding[1])


@pytest.mark.parametrize('sigmas', [(1.0, 16.0), (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)])
def test_geoclip_network_has_one_branch_per_scale(sigmas: tuple[float, ...]) -> None:
    """GeoCLIP's network gives each random-Fourier-feature scale its own branch.

    It had three branches whatever the scales: two scales were refused
    (their features do not split into three blocks) and six were fed two
    scales to each branch, a network GeoCLIP does not have.
    """
    torch.manual_seed(0)
    encoder = build_location_encoder(
        'rff',
        'geoclip',
        sigmas=sigmas,
        encoded_size=4,
        capacity=8,
        embed_dim=3,
        num_hidden_layers=1,
    ).eval()
    nnet = encoder.nnet
    assert isinstance(nnet, MultiScaleMLP)
    assert nnet.num_branches == len(sigmas)
    lonlat = torch.tensor([[2.35, 48.86], [-74.0, 40.71]], dtype=torch.float64)
    features = encoder.posenc(lonlat)  # 2 * 4 features per scale
    expected = sum(
        branch(features[:, 8 * i : 8 * i + 8]) for i, branch in enumerate(nnet.branches)
    )
    torch.testing.assert_close(encoder(lonlat), expected)
