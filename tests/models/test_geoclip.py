"""GeoCLIP's location encoder: parity with an independent reference, loading.

The reference below is written from the published description of GeoCLIP's
location encoder (Vivanco Cepeda et al., NeurIPS 2023), not from this
package: numpy in float64, GeoCLIP's own calling convention (**(lat, lon)**
in degrees), the Equal Earth formulas of Šavrič, Patterson and Jenny (2018)
with powers of theta as in the paper, ``v = EqualEarth * 66.50336 / 180``,
``gamma_i(v) = [cos(2 pi B_i v), sin(2 pi B_i v)]``, per branch three
``Linear + ReLU`` and a linear head, branch outputs summed. It reads a state
dict in GeoCLIP's own layout (``LocEnc<i>.capsule.<k>.*``).

Nothing here downloads anything: the real weights are tested when the
``geoclip`` distribution is installed (the ``tests`` extra installs it), and
its discovery is tested on a fake distribution made in ``tmp_path``.
"""

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from torchgeo_satclip.models import (
    GEOCLIP_ARCHITECTURE,
    CheckpointError,
    GeoCLIPNotInstalledError,
    GeoCLIPWeights,
    LocationEncoder,
    MultiScaleMLP,
    RandomFourierFeatures,
    find_geoclip_weights,
    geoclip_location_encoder,
    geoclip_to_encoder_state_dict,
    get_network,
    is_geoclip_state_dict,
    load_location_encoder,
    released,
    satclip_location_encoder,
)
from torchgeo_satclip.models import weights as weights_module

from ..geoclip_weights import (
    SIGMAS,
    installed_geoclip_weights,
    make_fake_distribution,
    random_geoclip_state,
)

# --------------------------------------------------------------------------
# The independent reference (numpy, float64, GeoCLIP's (lat, lon) order)
# --------------------------------------------------------------------------


def reference_equal_earth(latlon: np.ndarray) -> np.ndarray:
    """Equal Earth (unit sphere) of (lat, lon) degrees, as (x, y)."""
    a1, a2, a3, a4 = 1.340264, -0.081106, 0.000893, 0.003796
    lat = np.radians(latlon[:, 0])
    lon = np.radians(latlon[:, 1])
    theta = np.arcsin(np.sqrt(3.0) / 2.0 * np.sin(lat))
    x = (2.0 * np.sqrt(3.0) * lon * np.cos(theta)) / (
        3.0 * (9.0 * a4 * theta**8 + 7.0 * a3 * theta**6 + 3.0 * a2 * theta**2 + a1)
    )
    y = a4 * theta**9 + a3 * theta**7 + a2 * theta**3 + a1 * theta
    return np.stack([x, y], axis=1)


