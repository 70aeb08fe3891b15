"""Tests of the positional encodings other than spherical harmonics.

Every formula is checked against an independent numpy reference written from
the paper (and, for the column layout, from the description of the original
SatCLIP code), not by calling the implementation.
"""

import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from torchgeo_satclip.models import (
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
    build_location_encoder,
    equal_earth_projection,
    get_positional_encoding,
)

# Small configurations: cheap, and F = 3 (odd) exercises the layouts.
SMALL: dict[str, dict[str, Any]] = {
    'direct': {},
    'cartesian3d': {},
    'wrap': {},
    'grid': {'frequency_num': 3},
    'theory': {'frequency_num': 4},
    'spherec': {'frequency_num': 3},
    'spherecplus': {'frequency_num': 3},
    'spherem': {'frequency_num': 3},
    'spheremplus': {'frequency_num': 3},
    'rff': {'encoded_size': 4},
}
NAMES = list(SMALL)

# Output size per unit of F (SatCLIP layout), for the multi-scale encodings.
PER_SCALE = {
    'grid': 4,
    'theory': 6,
    'spherec': 6,
    'spherecplus': 12,
    'spherem': 10,
    'spheremplus': 16,
}

A1, A2, A3, A4 = 1.340264, -0.081106, 0.000893, 0.003796


