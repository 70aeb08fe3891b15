"""The dropout of a loaded location encoder (``load_location_encoder(dropout=)``).

A checkpoint records no dropout: the loader builds the network with the
dropout asked for (None: the network's default), where that network has
dropout, and changes no weight.
"""

import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from torchgeo_satclip.models import (
    LocationEncoder,
    SatCLIPWeights,
    SirenLayer,
    build_location_encoder,
    load_location_encoder,
    satclip_location_encoder,
)

from ..geoclip_weights import random_geoclip_state
from .test_weights import POINTS, official_checkpoint


def dropouts(module: nn.Module) -> dict[str, float]:
    """Every dropout probability of a module, by the submodule's name."""
    found: dict[str, float] = {}
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Dropout):
            found[name] = float(sub.p)
        elif isinstance(sub, SirenLayer):
            found[name] = float(sub.dropout)
    return found


def embed(encoder: LocationEncoder, train: bool = False) -> torch.Tensor:
    """Embed POINTS in eval (default) or training mode, without gradients."""
    encoder.train(train)
    with torch.no_grad():
        out: torch.Tensor = encoder(POINTS.to(encoder.dtype))
    encoder.eval()
    return out


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    """Same state dict, key for key, bit for bit."""
    left, right = a.state_dict(), b.state_dict()
    assert list(left) == list(right)
    for key, tensor in left.items():
        assert torch.equal(tensor, right[key]), key


def network_checkpoint(network: str) -> dict[str, Any]:
    """A SatCLIP-layout checkpoint of a small ``network`` (with its pe_type)."""
    torch.manual_seed(3)
    encoder = build_location_encoder(
        network=network, legendre_polys=3, capacity=8, embed_dim=4
    )
    return {
        'state_dict': {
            f'model.location.nnet.{key}': value
            for key, value in encoder.nnet.state_dict().items()
        },
        'hyper_parameters': {
            'le_type': 'sphericalharmonics',
            'pe_type': network,
            'legendre_polys': 3,
            'capacity': 8,
            'embed_dim': 4,
            'num_hidden_layers': 2,
        },
    }


# --------------------------------------------------------------------------
# SIREN (the released checkpoints): hidden sine layers, not the output layer
# --------------------------------------------------------------------------


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_official_checkpoint_with_dropout(tmp_path: Path, dtype: torch.dtype) -> None:
    path = tmp_path / 'satclip-resnet18-l10.ckpt'
    torch.save(official_checkpoint(), path)
    plain = load_location_encoder(path, dtype=dtype)
    encoder = load_location_encoder(path, dtype=dtype, dropout=0.2)
    assert dropouts(encoder) == {
        'nnet.layers.0': 0.2,
        'nnet.layers.1': 0.2,
        'nnet.last_layer': 0.0,
    }
    assert not encoder.training
    assert encoder.dtype == dtype
    assert_same_weights(encoder, plain)
    assert torch.equal(embed(encoder), embed(plain))
    # In training the dropout asked for acts: some activations are dropped.
    torch.manual_seed(0)
    assert not torch.equal(embed(encoder, train=True), embed(encoder))


def test_none_keeps_the_network_default(tmp_path: Path) -> None:
    """``dropout=None`` (the default) is the loader's old behaviour: 0.5."""
    path = tmp_path / 'a.ckpt'
    torch.save(official_checkpoint(), path)
    default = build_location_encoder(legendre_polys=10, capacity=32, embed_dim=16)
    expected = dropouts(default)
    assert set(expected.values()) == {0.5, 0.0}
    assert dropouts(load_location_encoder(path)) == expected
    assert dropouts(load_location_encoder(path, dropout=None)) == expected


def test_task_checkpoint_records_its_dropout(tmp_path: Path) -> None:
    """A checkpoint of this package's tasks records ``location_dropout``:
    ``dropout=None`` rebuilds it; an explicit value still wins."""
    checkpoint = official_checkpoint()
    checkpoint['hyper_parameters']['location_dropout'] = 0.1
    path = tmp_path / 'task.ckpt'
    torch.save(checkpoint, path)
    for source in (checkpoint, path):
        assert dropouts(load_location_encoder(source))['nnet.layers.0'] == 0.1
        encoder = load_location_encoder(source, dropout=0.3)
        assert dropouts(encoder)['nnet.layers.0'] == 0.3


