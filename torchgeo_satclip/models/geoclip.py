"""GeoCLIP's pretrained location encoder, rebuilt from this package's parts.

GeoCLIP (Vivanco Cepeda et al., NeurIPS 2023, https://arxiv.org/abs/2309.16020)
released its location encoder in the ``geoclip`` wheel (MIT), as the state dict
``geoclip/model/weights/location_encoder_weights.pth``. Its architecture, in
this package's terms, is a :class:`~.location_encoder.LocationEncoder` of

* :class:`~.positional.RandomFourierFeatures` with scales ``2^0, 2^4, 2^8``
  and 256 frequencies each: Equal Earth, times ``66.50336 / 180``, then
  ``[cos 2 pi B_i v, sin 2 pi B_i v]`` per scale (GeoCLIP's ``capsule.0.b`` of
  branch ``i`` is ``b[i]``);
* :class:`~.networks.MultiScaleMLP`: per scale, ``512 -> 1024 -> 1024 -> 1024``
  with ReLU, then ``1024 -> 512``; the three outputs are summed.

This module knows GeoCLIP's file layout (:func:`is_geoclip_state_dict`,
:func:`geoclip_location_encoder`) and where an installed ``geoclip``
distribution keeps the file (:func:`find_geoclip_weights`), found through
:mod:`importlib.metadata` **without importing geoclip** (its ``__init__``
imports transformers). Reading files is left to
:func:`~.weights.load_location_encoder` (``torch.load`` with
``weights_only=True``), which is how these weights are meant to be loaded:
``load_location_encoder('geoclip')``.

GeoCLIP's own functions take **(lat, lon)**; the encoder built here, like
everything in this package, takes **(lon, lat)** in degrees.
"""

import re
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .._checks import check_dtype
from .location_encoder import LocationEncoder, _to_dtype, build_location_encoder
from .networks import MultiScaleMLP
from .positional import RandomFourierFeatures

__all__ = [
    'GEOCLIP_ARCHITECTURE',
    'GEOCLIP_DISTRIBUTION',
    'GEOCLIP_EXTRA',
    'GEOCLIP_SIGMAS',
    'GEOCLIP_WEIGHTS_FILE',
    'find_geoclip_weights',
    'geoclip_location_encoder',
    'geoclip_to_encoder_state_dict',
    'is_geoclip_state_dict',
]

#: The scales (standard deviations of the frequency matrices) of GeoCLIP's
#: three branches.
GEOCLIP_SIGMAS = (2.0**0, 2.0**4, 2.0**8)

#: Arguments of :func:`~.location_encoder.build_location_encoder` giving
#: GeoCLIP's architecture (``sigmas`` and ``encoded_size`` go to the encoding).
GEOCLIP_ARCHITECTURE: dict[str, Any] = {
    'positional_encoding': 'rff',
    'network': 'geoclip',
    'embed_dim': 512,
    'capacity': 1024,
    'num_hidden_layers': 3,
    'sigmas': GEOCLIP_SIGMAS,
    'encoded_size': 256,
}

#: The distribution on the package index that ships the weights.
GEOCLIP_DISTRIBUTION = 'geoclip'
#: Path of the weights inside that distribution.
GEOCLIP_WEIGHTS_FILE = 'geoclip/model/weights/location_encoder_weights.pth'
#: The extra of this package that installs that distribution.
GEOCLIP_EXTRA = 'geoclip'

#: One GeoCLIP key: ``LocEnc<i>.capsule.0.b`` (frequencies),
#: ``LocEnc<i>.capsule.<k>.weight|bias`` (hidden layer, k = 1, 3, 5, ...) or
#: ``LocEnc<i>.head.0.weight|bias`` (output layer).
_KEY = re.compile(
    r'^LocEnc(?P<branch>\d+)\.'
    r'(?:capsule\.0\.b|capsule\.(?P<hidden>\d+)\.(?P<hparam>weight|bias)'
    r'|head\.0\.(?P<oparam>weight|bias))$'
)


def is_geoclip_state_dict(state_dict: Mapping[str, Any]) -> bool:
    """Whether a mapping is in the layout of GeoCLIP's location encoder.

    Args:
        state_dict: a state dict or checkpoint mapping.

    Returns:
        True if it has GeoCLIP's first key, ``LocEnc0.capsule.0.b``.
    """
    return 'LocEnc0.capsule.0.b' in state_dict


def _tensor(state_dict: Mapping[str, Any], key: str) -> Tensor:
    """``state_dict[key]``, which must be a finite floating tensor."""
    if key not in state_dict:
        raise ValueError(f'missing key {key!r} of a GeoCLIP location encoder')
    value = state_dict[key]
    if not isinstance(value, Tensor):
        raise ValueError(f'{key} is a {type(value).__name__}, expected a float tensor')
    if not value.is_floating_point():
        raise ValueError(f'{key} has dtype {value.dtype}, expected a float tensor')
    bad = int((~torch.isfinite(value)).sum())
    if bad:
        raise ValueError(
            f'{key} has {bad} non-finite value{"s" * (bad > 1)} (NaN or '
            'infinity); the encoder would embed every point as NaN'
        )
    return value


