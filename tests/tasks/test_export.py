"""Exported checkpoints open in the readers of other tools (issue 16).

The readers below are written here, from what those tools read (spec sections
4 and 5), not imported: ``rangegeo.satclip.load.load_satclip_location_encoder``
(ten ``hyper_parameters`` keys and ``model.location.*``) and the official
``satclip/load.py`` ``get_satclip`` (pops three keys, then builds
``SatCLIPLightningModule(**hyper_parameters)`` and loads the state dict
strictly). Every recipe config under ``configs/`` is exported with tiny
stand-in image backbones, so nothing is downloaded.
"""

import copy
from pathlib import Path
from typing import Any

import pytest
import timm
import torch
import yaml
from torch import nn

from torchgeo_satclip.models import (
    CheckpointError,
    LocationEncoder,
    build_location_encoder,
    load_location_encoder,
)
from torchgeo_satclip.tasks import SatCLIPTask, export_official_checkpoint

from ..satclip_spec import OFFICIAL_ARGUMENTS, OFFICIAL_POPPED
from ..tiny_timm import TinyNet
from .test_satclip import CONFIGS, RECIPES

#: Recipes whose image encoder the official code builds: a full export.
FULL = {
    'satclip_resnet18_l10',
    'satclip_resnet18_l10_cached',
    'satclip_resnet18_l10_ddp',
    'satclip_resnet50_l40',
    'satclip_vit16_l40',
    # CLIP + temporal MoCo + geo: the momentum encoder (moco.*) stays out
    'satclip_gassl_hybrid',
}
#: Recipes with an image encoder the official code cannot build: location-only.
LOCATION_ONLY = {'satclip_demo'}
#: Recipes with a location encoder neither the official code nor RANGE builds.
REFUSED = {'geoclip_resnet18_rff', 'geoclip_resnet18_pretrained'}

#: The official image encoders: timm model and classifier (spec section 5).
OFFICIAL_VISION = {
    'moco_resnet18': ('resnet18', 'fc'),
    'moco_resnet50': ('resnet50', 'fc'),
    'moco_vit16': ('vit_small_patch16_224', 'head'),
}

POINTS = torch.tensor(
    [[2.35, 48.86], [-74.0, 40.71], [151.2, -33.9], [0.0, 90.0], [-180.0, -90.0]],
    dtype=torch.float64,
)