@pytest.mark.parametrize('recorded', [1.0, -0.1, 'high', True])
def test_task_checkpoint_with_a_bad_recorded_dropout(recorded: Any) -> None:
    from torchgeo_satclip.models import CheckpointError

    checkpoint = official_checkpoint()
    checkpoint['hyper_parameters']['location_dropout'] = recorded
    with pytest.raises(
        CheckpointError, match=r"hyper_parameters\['location_dropout'\]"
    ):
        load_location_encoder(checkpoint)
    # An explicit dropout does not read the record.
    load_location_encoder(checkpoint, dropout=0.2)


def test_a_trained_task_checkpoint_loads_with_its_dropout(tmp_path: Path) -> None:
    from torchgeo_satclip.tasks import SatCLIPTask

    task = SatCLIPTask(
        model='resnet18',
        in_channels=13,
        embed_dim=8,
        legendre_polys=3,
        capacity=16,
        location_dropout=0.25,
    )
    path = tmp_path / 'task.ckpt'
    torch.save(
        {'state_dict': task.state_dict(), 'hyper_parameters': dict(task.hparams)}, path
    )
    encoder = load_location_encoder(path)
    assert set(dropouts(encoder).values()) == {0.25, 0.0}
    assert_same_weights(encoder.double(), task.location_encoder.double())


def test_zero_dropout_is_deterministic_in_training() -> None:
    encoder = load_location_encoder(official_checkpoint(), dropout=0.0)
    assert set(dropouts(encoder).values()) == {0.0}
    assert torch.equal(embed(encoder, train=True), embed(encoder))


def test_in_memory_checkpoint_and_state_dict() -> None:
    checkpoint = official_checkpoint()
    for source in (checkpoint, checkpoint['state_dict']):
        encoder = load_location_encoder(source, dropout=0.3)
        assert dropouts(encoder)['nnet.layers.0'] == 0.3
        assert_same_weights(encoder, load_location_encoder(source))


def test_weights_enum_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / 'src.ckpt'
    torch.save(
        official_checkpoint(legendre_polys=10, capacity=512, embed_dim=256), source
    )

    def fake_download(url: str, dst: str, progress: bool = True) -> None:
        shutil.copy(source, dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    # The default cache (by name, below) is a temporary hub dir, not the user's.
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    member = SatCLIPWeights.SATCLIP_RESNET18_L10
    encoder = load_location_encoder(member, root=tmp_path / 'cache', dropout=0.1)
    assert dropouts(encoder)['nnet.layers.1'] == 0.1
    again = satclip_location_encoder('SATCLIP_RESNET18_L10', dropout=0.1)
    assert dropouts(again) == dropouts(encoder)
    assert (tmp_path / 'hub' / 'checkpoints' / Path(member.url).name).is_file()


def test_loading_with_dropout_draws_the_same_random_numbers() -> None:
    """The dropout changes no initialisation: the seed stream moves alike."""
    checkpoint = official_checkpoint()
    torch.manual_seed(7)
    load_location_encoder(checkpoint)
    plain = torch.rand(3)
    torch.manual_seed(7)
    load_location_encoder(checkpoint, dropout=0.4)
    assert torch.equal(torch.rand(3), plain)


# --------------------------------------------------------------------------
# The other networks of the original code
# --------------------------------------------------------------------------


def test_fcnet_residual_blocks_get_the_dropout() -> None:
    checkpoint = network_checkpoint('fcnet')
    encoder = load_location_encoder(checkpoint, dropout=0.2)
    found = dropouts(encoder)
    assert found == {f'nnet.feats.{i}.block.2': 0.2 for i in range(2, 6)}
    plain = load_location_encoder(checkpoint)
    assert set(dropouts(plain).values()) == {0.5}
    assert_same_weights(encoder, plain)
    assert torch.equal(embed(encoder), embed(plain))


@pytest.mark.parametrize('network', ['mlp', 'linear'])
def test_networks_without_dropout_ignore_it(network: str) -> None:
    """As when building one: ``'mlp'`` and ``'linear'`` have no dropout layer."""
    checkpoint = network_checkpoint(network)
    encoder = load_location_encoder(checkpoint, dropout=0.3)
    assert dropouts(encoder) == {}
    plain = load_location_encoder(checkpoint)
    assert_same_weights(encoder, plain)
    assert torch.equal(embed(encoder, train=True), embed(plain))


# --------------------------------------------------------------------------
# GeoCLIP: its network has no dropout layer
# --------------------------------------------------------------------------


def test_geoclip_state_dict_and_file_ignore_dropout(tmp_path: Path) -> None:
    state = random_geoclip_state(8, 16, 4, 2, seed=4)
    path = tmp_path / 'location_encoder_weights.pth'
    torch.save(state, path)
    plain = load_location_encoder(state)
    for source in (state, path, str(path)):
        encoder = load_location_encoder(source, dropout=0.2)
        assert dropouts(encoder) == {}
        assert_same_weights(encoder, plain)
        assert torch.equal(embed(encoder, train=True), embed(plain))


@pytest.mark.usefixtures('geoclip_available')
def test_geoclip_by_name_ignores_dropout() -> None:
    plain = load_location_encoder('geoclip', dtype=torch.float32)
    encoder = satclip_location_encoder('geoclip', dtype=torch.float32, dropout=0.5)
    assert dropouts(encoder) == {}
    assert torch.equal(embed(encoder, train=True), embed(plain))


def test_geoclip_checks_the_value_too() -> None:
    state = random_geoclip_state(8, 16, 4, 2, seed=4)
    with pytest.raises(ValueError, match=r'dropout must be in \[0, 1\), got 1\.5'):
        load_location_encoder(state, dropout=1.5)


# --------------------------------------------------------------------------
# Invalid values
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('dropout', 'match'),
    [
        (True, r'dropout must be a real number, got True \(type bool\)'),
        ('0.2', r"dropout must be a real number, got '0\.2' \(type str\)"),
        (-0.1, r'dropout must be in \[0, 1\), got -0\.1'),
        (1.0, r'dropout must be in \[0, 1\), got 1\.0'),
        (1, r'dropout must be in \[0, 1\), got 1\.0'),
        (math.nan, r'dropout must be finite, got nan'),
        (math.inf, r'dropout must be finite, got inf'),
    ],
)
def test_invalid_dropout(dropout: Any, match: str, tmp_path: Path) -> None:
    """A plain ValueError naming the value, before any file is read."""
    missing = tmp_path / 'missing.ckpt'
    for source in (official_checkpoint(), missing, 'SATCLIP_RESNET18_L10'):
        with pytest.raises(ValueError, match=match) as error:
            load_location_encoder(source, dropout=dropout)
        assert type(error.value) is ValueError
    with pytest.raises(ValueError, match=match):
        satclip_location_encoder(official_checkpoint(), dropout=dropout)