def reference_geoclip(latlon: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
    """GeoCLIP's location embedding of (lat, lon) degrees from its state dict."""
    v = reference_equal_earth(latlon) * 66.50336 / 180.0
    branches = sorted({key.split('.')[0] for key in state})
    hidden = sorted(
        {int(key.split('.')[2]) for key in state if '.capsule.' in key} - {0}
    )
    total = np.zeros(0)
    for branch in branches:
        phase = 2.0 * np.pi * v @ state[f'{branch}.capsule.0.b'].T
        x = np.concatenate([np.cos(phase), np.sin(phase)], axis=1)
        for k in hidden:
            weight = state[f'{branch}.capsule.{k}.weight']
            x = np.maximum(x @ weight.T + state[f'{branch}.capsule.{k}.bias'], 0.0)
        out = x @ state[f'{branch}.head.0.weight'].T + state[f'{branch}.head.0.bias']
        total = out if total.size == 0 else total + out
    return total


def numpy_state(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {key: value.double().numpy() for key, value in state.items()}


def global_lonlat(num: int, seed: int = 0) -> np.ndarray:
    """Uniform points on the sphere, plus the poles and both sides of the dateline."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(-180.0, 180.0, num)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, num)))
    special = np.array(
        [
            [180.0, 0.0],
            [-180.0, 0.0],
            [179.999999, 37.5],
            [-179.999999, 37.5],
            [0.0, 90.0],
            [0.0, -90.0],
            [180.0, 90.0],
            [-180.0, -90.0],
            [-45.0, 89.99999],
            [0.0, 0.0],
        ]
    )
    return np.concatenate([np.stack([lon, lat], axis=1), special])


#: Largest |difference| allowed between a float32 encoder and the float64
#: reference (GeoCLIP's embeddings are of order 1e-2 to 1e-1).
FLOAT32_TOLERANCE = 1e-5


# --------------------------------------------------------------------------
# Parity on random weights in GeoCLIP's layout
# --------------------------------------------------------------------------


@pytest.fixture(scope='module')
def full_state() -> dict[str, torch.Tensor]:
    """Random weights with the released encoder's sizes (27 tensors)."""
    return random_geoclip_state()


@pytest.fixture(scope='module')
def full_reference(full_state: dict[str, torch.Tensor]) -> tuple[np.ndarray, ...]:
    lonlat = global_lonlat(300)
    expected = reference_geoclip(lonlat[:, ::-1].copy(), numpy_state(full_state))
    return lonlat, expected


def test_random_state_is_geoclip_layout(full_state: dict[str, torch.Tensor]) -> None:
    assert len(full_state) == 27
    assert is_geoclip_state_dict(full_state)
    assert not is_geoclip_state_dict({'model.location.nnet.layers.0.weight': 0})


def test_parity_float64(
    full_state: dict[str, torch.Tensor], full_reference: tuple[np.ndarray, ...]
) -> None:
    lonlat, expected = full_reference
    encoder = geoclip_location_encoder(full_state)
    assert encoder.embed_dim == 512
    with torch.no_grad():
        out = encoder(torch.from_numpy(lonlat)).numpy()
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)


def test_parity_float32(
    full_state: dict[str, torch.Tensor], full_reference: tuple[np.ndarray, ...]
) -> None:
    lonlat, expected = full_reference
    encoder = geoclip_location_encoder(full_state, dtype=torch.float32)
    points = torch.from_numpy(lonlat).float()
    # The reference sees the same float32-rounded points.
    expected = reference_geoclip(
        points.double().numpy()[:, ::-1].copy(), numpy_state(full_state)
    )
    with torch.no_grad():
        out = encoder(points)
    assert out.dtype == torch.float32
    error = np.abs(out.double().numpy() - expected).max()
    assert error <= FLOAT32_TOLERANCE, error
    assert np.abs(expected).max() > 100 * FLOAT32_TOLERANCE  # a meaningful bound


@pytest.mark.parametrize(
    ('sizes', 'sigmas'),
    [
        (
            {'encoded_size': 8, 'capacity': 16, 'embed_dim': 4, 'hidden_layers': 1},
            SIGMAS,
        ),
        (
            {'encoded_size': 4, 'capacity': 8, 'embed_dim': 3, 'hidden_layers': 2},
            (2.0, 32.0),
        ),
    ],
)
def test_parity_other_sizes(sizes: dict[str, int], sigmas: tuple[float, ...]) -> None:
    state = random_geoclip_state(sigmas=sigmas, seed=1, **sizes)
    lonlat = global_lonlat(200, seed=1)
    encoder = geoclip_location_encoder(state)
    assert encoder.nnet.num_branches == len(sigmas)
    assert encoder.nnet.num_layers == sizes['hidden_layers']
    with torch.no_grad():
        out = encoder(torch.from_numpy(lonlat)).numpy()
    expected = reference_geoclip(lonlat[:, ::-1].copy(), numpy_state(state))
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_lat_lon_order_matters(full_state: dict[str, torch.Tensor]) -> None:
    """Ours takes (lon, lat): feeding GeoCLIP's (lat, lon) gives other embeddings."""
    encoder = geoclip_location_encoder(full_state)
    paris = torch.tensor([[2.35, 48.86]], dtype=torch.float64)
    with torch.no_grad():
        right = encoder(paris).numpy()
        swapped = encoder(paris.flip(1)).numpy()
    expected = reference_geoclip(np.array([[48.86, 2.35]]), numpy_state(full_state))
    np.testing.assert_allclose(right, expected, rtol=0, atol=1e-10)
    assert np.abs(swapped - expected).max() > 1e-3


def test_conversion_layout(full_state: dict[str, torch.Tensor]) -> None:
    architecture, converted = geoclip_to_encoder_state_dict(full_state)
    assert architecture == {
        'sigmas': SIGMAS,
        'encoded_size': 256,
        'capacity': 1024,
        'num_hidden_layers': 3,
        'embed_dim': 512,
    }
    assert converted['posenc.b'].shape == (3, 256, 2)
    torch.testing.assert_close(
        converted['posenc.b'][2], full_state['LocEnc2.capsule.0.b'].double()
    )
    assert (
        converted['nnet.branches.1.layers.4.weight']
        is full_state['LocEnc1.capsule.5.weight']
    )
    assert (
        converted['nnet.branches.0.last_layer.bias']
        is full_state['LocEnc0.head.0.bias']
    )
    assert len(converted) == 1 + 3 * 8


def test_sigmas_of_other_branch_counts() -> None:
    """Without GeoCLIP's three branches, the scales are the matrices' spreads."""
    state = random_geoclip_state(8, 8, 4, 1, sigmas=(1.0, 64.0), seed=2)
    architecture, _ = geoclip_to_encoder_state_dict(state)
    low, high = architecture['sigmas']
    assert 0.5 < low < 2.0
    assert 32.0 < high < 128.0


def test_new_encoder_has_geoclip_architecture() -> None:
    encoder = geoclip_location_encoder()
    assert isinstance(encoder.nnet, MultiScaleMLP)
    assert encoder.posenc.sigmas == SIGMAS
    assert encoder.embed_dim == 512
    assert not encoder.training
    n_params = sum(p.numel() for p in encoder.parameters())
    assert n_params == 3 * (512 * 1024 + 2 * 1024 * 1024 + 1024 * 512 + 3 * 1024 + 512)
    # Its state dict loads a converted GeoCLIP state dict strictly.
    _, converted = geoclip_to_encoder_state_dict(random_geoclip_state(seed=3))
    encoder.load_state_dict(converted, strict=True)


# --------------------------------------------------------------------------
# Bad state dicts: specific errors
# --------------------------------------------------------------------------


def small_state() -> dict[str, torch.Tensor]:
    return random_geoclip_state(8, 16, 4, 2, seed=4)


@pytest.mark.parametrize(
    ('change', 'match'),
    [
        (
            lambda s: s.update({'LocEnc0.extra.weight': torch.zeros(1)}),
            'unexpected keys',
        ),
        (lambda s: s.pop('LocEnc1.head.0.bias'), "missing key 'LocEnc1.head.0.bias'"),
        (
            lambda s: [s.pop(k) for k in list(s) if k.startswith('LocEnc1.')],
            r'LocEnc0 \.\. LocEnc<S-1>, found \[0, 2\]',
        ),
        (
            lambda s: s.update({'LocEnc2.capsule.3.weight': torch.zeros(16, 15)}),
            r'LocEnc2.capsule.3.weight has shape \(16, 15\), expected \(16, 16\)',
        ),
        (
            lambda s: s.update({'LocEnc1.capsule.0.b': torch.zeros(7, 2)}),
            r'LocEnc1.capsule.0.b has shape \(7, 2\)',
        ),
        (
            lambda s: s.update({'LocEnc0.capsule.0.b': torch.zeros(8, 3)}),
            r'expected \(E, 2\)',
        ),
        (
            lambda s: s.update({'LocEnc0.capsule.7.weight': torch.zeros(16, 16)}),
            r'capsule.1, capsule.3, capsule.5',
        ),
        (
            lambda s: s.update(
                {'LocEnc0.head.0.bias': torch.zeros(4, dtype=torch.long)}
            ),
            'expected a float tensor',
        ),
        # A NaN or an infinity was loaded as it was, and every point then
        # embedded as NaN (the SatCLIP layouts were refused, GeoCLIP's not).
        (
            lambda s: s['LocEnc1.capsule.3.weight'].__setitem__((2, 5), torch.nan),
            r'LocEnc1.capsule.3.weight has 1 non-finite value',
        ),
        (
            lambda s: s['LocEnc2.capsule.0.b'].__setitem__((0, 1), torch.inf),
            r'LocEnc2.capsule.0.b has 1 non-finite value',
        ),
        (
            lambda s: s['LocEnc0.head.0.bias'].fill_(-torch.inf),
            r'LocEnc0.head.0.bias has 4 non-finite values',
        ),
    ],
)
def test_bad_state_dicts(change: Any, match: str) -> None:
    state = small_state()
    change(state)
    with pytest.raises(ValueError, match=match):
        geoclip_to_encoder_state_dict(state)
    with pytest.raises(CheckpointError, match=match):
        load_location_encoder(state)


# --------------------------------------------------------------------------
# Loading: file paths, the installed distribution, the enum member
# --------------------------------------------------------------------------


def test_load_from_pth_path(tmp_path: Path) -> None:
    state = small_state()
    path = tmp_path / 'location_encoder_weights.pth'
    torch.save(state, path)
    encoder = load_location_encoder(path, dtype=torch.float32)
    assert isinstance(encoder, LocationEncoder)
    assert encoder.dtype == torch.float32
    lonlat = global_lonlat(20)
    with torch.no_grad():
        out = load_location_encoder(str(path))(torch.from_numpy(lonlat)).numpy()
    expected = reference_geoclip(lonlat[:, ::-1].copy(), numpy_state(state))
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_pth_read_with_weights_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / 'location_encoder_weights.pth'
    torch.save(small_state(), path)
    calls: list[dict[str, Any]] = []
    real_load = torch.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy)
    load_location_encoder(path)
    assert calls
    assert all(call.get('weights_only') is True for call in calls)


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ('pickled code ran',))