def geoclip_to_encoder_state_dict(
    state_dict: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Convert GeoCLIP's location-encoder state dict to this package's layout.

    GeoCLIP's branch ``i`` (``LocEnc<i>``) becomes scale ``i`` of the encoding
    and branch ``i`` of the network:

    ========================================  ====================================
    GeoCLIP                                   :class:`~.location_encoder.LocationEncoder`
    ========================================  ====================================
    ``LocEnc<i>.capsule.0.b`` ``(E, 2)``      ``posenc.b[i]`` (``b`` is ``(S, E, 2)``)
    ``LocEnc<i>.capsule.<2j+1>.weight|bias``  ``nnet.branches.<i>.layers.<2j>.*``
    ``LocEnc<i>.head.0.weight|bias``          ``nnet.branches.<i>.last_layer.*``
    ========================================  ====================================

    Args:
        state_dict: GeoCLIP's state dict (the 27 tensors of the released
            ``location_encoder_weights.pth``, or those of a GeoCLIP location
            encoder trained with other scales or sizes).

    Returns:
        The architecture read from the shapes (``sigmas``, ``encoded_size``,
        ``capacity``, ``num_hidden_layers``, ``embed_dim``) and the converted
        state dict, which loads strictly into the encoder of that
        architecture.

    Raises:
        ValueError: naming the key, if a key is not GeoCLIP's, a branch or
            layer is missing, a tensor is not a floating one or holds a NaN
            or an infinity, or the shapes do not fit together.
    """
    unknown = sorted(key for key in state_dict if not _KEY.match(key))
    if unknown:
        raise ValueError(
            'not a GeoCLIP location encoder: unexpected keys '
            f'{unknown[:8]}{" ..." if len(unknown) > 8 else ""} (expected only '
            'LocEnc<i>.capsule.0.b, LocEnc<i>.capsule.<k>.weight|bias and '
            'LocEnc<i>.head.0.weight|bias)'
        )
    matches = [match for key in state_dict if (match := _KEY.match(key))]
    branches = sorted({int(match['branch']) for match in matches})
    if branches != list(range(len(branches))):
        raise ValueError(
            f'GeoCLIP branches must be LocEnc0 .. LocEnc<S-1>, found {branches}'
        )
    hidden = sorted({int(match['hidden']) for match in matches if match['hidden']})
    if hidden != list(range(1, 2 * len(hidden), 2)) or not hidden:
        raise ValueError(
            'GeoCLIP hidden layers must be capsule.1, capsule.3, capsule.5, ...; '
            f'found capsule.{hidden}'
        )

    first_b = _tensor(state_dict, 'LocEnc0.capsule.0.b')
    first_w = _tensor(state_dict, 'LocEnc0.capsule.1.weight')
    head_w = _tensor(state_dict, 'LocEnc0.head.0.weight')
    if first_b.ndim != 2 or first_b.shape[1] != 2:
        raise ValueError(
            f'LocEnc0.capsule.0.b has shape {tuple(first_b.shape)}, expected (E, 2)'
        )
    encoded_size = int(first_b.shape[0])
    capacity = int(first_w.shape[0])
    embed_dim = int(head_w.shape[0])

    converted: dict[str, Tensor] = {}
    frequencies = []
    for i in branches:
        prefix = f'LocEnc{i}.'
        b = _tensor(state_dict, prefix + 'capsule.0.b')
        if b.shape != first_b.shape:
            raise ValueError(
                f'{prefix}capsule.0.b has shape {tuple(b.shape)}, expected '
                f'{tuple(first_b.shape)} as LocEnc0.capsule.0.b'
            )
        frequencies.append(b)
        for j, k in enumerate(hidden):
            dim_in = 2 * encoded_size if j == 0 else capacity
            for param, shape in (('weight', (capacity, dim_in)), ('bias', (capacity,))):
                key = f'{prefix}capsule.{k}.{param}'
                tensor = _tensor(state_dict, key)
                if tuple(tensor.shape) != shape:
                    raise ValueError(
                        f'{key} has shape {tuple(tensor.shape)}, expected {shape}'
                    )
                converted[f'nnet.branches.{i}.layers.{2 * j}.{param}'] = tensor
        for param, shape in (('weight', (embed_dim, capacity)), ('bias', (embed_dim,))):
            key = f'{prefix}head.0.{param}'
            tensor = _tensor(state_dict, key)
            if tuple(tensor.shape) != shape:
                raise ValueError(
                    f'{key} has shape {tuple(tensor.shape)}, expected {shape}'
                )
            converted[f'nnet.branches.{i}.last_layer.{param}'] = tensor
    b_all = torch.stack([b.to(torch.float64) for b in frequencies])
    converted['posenc.b'] = b_all
    architecture = {
        'sigmas': _sigmas(b_all),
        'encoded_size': encoded_size,
        'capacity': capacity,
        'num_hidden_layers': len(hidden),
        'embed_dim': embed_dim,
    }
    return architecture, converted


def _sigmas(b: Tensor) -> tuple[float, ...]:
    """The scales the frequency matrices were drawn with.

    GeoCLIP's ``(1, 16, 256)`` when there are three branches (its released
    encoder); otherwise each matrix's standard deviation, to three significant
    figures. The scales only describe how the matrices were drawn: the loaded
    matrices are what the encoder uses.
    """
    if b.shape[0] == len(GEOCLIP_SIGMAS):
        return GEOCLIP_SIGMAS
    return tuple(float(f'{float(scale):.3g}') for scale in b.std(dim=(1, 2)))


def find_geoclip_weights(distribution: str = GEOCLIP_DISTRIBUTION) -> Path:
    """Path of GeoCLIP's location-encoder weights in an installed distribution.

    The file is found through :mod:`importlib.metadata` (the distribution's
    file list, else its expected location); nothing of geoclip is imported.

    Args:
        distribution: name of the installed distribution that ships
            :data:`GEOCLIP_WEIGHTS_FILE`.

    Returns:
        The absolute path of ``location_encoder_weights.pth``.

    Raises:
        LookupError: if the distribution is not installed, or is installed
            without the file; the message says how to install it.
    """
    install = f'pip install "torchgeo-satclip[{GEOCLIP_EXTRA}]"'
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise LookupError(
            f"GeoCLIP's pretrained location encoder comes from the {distribution!r} "
            f'package, which is not installed: {install} (or pass the path of '
            'location_encoder_weights.pth)'
        ) from None
    listed = [
        file
        for file in dist.files or []
        if str(file).replace('\\', '/') == GEOCLIP_WEIGHTS_FILE
    ]
    candidates = [Path(str(dist.locate_file(file))) for file in listed]
    candidates.append(Path(str(dist.locate_file(GEOCLIP_WEIGHTS_FILE))))
    for path in candidates:
        if path.is_file():
            return path.resolve()
    raise LookupError(
        f'{distribution} {dist.version} is installed but has no '
        f'{GEOCLIP_WEIGHTS_FILE} (looked at {candidates[-1]}): reinstall it with '
        f'{install}'
    )


def geoclip_location_encoder(
    state_dict: Mapping[str, Any] | None = None,
    dtype: torch.dtype = torch.float64,
) -> LocationEncoder:
    """GeoCLIP's location encoder, with its weights or randomly initialised.

    Args:
        state_dict: a state dict in GeoCLIP's layout (the content of
            ``location_encoder_weights.pth``), or None for a new encoder with
            GeoCLIP's architecture (:data:`GEOCLIP_ARCHITECTURE`; the frequency
            matrices drawn with seed 0). To load the released weights from
            an installed ``geoclip`` distribution, use
            ``load_location_encoder('geoclip')``.
        dtype: parameter and compute dtype (float64 by default; GeoCLIP's own
            weights are float32 and convert exactly). The frequency matrices
            stay in float32 in a bfloat16 or float16 encoder, unrounded.

    Returns:
        A :class:`~.location_encoder.LocationEncoder` taking **(lon, lat)** in
        degrees to ``(N, 512)`` embeddings (for the released weights), in
        eval mode.

    Raises:
        ValueError: if ``dtype`` is not a floating torch dtype, or
            ``state_dict`` is not in GeoCLIP's layout (see
            :func:`geoclip_to_encoder_state_dict`).
    """
    check_dtype('dtype', dtype)
    if state_dict is None:
        return build_location_encoder(**GEOCLIP_ARCHITECTURE, dtype=dtype).eval()
    architecture, converted = geoclip_to_encoder_state_dict(state_dict)
    posenc = RandomFourierFeatures(
        sigmas=architecture['sigmas'], encoded_size=architecture['encoded_size']
    )
    nnet = MultiScaleMLP(
        dim_in=posenc.embedding_dim,
        dim_hidden=architecture['capacity'],
        dim_out=architecture['embed_dim'],
        num_layers=architecture['num_hidden_layers'],
        num_branches=len(architecture['sigmas']),
    )
    encoder = LocationEncoder(posenc, nnet).to(torch.float64)
    encoder.load_state_dict(converted, strict=True)
    return _to_dtype(encoder, dtype).eval()
