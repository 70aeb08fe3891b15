"""Bad checkpoints: file kinds x corruptions, each with its specific error.

Two families, generated:

* files that are not torch checkpoints (random bytes, JSON, NumPy, compressed
  files, text, archives, plain pickles, truncated torch files, directories):
  the loader must say what the file is, and keep "would run code" for the
  pickles that really would;
* checkpoints whose content is wrong (hyper-parameters of the wrong type,
  integer, boolean and non-finite weights, layers missing, copies that
  differ, odd keys and shapes), in memory and on disk: a ``CheckpointError``
  naming the key.

No case may load an encoder (a silent wrong answer).
"""

import bz2
import copy
import gzip
import io
import json
import lzma
import math
import os
import pickle
import re
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch

from torchgeo_satclip.models import (
    CheckpointError,
    build_location_encoder,
    load_location_encoder,
    read_checkpoint,
)

from .test_weights import official_checkpoint

MARKER = Path('/tmp/torchgeo_satclip_bad_checkpoints_pwned')


class Exploit:
    """Unpickling this runs ``os.system``."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f'touch {MARKER}',))


class MemoisedFirst:
    """A class whose module string the pickler memoises (with the next one)."""


class MemoisedSecond:
    """A second class of the same module: its module is a ``BINGET``."""


def small() -> dict[str, Any]:
    return official_checkpoint(legendre_polys=2, capacity=4, embed_dim=3)


def torch_bytes(obj: Any, **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_bytes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w') as archive:
        info = tarfile.TarInfo('model.ckpt')
        data = torch_bytes(small())
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def rng_bytes(size: int, seed: int) -> bytes:
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    # never a recognised magic number by chance
    return b'\x07' + data[1:] if data else data


CHECKPOINT = torch_bytes(small())

#: (case id, file content, fragment the message must hold)
NOT_CHECKPOINTS: list[tuple[str, bytes, str]] = [
    *(
        (f'random-{size}-{seed}', rng_bytes(size, seed), 'it is unrecognised data')
        for size in (1, 7, 512, 4096)
        for seed in (0, 1, 2)
    ),
    ('empty', b'', 'it is an empty file (0 bytes)'),
    # one to three bytes none of which is UTF-8 were 'a text file' (the
    # allowance for a character cut by the 512-byte read left no text)
    *(
        (f'high-bytes-{len(data)}', data, 'it is unrecognised data')
        for data in (b'\x80', b'\xff\xfe', b'\xc3', b'\x93\xa0\xe2')
    ),
    *(
        (f'json-{i}', json.dumps(value).encode(), 'it is a JSON file')
        for i, value in enumerate(
            [
                {'state_dict': {'nnet.layers.0.weight': [[1.0]]}},
                [1, 2, 3],
                {'hyper_parameters': {'legendre_polys': 10}},
                'text',
                3.5,
                None,
            ]
        )
    ),
    ('json-pretty', b'\n  {\n "a": 1\n}\n', 'it is a JSON file'),
    ('text', b'lon,lat\n2.35,48.86\n', 'it is a text file'),
    ('text-yaml', b'model:\n  class_path: x\n', 'it is a text file'),
    ('text-json-broken', b'{"a": ', 'it is a text file'),
    *(
        (f'npy-{dtype}', npy_bytes(np.zeros((3, 2), dtype=dtype)), 'a NumPy .npy array')
        for dtype in ('float64', 'float32', 'int64', 'bool', 'uint16')
    ),
    ('npz', npz_bytes(a=np.zeros(2)), 'a NumPy .npz archive'),
    ('npz-two', npz_bytes(a=np.zeros(2), b=np.ones(3)), 'a NumPy .npz archive'),
    ('zip-text', zip_bytes({'x.txt': b'hi'}), 'a zip archive without a torch record'),
    (
        'zip-empty',
        zip_bytes({}),
        'a zip archive without a torch record (members: none)',
    ),
    ('gzip-text', gzip.compress(b'hello'), 'a gzip-compressed file'),
    ('gzip-checkpoint', gzip.compress(CHECKPOINT), 'a gzip-compressed file'),
    ('bz2-checkpoint', bz2.compress(CHECKPOINT), 'a bzip2-compressed file'),
    ('xz-checkpoint', lzma.compress(CHECKPOINT), 'an xz-compressed file'),
    ('zstd-magic', b'\x28\xb5\x2f\xfd' + bytes(16), 'a zstd-compressed file'),
    ('hdf5-magic', b'\x89HDF\r\n\x1a\n' + bytes(32), 'an HDF5 file'),
    ('tar', tar_bytes(), 'a tar archive'),
    (
        'safetensors',
        b'\x10\x00\x00\x00\x00\x00\x00\x00{"a": {}}      ',
        'a safetensors',
    ),
    *(
        (
            f'pickle-data-p{protocol}',
            pickle.dumps({'a': [1, 2]}, protocol=protocol),
            'a Python pickle of plain data',
        )
        for protocol in (2, 3, 4, 5)
    ),
    ('pickle-damaged', b'\x80\x04\x95\xff\xff', 'a damaged Python pickle'),
]

#: Files that would run code: the refusal must say so (and name the call).
RUNS_CODE: list[tuple[str, bytes, str]] = [
    *(
        (
            f'plain-pickle-p{protocol}',
            pickle.dumps(Exploit(), protocol=protocol),
            'would run code',
        )
        # protocols 0 and 1 have no PROTO header: protocol 0 was called 'a
        # text file', protocol 1 'unrecognised data'
        for protocol in (0, 1, 2, 3, 4, 5)
    ),
    *(
        (
            f'plain-pickle-dict-p{protocol}',
            pickle.dumps({'state_dict': Exploit()}, protocol=protocol),
            'would run code',
        )
        for protocol in (0, 1, 2, 4)
    ),
    ('torch-zip-exploit', torch_bytes({**small(), 'x': Exploit()}), 'would run code'),
    (
        'torch-legacy-exploit',
        torch_bytes({**small(), 'x': Exploit()}, _use_new_zipfile_serialization=False),
        'would run code',
    ),
    ('torch-numpy', torch_bytes({**small(), 'x': np.zeros(2)}), 'would run code'),
]

#: Damaged torch files: cut anywhere.
TRUNCATED: list[tuple[str, bytes, str]] = [
    (
        f'truncated-{fraction}',
        CHECKPOINT[: int(len(CHECKPOINT) * fraction)],
        'cannot read checkpoint',
    )
    for fraction in (0.1, 0.5, 0.9, 0.99)
]


@pytest.fixture(autouse=True)
def _no_marker() -> Any:
    MARKER.unlink(missing_ok=True)
    yield
    assert not MARKER.exists(), 'a pickle ran code'


@pytest.mark.filterwarnings('ignore:Detected pickle protocol')
@pytest.mark.parametrize(
    ('content', 'fragment'),
    [case[1:] for case in NOT_CHECKPOINTS],
    ids=[case[0] for case in NOT_CHECKPOINTS],
)
def test_not_a_checkpoint(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / 'model.ckpt'
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_location_encoder(path)
    message = str(info.value)
    assert f'{path} is not a torch checkpoint' in message
    assert fragment in message
    assert 'run code' not in message  # the untrue message of issue 13


@pytest.mark.filterwarnings('ignore:Detected pickle protocol')
@pytest.mark.parametrize(
    ('content', 'fragment'),
    [case[1:] for case in RUNS_CODE],
    ids=[case[0] for case in RUNS_CODE],
)
def test_code_running_pickles_refused(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    path = tmp_path / 'evil.ckpt'
    path.write_bytes(content)
    with pytest.raises(
        CheckpointError, match=f'refusing to load {re.escape(str(path))}'
    ) as info:
        load_location_encoder(path)
    assert fragment in str(info.value)
    assert re.search(r'it calls [\w.]+', str(info.value)), str(info.value)


@pytest.mark.parametrize(
    ('content', 'fragment'),
    [case[1:] for case in TRUNCATED],
    ids=[case[0] for case in TRUNCATED],
)
def test_truncated(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / 'cut.ckpt'
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=re.escape(f'{fragment} {path}')):
        load_location_encoder(path)


def test_unused_space2vec_values_do_not_refuse_a_checkpoint() -> None:
    """A spherical-harmonics checkpoint loads whatever its unused keys hold."""
    ckpt = small()
    ckpt['hyper_parameters'].update(frequency_num=0, min_radius=-1, max_radius='x')
    assert load_location_encoder(ckpt).embed_dim == 3


def test_harmonics_calculation_is_read_only_by_spherical_harmonics() -> None:
    """The original code passes it to spherical harmonics alone."""
    ckpt = space2vec()
    ckpt['hyper_parameters']['harmonics_calculation'] = 'closed-form'
    assert load_location_encoder(ckpt).embed_dim == 3
    analytic = small()
    for value in ('analytic', None):
        analytic['hyper_parameters']['harmonics_calculation'] = value
        assert load_location_encoder(analytic).embed_dim == 3


def test_directory_and_missing(tmp_path: Path) -> None:
    with pytest.raises(
        CheckpointError, match='is a directory, expected a checkpoint file'
    ):
        load_location_encoder(tmp_path)
    with pytest.raises(CheckpointError, match='checkpoint file not found'):
        load_location_encoder(tmp_path / 'absent.ckpt')


@pytest.mark.parametrize('source', ['', '  '])
def test_empty_path(source: str) -> None:
    """An empty path is the current folder to pathlib: it was refused as
    "'.' is a directory, expected a checkpoint file", naming no mistake."""
    from torchgeo_satclip.models import satclip_location_encoder

    with pytest.raises(CheckpointError, match='an empty path: expected a checkpoint'):
        load_location_encoder(source)
    with pytest.raises(CheckpointError, match='an empty path'):
        satclip_location_encoder(source)


# --------------------------------------------------------------------------
# Corruptions of the content, each a function of a (deep-copied) checkpoint.

Corruption = Callable[[dict[str, Any]], None]
NNET_KEYS = (
    'layers.0.weight',
    'layers.0.bias',
    'layers.1.weight',
    'layers.1.bias',
    'last_layer.weight',
    'last_layer.bias',
)
PREFIX = 'model.location.nnet.'


def set_hparam(key: str, value: Any) -> Corruption:
    def corrupt(ckpt: dict[str, Any]) -> None:
        ckpt['hyper_parameters'][key] = value

    return corrupt


def set_weight(
    key: str, make: Callable[[torch.Tensor], Any], both: bool = True
) -> Corruption:
    def corrupt(ckpt: dict[str, Any]) -> None:
        state = ckpt['state_dict']
        for prefix in (PREFIX, 'model.nnet.') if both else (PREFIX,):
            state[prefix + key] = make(state[prefix + key])

    return corrupt


def poison(value: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def make(tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        out.view(-1)[-1] = value
        return out

    return make


def drop_hparams(ckpt: dict[str, Any]) -> None:
    del ckpt['hyper_parameters']


def then(*steps: Corruption) -> Corruption:
    def corrupt(ckpt: dict[str, Any]) -> None:
        for step in steps:
            step(ckpt)

    return corrupt


def drop_layer(
    index: int, prefixes: tuple[str, ...] = (PREFIX, 'model.nnet.')
) -> Corruption:
    def corrupt(ckpt: dict[str, Any]) -> None:
        for prefix in prefixes:
            for name in ('weight', 'bias'):
                del ckpt['state_dict'][f'{prefix}layers.{index}.{name}']

    return corrupt


def three_layers() -> dict[str, Any]:
    return official_checkpoint(
        legendre_polys=2, capacity=4, embed_dim=3, num_hidden_layers=3
    )


def space2vec() -> dict[str, Any]:
    """A checkpoint of a grid + SIREN encoder, laid out as the original's."""
    hparams = {
        'le_type': 'grid',
        'pe_type': 'siren',
        'frequency_num': 4,
        'min_radius': 1,
        'max_radius': 360,
        'legendre_polys': 10,
        'capacity': 4,
        'embed_dim': 3,
        'num_hidden_layers': 2,
    }
    arguments: dict[str, Any] = {
        k: v for k, v in hparams.items() if k not in ('le_type', 'pe_type')
    }
    encoder = build_location_encoder('grid', 'siren', **arguments)
    state = {PREFIX + k: v for k, v in encoder.nnet.state_dict().items()}
    return {'state_dict': state, 'hyper_parameters': hparams}


