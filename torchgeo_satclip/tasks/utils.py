"""Helpers shared by the tasks: the location-encoder arguments, pooled features.

Every task of this package takes the same location-encoder arguments, with the
names of SatCLIP's released ``hyper_parameters`` and of TorchGeo's own
``torchgeo.models.SatCLIP`` (``legendre_polys``, ``capacity``, ``embed_dim``,
``num_hidden_layers``), and the defaults of the released SatCLIP architecture
(spherical harmonics with L = 10, a SIREN of 2 x 512, 256-dimensional
embeddings). They are defined once, in :class:`LocationEncoderArgs`; each
task's ``__init__`` lists them with these defaults (jsonargparse, hence
``torchgeo fit``, builds its parser from the signatures) and builds its
encoder with :meth:`LocationEncoderArgs.build`.
"""

import dataclasses
import inspect
import os
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..models import (
    LocationEncoder,
    LocationSource,
    RandomFourierFeatures,
    build_location_encoder,
    location_encoder_hyper_parameters,
    satclip_location_encoder,
)

__all__ = [
    'DEPRECATED_LOCATION_ARGS',
    'LOCATION_DEFAULTS',
    'LocationEncoderArgs',
    'check_backbone_keys',
    'check_frozen_shapes',
    'check_point_precision',
    'check_random_location',
    'location_encoder_architecture',
    'pooled_feature_size',
    'resolve_deprecated_location_args',
]


@dataclasses.dataclass(frozen=True)
class LocationEncoderArgs:
    """The location-encoder arguments of every task, with their defaults.

    Attributes:
        positional_encoding: positional encoding name (SatCLIP's ``le_type``:
            ``'sphericalharmonics'``, ``'wrap'``, ``'spherec'``, ``'rff'``, ...).
        location_network: network name (SatCLIP's ``pe_type``: ``'siren'``,
            ``'fcnet'``, ``'mlp'``, ``'linear'``).
        legendre_polys: spherical-harmonic degrees L (10 or 40 released).
        embed_dim: size of the location embedding.
        capacity: hidden width of the location network.
        num_hidden_layers: hidden layers of the location network.
        location_dropout: dropout of the location network in training.
        positional_encoding_kwargs: further arguments of the positional
            encoding (e.g. ``sigmas``/``encoded_size``/``seed`` for ``'rff'``,
            ``frequency_num``/``min_radius``/``max_radius``).
    """

    positional_encoding: str = 'sphericalharmonics'
    location_network: str = 'siren'
    legendre_polys: int = 10
    embed_dim: int = 256
    capacity: int = 512
    num_hidden_layers: int = 2
    location_dropout: float = 0.5
    positional_encoding_kwargs: Mapping[str, Any] | None = None

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any]) -> 'LocationEncoderArgs':
        """Read the arguments from a task's hyperparameters.

        Args:
            hparams: the task's ``hparams``.

        Returns:
            The arguments.
        """
        names = [field.name for field in dataclasses.fields(cls)]
        return cls(**{name: hparams[name] for name in names})

    def build(
        self, weights: LocationSource | None = None, dtype: torch.dtype = torch.float32
    ) -> LocationEncoder:
        """Build the encoder, or load it from *weights* (whose architecture wins).

        A loaded encoder keeps the architecture of its weights, but its
        network is built with the dropout ``location_dropout`` (a checkpoint
        records no dropout; the loader's ``dropout`` argument): training uses
        the dropout asked for, and a task checkpoint, which rebuilds the
        loaded architecture with ``location_dropout``, rebuilds the same
        encoder. Networks without dropout (``'mlp'``, ``'linear'``, GeoCLIP's)
        ignore it, loaded or built.

        Args:
            weights: None for a new, randomly initialised encoder; else what
                :func:`~torchgeo_satclip.models.load_location_encoder`
                accepts (a checkpoint path, a ``SatCLIPWeights`` member or
                name, a state dict). Not a built ``LocationEncoder``: it would
                be used as it is, without ``location_dropout``.
            dtype: parameter and compute dtype.

        Returns:
            The location encoder.

        Raises:
            ValueError: if *weights* is a built ``LocationEncoder``, or an
                argument is invalid (the message names it), or, for a new
                encoder, *positional_encoding_kwargs* is not a mapping or sets
                an argument of the encoder itself (``legendre_polys``,
                ``dropout``, ``validate``, ...).
        """
        if weights is not None:
            return satclip_location_encoder(
                weights, dtype=dtype, dropout=self.location_dropout
            )
        return satclip_location_encoder(
            None,
            dtype=dtype,
            positional_encoding=self.positional_encoding,
            network=self.location_network,
            legendre_polys=self.legendre_polys,
            embed_dim=self.embed_dim,
            capacity=self.capacity,
            num_hidden_layers=self.num_hidden_layers,
            dropout=self.location_dropout,
            **_positional_encoding_kwargs(self.positional_encoding_kwargs),
        )