# --------------------------------------------------------------------------
# satclip_location_encoder: loaded, built, or given
# --------------------------------------------------------------------------


def test_factory_passes_dropout_to_the_loader() -> None:
    checkpoint = official_checkpoint()
    encoder = satclip_location_encoder(checkpoint, dtype=torch.float32, dropout=0.25)
    assert dropouts(encoder) == dropouts(
        load_location_encoder(checkpoint, dtype=torch.float32, dropout=0.25)
    )
    assert encoder.dtype == torch.float32


def test_factory_builds_a_new_encoder_with_dropout_as_before() -> None:
    """``satclip_location_encoder(None, dropout=...)`` is the builder's dropout."""
    torch.manual_seed(0)
    built = satclip_location_encoder(
        None, legendre_polys=3, capacity=8, embed_dim=4, dropout=0.3
    )
    torch.manual_seed(0)
    expected = build_location_encoder(
        legendre_polys=3, capacity=8, embed_dim=4, dropout=0.3
    )
    assert dropouts(built) == dropouts(expected)
    assert set(dropouts(built).values()) == {0.3, 0.0}
    assert_same_weights(built, expected)
    default = satclip_location_encoder(None, legendre_polys=3, capacity=8)
    assert set(dropouts(default).values()) == {0.5, 0.0}
    fcnet = satclip_location_encoder(None, network='fcnet', dropout=0.1)
    assert set(dropouts(fcnet).values()) == {0.1}
    with pytest.raises(ValueError, match=r'dropout must be in \[0, 1\), got 1\.0'):
        satclip_location_encoder(None, dropout=1.0)


def test_factory_refuses_a_dropout_for_a_given_encoder() -> None:
    encoder = build_location_encoder(legendre_polys=3, capacity=8, embed_dim=4)
    assert satclip_location_encoder(encoder) is encoder
    with pytest.raises(
        ValueError,
        match=r'dropout=0\.2 cannot be applied to a LocationEncoder passed as '
        'weights: it is returned as it is',
    ):
        satclip_location_encoder(encoder, dropout=0.2)
    assert set(dropouts(encoder).values()) == {0.5, 0.0}
