"""Location-only TorchGeo tasks: point labels predicted from the location alone.

For datasets of points with labels and no image (species records, weather
stations, survey points): a location embedding, then an MLP head;
``forward(location)``. The location arguments, ``location_input`` and the
step methods are those of the location-aware tasks
(:mod:`torchgeo_satclip.tasks.location_aware`), and so is the check of each
batch on the CPU before Lightning moves it (labels come from tables of
points): a regression label that is not finite (a missing value) or a class
index outside ``[0, num_classes)`` is refused, naming its row.
"""

from collections.abc import Sequence
from typing import Any, Literal

from torch import Tensor
from torchvision.models._api import WeightsEnum

from .._checks import check_int, check_real
from .._compat import (
    ClassificationTask,
    RegressionTask,
    classification_kwargs,
    regression_kwargs,
)
from ..models import LocationOnlyModel
from .location_aware import _IGNORE, _LocationSteps
from .utils import (
    LOCATION_DEFAULTS,
    resolve_deprecated_location_args,
)

__all__ = ['LocationClassificationTask', 'LocationRegressionTask']


class _LocationOnlyTask(_LocationSteps):
    """Location encoder + MLP head; batches without images."""

    _has_image = False

    def forward(self, location: Tensor) -> Tensor:
        """Predict from locations.

        Args:
            location: ``(B, 2)`` lon/lat in degrees, or ``(B, embed_dim)``
                embeddings, as ``location_input`` says.

        Returns:
            ``(B, num_outputs)``.

        Raises:
            ValueError: if *location* is not of the declared kind.
        """
        out: Tensor = self.model(location)
        return out

    def _build_location_only(self, num_outputs: int) -> None:
        """Set ``self.model``: the location encoder, then the MLP head.

        Raises:
            ValueError: if ``head_hidden`` is not a positive integer,
                ``head_layers`` not a non-negative integer or
                ``head_dropout`` not in [0, 1); the message names it.
        """
        hp = self.hparams
        hidden = check_int('head_hidden', hp['head_hidden'], minimum=1)
        layers = check_int('head_layers', hp['head_layers'], minimum=0)
        dropout = check_real('head_dropout', hp['head_dropout'], minimum=0.0, below=1.0)
        self.model = LocationOnlyModel(
            self._location_encoder(),
            num_outputs,
            hidden=hidden,
            num_layers=layers,
            dropout=dropout,
            freeze_location=hp['freeze_location'],
            location_input=hp['location_input'],
        )


