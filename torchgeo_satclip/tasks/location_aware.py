"""Location-aware TorchGeo classification and regression tasks.

TorchGeo's downstream tasks read only ``batch['image']``. The tasks here fuse
the image backbone's pooled features with a SatCLIP location embedding of the
batch's coordinates (``point``, ``lon``/``lat``, or a precomputed
``location_embedding``; see :func:`~torchgeo_satclip.transforms.sample_lonlat`):

* :class:`LocationAwareClassificationTask`, :class:`LocationAwareRegressionTask`:
  image backbone (any timm model, TorchGeo weights as usual) + location
  encoder, fused by concatenation (default) or FiLM, then a linear head.
* :class:`LocationClassificationTask`, :class:`LocationRegressionTask`: no
  image at all, for datasets of points with labels: location embedding, then
  an MLP head.

The location encoder is configured by name (``positional_encoding``,
``location_network``, ``legendre_polys``, ...) or loaded from
``location_weights`` (a checkpoint path or a ``SatCLIPWeights`` member or
name), frozen by default (``freeze_location=False`` fine-tunes it).

The fusion tasks reuse TorchGeo's own step methods (losses, metrics and
validation plots of the installed version): each step records the batch's
location, then calls the parent step, whose ``self(x)`` picks it up.
"""

import enum
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torchvision.models._api import WeightsEnum

from .._compat import (
    METRICS_LOGGED_AT_EPOCH_END,
    ClassificationTask,
    RegressionTask,
    classification_kwargs,
    regression_kwargs,
)
from ..models import LocationEncoder, satclip_location_encoder
from ..transforms.location import sample_lonlat
from .utils import pooled_feature_size

__all__ = [
    'Fusion',
    'LocationAwareClassificationTask',
    'LocationAwareRegressionTask',
    'LocationClassificationTask',
    'LocationFusionModel',
    'LocationOnlyModel',
    'LocationRegressionTask',
]


class Fusion(enum.StrEnum):
    """How image features and the location embedding are combined."""

    #: ``head([image_features, location_embedding])``.
    CONCAT = 'concat'
    #: Feature-wise linear modulation: ``head(f * (1 + gamma(e)) + beta(e))``.
    FILM = 'film'


class _Location(nn.Module):
    """A location encoder, frozen (in eval mode, no gradients) or trainable."""

    def __init__(self, encoder: LocationEncoder, frozen: bool) -> None:
        super().__init__()
        self.encoder = encoder
        self.frozen = frozen
        if frozen:
            self.encoder.eval()
            for param in self.encoder.parameters():
                param.requires_grad_(False)

    @property
    def embed_dim(self) -> int:
        return self.encoder.embed_dim

    def train(self, mode: bool = True) -> '_Location':
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, location: Tensor) -> Tensor:
        """Embed ``(B, 2)`` lon/lat, or pass a ``(B, D)`` embedding through."""
        if location.ndim == 2 and location.shape[1] == self.embed_dim != 2:
            return location.float()
        if self.frozen:
            with torch.no_grad():
                frozen: Tensor = self.encoder(location).float()
            return frozen
        out: Tensor = self.encoder(location).float()
        return out


class LocationFusionModel(nn.Module):
    """Image backbone features fused with a location embedding, then a head."""

    def __init__(
        self,
        backbone: nn.Module,
        num_features: int,
        location_encoder: LocationEncoder,
        num_outputs: int,
        fusion: Fusion | str = Fusion.CONCAT,
        freeze_location: bool = True,
    ) -> None:
        """Initialise the model.

        Args:
            backbone: maps images to ``(B, num_features)`` pooled features.
            num_features: size of the backbone's features.
            location_encoder: maps ``(B, 2)`` lon/lat to embeddings.
            num_outputs: size of the output.
            fusion: 'concat' or 'film'.
            freeze_location: keep the location encoder fixed.
        """
        super().__init__()
        self.backbone = backbone
        self.location = _Location(location_encoder, freeze_location)
        self.fusion = Fusion(fusion)
        dim = self.location.embed_dim
        if self.fusion is Fusion.FILM:
            self.film = nn.Linear(dim, 2 * num_features)
            nn.init.zeros_(self.film.weight)  # start as the identity modulation
            nn.init.zeros_(self.film.bias)
            self.head = nn.Linear(num_features, num_outputs)
        else:
            self.head = nn.Linear(num_features + dim, num_outputs)

    def forward(self, image: Tensor, location: Tensor) -> Tensor:
        """Predict.

        Args:
            image: ``(B, C, H, W)`` images.
            location: ``(B, 2)`` lon/lat in degrees, or ``(B, D)`` precomputed
                embeddings.

        Returns:
            ``(B, num_outputs)`` logits or values.
        """
        features = self.backbone(image)
        embedding = self.location(location).to(features.dtype)
        if self.fusion is Fusion.FILM:
            gamma, beta = self.film(embedding).chunk(2, dim=1)
            out: Tensor = self.head(features * (1 + gamma) + beta)
            return out
        out = self.head(torch.cat([features, embedding], dim=1))
        return out


