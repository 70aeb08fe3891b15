"""Multi-temporal S2-100K: ``S2100K(..., dates='pair' | 'all')`` and packing."""

import datetime
import shutil
from itertools import combinations
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from torchgeo_satclip._errors import DataError
from torchgeo_satclip.datamodules import ThreadedBatchLoader, collate_sample_batch
from torchgeo_satclip.datamodules.loader import threaded_source
from torchgeo_satclip.datasets import (
    S2100K,
    SampleBatch,
    pack_s2_100k,
    verify_packed,
)
from torchgeo_satclip.datasets.s2_100k_files import (
    PackedLayoutError,
    read_dates_file,
    read_geotiff,
)

matplotlib.use('Agg')

DATA = Path(__file__).parents[1] / 'data' / 's2_100k' / 'temporal'
SIZE = 16
EPOCH = datetime.date(1970, 1, 1)


def days(text: str) -> int:
    return (datetime.date.fromisoformat(text) - EPOCH).days


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / 'temporal'
    shutil.copytree(DATA, root)
    return root


@pytest.fixture(scope='module')
def packed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('packed') / 'temporal'
    shutil.copytree(DATA, root)
    pack_s2_100k(root, patch_size=SIZE, shard_size=3, progress=False)
    return root


def expected_images(root: Path) -> dict[str, dict[int, torch.Tensor]]:
    """Each point's images by date (days since 1970), read from the GeoTIFFs."""
    dates = read_dates_file(root / 'dates.csv')
    return {
        point: {
            (date - EPOCH).days: torch.from_numpy(read_geotiff(root / 'images' / fn))
            for date, fn in listed
        }
        for point, listed in dates.items()
    }


def point_names(dataset: S2100K) -> dict[tuple[float, float], str]:
    return {
        tuple(p.tolist()): fn
        for p, fn in zip(dataset.points, dataset.files, strict=True)
    }  # type: ignore[misc]


def test_pairs_are_two_dates_of_the_same_point(root: Path) -> None:
    ds = S2100K(root, patch_size=SIZE, image_dtype='uint16', dates='pair')
    assert ds.files == ['patch_0.tif', 'patch_1.tif', 'patch_3.tif']
    assert ds.num_single_date == 1  # patch_2.tif
    expected = expected_images(root)
    names = point_names(ds)
    torch.manual_seed(0)
    seen: dict[str, set[frozenset[int]]] = {fn: set() for fn in ds.files}
    for _ in range(60):
        for index in range(len(ds)):
            sample = ds[index]
            assert sample['image'].shape == (2, 12, SIZE, SIZE)
            assert sample['image'].dtype == torch.uint16
            assert sample['date'].shape == (2,)
            assert sample['date'].dtype == torch.int64
            point = names[tuple(sample['point'].tolist())]  # type: ignore[index]
            assert point == ds.files[index]
            first, second = sample['date'].tolist()
            assert first != second
            # both images are the point's own, at the dates given
            assert torch.equal(sample['image'][0], expected[point][first])
            assert torch.equal(sample['image'][1], expected[point][second])
            seen[point].add(frozenset((first, second)))
    # every pair of the three dates of patch_0.tif appears
    three = [days('2021-03-01'), days('2021-06-01'), days('2021-09-01')]
    assert seen['patch_0.tif'] == {frozenset(c) for c in combinations(three, 2)}
    assert seen['patch_1.tif'] == {frozenset((days('2021-01-10'), days('2021-07-10')))}


def test_pairs_in_both_orders_and_seeded(root: Path) -> None:
    ds = S2100K(root, patch_size=SIZE, image_dtype='uint16', dates='pair')
    torch.manual_seed(3)
    orders = {tuple(ds[1]['date'].tolist()) for _ in range(40)}
    assert len(orders) == 2  # (January, July) and (July, January)
    torch.manual_seed(5)
    a = [ds[0]['date'].tolist() for _ in range(10)]
    torch.manual_seed(5)
    b = [ds[0]['date'].tolist() for _ in range(10)]
    assert a == b