SIZE_KEYS = ('legendre_polys', 'embed_dim', 'capacity', 'num_hidden_layers')
NAME_KEYS = ('le_type', 'pe_type', 'positional_encoding', 'location_network')

#: (case id, make the checkpoint, corruption, fragment of the message)
CORRUPTIONS: list[tuple[str, Callable[[], dict[str, Any]], Corruption, str]] = [
    *(
        (
            f'hparam-{key}={value!r}',
            small,
            set_hparam(key, value),
            f"hyper_parameters['{key}'] must be an integer, got {value!r}",
        )
        for key in SIZE_KEYS
        for value in ('10', 10.5, 2.0, True, [2], b'2')
    ),
    *(
        (
            f'hparam-{key}={value}',
            small,
            set_hparam(key, value),
            f"hyper_parameters['{key}'] must be at least 1, got {value}",
        )
        for key in SIZE_KEYS
        for value in (0, -1)
    ),
    *(
        (
            f'hparam-{key}={value!r}',
            small,
            set_hparam(key, value),
            f"hyper_parameters['{key}'] must be a name (a string)",
        )
        for key in NAME_KEYS
        for value in (5, ['siren'], b'siren', 1.5)
    ),
    *(
        (f'hparam-{key}-unknown', small, set_hparam(key, 'nope'), 'unknown')
        for key in ('le_type', 'pe_type')
    ),
    *(
        (
            f'hparam-{key}={value!r}',
            space2vec,
            set_hparam(key, value),
            f'{key} must be',
        )
        for key in ('frequency_num', 'min_radius', 'max_radius')
        for value in ('16', True, -1, 0, math.nan, [1])
    ),
    *(
        (
            f'hyper_parameters={value!r}',
            small,
            (lambda v: lambda c: c.__setitem__('hyper_parameters', v))(value),
            f'hyper_parameters is a {type(value).__name__}, expected a dict',
        )
        for value in ([1, 2], 'legendre_polys=2', 3, (('a', 1),))
    ),
    *(
        # the original's other spherical harmonics: another basis
        (
            f'harmonics_calculation={value!r}',
            small,
            set_hparam('harmonics_calculation', value),
            f"hyper_parameters['harmonics_calculation'] is {value!r}",
        )
        for value in ('closed-form', 'discretized', 5)
    ),
    *(
        (
            f'positional_encoding_kwargs={value!r}',
            small,
            set_hparam('positional_encoding_kwargs', value),
            "hyper_parameters['positional_encoding_kwargs']",
        )
        for value in ([1], 'x', {1: 2}, 3)
    ),
    *(
        (
            f'state_dict={type(value).__name__}',
            small,
            (lambda v: lambda c: c.__setitem__('state_dict', v))(value),
            f'state_dict is a {type(value).__name__}',
        )
        for value in ([1], 'x', 3)
    ),
    (
        'state_dict-int-key',
        small,
        lambda c: c['state_dict'].__setitem__(0, torch.zeros(1)),
        'state_dict key 0 is a int, expected a string',
    ),
    *(
        (
            f'{key}-{dtype}',
            small,
            set_weight(
                key, cast(Callable[[torch.Tensor], Any], lambda t, d=dtype: t.to(d))
            ),
            f'{PREFIX}{key} has dtype {dtype}, expected a floating dtype',
        )
        for key in NNET_KEYS
        for dtype in (
            torch.int64,
            torch.int32,
            torch.bool,
            torch.uint8,
            torch.complex128,
        )
    ),
    *(
        (
            f'{key}-{value}',
            small,
            set_weight(key, poison(value)),
            f'{PREFIX}{key} has 1 non-finite value (NaN or infinity)',
        )
        for key in NNET_KEYS
        for value in (math.nan, math.inf, -math.inf)
    ),
    *(
        (
            f'{key}-all-nan-no-hparams',
            small,
            then(drop_hparams, set_weight(key, lambda t: torch.full_like(t, math.nan))),
            f'{PREFIX}{key} has',
        )
        for key in NNET_KEYS
    ),
    *(
        (
            f'{key}-is-{kind}',
            small,
            set_weight(key, make),
            f'{PREFIX}{key} is a {kind}, expected a tensor',
        )
        for key in NNET_KEYS
        for kind, make in (
            ('list', lambda t: t.tolist()),
            ('float', lambda t: 1.0),
            ('ndarray', lambda t: t.numpy()),
        )
    ),
    *(
        (
            f'nan-only-in-one-copy-{key}',
            small,
            set_weight(key, poison(math.nan), both=False),
            f'{PREFIX}{key} has 1 non-finite value',
        )
        for key in NNET_KEYS
    ),
    *(
        (
            f'copies-differ-{key}',
            small,
            set_weight(key, lambda t: t + 1e-3, both=False),
            f'differ at {key}',
        )
        for key in NNET_KEYS
    ),
    (
        'hidden-layer-gap-no-hparams',
        three_layers,
        then(drop_hparams, drop_layer(1)),
        'the hidden layers are not contiguous: found layers 0, 2, layers.1 is missing',
    ),
    (
        'last-hidden-layer-lost-in-one-copy',
        three_layers,
        then(drop_hparams, drop_layer(2, (PREFIX,))),
        'copies of the location network',
    ),
    (
        'last-hidden-layer-lost-with-hparams',
        three_layers,
        drop_layer(2),
        'hyper_parameters say num_hidden_layers=3 but the weights have num_hidden_layers=2',
    ),
    (
        'first-layer-lost-no-hparams',
        small,
        then(drop_hparams, drop_layer(0)),
        "missing key 'layers.0.weight'",
    ),
    (
        'layer-index-not-a-number',
        small,
        then(
            drop_hparams,
            lambda c: c['state_dict'].__setitem__(
                PREFIX + 'layers.x.weight', torch.zeros(4, 4, dtype=torch.float64)
            ),
        ),
        'expected layers.<number>.weight or .bias',
    ),
    (
        'layer-index-a-superscript-digit',  # '²'.isdigit() is true, int('²') fails
        small,
        then(
            drop_hparams,
            lambda c: c['state_dict'].__setitem__(
                PREFIX + 'layers.\u00b2.weight', torch.zeros(4, 4, dtype=torch.float64)
            ),
        ),
        'expected layers.<number>.weight or .bias',
    ),
    *(
        (
            f'{key}-1d-no-hparams',
            small,
            then(drop_hparams, set_weight(key, lambda t: t.reshape(-1))),
            f'{key} has shape',
        )
        for key in ('layers.0.weight', 'last_layer.weight')
    ),
    (
        'input-not-a-square',
        small,
        then(drop_hparams, set_weight('layers.0.weight', lambda t: t[:, :3])),
        'not a square number',
    ),
    *(
        (
            f'hparams-disagree-{key}',
            small,
            set_hparam(key, value),
            f'hyper_parameters say {key}={value} but the weights have',
        )
        for key, value in (
            ('legendre_polys', 3),
            ('capacity', 8),
            ('embed_dim', 5),
            ('num_hidden_layers', 3),
        )
    ),
    *(
        (
            f'wrong-shape-{key}',
            small,
            set_weight(key, lambda t: torch.cat([t, t])),
            f'{key} has shape',
        )
        for key in ('layers.1.weight', 'layers.1.bias', 'last_layer.bias')
    ),
    (
        'no-location-weights',
        small,
        lambda c: c.__setitem__(
            'state_dict', {'model.visual.fc.weight': torch.zeros(2, 2)}
        ),
        'no location-encoder weights found',
    ),
]