#: The task argument that sets each keyword of the location-encoder factory
#: that has one; the factory's other keywords (``dtype``, ``validate``,
#: ``root``, ``progress``) the task sets itself, or leaves.
_TASK_ARGUMENTS: dict[str, str] = {
    'weights': 'location_weights',
    'positional_encoding': 'positional_encoding',
    'network': 'location_network',
    'legendre_polys': 'legendre_polys',
    'embed_dim': 'embed_dim',
    'capacity': 'capacity',
    'num_hidden_layers': 'num_hidden_layers',
    'dropout': 'location_dropout',
}

#: The location-encoder factory's own keywords (of
#: :func:`~torchgeo_satclip.models.satclip_location_encoder` and the
#: :func:`~torchgeo_satclip.models.build_location_encoder` it calls), which
#: ``positional_encoding_kwargs`` must not set: they went to the factory
#: beside the task's value (a ``TypeError`` naming neither), or were taken as
#: the factory's own (``validate: false`` switched the point checks off).
_ENCODER_KEYWORDS = frozenset(
    parameter.name
    for factory in (satclip_location_encoder, build_location_encoder)
    for parameter in inspect.signature(factory).parameters.values()
    if parameter.kind is not inspect.Parameter.VAR_KEYWORD
)


def _positional_encoding_kwargs(kwargs: Any) -> dict[str, Any]:
    """*positional_encoding_kwargs* as a dict, checked.

    Args:
        kwargs: the ``positional_encoding_kwargs`` argument (None: none).

    Returns:
        The arguments of the positional encoding.

    Raises:
        ValueError: if *kwargs* is not a mapping, or sets one of
            :data:`_ENCODER_KEYWORDS`; the message names the key, its value
            and the task argument to use instead.
    """
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping):
        raise ValueError(
            'positional_encoding_kwargs must be a mapping of argument names to '
            f'values, not {kwargs!r} ({type(kwargs).__name__})'
        )
    for key, value in kwargs.items():
        if key not in _ENCODER_KEYWORDS:
            continue
        argument = _TASK_ARGUMENTS.get(key)
        fix = (
            f'the task argument {argument} sets it: give it as {argument}, not '
            'in positional_encoding_kwargs'
            if argument is not None
            else 'no argument of a positional encoding (the location encoder '
            'sets it itself): remove it'
        )
        raise ValueError(f'positional_encoding_kwargs sets {key!r} ({value!r}); {fix}')
    return dict(kwargs)


#: The defaults every task uses (the released SatCLIP architecture).
LOCATION_DEFAULTS = LocationEncoderArgs()

#: Old argument names of the location-aware tasks and their current names.
DEPRECATED_LOCATION_ARGS: dict[str, str] = {
    'location_embed_dim': 'embed_dim',
    'location_capacity': 'capacity',
    'location_layers': 'num_hidden_layers',
}


