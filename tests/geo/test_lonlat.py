import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from torchgeo_satclip.geo import (
    EARTH_RADIUS_KM,
    check_lonlat_shape,
    compute_dtype,
    great_circle_km,
    jitter_points,
    lonlat_to_unit,
    validate_lonlat,
)


class TestValidate:
    @pytest.mark.parametrize('to', [torch.tensor, np.array])
    @pytest.mark.parametrize(
        'point',
        [[180.0, 90.0], [-180.0, -90.0], [0.0, 0.0], [179.9999, -89.9999]],
    )
    def test_on_the_limits(self, to: Callable[..., Any], point: list[float]) -> None:
        validate_lonlat(
            to([point], dtype=torch.float64 if to is torch.tensor else None)
        )

    @pytest.mark.parametrize('to', ['torch', 'numpy'])
    @pytest.mark.parametrize(
        ('point', 'match'),
        [
            ([0.0, 90.0001], r'row 1: latitude 90.0001 is outside \[-90, 90\]'),
            ([0.0, -90.0001], 'latitude -90.0001 is outside'),
            ([180.0001, 0.0], r'longitude 180.0001 is outside \[-180, 180\]'),
            ([-180.0001, 0.0], 'longitude -180.0001 is outside'),
            ([float('nan'), 0.0], 'row 1: non-finite'),
            ([0.0, float('-inf')], 'row 1: non-finite'),
            ([45.0, 120.0], 'look swapped'),
        ],
    )
    def test_just_outside(self, to: str, point: list[float], match: str) -> None:
        values = [[1.0, 2.0], point]
        lonlat = (
            torch.tensor(values, dtype=torch.float64)
            if to == 'torch'
            else np.array(values)
        )
        with pytest.raises(ValueError, match=match):
            validate_lonlat(lonlat)

    def test_message_parts(self) -> None:
        class BadInput(Exception):
            pass

        lonlat = np.array([[10.0, 20.0], [10.0, 20.0], [48.0, 139.7]])
        with pytest.raises(BadInput) as info:
            validate_lonlat(
                lonlat,
                where=lambda i: f'points.csv, line {i + 2}',
                columns=('x', 'y'),
                swap_hint='pass --lon-column',
                error=BadInput,
            )
        assert str(info.value) == (
            "points.csv, line 4: latitude 139.7 in column 'y' is outside [-90, 90]; "
            'the values look swapped, they look like (latitude, longitude): '
            'pass --lon-column'
        )

    def test_far_out_is_not_called_swapped(self) -> None:
        with pytest.raises(ValueError, match='must be \\(longitude, latitude\\)'):
            validate_lonlat(torch.tensor([[0.0, 500.0]]))

    def test_empty(self) -> None:
        validate_lonlat(torch.zeros(0, 2))
        validate_lonlat(np.zeros((0, 2)))

    @pytest.mark.parametrize(
        ('value', 'match'),
        [
            ([[0.0, 0.0]], 'torch.Tensor or numpy array, got list'),
            (torch.zeros(3), r'shape \(N, 2\).*got shape \(3,\)'),
            (np.zeros((2, 3)), r'got shape \(2, 3\)'),
            (torch.zeros(2, 2, dtype=torch.int64), 'floating dtype'),
            (np.zeros((2, 2), dtype=np.int32), 'floating dtype'),
        ],
    )
    def test_shape_and_dtype(self, value: object, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            check_lonlat_shape(value)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=match):
            validate_lonlat(value)  # type: ignore[arg-type]

    def test_shape_check_ignores_values(self) -> None:
        check_lonlat_shape(torch.tensor([[500.0, 500.0]]))


@pytest.mark.parametrize(
    ('dtype', 'expected'),
    [
        (torch.float64, torch.float64),
        (torch.float32, torch.float32),
        (torch.float16, torch.float32),
        (torch.bfloat16, torch.float32),
    ],
)
def test_compute_dtype(dtype: torch.dtype, expected: torch.dtype) -> None:
    assert compute_dtype(dtype) == expected


def test_great_circle_km() -> None:
    a = torch.tensor([[0.0, 0.0], [179.5, 0.0], [0.0, 90.0], [10.0, 50.0]])
    b = torch.tensor([[90.0, 0.0], [-179.5, 0.0], [123.0, 90.0], [10.0, 51.0]])
    d = great_circle_km(a, b)
    assert d.dtype == torch.float64
    assert d[0].item() == pytest.approx(math.pi / 2 * EARTH_RADIUS_KM)
    assert d[1].item() == pytest.approx(111.195, rel=1e-3)  # across the antimeridian
    assert d[2].item() == pytest.approx(0.0, abs=1e-6)
    assert d[3].item() == pytest.approx(111.195, rel=1e-3)  # one degree of latitude


def test_lonlat_to_unit() -> None:
    lonlat = torch.tensor([[0.0, 0.0], [90.0, 0.0], [-180.0, 0.0], [33.0, 90.0]])
    unit = lonlat_to_unit(lonlat)
    expected = torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(unit, expected, atol=1e-12, rtol=0)
    # The angle between unit vectors is the great-circle distance.
    a, b = torch.tensor([[12.0, -40.0]]), torch.tensor([[-100.0, 25.0]])
    angle = torch.arccos((lonlat_to_unit(a) * lonlat_to_unit(b)).sum(-1))
    assert (angle * EARTH_RADIUS_KM).item() == pytest.approx(
        great_circle_km(a, b).item(), rel=1e-9
    )