class LocationClassificationTask(_LocationOnlyTask, ClassificationTask):  # type: ignore[misc]
    """Classification of points from their location embedding alone."""

    ignore: Sequence[str] | str | None = _IGNORE
    _classifies = True

    def __init__(
        self,
        task: Literal['binary', 'multiclass', 'multilabel'] = 'multiclass',
        num_classes: int | None = None,
        num_labels: int | None = None,
        loss: Literal['ce', 'bce', 'jaccard', 'focal'] = 'ce',
        class_weights: Tensor | Sequence[float] | None = None,
        lr: float = 1e-3,
        patience: int = 10,
        location_weights: WeightsEnum | str | None = None,
        positional_encoding: str = LOCATION_DEFAULTS.positional_encoding,
        location_network: str = LOCATION_DEFAULTS.location_network,
        legendre_polys: int = LOCATION_DEFAULTS.legendre_polys,
        embed_dim: int = LOCATION_DEFAULTS.embed_dim,
        capacity: int = LOCATION_DEFAULTS.capacity,
        num_hidden_layers: int = LOCATION_DEFAULTS.num_hidden_layers,
        location_dropout: float = LOCATION_DEFAULTS.location_dropout,
        positional_encoding_kwargs: dict[str, Any] | None = None,
        freeze_location: bool = True,
        location_input: Literal['lonlat', 'embedding'] = 'lonlat',
        allow_random_location: bool = False,
        location_weights_loaded: bool = False,
        head_hidden: int = 64,
        head_layers: int = 2,
        head_dropout: float = 0.0,
        labels: list[str] | None = None,
        pos_weight: Tensor | None = None,
        ignore_index: int | None = None,
        location_embed_dim: int | None = None,
        location_capacity: int | None = None,
        location_layers: int | None = None,
    ) -> None:
        """Initialise the task.

        Args:
            task: 'binary', 'multiclass' or 'multilabel'.
            num_classes: classes (multiclass).
            num_labels: labels (multilabel).
            loss: 'ce', 'bce', 'jaccard' or 'focal'.
            class_weights: class weights of the 'ce' loss.
            lr: learning rate.
            patience: patience of the learning-rate scheduler.
            location_weights: location encoder checkpoint path or
                ``SatCLIPWeights`` member or name; None builds one from the
                arguments below (randomly initialised: then pass
                ``freeze_location=False`` to train it, or
                ``allow_random_location=True``; a frozen random encoder is an
                error). Loaded weights bring their own architecture, which
                replaces the arguments below in the hyperparameters.
            positional_encoding: positional encoding name of a built encoder
                ('sphericalharmonics', 'wrap', 'spherec', 'rff', ...).
            location_network: network name of a built encoder ('siren',
                'fcnet', 'mlp', 'linear').
            legendre_polys: spherical-harmonic degrees L of a built encoder.
            embed_dim: embedding size of a built encoder.
            capacity: hidden width of a built encoder's network.
            num_hidden_layers: hidden layers of a built encoder's network.
            location_dropout: dropout of a built encoder's network (applies
                only when it is fine-tuned).
            positional_encoding_kwargs: further arguments of the positional
                encoding (e.g. ``sigmas`` and ``encoded_size`` of 'rff').
            freeze_location: keep the location encoder fixed.
            location_input: what a batch's location is: 'lonlat' (``point``
                or ``lon``/``lat``, embedded by the encoder) or 'embedding'
                (``location_embedding``, precomputed; needs
                *freeze_location*).
            allow_random_location: accept a frozen, randomly initialised
                location encoder (no ``location_weights``, *freeze_location*;
                its embedding is fixed noise: for tests and ablations only).
            location_weights_loaded: set by the task itself, in its
                hyperparameters, once it has loaded ``location_weights``: the
                recorded architecture is then built and its weights come from
                the task's checkpoint (``load_from_checkpoint`` needs no
                weights file). Do not set it yourself.
            head_hidden: hidden width of the MLP head (SatCLIP's example: 64).
            head_layers: hidden layers of the MLP head (0: linear probe).
            head_dropout: dropout of the MLP head.
            labels: class names (torchgeo >= 0.10 only).
            pos_weight: positive-class weight of the 'bce' loss (torchgeo >= 0.10).
            ignore_index: class ignored by loss and metrics (torchgeo >= 0.10).
            location_embed_dim: deprecated name of *embed_dim*.
            location_capacity: deprecated name of *capacity*.
            location_layers: deprecated name of *num_hidden_layers*.

        Raises:
            ValueError: on an invalid argument.
        """
        embed_dim, capacity, num_hidden_layers = resolve_deprecated_location_args(
            embed_dim,
            capacity,
            num_hidden_layers,
            location_embed_dim=location_embed_dim,
            location_capacity=location_capacity,
            location_layers=location_layers,
        )
        self.location_weights = location_weights
        super().__init__(
            model='location-only',
            weights=None,
            task=task,
            num_classes=num_classes,
            num_labels=num_labels,
            loss=loss,
            class_weights=class_weights,
            lr=lr,
            patience=patience,
            **classification_kwargs(labels, pos_weight, ignore_index),
        )

    def configure_models(self) -> None:
        """Build the location encoder and the MLP head."""
        hp = self.hparams
        self._build_location_only(int(hp['num_classes'] or hp['num_labels'] or 1))