def resolve_deprecated_location_args(
    embed_dim: int,
    capacity: int,
    num_hidden_layers: int,
    *,
    location_embed_dim: int | None,
    location_capacity: int | None,
    location_layers: int | None,
) -> tuple[int, int, int]:
    """Move values given under deprecated names onto the current names.

    The location-aware tasks called three arguments ``location_embed_dim``,
    ``location_capacity`` and ``location_layers``; every task now uses
    SatCLIP's names (see :data:`DEPRECATED_LOCATION_ARGS`). An old name still
    works, with a ``DeprecationWarning``.

    Args:
        embed_dim: the value of ``embed_dim``.
        capacity: the value of ``capacity``.
        num_hidden_layers: the value of ``num_hidden_layers``.
        location_embed_dim: deprecated ``embed_dim`` (None: not given).
        location_capacity: deprecated ``capacity`` (None: not given).
        location_layers: deprecated ``num_hidden_layers`` (None: not given).

    Returns:
        ``(embed_dim, capacity, num_hidden_layers)``.

    Raises:
        ValueError: if an old and a new name are both given, with different
            values.
    """
    current = {
        'embed_dim': embed_dim,
        'capacity': capacity,
        'num_hidden_layers': num_hidden_layers,
    }
    deprecated = {
        'location_embed_dim': location_embed_dim,
        'location_capacity': location_capacity,
        'location_layers': location_layers,
    }
    for old, value in deprecated.items():
        if value is None:
            continue
        new = DEPRECATED_LOCATION_ARGS[old]
        if current[new] not in (getattr(LOCATION_DEFAULTS, new), value):
            raise ValueError(
                f'{old} (deprecated) and {new} are both given, with different '
                f'values: {old} (deprecated) is {value!r} and {new} is '
                f'{current[new]!r}: give one of them (as {new})'
            )
        warnings.warn(
            f'{old} is deprecated; use {new} (the name every task uses)',
            DeprecationWarning,
            stacklevel=3,
        )
        current[new] = value
    return current['embed_dim'], current['capacity'], current['num_hidden_layers']


def location_encoder_architecture(encoder: LocationEncoder) -> dict[str, Any]:
    """The task arguments that rebuild *encoder*'s architecture.

    Used to record the architecture of loaded weights in a task's
    hyperparameters, so that its checkpoint rebuilds the same encoder.

    Args:
        encoder: a location encoder.

    Returns:
        ``positional_encoding``, ``location_network`` and ``embed_dim``, plus
        ``legendre_polys``, ``capacity`` and ``num_hidden_layers`` where the
        encoder has them (a network's ``num_layers`` counts as its hidden
        layers), and ``positional_encoding_kwargs``: for random Fourier
        features (GeoCLIP's weights) their ``sigmas``, ``encoded_size`` and
        ``seed`` (the loaded frequency matrices themselves are in the state
        dict); for the other encodings the arguments that shape their output
        (``frequency_num``, ``min_radius``, ``max_radius`` and ``convention``
        of the Space2Vec and Sphere2Vec encodings, ``normalization`` of the
        spherical harmonics), None for an encoding without any. Without them
        a task loaded from, say, ``spherec`` weights of 4 frequencies was
        rebuilt from its checkpoint with the default 10 (a size mismatch), or
        with other radii (a different encoder, silently).
    """
    hparams = location_encoder_hyper_parameters(encoder)
    if hparams['num_hidden_layers'] is None:
        hparams['num_hidden_layers'] = getattr(encoder.nnet, 'num_layers', None)
    arch: dict[str, Any] = {
        'positional_encoding': hparams['le_type'],
        'location_network': hparams['pe_type'],
    }
    for key in ('embed_dim', 'legendre_polys', 'capacity', 'num_hidden_layers'):
        if hparams[key] is not None:
            arch[key] = int(hparams[key])
    posenc = encoder.posenc
    if isinstance(posenc, RandomFourierFeatures):
        arch['positional_encoding_kwargs'] = {
            'sigmas': [float(sigma) for sigma in posenc.sigmas],
            'encoded_size': int(posenc.encoded_size),
            'seed': int(posenc.seed),
        }
    else:
        arch['positional_encoding_kwargs'] = _encoding_arguments(posenc)
    return arch