def test_pair_seed_fixes_the_pairs(root: Path) -> None:
    fixed = [
        S2100K(root, patch_size=SIZE, dates='pair', pair_seed=seed)
        for seed in range(12)
    ]
    torch.manual_seed(0)
    state = torch.get_rng_state()
    first = [[ds[i]['date'].tolist() for i in range(3)] for ds in fixed]
    assert torch.equal(torch.get_rng_state(), state)  # torch's RNG untouched
    again = [
        [ds[i]['date'].tolist() for i in range(3)]
        for ds in (
            S2100K(root, patch_size=SIZE, dates='pair', pair_seed=s) for s in range(12)
        )
    ]
    assert first == again
    assert [[ds[i]['date'].tolist() for i in range(3)] for ds in fixed] == first
    batch = fixed[0].__getitems__([2, 0])
    assert isinstance(batch, SampleBatch)
    assert batch.stacked['date'].tolist() == [first[0][2], first[0][0]]
    for pairs in first:
        assert all(a != b for a, b in pairs)
    assert len({tuple(pairs[0]) for pairs in first}) > 2  # seeds differ
    with pytest.raises(ValueError, match='pair_seed must be None or an integer'):
        S2100K(root, patch_size=SIZE, dates='pair', pair_seed=-1)


def test_all_dates_sorted(root: Path) -> None:
    ds = S2100K(root, patch_size=SIZE, dates='all')
    assert len(ds) == 4
    assert ds.num_single_date == 0
    expected = expected_images(root)
    sample = ds[0]
    dates = [days('2021-03-01'), days('2021-06-01'), days('2021-09-01')]
    assert sample['date'].tolist() == dates
    assert sample['image'].shape == (3, 12, SIZE, SIZE)
    assert sample['image'].dtype == torch.float32
    for t, day in enumerate(dates):
        assert torch.equal(sample['image'][t], expected['patch_0.tif'][day].float())
    single = ds[2]
    assert single['image'].shape == (1, 12, SIZE, SIZE)
    assert single['date'].tolist() == [days('2022-02-02')]
    assert ds[3]['date'].tolist() == [days('2020-11-30'), days('2021-05-05')]
    # points with different numbers of dates are read one by one
    batch = ds.__getitems__([0, 1])
    assert not isinstance(batch, SampleBatch)
    assert [s['image'].shape[0] for s in batch] == [3, 2]
    with pytest.raises(ValueError, match='different numbers of dates'):
        ds.draw([0, 1])
    with pytest.raises(ValueError, match='no batch shape'):
        ds.batch_shape(2)


def test_index_mode_ignores_dates(root: Path) -> None:
    ds = S2100K(root, patch_size=SIZE)
    assert len(ds) == 4
    sample = ds[0]
    assert set(sample) == {'image', 'point'}
    assert sample['image'].shape == (12, SIZE, SIZE)
    (root / 'images' / 'patch_0_a.tif').unlink()  # not needed by 'index'
    assert len(S2100K(root, patch_size=SIZE)) == 4


def test_getitems_equals_per_sample_reads(root: Path, packed_root: Path) -> None:
    for where in (root, packed_root):
        ds = S2100K(where, patch_size=SIZE, dates='pair', bands=['B04', 'B08'])
        indices = [2, 0, 1, 0, 2]
        torch.manual_seed(11)
        batch = ds.__getitems__(indices)
        torch.manual_seed(11)
        single = [ds[i] for i in indices]
        assert isinstance(batch, SampleBatch)
        stacked = batch.stacked
        assert stacked['image'].shape == (5, 2, 2, SIZE, SIZE)
        assert stacked['image'].dtype == torch.float32
        assert stacked['point'].shape == (5, 2)
        assert stacked['date'].shape == (5, 2)
        for got, want in zip(batch, single, strict=True):
            assert set(got) == set(want) == {'image', 'point', 'date'}
            for key in want:
                assert torch.equal(got[key], want[key])