def test_pth_with_pickled_code_refused(tmp_path: Path) -> None:
    path = tmp_path / 'location_encoder_weights.pth'
    state: dict[str, Any] = dict(small_state())
    state['evil'] = _Evil()
    torch.save(state, path)
    with pytest.raises(CheckpointError, match='refusing to load'):
        load_location_encoder(path)


@pytest.fixture
def fake_geoclip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, dict[str, torch.Tensor]]:
    """A fake installed geoclip first on sys.path, holding small random weights."""
    state = small_state()
    path = make_fake_distribution(tmp_path / 'site', state)
    monkeypatch.syspath_prepend(str(tmp_path / 'site'))
    return path, state


def test_missing_extra_is_one_clear_line(no_geoclip: None) -> None:
    for source in (
        'geoclip',
        'GEOCLIP',
        'GeoCLIPWeights.GEOCLIP',
        GeoCLIPWeights.GEOCLIP,
    ):
        with pytest.raises(GeoCLIPNotInstalledError) as info:
            load_location_encoder(source)
        message = str(info.value)
        assert '\n' not in message
        assert "'geoclip' package, which is not installed" in message
        assert 'pip install "torchgeo-satclip[geoclip]"' in message
    with pytest.raises(LookupError, match='not installed'):
        find_geoclip_weights()


