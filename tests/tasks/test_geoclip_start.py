"""SatCLIPTask starting from GeoCLIP's pretrained location encoder."""

from pathlib import Path
from typing import Any, cast

import pytest
import torch
import yaml
from lightning.pytorch import Trainer

from torchgeo_satclip.models import (
    MultiScaleMLP,
    RandomFourierFeatures,
    load_location_encoder,
)
from torchgeo_satclip.tasks import SatCLIPTask

from .test_satclip import CONFIGS, quiet_datamodule

CONFIG = CONFIGS / 'geoclip_resnet18_pretrained.yaml'
POINTS = torch.tensor(
    [[2.35, 48.86], [-74.0, 40.7], [151.2, -33.9], [180.0, 90.0], [-180.0, -90.0]]
)

pytestmark = pytest.mark.usefixtures('geoclip_available', 'tiny_timm')


def geoclip_task(**overrides: Any) -> SatCLIPTask:
    args = dict(yaml.safe_load(CONFIG.read_text())['model']['init_args'])
    args.update(weights=None, **overrides)
    return SatCLIPTask(**args)


def embed(encoder: torch.nn.Module) -> torch.Tensor:
    encoder.eval()
    with torch.no_grad():
        out: torch.Tensor = encoder(POINTS)
    return out


def test_config_starts_from_geoclip() -> None:
    task = geoclip_task()
    encoder = task.location_encoder
    assert isinstance(encoder.nnet, MultiScaleMLP)
    assert isinstance(encoder.posenc, RandomFourierFeatures)
    assert encoder.dtype == torch.float32
    expected = embed(load_location_encoder('geoclip', dtype=torch.float32))
    torch.testing.assert_close(embed(encoder), expected, rtol=0, atol=0)


def test_loaded_architecture_wins_and_is_recorded() -> None:
    """Arguments that disagree with the weights are replaced by the weights' own."""
    task = geoclip_task(
        location_network='siren',
        num_hidden_layers=2,
        capacity=512,
        positional_encoding='sphericalharmonics',
        positional_encoding_kwargs=None,
    )
    hp = task.hparams
    assert hp['positional_encoding'] == 'rff'
    assert hp['location_network'] == 'geoclip'
    assert hp['capacity'] == 1024
    assert hp['num_hidden_layers'] == 3
    assert hp['positional_encoding_kwargs']['sigmas'] == [1.0, 16.0, 256.0]
    assert hp['positional_encoding_kwargs']['encoded_size'] == 256
    expected = embed(load_location_encoder('geoclip', dtype=torch.float32))
    torch.testing.assert_close(embed(task.location_encoder), expected, rtol=0, atol=0)


def test_embed_dim_must_match() -> None:
    with pytest.raises(
        ValueError, match='embeds to 512 dimensions but embed_dim is 256'
    ):
        geoclip_task(embed_dim=256)


def test_checkpoint_keeps_geoclip_frequencies(tmp_path: Path) -> None:
    """After training, the task and the loader rebuild GeoCLIP's own matrices."""
    task = geoclip_task(lr=1e-3)
    before = cast(torch.Tensor, task.location_encoder.posenc.b).clone()
    trainer = Trainer(
        accelerator='cpu',
        default_root_dir=str(tmp_path),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        max_steps=1,
        limit_val_batches=0,
    )
    trainer.fit(task, datamodule=quiet_datamodule())
    path = tmp_path / 'geoclip.ckpt'
    trainer.save_checkpoint(path)
    trained = embed(task.location_encoder)
    # The seeded matrices of a new 'rff' encoding are not GeoCLIP's.
    assert not torch.equal(RandomFourierFeatures().b.float(), before)

    reloaded = SatCLIPTask.load_from_checkpoint(path, map_location='cpu')
    torch.testing.assert_close(reloaded.location_encoder.posenc.b, before)
    torch.testing.assert_close(embed(reloaded.location_encoder), trained)

    encoder = load_location_encoder(path, dtype=torch.float32)
    torch.testing.assert_close(encoder.posenc.b, before)
    torch.testing.assert_close(embed(encoder), trained)
    start = embed(load_location_encoder('geoclip', dtype=torch.float32))
    assert not torch.allclose(trained, start)  # the step did train it