#: Arguments of a positional encoding that are no part of its architecture
#: (``legendre_polys`` is recorded under its own name, ``backend`` is a
#: choice of kernel).
_NOT_ARCHITECTURE = frozenset({'self', 'legendre_polys', 'backend'})


def _encoding_arguments(posenc: Any) -> dict[str, Any] | None:
    """The constructor arguments of *posenc* that shape its output.

    Each argument of the encoding's ``__init__`` (but ``legendre_polys`` and
    ``backend``) that the encoding keeps as an attribute of the same name:
    ``frequency_num``, ``min_radius`` and ``max_radius`` of the Space2Vec and
    Sphere2Vec encodings, their ``convention``, the spherical harmonics'
    ``normalization``.

    Args:
        posenc: a positional encoding.

    Returns:
        The arguments, or None for an encoding without any.
    """
    arguments: dict[str, Any] = {}
    for name in inspect.signature(type(posenc).__init__).parameters:
        if name in _NOT_ARCHITECTURE or not hasattr(posenc, name):
            continue
        value = getattr(posenc, name)
        if isinstance(value, bool | int | float | str):
            arguments[name] = value
    return arguments or None


def pooled_feature_size(model: Any) -> int:
    """Size of the pooled features a timm model returns with ``num_classes=0``.

    timm's ``num_features`` is the width of the last feature map; models with a
    pre-logits head (MobileNetV3, LCNet, ...) return ``head_hidden_size``
    features instead (for example 1024, not 288, for
    ``mobilenetv3_small_050``). timm >= 1.0 defines ``head_hidden_size`` on
    every model; older models fall back to ``num_features``.

    Args:
        model: a timm model.

    Returns:
        The feature size.
    """
    size = getattr(model, 'head_hidden_size', None) or model.num_features
    return int(size)


def check_random_location(
    *, freeze_location: bool, location_input: str, allow_random_location: bool
) -> None:
    """Refuse a frozen, randomly initialised location encoder.

    Such an encoder never learns: every embedding it adds is fixed noise, and
    a model trained on it looks like one with a location input. A task
    without ``location_weights`` must either train its encoder
    (``freeze_location=False``) or say that it wants the noise
    (``allow_random_location=True``, for tests and ablations). Precomputed
    embeddings (``location_input='embedding'``) do not go through the
    encoder and are always accepted.

    Args:
        freeze_location: whether the encoder is frozen.
        location_input: ``'lonlat'`` or ``'embedding'``.
        allow_random_location: the explicit opt-in.

    Raises:
        ValueError: naming the fixes, if the encoder would be random and frozen.
    """
    if freeze_location and location_input == 'lonlat' and not allow_random_location:
        raise ValueError(
            'the location encoder would be frozen and randomly initialised (no '
            'location_weights), so its embedding would be fixed noise: pass '
            'location_weights (a checkpoint path or a SatCLIPWeights name such '
            "as 'SATCLIP_RESNET18_L10'), or freeze_location=False to train it, "
            'or allow_random_location=True if that is really what you want'
        )