@pytest.mark.parametrize('where', ['memory', 'file'])
@pytest.mark.parametrize(
    ('make', 'corrupt', 'fragment'),
    [case[1:] for case in CORRUPTIONS],
    ids=[case[0] for case in CORRUPTIONS],
)
def test_corrupted_checkpoint(
    tmp_path: Path,
    where: str,
    make: Callable[[], dict[str, Any]],
    corrupt: Corruption,
    fragment: str,
) -> None:
    ckpt = copy.deepcopy(make())
    load_location_encoder(copy.deepcopy(ckpt))  # the intact one loads
    corrupt(ckpt)
    source: Any = ckpt
    origin = 'state dict'
    if where == 'file':
        source = tmp_path / 'bad.ckpt'
        try:
            torch.save(ckpt, source)
        except (TypeError, pickle.PicklingError):  # pragma: no cover
            pytest.skip('not savable')
        origin = str(source)
    state = ckpt['state_dict']
    if where == 'file' and any(
        isinstance(value, np.ndarray)
        for value in (state.values() if isinstance(state, dict) else ())
    ):
        fragment = 'would run code'  # unpickling an array calls numpy
    with pytest.raises(CheckpointError) as info:
        load_location_encoder(source)
    message = str(info.value)
    assert fragment in message, message
    assert origin in message, message