def lonlat_grid(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A grid with both poles, the antimeridian (both signs) and the equator."""
    lons = [-180.0, -179.999, -90.0, -0.5, 0.0, 45.25, 90.0, 179.999, 180.0]
    lats = [-90.0, -89.999, -45.0, 0.0, 0.001, 30.5, 89.999, 90.0]
    points = [(lon, lat) for lon in lons for lat in lats]
    return torch.tensor(points, dtype=dtype)


def sample_points() -> np.ndarray:
    """A few float64 (lon, lat) points for the numpy references."""
    return np.array(
        [
            [0.0, 0.0],
            [2.3522, 48.8566],
            [-122.4194, 37.7749],
            [151.2093, -33.8688],
            [180.0, 90.0],
            [-180.0, -90.0],
            [-0.1278, 51.5074],
            [179.5, -89.9],
        ]
    )


def encode(module: nn.Module, points: np.ndarray) -> np.ndarray:
    """Run ``module`` on float64 ``points`` and return a numpy array."""
    out = module(torch.from_numpy(points))
    assert isinstance(out, torch.Tensor)
    return out.detach().cpu().numpy()


def ref_frequencies(num: int, min_radius: float, max_radius: float) -> np.ndarray:
    """1 / r_s, r_s = r_min (r_max / r_min)^(s / (F - 1))."""
    if num == 1:
        return np.array([1.0 / min_radius])
    steps = np.arange(num) / (num - 1)
    return 1.0 / (min_radius * (max_radius / min_radius) ** steps)


# --------------------------------------------------------------------------
# Generic properties of every encoding
# --------------------------------------------------------------------------


@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_shape_dtype_finite(name: str, dtype: torch.dtype) -> None:
    encoding = get_positional_encoding(name, **SMALL[name])
    points = lonlat_grid(dtype)
    out = encoding(points)
    assert out.shape == (points.shape[0], encoding.embedding_dim)
    assert out.dtype == dtype
    assert out.device == points.device
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('name', NAMES)
def test_narrow_dtypes_give_float32(name: str) -> None:
    encoding = get_positional_encoding(name, **SMALL[name])
    out = encoding(lonlat_grid(torch.bfloat16))
    assert out.dtype == torch.float32


@pytest.mark.parametrize('name', NAMES)
def test_gradients_finite_and_nonzero(name: str) -> None:
    encoding = get_positional_encoding(name, **SMALL[name])
    points = lonlat_grid(torch.float64).requires_grad_(True)
    out = encoding(points)
    weights = torch.linspace(-1.0, 1.0, out.numel(), dtype=out.dtype).reshape(out.shape)
    (grad,) = torch.autograd.grad((out * weights).sum(), points)
    assert grad.shape == points.shape
    assert torch.isfinite(grad).all()
    assert (grad != 0).any()


@pytest.mark.parametrize('name', NAMES)
def test_gradcheck(name: str) -> None:
    encoding = get_positional_encoding(name, **SMALL[name])
    points = torch.tensor(
        [[12.5, -33.0], [-170.0, 80.0], [0.3, 0.2]], dtype=torch.float64
    ).requires_grad_(True)
    assert torch.autograd.gradcheck(encoding, (points,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize('name', NAMES)
def test_meta_device(name: str) -> None:
    # Runs without data: proves there is no numpy, .item() or host copy.
    encoding = get_positional_encoding(name, **SMALL[name]).to('meta')
    out = encoding(torch.empty(7, 2, dtype=torch.float64, device='meta'))
    assert out.device.type == 'meta'
    assert out.shape == (7, encoding.embedding_dim)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('name', NAMES)
def test_cuda_matches_cpu(name: str) -> None:
    encoding = get_positional_encoding(name, **SMALL[name])
    points = lonlat_grid(torch.float64)
    expected = encoding(points)
    out = encoding.to('cuda')(points.to('cuda'))
    assert out.device.type == 'cuda'
    torch.testing.assert_close(out.cpu(), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize('name', NAMES)
def test_empty_batch(name: str) -> None:
    encoding = get_positional_encoding(name, **SMALL[name])
    out = encoding(torch.empty(0, 2, dtype=torch.float64))
    assert out.shape == (0, encoding.embedding_dim)


@pytest.mark.parametrize('name', NAMES)
def test_invalid_input(name: str) -> None:
    encoding = get_positional_encoding(name, **SMALL[name])
    with pytest.raises(ValueError, match='shape'):
        encoding(torch.zeros(3, 3))
    with pytest.raises(ValueError, match='floating'):
        encoding(torch.zeros(3, 2, dtype=torch.int64))


@pytest.mark.parametrize('name', NAMES)
def test_get_positional_encoding(name: str) -> None:
    encoding = get_positional_encoding(name)
    assert isinstance(encoding, POSITIONAL_ENCODINGS[name])
    assert isinstance(encoding.embedding_dim, int)
    assert not list(encoding.parameters())


def test_registry_names() -> None:
    assert set(POSITIONAL_ENCODINGS) == {'sphericalharmonics', *NAMES}


def test_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown positional encoding 'nope'"):
        get_positional_encoding('nope')


@pytest.mark.parametrize('name', [n for n in NAMES if n != 'rff'])
def test_state_dict_empty(name: str) -> None:
    # SatCLIP checkpoints have no posenc keys: these encodings add none.
    assert get_positional_encoding(name, **SMALL[name]).state_dict() == {}


@pytest.mark.parametrize('name', NAMES)
def test_in_location_encoder(name: str) -> None:
    encoder = build_location_encoder(
        name, network='siren', embed_dim=8, capacity=16, **SMALL[name]
    )
    out = encoder(lonlat_grid(torch.float64))
    assert out.shape == (72, 8)
    assert out.dtype == torch.float64


# --------------------------------------------------------------------------
# Direct, Cartesian3D, Wrap
# --------------------------------------------------------------------------


def test_direct_reference() -> None:
    points = sample_points()
    expected = np.radians(points) - np.pi
    np.testing.assert_allclose(encode(Direct(), points), expected, rtol=0, atol=1e-12)
    assert Direct().embedding_dim == 2


def test_cartesian3d_reference() -> None:
    points = sample_points()
    lam, phi = np.radians(points[:, 0]), np.radians(points[:, 1])
    expected = np.stack(
        [np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1
    )
    out = encode(Cartesian3D(), points)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=0, atol=1e-12)
    assert Cartesian3D().embedding_dim == 3


def test_wrap_reference() -> None:
    points = sample_points()
    lam, phi = np.radians(points[:, 0]), np.radians(points[:, 1])
    expected = np.stack([np.cos(lam), np.sin(lam), np.cos(phi), np.sin(phi)], axis=1)
    np.testing.assert_allclose(encode(Wrap(), points), expected, rtol=0, atol=1e-12)
    assert Wrap().embedding_dim == 4


def test_wrap_antimeridian_continuous() -> None:
    out = Wrap()(torch.tensor([[-180.0, 10.0], [180.0, 10.0]], dtype=torch.float64))
    torch.testing.assert_close(out[0], out[1], rtol=0, atol=1e-12)


# --------------------------------------------------------------------------
# Frequencies
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('num', 'min_radius', 'max_radius'),
    [(10, 1.0, 360.0), (16, 1.0, 260.0), (5, 1e-5, 0.01), (2, 3.0, 7.0), (1, 2.0, 9.0)],
)
def test_frequencies(num: int, min_radius: float, max_radius: float) -> None:
    encoding = Grid(num, min_radius, max_radius)
    freqs = encoding.frequencies().numpy()
    expected = ref_frequencies(num, min_radius, max_radius)
    np.testing.assert_allclose(freqs, expected, rtol=1e-13, atol=0)
    assert freqs[0] == pytest.approx(1.0 / min_radius, rel=1e-14)
    if num > 1:
        assert freqs[-1] == pytest.approx(1.0 / max_radius, rel=1e-13)
    assert encoding.frequencies(torch.float32).dtype == torch.float32


def test_defaults() -> None:
    # The defaults of the original's get_positional_encoding.
    for name in PER_SCALE:
        encoding = get_positional_encoding(name)
        assert encoding.frequency_num == 10
        assert encoding.min_radius == 1.0
        assert encoding.max_radius == 360.0
        assert encoding.embedding_dim == PER_SCALE[name] * 10
    rff = RandomFourierFeatures()
    assert rff.sigmas == (1.0, 16.0, 256.0)
    assert rff.encoded_size == 256
    assert rff.embedding_dim == 1536


@pytest.mark.parametrize('name', list(PER_SCALE))
@pytest.mark.parametrize('num', [1, 2, 5])
def test_multiscale_sizes(name: str, num: int) -> None:
    encoding = get_positional_encoding(name, frequency_num=num)
    assert encoding.embedding_dim == PER_SCALE[name] * num
    out = encoding(lonlat_grid())
    assert out.shape == (72, PER_SCALE[name] * num)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('name', list(PER_SCALE))
@pytest.mark.parametrize(
    'kwargs',
    [
        {'frequency_num': 0},
        {'frequency_num': 2.0},
        {'frequency_num': True},
        {'min_radius': 0.0},
        {'max_radius': -1.0},
        {'max_radius': math.inf},
        {'min_radius': math.nan},
    ],
)
def test_multiscale_invalid_arguments(name: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r'frequency_num|min_radius|max_radius'):
        get_positional_encoding(name, **kwargs)


@pytest.mark.parametrize('name', ['spherec', 'spherecplus', 'spherem', 'spheremplus'])
def test_invalid_convention(name: str) -> None:
    with pytest.raises(ValueError, match='convention'):
        get_positional_encoding(name, convention='paper')


# --------------------------------------------------------------------------
# Space2Vec: grid and theory
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('num', 'min_radius', 'max_radius'), [(3, 1.0, 360.0), (4, 0.5, 90.0)]
)
def test_grid_reference(num: int, min_radius: float, max_radius: float) -> None:
    points = sample_points()
    freqs = ref_frequencies(num, min_radius, max_radius)
    rows = []
    for lon, lat in points:
        row = []
        for coord in (lon, lat):  # degrees, no conversion
            for f in freqs:
                row += [math.sin(coord * f), math.cos(coord * f)]
        rows.append(row)
    out = encode(Grid(num, min_radius, max_radius), points)
    np.testing.assert_allclose(out, np.array(rows), rtol=0, atol=1e-12)


@pytest.mark.parametrize('num', [4, 3, 1])
def test_theory_reference(num: int) -> None:
    points = sample_points()
    freqs = ref_frequencies(num, 1.0, 360.0)
    units = [(1.0, 0.0), (-0.5, math.sqrt(3) / 2), (-0.5, -math.sqrt(3) / 2)]
    rows = []
    for lon, lat in points:
        row = []
        for f in freqs:
            for a in units:
                angle = (lon * a[0] + lat * a[1]) * f
                row += [angle, angle]
        # SatCLIP: sine where the column index within its half (3 F) is even.
        rows.append(
            [
                math.sin(x) if (i % (3 * num)) % 2 == 0 else math.cos(x)
                for i, x in enumerate(row)
            ]
        )
    out = encode(Theory(num, 1.0, 360.0), points)
    np.testing.assert_allclose(out, np.array(rows), rtol=0, atol=1e-12)


def test_theory_even_frequency_num_is_sin_cos_pairs() -> None:
    points = sample_points()
    freqs = ref_frequencies(2, 1.0, 360.0)
    units = [(1.0, 0.0), (-0.5, math.sqrt(3) / 2), (-0.5, -math.sqrt(3) / 2)]
    expected = [
        [
            g(f * (lon * a[0] + lat * a[1]))
            for f in freqs
            for a in units
            for g in (math.sin, math.cos)
        ]
        for lon, lat in points
    ]
    out = encode(Theory(2, 1.0, 360.0), points)
    np.testing.assert_allclose(out, np.array(expected), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------
# Sphere2Vec: sphereC, sphereC+, sphereM, sphereM+
# --------------------------------------------------------------------------


def sphere_terms(name: str, lam: float, phi: float, f: float) -> list[float]:
    """Sphere2Vec's per-scale terms (Mai et al., 2023), lam_s = lam f."""
    ls, ps = lam * f, phi * f
    sin, cos = math.sin, math.cos
    if name == 'spherec':
        return [sin(ps), cos(ps) * cos(ls), cos(ps) * sin(ls)]
    if name == 'spherecplus':
        return [
            sin(ps),
            cos(ps),
            sin(ls),
            cos(ls),
            cos(ps) * cos(ls),
            cos(ps) * sin(ls),
        ]
    if name == 'spherem':
        return [
            sin(ps),
            cos(ps) * cos(lam),
            cos(phi) * cos(ls),
            cos(ps) * sin(lam),
            cos(phi) * sin(ls),
        ]
    return [
        sin(ps),
        cos(ps),
        sin(ls),
        cos(ls),
        cos(ps) * cos(lam),
        cos(phi) * cos(ls),
        cos(ps) * sin(lam),
        cos(phi) * sin(ls),
    ]


SPHERES = {
    'spherec': SphereC,
    'spherecplus': SphereCPlus,
    'spherem': SphereM,
    'spheremplus': SphereMPlus,
}


@pytest.mark.parametrize('name', list(SPHERES))
@pytest.mark.parametrize(
    ('num', 'min_radius', 'max_radius'), [(3, 1.0, 360.0), (2, 2.0, 50.0)]
)
def test_sphere_reference_satclip(
    name: str, num: int, min_radius: float, max_radius: float
) -> None:
    # SatCLIP: angles in degrees, every term in two adjacent columns.
    points = sample_points()
    freqs = ref_frequencies(num, min_radius, max_radius)
    expected = [
        [t for f in freqs for t in sphere_terms(name, lon, lat, f) for _ in range(2)]
        for lon, lat in points
    ]
    encoding = SPHERES[name](num, min_radius, max_radius)
    assert encoding.convention == 'satclip'
    out = encode(encoding, points)
    assert out.shape[1] == PER_SCALE[name] * num
    np.testing.assert_allclose(out, np.array(expected), rtol=0, atol=1e-12)


@pytest.mark.parametrize('name', list(SPHERES))
def test_sphere_reference_sphere2vec(name: str) -> None:
    # Sphere2Vec's own convention: radians, every term once.
    num, min_radius, max_radius = 3, 0.01, 1.0
    points = sample_points()
    freqs = ref_frequencies(num, min_radius, max_radius)
    expected = [
        [
            t
            for f in freqs
            for t in sphere_terms(name, math.radians(lon), math.radians(lat), f)
        ]
        for lon, lat in points
    ]
    encoding = SPHERES[name](num, min_radius, max_radius, convention='sphere2vec')
    out = encode(encoding, points)
    assert encoding.embedding_dim == PER_SCALE[name] * num // 2
    np.testing.assert_allclose(out, np.array(expected), rtol=0, atol=1e-12)


@pytest.mark.parametrize('name', list(SPHERES))
def test_sphere2vec_antimeridian_continuous(name: str) -> None:
    # With radians and integer-period scales, lon = -180 and 180 coincide.
    encoding = SPHERES[name](1, 1.0, 1.0, convention='sphere2vec')
    out = encoding(torch.tensor([[-180.0, 20.0], [180.0, 20.0]], dtype=torch.float64))
    torch.testing.assert_close(out[0], out[1], rtol=0, atol=1e-12)


# --------------------------------------------------------------------------
# Equal Earth and random Fourier features
# --------------------------------------------------------------------------


def ref_equal_earth(points: np.ndarray) -> np.ndarray:
    """Šavrič, Patterson and Jenny (2018), spherical form, R = 1."""
    lam, phi = np.radians(points[:, 0]), np.radians(points[:, 1])
    theta = np.arcsin(np.sqrt(3.0) / 2.0 * np.sin(phi))
    x = (
        2.0
        * np.sqrt(3.0)
        * lam
        * np.cos(theta)
        / (3.0 * (9.0 * A4 * theta**8 + 7.0 * A3 * theta**6 + 3.0 * A2 * theta**2 + A1))
    )
    y = A4 * theta**9 + A3 * theta**7 + A2 * theta**3 + A1 * theta
    return np.stack([x, y], axis=1)


def project(points: np.ndarray) -> np.ndarray:
    out = equal_earth_projection(torch.from_numpy(points))
    return out.numpy()


def test_equal_earth_reference() -> None:
    points = sample_points()
    np.testing.assert_allclose(
        project(points), ref_equal_earth(points), rtol=0, atol=1e-12
    )


def test_equal_earth_known_values() -> None:
    out = project(np.array([[0.0, 0.0], [122.0, 47.0], [180.0, 0.0], [0.0, 90.0]]))
    assert out[0, 0] == 0.0
    assert out[0, 1] == 0.0
    # PROJ documentation (https://proj.org/operations/projections/eqearth.html):
    # `echo 122 47 | proj +proj=eqearth +R=1` prints `1.55 0.89`.
    assert out[1] == pytest.approx([1.55, 0.89], abs=0.005)
    # PROJ test suite (test/gie/builtins.gie): +proj=eqearth +R=6378137 maps
    # (x, y) = (17263256.84, 0) to (180, 0) within 1 cm.
    assert out[2, 0] * 6378137.0 == pytest.approx(17263256.84, abs=0.01)
    assert out[2, 1] == 0.0
    # Pole: theta = pi / 3, x = 0.
    theta = math.pi / 3
    pole_y = A1 * theta + A2 * theta**3 + A3 * theta**7 + A4 * theta**9
    assert out[3, 0] == 0.0
    assert out[3, 1] == pytest.approx(pole_y, abs=1e-14)
    # GeoCLIP's scale factor maps the half-width to 1.
    assert out[2, 0] * GEOCLIP_SCALE_FACTOR / 180.0 == pytest.approx(1.0, abs=1e-6)


def test_equal_earth_symmetry() -> None:
    points = sample_points()[:4]
    base = project(points)
    flip_lon = project(points * np.array([-1.0, 1.0]))
    flip_lat = project(points * np.array([1.0, -1.0]))
    np.testing.assert_allclose(
        flip_lon, base * np.array([-1.0, 1.0]), rtol=0, atol=1e-15
    )
    np.testing.assert_allclose(
        flip_lat, base * np.array([1.0, -1.0]), rtol=0, atol=1e-15
    )


def test_equal_earth_matches_proj() -> None:
    pyproj = pytest.importorskip('pyproj')
    points = np.concatenate([sample_points(), [[-73.9857, 40.7484], [171.2, 7.1]]])
    transformer = pyproj.Proj('+proj=eqearth +R=1')
    x, y = transformer(points[:, 0], points[:, 1])
    np.testing.assert_allclose(
        project(points), np.stack([x, y], axis=1), rtol=0, atol=1e-12
    )


def ref_rff(points: np.ndarray, b: np.ndarray) -> np.ndarray:
    """GeoCLIP: v = EqualEarth * SF / 180; per scale [cos 2 pi B v, sin 2 pi B v]."""
    v = 2.0 * np.pi * (ref_equal_earth(points) * 66.50336 / 180.0)
    blocks = []
    for matrix in b:  # (E, 2) per scale, in the order of sigmas
        angles = v[:, :1] * matrix[:, 0] + v[:, 1:] * matrix[:, 1]
        blocks += [np.cos(angles), np.sin(angles)]
    return np.concatenate(blocks, axis=1)


def test_rff_reference() -> None:
    points = sample_points()
    encoding = RandomFourierFeatures(sigmas=(1.0, 16.0), encoded_size=8, seed=3)
    b = encoding.b.numpy()
    assert b.shape == (2, 8, 2)
    out = encode(encoding, points)
    np.testing.assert_allclose(out, ref_rff(points, b), rtol=0, atol=1e-12)


def test_rff_reference_geoclip_sigmas() -> None:
    # Angles reach ~2 pi * 256 * 3 ~ 5e3 at sigma = 2^8, where one rounding of
    # the angle is ~1e-12: allow float64 rounding of the angle itself.
    points = sample_points()
    encoding = RandomFourierFeatures(encoded_size=16)
    out = encode(encoding, points)
    np.testing.assert_allclose(
        out, ref_rff(points, encoding.b.numpy()), rtol=0, atol=1e-11
    )


def test_rff_seeded() -> None:
    first = RandomFourierFeatures(encoded_size=8, seed=7)
    second = RandomFourierFeatures(encoded_size=8, seed=7)
    other = RandomFourierFeatures(encoded_size=8, seed=8)
    assert torch.equal(first.b, second.b)
    assert not torch.equal(first.b, other.b)
    points = lonlat_grid()
    assert torch.equal(first(points), second(points))
    assert not torch.allclose(first(points), other(points))


def test_rff_buffers() -> None:
    encoding = RandomFourierFeatures(sigmas=(1.0, 4.0, 16.0), encoded_size=512)
    state = encoding.state_dict()
    assert list(state) == ['b']
    assert state['b'].shape == (3, 512, 2)
    assert state['b'].dtype == torch.float64
    assert not list(encoding.parameters())
    # Each scale is N(0, sigma^2).
    stds = encoding.b.reshape(3, -1).std(dim=1)
    torch.testing.assert_close(
        stds, torch.tensor([1.0, 4.0, 16.0], dtype=torch.float64), rtol=0.1, atol=0
    )
    # Loading a state dict restores the matrices (and thus the features).
    restored = RandomFourierFeatures(sigmas=(1.0, 4.0, 16.0), encoded_size=512, seed=1)
    restored.load_state_dict(state)
    assert torch.equal(restored(lonlat_grid()), encoding(lonlat_grid()))


def test_rff_layout() -> None:
    encoding = RandomFourierFeatures(sigmas=(2.0, 3.0), encoded_size=5)
    assert encoding.embedding_dim == 20
    out = encoding(sample_points_tensor())
    cos_block, sin_block = out[:, :5], out[:, 5:10]
    torch.testing.assert_close(
        cos_block**2 + sin_block**2, torch.ones_like(cos_block), rtol=0, atol=1e-12
    )
    # (0, 0) projects to (0, 0): cosines 1, sines 0.
    origin = encoding(torch.zeros(1, 2, dtype=torch.float64))
    expected = torch.tensor([1.0] * 5 + [0.0] * 5, dtype=torch.float64).repeat(2)
    torch.testing.assert_close(origin[0], expected, rtol=0, atol=0)


def sample_points_tensor() -> torch.Tensor:
    return torch.from_numpy(sample_points())


@pytest.mark.parametrize(
    'kwargs',
    [
        {'sigmas': ()},
        {'sigmas': (1.0, 0.0)},
        {'sigmas': (math.inf,)},
        {'encoded_size': 0},
        {'encoded_size': 2.5},
    ],
)
def test_rff_invalid_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r'sigmas|encoded_size'):
        RandomFourierFeatures(**kwargs)