def check_point_precision(trainer: Any) -> None:
    """Refuse a trainer precision that would round the batches' points.

    Under ``precision='16-true'`` or ``'bf16-true'`` (and Transformer
    Engine's precisions) Lightning casts every floating-point tensor of a
    batch to a half type before the task sees it (the precision plugin's
    ``convert_input``), the (lon, lat) points included; the location encoder
    would read, and a prediction writer store, points moved by up to half a
    spacing of the type at 128 to 180 degrees. The plugin is asked what it
    makes of a float64 tensor, so any precision that narrows the batches to
    fewer than 32 bits is refused. The mixed precisions leave the batches as
    they are.

    Args:
        trainer: the Lightning trainer (None, or one without a precision
            plugin: nothing to check).

    Raises:
        ValueError: naming the precision, how far a point would move and the
            mixed precision to use instead.
    """
    plugin = getattr(trainer, 'precision_plugin', None)
    if plugin is None:
        return
    dtype = plugin.convert_input(torch.zeros(1, dtype=torch.float64)).dtype
    if not dtype.is_floating_point or torch.finfo(dtype).bits >= 32:
        return
    precision = str(getattr(trainer, 'precision', type(plugin).__name__))
    error = torch.finfo(dtype).eps * 128 / 2  # half a spacing in [128, 256)
    mixed = '16-mixed' if dtype == torch.float16 else 'bf16-mixed'
    raise ValueError(
        f'precision={precision!r} casts every floating-point tensor of a batch '
        f'to {dtype} before the task sees it, the (lon, lat) points included: '
        f'they would move by up to {error:g} degrees (about {error * 111:.0f} '
        f'km), and projected coordinates could overflow; use {mixed!r} '
        '(autocast), which keeps the points and the location encoder in their '
        'own dtype'
    )


def check_backbone_keys(
    model: nn.Module,
    state: Mapping[str, Any],
    weights: str | os.PathLike[str],
    skip: str | None = None,
) -> None:
    """Refuse a checkpoint file that lacks tensors of the backbone.

    TorchGeo's loader loads with ``strict=False``: the backbone's tensors
    that the file lacks would stay randomly initialised (and, with
    ``freeze_backbone``, stay so). Batch-norm counters
    (``num_batches_tracked``) may be missing; keys the backbone does not have
    (a classifier, other parts of a task) are left to the loader.

    Args:
        model: the backbone.
        state: the state dict the weights give it.
        weights: where they come from, for the message.
        skip: a prefix of keys the weights need not hold (a classifier the
            caller replaces).

    Raises:
        ValueError: naming the file, how many tensors it lacks and the first
            of them.
    """
    expected = [
        key
        for key in model.state_dict()
        if not key.endswith('num_batches_tracked')
        and not (skip and key.startswith(skip))
    ]
    missing = [key for key in expected if key not in state]
    if missing:
        found = ', '.join(repr(key) for key in list(state)[:3]) or 'none'
        raise ValueError(
            f'weights {str(weights)!r} lacks {len(missing)} of the {len(expected)} '
            f'tensors of the image backbone, first {", ".join(map(repr, missing[:3]))} '
            f'(its keys begin {found}): expected a checkpoint of this backbone '
            '(a TorchGeo or SatCLIPTask checkpoint, a SatCLIP checkpoint, or its '
            'state dict)'
        )


def check_frozen_shapes(
    model: nn.Module, state: Mapping[str, Any], weights: Any
) -> None:
    """Refuse weights with a tensor of another shape for a frozen backbone.

    TorchGeo's loader replaces a first layer of other input channels with a
    random one (with a warning): fine when the backbone trains, but a frozen
    backbone would keep that random layer for the whole run.

    Args:
        model: the backbone.
        state: the state dict the weights give it.
        weights: where they come from (a path or a weights enum), for the
            message.

    Raises:
        ValueError: naming the weights, the tensor and both shapes.
    """
    own = model.state_dict()
    for key, value in state.items():
        if key not in own or not isinstance(value, Tensor):
            continue
        expected = tuple(own[key].shape)
        if tuple(value.shape) == expected:
            continue
        channels = ''
        if value.ndim == len(expected) >= 2 and value.shape[0] == expected[0]:
            channels = (
                f' (input channels: {value.shape[1]} in the weights, in_channels '
                f'{expected[1]} here)'
            )
        raise ValueError(
            f'weights {str(weights)!r} do not fit the frozen backbone: their '
            f'{key!r} of shape {tuple(value.shape)} would replace one of shape '
            f'{expected}{channels} by a random layer, frozen for the whole run: '
            'set in_channels to match the weights, or freeze_backbone: false'
        )