@pytest.mark.filterwarnings('ignore:Detected pickle protocol')
@pytest.mark.parametrize('protocol', [2, 3])
def test_legacy_torch_files_of_protocols_2_and_3_are_read(
    tmp_path: Path, protocol: int
) -> None:
    """torch.load(weights_only=True) reads them; protocol 3 was refused as
    'a Python pickle of plain data'."""
    original = torch.load(io.BytesIO(CHECKPOINT), weights_only=True)
    path = tmp_path / 'legacy.pt'
    path.write_bytes(
        torch_bytes(
            original, _use_new_zipfile_serialization=False, pickle_protocol=protocol
        )
    )
    loaded = read_checkpoint(path)
    assert loaded.keys() == original.keys()
    for key, value in original['state_dict'].items():
        assert torch.equal(loaded['state_dict'][key], value)


@pytest.mark.parametrize('protocol', [4, 5])
def test_legacy_torch_files_torch_cannot_read_are_named(
    tmp_path: Path, protocol: int
) -> None:
    """Not 'a Python pickle of plain data' (nor code, as torch's error says)."""
    path = tmp_path / 'legacy.pt'
    path.write_bytes(
        torch_bytes(
            small(), _use_new_zipfile_serialization=False, pickle_protocol=protocol
        )
    )
    with pytest.raises(
        CheckpointError,
        match=rf'legacy \(pre-zip\) torch file of pickle protocol {protocol}',
    ):
        read_checkpoint(path)