class LocationOnlyModel(nn.Module):
    """Location embedding, then an MLP head."""

    def __init__(
        self,
        location_encoder: LocationEncoder,
        num_outputs: int,
        hidden: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        freeze_location: bool = True,
    ) -> None:
        """Initialise the model.

        Args:
            location_encoder: maps ``(B, 2)`` lon/lat to embeddings.
            num_outputs: size of the output.
            hidden: width of the head's hidden layers.
            num_layers: hidden layers of the head (0: a linear head).
            dropout: dropout after each hidden layer.
            freeze_location: keep the location encoder fixed.
        """
        super().__init__()
        self.location = _Location(location_encoder, freeze_location)
        layers: list[nn.Module] = []
        width = self.location.embed_dim
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_outputs))
        self.head = nn.Sequential(*layers)

    def forward(self, location: Tensor) -> Tensor:
        """Predict from ``(B, 2)`` lon/lat or ``(B, D)`` embeddings."""
        out: Tensor = self.head(self.location(location))
        return out


class _LocationMixin:
    """Shared location handling of the tasks below."""

    hparams: Any
    location_weights: WeightsEnum | str | None
    _location: Tensor | None = None

    def _location_encoder(self) -> LocationEncoder:
        """Build or load the location encoder from the hyperparameters."""
        hp = self.hparams
        return satclip_location_encoder(
            self.location_weights,
            dtype=torch.float32,
            positional_encoding=hp['positional_encoding'],
            network=hp['location_network'],
            legendre_polys=hp['legendre_polys'],
            embed_dim=hp['location_embed_dim'],
            capacity=hp['location_capacity'],
            num_hidden_layers=hp['location_layers'],
        )

    def _batch_location(self, batch: dict[str, Any]) -> Tensor:
        """Precomputed ``location_embedding`` (frozen encoder), else lon/lat."""
        if self.hparams['freeze_location'] and 'location_embedding' in batch:
            return torch.as_tensor(batch['location_embedding'])
        lonlat, _ = sample_lonlat(batch)
        return lonlat

    @contextmanager
    def _located(self, batch: dict[str, Any]) -> Iterator[None]:
        self._location = self._batch_location(batch)
        try:
            yield
        finally:
            self._location = None


class _FusionSteps(_LocationMixin):
    """Step methods that record the batch location, then run TorchGeo's step."""

    model: nn.Module

    def _configure_fusion(self, super_configure: Any) -> None:
        super_configure()  # TorchGeo's timm model, weights and freezing
        backbone: Any = self.model  # a timm model
        if not hasattr(backbone, 'reset_classifier'):
            raise TypeError(
                f'{type(backbone).__name__} has no reset_classifier (timm API)'
            )
        backbone.reset_classifier(0)
        num_features = pooled_feature_size(backbone)
        self.model = LocationFusionModel(
            backbone,
            num_features,
            self._location_encoder(),
            self._num_outputs(),
            fusion=self.hparams['fusion'],
            freeze_location=self.hparams['freeze_location'],
        )

    def _num_outputs(self) -> int:
        raise NotImplementedError

    def forward(self, x: Tensor, location: Tensor | None = None) -> Tensor:
        """Predict from images and their locations.

        Args:
            x: ``(B, C, H, W)`` images.
            location: ``(B, 2)`` lon/lat (or ``(B, D)`` embeddings); default:
                the location of the batch being processed by a step method.

        Returns:
            ``(B, num_outputs)``.

        Raises:
            ValueError: if no location is available.
        """
        location = location if location is not None else self._location
        if location is None:
            raise ValueError(
                'a location-aware task needs locations: call model(x, lonlat) or '
                "give batches a 'point' (or 'lon'/'lat') key"
            )
        out: Tensor = self.model(x, location.to(x.device))
        return out

    def training_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        """Run the parent's training step with the batch's location."""
        with self._located(batch):
            loss: Tensor = super().training_step(batch, batch_idx, dataloader_idx)  # type: ignore[misc]
        return loss

    def validation_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Run the parent's validation step with the batch's location."""
        with self._located(batch):
            super().validation_step(batch, batch_idx, dataloader_idx)  # type: ignore[misc]

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Run the parent's test step with the batch's location."""
        with self._located(batch):
            super().test_step(batch, batch_idx, dataloader_idx)  # type: ignore[misc]

    def predict_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        """Run the parent's predict step with the batch's location."""
        with self._located(batch):
            out: Tensor = super().predict_step(batch, batch_idx, dataloader_idx)  # type: ignore[misc]
        return out