class StandIn(TinyNet):
    """:class:`~tests.tiny_timm.TinyNet` with the classifier name of the real model."""

    def __init__(self, name: str, in_chans: int, num_classes: int) -> None:
        super().__init__(in_chans)
        del self.fc
        self.classifier_name = 'head' if 'vit' in name else 'fc'
        head = nn.Linear(4, num_classes) if num_classes else nn.Identity()
        setattr(self, self.classifier_name, head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head: nn.Module = getattr(self, self.classifier_name)
        return head(self.features(x))  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def stand_in_timm(monkeypatch: pytest.MonkeyPatch) -> None:
    def create_model(name: str, **kwargs: Any) -> nn.Module:
        return StandIn(name, kwargs.get('in_chans', 3), kwargs.get('num_classes', 0))

    monkeypatch.setattr(timm, 'create_model', create_model)


def recipe_task(config: Path, **overrides: Any) -> SatCLIPTask:
    args = dict(
        yaml.safe_load(config.read_text(encoding='utf-8'))['model']['init_args']
    )
    args.update(weights=None, **overrides)  # nothing downloaded
    torch.manual_seed(0)
    task = SatCLIPTask(**args)
    task.eval()
    return task


def export(config: Path, tmp_path: Path) -> tuple[SatCLIPTask, Path]:
    task = recipe_task(config)
    path = tmp_path / 'official.ckpt'
    if config.stem in LOCATION_ONLY:
        return task, export_official_checkpoint(task, path, location_only=True)
    return task, export_official_checkpoint(task, path)


def range_reader(path: Path) -> LocationEncoder:
    """RANGE's location-only read: ten hparams and ``model.location.*``, strict."""
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    hp = checkpoint['hyper_parameters']
    le_type, legendre_polys, harmonics, min_radius, max_radius, frequency_num = (
        hp['le_type'],
        hp['legendre_polys'],
        hp['harmonics_calculation'],
        hp['min_radius'],
        hp['max_radius'],
        hp['frequency_num'],
    )
    pe_type, embed_dim, capacity, num_hidden_layers = (
        hp['pe_type'],
        hp['embed_dim'],
        hp['capacity'],
        hp['num_hidden_layers'],
    )
    assert harmonics == 'analytic'
    radii: dict[str, Any] = {}
    if le_type != 'sphericalharmonics':
        radii = {
            'frequency_num': frequency_num,
            'min_radius': min_radius,
            'max_radius': max_radius,
        }
    encoder = build_location_encoder(
        positional_encoding=le_type,
        network=pe_type,
        legendre_polys=legendre_polys,
        embed_dim=embed_dim,
        capacity=capacity,
        num_hidden_layers=num_hidden_layers,
        dtype=torch.float64,
        **radii,
    )
    prefix = 'model.location.'
    state = {
        key[len(prefix) :]: value
        for key, value in checkpoint['state_dict'].items()
        if key.startswith(prefix)
    }
    encoder.load_state_dict(state, strict=True)
    return encoder.eval()


def official_reader(path: Path) -> dict[str, Any]:
    """The official full load, up to the model: hparams and state-dict keys.

    Returns:
        The constructor arguments, after the three keys are popped.
    """
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    hp = dict(checkpoint['hyper_parameters'])
    for key in OFFICIAL_POPPED:
        hp.pop(key)
    if hp['vision_layers'] not in OFFICIAL_VISION:
        pytest.fail(f'vision_layers={hp["vision_layers"]!r} is not an official name')
    assert set(hp) == OFFICIAL_ARGUMENTS
    keys = set(checkpoint['state_dict'])
    for prefix in ('model.location.nnet.', 'model.nnet.', 'model.visual.'):
        assert any(key.startswith(prefix) for key in keys), prefix
    assert 'model.logit_scale' in keys
    location = {k for k in keys if k.startswith('model.location.nnet.')}
    assert {'model.nnet.' + k[len('model.location.nnet.') :] for k in location} == {
        k for k in keys if k.startswith('model.nnet.')
    }
    return hp


def recipes(*names: set[str]) -> list[Path]:
    return [p for p in RECIPES if any(p.stem in group for group in names)]


@pytest.mark.parametrize('config', recipes(FULL, LOCATION_ONLY), ids=lambda p: p.stem)
def test_range_reader_loads_export(config: Path, tmp_path: Path) -> None:
    task, path = export(config, tmp_path)
    encoder = range_reader(path)
    reference = copy.deepcopy(task.location_encoder).double().eval()
    with torch.no_grad():
        torch.testing.assert_close(encoder(POINTS), reference(POINTS), rtol=0, atol=0)


@pytest.mark.parametrize('config', recipes(FULL), ids=lambda p: p.stem)
def test_official_reader_loads_export(config: Path, tmp_path: Path) -> None:
    task, path = export(config, tmp_path)
    hp = official_reader(path)
    timm_name, classifier = OFFICIAL_VISION[hp['vision_layers']]
    assert task.hparams['model'] == timm_name
    assert hp['in_channels'] == 13
    assert hp['embed_dim'] == task.hparams['embed_dim']
    # the official image encoder: timm's model with num_classes=embed_dim
    visual = timm.create_model(timm_name, in_chans=13, num_classes=hp['embed_dim'])
    prefix = 'model.visual.'
    state = torch.load(path, weights_only=True)['state_dict']
    visual.load_state_dict(
        {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)},
        strict=True,
    )
    assert f'{prefix}{classifier}.weight' in state
    images = torch.rand(3, 13, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(
            visual.eval()(images), task.encode_image({'image': images})
        )


@pytest.mark.parametrize('config', recipes(FULL, LOCATION_ONLY), ids=lambda p: p.stem)
def test_own_loader_reads_export(config: Path, tmp_path: Path) -> None:
    _, path = export(config, tmp_path)
    ours = load_location_encoder(path)
    assert ours.dtype == torch.float64
    with torch.no_grad():
        torch.testing.assert_close(
            ours(POINTS), range_reader(path)(POINTS), rtol=0, atol=1e-12
        )


def test_export_from_task_checkpoint_file(tmp_path: Path) -> None:
    task = recipe_task(CONFIGS / 'satclip_vit16_l40.yaml')
    source = tmp_path / 'task.ckpt'
    torch.save(
        {'state_dict': task.state_dict(), 'hyper_parameters': dict(task.hparams)},
        source,
    )
    path = export_official_checkpoint(source, tmp_path / 'official.ckpt')
    hp = official_reader(path)
    assert (hp['vision_layers'], hp['vision_patch_size']) == ('moco_vit16', 16)
    with torch.no_grad():
        torch.testing.assert_close(
            range_reader(path)(POINTS),
            task.location_encoder.double()(POINTS),
            rtol=0,
            atol=1e-12,
        )


def test_image_encoder_official_code_lacks_needs_location_only(
    tmp_path: Path,
) -> None:
    task = recipe_task(CONFIGS / 'satclip_demo.yaml')
    with pytest.raises(ValueError, match='mobilenetv3_small_050') as error:
        export_official_checkpoint(task, tmp_path / 'a.ckpt')
    assert 'location_only=True' in str(error.value)
    assert not (tmp_path / 'a.ckpt').exists()
    wrong_channels = recipe_task(CONFIGS / 'satclip_resnet18_l10.yaml', in_channels=4)
    with pytest.raises(ValueError, match='4 input channels'):
        export_official_checkpoint(wrong_channels, tmp_path / 'b.ckpt')

    path = export_official_checkpoint(task, tmp_path / 'c.ckpt', location_only=True)
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint['hyper_parameters']['location_only'] is True
    assert checkpoint['hyper_parameters']['vision_layers'] is None
    assert not any(k.startswith('model.visual.') for k in checkpoint['state_dict'])
    with pytest.raises(pytest.fail.Exception, match='not an official name'):
        official_reader(path)


@pytest.mark.parametrize('config', recipes(REFUSED), ids=lambda p: p.stem)
@pytest.mark.usefixtures('geoclip_available')
def test_location_encoder_official_code_lacks(config: Path, tmp_path: Path) -> None:
    # every recipe is in exactly one group, so none escapes these tests
    assert {p.stem for p in RECIPES} == FULL | LOCATION_ONLY | REFUSED
    task = recipe_task(config)
    for location_only in (False, True):
        with pytest.raises(ValueError, match="'rff' is not one the official"):
            export_official_checkpoint(
                task, tmp_path / 'g.ckpt', location_only=location_only
            )
    assert not (tmp_path / 'g.ckpt').exists()


def test_export_of_a_file_that_is_not_a_checkpoint_names_it(tmp_path: Path) -> None:
    """A text file failed with ``KeyError: 105``, a missing one with a bare
    ``FileNotFoundError``: the file is read as every checkpoint is."""
    text = tmp_path / 'notes.ckpt'
    text.write_text('hi')
    with pytest.raises(CheckpointError, match=r'notes\.ckpt is not a torch checkpoint'):
        export_official_checkpoint(text, tmp_path / 'out.ckpt')
    with pytest.raises(CheckpointError, match=r'not found: .*missing\.ckpt'):
        export_official_checkpoint(tmp_path / 'missing.ckpt', tmp_path / 'out.ckpt')
    assert not (tmp_path / 'out.ckpt').exists()


def test_export_of_a_checkpoint_with_clip_off_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GASSL checkpoint (clip_loss_weight: 0) is a SatCLIPTask checkpoint:
    it was refused as 'not a SatCLIPTask checkpoint'."""
    monkeypatch.setattr(timm, 'create_model', lambda *a, **k: TinyNet(13))
    task = SatCLIPTask(
        clip_loss_weight=0.0, moco_loss_weight=1.0, moco_queue_size=8, moco_dim=4
    )
    source = tmp_path / 'gassl.ckpt'
    torch.save(
        {'state_dict': task.state_dict(), 'hyper_parameters': dict(task.hparams)},
        source,
    )
    with pytest.raises(CheckpointError, match=r'gassl\.ckpt.*CLIP part, which is off'):
        export_official_checkpoint(source, tmp_path / 'out.ckpt')