def test_packed_pairs_equal_geotiff_pairs(root: Path, packed_root: Path) -> None:
    geotiff = S2100K(root, patch_size=SIZE, dates='pair', layout='geotiff')
    packed = S2100K(packed_root, patch_size=SIZE, dates='pair', layout='packed')
    assert packed.layout == 'packed'
    for index in range(len(geotiff)):
        for _ in range(8):
            state = torch.get_rng_state()
            a = geotiff[index]
            torch.set_rng_state(state)
            b = packed[index]
            for key in ('image', 'point', 'date'):
                assert torch.equal(a[key], b[key])
    every = S2100K(packed_root, patch_size=SIZE, dates='all', layout='packed')
    assert torch.equal(
        every[0]['image'], S2100K(root, patch_size=SIZE, dates='all')[0]['image']
    )


def test_pack_packs_every_date(packed_root: Path) -> None:
    result = verify_packed(packed_root, patch_size=SIZE, progress=False)
    assert result.num_samples == 8  # 4 index images and 4 other dates
    files = (packed_root / 'packed' / 'files.csv').read_text().splitlines()
    order = [line.split(',')[0] for line in files[1:]]
    assert order == [
        'patch_0.tif',
        'patch_1.tif',
        'patch_2.tif',
        'patch_3.tif',
        'patch_0_a.tif',
        'patch_0_b.tif',
        'patch_1_a.tif',
        'patch_3_a.tif',
    ]


def test_packed_layout_without_the_dates(root: Path) -> None:
    dates = (root / 'dates.csv').read_bytes()
    (root / 'dates.csv').unlink()
    pack_s2_100k(root, patch_size=SIZE, progress=False)  # index.csv only
    (root / 'dates.csv').write_bytes(dates)
    with pytest.raises(
        PackedLayoutError, match=r'files listed in .*dates\.csv are not'
    ):
        verify_packed(root, patch_size=SIZE, progress=False)
    with pytest.raises(DataError, match=r'patch_0_a\.tif.*pack .* again'):
        S2100K(root, patch_size=SIZE, dates='pair')
    assert len(S2100K(root, patch_size=SIZE)) == 4  # index mode is complete
    pack_s2_100k(root, patch_size=SIZE, progress=False)  # resumes, adds the dates
    assert verify_packed(root, patch_size=SIZE, progress=False).num_samples == 8
    assert S2100K(root, patch_size=SIZE, dates='pair').layout == 'packed'


def test_threaded_loader_serves_pairs(packed_root: Path) -> None:
    ds = S2100K(packed_root, patch_size=SIZE, dates='pair', image_dtype='uint16')
    assert threaded_source(ds) is not None
    assert threaded_source(S2100K(packed_root, patch_size=SIZE, dates='all')) is None
    expected = expected_images(packed_root)
    names = point_names(ds)
    for num_threads in (1, 3):
        loader = ThreadedBatchLoader(ds, 2, num_threads=num_threads)
        torch.manual_seed(2)
        batches = list(loader)
        torch.manual_seed(2)
        again = list(ThreadedBatchLoader(ds, 2, num_threads=num_threads))
        assert [len(b['image']) for b in batches] == [2, 1]
        for batch, other in zip(batches, again, strict=True):
            assert set(batch) == {'image', 'point', 'date'}
            assert batch['image'].shape[1:] == (2, 12, SIZE, SIZE)
            assert batch['image'].dtype == torch.uint16
            assert batch['date'].shape == (len(batch['image']), 2)
            for key in batch:
                assert torch.equal(batch[key], other[key])
            for image, point, date in zip(
                batch['image'], batch['point'], batch['date'], strict=True
            ):
                name = names[tuple(point.tolist())]  # type: ignore[index]
                first, second = date.tolist()
                assert first != second
                assert torch.equal(image[0], expected[name][first])
                assert torch.equal(image[1], expected[name][second])
    # a DataLoader's batches have the same form
    plain = next(iter(DataLoader(ds, 3, collate_fn=collate_sample_batch)))
    assert plain['image'].shape == (3, 2, 12, SIZE, SIZE)
    assert plain['date'].shape == (3, 2)