def test_rff_float32_module() -> None:
    encoding = RandomFourierFeatures(encoded_size=8).to(torch.float32)
    assert encoding.b.dtype == torch.float32
    out = encoding(lonlat_grid(torch.float32))
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('convert', ['to', 'half', 'bfloat16'])
def test_rff_half_conversion_keeps_the_frequencies(convert: str) -> None:
    """``.to(torch.bfloat16)`` of the encoding alone rounded ``b`` (GeoCLIP's
    scale 2^8: entries up to ~1,000, moved by up to 2, phases by radians);
    the matrices stay float32, the features are those of the float32 module."""
    encoding = RandomFourierFeatures()
    exact = encoding.b.clone()
    reference = RandomFourierFeatures().to(torch.float32)
    if convert == 'to':
        encoding.to(torch.bfloat16)
    elif convert == 'half':
        encoding.half()
    else:
        encoding.bfloat16()
    assert encoding.b.dtype == torch.float32
    assert torch.equal(encoding.b, exact.float())
    assert encoding.state_dict()['b'].dtype == torch.float32
    points = lonlat_grid(torch.float32)
    assert torch.equal(encoding(points), reference(points))
    # A full-precision conversion still converts.
    assert encoding.double().b.dtype == torch.float64


def test_rff_float32_phases_exact() -> None:
    """Phases reach ~1e4 rad at scale 2^8: computed in float64, float32 features agree."""
    encoding = RandomFourierFeatures()
    points = lonlat_grid(torch.float32)
    single = encoding(points)
    double = encoding(points.double())  # the same float32-rounded points
    assert single.dtype == torch.float32
    assert (single.double() - double).abs().max() < 1e-6


def test_list_positional_encodings() -> None:
    from torchgeo_satclip.models import (
        POSITIONAL_ENCODINGS,
        get_positional_encoding,
        list_positional_encodings,
    )

    names = list_positional_encodings()
    assert names == sorted(POSITIONAL_ENCODINGS)
    assert {'sphericalharmonics', 'wrap', 'rff'} <= set(names)
    with pytest.raises(ValueError, match="unknown positional encoding 'nope'"):
        get_positional_encoding('nope')
