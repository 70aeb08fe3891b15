from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import rasterio
import torch
from pyproj import Transformer
from rasterio.transform import from_origin
from torchgeo.datasets import RasterDataset, stack_samples

from torchgeo_satclip._compat import TORCHGEO_AT_LEAST_0_10, geo_sample_bounds
from torchgeo_satclip.models import LocationEncoder, build_location_encoder
from torchgeo_satclip.transforms import LocationEmbedding, sample_lonlat

PARIS = (2.35, 48.86)


def write_utm_tif(path: Path, lonlat: tuple[float, float], epsg: int = 32631) -> None:
    """A 16 x 16 px, 10 m GeoTIFF in UTM whose centre is at ``lonlat``."""
    to_utm = Transformer.from_crs('EPSG:4326', f'EPSG:{epsg}', always_xy=True)
    x, y = to_utm.transform(*lonlat)
    transform = from_origin(x - 80, y + 80, 10, 10)
    data = np.random.default_rng(0).integers(0, 1000, (3, 16, 16), dtype=np.uint16)
    with rasterio.open(
        path,
        'w',
        driver='GTiff',
        width=16,
        height=16,
        count=3,
        dtype='uint16',
        crs=f'EPSG:{epsg}',
        transform=transform,
    ) as dst:
        dst.write(data)


@pytest.fixture
def encoder() -> LocationEncoder:
    torch.manual_seed(0)
    return build_location_encoder(legendre_polys=4, embed_dim=8, capacity=16)


def reference(
    encoder: LocationEncoder, lonlat: list[tuple[float, float]]
) -> torch.Tensor:
    """The embedding of the encoder in eval mode (no dropout), leaving its mode."""
    training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            return cast(
                torch.Tensor, encoder(torch.tensor(lonlat, dtype=torch.float64)).float()
            )
    finally:
        encoder.train(training)


def test_point_sample_and_batch(encoder: LocationEncoder) -> None:
    transform = LocationEmbedding(encoder)
    sample = transform({'image': torch.zeros(3, 4, 4), 'point': torch.tensor(PARIS)})
    assert sample['location_embedding'].shape == (8,)
    assert sample['location_embedding'].dtype == torch.float32
    torch.testing.assert_close(
        sample['location_embedding'], reference(encoder, [PARIS])[0]
    )
    batch = {'point': torch.tensor([PARIS, (-74.0, 40.7)], dtype=torch.float32)}
    out = transform(batch)['location_embedding']
    assert out.shape == (2, 8)
    torch.testing.assert_close(
        out, reference(encoder, [PARIS, (-74.0, 40.7)]), atol=1e-5, rtol=1e-5
    )


def test_lat_lon_keys(encoder: LocationEncoder) -> None:
    transform = LocationEmbedding(encoder)
    single = transform({'lat': torch.tensor(PARIS[1]), 'lon': torch.tensor(PARIS[0])})
    assert single['location_embedding'].shape == (8,)
    batch = transform(
        {'lat': torch.tensor([48.86, 40.7]), 'lon': torch.tensor([2.35, -74.0])}
    )
    torch.testing.assert_close(
        batch['location_embedding'],
        reference(encoder, [PARIS, (-74.0, 40.7)]),
        atol=1e-5,
        rtol=1e-5,
    )


def test_encoder_frozen_and_eval(encoder: LocationEncoder) -> None:
    transform = LocationEmbedding(encoder)
    transform.train()
    assert not transform.encoder.training
    assert all(not p.requires_grad for p in transform.parameters())


def test_the_callers_encoder_is_left_alone(encoder: LocationEncoder) -> None:
    """A task's encoder passed to the transform keeps training.

    The transform froze (``eval()``, ``requires_grad_(False)``) the module it
    was given, so a task whose ``location_encoder`` it was given silently
    stopped training it.
    """
    encoder.train()
    before = {name: p.detach().clone() for name, p in encoder.named_parameters()}
    transform = LocationEmbedding(encoder)
    assert encoder.training
    assert all(module.training for module in encoder.modules())
    assert all(p.requires_grad for p in encoder.parameters())
    assert transform.encoder is not encoder
    assert not transform.encoder.training
    assert all(not p.requires_grad for p in transform.encoder.parameters())
    # the caller's encoder still learns; the transform's copy does not change
    frozen = reference(transform.encoder, [PARIS])
    loss = encoder(torch.tensor([PARIS], dtype=torch.float64)).square().sum()
    loss.backward()
    assert all(p.grad is not None for p in encoder.parameters())
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(1.0)
    out = transform({'point': torch.tensor(PARIS)})['location_embedding']
    torch.testing.assert_close(out, frozen[0])
    for name, p in transform.encoder.named_parameters():
        assert torch.equal(p, before[name]), name