def _module_global(cls: type) -> str:
    return f'{cls.__module__}.{cls.__qualname__}'


@pytest.mark.parametrize('protocol', [2, 4, 5])
@pytest.mark.parametrize(
    ('make', 'calls'),
    [
        # the module string of the second class comes from the memo
        (lambda: [MemoisedFirst(), MemoisedSecond()], [MemoisedFirst, MemoisedSecond]),
        # the class name is the string already pickled as data: a BINGET
        (lambda: [MemoisedSecond.__qualname__, MemoisedSecond()], [MemoisedSecond]),
        (
            lambda: ['data', MemoisedFirst.__qualname__, MemoisedFirst()],
            [MemoisedFirst],
        ),
        # the same class twice: the class itself is memoised
        (lambda: {'a': MemoisedFirst(), 'b': MemoisedFirst()}, [MemoisedFirst]),
    ],
    ids=['two-classes', 'name-memoised', 'name-after-data', 'same-class'],
)
def test_code_running_pickle_names_memoised_globals(
    tmp_path: Path, make: Callable[[], Any], calls: list[type], protocol: int
) -> None:
    """STACK_GLOBAL was named from the last two strings of the pickle: when
    its module or name came from the memo (protocol 4 and 5), the message
    named a global that does not exist ('MemoisedFirst.MemoisedSecond',
    'MemoisedSecond.tests.models...')."""
    path = tmp_path / 'memo.ckpt'
    path.write_bytes(pickle.dumps(make(), protocol=protocol))
    with pytest.raises(CheckpointError, match='would run code') as info:
        load_location_encoder(path)
    named = ', '.join(_module_global(cls) for cls in calls)
    assert f'(it calls {named})' in str(info.value)


@pytest.mark.filterwarnings('ignore:Detected pickle protocol')
@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])
def test_truncated_torch_files_are_named_truncated(
    tmp_path: Path, legacy: bool
) -> None:
    """A cut legacy file ended its message with a bare 'EOFError: ' (or
    'IndexError: index out of range'), or was refused as a pickle that
    'would run code (it calls torch.Flo)', a global cut in half; a cut zip
    file as 'OSError: [Errno 22] Invalid argument'."""
    content = torch_bytes(small(), _use_new_zipfile_serialization=not legacy)
    path = tmp_path / 'cut.ckpt'
    header = 16  # shorter cuts are not recognisable as torch files at all
    step = max(1, (len(content) - header) // 97)
    for cut in range(header, len(content), step):
        path.write_bytes(content[:cut])
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(path)
        message = str(info.value)
        assert f'cannot read checkpoint {path}: it is truncated' in message, (
            cut,
            message,
        )
        assert 'run code' not in message, (cut, message)
        assert not message.rstrip().endswith(':'), (cut, message)