class LocationAwareClassificationTask(_FusionSteps, ClassificationTask):  # type: ignore[misc]
    """Image classification with a SatCLIP location embedding fused in."""

    ignore: Sequence[str] | str | None = ('weights', 'location_weights')

    def __init__(
        self,
        model: str = 'resnet50',
        weights: WeightsEnum | str | bool | None = None,
        in_channels: int = 3,
        task: Literal['binary', 'multiclass', 'multilabel'] = 'multiclass',
        num_classes: int | None = None,
        num_labels: int | None = None,
        loss: Literal['ce', 'bce', 'jaccard', 'focal'] = 'ce',
        class_weights: Tensor | Sequence[float] | None = None,
        lr: float = 1e-3,
        patience: int = 10,
        freeze_backbone: bool = False,
        location_weights: WeightsEnum | str | None = None,
        positional_encoding: str = 'sphericalharmonics',
        location_network: str = 'siren',
        legendre_polys: int = 10,
        location_embed_dim: int = 256,
        location_capacity: int = 256,
        location_layers: int = 2,
        freeze_location: bool = True,
        fusion: Literal['concat', 'film'] = 'concat',
        labels: list[str] | None = None,
        pos_weight: Tensor | None = None,
        ignore_index: int | None = None,
    ) -> None:
        """Initialise the task.

        Args:
            model: timm model name of the image backbone.
            weights: image backbone weights, as in TorchGeo's classification
                task (enum, enum name, True for ImageNet, or a checkpoint path).
            in_channels: image channels.
            task: 'binary', 'multiclass' or 'multilabel'.
            num_classes: classes (multiclass).
            num_labels: labels (multilabel).
            loss: 'ce', 'bce', 'jaccard' or 'focal'.
            class_weights: class weights of the 'ce' loss.
            lr: learning rate.
            patience: patience of the learning-rate scheduler.
            freeze_backbone: train only the head (and fusion layers).
            location_weights: location encoder checkpoint path or
                ``SatCLIPWeights`` member or name; None builds one from the
                arguments below (randomly initialised).
            positional_encoding: positional encoding name of a built encoder
                ('sphericalharmonics', 'wrap', 'spherec', ...).
            location_network: network name of a built encoder ('siren',
                'fcnet', 'mlp', 'linear').
            legendre_polys: spherical-harmonic degrees L of a built encoder.
            location_embed_dim: embedding size of a built encoder.
            location_capacity: hidden width of a built encoder.
            location_layers: hidden layers of a built encoder.
            freeze_location: keep the location encoder fixed (a batch's
                precomputed ``location_embedding`` is then used if present).
            fusion: 'concat' (default) or 'film'.
            labels: class names (torchgeo >= 0.10 only).
            pos_weight: positive-class weight of the 'bce' loss (torchgeo >= 0.10).
            ignore_index: class ignored by loss and metrics (torchgeo >= 0.10).
        """
        self.location_weights = location_weights
        super().__init__(
            model=model,
            weights=weights,
            in_channels=in_channels,
            task=task,
            num_classes=num_classes,
            num_labels=num_labels,
            loss=loss,
            class_weights=class_weights,
            lr=lr,
            patience=patience,
            freeze_backbone=freeze_backbone,
            **classification_kwargs(labels, pos_weight, ignore_index),
        )

    def _num_outputs(self) -> int:
        return int(self.hparams['num_classes'] or self.hparams['num_labels'] or 1)

    def configure_models(self) -> None:
        """Build the backbone (TorchGeo's recipe), location encoder and head."""
        self._configure_fusion(super().configure_models)