def test_no_location_raises(encoder: LocationEncoder) -> None:
    with pytest.raises(KeyError, match='no location'):
        LocationEmbedding(encoder)({'image': torch.zeros(1)})


@pytest.mark.parametrize(
    ('keys', 'message'),
    [
        (
            ('image', 'label'),
            "the sample (keys 'image', 'label') has no location: expected "
            "'point' (lon, lat), 'lon' and 'lat', or GeoDataset 'bounds' with a CRS",
        ),
        (
            ('image', 'lon'),
            "the sample (keys 'image', 'lon') has 'lon' but no 'lat': expected "
            'both, in degrees',
        ),
        (
            ('lat', 'label'),
            "the sample (keys 'lat', 'label') has 'lat' but no 'lon': expected "
            'both, in degrees',
        ),
    ],
    ids=['none', 'lon only', 'lat only'],
)
def test_no_location_names_the_keys(
    encoder: LocationEncoder, keys: tuple[str, ...], message: str
) -> None:
    """A sample with 'lon' and no 'lat' was said to have no location at all,
    and no message named the keys the sample did have."""
    sample = {key: torch.tensor(1.0) for key in keys}
    with pytest.raises(KeyError) as raised:
        LocationEmbedding(encoder)(sample)
    assert raised.value.args[0] == message


@pytest.mark.parametrize(
    ('point', 'match'),
    [
        (torch.zeros(2, 3), r'got shape \(2, 3\) \(transposed'),
        (torch.zeros(3, 3), r'got shape \(3, 3\)$'),
        (torch.zeros(4), r'got shape \(4,\)'),
        (torch.zeros(2, 2, 2), r'got shape \(2, 2, 2\)'),
    ],
)
def test_point_of_another_shape_raises(
    encoder: LocationEncoder, point: torch.Tensor, match: str
) -> None:
    # reshaped to (-1, 2), these would become scrambled (lon, lat) pairs
    with pytest.raises(ValueError, match=match):
        LocationEmbedding(encoder)({'point': point})
    with pytest.raises(ValueError, match=match):
        sample_lonlat({'point': point})


@pytest.mark.parametrize(
    ('lon', 'lat'),
    [
        (torch.zeros(3), torch.zeros(2)),
        (torch.zeros(2, 1), torch.zeros(2, 1)),
        (torch.tensor(1.0), torch.zeros(1)),
    ],
)
def test_lon_lat_of_other_shapes_raise(lon: torch.Tensor, lat: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="'lon' and 'lat' must be scalars or"):
        sample_lonlat({'lon': lon, 'lat': lat})


def test_geodataset_sample_reprojected(
    tmp_path: Path, encoder: LocationEncoder
) -> None:
    write_utm_tif(tmp_path / 'paris.tif', PARIS)
    dataset = RasterDataset(paths=str(tmp_path))
    sample = dataset[dataset.bounds]
    transform = LocationEmbedding(encoder, crs=dataset.crs)
    lonlat, batched = sample_lonlat(sample, dataset.crs)
    assert not batched
    np.testing.assert_allclose(lonlat[0].numpy(), PARIS, atol=1e-6)
    out = transform(sample)['location_embedding']
    torch.testing.assert_close(
        out, reference(encoder, [PARIS])[0], atol=1e-5, rtol=1e-5
    )
    # a collated batch of two samples
    batch = stack_samples([dataset[dataset.bounds], dataset[dataset.bounds]])
    lonlat, batched = sample_lonlat(batch, dataset.crs)
    assert batched
    assert lonlat.shape == (2, 2)
    if TORCHGEO_AT_LEAST_0_10:  # samples carry no CRS: it must be given
        with pytest.raises(ValueError, match='no CRS'):
            sample_lonlat(sample)
    else:
        assert 'crs' in sample
        np.testing.assert_allclose(
            sample_lonlat(sample)[0][0].numpy(), PARIS, atol=1e-6
        )


