import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader
from torchgeo.main import main
from torchvision.models._api import Weights, WeightsEnum

from torchgeo_satclip.datamodules import S2100KDataModule
from torchgeo_satclip.geo import great_circle_km
from torchgeo_satclip.models import load_location_encoder
from torchgeo_satclip.tasks import SatCLIPTask, export_official_checkpoint
from torchgeo_satclip.tasks._clip import (
    clip_loss,
    nearest_centroid,
    retrieval_metrics,
    spherical_kmeans,
)

from ..tiny_timm import TinyNet

CONF = Path('tests', 'conf')
CONFIGS = Path('configs')
DATA = Path('tests', 'data', 's2_100k')
RECIPES = sorted(
    [*CONFIGS.glob('satclip_*.yaml'), *CONFIGS.glob('geoclip_*.yaml')],
    key=lambda p: p.name,
)


pytestmark = pytest.mark.usefixtures('tiny_timm')


def tiny_fit_args(config: Path, root: Path) -> list[str]:
    """``torchgeo fit`` of a recipe on tiny data: no weights, 32-px patches, batch 2."""
    return [
        'fit',
        '--config',
        str(config),
        '--model.init_args.weights',
        'null',
        '--data.dict_kwargs.root',
        str(root),
        '--data.dict_kwargs.patch_size',
        '32',
        '--data.init_args.batch_size',
        '2',
        '--data.init_args.num_workers',
        '0',
        '--data.init_args.crop_size',
        '16',
    ]


def run(args: list[str], tmp_path: Path) -> None:
    main(
        [
            *args,
            '--trainer.accelerator',
            'cpu',
            '--trainer.fast_dev_run',
            '1',
            '--trainer.default_root_dir',
            str(tmp_path),
        ]
    )


def tiny_task(**kwargs: Any) -> SatCLIPTask:
    args: dict[str, Any] = {
        'embed_dim': 8,
        'legendre_polys': 4,
        'capacity': 16,
        'location_dropout': 0.0,
    }
    args.update(kwargs)
    return SatCLIPTask(**args)