@pytest.mark.parametrize('shape', [(4, 3), (3,), (4, 1), ()])
def test_sphere_geometry_refuses_points_not_ending_in_lon_lat(
    shape: tuple[int, ...],
) -> None:
    """great_circle_km read the first two of three columns (unit vectors, or
    (lon, lat, alt)) as lon and lat and answered in silence, a (3,) point
    too; lonlat_to_unit failed with 'too many values to unpack' or
    'not enough values'. Both name the argument and the shape found."""
    bad = torch.ones(shape)
    good = torch.zeros(4, 2)
    match = r'must be \(\.\.\., 2\) \(lon, lat\).*got shape ' + re.escape(str(shape))
    with pytest.raises(ValueError, match='^a ' + match):
        great_circle_km(bad, good)
    with pytest.raises(ValueError, match='^b ' + match):
        great_circle_km(good, bad)
    with pytest.raises(ValueError, match='^lonlat ' + match):
        lonlat_to_unit(bad)


class TestJitter:
    def test_bounds(self) -> None:
        torch.manual_seed(0)
        point = torch.tensor([[179.999, 89.999], [-180.0, -90.0], [0.0, 0.0]]).repeat(
            1000, 1
        )
        for symmetric in (False, True):
            out = jitter_points(point, 0.01, symmetric)
            assert (out[:, 0] >= -180).all()
            assert (out[:, 0] < 180).all()
            assert (out[:, 1] >= -90).all()
            assert (out[:, 1] <= 90).all()
        out = jitter_points(point, 0.01)
        delta = out[2::3] - point[2::3]
        assert (delta >= 0).all()
        assert (delta <= 0.01).all()
        out = jitter_points(point, 0.01, symmetric=True)
        delta = out[2::3] - point[2::3]
        assert (delta < 0).any()
        assert (delta.abs() <= 0.01).all()
        assert (out[0::3, 0] < -179.9).any()  # wrapped across the antimeridian

    @pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
    def test_west_of_antimeridian_wraps_below_180(self, dtype: torch.dtype) -> None:
        """A tiny step west of -180 lands in [-180, 180), never on 180.

        In float32 the remainder of a longitude a hair west of -180 rounded to
        exactly 360: 7.6 % of these points came out at longitude 180.0.
        """
        torch.manual_seed(0)
        point = torch.tensor([[-180.0, 0.0]], dtype=dtype).repeat(100_000, 1)
        out = jitter_points(point, 1e-4, symmetric=True)
        assert (out[:, 0] >= -180).all()
        assert (out[:, 0] < 180).all()
        assert (out[:, 0] > 179.999).any()  # some did wrap to the east side

    @pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
    def test_half_precision_is_not_rounded_by_the_wrap(
        self, dtype: torch.dtype
    ) -> None:
        """In bfloat16, the wrap's 190.3 rounded to 190: a jitter of 0 moved
        longitude 10.31 to 10.0 (float16: by about 0.05 degrees)."""
        point = torch.tensor([[10.3125, 45.5], [179.9, 0.0]], dtype=dtype)
        out = jitter_points(point, 0.0)
        assert out.dtype == dtype
        assert torch.equal(out[0], point[0])
        torch.manual_seed(0)
        many = torch.tensor([[179.9, 0.0]], dtype=dtype).repeat(10_000, 1)
        out = jitter_points(many, 0.5)
        assert (out[:, 0] >= -180).all()
        assert (out[:, 0] < 180).all()

    @pytest.mark.parametrize('amount', [math.nan, math.inf, -0.1, True, '0.1'])
    def test_bad_amount(self, amount: Any) -> None:
        """NaN or inf made every point NaN in silence."""
        with pytest.raises(ValueError, match='amount must be'):
            jitter_points(torch.zeros(2, 2), amount)

    def test_integer_points(self) -> None:
        with pytest.raises(ValueError, match='point must be a floating tensor'):
            jitter_points(torch.zeros(2, 2, dtype=torch.int64), 0.1)

    @pytest.mark.parametrize('shape', [(3, 3), (5,), (3, 1), (), (4, 2, 1)])
    def test_points_must_end_in_lon_lat(self, shape: tuple[int, ...]) -> None:
        """A (3, 3) tensor came back (3, 2) and a (5,) tensor (2,): columns
        were dropped in silence; a (3, 1) one failed with a bare IndexError."""
        with pytest.raises(
            ValueError,
            match=rf'point must be \(\.\.\., 2\) \(lon, lat\).*got shape '
            rf'{re.escape(str(shape))}',
        ):
            jitter_points(torch.zeros(shape), 0.1)

    def test_float64(self) -> None:
        point = torch.tensor([[10.0, 20.0]], dtype=torch.float64)
        assert jitter_points(point, 0.01).dtype == torch.float64
