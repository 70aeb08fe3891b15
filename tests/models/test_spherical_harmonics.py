"""Exactness of the spherical-harmonics encoding against independent references.

The references are computed here from textbook definitions, in float64, with
scipy's associated Legendre function (``lpmv``, which includes the
Condon-Shortley phase that SatCLIP omits) and exact integer factorials, and
spot-checked with mpmath at 30 significant digits.
"""

import math
from pathlib import Path

import mpmath
import numpy as np
import pytest
import torch
from scipy.special import lpmv

from torchgeo_satclip.models import (
    SphericalHarmonics,
    build_location_encoder,
    load_location_encoder,
    save_official_checkpoint,
    spherical_harmonics,
)


def reference(
    lonlat: np.ndarray, num_degrees: int, pi_on_m0: bool = True
) -> np.ndarray:
    """SatCLIP's real spherical harmonics, evaluated one (l, m) at a time."""
    phi = np.radians(lonlat[:, 0] + 180.0)
    theta = np.radians(lonlat[:, 1] + 90.0)
    x = np.cos(theta)
    out = np.zeros((len(lonlat), num_degrees**2))
    for degree in range(num_degrees):
        for order in range(-degree, degree + 1):
            m = abs(order)
            norm = math.sqrt(
                (2 * degree + 1)
                / (4 * math.pi)
                * math.factorial(degree - m)
                / math.factorial(degree + m)
            )
            legendre = (-1) ** m * lpmv(m, degree, x)  # remove Condon-Shortley
            if order > 0:
                value = math.sqrt(2) * norm * legendre * np.cos(m * phi)
            elif order < 0:
                value = math.sqrt(2) * norm * legendre * np.sin(m * phi)
            else:
                value = (math.pi if pi_on_m0 else 1.0) * norm * legendre
            out[:, degree * degree + degree + order] = value
    return out


def mp_reference(lon: float, lat: float, degree: int, order: int) -> float:
    """One SatCLIP harmonic at 30 digits with mpmath."""
    mpmath.mp.dps = 30
    phi = mpmath.radians(mpmath.mpf(lon) + 180)
    theta = mpmath.radians(mpmath.mpf(lat) + 90)
    m = abs(order)
    norm = mpmath.sqrt(
        (2 * degree + 1)
        / (4 * mpmath.pi)
        * mpmath.factorial(degree - m)
        / mpmath.factorial(degree + m)
    )
    # mpmath.legenp includes the Condon-Shortley phase (-1)^m for type 2.
    legendre = (-1) ** m * mpmath.legenp(degree, m, mpmath.cos(theta), type=2)
    if order > 0:
        value = mpmath.sqrt(2) * norm * legendre * mpmath.cos(m * phi)
    elif order < 0:
        value = mpmath.sqrt(2) * norm * legendre * mpmath.sin(m * phi)
    else:
        value = mpmath.pi * norm * legendre
    return float(value)


def sample_points(n: int, seed: int = 0) -> np.ndarray:
    """Random points plus the poles, the antimeridian and the equator."""
    rng = np.random.default_rng(seed)
    points = np.stack([rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)], axis=1)
    special = [
        [0.0, 90.0],
        [0.0, -90.0],
        [180.0, 90.0],
        [-180.0, -90.0],
        [-180.0, 0.0],
        [180.0, 0.0],
        [0.0, 0.0],
        [45.0, 89.999],
        [-45.0, -89.999],
        [123.4, 60.0],
        [-10.0, -75.0],
    ]
    return np.concatenate([points, np.asarray(special)])