def fixed_batch(n: int = 6, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lon = torch.rand(n, generator=g) * 360 - 180
    lat = torch.rand(n, generator=g) * 150 - 75
    return {
        'image': torch.rand(n, 13, 16, 16, generator=g),
        'point': torch.stack([lon, lat], 1),
    }


def quiet_datamodule(batch_size: int = 2) -> S2100KDataModule:
    return S2100KDataModule(
        batch_size=batch_size,
        crop_size=None,
        flips=False,
        blur=False,
        jitter=0.0,
        root=str(DATA),
        patch_size=32,
    )


def trainer(tmp_path: Path, **kwargs: Any) -> Trainer:
    args: dict[str, Any] = {
        'accelerator': 'cpu',
        'default_root_dir': str(tmp_path),
        'logger': False,
        'enable_progress_bar': False,
        'enable_model_summary': False,
        'num_sanity_val_steps': 0,
    }
    args.update(kwargs)
    return Trainer(**args)


# ---------------------------------------------------------------- the CLI
@pytest.mark.parametrize('name', ['satclip_s2_100k', 'satclip_geo_cosine'])
def test_fit_fast_dev_run(name: str, tmp_path: Path) -> None:
    run(['fit', '--config', str(CONF / f'{name}.yaml')], tmp_path)


def test_fit_cached_fast_dev_run(tmp_path: Path) -> None:
    run(
        [
            'fit',
            '--config',
            str(CONF / 'satclip_cached.yaml'),
            '--data.init_args.cache_dir',
            str(tmp_path / 'cache'),
        ],
        tmp_path,
    )
    assert len(list((tmp_path / 'cache').glob('features-*.npy'))) == 1


def test_predict_cli(tmp_path: Path) -> None:
    run(['predict', '--config', str(CONF / 'satclip_s2_100k.yaml')], tmp_path)


def test_recipe_configs_exist() -> None:
    names = {p.name for p in RECIPES}
    for required in (
        'satclip_resnet18_l10.yaml',
        'satclip_resnet50_l40.yaml',
        'satclip_vit16_l40.yaml',
    ):
        assert required in names
    assert any(name.startswith('geoclip_') for name in names)
    assert any('ddp' in name for name in names)
    assert any('cached' in name for name in names)


@pytest.mark.parametrize('config', RECIPES, ids=lambda p: p.stem)
def test_recipe_config_parses(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(['fit', '--config', str(config), '--print_config'])
    assert info.value.code in (0, None)
    out = capsys.readouterr().out
    assert 'torchgeo_satclip.tasks.SatCLIPTask' in out


@pytest.mark.parametrize('config', RECIPES, ids=lambda p: p.stem)
@pytest.mark.usefixtures('geoclip_available')  # for location_weights: geoclip
def test_recipe_config_fast_dev_run(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if 'dates:' in config.read_text(encoding='utf-8'):
        pytest.skip('multi-temporal: run on two-date data in test_gassl_configs.py')
    config, data = config.resolve(), DATA.resolve()
    monkeypatch.chdir(tmp_path)  # the recipes write checkpoints/ and predictions/
    run(
        [
            *tiny_fit_args(config, data),
            *(
                ['--data.init_args.cache_dir', str(tmp_path / 'cache')]
                if 'cached' in config.stem
                else []
            ),
            '--trainer.strategy',
            'auto',
            '--trainer.devices',
            '1',
            '--trainer.precision',
            '32-true',
        ],
        tmp_path,
    )


def test_recipe_values() -> None:
    import yaml

    expected = {
        'satclip_resnet18_l10.yaml': ('resnet18', 10, 'ResNet18_Weights'),
        'satclip_resnet50_l40.yaml': ('resnet50', 40, 'ResNet50_Weights'),
        'satclip_vit16_l40.yaml': ('vit_small_patch16_224', 40, 'ViTSmall16_Weights'),
    }
    for name, (model, legendre, weights) in expected.items():
        config = yaml.safe_load((CONFIGS / name).read_text())
        args = config['model']['init_args']
        assert args['model'] == model
        assert args['legendre_polys'] == legendre
        assert args['weights'].startswith(weights)
        assert args['freeze_backbone'] is True
        assert (args['lr'], args['weight_decay']) == (1e-4, 0.01)
        assert (args['embed_dim'], args['capacity'], args['num_hidden_layers']) == (
            256,
            512,
            2,
        )
        assert config['data']['init_args']['batch_size'] == 512
        assert config['trainer']['accumulate_grad_batches'] == 16
        assert config['trainer']['max_epochs'] == 500


# ------------------------------------------------------------------- loss
def test_loss_matches_hand_computed() -> None:
    rng = np.random.default_rng(0)
    img = rng.normal(size=(5, 4))
    loc = rng.normal(size=(5, 4))
    scale = math.log(1 / 0.07)

    def normalise(x: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, x / np.linalg.norm(x, axis=1, keepdims=True))

    logits = np.exp(scale) * normalise(img) @ normalise(loc).T

    def ce(z: np.ndarray) -> float:
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-np.mean(np.diag(logp)))

    expected = (ce(logits) + ce(logits.T)) / 2
    out = clip_loss(
        torch.tensor(img), torch.tensor(loc), torch.tensor(scale, dtype=torch.float64)
    )
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)


def test_task_loss_matches_clip_loss() -> None:
    task = tiny_task().eval()
    batch = fixed_batch()
    with torch.no_grad():
        loss, metrics = task.compute_loss(batch)
        img = task.projection(task.model(batch['image']))
        loc = task.location_encoder(batch['point']).float()
        expected = clip_loss(img, loc, torch.tensor(math.log(1 / 0.07))).loss
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert metrics['clip_loss'].item() == pytest.approx(loss.item())
    assert task.logit_scale.item() == pytest.approx(math.log(1 / 0.07))


def test_logit_scale_clamp() -> None:
    task = tiny_task(logit_scale_max=100.0)
    with torch.no_grad():
        task.logit_scale.fill_(10.0)
    assert task.current_logit_scale().exp().item() == pytest.approx(100.0)
    assert tiny_task().current_logit_scale().item() == pytest.approx(math.log(1 / 0.07))


def test_shape_mismatch() -> None:
    with pytest.raises(ValueError, match='differ in shape'):
        clip_loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.tensor(0.0))