def test_read_images_fills_a_pair_batch(packed_root: Path) -> None:
    ds = S2100K(packed_root, patch_size=SIZE, dates='pair')
    out = np.zeros(ds.batch_shape(2), dtype=np.uint16)
    assert out.shape == (2, 2, 12, SIZE, SIZE)
    torch.manual_seed(7)
    fields = ds.read_images([0, 2], out)
    torch.manual_seed(7)
    fns, drawn = ds.draw([0, 2])
    assert torch.equal(fields['date'], drawn['date'])
    assert len(fns) == 4
    for k, fn in enumerate(fns):
        assert np.array_equal(
            out[k // 2, k % 2], read_geotiff(packed_root / 'images' / fn)
        )
    with pytest.raises(
        ValueError, match=r'out must be uint16 of shape \(1, 2, 12, 16, 16\)'
    ):
        ds.read_images([0], out)


def test_points_mode(root: Path) -> None:
    shutil.rmtree(root / 'images')
    ds = S2100K(root, mode='points', dates='pair')
    assert len(ds) == 3
    torch.manual_seed(0)
    sample = ds[0]
    assert set(sample) == {'point', 'date'}
    assert sample['date'].shape == (2,)
    batch = ds.__getitems__([0, 1])
    assert isinstance(batch, SampleBatch)
    assert set(batch.stacked) == {'point', 'date'}
    every = S2100K(root, mode='points', dates='all')
    assert every[0]['date'].tolist() == sorted(every[0]['date'].tolist())


def test_exclude_nodata_judges_the_index_image(root: Path) -> None:
    ds = S2100K(root, patch_size=SIZE, dates='pair', exclude_nodata=True)
    assert ds.excluded == ['patch_3.tif']  # its other date has data
    assert ds.num_single_date == 1
    assert ds.files == ['patch_0.tif', 'patch_1.tif']


def test_no_dates_file(root: Path) -> None:
    (root / 'dates.csv').unlink()
    for dates in ('pair', 'all'):
        with pytest.raises(
            FileNotFoundError,
            match=r'is not a multi-temporal dataset: no dates\.csv; build it with '
            '`torchgeo-satclip build --dates K`',
        ):
            S2100K(root, patch_size=SIZE, dates=dates)  # type: ignore[arg-type]


def test_missing_dated_image(root: Path) -> None:
    (root / 'images' / 'patch_1_a.tif').unlink()
    with pytest.raises(
        DataError, match=r'1 of 8 files listed in .*dates\.csv .*patch_1_a\.tif'
    ) as e:
        S2100K(root, patch_size=SIZE, dates='pair')
    assert isinstance(e.value, FileNotFoundError)  # what it was before
    with pytest.raises(DataError, match=r'dates\.csv are missing') as e:
        pack_s2_100k(root, patch_size=SIZE, progress=False)
    assert isinstance(e.value, FileNotFoundError)


def test_bad_arguments_and_dates_file(root: Path) -> None:
    with pytest.raises(ValueError, match="dates must be 'index', 'pair' or 'all'"):
        S2100K(root, patch_size=SIZE, dates='both')  # type: ignore[arg-type]
    text = (root / 'dates.csv').read_text()
    (root / 'dates.csv').write_text(text.replace('2021-09-01', '2021-09-31'))
    with pytest.raises(DataError, match=r'line 4: date .* YYYY-MM-DD') as e:
        S2100K(root, patch_size=SIZE, dates='all')
    assert isinstance(e.value, ValueError)  # what it was before: still caught
    lines = text.splitlines()
    (root / 'dates.csv').write_text('\n'.join(lines[:6]) + '\n')  # no patch_3.tif
    with pytest.raises(DataError, match=r'of index\.csv have no rows .*patch_3\.tif'):
        S2100K(root, patch_size=SIZE, dates='pair')
    # a point of dates.csv that index.csv lacks: no build.json, no build hint
    (root / 'dates.csv').write_text(text + 'patch_9.tif,patch_9.tif,2021-01-01\n')
    with pytest.raises(
        ValueError, match=r'are not in index\.csv: patch_9\.tif'
    ) as error:
        S2100K(root, patch_size=SIZE, dates='pair')
    assert 'build' not in str(error.value)
    # made by build, but two points ahead: no kill leaves that, no build hint
    (root / 'build.json').write_text('{}')
    (root / 'dates.csv').write_text(
        text
        + 'patch_8.tif,patch_8.tif,2021-01-01\n'
        + 'patch_9.tif,patch_9.tif,2021-01-01\n'
    )
    with pytest.raises(ValueError, match=r'2 point\(s\) .* not in index') as error:
        S2100K(root, patch_size=SIZE, dates='pair')
    assert 'build' not in str(error.value)
    (root / 'dates.csv').write_text(text + 'patch_9.tif,patch_9.tif,2021-01-01\n')
    with pytest.raises(DataError, match='run the same build again'):
        S2100K(root, patch_size=SIZE, dates='pair')
    single = lines[:1] + [
        line for line in lines[1:] if line.split(',')[0] == line.split(',')[1]
    ]
    assert len(single) == 5
    (root / 'dates.csv').write_text('\n'.join(single) + '\n')
    with pytest.raises(ValueError, match='no point has two dates'):
        S2100K(root, patch_size=SIZE, dates='pair')


def test_plot_pair(root: Path) -> None:
    ds = S2100K(root, patch_size=SIZE, dates='pair')
    torch.manual_seed(0)
    sample = ds[0]
    fig = ds.plot(sample, suptitle='pair')
    titles = [ax.get_title() for ax in fig.axes]
    dates = [
        (EPOCH + datetime.timedelta(days=d)).isoformat()
        for d in sample['date'].tolist()
    ]
    assert titles == dates
    # the suptitle given does not drop where the point is
    lon, lat = sample['point'].tolist()
    assert fig.get_suptitle() == f'pair\nlon {lon:.4f}, lat {lat:.4f}'
    fig = ds.plot(sample)
    assert fig.get_suptitle() == f'lon {lon:.4f}, lat {lat:.4f}'
    fig = ds.plot(sample, show_titles=False, suptitle='pair')
    assert fig.get_suptitle() == 'pair'
    fig = ds.plot(S2100K(root, patch_size=SIZE)[0])
    assert len(fig.axes) == 1
    assert fig.axes[0].get_title().startswith('lon ')


def test_with_fixed_pairs_copies_with_pair_seed_draws(root: Path) -> None:
    """The copy draws the pairs pair_seed would; the original stays random."""
    random = S2100K(root, patch_size=SIZE, dates='pair')
    assert not random.fixed_pairs
    fixed = random.with_fixed_pairs(3)
    seeded = S2100K(root, patch_size=SIZE, dates='pair', pair_seed=3)
    assert fixed.fixed_pairs
    assert seeded.fixed_pairs
    assert not random.fixed_pairs
    assert fixed.files is random.files  # shared, not re-read
    for i in range(len(random)):
        assert fixed[i]['date'].tolist() == seeded[i]['date'].tolist()
        assert torch.equal(fixed[i]['image'], seeded[i]['image'])
    torch.manual_seed(0)
    drawn = {tuple(random[0]['date'].tolist()) for _ in range(30)}
    assert len(drawn) > 1  # the original still draws anew
    with pytest.raises(ValueError, match='seed must be an integer >= 0'):
        random.with_fixed_pairs(-1)
    with pytest.raises(ValueError, match="needs dates='pair', not dates='index'"):
        S2100K(root, patch_size=SIZE).with_fixed_pairs(0)