def test_found_in_installed_distribution_without_import(
    fake_geoclip: tuple[Path, dict[str, torch.Tensor]],
) -> None:
    path, state = fake_geoclip
    assert find_geoclip_weights() == path.resolve()
    lonlat = global_lonlat(20)
    expected = reference_geoclip(lonlat[:, ::-1].copy(), numpy_state(state))
    for source in ('geoclip', 'GeoCLIPWeights.GEOCLIP', GeoCLIPWeights.GEOCLIP):
        encoder = satclip_location_encoder(source)
        with torch.no_grad():
            out = encoder(torch.from_numpy(lonlat)).numpy()
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    assert 'geoclip' not in sys.modules


def test_found_without_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution without a file list: the file's expected place is used."""
    path = make_fake_distribution(tmp_path, small_state(), with_record=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert find_geoclip_weights() == path.resolve()


def test_installed_without_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_fake_distribution(tmp_path, None)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        GeoCLIPNotInstalledError, match=r'1\.3\.0 is installed but has no'
    ):
        load_location_encoder('geoclip')


def test_weights_enum_two_steps(
    fake_geoclip: tuple[Path, dict[str, torch.Tensor]],
) -> None:
    member = GeoCLIPWeights.GEOCLIP
    assert member.meta['extra'] == 'geoclip'
    assert member.meta['file'] == 'geoclip/model/weights/location_encoder_weights.pth'
    assert member.architecture() == GEOCLIP_ARCHITECTURE
    # The fake file is small, so build its architecture from its shapes.
    architecture, _ = geoclip_to_encoder_state_dict(fake_geoclip[1])
    encoder = satclip_location_encoder(
        positional_encoding='rff',
        network='geoclip',
        embed_dim=architecture['embed_dim'],
        capacity=architecture['capacity'],
        num_hidden_layers=architecture['num_hidden_layers'],
        sigmas=architecture['sigmas'],
        encoded_size=architecture['encoded_size'],
    )
    encoder.load_state_dict(member.get_state_dict(progress=False), strict=True)
    loaded = load_location_encoder(member)
    points = torch.from_numpy(global_lonlat(10))
    with torch.no_grad():
        torch.testing.assert_close(encoder.eval()(points), loaded(points))