def test_no_encoder_is_an_error() -> None:
    """A random frozen encoder would add fixed noise in silence."""
    with pytest.raises(ValueError, match='SATCLIP_RESNET18_L10'):
        LocationEmbedding()
    transform = LocationEmbedding(allow_random=True)
    sample = transform({'point': torch.tensor(PARIS)})
    assert sample['location_embedding'].shape == (256,)


def test_given_crs_fills_a_sample_crs_of_none(tmp_path: Path) -> None:
    """A ``crs`` key holding None took precedence over the ``crs`` given, and
    the error then asked for the ``crs=`` that had been passed."""
    write_utm_tif(tmp_path / 'paris.tif', PARIS)
    dataset = RasterDataset(paths=str(tmp_path))
    sample = {**dataset[dataset.bounds], 'crs': None}
    lonlat, batched = sample_lonlat(sample, dataset.crs)
    assert not batched
    np.testing.assert_allclose(lonlat[0].numpy(), PARIS, atol=1e-6)
    # a batch whose first sample had a crs of None (set after collating:
    # torchgeo 0.10's stack_samples cannot stack None)
    batch = stack_samples([dataset[dataset.bounds], dataset[dataset.bounds]])
    batch['crs'] = [None, dataset.crs]
    lonlat, batched = sample_lonlat(batch, dataset.crs)
    assert batched
    np.testing.assert_allclose(lonlat.numpy(), [PARIS, PARIS], atol=1e-6)
    with pytest.raises(ValueError, match='no CRS'):
        sample_lonlat(sample)


@pytest.mark.skipif(TORCHGEO_AT_LEAST_0_10, reason='torchgeo 0.8 stores the query')
@pytest.mark.parametrize('query', ['x', 'open-x', 'open-y-stop', 'x-only-tuple'])
def test_partial_geoslice_query_is_a_clear_error(tmp_path: Path, query: str) -> None:
    """A query with an open x or y range (ds[x0:x1], ds[:, y0:y1]) failed with
    'cannot read bounds from slice' or float(None), saying nothing of why."""
    write_utm_tif(tmp_path / 'paris.tif', PARIS)
    dataset = RasterDataset(paths=str(tmp_path))
    x, y = dataset.bounds[0], dataset.bounds[1]
    partial: Any = {
        'x': slice(x.start, x.stop),
        'open-x': (slice(None), slice(y.start, y.stop)),
        'open-y-stop': (slice(x.start, x.stop), slice(y.start, None)),
        'x-only-tuple': (slice(x.start, x.stop),),
    }[query]
    sample = dataset[partial]
    match = r'bounds .*leave(s)? the (x|y) range open.*dataset\[x0:x1, y0:y1\]'
    with pytest.raises(ValueError, match=match):
        geo_sample_bounds(sample)
    with pytest.raises(ValueError, match=match):
        geo_sample_bounds(stack_samples([sample, sample]))
    with pytest.raises(ValueError, match=match):
        sample_lonlat(sample, dataset.crs)
    # the closed query of the same area is read
    closed = dataset[slice(x.start, x.stop), slice(y.start, y.stop)]
    np.testing.assert_allclose(
        sample_lonlat(closed, dataset.crs)[0][0].numpy(), PARIS, atol=1e-6
    )


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'dtype': torch.int64}, r'dtype must be a floating torch dtype.*torch\.int64'),
        ({'dtype': 'float32'}, "dtype must be a floating torch dtype.*'float32'"),
        ({'key': None}, 'key must be a name'),
        (
            {'encoder_dtype': torch.int32},
            r'encoder_dtype must be a floating torch dtype.*torch\.int32',
        ),
    ],
)
def test_bad_arguments_are_refused(
    encoder: LocationEncoder, kwargs: dict[str, Any], message: str
) -> None:
    """An integer dtype rounded every embedding (values in [-1, 1]) to 0 or
    +-1 in silence; a dtype given as a string failed at the first sample
    with "Invalid device string"; a key of None was written as sample[None]."""
    with pytest.raises(ValueError, match=message):
        LocationEmbedding(encoder, **kwargs)