class LocationRegressionTask(_LocationOnlyTask, RegressionTask):  # type: ignore[misc]
    """Regression of point values from their location embedding alone."""

    ignore: Sequence[str] | str | None = _IGNORE
    _classifies = False

    def __init__(
        self,
        num_outputs: int = 1,
        loss: Literal['mse', 'mae'] = 'mse',
        lr: float = 1e-3,
        patience: int = 10,
        location_weights: WeightsEnum | str | None = None,
        positional_encoding: str = LOCATION_DEFAULTS.positional_encoding,
        location_network: str = LOCATION_DEFAULTS.location_network,
        legendre_polys: int = LOCATION_DEFAULTS.legendre_polys,
        embed_dim: int = LOCATION_DEFAULTS.embed_dim,
        capacity: int = LOCATION_DEFAULTS.capacity,
        num_hidden_layers: int = LOCATION_DEFAULTS.num_hidden_layers,
        location_dropout: float = LOCATION_DEFAULTS.location_dropout,
        positional_encoding_kwargs: dict[str, Any] | None = None,
        freeze_location: bool = True,
        location_input: Literal['lonlat', 'embedding'] = 'lonlat',
        allow_random_location: bool = False,
        location_weights_loaded: bool = False,
        head_hidden: int = 64,
        head_layers: int = 2,
        head_dropout: float = 0.0,
        labels: list[str] | None = None,
        location_embed_dim: int | None = None,
        location_capacity: int | None = None,
        location_layers: int | None = None,
    ) -> None:
        """Initialise the task.

        Args:
            num_outputs: regression outputs.
            loss: 'mse' or 'mae'.
            lr: learning rate.
            patience: patience of the learning-rate scheduler.
            location_weights: location encoder checkpoint path or
                ``SatCLIPWeights`` member or name; None builds one from the
                arguments below (randomly initialised: then pass
                ``freeze_location=False`` to train it, or
                ``allow_random_location=True``; a frozen random encoder is an
                error). Loaded weights bring their own architecture, which
                replaces the arguments below in the hyperparameters.
            positional_encoding: positional encoding name of a built encoder
                ('sphericalharmonics', 'wrap', 'spherec', 'rff', ...).
            location_network: network name of a built encoder ('siren',
                'fcnet', 'mlp', 'linear').
            legendre_polys: spherical-harmonic degrees L of a built encoder.
            embed_dim: embedding size of a built encoder.
            capacity: hidden width of a built encoder's network.
            num_hidden_layers: hidden layers of a built encoder's network.
            location_dropout: dropout of a built encoder's network (applies
                only when it is fine-tuned).
            positional_encoding_kwargs: further arguments of the positional
                encoding (e.g. ``sigmas`` and ``encoded_size`` of 'rff').
            freeze_location: keep the location encoder fixed.
            location_input: what a batch's location is: 'lonlat' (``point``
                or ``lon``/``lat``, embedded by the encoder) or 'embedding'
                (``location_embedding``, precomputed; needs
                *freeze_location*).
            allow_random_location: accept a frozen, randomly initialised
                location encoder (no ``location_weights``, *freeze_location*;
                its embedding is fixed noise: for tests and ablations only).
            location_weights_loaded: set by the task itself, in its
                hyperparameters, once it has loaded ``location_weights``: the
                recorded architecture is then built and its weights come from
                the task's checkpoint (``load_from_checkpoint`` needs no
                weights file). Do not set it yourself.
            head_hidden: hidden width of the MLP head (SatCLIP's example: 64).
            head_layers: hidden layers of the MLP head (0: linear probe).
            head_dropout: dropout of the MLP head.
            labels: output names (torchgeo >= 0.10 only).
            location_embed_dim: deprecated name of *embed_dim*.
            location_capacity: deprecated name of *capacity*.
            location_layers: deprecated name of *num_hidden_layers*.

        Raises:
            ValueError: on an invalid argument.
        """
        embed_dim, capacity, num_hidden_layers = resolve_deprecated_location_args(
            embed_dim,
            capacity,
            num_hidden_layers,
            location_embed_dim=location_embed_dim,
            location_capacity=location_capacity,
            location_layers=location_layers,
        )
        self.location_weights = location_weights
        super().__init__(
            model='location-only',
            weights=None,
            num_outputs=num_outputs,
            loss=loss,
            lr=lr,
            patience=patience,
            **regression_kwargs(labels),
        )

    def configure_models(self) -> None:
        """Build the location encoder and the MLP head."""
        self._build_location_only(int(self.hparams['num_outputs']))