def test_unknown_name_mentions_geoclip() -> None:
    with pytest.raises(CheckpointError, match="nor 'geoclip'"):
        load_location_encoder('geoclip2')


@pytest.mark.parametrize(
    'name',
    [
        'SatCLIPWeights.GEOCLIP',
        'GeoCLIPWeights.SATCLIP_RESNET18_L10',
        'ResNet18_Weights.SATCLIP_RESNET18_L10',
    ],
)
def test_weights_name_of_the_wrong_class_is_refused(name: str) -> None:
    # The class before the dot was ignored: 'SatCLIPWeights.GEOCLIP' loaded
    # GeoCLIP's 512-d encoder, and any prefix named a SatCLIP member.
    assert released.weights_member(name) is None
    with pytest.raises(CheckpointError, match=re.escape(f'{name!r} is neither')):
        load_location_encoder(name)


@pytest.mark.parametrize(
    ('name', 'member'),
    [
        ('geoclip', 'GEOCLIP'),
        ('GeoCLIPWeights.GEOCLIP', 'GEOCLIP'),
        ('torchgeo_satclip.models.GeoCLIPWeights.geoclip', 'GEOCLIP'),
        ('SATCLIP_RESNET18_L10', 'SATCLIP_RESNET18_L10'),
        ('satclipweights.satclip_resnet50_l40', 'SATCLIP_RESNET50_L40'),
        ('SatCLIP_Weights.SATCLIP_VIT16_L40', 'SATCLIP_VIT16_L40'),  # TorchGeo's
    ],
)
def test_weights_names_resolve(name: str, member: str) -> None:
    found = released.weights_member(name)
    assert found is not None
    assert found.name == member


def test_satclip_weights_names_unchanged() -> None:
    assert 'GEOCLIP' not in weights_module.list_weights()


# --------------------------------------------------------------------------
# The network on its own
# --------------------------------------------------------------------------