# ---------------------------------------------------------------- metrics
def test_retrieval_metrics_perfect() -> None:
    emb = torch.eye(6)
    lonlat = fixed_batch()['point']
    out = clip_loss(emb, emb, torch.tensor(math.log(100.0)))
    metrics = retrieval_metrics(out, lonlat)
    for name in ('i2l_top1', 'i2l_top5', 'l2i_top1', 'l2i_top5'):
        assert metrics[name].item() == 1.0
    assert metrics['median_km'].item() == 0.0


def test_retrieval_metrics_swapped() -> None:
    emb = torch.eye(4)
    lonlat = torch.tensor([[0.0, 0.0], [90.0, 0.0], [0.0, 10.0], [0.0, 20.0]])
    # every image retrieves the next location
    out = clip_loss(emb, emb.roll(1, dims=0), torch.tensor(math.log(100.0)))
    metrics = retrieval_metrics(out, lonlat)
    assert metrics['i2l_top1'].item() == 0.0
    assert metrics['i2l_top5'].item() == 1.0  # top 5 of 4 candidates
    distances = great_circle_km(lonlat, lonlat.roll(1, dims=0))
    # four distances: the mean of the middle two, as numpy.median (not
    # torch.median's lower one)
    assert metrics['median_km'].item() == pytest.approx(
        float(np.median(distances.numpy())), rel=1e-6
    )


# ---------------------------------------------------------------- k-means
def test_spherical_kmeans() -> None:
    g = torch.Generator().manual_seed(0)
    # two clusters, one straddling the antimeridian
    east = torch.stack(
        [179 + torch.rand(20, generator=g), torch.rand(20, generator=g)], 1
    )
    west = torch.stack(
        [-180 + torch.rand(20, generator=g), torch.rand(20, generator=g)], 1
    )
    far = torch.stack(
        [torch.rand(40, generator=g), 45 + torch.rand(40, generator=g)], 1
    )
    points = torch.cat([east, west, far])
    centroids = spherical_kmeans(points, 2, seed=0)
    labels = nearest_centroid(points, centroids)
    assert len(set(labels[:40].tolist())) == 1
    assert len(set(labels[40:].tolist())) == 1
    assert labels[0] != labels[-1]
    assert torch.equal(centroids, spherical_kmeans(points, 2, seed=0))
    assert torch.allclose(centroids.norm(dim=1), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match='k must be'):
        spherical_kmeans(points[:2], 3)


def test_geo_head_fitted_on_training_locations(tmp_path: Path) -> None:
    task = tiny_task(geo_classes=3, geo_loss_weight=0.5)
    trainer(tmp_path, max_steps=1, limit_val_batches=0).fit(task, quiet_datamodule())
    assert torch.allclose(
        task.geo_centroids.norm(dim=1), torch.ones(3, dtype=torch.float64)
    )
    _, metrics = task.compute_loss(fixed_batch())
    assert 'geo_loss' in metrics


class PointsDataModule(S2100KDataModule):
    """Declares training points that are not those of its train_dataset."""

    POINTS = torch.tensor(
        [[10.0, 10.0], [11.0, 10.0], [10.0, 11.0], [-100.0, -40.0], [-101.0, -41.0]],
        dtype=torch.float64,
    )

    def train_points(self) -> torch.Tensor:
        return self.POINTS


def test_geo_pretext_gets_points_from_train_points(tmp_path: Path) -> None:
    """The k-means reads the declared train_points(), not train_dataset."""
    task = tiny_task(geo_classes=2, geo_loss_weight=0.5)
    dm = PointsDataModule(
        batch_size=2,
        crop_size=None,
        flips=False,
        blur=False,
        jitter=0.0,
        root=str(DATA),
        patch_size=32,
    )
    trainer(tmp_path, max_steps=1, limit_val_batches=0).fit(task, dm)
    expected = spherical_kmeans(PointsDataModule.POINTS, 2, seed=0)
    torch.testing.assert_close(task.geo_centroids, expected)
    # and S2100KDataModule declares its training split's points
    quiet = quiet_datamodule()
    quiet.setup('fit')
    points = quiet.train_points()
    assert points.dtype == torch.float64
    assert points.shape == (len(quiet.train_dataset), 2)  # type: ignore[arg-type]
    first = quiet.train_dataset[0]['point']  # type: ignore[index]
    torch.testing.assert_close(points[0], first.double())