@pytest.mark.parametrize('encoder_dtype', [torch.float32, torch.bfloat16])
def test_encoder_dtype_applies_to_an_encoder_module(
    encoder: LocationEncoder, encoder_dtype: torch.dtype
) -> None:
    """A float64 encoder module passed with encoder_dtype=float32 was kept
    in float64 (the factory returns a module as it is): the dtype asked for
    was silently ignored. The frozen copy is converted; the caller's module
    is not."""
    transform = LocationEmbedding(encoder, encoder_dtype=encoder_dtype)
    assert {p.dtype for p in transform.encoder.parameters()} == {encoder_dtype}
    assert {p.dtype for p in encoder.parameters()} == {torch.float64}
    sample = transform({'point': torch.tensor(PARIS)})
    expected = reference(encoder, [PARIS])[0]
    tolerance = 1e-5 if encoder_dtype == torch.float32 else 5e-2
    torch.testing.assert_close(
        sample['location_embedding'], expected, atol=tolerance, rtol=0
    )


def test_encoder_dtype_none_keeps_the_modules_own(encoder: LocationEncoder) -> None:
    encoder32 = encoder.to(torch.float32)
    transform = LocationEmbedding(encoder32)
    assert {p.dtype for p in transform.encoder.parameters()} == {torch.float32}


def test_bounds_of_one_sample_as_numbers(encoder: LocationEncoder) -> None:
    """Bounds given as a plain list of numbers are one sample's (as
    geo_sample_bounds reads them): a (D,) embedding, as for a tuple or array."""
    to_utm = Transformer.from_crs('EPSG:4326', 'EPSG:32631', always_xy=True)
    x, y = to_utm.transform(*PARIS)
    bounds = [x - 80, x + 80, 10.0, y - 80, y + 80, 10.0, 0.0, 1.0, 1.0]
    if not TORCHGEO_AT_LEAST_0_10:  # a BoundingBox's order
        bounds = [x - 80, x + 80, y - 80, y + 80, 0.0, 1.0]
    transform = LocationEmbedding(encoder, crs='EPSG:32631')
    for given in (bounds, tuple(bounds), np.array(bounds)):
        lonlat, batched = sample_lonlat({'bounds': given}, 'EPSG:32631')
        assert not batched
        np.testing.assert_allclose(lonlat[0].numpy(), PARIS, atol=1e-6)
        out = transform({'bounds': given})['location_embedding']
        assert out.shape == (8,)
    lonlat, batched = sample_lonlat({'bounds': [np.array(bounds)] * 2}, 'EPSG:32631')
    assert batched
    assert lonlat.shape == (2, 2)


@pytest.mark.parametrize('number', [np.float32, np.int64, np.float64])
def test_bounds_of_one_sample_as_numpy_numbers(number: type[np.generic]) -> None:
    """A list of NumPy float32 (or int64) bounds was read as a list of
    bounds and failed with 'cannot read bounds from float32'; it is one
    sample's bounds, as a list of Python numbers is."""
    to_utm = Transformer.from_crs('EPSG:4326', 'EPSG:32631', always_xy=True)
    x, y = (round(v) for v in to_utm.transform(*PARIS))
    values = [x - 80, x + 80, 10, y - 80, y + 80, 10, 0, 1, 1]
    if not TORCHGEO_AT_LEAST_0_10:  # a BoundingBox's order
        values = [x - 80, x + 80, y - 80, y + 80, 0, 1]
    given = [number(v) for v in values]
    expected = [np.asarray(values, dtype=np.float64)]
    np.testing.assert_array_equal(
        geo_sample_bounds({'bounds': given}),
        geo_sample_bounds({'bounds': expected}),
    )
    lonlat, batched = sample_lonlat({'bounds': given}, 'EPSG:32631')
    assert not batched
    np.testing.assert_allclose(lonlat[0].numpy(), PARIS, atol=1e-2)


def test_one_crs_per_sample_of_a_batch() -> None:
    """A batch whose 'crs' list was shorter than its bounds failed with a
    bare IndexError (and a longer one was cut in silence)."""
    box = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    if TORCHGEO_AT_LEAST_0_10:
        box = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    for crs in (['EPSG:4326'], ['EPSG:4326'] * 3):
        with pytest.raises(ValueError, match=rf"'crs' has {len(crs)} entries for 2"):
            sample_lonlat({'bounds': [box, box], 'crs': crs})


def utm_extent(lonlat: tuple[float, float]) -> tuple[float, float, float, float]:
    """``(minx, maxx, miny, maxy)`` of a 160 m square in EPSG:32631 centred on
    ``lonlat``."""
    to_utm = Transformer.from_crs('EPSG:4326', 'EPSG:32631', always_xy=True)
    x, y = to_utm.transform(*lonlat)
    return x - 80, x + 80, y - 80, y + 80