@pytest.mark.parametrize('num_degrees', [1, 2, 3, 10, 25, 40])
def test_float64_matches_reference(num_degrees: int) -> None:
    points = sample_points(300)
    expected = reference(points, num_degrees)
    actual = spherical_harmonics(torch.from_numpy(points), num_degrees)
    assert actual.dtype == torch.float64
    assert actual.shape == (len(points), num_degrees**2)
    np.testing.assert_allclose(actual.numpy(), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize('num_degrees', [10, 40])
def test_float32_matches_reference(num_degrees: int) -> None:
    points = sample_points(300, seed=1)
    expected = reference(points, num_degrees)
    actual = spherical_harmonics(torch.from_numpy(points).float(), num_degrees)
    assert actual.dtype == torch.float32
    np.testing.assert_allclose(actual.double().numpy(), expected, rtol=0, atol=5e-4)


@pytest.mark.parametrize(
    ('lon', 'lat', 'degree', 'order'),
    [
        (12.5, 41.9, 39, 0),
        (-70.0, 85.0, 39, 1),
        (100.0, -89.0, 38, -2),
        (0.0, 90.0, 30, 0),
        (33.3, -20.0, 20, 20),
        (-150.0, 10.0, 39, -39),
    ],
)
def test_matches_mpmath(lon: float, lat: float, degree: int, order: int) -> None:
    points = torch.tensor([[lon, lat]], dtype=torch.float64)
    actual = spherical_harmonics(points, degree + 1)[
        0, degree * degree + degree + order
    ]
    assert abs(float(actual) - mp_reference(lon, lat, degree, order)) <= 1e-11


def test_published_values() -> None:
    # Y(0, 0) = pi / sqrt(4 pi) = sqrt(pi) / 2 (SatCLIP's pi on m = 0).
    out = spherical_harmonics(torch.zeros(1, 2, dtype=torch.float64), 2)
    assert float(out[0, 0]) == pytest.approx(0.886226925452758, abs=1e-15)
    # Y(1, 1) = 0.48860251190292 sin(theta) cos(phi).
    lon, lat = 30.0, 20.0
    theta, phi = math.radians(lat + 90), math.radians(lon + 180)
    expected = 0.48860251190292 * math.sin(theta) * math.cos(phi)
    out = spherical_harmonics(torch.tensor([[lon, lat]], dtype=torch.float64), 2)
    assert float(out[0, 3]) == pytest.approx(expected, abs=1e-13)


def test_orthonormal_option_drops_pi() -> None:
    points = sample_points(50)
    expected = reference(points, 12, pi_on_m0=False)
    actual = spherical_harmonics(
        torch.from_numpy(points), 12, normalization='orthonormal'
    )
    np.testing.assert_allclose(actual.numpy(), expected, rtol=0, atol=1e-11)
    satclip = spherical_harmonics(torch.from_numpy(points), 12)
    m0 = [d * d + d for d in range(12)]
    np.testing.assert_allclose(satclip[:, m0].numpy(), math.pi * actual[:, m0].numpy())


def _quadrature(num_degrees: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre in cos(theta) times a uniform rule in phi: exact for
    products of harmonics of degree < num_degrees."""
    nodes, weights = np.polynomial.legendre.leggauss(num_degrees + 1)
    num_phi = 2 * num_degrees + 1
    lons = np.arange(num_phi) * 360.0 / num_phi - 180.0
    # cos(theta) = -sin(lat)  =>  lat = -asin(node)
    lats = -np.degrees(np.arcsin(nodes))
    grid_lon, grid_lat = np.meshgrid(lons, lats)
    grid_w = np.repeat(weights[:, None], num_phi, axis=1) * (2 * math.pi / num_phi)
    points = torch.from_numpy(np.stack([grid_lon.ravel(), grid_lat.ravel()], axis=1))
    return points, torch.from_numpy(grid_w.ravel())


@pytest.mark.parametrize('num_degrees', [5, 20, 40])
def test_orthonormality_by_quadrature(num_degrees: int) -> None:
    points, weights = _quadrature(num_degrees)
    y = spherical_harmonics(points, num_degrees, normalization='orthonormal')
    gram = y.T @ (y * weights[:, None])
    identity = torch.eye(num_degrees**2, dtype=torch.float64)
    assert torch.allclose(gram, identity, atol=1e-11)
    # SatCLIP's basis: orthogonal, with squared norm pi^2 on m = 0 columns.
    y = spherical_harmonics(points, num_degrees)
    gram = y.T @ (y * weights[:, None])
    diag = torch.ones(num_degrees**2, dtype=torch.float64)
    diag[[d * d + d for d in range(num_degrees)]] = math.pi**2
    assert torch.allclose(gram, torch.diag(diag), atol=1e-10)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_finite_up_to_l100_at_poles(dtype: torch.dtype) -> None:
    lat = torch.tensor([-90.0, -89.99, -60.0, 0.0, 60.0, 89.99, 90.0])
    lon = torch.tensor([-180.0, -90.0, 0.0, 45.0, 90.0, 179.9, 180.0])
    points = torch.stack([lon, lat], dim=1).to(dtype)
    out = spherical_harmonics(points, 100)
    assert out.shape == (7, 10000)
    assert torch.isfinite(out).all()
    # At the poles only m = 0 survives: Y(l, 0) = pi N(l, 0) (+-1)^l.
    pole = out[-1]
    m0 = torch.tensor([d * d + d for d in range(100)])
    others = torch.ones(10000, dtype=torch.bool)
    others[m0] = False
    assert pole[others].abs().max() < 1e-5
    norm = torch.tensor([math.sqrt((2 * d + 1) / (4 * math.pi)) for d in range(100)])
    # lat = +90: theta = pi, cos(theta) = -1, P_l(-1) = (-1)^l
    signs = torch.tensor([(-1.0) ** d for d in range(100)])
    expected = math.pi * norm * signs
    torch.testing.assert_close(
        pole[m0].double(), expected.double(), rtol=1e-4, atol=1e-4
    )


def test_bfloat16_input_accepted() -> None:
    points = torch.tensor([[10.0, 20.0], [-120.0, -45.0]])
    out = spherical_harmonics(points.bfloat16(), 10)
    assert out.dtype == torch.float32
    expected = spherical_harmonics(points.bfloat16().float(), 10)
    torch.testing.assert_close(out, expected)


def test_gradients_finite_including_poles() -> None:
    points = torch.tensor(
        [[0.0, 90.0], [10.0, -90.0], [50.0, 45.0], [-180.0, 0.0]],
        dtype=torch.float64,
        requires_grad=True,
    )
    out = spherical_harmonics(points, 20)
    out.sum().backward()
    assert points.grad is not None
    assert torch.isfinite(points.grad).all()
    assert points.grad[2].abs().sum() > 0


def test_gradients_after_a_first_call_in_inference_mode() -> None:
    """The cached recurrence tables must not be inference tensors.

    ``embed`` and Lightning's validation run the encoder under
    ``torch.inference_mode``; a later call that needs gradients with respect to
    the points reuses the tables that first call built.
    """
    from torchgeo_satclip.models.spherical_harmonics import _tables

    _tables.cache_clear()
    points = torch.tensor([[12.0, 30.0], [-100.0, -60.0]], dtype=torch.float64)
    with torch.inference_mode():
        first = spherical_harmonics(points, 7)
    points.requires_grad_(True)
    out = spherical_harmonics(points, 7)
    out.sum().backward()
    assert points.grad is not None
    assert torch.isfinite(points.grad).all()
    torch.testing.assert_close(out.detach(), first, rtol=0, atol=0)


def test_gradcheck() -> None:
    points = torch.tensor([[12.0, 30.0], [-100.0, -60.0]], dtype=torch.float64)
    points.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: spherical_harmonics(p, 6), (points,))


def test_no_python_loop_over_orders() -> None:
    """The encoding runs O(L) tensor operations: count them with a profiler-free
    dispatch counter on a tiny input."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            self.count += 1
            return func(*args, **(kwargs or {}))

    points = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    counts = {}
    for num_degrees in (10, 40):
        spherical_harmonics(points, num_degrees)  # build the cached tables
        with Counter() as counter:
            spherical_harmonics(points, num_degrees)
        counts[num_degrees] = counter.count
    # L^2 = 1600 separate closed forms would need several ops each; a
    # recurrence over degrees grows linearly: about 4x the ops for 4x the
    # degrees, a bounded number per degree.
    assert counts[40] < 25 * 40
    assert counts[40] / counts[10] < 5


def test_module_and_errors() -> None:
    module = SphericalHarmonics(legendre_polys=7)
    assert module.embedding_dim == 49
    assert len(list(module.parameters())) == 0
    assert 'legendre_polys=7' in repr(module)
    out = module(torch.zeros(3, 2))
    assert out.shape == (3, 49)
    with pytest.raises(ValueError, match='between 1 and 100'):
        SphericalHarmonics(legendre_polys=0)
    with pytest.raises(ValueError, match='between 1 and 100'):
        spherical_harmonics(torch.zeros(1, 2), 101)
    with pytest.raises(ValueError, match='normalization'):
        SphericalHarmonics(normalization='schmidt')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r'shape \(N, 2\)'):
        spherical_harmonics(torch.zeros(3), 4)
    with pytest.raises(ValueError, match='floating'):
        spherical_harmonics(torch.zeros(3, 2, dtype=torch.int64), 4)


def test_device_follows_input() -> None:
    points = torch.zeros(2, 2, device='meta')
    out = spherical_harmonics(points, 5)
    assert out.device.type == 'meta'
    assert out.shape == (2, 25)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_inference_and_autograd_paths_agree(dtype: torch.dtype) -> None:
    """Without autograd the rows are updated in place in reused buffers; with
    it, fresh tensors are built. Both must give the same numbers."""
    points = torch.from_numpy(sample_points(200)).to(dtype)
    with torch.no_grad():
        fast = spherical_harmonics(points, 30)
    tracked = spherical_harmonics(points.clone().requires_grad_(True), 30)
    assert tracked.requires_grad
    torch.testing.assert_close(fast, tracked.detach(), rtol=0, atol=0)


def test_numpy_degree_count_is_stored_as_a_plain_int(tmp_path: Path) -> None:
    """A NumPy integer is accepted but not kept: it would reach checkpoints.

    ``legendre_polys`` goes into an exported checkpoint's hyper_parameters,
    where a NumPy scalar makes the file unreadable with ``weights_only=True``.
    """
    encoding = SphericalHarmonics(np.int64(3))  # type: ignore[arg-type]
    assert type(encoding.legendre_polys) is int
    assert type(encoding.embedding_dim) is int
    encoder = build_location_encoder(
        legendre_polys=np.int64(3),  # type: ignore[arg-type]
        capacity=8,
        embed_dim=4,
    )
    path = tmp_path / 'exported.ckpt'
    save_official_checkpoint(encoder, path)
    loaded = load_location_encoder(path)
    assert loaded.posenc.legendre_polys == 3
    points = torch.tensor([[2.35, 48.86], [0.0, -90.0]], dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(points), encoder.eval()(points))