def test_geo_pretext_without_points_names_the_fix(tmp_path: Path) -> None:
    task = tiny_task(geo_classes=2, geo_loss_weight=0.5)
    dm = quiet_datamodule()
    dm.setup('fit')
    loader = DataLoader(dm.train_dataset, batch_size=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r'train_points\(\)'):
        trainer(tmp_path, max_steps=1).fit(task, train_dataloaders=loader)
    # the explicit path without a datamodule
    task.fit_geo_centroids(PointsDataModule.POINTS)
    torch.testing.assert_close(
        task.geo_centroids, spherical_kmeans(PointsDataModule.POINTS, 2, seed=0)
    )
    with pytest.raises(ValueError, match=r'\(N, 2\)'):
        task.fit_geo_centroids(torch.zeros(4, 3))
    with pytest.raises(ValueError, match='geo_classes'):
        tiny_task().fit_geo_centroids(PointsDataModule.POINTS)


def test_geo_pretext_never_fitted_is_refused_in_validation(tmp_path: Path) -> None:
    """The k-means is fitted when fitting: a fresh task run through validate or
    test kept its all-zero centres, so every geo target was class 0 and the
    geo loss was measured against it in silence. A fitted task's centres,
    restored from its checkpoint (after setup), are used as they are."""
    task = tiny_task(geo_classes=2, geo_loss_weight=0.5)
    with pytest.raises(ValueError, match=r'geo_classes .*never fitted.*ckpt_path'):
        trainer(tmp_path).validate(task, quiet_datamodule())
    fitted = tiny_task(geo_classes=2, geo_loss_weight=0.5)
    fit = trainer(tmp_path / 'fit', max_steps=1, limit_val_batches=0)
    fit.fit(fitted, quiet_datamodule())
    checkpoint = tmp_path / 'fitted.ckpt'
    fit.save_checkpoint(checkpoint)
    fresh = tiny_task(geo_classes=2, geo_loss_weight=0.5)
    halves = quiet_datamodule()
    halves.val_split_pct = 0.5  # batches of two: a batch of one is skipped
    (metrics,) = trainer(tmp_path / 'again').validate(
        fresh, halves, ckpt_path=str(checkpoint)
    )
    assert 'val_geo_loss' in metrics
    torch.testing.assert_close(fresh.geo_centroids, fitted.geo_centroids)


def test_invalid_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='geo_classes'):
        tiny_task(geo_loss_weight=1.0)
    with pytest.raises(ValueError, match='temperature'):
        tiny_task(temperature=0.0)
    with pytest.raises(ValueError, match='location_dtype'):
        tiny_task(location_dtype='float16')
    path = export_official_checkpoint(tiny_task(), tmp_path / 'official.ckpt')
    with pytest.raises(ValueError, match='embed_dim'):
        tiny_task(location_weights=str(path), embed_dim=6)


# -------------------------------------------------------------- optimiser
def test_optimizer_groups() -> None:
    task = tiny_task(freeze_backbone=True)
    optimizer = task.configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW)
    decay, no_decay = optimizer.param_groups
    assert decay['weight_decay'] == 0.01
    assert no_decay['weight_decay'] == 0.0
    assert all(p.ndim >= 2 for p in decay['params'])
    assert any(p is task.logit_scale for p in no_decay['params'])
    backbone = {id(p) for p in task.model.parameters()}
    trained = {id(p) for group in optimizer.param_groups for p in group['params']}
    assert not backbone & trained
    assert id(task.projection.weight) in trained
    assert optimizer.defaults['lr'] == 1e-4


def test_warmup_cosine_schedule(tmp_path: Path) -> None:
    task = tiny_task(scheduler='cosine', warmup_steps=2, min_lr=1e-5)
    lrs: list[float] = []

    class Record(Callback):
        def on_train_batch_start(self, trainer: Trainer, *args: Any) -> None:
            lrs.append(trainer.optimizers[0].param_groups[0]['lr'])

    trainer(tmp_path, max_steps=6, limit_val_batches=0, callbacks=[Record()]).fit(
        task, quiet_datamodule()
    )
    assert lrs[0] == pytest.approx(0.5e-4)
    assert lrs[1] == pytest.approx(1e-4)
    assert lrs[2] == pytest.approx(1e-4)  # cosine starts after the warmup
    assert lrs[3] < lrs[2]
    assert lrs[-1] < lrs[3]
    assert min(lrs) >= 1e-5