def utm_box(lonlat: tuple[float, float]) -> np.ndarray:
    """One sample's bounds in EPSG:32631 around ``lonlat``, in this torchgeo's
    order: a BoundingBox's (minx, maxx, miny, maxy, mint, maxt) on 0.8, the
    (xmin, xmax, xres, ymin, ymax, yres, tmin, tmax, tres) tensor's on 0.10."""
    minx, maxx, miny, maxy = utm_extent(lonlat)
    if TORCHGEO_AT_LEAST_0_10:
        return np.array([minx, maxx, 10, miny, maxy, 10, 0, 1, 1])
    return np.array([minx, maxx, miny, maxy, 0, 1])


BATCH_PLACES = [PARIS, (3.0, 45.0), (1.0, 50.0), (4.0, 43.5)]


@pytest.mark.parametrize('count', [1, 2, 4])
@pytest.mark.parametrize('kind', ['tuple', 'list', 'tuple of lists', 'tuple of slices'])
def test_a_tuple_of_bounds_is_a_batch_as_geo_sample_bounds_reads_it(
    encoder: LocationEncoder, count: int, kind: str
) -> None:
    """geo_sample_bounds read a tuple of several samples' bounds as a batch,
    but sample_lonlat called it one sample (only a list was a batch there),
    so LocationEmbedding kept the first sample's embedding alone, as a (D,)
    tensor, and dropped the others in silence. Both now read bounds with
    one parser: a list or a tuple of bounds is a batch, whatever its length
    (4 included)."""
    places = BATCH_PLACES[:count]
    extents = [utm_extent(place) for place in places]
    given: Any = {
        'tuple': tuple(utm_box(place) for place in places),
        'list': [utm_box(place) for place in places],
        'tuple of lists': tuple(utm_box(place).tolist() for place in places),
        'tuple of slices': tuple(
            (slice(minx, maxx), slice(miny, maxy)) for minx, maxx, miny, maxy in extents
        ),
    }[kind]
    read = geo_sample_bounds({'bounds': given})
    assert read is not None
    assert read.shape == (count, 4)
    lonlat, batched = sample_lonlat({'bounds': given}, 'EPSG:32631')
    assert batched
    np.testing.assert_allclose(lonlat.numpy(), places, atol=1e-6)
    transform = LocationEmbedding(encoder, crs='EPSG:32631')
    out = transform({'bounds': given})['location_embedding']
    torch.testing.assert_close(out, reference(encoder, places), atol=1e-5, rtol=1e-5)


def test_numbers_of_one_sample_may_be_zero_dimensional_tensors() -> None:
    """tuple(tensor) of one sample's bounds holds 0-d tensors: they were read
    as bounds each ('cannot read bounds of 1 values'); they are numbers."""
    box = utm_box(PARIS)
    for given in (tuple(torch.from_numpy(box)), list(box.astype(np.float32))):
        lonlat, batched = sample_lonlat({'bounds': given}, 'EPSG:32631')
        assert not batched
        np.testing.assert_allclose(lonlat[0].numpy(), PARIS, atol=1e-2)


FOUR = [448000.0, 448160.0, 5411000.0, 5411160.0]


@pytest.mark.parametrize(
    ('given', 'message'),
    [
        (
            FOUR,
            r'\[448000\.0, 448160\.0, 5411000\.0, 5411160\.0\] are ambiguous.*expected 6',
        ),
        (
            tuple(FOUR),
            r'\(448000\.0, 448160\.0.* are ambiguous.*\(west, south, east, north\)',
        ),
        (torch.tensor(FOUR), r'448000.* are ambiguous'),
        (np.array([FOUR, FOUR]), r'448000.* are ambiguous'),
        ([np.array(FOUR)] * 2, r'448000.* are ambiguous'),
        ((FOUR, FOUR, FOUR, FOUR), r'448000.* are ambiguous'),
        (
            [utm_box(PARIS), 3.0],
            r'mix numbers and bounds.*expected one sample.s numbers or a list',
        ),
        (
            (3.0, utm_box(PARIS)),
            r'mix numbers and bounds.*expected one sample.s numbers or a list',
        ),
        (
            torch.zeros(1, 1, 6),
            r'bounds of shape \(1, 1, 6\).*expected \(6,\) or \(9,\)',
        ),
        (
            np.zeros((1, 1, 9)),
            r'bounds of shape \(1, 1, 9\).*expected \(6,\) or \(9,\)',
        ),
        (torch.tensor(5.0), r'bounds of shape \(\).*expected \(6,\) or \(9,\)'),
        ([1.0, 2.0, 3.0], r'bounds \[1\.0, 2\.0, 3\.0\] hold 3 values.*expected 6'),
    ],
)
def test_ambiguous_or_malformed_bounds_are_refused(given: Any, message: str) -> None:
    """Four numbers were read in silence as (minx, maxx, miny, maxy), though
    rasterio, shapely and GeoJSON write four numbers as (west, south, east,
    north): the centre came out at ((west + south) / 2, (east + north) / 2).
    A list mixing numbers and bounds failed with 'cannot read bounds from
    float', a (1, 1, 6) tensor was read as one box and a 0-d tensor as a
    box of one value. Each is refused naming the value and what was
    expected, by both readers."""
    with pytest.raises(ValueError, match=message):
        geo_sample_bounds({'bounds': given})
    with pytest.raises(ValueError, match=message):
        sample_lonlat({'bounds': given}, 'EPSG:32631')