class LocationAwareRegressionTask(_FusionSteps, RegressionTask):  # type: ignore[misc]
    """Image regression with a SatCLIP location embedding fused in."""

    ignore: Sequence[str] | str | None = ('weights', 'location_weights')

    def __init__(
        self,
        model: str = 'resnet50',
        weights: WeightsEnum | str | bool | None = None,
        in_channels: int = 3,
        num_outputs: int = 1,
        loss: Literal['mse', 'mae'] = 'mse',
        lr: float = 1e-3,
        patience: int = 10,
        freeze_backbone: bool = False,
        location_weights: WeightsEnum | str | None = None,
        positional_encoding: str = 'sphericalharmonics',
        location_network: str = 'siren',
        legendre_polys: int = 10,
        location_embed_dim: int = 256,
        location_capacity: int = 256,
        location_layers: int = 2,
        freeze_location: bool = True,
        fusion: Literal['concat', 'film'] = 'concat',
        labels: list[str] | None = None,
    ) -> None:
        """Initialise the task.

        Args:
            model: timm model name of the image backbone.
            weights: image backbone weights, as in TorchGeo's regression task.
            in_channels: image channels.
            num_outputs: regression outputs.
            loss: 'mse' or 'mae'.
            lr: learning rate.
            patience: patience of the learning-rate scheduler.
            freeze_backbone: train only the head (and fusion layers).
            location_weights: location encoder checkpoint path or
                ``SatCLIPWeights`` member or name; None builds one from the
                arguments below.
            positional_encoding: positional encoding name of a built encoder.
            location_network: network name of a built encoder.
            legendre_polys: spherical-harmonic degrees L of a built encoder.
            location_embed_dim: embedding size of a built encoder.
            location_capacity: hidden width of a built encoder.
            location_layers: hidden layers of a built encoder.
            freeze_location: keep the location encoder fixed.
            fusion: 'concat' (default) or 'film'.
            labels: output names (torchgeo >= 0.10 only).
        """
        self.location_weights = location_weights
        super().__init__(
            model=model,
            weights=weights,
            in_channels=in_channels,
            num_outputs=num_outputs,
            loss=loss,
            lr=lr,
            patience=patience,
            freeze_backbone=freeze_backbone,
            **regression_kwargs(labels),
        )

    def _num_outputs(self) -> int:
        return int(self.hparams['num_outputs'])

    def configure_models(self) -> None:
        """Build the backbone (TorchGeo's recipe), location encoder and head."""
        self._configure_fusion(super().configure_models)