def test_frozen_backbone_stays_in_eval_mode() -> None:
    task = tiny_task(freeze_backbone=True)
    task.train()
    assert not task.model.training
    assert task.location_encoder.training
    assert not any(p.requires_grad for p in task.model.parameters())
    unfrozen = tiny_task().train()
    assert unfrozen.model.training


# ---------------------------------------------------------------- weights
class FakeWeights(WeightsEnum):  # type: ignore[misc]
    TINY = Weights(url='file:///nonexistent.pth', transforms=None, meta={})


def test_weights_enum_and_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = TinyNet(13)
    state = source.state_dict()
    monkeypatch.setattr(
        FakeWeights.TINY, 'get_state_dict', lambda *a, **k: dict(state), raising=False
    )
    task = tiny_task(weights=FakeWeights.TINY)
    for key, value in state.items():
        assert torch.equal(task.model.state_dict()[key], value)

    path = tmp_path / 'satclip.ckpt'
    t = trainer(tmp_path, max_steps=1, limit_val_batches=0)
    t.fit(tiny_task(), quiet_datamodule())
    t.save_checkpoint(path)
    trained = t.lightning_module
    assert isinstance(trained, SatCLIPTask)
    from_ckpt = tiny_task(weights=str(path))
    for key, value in trained.model.state_dict().items():
        assert torch.equal(from_ckpt.model.state_dict()[key], value)


def test_weights_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchgeo.models

    state = TinyNet(13).state_dict()
    calls: list[str] = []

    class Named:
        def get_state_dict(self, progress: bool = True) -> dict[str, torch.Tensor]:
            return dict(state)

    def get_weight(name: str) -> Named:
        calls.append(name)
        return Named()

    monkeypatch.setattr(torchgeo.models, 'get_weight', get_weight)
    task = tiny_task(weights='ResNet18_Weights.SENTINEL2_ALL_MOCO')
    assert calls == ['ResNet18_Weights.SENTINEL2_ALL_MOCO']
    assert torch.equal(
        task.model.state_dict()['features.0.weight'], state['features.0.weight']
    )


def test_location_weights_override_architecture(tmp_path: Path) -> None:
    source = tiny_task(legendre_polys=3, capacity=12)
    path = export_official_checkpoint(source, tmp_path / 'official.ckpt')
    task = tiny_task(location_weights=str(path))
    assert task.hparams['legendre_polys'] == 3
    assert task.hparams['capacity'] == 12
    points = fixed_batch()['point']
    source.eval(), task.eval()
    assert torch.allclose(
        task.encode_location(points), source.encode_location(points), atol=1e-6
    )


# ----------------------------------------------------- checkpoints and export
def fit_and_checkpoint(tmp_path: Path, **kwargs: Any) -> tuple[SatCLIPTask, Path]:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / 'ckpt', save_last=True)
    t = trainer(tmp_path, max_steps=2, limit_val_batches=0, callbacks=[checkpoint])
    task = tiny_task(**kwargs)
    t.fit(task, quiet_datamodule())
    return task, Path(checkpoint.last_model_path)


@pytest.mark.parametrize(
    'kwargs',
    [
        {},
        {
            'positional_encoding': 'rff',
            'location_network': 'mlp',
            'positional_encoding_kwargs': {'encoded_size': 4, 'sigmas': [1.0, 16.0]},
        },
        {
            'positional_encoding': 'spherec',
            'location_network': 'fcnet',
            'positional_encoding_kwargs': {'frequency_num': 4},
        },
    ],
    ids=['sh-siren', 'rff-mlp', 'spherec-fcnet'],
)
def test_task_checkpoint_loads_as_location_encoder(
    tmp_path: Path, kwargs: dict[str, Any]
) -> None:
    task, path = fit_and_checkpoint(tmp_path, **kwargs)
    encoder = load_location_encoder(path, dtype=torch.float32)
    points = fixed_batch()['point']
    task.eval()
    assert torch.allclose(encoder(points), task.encode_location(points), atol=1e-5)


