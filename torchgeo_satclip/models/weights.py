"""One loader of location encoders for every source, and the one factory.

:func:`load_location_encoder` is the single entry point. It accepts

* a path to an official SatCLIP Lightning checkpoint (any of the six released
  ones, or one trained with the original code), or to a checkpoint written by
  :func:`~torchgeo_satclip.models.export.save_official_checkpoint`;
* a :class:`SatCLIPWeights` member or its name (downloads the checkpoint into
  the torch hub cache only if it is not there yet);
* a TorchGeo 0.10 ``SatCLIP_Weights`` member;
* :attr:`GeoCLIPWeights.GEOCLIP` or ``'geoclip'``: GeoCLIP's pretrained
  location encoder, read from the installed ``geoclip`` distribution (the
  ``geoclip`` extra), or the path of its ``location_encoder_weights.pth``;
* an in-memory checkpoint or state dict (a mapping of names to tensors).

Files are always read with ``torch.load(..., weights_only=True)``: a checkpoint
whose pickle would run code is refused. Only the location encoder is built;
no image encoder, no network access for a local path.

The weights members (:class:`SatCLIPWeights`, :class:`GeoCLIPWeights`), their
lists, :func:`download_checkpoint` and :func:`expected_sha256` are defined in
:mod:`.released`, the one module that imports torchvision (for
``WeightsEnum``, about two seconds), and are importable from here as before:
they are re-exported on first access (PEP 562), and imported by the loader
only when a member or a weights name is used. A checkpoint path, a state dict
or a new encoder does not import torchvision.
"""

import hashlib
import inspect
import math
import os
import pickle
import pickletools
import re
import struct
import zipfile
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import torch
from torch import Tensor

from .._checks import check_dtype, check_flag, check_int, check_name, check_real
from .._lazy import lazy_exports
from ._file_kinds import sniff_checkpoint
from .geoclip import (
    find_geoclip_weights,
    geoclip_location_encoder,
    is_geoclip_state_dict,
)
from .location_encoder import LocationEncoder, _to_dtype, build_location_encoder
from .positional import POSITIONAL_ENCODINGS

if TYPE_CHECKING:
    from .released import (
        GeoCLIPWeights,
        SatCLIPWeights,
        download_checkpoint,
        expected_sha256,
        list_weights,
        weights_table,
    )

__all__ = [
    'CheckpointError',
    'ChecksumError',
    'DownloadError',
    'GeoCLIPNotInstalledError',
    'GeoCLIPWeights',
    'LocationSource',
    'SatCLIPWeights',
    'download_checkpoint',
    'expected_sha256',
    'find_geoclip_checkpoint',
    'list_weights',
    'load_location_encoder',
    'read_checkpoint',
    'satclip_location_encoder',
    'sha256sum',
    'weights_table',
]

#: Names defined in :mod:`.released` (which imports torchvision), re-exported
#: on first access.
_RELEASED = (
    'GeoCLIPWeights',
    'SatCLIPWeights',
    'download_checkpoint',
    'expected_sha256',
    'list_weights',
    'weights_table',
)


__getattr__, __dir__ = lazy_exports(globals(), dict.fromkeys(_RELEASED, '.released'))


#: Network key suffixes of a SIREN location encoder (besides ``layers.<i>``).
_NNET_PREFIXES = (
    'model.location.nnet.',
    'model.nnet.',
    'location_encoder.nnet.',
    'nnet.',
)


class CheckpointError(ValueError):
    """A checkpoint could not be read or does not hold a usable location encoder."""


class DownloadError(CheckpointError):
    """A released checkpoint is not cached and could not be downloaded."""


class ChecksumError(CheckpointError):
    """A downloaded checkpoint does not have its known sha256 (it is deleted)."""


class GeoCLIPNotInstalledError(CheckpointError):
    """GeoCLIP's weights were asked for, but no installed ``geoclip`` has them.

    Install them with ``pip install "torchgeo-satclip[geoclip]"``.
    """


def find_geoclip_checkpoint() -> Path:
    """Path of GeoCLIP's weights in the installed ``geoclip`` distribution.

    Returns:
        The path of ``location_encoder_weights.pth``.

    Raises:
        GeoCLIPNotInstalledError: if ``geoclip`` is not installed (the
            message names the extra that installs it).
    """
    try:
        return find_geoclip_weights()
    except LookupError as error:
        raise GeoCLIPNotInstalledError(str(error)) from None


