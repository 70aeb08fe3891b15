"""Loading official-format checkpoints built here: no network, no pickled code."""

import os
import pickle
import re
import shutil
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from torch import nn

from torchgeo_satclip import _compat
from torchgeo_satclip.models import (
    CheckpointError,
    LocationEncoder,
    SatCLIPWeights,
    SirenNet,
    SphericalHarmonics,
    build_location_encoder,
    load_location_encoder,
    read_checkpoint,
    satclip_location_encoder,
    save_official_checkpoint,
)
from torchgeo_satclip.models import weights as weights_module

from ..satclip_spec import OFFICIAL_ARGUMENTS, OFFICIAL_POPPED

POINTS = torch.tensor(
    [[2.35, 48.86], [-74.0, 40.71], [151.2, -33.9], [0.0, 90.0], [-180.0, -90.0]],
    dtype=torch.float64,
)


def official_checkpoint(
    legendre_polys: int = 10,
    capacity: int = 32,
    embed_dim: int = 16,
    num_hidden_layers: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """A checkpoint laid out like the released SatCLIP ones (random weights)."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen, dtype=torch.float64) * 0.2 - 0.1

    nnet: dict[str, torch.Tensor] = {}
    dim_in = legendre_polys**2
    for i in range(num_hidden_layers):
        nnet[f'layers.{i}.weight'] = rand(capacity, dim_in if i == 0 else capacity)
        nnet[f'layers.{i}.bias'] = rand(capacity)
    nnet['last_layer.weight'] = rand(embed_dim, capacity)
    nnet['last_layer.bias'] = rand(embed_dim)
    state_dict: dict[str, torch.Tensor] = OrderedDict()
    state_dict['model.logit_scale'] = torch.tensor(2.6592, dtype=torch.float64)
    state_dict['model.visual.conv1.weight'] = rand(4, 13, 3, 3)
    state_dict['model.visual.fc.weight'] = rand(embed_dim, 4)
    for prefix in ('model.location.nnet.', 'model.nnet.'):
        state_dict.update({prefix + k: v.clone() for k, v in nnet.items()})
    return {
        'epoch': 499,
        'global_step': 6000,
        'pytorch-lightning_version': '2.0.1',
        'state_dict': state_dict,
        'loops': {'fit_loop': {'state_dict': {}}},
        'callbacks': {},
        'optimizer_states': [
            {
                'state': {0: {'step': torch.tensor(6000.0), 'exp_avg': rand(3)}},
                'param_groups': [{'lr': 1e-4, 'weight_decay': 0.01, 'params': [0]}],
            }
        ],
        'lr_schedulers': [],
        'hparams_name': 'kwargs',
        'hyper_parameters': {
            'embed_dim': embed_dim,
            'image_resolution': 256,
            'vision_layers': 'moco_resnet18',
            'vision_width': 768,
            'vision_patch_size': 32,
            'in_channels': 13,
            'le_type': 'sphericalharmonics',
            'pe_type': 'siren',
            'frequency_num': 16,
            'max_radius': 260,
            'min_radius': 1,
            'legendre_polys': legendre_polys,
            'harmonics_calculation': 'analytic',
            'sh_embedding_dims': 32,
            'learning_rate': 1e-4,
            'weight_decay': 0.01,
            'num_hidden_layers': num_hidden_layers,
            'capacity': capacity,
        },
    }


def reference_embedding(
    checkpoint: dict[str, Any], lonlat: torch.Tensor
) -> torch.Tensor:
    """Embed with the checkpoint's weights by hand: SH, then SIREN in float64."""
    from torchgeo_satclip.models import spherical_harmonics

    hp = checkpoint['hyper_parameters']
    sd = checkpoint['state_dict']
    x = spherical_harmonics(lonlat, hp['legendre_polys'])
    for i in range(hp['num_hidden_layers']):
        w0 = 30.0 if i == 0 else 1.0
        pre = x @ sd[f'model.location.nnet.layers.{i}.weight'].T
        x = torch.sin(w0 * (pre + sd[f'model.location.nnet.layers.{i}.bias']))
    w = sd['model.location.nnet.last_layer.weight']
    return cast(torch.Tensor, x @ w.T + sd['model.location.nnet.last_layer.bias'])


@pytest.fixture
def checkpoint_path(tmp_path: Path) -> Path:
    path = tmp_path / 'satclip-resnet18-l10.ckpt'
    torch.save(official_checkpoint(), path)
    return path


def test_load_official_checkpoint(checkpoint_path: Path) -> None:
    encoder = load_location_encoder(checkpoint_path)
    assert isinstance(encoder, LocationEncoder)
    assert not encoder.training
    assert encoder.dtype == torch.float64
    assert encoder.posenc.legendre_polys == 10
    expected = reference_embedding(
        torch.load(checkpoint_path, weights_only=True), POINTS
    )
    with torch.no_grad():
        torch.testing.assert_close(encoder(POINTS), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ('legendre_polys', 'layers'), [(10, 2), (40, 2), (4, 1), (6, 3)]
)
def test_architecture_read_from_hyper_parameters(
    tmp_path: Path, legendre_polys: int, layers: int
) -> None:
    ckpt = official_checkpoint(legendre_polys=legendre_polys, num_hidden_layers=layers)
    path = tmp_path / 'c.ckpt'
    torch.save(ckpt, path)
    encoder = load_location_encoder(path)
    assert encoder.posenc.embedding_dim == legendre_polys**2
    assert len(cast(nn.ModuleList, encoder.nnet.layers)) == layers
    with torch.no_grad():
        torch.testing.assert_close(
            encoder(POINTS), reference_embedding(ckpt, POINTS), rtol=0, atol=1e-12
        )


def test_loader_uses_weights_only(
    checkpoint_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    real_load = torch.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy)
    load_location_encoder(checkpoint_path)
    assert calls
    assert all(call.get('weights_only') is True for call in calls)


def test_only_model_nnet_keys(tmp_path: Path) -> None:
    ckpt = official_checkpoint()
    ckpt['state_dict'] = {
        k: v
        for k, v in ckpt['state_dict'].items()
        if not k.startswith('model.location.')
    }
    path = tmp_path / 'c.ckpt'
    torch.save(ckpt, path)
    with torch.no_grad():
        out = load_location_encoder(path)(POINTS)
    torch.testing.assert_close(out, reference_embedding(official_checkpoint(), POINTS))


def test_no_hyper_parameters_infers_from_shapes() -> None:
    ckpt = official_checkpoint(
        legendre_polys=7, capacity=24, embed_dim=8, num_hidden_layers=3
    )
    bare = {
        k: v for k, v in ckpt['state_dict'].items() if k.startswith('model.location.')
    }
    encoder = load_location_encoder(bare)
    assert encoder.posenc.legendre_polys == 7
    assert encoder.embed_dim == 8
    assert len(cast(nn.ModuleList, encoder.nnet.layers)) == 3


class Exploit:
    """An object whose unpickling would run code."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ('echo pwned > /tmp/torchgeo_satclip_pwned',))


@pytest.mark.filterwarnings('ignore:Detected pickle protocol')
def test_malicious_pickle_refused(tmp_path: Path) -> None:
    marker = Path('/tmp/torchgeo_satclip_pwned')
    marker.unlink(missing_ok=True)
    ckpt = official_checkpoint()
    ckpt['hyper_parameters']['payload'] = Exploit()
    path = tmp_path / 'evil.ckpt'
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r'refusing to load .*evil\.ckpt'):
        load_location_encoder(path)
    assert not marker.exists()
    # and a raw pickle (not a torch zip file) is refused too
    raw = tmp_path / 'raw.ckpt'
    raw.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(CheckpointError, match=r'raw\.ckpt'):
        load_location_encoder(raw)
    assert not marker.exists()


def test_truncated_file(checkpoint_path: Path, tmp_path: Path) -> None:
    data = checkpoint_path.read_bytes()
    truncated = tmp_path / 'truncated.ckpt'
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        CheckpointError, match=r'cannot read checkpoint .*truncated\.ckpt'
    ):
        load_location_encoder(truncated)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match='not found'):
        load_location_encoder(tmp_path / 'absent.ckpt')
    with pytest.raises(
        CheckpointError, match='neither an existing checkpoint file nor'
    ):
        load_location_encoder('no-such-file.ckpt')


def test_missing_and_unexpected_keys(tmp_path: Path) -> None:
    ckpt = official_checkpoint()
    del ckpt['state_dict']['model.location.nnet.layers.1.bias']
    del ckpt['state_dict']['model.nnet.layers.1.bias']
    ckpt['state_dict']['model.location.nnet.layers.1.extra'] = torch.zeros(3)
    path = tmp_path / 'keys.ckpt'
    torch.save(ckpt, path)
    with pytest.raises(
        CheckpointError,
        match=r"keys.ckpt.*missing keys \['layers.1.bias'\], unexpected keys \['layers.1.extra'\]",
    ):
        load_location_encoder(path)


def test_wrong_shape(tmp_path: Path) -> None:
    ckpt = official_checkpoint()
    for prefix in ('model.location.nnet.', 'model.nnet.'):
        ckpt['state_dict'][prefix + 'layers.1.weight'] = torch.zeros(
            32, 31, dtype=torch.float64
        )
    path = tmp_path / 'shape.ckpt'
    torch.save(ckpt, path)
    with pytest.raises(
        CheckpointError,
        match=r'layers.1.weight has shape \(32, 31\), expected \(32, 32\)',
    ):
        load_location_encoder(path)


def test_hyper_parameters_disagree_with_weights(tmp_path: Path) -> None:
    ckpt = official_checkpoint()
    ckpt['hyper_parameters']['legendre_polys'] = 40
    path = tmp_path / 'hp.ckpt'
    torch.save(ckpt, path)
    with pytest.raises(
        CheckpointError,
        match='legendre_polys=40 but the weights have legendre_polys=10',
    ):
        load_location_encoder(path)


def test_no_location_weights(tmp_path: Path) -> None:
    path = tmp_path / 'image-only.ckpt'
    torch.save({'state_dict': {'model.visual.fc.weight': torch.zeros(2, 2)}}, path)
    with pytest.raises(CheckpointError, match='no location-encoder weights found'):
        load_location_encoder(path)


def test_unsupported_source_type() -> None:
    with pytest.raises(TypeError, match='source must be'):
        load_location_encoder(42)  # type: ignore[arg-type]


def test_dtype_option(checkpoint_path: Path) -> None:
    encoder = load_location_encoder(checkpoint_path, dtype=torch.float32)
    assert encoder.dtype == torch.float32
    with torch.no_grad():
        out = encoder(POINTS)
    assert out.dtype == torch.float32
    ref = reference_embedding(torch.load(checkpoint_path, weights_only=True), POINTS)
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    'key', ['model.location.nnet.layers.0.linear.weight', 'model.nnet.last_layer.bias']
)
def test_extra_state_cannot_replace_the_location_weights(
    tmp_path: Path, key: str
) -> None:
    """A location key in extra_state was written over the encoder's weights."""
    encoder = build_location_encoder(legendre_polys=3, capacity=8, embed_dim=4)
    path = tmp_path / 'mine.ckpt'
    with pytest.raises(
        ValueError, match=rf"extra_state has 1 location key\(s\) \('{key}'"
    ):
        save_official_checkpoint(
            encoder,
            path,
            extra_state={'model.logit_scale': torch.tensor(1.0), key: torch.zeros(1)},
        )
    assert not path.exists()


def test_save_official_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = build_location_encoder(legendre_polys=6, capacity=16, embed_dim=8).eval()
    path = save_official_checkpoint(
        encoder,
        tmp_path / 'out' / 'mine.ckpt',
        extra_state={'model.logit_scale': torch.tensor(1.0)},
    )
    assert not [
        p for p in path.parent.iterdir() if p.name != 'mine.ckpt'
    ]  # no temp left
    raw = torch.load(path, weights_only=True)
    hp = raw['hyper_parameters']
    assert (hp['le_type'], hp['pe_type'], hp['legendre_polys']) == (
        'sphericalharmonics',
        'siren',
        6,
    )
    assert (hp['capacity'], hp['embed_dim'], hp['num_hidden_layers']) == (16, 8, 2)
    assert (
        raw['state_dict']['model.location.nnet.layers.0.weight'].dtype == torch.float64
    )
    torch.testing.assert_close(
        raw['state_dict']['model.nnet.last_layer.bias'],
        raw['state_dict']['model.location.nnet.last_layer.bias'],
    )
    loaded = load_location_encoder(path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(POINTS), encoder(POINTS), rtol=0, atol=0)


#: Keys of the released checkpoints' hyper_parameters (spec section 4) and the
#: three the official loader pops first.
RELEASED_KEYS = OFFICIAL_ARGUMENTS | set(OFFICIAL_POPPED)


@pytest.mark.parametrize(
    ('architecture', 'radii'),
    [
        ({'legendre_polys': 6}, (16, 260, 1)),  # the released values, unused by SH
        (
            {
                'positional_encoding': 'spherec',
                'frequency_num': 4,
                'min_radius': 2.0,
                'max_radius': 90.0,
            },
            (4, 90.0, 2.0),
        ),
        ({'positional_encoding': 'direct'}, (16, 260, 1)),
    ],
    ids=['sh', 'spherec', 'direct'],
)
def test_save_official_checkpoint_writes_released_keys(
    tmp_path: Path, architecture: dict[str, Any], radii: tuple[float, ...]
) -> None:
    torch.manual_seed(0)
    encoder = build_location_encoder(capacity=16, embed_dim=8, **architecture).eval()
    path = save_official_checkpoint(encoder, tmp_path / 'mine.ckpt')
    hp = torch.load(path, weights_only=True)['hyper_parameters']
    assert set(hp) == RELEASED_KEYS | {'location_only'}
    assert hp['location_only'] is True
    assert hp['vision_layers'] is None
    assert (hp['frequency_num'], hp['max_radius'], hp['min_radius']) == radii
    assert hp['harmonics_calculation'] == 'analytic'
    assert (hp['capacity'], hp['embed_dim'], hp['num_hidden_layers']) == (16, 8, 2)
    loaded = load_location_encoder(path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(POINTS), encoder(POINTS), rtol=0, atol=0)


def test_save_official_checkpoint_refuses_what_the_official_code_cannot_read(
    tmp_path: Path,
) -> None:
    sh = build_location_encoder(legendre_polys=3, capacity=4, embed_dim=4)

    def siren(**network: Any) -> LocationEncoder:
        return LocationEncoder(SphericalHarmonics(3), SirenNet(9, 4, 4, **network))

    cases: list[tuple[LocationEncoder, dict[str, Any], str]] = [
        (
            build_location_encoder('rff', 'siren', capacity=4, embed_dim=4),
            {},
            "'rff' is not one the official",
        ),
        (
            build_location_encoder(network='mlp', capacity=4, embed_dim=4),
            {},
            "'mlp' has no counterpart",
        ),
        (
            build_location_encoder(
                legendre_polys=3, capacity=4, embed_dim=4, normalization='orthonormal'
            ),
            {},
            "normalization='orthonormal'",
        ),
        # sine frequencies and biases the official SIREN has no setting for
        (siren(w0_initial=10.0), {}, r'layer 0 has w0_initial=10\.0'),
        (siren(w0=2.0), {}, r'layer 1 has w0=2\.0'),
        (siren(use_bias=False), {}, r'no biases \(use_bias=False\)'),
        (sh, {'positional_encoding_kwargs': {}}, 'not arguments of the official'),
        (sh, {'legendre_polys': 10}, 'contradict the location encoder'),
        (sh, {'vision_layers': 'resnet18'}, 'not an image encoder the official'),
        (sh, {'vision_layers': 'moco_resnet18'}, 'needs the image encoder'),
    ]
    for encoder, hyper_parameters, message in cases:
        with pytest.raises(ValueError, match=message):
            save_official_checkpoint(
                encoder, tmp_path / 'x.ckpt', hyper_parameters=hyper_parameters
            )
    assert not list(tmp_path.iterdir())


def test_save_official_checkpoint_writes_the_encoders_own_values(
    tmp_path: Path,
) -> None:
    # A location key given again in hyper_parameters, equal by == but a float
    # or a bool, replaced the encoder's integer in the file: the file was
    # written, and then refused by load_location_encoder ('must be an
    # integer, got 4.0').
    encoder = build_location_encoder(
        legendre_polys=3, capacity=8, embed_dim=4, num_hidden_layers=1
    ).eval()
    given = {'embed_dim': 4.0, 'num_hidden_layers': True, 'legendre_polys': 3.0}
    path = save_official_checkpoint(encoder, tmp_path / 'x.ckpt', given)
    hparams = torch.load(path, weights_only=True)['hyper_parameters']
    for key, value in (
        ('embed_dim', 4),
        ('num_hidden_layers', 1),
        ('legendre_polys', 3),
    ):
        assert hparams[key] == value
        assert type(hparams[key]) is int, key
    lonlat = torch.tensor([[2.35, 48.86], [-74.0, 40.71]], dtype=torch.float64)
    torch.testing.assert_close(load_location_encoder(path)(lonlat), encoder(lonlat))


def test_save_official_checkpoint_to_a_directory_is_refused_first(
    tmp_path: Path,
) -> None:
    # The whole file was written to a temporary sibling, then the rename
    # failed with IsADirectoryError naming that temporary file.
    encoder = build_location_encoder(legendre_polys=3, capacity=8, embed_dim=4)
    folder = tmp_path / 'exports'
    folder.mkdir()
    with pytest.raises(ValueError, match=re.escape(f'{folder} is a directory')):
        save_official_checkpoint(encoder, folder)
    assert list(tmp_path.iterdir()) == [folder]
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize('name', ['grid', 'theory', 'spherec', 'spheremplus'])
def test_save_official_checkpoint_refuses_a_single_frequency(
    tmp_path: Path, name: str
) -> None:
    # The official code's _cal_freq_list divides log(max/min) by
    # frequency_num - 1: one frequency is a ZeroDivisionError there, so a file
    # with frequency_num=1 could never be loaded by it.
    encoder = build_location_encoder(name, capacity=4, embed_dim=4, frequency_num=1)
    with pytest.raises(ValueError, match=r'frequency_num=1.*at least 2'):
        save_official_checkpoint(encoder, tmp_path / 'x.ckpt')
    assert not list(tmp_path.iterdir())
    two = build_location_encoder(name, capacity=4, embed_dim=4, frequency_num=2)
    assert save_official_checkpoint(two, tmp_path / 'x.ckpt').exists()


def test_enum_members_and_meta() -> None:
    assert len(SatCLIPWeights) == 6
    for member in cast(Iterable[SatCLIPWeights], SatCLIPWeights):
        meta = member.meta
        name = member.name.lower().replace('_', '-')
        assert member.url.endswith(f'{name}.ckpt')
        assert member.url.startswith('https://huggingface.co/microsoft/SatCLIP-')
        assert meta['legendre_polys'] in (10, 40)
        assert (meta['capacity'], meta['embed_dim'], meta['num_hidden_layers']) == (
            512,
            256,
            2,
        )
    assert SatCLIPWeights.SATCLIP_RESNET18_L10.url == (
        'https://huggingface.co/microsoft/SatCLIP-ResNet18-L10/resolve/main/'
        'satclip-resnet18-l10.ckpt'
    )


def test_enum_download_is_monkeypatched_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / 'src.ckpt'
    torch.save(
        official_checkpoint(legendre_polys=10, capacity=512, embed_dim=256), source
    )
    downloads: list[str] = []

    def fake_download(url: str, dst: str, progress: bool = True) -> None:
        downloads.append(url)
        shutil.copy(source, dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    cache = tmp_path / 'cache'
    for src in (
        SatCLIPWeights.SATCLIP_RESNET18_L10,
        'SATCLIP_RESNET18_L10',
        'SatCLIPWeights.satclip_resnet18_l10',
    ):
        encoder = load_location_encoder(src, root=cache)
        assert encoder.posenc.legendre_polys == 10
    assert downloads == [
        SatCLIPWeights.SATCLIP_RESNET18_L10.url
    ]  # cached after the first
    assert (cache / 'satclip-resnet18-l10.ckpt').is_file()


def test_enum_hyper_parameters_checked_against_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file without hyper_parameters is checked against the enum's meta."""
    ckpt = official_checkpoint(legendre_polys=10, capacity=512, embed_dim=256)
    del ckpt['hyper_parameters']
    source = tmp_path / 'src.ckpt'
    torch.save(ckpt, source)
    monkeypatch.setattr(
        torch.hub,
        'download_url_to_file',
        lambda url, dst, progress=True: shutil.copy(source, dst),
    )
    with pytest.raises(
        CheckpointError,
        match='legendre_polys=40 but the weights have legendre_polys=10',
    ):
        load_location_encoder(SatCLIPWeights.SATCLIP_RESNET18_L40, root=tmp_path / 'c')


def test_member_file_with_other_hyper_parameters_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file in the cache under a member's name whose own hyper_parameters
    are another model's (a file put there by hand, for the offline case) was
    loaded as it was: asking for L40 silently gave an L10 encoder."""
    ckpt = official_checkpoint(legendre_polys=10, capacity=512, embed_dim=256)
    cache = tmp_path / 'cache'
    cache.mkdir()
    wrong = cache / 'satclip-resnet18-l40.ckpt'
    torch.save(ckpt, wrong)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', None)  # no download
    with pytest.raises(CheckpointError) as error:
        load_location_encoder(SatCLIPWeights.SATCLIP_RESNET18_L40, root=cache)
    message = str(error.value)
    assert str(wrong) in message
    assert 'SATCLIP_RESNET18_L40' in message
    assert 'legendre_polys=10' in message
    assert 'legendre_polys=40' in message
    assert 'delete' in message
    # the member's own file loads
    right = cache / 'satclip-resnet18-l10.ckpt'
    torch.save(ckpt, right)
    encoder = load_location_encoder(SatCLIPWeights.SATCLIP_RESNET18_L10, root=cache)
    assert encoder.posenc.legendre_polys == 10


def test_no_network_for_a_path(
    checkpoint_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError('network access attempted')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', forbidden)
    monkeypatch.setattr('urllib.request.urlopen', forbidden)
    load_location_encoder(checkpoint_path)


@pytest.mark.skipif(
    not _compat.TORCHGEO_AT_LEAST_0_10,
    reason='torchgeo.models.SatCLIP needs torchgeo >= 0.10',
)
def test_torchgeo_satclip_interoperates() -> None:
    """TorchGeo 0.10's SatCLIP and ours share weights both ways.

    Documented tolerance: 5e-6 on float64 embeddings. TorchGeo builds its
    Legendre coefficient tables in the default dtype (float32) at
    construction, so even after ``.double()`` its spherical harmonics differ
    from an exact float64 reference by about 5e-7 (ours: about 3e-14), which
    the first SIREN layer (w0 = 30) amplifies to about 7e-7 in the
    embeddings. TorchGeo also clamps latitude to +-89.95, so points closer to
    the poles than that are left out of the comparison.
    """
    from tests.models.test_spherical_harmonics import reference
    from torchgeo_satclip.models import spherical_harmonics

    torch.manual_seed(0)
    theirs = (
        _compat.TorchGeoSatCLIP(legendre_polys=10, capacity=64, embed_dim=32)
        .double()
        .eval()
    )
    ours = build_location_encoder(legendre_polys=10, capacity=64, embed_dim=32).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    gen = torch.Generator().manual_seed(0)
    lonlat = torch.stack(
        [
            torch.rand(500, generator=gen) * 360 - 180,
            torch.rand(500, generator=gen) * 179.8 - 89.9,
        ],
        dim=1,
    ).double()
    with torch.no_grad():
        torch.testing.assert_close(ours(lonlat), theirs(lonlat), rtol=0, atol=5e-6)
        # and the reverse direction
        fresh = (
            _compat.TorchGeoSatCLIP(legendre_polys=10, capacity=64, embed_dim=32)
            .double()
            .eval()
        )
        fresh.load_state_dict(ours.state_dict(), strict=True)
        torch.testing.assert_close(fresh(lonlat), ours(lonlat), rtol=0, atol=5e-6)
        # the difference is TorchGeo's rounding, not ours
        exact = torch.from_numpy(reference(lonlat.numpy(), 10))
        ours_error = (spherical_harmonics(lonlat, 10) - exact).abs().max()
        theirs_error = (theirs.posenc(lonlat) - exact).abs().max()
        assert ours_error < 1e-12
        assert ours_error < theirs_error


@pytest.mark.skipif(
    not _compat.TORCHGEO_AT_LEAST_0_10, reason='SatCLIP_Weights needs torchgeo >= 0.10'
)
def test_torchgeo_weights_enum_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = _compat.TorchGeoSatCLIPWeights.SATCLIP_VIT16_L40
    ckpt = official_checkpoint(legendre_polys=40, capacity=512, embed_dim=256)
    ckpt['state_dict'] = {  # TorchGeo's copy: location weights only
        k: v for k, v in ckpt['state_dict'].items() if k.startswith('model.location.')
    }
    source = tmp_path / 'src.ckpt'
    torch.save(ckpt, source)
    monkeypatch.setattr(
        torch.hub,
        'download_url_to_file',
        lambda url, dst, progress=True: shutil.copy(source, dst),
    )
    encoder = load_location_encoder(member, root=tmp_path / 'cache')
    assert encoder.posenc.legendre_polys == 40
    with torch.no_grad():
        torch.testing.assert_close(encoder(POINTS), reference_embedding(ckpt, POINTS))


def test_weights_module_exports() -> None:
    assert set(weights_module.__all__) >= {'load_location_encoder', 'SatCLIPWeights'}


def test_weights_members_are_importable_where_they_were() -> None:
    """Defined in models.released, re-exported on first access: the same objects."""
    from torchvision.models._api import WeightsEnum

    from torchgeo_satclip import models
    from torchgeo_satclip.models import released
    from torchgeo_satclip.models.weights import GeoCLIPWeights, SatCLIPWeights

    for member in (SatCLIPWeights, GeoCLIPWeights):
        assert issubclass(member, WeightsEnum)
        name = member.__name__
        assert member is getattr(models, name) is getattr(released, name)
    for module in (models, weights_module):
        assert set(module.__all__) <= set(dir(module))
        assert all(getattr(module, name) is not None for name in module.__all__)
        with pytest.raises(AttributeError, match="has no attribute 'nope'"):
            module.nope  # noqa: B018


def test_one_factory() -> None:
    from torchgeo_satclip.models import (
        LocationEncoder,
        SatCLIPWeights,
        list_weights,
        satclip_location_encoder,
    )

    members = cast(Iterable[SatCLIPWeights], SatCLIPWeights)
    assert list_weights() == [m.name for m in members]
    assert list_weights()[0] == 'SATCLIP_RESNET18_L10'
    built = satclip_location_encoder(
        legendre_polys=3, embed_dim=8, capacity=16, dtype=torch.float32
    )
    assert isinstance(built, LocationEncoder)
    assert built.embed_dim == 8
    assert built.dtype == torch.float32
    assert satclip_location_encoder(built) is built
    # A state dict goes through the loader (architecture from the shapes).
    loaded = satclip_location_encoder(built.state_dict(), dtype=torch.float64)
    assert loaded.embed_dim == 8
    assert loaded.dtype == torch.float64
    lonlat = torch.tensor([[2.35, 48.86], [-74.0, 40.7]], dtype=torch.float64)
    torch.testing.assert_close(
        loaded(lonlat), built.double().eval()(lonlat), rtol=0, atol=1e-12
    )


def test_get_location_encoder_is_a_deprecated_alias() -> None:
    from torchgeo_satclip.transforms import get_location_encoder

    with pytest.deprecated_call(match='satclip_location_encoder'):
        encoder = get_location_encoder(None, legendre_polys=2, embed_dim=4)
    assert encoder.embed_dim == 4


def test_read_checkpoint_loads_tensors_and_names_other_files(tmp_path: Path) -> None:
    path = tmp_path / 'a.ckpt'
    torch.save({'state_dict': {'w': torch.arange(3)}}, path)
    loaded = read_checkpoint(str(path))
    assert list(loaded) == ['state_dict']
    assert torch.equal(loaded['state_dict']['w'], torch.arange(3))
    text = tmp_path / 'b.ckpt'
    text.write_text('{"state_dict": {}}')
    with pytest.raises(
        CheckpointError, match=r'b\.ckpt is not a torch checkpoint: it is a JSON file'
    ):
        read_checkpoint(text)
    torch.save(torch.zeros(2), path)
    with pytest.raises(
        CheckpointError, match=r'a\.ckpt holds a Tensor, expected a dict'
    ):
        read_checkpoint(path)


class _OriginalResidual(torch.nn.Module):
    """A residual block with the original FCNet's parameter names (w1, w2)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.w1 = torch.nn.Linear(width, width)
        self.w2 = torch.nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.w2(torch.relu(self.w1(x))))  # eval: no dropout


class _OriginalNetwork(torch.nn.Module):
    """The original code's non-SIREN networks, laid out with its names."""

    def __init__(
        self, name: str, dim_in: int, hidden: int, out: int, layers: int = 2
    ) -> None:
        super().__init__()
        self.name = name
        if name == 'mlp':  # input, hidden layers that share ONE module, output
            shared = torch.nn.Linear(hidden, hidden)
            self.features = torch.nn.Sequential(
                torch.nn.Linear(dim_in, hidden),
                torch.nn.ReLU(),
                *[shared, torch.nn.ReLU()] * layers,
                torch.nn.Linear(hidden, out),
            )
        elif name == 'fcnet':
            self.feats = torch.nn.Sequential(
                torch.nn.Linear(dim_in, hidden),
                torch.nn.ReLU(),
                *(_OriginalResidual(hidden) for _ in range(4)),
            )
            self.class_emb = torch.nn.Linear(hidden, out, bias=False)
        else:
            self.linear = torch.nn.Linear(dim_in, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.name == 'mlp':
            return self.features(x)  # type: ignore[no-any-return]
        if self.name == 'fcnet':
            return self.class_emb(self.feats(x))  # type: ignore[no-any-return]
        return self.linear(x)  # type: ignore[no-any-return]

    def original_state(self) -> dict[str, torch.Tensor]:
        state = self.state_dict()
        if self.name == 'linear':  # a bare nn.Linear in the original
            return {key.removeprefix('linear.'): value for key, value in state.items()}
        return dict(state)


@pytest.mark.parametrize('name', ['mlp', 'fcnet', 'linear'])
def test_original_code_checkpoints_of_every_network(name: str) -> None:
    """A checkpoint the original code trains with pe_type mlp, fcnet or linear."""
    torch.manual_seed(0)
    reference = _OriginalNetwork(name, dim_in=9, hidden=8, out=4).double().eval()
    nnet = reference.original_state()
    if name == 'mlp':  # the shared module is saved under both hidden keys
        assert torch.equal(nnet['features.2.weight'], nnet['features.4.weight'])
    state_dict = {
        prefix + key: value.clone()
        for prefix in ('model.location.nnet.', 'model.nnet.')
        for key, value in nnet.items()
    }
    hyper_parameters = {
        'le_type': 'sphericalharmonics',
        'pe_type': name,
        'legendre_polys': 3,
        'harmonics_calculation': 'analytic',
        'capacity': 8,
        'embed_dim': 4,
        'num_hidden_layers': 2,
    }
    encoder = load_location_encoder(
        {'state_dict': state_dict, 'hyper_parameters': hyper_parameters}
    )
    with torch.no_grad():
        expected = reference(SphericalHarmonics(3)(POINTS))
        torch.testing.assert_close(encoder(POINTS), expected, rtol=0, atol=0)


def test_original_mlp_without_hidden_layers() -> None:
    """The original code's MLP takes num_hidden_layers=0 (its input layer is
    hidden already), but the loader refused such a checkpoint
    ("num_hidden_layers must be at least 1"), and so did
    build_location_encoder; other networks still need one."""
    torch.manual_seed(0)
    reference = _OriginalNetwork('mlp', dim_in=9, hidden=8, out=4, layers=0)
    reference = reference.double().eval()
    state_dict = {
        prefix + key: value.clone()
        for prefix in ('model.location.nnet.', 'model.nnet.')
        for key, value in reference.original_state().items()
    }
    hyper_parameters = {
        'le_type': 'sphericalharmonics',
        'pe_type': 'mlp',
        'legendre_polys': 3,
        'harmonics_calculation': 'analytic',
        'capacity': 8,
        'embed_dim': 4,
        'num_hidden_layers': 0,
    }
    encoder = load_location_encoder(
        {'state_dict': state_dict, 'hyper_parameters': hyper_parameters}
    )
    with torch.no_grad():
        expected = reference(SphericalHarmonics(3)(POINTS))
        torch.testing.assert_close(encoder(POINTS), expected, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match='num_hidden_layers'):
        load_location_encoder(
            {
                'state_dict': state_dict,
                'hyper_parameters': {**hyper_parameters, 'pe_type': 'siren'},
            }
        )
    with pytest.raises(ValueError, match=r"got 0 \(of the networks, only 'mlp'"):
        build_location_encoder(network='siren', num_hidden_layers=0)
    with pytest.raises(ValueError, match='positive integer, got -1'):
        build_location_encoder(network='mlp', num_hidden_layers=-1)


def test_factory_honours_root_and_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``satclip_location_encoder(weights=..., root=...)`` downloads into
    *root*, as docs/weights.rst says (``root`` used to fall into the unused
    architecture arguments, and the hub cache was used)."""
    source = tmp_path / 'src.ckpt'
    torch.save(
        official_checkpoint(legendre_polys=10, capacity=512, embed_dim=256), source
    )
    calls: list[tuple[str, bool]] = []

    def fake_download(url: str, dst: str, progress: bool = True) -> None:
        calls.append((dst, progress))
        shutil.copy(source, dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    cache = tmp_path / 'mine'
    encoder = satclip_location_encoder(
        SatCLIPWeights.SATCLIP_RESNET18_L10, root=cache, progress=False
    )
    assert encoder.posenc.legendre_polys == 10
    assert (cache / 'satclip-resnet18-l10.ckpt').is_file()
    assert not (tmp_path / 'hub').exists()
    assert len(calls) == 1
    assert calls[0][1] is False


def test_factory_refuses_architecture_with_weights() -> None:
    """Architecture arguments beside weights were silently ignored."""
    with pytest.raises(ValueError, match=r'architecture arguments \(legendre_polys'):
        satclip_location_encoder(official_checkpoint(), legendre_polys=40)
    # root and progress are no architecture (root without weights: see below)
    satclip_location_encoder(None, legendre_polys=3, capacity=8, embed_dim=4)


@pytest.mark.parametrize('where', ['memory', 'file'])
def test_a_wrap_encoder_without_le_type_is_not_read_as_spherical_harmonics(
    tmp_path: Path, where: str
) -> None:
    """A 'wrap' encoder's state dict (4 input features, 2^2) saved without
    hyper_parameters loaded as spherical harmonics with legendre_polys=2:
    other features under the same weights, no error."""
    torch.manual_seed(0)
    wrap = build_location_encoder('wrap', capacity=16, embed_dim=8).eval()
    source: Any = wrap.state_dict()
    origin = 'state dict'
    if where == 'file':
        source = tmp_path / 'wrap.pt'
        torch.save(wrap.state_dict(), source)
        origin = str(source)
    with pytest.raises(CheckpointError) as info:
        load_location_encoder(source)
    message = str(info.value)
    assert origin in message
    assert "hyper_parameters['le_type']" in message
    assert "'wrap'" in message
    assert 'legendre_polys=2' in message
    # The repair the message gives loads it, with its own features.
    fixed = load_location_encoder(
        {'state_dict': wrap.state_dict(), 'hyper_parameters': {'le_type': 'wrap'}}
    )
    with torch.no_grad():
        torch.testing.assert_close(fixed(POINTS), wrap(POINTS), rtol=0, atol=0)


def test_positional_state_an_encoding_cannot_hold_is_refused() -> None:
    """A random-Fourier-features encoder (16 features, 4^2) saved without
    hyper_parameters loaded as spherical harmonics, its frequency matrix
    ``posenc.b`` silently dropped."""
    rff = build_location_encoder(
        'rff', sigmas=(1.0,), encoded_size=8, capacity=16, embed_dim=8
    )
    with pytest.raises(
        CheckpointError, match=r"posenc\.b.*hyper_parameters\['le_type'\]"
    ):
        load_location_encoder(rff.state_dict())
    recorded = {'le_type': 'sphericalharmonics', 'legendre_polys': 4}
    with pytest.raises(CheckpointError, match=r"posenc\.b.*'sphericalharmonics'"):
        load_location_encoder(
            {'state_dict': rff.state_dict(), 'hyper_parameters': recorded}
        )


def test_factory_refuses_root_without_weights(tmp_path: Path) -> None:
    """``root`` (where released weights are cached) with ``weights=None`` was
    silently ignored: a forgotten ``weights=`` built a random encoder."""
    with pytest.raises(ValueError, match=r'root=.*mine.*weights=None'):
        satclip_location_encoder(root=tmp_path / 'mine', legendre_polys=3)
    # progress, as torchvision's builders, is ignored without a download
    satclip_location_encoder(progress=False, legendre_polys=3, capacity=8)
