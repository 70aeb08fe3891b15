"""Export to the layout of the official SatCLIP checkpoints.

:func:`save_official_checkpoint` writes a location encoder (and, from
:func:`torchgeo_satclip.tasks.export_official_checkpoint`, the image encoder)
with the complete ``hyper_parameters`` of the released checkpoints, so that
the official SatCLIP code, RANGE's location-only loader, TorchGeo 0.10 and
:func:`~torchgeo_satclip.models.load_location_encoder` all read the file.
:func:`location_encoder_hyper_parameters` describes an encoder in SatCLIP's
keys.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._io import atomic_write
from .location_encoder import LocationEncoder
from .networks import NETWORKS
from .positional import POSITIONAL_ENCODINGS

__all__ = [
    'OFFICIAL_VISION_LAYERS',
    'location_encoder_hyper_parameters',
    'save_official_checkpoint',
]


def location_encoder_hyper_parameters(encoder: LocationEncoder) -> dict[str, Any]:
    """SatCLIP-style ``hyper_parameters`` describing ``encoder``'s architecture.

    The ten location keys of the released checkpoints, the ones the official
    SatCLIP code and RANGE's location-only loader read: ``le_type``,
    ``pe_type``, ``legendre_polys``, ``harmonics_calculation``,
    ``min_radius``, ``max_radius``, ``frequency_num``, ``embed_dim``,
    ``capacity`` and ``num_hidden_layers``, from the encoder's modules and
    weight shapes. An encoding without Space2Vec radii and frequencies (the
    spherical harmonics) gets the released checkpoints' values
    (``frequency_num=16``, ``max_radius=260``, ``min_radius=1``), which the
    official code passes to it and it ignores.

    Args:
        encoder: a location encoder.

    Returns:
        The hyper-parameters; a key the encoder has no value for is None
        (``legendre_polys`` of an encoding other than spherical harmonics).
    """
    posenc, nnet = encoder.posenc, encoder.nnet
    le_type = next(
        (name for name, cls in POSITIONAL_ENCODINGS.items() if type(posenc) is cls),
        type(posenc).__name__.lower(),
    )
    pe_type = next(
        (name for name, cls in NETWORKS.items() if type(nnet) is cls),
        type(nnet).__name__.lower(),
    )
    layers = getattr(nnet, 'layers', None)
    first = next(iter(nnet.parameters()))
    hparams: dict[str, Any] = {
        'embed_dim': encoder.embed_dim,
        'le_type': le_type,
        'pe_type': pe_type,
        'legendre_polys': getattr(posenc, 'legendre_polys', None),
        'capacity': int(first.shape[0]) if first.ndim == 2 else None,
        'num_hidden_layers': len(layers) if isinstance(layers, nn.ModuleList) else None,
        'harmonics_calculation': 'analytic',
    }
    for key, released in _RELEASED_SPACE2VEC.items():
        hparams[key] = getattr(posenc, key, released)
    return hparams


#: Space2Vec settings of the released checkpoints (unused by their encoding).
_RELEASED_SPACE2VEC: dict[str, Any] = {
    'frequency_num': 16,
    'max_radius': 260,
    'min_radius': 1,
}

#: The constructor arguments of the official ``SatCLIPLightningModule``, which
#: are the ``hyper_parameters`` of the released checkpoints, in their order.
_OFFICIAL_ARGUMENTS = (
    'embed_dim',
    'image_resolution',
    'vision_layers',
    'vision_width',
    'vision_patch_size',
    'in_channels',
    'le_type',
    'pe_type',
    'frequency_num',
    'max_radius',
    'min_radius',
    'legendre_polys',
    'harmonics_calculation',
    'sh_embedding_dims',
    'learning_rate',
    'weight_decay',
    'num_hidden_layers',
    'capacity',
)
#: Keys the official loader (``satclip/load.py``) pops before building the
#: model; a KeyError there when they are absent.
_OFFICIAL_POPPED: dict[str, Any] = {
    'eval_downstream': False,
    'air_temp_data_path': None,
    'election_data_path': None,
}
#: timm image encoders the official SatCLIP code builds, by timm name: their
#: ``vision_layers`` name there (always with 13 input channels and timm's
#: classifier, ``fc`` or ``head``, as the projection to ``embed_dim``).
OFFICIAL_VISION_LAYERS: dict[str, str] = {
    'resnet18': 'moco_resnet18',
    'resnet50': 'moco_resnet50',
    'vit_small_patch16_224': 'moco_vit16',
}

#: Encodings the official code builds (``le_type``), and the only network
#: whose weights it names as we do (``pe_type``).
_OFFICIAL_LE_TYPES = frozenset(
    {
        'sphericalharmonics',
        'direct',
        'cartesian3d',
        'wrap',
        'grid',
        'theory',
        'spherec',
        'spherecplus',
        'spherem',
        'spheremplus',
    }
)
_OFFICIAL_PE_TYPES = frozenset({'siren'})
#: The official SIREN's sine frequencies: first layer, and every other layer.
_OFFICIAL_W0_INITIAL = 30.0
_OFFICIAL_W0 = 1.0


def _official_location_problem(
    encoder: LocationEncoder, hparams: Mapping[str, Any]
) -> str | None:
    """Why the official code cannot rebuild ``encoder``, or None if it can."""
    le_type, pe_type = hparams['le_type'], hparams['pe_type']
    if le_type not in _OFFICIAL_LE_TYPES:
        return (
            f'its positional encoding {le_type!r} is not one the official code '
            f'builds ({", ".join(sorted(_OFFICIAL_LE_TYPES))})'
        )
    if pe_type not in _OFFICIAL_PE_TYPES:
        return (
            f'its network {pe_type!r} has no counterpart with the same weights in '
            "the official code (only 'siren')"
        )
    for option in ('normalization', 'convention'):
        value = getattr(encoder.posenc, option, 'satclip')
        if value != 'satclip':
            return (
                f'its positional encoding is computed with {option}={value!r}; the '
                "official code computes only 'satclip'"
            )
    frequency_num = getattr(encoder.posenc, 'frequency_num', None)
    if frequency_num is not None and frequency_num < 2:
        # The official _cal_freq_list divides by frequency_num - 1.
        return (
            f'its positional encoding has frequency_num={frequency_num}; the '
            'official code divides by frequency_num - 1 and needs at least 2'
        )
    return _official_siren_problem(encoder.nnet)


def _official_siren_problem(nnet: nn.Module) -> str | None:
    """Why the official SIREN differs from ``nnet``'s, or None if it does not.

    The official code has no setting for the sine frequencies or the biases:
    its first layer is ``sin(30 (W x + b))``, every other ``sin(W x + b)``.
    """
    layers = getattr(nnet, 'layers', None)
    if not isinstance(layers, nn.ModuleList):
        return None
    for i, layer in enumerate(layers):
        w0 = getattr(layer, 'w0', None)
        official = _OFFICIAL_W0_INITIAL if i == 0 else _OFFICIAL_W0
        if w0 != official:
            name = 'w0_initial' if i == 0 else 'w0'
            return (
                f'its SIREN layer {i} has {name}={w0}; the official code '
                f'computes only {name}={official}'
            )
    modules = [*layers, getattr(nnet, 'last_layer', None)]
    if any(getattr(module, 'bias', True) is None for module in modules):
        return (
            'its SIREN has no biases (use_bias=False); the official code always '
            'has them'
        )
    return None


#: The types of the official ``SatCLIPLightningModule``'s arguments, which
#: every ``weights_only`` loader reads back.
_PLAIN_TYPES = (type(None), bool, int, float, str)


def _plain_value(key: str, value: object) -> object:
    """``hyper_parameters[key]`` as a value every ``weights_only`` loader reads.

    A NumPy scalar (a number from a NumPy computation or config) becomes the
    Python number it holds, which is what it means; any other object would be
    pickled as a call (``pathlib.PosixPath``, ``numpy...scalar``) that
    ``torch.load(..., weights_only=True)`` refuses, in this package, TorchGeo
    and RANGE alike.

    Raises:
        ValueError: naming the key, if ``value`` is none of None, a bool, an
            int, a float, a string or a NumPy scalar of a bool or a number.
    """
    if isinstance(value, np.bool_ | np.integer | np.floating):
        value = value.item()
    if not isinstance(value, _PLAIN_TYPES):
        raise ValueError(
            f"hyper_parameters['{key}'] is a {type(value).__name__} ({value!r}), "
            'expected None, a bool, an int, a float or a string (the arguments '
            'of the official SatCLIPLightningModule): anything else is pickled '
            'as code that torch.load(..., weights_only=True) refuses'
        )
    return value


def _check_extra_state(extra: Mapping[Any, object]) -> None:
    """Refuse ``extra_state`` entries that are not tensors under string names.

    Raises:
        ValueError: naming the key, if a key is not a string or a value not
            a tensor (a NumPy array would make the file unreadable with
            ``weights_only=True``; a number is not a state-dict entry).
    """
    for key, value in extra.items():
        if not isinstance(key, str):
            raise ValueError(
                f'extra_state key {key!r} is a {type(key).__name__}, expected a '
                "string (a state-dict name such as 'model.visual.conv1.weight')"
            )
        if not isinstance(value, Tensor):
            raise ValueError(
                f'extra_state[{key!r}] is a {type(value).__name__}, expected a '
                'tensor (torch.as_tensor it): the file must hold plain tensors '
                'for torch.load(..., weights_only=True) and the official '
                'strict load'
            )


def _official_hyper_parameters(
    encoder: LocationEncoder, image: Mapping[str, Any], path: Path
) -> dict[str, Any]:
    """The complete official ``hyper_parameters`` of ``encoder`` plus ``image``."""
    location = location_encoder_hyper_parameters(encoder)
    problem = _official_location_problem(encoder, location)
    if problem is not None:
        raise ValueError(
            f'cannot write {path} for the official SatCLIP code or RANGE: {problem}. '
            "Keep the task's own Lightning checkpoint instead (load_location_encoder "
            'reads it)'
        )
    allowed = {*_OFFICIAL_ARGUMENTS, *_OFFICIAL_POPPED}
    unknown = sorted(set(image) - allowed)
    if unknown:
        raise ValueError(
            f'hyper_parameters {unknown} are not arguments of the official '
            'SatCLIPLightningModule (it would refuse them)'
        )
    image = {key: _plain_value(key, value) for key, value in image.items()}
    clashes = sorted(
        key for key in location if key in image and image[key] != location[key]
    )
    if clashes:
        raise ValueError(
            f'hyper_parameters {clashes} contradict the location encoder '
            f'({ {key: location[key] for key in clashes} })'
        )
    legendre_polys = location['legendre_polys']
    hparams: dict[str, Any] = dict.fromkeys(_OFFICIAL_ARGUMENTS)
    hparams.update(
        {
            'sh_embedding_dims': legendre_polys**2 if legendre_polys else None,
            'learning_rate': 1e-4,
            'weight_decay': 0.01,
        }
    )
    hparams.update(_OFFICIAL_POPPED)
    hparams.update(image)
    # Last: a location key in image equals the encoder's by == only (4.0, or
    # True for 1); the file must hold the encoder's integer, which the
    # loaders check the type of.
    hparams.update(location)
    return hparams


def save_official_checkpoint(
    encoder: LocationEncoder,
    path: str | os.PathLike[str],
    hyper_parameters: Mapping[str, Any] | None = None,
    extra_state: Mapping[str, Tensor] | None = None,
) -> Path:
    """Write ``encoder`` in the layout of the official SatCLIP checkpoints.

    The network's weights are stored in float64 twice, as
    ``model.location.nnet.*`` and ``model.nnet.*``, beside a plain-dict
    ``hyper_parameters`` with every key of the released checkpoints: the
    constructor arguments of the official ``SatCLIPLightningModule``
    (``embed_dim``, ``image_resolution``, ``vision_layers``,
    ``vision_width``, ``vision_patch_size``, ``in_channels``, ``le_type``,
    ``pe_type``, ``frequency_num``, ``max_radius``, ``min_radius``,
    ``legendre_polys``, ``harmonics_calculation``, ``sh_embedding_dims``,
    ``learning_rate``, ``weight_decay``, ``num_hidden_layers``,
    ``capacity``) and the three keys its loader pops first
    (``eval_downstream``, ``air_temp_data_path``, ``election_data_path``).
    RANGE's location-only loader, TorchGeo 0.10's loader and
    :func:`load_location_encoder` read the file.

    Without an image encoder (no ``vision_layers`` in ``hyper_parameters``)
    the file is location-only: the image keys are None and
    ``hyper_parameters`` also holds ``location_only: True``, so that the
    official full loader stops at once with an error naming it rather than
    building a random image encoder. With ``vision_layers`` (one of
    :data:`OFFICIAL_VISION_LAYERS`' values), ``extra_state`` must hold the
    image encoder (``model.visual.*``) and ``model.logit_scale``, and the
    official code loads the file strictly. The file is written to a
    temporary name in the same directory, then renamed.

    Args:
        encoder: the location encoder to save.
        path: destination file.
        hyper_parameters: the image encoder's settings and training values
            (``vision_layers``, ``vision_width``, ``vision_patch_size``,
            ``image_resolution``, ``in_channels``, ``learning_rate``,
            ``weight_decay``, ...), official keys only.
        extra_state: extra tensors for ``state_dict`` (``model.visual.*`` and
            ``model.logit_scale``).

    Returns:
        The path written.

    Raises:
        TypeError: if ``encoder`` is not a :class:`LocationEncoder` (a
            checkpoint path, a task).
        ValueError: if ``path`` is a directory, if the official code cannot
            rebuild ``encoder`` (a positional encoding or network it does not
            have, such as ``rff`` or ``mlp``), if ``hyper_parameters`` has a key the official code
            does not take or contradicts the encoder, or a value that is not
            None, a bool, an int, a float or a string (a NumPy scalar is
            written as the Python number it holds), if ``extra_state`` has a
            key that is not a string or a value that is not a tensor, if
            ``vision_layers``
            is not an official name or comes without the image weights, or
            if ``extra_state`` has a key of the location encoder
            (``model.location.*``, ``model.nnet.*``), which would replace the
            weights of ``encoder`` in the file.
    """
    if not isinstance(encoder, LocationEncoder):
        shown = repr(encoder) if isinstance(encoder, str | os.PathLike) else ''
        raise TypeError(
            f'encoder must be a LocationEncoder, got {type(encoder).__name__} '
            f'{shown}'.rstrip()
            + ': load one first (load_location_encoder(checkpoint) for a file or '
            'a state dict; a SatCLIPTask is written by '
            'tasks.export_official_checkpoint)'
        )
    path = Path(path)
    if path.is_dir():
        raise ValueError(
            f'{path} is a directory; expected the path of the checkpoint file to '
            f'write (for example {path / "satclip.ckpt"})'
        )
    image = dict(hyper_parameters or {})
    hparams = _official_hyper_parameters(encoder, image, path)
    extra = dict(extra_state or {})
    _check_extra_state(extra)
    # The location weights come from encoder alone: an extra key under their
    # prefixes would replace them in the file, silently.
    clashing = sorted(
        key for key in extra if key.startswith(('model.location.', 'model.nnet.'))
    )
    if clashing:
        raise ValueError(
            f'extra_state has {len(clashing)} location key(s) ({clashing[0]!r}, '
            "...): the location encoder's weights are written from encoder; give "
            'extra_state the image encoder (model.visual.*) and model.logit_scale '
            'only'
        )
    vision_layers = hparams['vision_layers']
    if vision_layers is None:
        hparams['location_only'] = True
    else:
        official = sorted(set(OFFICIAL_VISION_LAYERS.values()))
        if vision_layers not in official:
            raise ValueError(
                f'vision_layers={vision_layers!r} is not an image encoder the '
                f'official SatCLIP code builds ({", ".join(official)}); leave it '
                'out for a location-only file'
            )
        if 'model.logit_scale' not in extra or not any(
            key.startswith('model.visual.') for key in extra
        ):
            raise ValueError(
                f'vision_layers={vision_layers!r} needs the image encoder in '
                'extra_state (model.visual.* and model.logit_scale)'
            )
    network = {
        key: value.detach().to('cpu', torch.float64).clone()
        for key, value in encoder.nnet.state_dict().items()
    }
    state_dict: dict[str, Tensor] = {}
    for prefix in ('model.location.nnet.', 'model.nnet.'):
        state_dict.update({prefix + key: value for key, value in network.items()})
    state_dict.update(extra)
    checkpoint = {
        'epoch': 0,
        'global_step': 0,
        'pytorch-lightning_version': _lightning_version(),
        'state_dict': state_dict,
        'hyper_parameters': hparams,
    }
    atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))
    return path


def _lightning_version() -> str:
    try:
        from importlib.metadata import version

        return version('lightning')
    except Exception:  # pragma: no cover - lightning is a dependency
        return 'unknown'