class _LocationOnlySteps(_LocationMixin):
    """Steps of the location-only tasks: no image, no plots."""

    model: nn.Module
    train_metrics: Any
    val_metrics: Any
    test_metrics: Any
    criterion: nn.Module
    log: Any
    log_dict: Any
    __call__: Callable[..., Tensor]

    def forward(self, location: Tensor) -> Tensor:
        """Predict from ``(B, 2)`` lon/lat in degrees (or ``(B, D)`` embeddings).

        Args:
            location: the batch's locations.

        Returns:
            ``(B, num_outputs)``.
        """
        out: Tensor = self.model(location)
        return out

    def _build_location_only(self, num_outputs: int) -> None:
        """Set ``self.model``: the location encoder, then the MLP head."""
        hp = self.hparams
        self.model = LocationOnlyModel(
            self._location_encoder(),
            num_outputs,
            hidden=hp['head_hidden'],
            num_layers=hp['head_layers'],
            dropout=hp['head_dropout'],
            freeze_location=hp['freeze_location'],
        )

    def _prediction_target(self, y_hat: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _loss_target(self, y_hat: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return y_hat, y

    def _shared_step(self, batch: dict[str, Any], stage: str) -> Tensor:
        location = self._batch_location(batch)
        y = batch['label']
        y_hat, y = self._prediction_target(self(location.to(y.device)), y)
        metrics = getattr(self, f'{stage}_metrics')
        metrics(y_hat, y)
        if not METRICS_LOGGED_AT_EPOCH_END:
            self.log_dict(metrics, batch_size=len(y))
        loss: Tensor = self.criterion(*self._loss_target(y_hat, y))
        self.log(f'{stage}_loss', loss, batch_size=len(y))
        return loss

    def training_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        """Compute the training loss and metrics."""
        return self._shared_step(batch, 'train')

    def validation_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Compute the validation loss and metrics."""
        self._shared_step(batch, 'val')

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Compute the test loss and metrics."""
        self._shared_step(batch, 'test')


class LocationClassificationTask(_LocationOnlySteps, ClassificationTask):  # type: ignore[misc]
    """Classification of points from their location embedding alone."""

    ignore: Sequence[str] | str | None = ('weights', 'location_weights')

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
        positional_encoding: str = 'sphericalharmonics',
        location_network: str = 'siren',
        legendre_polys: int = 10,
        location_embed_dim: int = 256,
        location_capacity: int = 256,
        location_layers: int = 2,
        freeze_location: bool = True,
        head_hidden: int = 64,
        head_layers: int = 2,
        head_dropout: float = 0.0,
        labels: list[str] | None = None,
        ignore_index: int | None = None,
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
                arguments below.
            positional_encoding: positional encoding name of a built encoder.
            location_network: network name of a built encoder.
            legendre_polys: spherical-harmonic degrees L of a built encoder.
            location_embed_dim: embedding size of a built encoder.
            location_capacity: hidden width of a built encoder.
            location_layers: hidden layers of a built encoder.
            freeze_location: keep the location encoder fixed.
            head_hidden: hidden width of the MLP head (SatCLIP's example: 64).
            head_layers: hidden layers of the MLP head (0: linear probe).
            head_dropout: dropout of the MLP head.
            labels: class names (torchgeo >= 0.10 only).
            ignore_index: class ignored by loss and metrics (torchgeo >= 0.10).
        """
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
            **classification_kwargs(labels, None, ignore_index),
        )

    def configure_models(self) -> None:
        """Build the location encoder and the MLP head."""
        hp = self.hparams
        self._build_location_only(int(hp['num_classes'] or hp['num_labels'] or 1))

    def _prediction_target(self, y_hat: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return y_hat.squeeze(1) if y_hat.shape[1] == 1 else y_hat, y

    def _loss_target(self, y_hat: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return y_hat, (y.float() if self.hparams['loss'] == 'bce' else y)

    def predict_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        """Return class probabilities."""
        y_hat: Tensor = self(self._batch_location(batch))
        if self.hparams['task'] == 'multiclass':
            return y_hat.softmax(dim=1)
        return y_hat.sigmoid()


class LocationRegressionTask(_LocationOnlySteps, RegressionTask):  # type: ignore[misc]
    """Regression of point values from their location embedding alone."""

    ignore: Sequence[str] | str | None = ('weights', 'location_weights')

    def __init__(
        self,
        num_outputs: int = 1,
        loss: Literal['mse', 'mae'] = 'mse',
        lr: float = 1e-3,
        patience: int = 10,
        location_weights: WeightsEnum | str | None = None,
        positional_encoding: str = 'sphericalharmonics',
        location_network: str = 'siren',
        legendre_polys: int = 10,
        location_embed_dim: int = 256,
        location_capacity: int = 256,
        location_layers: int = 2,
        freeze_location: bool = True,
        head_hidden: int = 64,
        head_layers: int = 2,
        head_dropout: float = 0.0,
        labels: list[str] | None = None,
    ) -> None:
        """Initialise the task.

        Args:
            num_outputs: regression outputs.
            loss: 'mse' or 'mae'.
            lr: learning rate.
            patience: patience of the learning-rate scheduler.
            location_weights: location encoder checkpoint path or
                ``SatCLIPWeights`` member or name; None builds one from the
                arguments below.
            positional_encoding: positional encoding name of a built encoder.
            location_network: network name of a built encoder.
            legendre_polys: spherical-harmonic degrees L of a built encoder.
            location_embed_dim: embedding size of a built encoder.
            location_capacity: hidden width of a built encoder.
            location_layers: hidden layers of a built encoder.
            freeze_location: keep the location encoder fixed.
            head_hidden: hidden width of the MLP head (SatCLIP's example: 64).
            head_layers: hidden layers of the MLP head (0: linear probe).
            head_dropout: dropout of the MLP head.
            labels: output names (torchgeo >= 0.10 only).
        """
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

    def _prediction_target(self, y_hat: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        y = y.float()
        if y_hat.ndim != y.ndim:
            y = y.unsqueeze(dim=1)
        return y_hat, y

    def predict_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        """Return the predicted values."""
        y_hat: Tensor = self(self._batch_location(batch))
        return y_hat