@pytest.mark.parametrize('given', [[], (), np.zeros((0, 6)), torch.zeros(0, 9)])
def test_bounds_of_an_empty_batch(encoder: LocationEncoder, given: Any) -> None:
    """An empty batch's bounds (a last partial batch filtered to nothing, an
    empty list) failed with numpy's 'need at least one array to
    concatenate', though 'point' of shape (0, 2) gives (0, D)."""
    lonlat, batched = sample_lonlat({'bounds': given}, 'EPSG:32631')
    assert batched
    assert lonlat.shape == (0, 2)
    assert lonlat.dtype == torch.float64
    transform = LocationEmbedding(encoder, crs='EPSG:32631')
    assert transform({'bounds': given})['location_embedding'].shape == (0, 8)


@pytest.mark.parametrize(
    ('crs', 'x', 'where'),
    [
        # beyond Web Mercator's easting of 20,037,508 m: wrapped to -90.5
        ('EPSG:3857', 3e7, 'the sample'),
        # far outside a UTM zone: (nan, inf)
        ('EPSG:32631', 1e9, 'the sample'),
    ],
)
def test_bounds_outside_their_crs_are_refused(crs: str, x: float, where: str) -> None:
    sample = {'bounds': (x - 10, x + 10, -10.0, 10.0, 0.0, 1.0), 'crs': crs}
    with pytest.raises(ValueError, match=f"{where}'s bounds") as error:
        sample_lonlat(sample)
    assert crs in str(error.value)
    assert f'{x:g}' in str(error.value)


def test_bounds_outside_their_crs_name_the_sample_of_a_batch() -> None:
    bounds = [(0.0, 10.0, 0.0, 10.0, 0.0, 1.0), (1e9 - 10, 1e9 + 10, -10.0, 10.0, 0, 1)]
    with pytest.raises(ValueError, match="sample 1 of the batch's bounds"):
        sample_lonlat({'bounds': bounds, 'crs': 'EPSG:32631'})
    # bounds inside the CRS's area are read as before
    lonlat, batched = sample_lonlat({'bounds': bounds[:1], 'crs': 'EPSG:32631'})
    assert batched
    assert torch.isfinite(lonlat).all()


def test_a_list_of_point_tensors_is_a_batch() -> None:
    points = [torch.tensor(PARIS), torch.tensor([-74.0, 40.7])]
    lonlat, batched = sample_lonlat({'point': points})
    assert batched
    torch.testing.assert_close(lonlat, torch.stack(points).double())
    lon, lat = [torch.tensor(2.35), torch.tensor(-74.0)], [torch.tensor(48.86)] * 2
    lonlat, batched = sample_lonlat({'lon': lon, 'lat': lat})
    assert batched
    assert lonlat.shape == (2, 2)


@pytest.mark.parametrize(
    ('sample', 'key'),
    [
        ({'point': [torch.tensor(PARIS), torch.tensor([1.0, 2.0, 3.0])]}, 'point'),
        ({'point': 'Paris'}, 'point'),
        ({'lon': [torch.tensor([1.0, 2.0]), 'x'], 'lat': [1.0, 2.0]}, 'lon'),
    ],
)
def test_unreadable_coordinates_name_their_key(
    sample: dict[str, Any], key: str
) -> None:
    # torch's 'only one element tensors can be converted to Python scalars'
    # named no key
    with pytest.raises(ValueError, match=f"the sample's '{key}'"):
        sample_lonlat(sample)