def test_multiscale_mlp_sums_branches() -> None:
    torch.manual_seed(0)
    net = MultiScaleMLP(
        dim_in=12, dim_hidden=5, dim_out=3, num_layers=2, num_branches=3
    )
    x = torch.randn(7, 12)
    expected = sum(net.branches[i](x[:, 4 * i : 4 * i + 4]) for i in range(3))
    torch.testing.assert_close(net(x), expected)
    assert 'num_branches=3' in repr(net)


def test_multiscale_mlp_by_name() -> None:
    net = get_network(
        'geoclip', dim_in=1536, dim_hidden=1024, dim_out=512, num_layers=3
    )
    assert isinstance(net, MultiScaleMLP)
    assert net.num_branches == 3
    layers = net.branches[0].layers
    assert isinstance(layers, torch.nn.Sequential)
    assert len(layers) == 6  # three Linear + ReLU


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'dim_in': 10, 'num_branches': 3}, 'does not split into 3 equal blocks'),
        ({'dim_in': 12, 'num_branches': 0}, 'num_branches must be a positive'),
        ({'dim_in': 12, 'num_layers': 0}, 'num_layers must be at least 1'),
        ({'dim_in': 12, 'dim_out': 0}, 'dim_out must be a positive'),
    ],
)
def test_multiscale_mlp_invalid(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MultiScaleMLP(**kwargs)


# --------------------------------------------------------------------------
# The real file, when the geoclip extra is installed (never downloaded here)
# --------------------------------------------------------------------------


REAL = installed_geoclip_weights()
needs_real = pytest.mark.skipif(
    REAL is None,
    reason='the geoclip extra is not installed (pip install -e ".[tests]")',
)


@needs_real
def test_real_file_layout() -> None:
    assert REAL is not None
    state = torch.load(REAL, map_location='cpu', weights_only=True)
    assert len(state) == 27
    architecture, _ = geoclip_to_encoder_state_dict(state)
    assert architecture == {
        key: GEOCLIP_ARCHITECTURE[key]
        for key in (
            'sigmas',
            'encoded_size',
            'capacity',
            'num_hidden_layers',
            'embed_dim',
        )
    }
    # The drawn matrices have GeoCLIP's scales 2^0, 2^4, 2^8.
    spreads = [float(state[f'LocEnc{i}.capsule.0.b'].std()) for i in range(3)]
    for spread, sigma in zip(spreads, SIGMAS, strict=True):
        assert 0.9 * sigma < spread < 1.1 * sigma


@needs_real
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_real_file_parity(dtype: torch.dtype) -> None:
    assert REAL is not None
    state = torch.load(REAL, map_location='cpu', weights_only=True)
    encoder = load_location_encoder('geoclip', dtype=dtype)
    assert encoder.embed_dim == 512
    points = torch.from_numpy(global_lonlat(500, seed=5)).to(dtype)
    with torch.no_grad():
        out = encoder(points).double().numpy()
    expected = reference_geoclip(
        points.double().numpy()[:, ::-1].copy(), numpy_state(state)
    )
    tolerance = 1e-10 if dtype == torch.float64 else FLOAT32_TOLERANCE
    error = np.abs(out - expected).max()
    assert error <= tolerance, error
    assert np.abs(expected).max() > 100 * FLOAT32_TOLERANCE


def parity_report(num_points: int = 20000) -> str:
    """Max |ours - reference| on the installed weights, float64 and float32."""
    path = find_geoclip_weights()
    state = numpy_state(torch.load(path, map_location='cpu', weights_only=True))
    lines = [f'GeoCLIP weights: {path}']
    lonlat = global_lonlat(num_points, seed=6)
    for dtype in (torch.float64, torch.float32):
        points = torch.from_numpy(lonlat).to(dtype)
        with torch.no_grad():
            out = load_location_encoder('geoclip', dtype=dtype)(points).double().numpy()
        expected = reference_geoclip(points.double().numpy()[:, ::-1].copy(), state)
        lines.append(
            f'{dtype!s:>13}: max |ours - reference| = '
            f'{np.abs(out - expected).max():.2e} over {len(lonlat)} points '
            f'(poles and dateline included; max |embedding| '
            f'{np.abs(expected).max():.3f})'
        )
    return '\n'.join(lines)


if __name__ == '__main__':
    print(parity_report())


# --------------------------------------------------------------------------
# Low-precision encoders keep the frequency matrices unrounded
# --------------------------------------------------------------------------


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_low_precision_encoder_keeps_frequencies(dtype: torch.dtype) -> None:
    """A bf16 or fp16 encoder holds GeoCLIP's float32 frequencies exactly.

    Rounded to bfloat16, a frequency of the scale 2^8 (up to about 1,000)
    moves by up to 2, and its phase ``2 pi B v`` by radians: the
    features of that scale, and so the embeddings, were noise (40 % of the
    largest embedding value off in bfloat16, instead of the 0.6 % of the
    network's own rounding).
    """
    state = random_geoclip_state(32, 16, 4, 1, seed=2)
    frequencies = torch.stack([state[f'LocEnc{i}.capsule.0.b'] for i in range(3)])
    points = torch.from_numpy(global_lonlat(500, seed=2)).float()
    reference = geoclip_location_encoder(state)
    with torch.no_grad():
        features = reference.posenc(points.double())
        expected = reference(points.double())
    for encoder in (
        geoclip_location_encoder(state, dtype=dtype),
        load_location_encoder(state, dtype=dtype),
    ):
        assert encoder.dtype == dtype
        assert isinstance(encoder.posenc, RandomFourierFeatures)
        assert encoder.posenc.b.dtype == torch.float32
        assert torch.equal(encoder.posenc.b, frequencies)
        with torch.no_grad():
            low = encoder.posenc(points)
            out = encoder(points)
        assert out.dtype == dtype
        assert (low.double() - features).abs().max() < 1e-5
        error = (out.double() - expected).abs().max() / expected.abs().max()
        assert error < 0.03, error
    new = satclip_location_encoder(**GEOCLIP_ARCHITECTURE, dtype=dtype)
    assert isinstance(new.posenc, RandomFourierFeatures)
    assert torch.equal(new.posenc.b, RandomFourierFeatures().b.float())


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('how', ['to', 'method', 'parent'])
def test_converted_encoder_keeps_frequencies(dtype: torch.dtype, how: str) -> None:
    """``encoder.to(torch.bfloat16)`` keeps the frequency matrices unrounded.

    The class documents ``encoder.to(torch.bfloat16)`` (also what Lightning's
    ``bf16-true`` precision does to a task) as trading fidelity for speed, but
    it rounded the frequencies of random Fourier features to bfloat16: 57 %
    of the largest embedding value off, instead of the 0.5 % of an encoder
    built in bfloat16.
    """
    state = random_geoclip_state(32, 16, 4, 1, seed=2)
    frequencies = torch.stack([state[f'LocEnc{i}.capsule.0.b'] for i in range(3)])
    points = torch.from_numpy(global_lonlat(500, seed=2)).float()
    reference = geoclip_location_encoder(state)
    with torch.no_grad():
        expected = reference(points.double())
    encoder = geoclip_location_encoder(state)
    if how == 'to':
        encoder.to(dtype)
    elif how == 'method':
        encoder.half() if dtype == torch.float16 else encoder.bfloat16()
    else:
        torch.nn.Sequential(encoder).to(dtype)
    assert encoder.dtype == dtype
    assert isinstance(encoder.posenc, RandomFourierFeatures)
    assert encoder.posenc.b.dtype == torch.float32
    assert torch.equal(encoder.posenc.b, frequencies)
    with torch.no_grad():
        out = encoder(points)
    assert out.dtype == dtype
    error = (out.double() - expected).abs().max() / expected.abs().max()
    assert error < 0.03, error
    # Back to float64: the (float32) frequencies come back exactly.
    encoder.to(torch.float64)
    assert encoder.posenc.b.dtype == torch.float64
    assert torch.equal(encoder.posenc.b, frequencies.double())