def test_export_official_checkpoint(tmp_path: Path) -> None:
    task, path = fit_and_checkpoint(tmp_path)
    for source in (task, path):
        out = export_official_checkpoint(source, tmp_path / 'official.ckpt')
        checkpoint = torch.load(out, weights_only=True)
        state, hparams = checkpoint['state_dict'], checkpoint['hyper_parameters']
        assert torch.equal(
            state['model.visual.fc.weight'], task.projection.weight.detach()
        )
        assert torch.equal(
            state['model.visual.features.0.weight'],
            cast(nn.Conv2d, cast(TinyNet, task.model).features[0]).weight.detach(),
        )
        assert state['model.logit_scale'].item() == pytest.approx(
            task.logit_scale.item()
        )
        assert state['model.location.nnet.layers.0.weight'].dtype == torch.float64
        assert torch.equal(
            state['model.nnet.last_layer.weight'],
            state['model.location.nnet.last_layer.weight'],
        )
        assert hparams['le_type'] == 'sphericalharmonics'
        assert hparams['pe_type'] == 'siren'
        assert hparams['legendre_polys'] == 4
        assert hparams['embed_dim'] == 8
        assert hparams['vision_layers'] == 'moco_resnet18'
        assert hparams['in_channels'] == 13
        assert hparams['learning_rate'] == 1e-4
        encoder = load_location_encoder(out, dtype=torch.float32)
        points = fixed_batch()['point']
        task.eval()
        assert torch.allclose(encoder(points), task.encode_location(points), atol=1e-5)
        # and the exported file initialises a new task's image encoder
        again = tiny_task(weights=str(out))
        assert torch.equal(
            again.model.state_dict()['features.0.weight'],
            task.model.state_dict()['features.0.weight'],
        )


def test_export_rejects_other_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / 'other.ckpt'
    torch.save({'state_dict': {'x': torch.zeros(1)}, 'hyper_parameters': {}}, path)
    with pytest.raises(ValueError, match='not a SatCLIPTask checkpoint'):
        export_official_checkpoint(path, tmp_path / 'out.ckpt')


def test_resume_continues_at_same_step_with_same_loss(tmp_path: Path) -> None:
    probe = fixed_batch()
    records: list[tuple[int, float, float]] = []

    class Record(Callback):
        def on_train_batch_start(
            self, trainer: Trainer, pl_module: LightningModule, *args: Any
        ) -> None:
            assert isinstance(pl_module, SatCLIPTask)
            was_training = pl_module.training
            pl_module.eval()
            with torch.no_grad():
                loss = pl_module.compute_loss(probe)[0].item()
            pl_module.train(was_training)
            state = trainer.optimizers[0].state
            moment = sum(float(s['exp_avg'].abs().sum()) for s in state.values())
            records.append((trainer.global_step, loss, moment))

    # uninterrupted: 4 steps
    torch.manual_seed(0)
    t = trainer(tmp_path / 'a', max_steps=4, limit_val_batches=0, callbacks=[Record()])
    t.fit(tiny_task(), quiet_datamodule())
    full = list(records)
    # interrupted after 2 steps, then resumed
    records.clear()
    torch.manual_seed(0)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / 'b', save_last=True)
    t = trainer(
        tmp_path / 'b',
        max_steps=2,
        limit_val_batches=0,
        callbacks=[Record(), checkpoint],
    )
    t.fit(tiny_task(), quiet_datamodule())
    records.clear()
    t = trainer(tmp_path / 'c', max_steps=4, limit_val_batches=0, callbacks=[Record()])
    t.fit(tiny_task(), quiet_datamodule(), ckpt_path=checkpoint.last_model_path)
    resumed = records[0]
    assert resumed[0] == 2 == full[2][0]
    assert resumed[1] == pytest.approx(full[2][1], rel=1e-6)
    assert resumed[2] == pytest.approx(full[2][2], rel=1e-6)
    assert t.global_step == 4


def test_predict_step(tmp_path: Path) -> None:
    task = tiny_task()
    dm = quiet_datamodule()
    outputs = trainer(tmp_path).predict(task, dm)
    assert outputs is not None
    first = outputs[0]
    assert isinstance(first, dict)
    assert first['location_embedding'].shape == (2, 8)
    assert first['image_embedding'].shape == (2, 8)
    points_only = task.predict_step({'point': fixed_batch()['point']}, 0)
    assert set(points_only) == {'point', 'location_embedding'}