def sha256sum(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file, in hex.

    Args:
        path: the file.

    Returns:
        Its 64-character hex digest.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        for block in iter(lambda: file.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _truncation(path: Path, error: Exception) -> str | None:
    """Why a torch file that ``torch.load`` failed on is cut short, if it is.

    Read without unpickling anything. A zip torch file ends with the zip
    directory. A legacy (pre-zip) one starts with five pickles (magic number,
    protocol, system information, the object, its storage keys), whose
    opcodes are walked to their ``STOP``, then the tensors' bytes, which
    ``torch.load`` reports running out of (``EOFError``, ``struct.error``,
    ``unexpected EOF``).

    Args:
        path: the file.
        error: what ``torch.load`` raised.

    Returns:
        What is cut off, or None if the file is not seen to be truncated.
    """
    with path.open('rb') as file:
        head = file.read(4)
        if head.startswith(b'PK'):
            try:
                with zipfile.ZipFile(file):
                    return None
            except (zipfile.BadZipFile, OSError, ValueError, EOFError):
                return 'the zip directory that ends every torch file is missing'
        if not head.startswith(b'\x80'):
            return None
        file.seek(0)
        for record in _LEGACY_RECORDS:
            try:
                for _ in pickletools.genops(file):
                    pass
            except ValueError:  # genops: the pickle ends before its STOP
                return f'it ends inside its {record}'
    if isinstance(error, EOFError | struct.error) or 'unexpected EOF' in str(error):
        return 'it ends inside its tensor data'
    return None


#: The pickles that start a legacy torch file, in order.
_LEGACY_RECORDS = (
    'magic number',
    'protocol version',
    'system information',
    'pickled object',
    'list of storages',
)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``torch.load`` a file with ``weights_only=True``, with errors naming it.

    What is not a ``torch.save`` file (JSON, NumPy arrays, compressed files,
    random bytes) is named as what it is before ``torch.load`` sees it; a
    torch file whose pickle would run code is refused as such. Every reader
    of checkpoints in the package goes through it (the location encoders
    here, the image backbones of
    :func:`~torchgeo_satclip.evaluation.load_image_backbone`).

    Args:
        path: the checkpoint file.

    Returns:
        The loaded dict, on the CPU.

    Raises:
        CheckpointError: naming the file, if it is missing, a directory,
            unreadable, not a torch file (saying what it is), a pickle that
            would run code, truncated (saying where it ends), damaged, or not
            a dict.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f'{path} is a directory, expected a checkpoint file')
    if not path.is_file():
        raise CheckpointError(f'checkpoint file not found: {path}')
    try:
        kind = sniff_checkpoint(path)
    except OSError as error:
        raise CheckpointError(
            f'cannot read checkpoint {path}: {error.strerror or error}'
        ) from None
    if kind is not None and kind.runs_code:
        raise CheckpointError(
            f'refusing to load {path}: it is not a torch checkpoint but '
            f'{kind.description}'
        )
    if kind is not None:
        raise CheckpointError(
            f'{path} is not a torch checkpoint: it is {kind.description}; expected '
            'a file written by torch.save or Lightning (.ckpt, .pt, .pth)'
        )
    try:
        loaded = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # torch raises many kinds for a damaged file
        cut = _truncation(path, error)
        if cut is not None:
            raise CheckpointError(
                f'cannot read checkpoint {path}: it is truncated ({cut}; an '
                'interrupted download or copy?): download or copy it again'
            ) from error
        if isinstance(error, pickle.UnpicklingError):
            found = re.search(r'GLOBAL ([\w.]+)', str(error))
            said = (
                f'it calls {found.group(1)}'
                if found
                else 'torch.load with weights_only=True said: '
                + (str(error).strip().splitlines() or [''])[0]
            )
            raise CheckpointError(
                f'refusing to load {path}: it holds objects other than tensors and '
                f'plain containers, and loading it would run code from its pickle '
                f'({said})'
            ) from error
        first = (str(error).strip().splitlines() or [''])[0]
        raise CheckpointError(
            f'cannot read checkpoint {path} (truncated or damaged torch file?): '
            f'{type(error).__name__}: {first or "(no message)"}'
        ) from error
    if not isinstance(loaded, Mapping):
        raise CheckpointError(
            f'checkpoint {path} holds a {type(loaded).__name__}, expected a dict'
        )
    return dict(loaded)


def _split_network_state(
    state_dict: Mapping[str, Any], origin: str
) -> tuple[str, dict[str, Tensor]]:
    """Find the location network's parameters and strip their prefix.

    Returns:
        The prefix found and the network's state dict (``layers.<i>.*`` and
        ``last_layer.*`` keys).
    """
    for key in state_dict:
        if not isinstance(key, str):
            raise CheckpointError(
                f'{origin}: state_dict key {key!r} is a {type(key).__name__}, '
                'expected a string'
            )
    for prefix in _NNET_PREFIXES:
        found = {
            key[len(prefix) :]: value
            for key, value in state_dict.items()
            if key.startswith(prefix)
        }
        if found:
            return prefix, found
    if any(key.startswith(('layers.', 'last_layer.')) for key in state_dict):
        return '', {
            key: value
            for key, value in state_dict.items()
            if key.startswith(('layers.', 'last_layer.'))
        }
    sample = ', '.join(sorted(state_dict)[:8]) or 'none'
    raise CheckpointError(
        f'{origin}: no location-encoder weights found; expected keys starting with '
        f'one of {list(_NNET_PREFIXES)} (first keys found: {sample})'
    )


def _infer_siren_architecture(
    state: Mapping[str, Tensor], origin: str, harmonics: bool = True
) -> dict[str, int]:
    """Read ``legendre_polys``, ``capacity``, ``embed_dim`` and depth from shapes.

    The hidden layers must be ``layers.0`` to ``layers.<n-1>`` with none
    missing: a gap means a lost layer, which would otherwise load as a
    shallower network. ``legendre_polys`` is read only with ``harmonics``
    (a SIREN after spherical harmonics); another encoding's width is its own.
    """
    try:
        first = state['layers.0.weight']
        last = state['last_layer.weight']
    except KeyError as error:
        raise CheckpointError(
            f'{origin}: missing key {error.args[0]!r} of a SIREN location encoder'
        ) from None
    for key, tensor in (('layers.0.weight', first), ('last_layer.weight', last)):
        if tensor.ndim != 2:
            raise CheckpointError(
                f'{origin}: {key} has shape {tuple(tensor.shape)}, expected a '
                'matrix (2 dimensions)'
            )
    num_layers = _num_hidden_layers(state, origin)
    shapes = {
        'capacity': int(first.shape[0]),
        'embed_dim': int(last.shape[0]),
        'num_hidden_layers': num_layers,
    }
    if not harmonics:
        return shapes
    legendre_polys = math.isqrt(first.shape[1])
    if legendre_polys**2 != first.shape[1]:
        raise CheckpointError(
            f'{origin}: layers.0.weight has {first.shape[1]} input features, which '
            'is not a square number L^2 of spherical harmonics'
        )
    return {'legendre_polys': legendre_polys, **shapes}


def _check_assumed_harmonics(width: int, origin: str) -> None:
    """Refuse to assume spherical harmonics where another encoding fits as well.

    Without ``le_type`` (a bare state dict, TorchGeo's weights) the encoding
    is taken to be spherical harmonics with ``L^2`` features. The encodings
    that take no argument (``'direct'``, ``'cartesian3d'``, ``'wrap'``) need
    nothing else recorded, so their bare state dicts are the likely ones to
    come without it: where one of them has ``width`` features too (``'wrap'``:
    4, ``L = 2``), the features would be the wrong ones.

    Raises:
        CheckpointError: naming ``le_type``, the encodings that fit and the
            repair.
    """
    fits = [
        name
        for name, cls in POSITIONAL_ENCODINGS.items()
        if name != 'sphericalharmonics'
        and not inspect.signature(cls).parameters
        and getattr(cls(), 'embedding_dim', None) == width
    ]
    if fits:
        names = ' or '.join(repr(name) for name in fits)
        raise CheckpointError(
            f"{origin}: no hyper_parameters['le_type'] names the positional "
            f"encoding, and layers.0.weight's {width} input features fit "
            f'spherical harmonics with legendre_polys={math.isqrt(width)} as well '
            f'as {names}: record the encoding the weights were trained with, '
            "as load_location_encoder({'state_dict': ..., 'hyper_parameters': "
            f"{{'le_type': {fits[0]!r}}}}})"
        )


def _num_hidden_layers(state: Mapping[str, Tensor], origin: str) -> int:
    """Count the ``layers.<i>.*`` of a SIREN, refusing gaps and odd names."""
    indices: set[int] = set()
    for key in state:
        if key.startswith('layers.'):
            index = key.split('.')[1]
            if not (index.isascii() and index.isdigit()):
                raise CheckpointError(
                    f'{origin}: {key}: expected layers.<number>.weight or .bias'
                )
            indices.add(int(index))
    missing = sorted(set(range(max(indices) + 1)) - indices) if indices else []
    if missing:
        found = ', '.join(str(i) for i in sorted(indices))
        raise CheckpointError(
            f'{origin}: the hidden layers are not contiguous: found layers '
            f'{found}, layers.{missing[0]} is missing (a lost layer would load as '
            'a shallower network)'
        )
    return len(indices)


def _check_copies(state_dict: Mapping[str, Any], found: str, origin: str) -> None:
    """Refuse a checkpoint whose copies of the location network differ.

    The official checkpoints hold the network twice (``model.location.nnet.``
    and ``model.nnet.``, one module under two names); one is read, so a
    difference means one copy is damaged or edited.
    """
    reference = {
        key[len(found) :]: value
        for key, value in state_dict.items()
        if key.startswith(found)
    }
    for prefix in _NNET_PREFIXES:
        if prefix == found:
            continue
        other = {
            key[len(prefix) :]: value
            for key, value in state_dict.items()
            if key.startswith(prefix)
        }
        if not other:
            continue
        if set(other) != set(reference):
            odd = sorted(set(other) ^ set(reference))
            raise CheckpointError(
                f'{origin}: the copies of the location network under {found} and '
                f'{prefix} differ: {odd[0]} is in one only'
            )
        for key, value in reference.items():
            twin = other[key]
            same = (
                isinstance(value, Tensor)
                and isinstance(twin, Tensor)
                and value.shape == twin.shape
                and value.dtype == twin.dtype
                and torch.equal(value, twin)
            )
            if not same:
                raise CheckpointError(
                    f'{origin}: the copies of the location network under {found} '
                    f'and {prefix} differ at {key}'
                )


def _check_network_tensors(state: Mapping[str, Any], prefix: str, origin: str) -> None:
    """Every weight a finite floating tensor (no cast hides an int or a NaN)."""
    for key, tensor in state.items():
        name = prefix + key
        if not isinstance(tensor, Tensor):
            raise CheckpointError(
                f'{origin}: {name} is a {type(tensor).__name__}, expected a tensor'
            )
        if not tensor.is_floating_point():
            raise CheckpointError(
                f'{origin}: {name} has dtype {tensor.dtype}, expected a floating '
                'dtype (float64 in the released checkpoints); an integer or bool '
                'tensor is not a trained weight and is not cast'
            )
        bad = int((~torch.isfinite(tensor)).sum())
        if bad:
            raise CheckpointError(
                f'{origin}: {name} has {bad} non-finite value{"s" * (bad > 1)} '
                '(NaN or infinity); the encoder would embed every point as NaN'
            )


#: ``hyper_parameters`` keys forwarded to :func:`build_location_encoder`.
_HPARAM_KEYS = {
    'le_type': 'positional_encoding',
    'pe_type': 'network',
    'legendre_polys': 'legendre_polys',
    'embed_dim': 'embed_dim',
    'capacity': 'capacity',
    'num_hidden_layers': 'num_hidden_layers',
    # SatCLIPTask's names (torchgeo_satclip.tasks.SatCLIPTask checkpoints)
    'positional_encoding': 'positional_encoding',
    'location_network': 'network',
}
_SPACE2VEC_KEYS = ('frequency_num', 'min_radius', 'max_radius')


#: The original code's name of a part of the encoder, and SatCLIPTask's.
_SYNONYMS = (('le_type', 'positional_encoding'), ('pe_type', 'location_network'))

#: ``hyper_parameters`` keys holding names, and those holding positive integers.
_NAME_KEYS = ('le_type', 'pe_type', 'positional_encoding', 'location_network')
_SIZE_KEYS = ('legendre_polys', 'embed_dim', 'capacity', 'num_hidden_layers')


def _hyper_parameters(raw: Any, origin: str) -> dict[str, Any]:
    """Check the types of the ``hyper_parameters`` this loader always reads.

    The Space2Vec keys (``frequency_num``, ``min_radius``, ``max_radius``)
    are in every checkpoint of the original code but used only by the
    encodings that take them; :func:`build_location_encoder` checks them
    there, so an unused value never refuses a checkpoint.

    Returns:
        A copy of ``raw`` as a dict.

    Raises:
        CheckpointError: naming the key of a value of the wrong type, or the
            two keys of a part named twice (``le_type`` and
            ``positional_encoding``, ``pe_type`` and ``location_network``)
            with different names.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise CheckpointError(
            f'{origin}: hyper_parameters is a {type(raw).__name__}, expected a dict'
        )
    hparams = dict(raw)
    # SatCLIP's MLP may have no hidden layer after its input layer
    mlp = hparams.get('pe_type') == 'mlp'
    checks: list[tuple[str, Any]] = [
        *((key, lambda v, k: check_name(k, v)) for key in _NAME_KEYS),
        *((key, lambda v, k: check_int(k, v, minimum=1)) for key in _SIZE_KEYS),
    ]
    if mlp:
        checks = [
            (key, lambda v, k: check_int(k, v, minimum=0))
            if key == 'num_hidden_layers'
            else (key, check)
            for key, check in checks
        ]
    for key, check in checks:
        if hparams.get(key) is not None:
            try:
                check(hparams[key], f"hyper_parameters['{key}']")
            except ValueError as error:
                raise CheckpointError(f'{origin}: {error}') from None
    for official, own in _SYNONYMS:
        first, second = hparams.get(official), hparams.get(own)
        if first is not None and second is not None and first != second:
            raise CheckpointError(
                f"{origin}: hyper_parameters['{official}'] is {first!r} but "
                f"hyper_parameters['{own}'] is {second!r}: they name the same "
                "part of the encoder (the original code's key and this "
                "package's), so the record contradicts itself; keep the one the "
                'weights were trained with'
            )
    extra = hparams.get('positional_encoding_kwargs')
    if extra is not None and not (
        isinstance(extra, Mapping) and all(isinstance(k, str) for k in extra)
    ):
        raise CheckpointError(
            f"{origin}: hyper_parameters['positional_encoding_kwargs'] is "
            f'{extra!r}, expected a dict of argument names to values'
        )
    return hparams


#: How the original code names the parameters of the networks whose names
#: differ from this package's (its ``MLP`` has :class:`SatCLIPMLP`'s names
#: already): ``(pattern, replacement)`` pairs applied to each key, first match.
_ORIGINAL_NAMES: dict[str, tuple[tuple[re.Pattern[str], str], ...]] = {
    # FCNet: a residual block's two linear layers are w1 and w2 (here
    # block.0 and block.3, around ReLU and dropout); the output is class_emb.
    'fcnet': (
        (re.compile(r'^feats\.(\d+)\.w1\.'), r'feats.\1.block.0.'),
        (re.compile(r'^feats\.(\d+)\.w2\.'), r'feats.\1.block.3.'),
        (re.compile(r'^class_emb\.'), 'last_layer.'),
    ),
    # 'linear' is a bare nn.Linear.
    'linear': ((re.compile(r'^(weight|bias)$'), r'last_layer.\1'),),
}


def _from_original_names(network: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with the original code's parameter names of ``network`` renamed.

    The names this package gives those parameters match none of the
    patterns, so its own checkpoints pass through unchanged.
    """
    rules = _ORIGINAL_NAMES.get(network, ())
    renamed: dict[str, Any] = {}
    for key, value in state.items():
        for pattern, replacement in rules:
            if pattern.match(key):
                key = pattern.sub(replacement, key)
                break
        renamed[key] = value
    return renamed


#: The original code's ``harmonics_calculation`` whose basis this package
#: computes (that of the released checkpoints).
_HARMONICS_CALCULATION = 'analytic'


def _check_harmonics_calculation(
    hparams: Mapping[str, Any], positional_encoding: object, origin: str
) -> None:
    """Refuse spherical harmonics computed in a basis this package does not have.

    The original code's ``'closed-form'`` harmonics are orthonormal and carry
    the Condon-Shortley phase, unlike its ``'analytic'`` ones (the released
    checkpoints'): an encoder trained on them would embed every point wrongly
    here. Other encodings ignore the key, as the original code does.

    Raises:
        CheckpointError: naming the value, if it is not ``'analytic'`` (or None).
    """
    value = hparams.get('harmonics_calculation')
    if positional_encoding != 'sphericalharmonics' or value in (
        None,
        _HARMONICS_CALCULATION,
    ):
        return
    raise CheckpointError(
        f"{origin}: hyper_parameters['harmonics_calculation'] is {value!r}, but "
        f'this package computes only the {_HARMONICS_CALCULATION!r} spherical '
        "harmonics of the released checkpoints (the original's other variants "
        'use another basis, so the weights would be applied to the wrong '
        'features)'
    )


def _encoding_arguments(name: str) -> set[str]:
    """Argument names of the positional encoding ``name`` (all Space2Vec keys if unknown)."""
    cls = POSITIONAL_ENCODINGS.get(name)
    if cls is None:  # let build_location_encoder name the unknown encoding
        return set(_SPACE2VEC_KEYS)
    return set(inspect.signature(cls).parameters)


def _check_root(root: object) -> Path | None:
    """Return the folder ``root`` names for released checkpoints, or None.

    Args:
        root: None (the torch hub cache) or the path of a folder, which need
            not exist yet.

    Returns:
        ``root`` as a path, or None.

    Raises:
        ValueError: naming ``root``, if it is not a path, is empty or blank
            (``Path('')`` is the current folder, where a checkpoint would be
            downloaded unasked), or is an existing file.
    """
    if root is None:
        return None
    if not isinstance(root, str | os.PathLike):
        raise ValueError(
            f'root is {root!r} (type {type(root).__name__}), expected the path of '
            'the folder to keep released checkpoints in, or None for the torch '
            'hub cache'
        )
    if not str(root).strip():
        raise ValueError(
            f'root is {str(root)!r}, an empty path: expected the folder to keep '
            'released checkpoints in, or None for the torch hub cache'
        )
    path = Path(root)
    if path.exists() and not path.is_dir():
        raise ValueError(
            f'root {str(path)!r} is a file, expected the folder to keep released '
            'checkpoints in (or None for the torch hub cache)'
        )
    return path


def _check_dropout(dropout: object) -> float | None:
    """Return the ``dropout`` asked of a loaded encoder: None, or a probability.

    Raises:
        ValueError: naming the value, if it is not None and not a finite real
            number in [0, 1) (a bool is refused: ``dropout=True`` is a flag,
            not a probability).
    """
    if dropout is None:
        return None
    return check_real('dropout', dropout, minimum=0.0, below=1.0)


def _encoder_from_state(
    checkpoint: Mapping[str, Any],
    origin: str,
    hyper_parameters: Mapping[str, Any] | None,
    dtype: torch.dtype,
    dropout: float | None = None,
) -> LocationEncoder:
    """Build a location encoder from a checkpoint mapping and load its weights.

    ``dropout`` is the built network's (None: the ``location_dropout`` a
    SatCLIPTask checkpoint records, else the network's default); it changes
    no weight.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f'{origin}: state_dict is a {type(state_dict).__name__}')
    hparams = _hyper_parameters(
        hyper_parameters or checkpoint.get('hyper_parameters'), origin
    )
    prefix, network_state = _split_network_state(state_dict, origin)
    _check_network_tensors(network_state, prefix, origin)

    kwargs: dict[str, Any] = {}
    for key, name in _HPARAM_KEYS.items():
        if key in hparams and hparams[key] is not None:
            kwargs[name] = hparams[key]
    assumed = 'positional_encoding' not in kwargs  # no le_type recorded
    kwargs.setdefault('positional_encoding', 'sphericalharmonics')
    kwargs.setdefault('network', 'siren')
    _check_harmonics_calculation(hparams, kwargs['positional_encoding'], origin)
    if kwargs['network'] == 'siren':
        harmonics = kwargs['positional_encoding'] == 'sphericalharmonics'
        inferred = _infer_siren_architecture(network_state, origin, harmonics)
        for key, value in inferred.items():
            if key in kwargs and int(kwargs[key]) != value:
                raise CheckpointError(
                    f'{origin}: hyper_parameters say {key}={kwargs[key]} but the '
                    f'weights have {key}={value}'
                )
            kwargs[key] = value
    if kwargs['positional_encoding'] != 'sphericalharmonics':
        accepted = _encoding_arguments(str(kwargs['positional_encoding']))
        kwargs.update(
            {
                key: hparams[key]
                for key in _SPACE2VEC_KEYS
                if key in accepted and hparams.get(key) is not None
            }
        )
    if hparams.get('positional_encoding_kwargs') is not None:  # SatCLIPTask
        kwargs.update(hparams['positional_encoding_kwargs'])
    recorded = hparams.get('location_dropout')  # a SatCLIPTask's checkpoint
    if dropout is None and recorded is not None:
        try:
            dropout = check_real(
                "hyper_parameters['location_dropout']", recorded, minimum=0.0, below=1.0
            )
        except ValueError as error:
            raise CheckpointError(f'{origin}: {error}') from None
    # Not in kwargs: the architecture named in errors is the checkpoint's.
    chosen: dict[str, Any] = {} if dropout is None else {'dropout': dropout}
    try:
        encoder = build_location_encoder(**kwargs, **chosen, dtype=torch.float64)
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f'{origin}: cannot build a location encoder from {kwargs}: {error}'
        ) from error

    network_state = _from_original_names(str(kwargs['network']), network_state)
    expected = set(encoder.nnet.state_dict())
    missing = sorted(expected - set(network_state))
    unexpected = sorted(set(network_state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f'{origin}: location-encoder weights do not match the architecture '
            f'{kwargs}: missing keys {missing}, unexpected keys {unexpected}'
        )
    targets = encoder.nnet.state_dict()
    for key, tensor in network_state.items():
        target = targets[key]
        if not isinstance(tensor, Tensor) or tensor.shape != target.shape:
            shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor)
            raise CheckpointError(
                f'{origin}: {key} has shape {shape}, expected {tuple(target.shape)}'
            )
    if prefix:
        _check_copies(state_dict, prefix, origin)
    if assumed and kwargs['network'] == 'siren':
        _check_assumed_harmonics(int(kwargs['legendre_polys']) ** 2, origin)
    encoder.nnet.load_state_dict(network_state, strict=True)
    return _to_dtype(encoder, dtype).eval()


def _geoclip_encoder(
    state_dict: Mapping[str, Any], origin: str, dtype: torch.dtype
) -> LocationEncoder:
    """Build GeoCLIP's location encoder from a state dict in its layout.

    Its network (:class:`~torchgeo_satclip.models.MultiScaleMLP`, ReLU MLPs
    as in GeoCLIP) has no dropout layer, so no ``dropout`` reaches it: the
    value asked of :func:`load_location_encoder` is checked there and has no
    effect here, as ``build_location_encoder(network='geoclip', dropout=...)``.
    """
    try:
        return geoclip_location_encoder(state_dict, dtype=dtype)
    except ValueError as error:
        raise CheckpointError(f'{origin}: {error}') from error


def _restore_positional_state(
    encoder: LocationEncoder, checkpoint: Mapping[str, Any], origin: str
) -> LocationEncoder:
    """Load the positional encoding's buffers too, when the checkpoint has them.

    A spherical-harmonics encoding has no state, but random Fourier features
    keep their frequency matrices in the buffer ``b``; one drawn from a seed
    is rebuilt from the hyperparameters, but one loaded from GeoCLIP (a task
    initialised with ``location_weights='geoclip'``) exists only in the
    checkpoint, next to the network (``<...>posenc.b`` beside
    ``<...>nnet.*``).
    """
    expected = encoder.posenc.state_dict()
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping):
        return encoder
    prefix, _ = _split_network_state(state_dict, origin)
    base = (prefix[: -len('nnet.')] if prefix.endswith('nnet.') else prefix) + 'posenc.'
    found = {
        key[len(base) :]: value
        for key, value in state_dict.items()
        if key.startswith(base)
    }
    if not found:
        return encoder
    if not expected:
        hparams = checkpoint.get('hyper_parameters')
        recorded = None
        if isinstance(hparams, Mapping):
            recorded = hparams.get('le_type') or hparams.get('positional_encoding')
        said = (
            f"hyper_parameters['le_type'] is {recorded!r}"
            if recorded is not None
            else "no hyper_parameters['le_type'] names the encoding, and "
            "'sphericalharmonics' is assumed"
        )
        raise CheckpointError(
            f'{origin}: {", ".join(sorted(base + k for k in found))} hold the '
            f'state of a positional encoding, but {said}, which has none: record '
            'the encoding the weights were trained with (le_type and its '
            'arguments) in hyper_parameters'
        )
    if set(found) != set(expected):
        raise CheckpointError(
            f'{origin}: positional-encoding keys {sorted(base + k for k in found)} '
            f"do not match the encoding's {sorted(base + k for k in expected)}"
        )
    for key, tensor in found.items():
        target = expected[key]
        if not isinstance(tensor, Tensor) or tensor.shape != target.shape:
            shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor)
            raise CheckpointError(
                f'{origin}: {base}{key} has shape {shape}, expected '
                f'{tuple(target.shape)}'
            )
    encoder.posenc.load_state_dict(found, strict=True)
    return encoder


def load_location_encoder(
    source: str | os.PathLike[str] | Enum | Mapping[str, Any],
    dtype: torch.dtype = torch.float64,
    root: str | os.PathLike[str] | None = None,
    progress: bool = True,
    *,
    dropout: float | None = None,
) -> LocationEncoder:
    """Load a SatCLIP location encoder from any supported source.

    Args:
        source: a checkpoint path; a :class:`SatCLIPWeights` member or name
            (``'SATCLIP_RESNET18_L10'``); a TorchGeo 0.10 ``SatCLIP_Weights``
            member; :attr:`GeoCLIPWeights.GEOCLIP` or ``'geoclip'`` (from the
            installed ``geoclip`` extra), or a file or state dict in GeoCLIP's
            layout (``LocEnc<i>.*`` keys, such as geoclip's
            ``location_encoder_weights.pth``); or an in-memory checkpoint /
            state dict. The architecture
            comes from ``hyper_parameters`` (SatCLIP's ``le_type``, ``pe_type``,
            ``legendre_polys``, ``capacity``, ``embed_dim``,
            ``num_hidden_layers``) or, for a SIREN without them, from the
            weight shapes (without ``le_type``, spherical harmonics are
            assumed, except where an encoding that takes no argument fits
            the input width as well: ``'wrap'``'s 4 features are refused as
            ambiguous); the weights from ``model.location.nnet.*`` (else
            ``model.nnet.*``, ``location_encoder.nnet.*``, ``nnet.*``).
        dtype: compute dtype of the returned encoder (float64 by default, the
            checkpoints' own precision).
        root: where released checkpoints are cached (default: the torch hub
            cache); used only for enum sources.
        progress: show a progress bar when a download is needed.
        dropout: dropout probability of the loaded network in training.
            None: the ``location_dropout`` a checkpoint of this package's
            tasks records in its ``hyper_parameters``, else (the released
            checkpoints record none) the network's default, 0.5, that of
            :func:`build_location_encoder`; a float in [0, 1) builds it with
            that dropout, for fine-tuning (0: none). It acts
            where the network has dropout, as when building one: before the
            sine of each hidden SIREN layer (not on its linear output layer)
            and inside each FCNet residual block. The ``'mlp'`` and
            ``'linear'`` networks and GeoCLIP's have no dropout layer (neither
            have the original code's) and ignore it, as
            :func:`build_location_encoder` does, so one training setting (a
            task's ``location_dropout``) fits every checkpoint. It changes no
            weight, and nothing in eval mode.

    Returns:
        The location encoder, in eval mode.

    Raises:
        CheckpointError: if the file is missing, not a torch checkpoint (the
            message says what it is: JSON, a NumPy array, a compressed file),
            truncated, unsafe (its pickle would run code), or its keys, shapes,
            hyper-parameters or weights (integer, boolean or non-finite
            tensors, missing layers) do not form a location encoder; the
            message names the file and the key.
        GeoCLIPNotInstalledError: if GeoCLIP's weights are asked for by
            name but the ``geoclip`` extra is not installed.
        TypeError: if ``source`` is of an unsupported type.
        ValueError: if ``dtype`` is not a floating torch dtype, ``dropout``
            is neither None nor a finite real number in [0, 1) (a bool is
            refused), or ``root`` is neither None nor the path of a folder
            (an empty path, a file); checked before any file is read.
    """
    check_dtype('dtype', dtype)
    dropout = _check_dropout(dropout)
    _check_root(root)
    hyper_parameters: Mapping[str, Any] | None = None
    if isinstance(source, Mapping):
        if is_geoclip_state_dict(source):
            return _geoclip_encoder(source, 'state dict', dtype)
        encoder = _encoder_from_state(source, 'state dict', None, dtype, dropout)
        return _restore_positional_state(encoder, source, 'state dict')
    # The weights members, and torchvision with them, are imported only for a
    # member or a name: a checkpoint path does not need them.
    if isinstance(source, str) and not source.strip():
        # Path('') is the current folder: refused as a folder, confusingly
        from .released import list_weights

        raise CheckpointError(
            f'source is {source!r}, an empty path: expected a '
            'checkpoint file, a SatCLIPWeights name '
            f"({', '.join(list_weights())}) or 'geoclip'"
        )
    if isinstance(source, str) and not Path(source).exists():
        from .released import list_weights, weights_member

        member = weights_member(source)
        if member is None:
            raise CheckpointError(
                f'source {source!r} is neither an existing checkpoint file nor a '
                f'SatCLIPWeights name ({", ".join(list_weights())}) nor '
                "'geoclip' (GeoCLIPWeights.GEOCLIP)"
            )
        source = member
    path: Path | None = None
    if isinstance(source, Enum):
        from .released import GeoCLIPWeights, download_checkpoint, is_weights_member

        if isinstance(source, GeoCLIPWeights):
            path = find_geoclip_checkpoint()
            return _geoclip_encoder(read_checkpoint(path), str(path), dtype)
        if is_weights_member(source):
            weights: Any = source  # a torchvision WeightsEnum member
            meta = weights.meta
            keys = ('legendre_polys', 'capacity', 'embed_dim', 'num_hidden_layers')
            hyper_parameters = {key: meta[key] for key in keys if key in meta}
            path = download_checkpoint(weights, root=root, progress=progress)
    if path is None:
        if not isinstance(source, str | os.PathLike):
            raise TypeError(
                'source must be a checkpoint path, a SatCLIPWeights member or name, a '
                'TorchGeo SatCLIP_Weights member or a state dict, got '
                f'{type(source).__name__}'
            )
        path = Path(source)
    checkpoint = read_checkpoint(path)
    if is_geoclip_state_dict(checkpoint):
        return _geoclip_encoder(checkpoint, str(path), dtype)
    if hyper_parameters is not None and 'hyper_parameters' in checkpoint:
        _check_member_file(
            checkpoint['hyper_parameters'], hyper_parameters, source, path
        )
        hyper_parameters = None  # the file's own record, the member's
    encoder = _encoder_from_state(
        checkpoint, str(path), hyper_parameters, dtype, dropout
    )
    return _restore_positional_state(encoder, checkpoint, str(path))


def _check_member_file(
    recorded: Any, expected: Mapping[str, Any], member: object, path: Path
) -> None:
    """Refuse a member's file whose own hyper_parameters are another model's.

    Args:
        recorded: the file's ``hyper_parameters``.
        expected: the architecture of the member (its ``meta``).
        member: the weights member asked for.
        path: the file.

    Raises:
        CheckpointError: naming the file, the member and what differs.
    """
    if not isinstance(recorded, Mapping):
        return  # _encoder_from_state names a malformed record
    differ = [
        f'{key}={recorded[key]!r} (the member has {key}={value!r})'
        for key, value in expected.items()
        if key in recorded and recorded[key] != value
    ]
    if differ:
        name = getattr(member, 'name', member)
        raise CheckpointError(
            f'{path} is not the checkpoint of {name}: its hyper_parameters say '
            f'{", ".join(differ)}; delete it (it is downloaded again) or put '
            f"{name}'s file there"
        )


#: Anything :func:`satclip_location_encoder` accepts as ``weights``: a built
#: encoder, a checkpoint path, a weights member (a torchvision ``WeightsEnum``
#: member, named by the ``Enum`` it derives from so that this module does not
#: import torchvision) or name, or a state dict.
LocationSource: TypeAlias = (
    LocationEncoder | Enum | str | os.PathLike[str] | Mapping[str, Any]
)


def satclip_location_encoder(
    weights: LocationSource | None = None,
    *,
    dtype: torch.dtype = torch.float64,
    dropout: float | None = None,
    validate: bool | None = None,
    root: str | os.PathLike[str] | None = None,
    progress: bool = True,
    **architecture: Any,
) -> LocationEncoder:
    """Return a SatCLIP location encoder, pretrained or new (the one factory).

    As TorchGeo's model builders (``resnet18(weights=...)``): with
    ``weights`` the architecture is the one the weights were trained with;
    without, a new, randomly initialised encoder is built from
    ``architecture``. Tasks, transforms, ``embed`` and ``probe`` all build
    their location encoders here::

        from torchgeo_satclip.models import SatCLIPWeights, satclip_location_encoder

        encoder = satclip_location_encoder(weights=SatCLIPWeights.SATCLIP_RESNET18_L10)
        # the same, in torchvision's two steps
        weights = SatCLIPWeights.SATCLIP_RESNET18_L10
        encoder = satclip_location_encoder(**weights.architecture())
        encoder.load_state_dict(weights.get_state_dict(progress=True))

    Args:
        weights: None for a new encoder; a :class:`LocationEncoder` (returned
            as it is); or anything :func:`load_location_encoder` accepts (a
            checkpoint path, a :class:`SatCLIPWeights` member or name, a
            TorchGeo ``SatCLIP_Weights`` member, a state dict).
        dtype: compute dtype of a loaded or built encoder.
        dropout: dropout probability of a loaded or built encoder's network
            in training; None: the default. Loaded weights get it as
            :func:`load_location_encoder` gives it (None: what a task
            checkpoint records, else 0.5); a new encoder as
            :func:`build_location_encoder` (None: 0.5).
        validate: check every input point (see :class:`LocationEncoder`)
            of a loaded or built encoder; None: the default, True. Not an
            architecture argument: ``validate=False`` turns the checks off
            on loaded weights too (for ``torch.compile(fullgraph=True)``,
            ``torch.export`` or a hot loop of known-good points). It
            changes no weight and no output for valid points.
        root: where released checkpoints are cached (default: the torch hub
            cache), as :func:`load_location_encoder`'s; for weights named by
            a :class:`SatCLIPWeights` member or name only.
        progress: show a progress bar when released weights are downloaded.
        **architecture: arguments of :func:`build_location_encoder`
            (``positional_encoding``, ``network``, ``legendre_polys``,
            ``embed_dim``, ``capacity``, ``num_hidden_layers``, ...), for a
            new encoder only: weights bring their own architecture.

    Returns:
        The location encoder.

    Raises:
        ValueError: if ``dropout`` or ``validate`` is not None and
            ``weights`` is a :class:`LocationEncoder` (returned as it is, so
            neither can be chosen here), ``dropout`` is not a finite real
            number in [0, 1), ``validate`` is not None, True or False,
            architecture arguments come with ``weights`` (they
            would be ignored), or ``root`` comes without ``weights`` (a new
            encoder downloads nothing). ``progress`` without a download is
            ignored, as by torchvision's builders.
    """
    if validate is not None:
        check_flag('validate', validate)
    if weights is not None and architecture:
        raise ValueError(
            f'architecture arguments ({", ".join(sorted(architecture))}) are for a '
            'new encoder (weights=None): the weights bring their own '
            'architecture; pass only weights, dtype, dropout, validate, root or '
            'progress'
        )
    if isinstance(weights, LocationEncoder):
        if dropout is not None:
            raise ValueError(
                f'dropout={dropout!r} cannot be applied to a LocationEncoder '
                'passed as weights: it is returned as it is; build it with '
                'that dropout, or pass its checkpoint or state dict instead'
            )
        if validate is not None:
            raise ValueError(
                f'validate={validate!r} cannot be applied to a LocationEncoder '
                'passed as weights: it is returned as it is; set its '
                f'attribute instead (encoder.validate = {validate!r})'
            )
        return weights
    if weights is None:
        if root is not None:
            raise ValueError(
                f'root={str(root)!r} is where released weights are cached, but '
                'weights=None builds a new, randomly initialised encoder: pass '
                'the weights to load (a SatCLIPWeights member or name), or no root'
            )
        if dropout is not None:
            architecture['dropout'] = dropout
        if validate is not None:
            architecture['validate'] = validate
        return build_location_encoder(dtype=dtype, **architecture)
    encoder = load_location_encoder(
        weights, dtype=dtype, root=root, progress=progress, dropout=dropout
    )
    if validate is not None:
        encoder.validate = validate
    return encoder