def test_forward() -> None:
    batch = fixed_batch()
    img, loc = tiny_task()(batch['image'], batch['point'])
    assert img.shape == loc.shape == (6, 8)
    with pytest.raises(KeyError, match='image'):
        tiny_task().encode_image({})


@pytest.mark.parametrize('model', ['mobilenetv3_small_050', 'resnet18'])
def test_projection_fits_timm_pooled_features(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MobileNetV3 pools to head_hidden_size (1024), not num_features (288)."""
    monkeypatch.undo()  # a real timm model, not the tiny_timm stand-in
    task = SatCLIPTask(
        model=model, in_channels=13, embed_dim=8, legendre_polys=2, capacity=8
    ).eval()
    images = torch.rand(2, 13, 32, 32)
    lonlat = torch.tensor([[0.0, 0.0], [10.0, 20.0]])
    with torch.no_grad():
        image_emb, location_emb = task(images, lonlat)
    assert image_emb.shape == (2, 8)
    assert location_emb.shape == (2, 8)


# ------------------------------------------------------- GPU-ready recipes
@pytest.mark.parametrize('location_dtype', ['float32', 'float64'])
def test_bf16_mixed_keeps_location_dtype(tmp_path: Path, location_dtype: str) -> None:
    """Under bf16-mixed the image side runs in bf16, the location side does not."""
    seen: dict[str, torch.dtype] = {}

    def remember(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            seen[name] = output.dtype

        return hook

    task = tiny_task(location_dtype=location_dtype, channels_last=True)
    task.location_encoder.register_forward_hook(remember('location'))
    task.model.register_forward_hook(remember('image'))
    t = trainer(tmp_path, precision='bf16-mixed', fast_dev_run=1)
    t.fit(task, quiet_datamodule())
    assert seen['image'] == torch.bfloat16
    assert seen['location'] == getattr(torch, location_dtype)
    params = {p.dtype for p in task.location_encoder.parameters()}
    assert params == {getattr(torch, location_dtype)}
    # the same location embedding as outside autocast, to the last bit
    points = fixed_batch()['point']
    plain = task.encode_location(points)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        mixed = task.encode_location(points)
    assert mixed.dtype == torch.float32
    assert torch.equal(plain, mixed)


def test_channels_last(tmp_path: Path) -> None:
    task = tiny_task(channels_last=True)
    conv = cast(nn.Conv2d, cast(TinyNet, task.model).features[0])
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    inputs: list[torch.Tensor] = []
    conv.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    batch = fixed_batch()
    features = task.image_features(batch['image'])
    assert inputs[0].is_contiguous(memory_format=torch.channels_last)
    reference = tiny_task()
    reference.load_state_dict(task.state_dict())
    assert torch.allclose(features, reference.image_features(batch['image']), atol=1e-6)


def test_compile_image_encoder_keeps_checkpoint_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiled: list[nn.Module] = []
    monkeypatch.setattr(
        nn.Module, 'compile', lambda self, *a, **k: compiled.append(self)
    )
    task = tiny_task(compile_image_encoder=True)
    assert compiled == [task.model]
    assert set(task.state_dict()) == set(tiny_task().state_dict())


def test_compile_image_encoder_runs(tmp_path: Path) -> None:
    """A real torch.compile (inductor) of the tiny backbone gives the same features."""
    torch._dynamo.reset()
    task = tiny_task(compile_image_encoder=True)
    reference = tiny_task()
    reference.load_state_dict(task.state_dict())
    image = fixed_batch()['image']
    with torch._dynamo.config.patch(suppress_errors=False):
        out = task.image_features(image)
    assert torch.allclose(out, reference.image_features(image), atol=1e-6)


GPU_RECIPES = [
    'satclip_resnet18_l10',
    'satclip_resnet18_l10_ddp',
    'satclip_resnet50_l40',
    'satclip_vit16_l40',
    'geoclip_resnet18_rff',
]


#: Every config in configs/, whatever its task: docs/training.md promises
#: each of them resumes with `--ckpt_path last`.
ALL_CONFIGS = sorted(CONFIGS.glob('*.yaml'), key=lambda p: p.name)


def recipe_checkpoint(config: Path) -> dict[str, Any]:
    """The ``init_args`` of the one ``ModelCheckpoint`` of a config."""
    import yaml

    trainer_config = (
        yaml.safe_load(config.read_text(encoding='utf-8')).get('trainer') or {}
    )
    checkpoints = [
        c.get('init_args', {})
        for c in trainer_config.get('callbacks') or []
        if c['class_path'] == 'lightning.pytorch.callbacks.ModelCheckpoint'
    ]
    assert len(checkpoints) == 1, f'{config}: {len(checkpoints)} ModelCheckpoints'
    return dict(checkpoints[0])


def test_every_config_is_checked_for_its_last_checkpoint() -> None:
    names = {p.stem for p in ALL_CONFIGS}
    assert {p.stem for p in RECIPES} <= names
    assert {'air_temperature_location', 'eurosat_location'} <= names


@pytest.mark.parametrize('config', ALL_CONFIGS, ids=lambda p: p.stem)
def test_recipe_saves_last_checkpoint(config: Path) -> None:
    checkpoint = recipe_checkpoint(config)
    assert checkpoint.get('save_last') is True, config
    # a fixed folder: `--ckpt_path last` finds it from a new run
    assert checkpoint.get('dirpath'), config
    # the task logs val_loss; a checkpoint that monitors something watches it
    assert checkpoint.get('monitor') in (None, 'val_loss'), config


def test_which_recipes_keep_the_best_checkpoint() -> None:
    """As docs/training.md says: all but the GASSL ones and the demo keep
    the checkpoint of the lowest ``val_loss`` beside ``last.ckpt``."""
    last_only = {
        p.stem
        for p in ALL_CONFIGS
        if recipe_checkpoint(p).get('monitor') is None
        or recipe_checkpoint(p).get('save_top_k', 1) == 0
    }
    assert last_only == {p.stem for p in ALL_CONFIGS if p.stem.startswith('gassl_')} | {
        'satclip_demo'
    }
    text = ' '.join((CONFIGS.parent / 'docs' / 'training.md').read_text().split())
    assert 'but the GASSL ones and `satclip_demo.yaml`' in text


def test_recipes_keep_their_checkpoints_apart() -> None:
    folders = [recipe_checkpoint(p)['dirpath'] for p in ALL_CONFIGS]
    assert len(set(folders)) == len(folders)  # no two recipes resume each other


@pytest.mark.parametrize('name', GPU_RECIPES)
def test_gpu_recipes_are_mixed_precision(name: str) -> None:
    import yaml

    config = yaml.safe_load((CONFIGS / f'{name}.yaml').read_text())
    assert config['trainer']['precision'] == 'bf16-mixed'
    args = config['model']['init_args']
    assert args['channels_last'] is True
    assert args['compile_image_encoder'] is False


def test_resume_from_last_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`torchgeo fit --config <recipe> --ckpt_path last` picks up where it stopped."""
    config = (CONFIGS / 'satclip_resnet18_l10.yaml').resolve()
    data = DATA.resolve()
    monkeypatch.chdir(tmp_path)
    last = tmp_path / 'checkpoints' / 'satclip_resnet18_l10' / 'last.ckpt'

    def fit(max_epochs: int, *extra: str) -> None:
        main(
            [
                *tiny_fit_args(config, data),
                '--data.init_args.val_split_pct',
                '0.25',
                '--trainer.precision',
                '32-true',
                '--trainer.accelerator',
                'cpu',
                '--trainer.accumulate_grad_batches',
                '1',
                '--trainer.max_epochs',
                str(max_epochs),
                '--trainer.logger',
                'false',
                '--trainer.enable_progress_bar',
                'false',
                *extra,
            ]
        )

    fit(1)  # 6 training samples in batches of 2: 3 steps per epoch
    first = torch.load(last, weights_only=True, map_location='cpu')
    assert first['global_step'] == 3
    with caplog.at_level('INFO'):
        fit(1, '--ckpt_path', 'last')  # already done: nothing is trained
    assert f'Restoring states from the checkpoint path at {last}' in caplog.text
    again = torch.load(last, weights_only=True, map_location='cpu')
    assert again['global_step'] == 3
    for key, value in first['state_dict'].items():
        assert torch.equal(value, again['state_dict'][key]), key
    fit(2, '--ckpt_path', 'last')
    assert torch.load(last, weights_only=True, map_location='cpu')['global_step'] == 6
