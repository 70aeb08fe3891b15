"""Location-aware TorchGeo classification and regression tasks.

TorchGeo's downstream tasks read only ``batch['image']``. The tasks here fuse
the image backbone's pooled features with a SatCLIP location embedding of the
batch's location:

* :class:`LocationAwareClassificationTask`, :class:`LocationAwareRegressionTask`:
  image backbone (any timm model, TorchGeo weights as usual) + location
  encoder, fused by concatenation (default) or FiLM, then a linear head;
  ``forward(image, location)``.
* :class:`~torchgeo_satclip.tasks.location_only.LocationClassificationTask`,
  :class:`~torchgeo_satclip.tasks.location_only.LocationRegressionTask`: no
  image at all, for datasets of points with labels: location embedding, then
  an MLP head; ``forward(location)``.

The models themselves (``nn.Module``, no Lightning) are in
:mod:`torchgeo_satclip.models.fusion`.

What a batch's location is, is declared by ``location_input``: ``'lonlat'``
(the default) reads ``(B, 2)`` longitude/latitude in degrees from ``point``
(or ``lon``/``lat``; see :func:`~torchgeo_satclip.transforms.sample_lonlat`)
and embeds it; ``'embedding'`` reads ``(B, embed_dim)`` precomputed embeddings
from ``location_embedding`` (for example added by
:class:`~torchgeo_satclip.transforms.LocationEmbedding`). A tensor of the
other kind is an error, never a guess.

The location encoder takes the arguments every task of this package takes
(:class:`~torchgeo_satclip.tasks.utils.LocationEncoderArgs`: SatCLIP's names
and the released architecture's defaults), or is loaded from
``location_weights`` (a checkpoint path or a ``SatCLIPWeights`` member or
name); it is frozen by default (``freeze_location=False`` fine-tunes it).

Each batch is checked on the CPU, before Lightning moves it to the device
(``on_before_batch_transfer``, so the checks cost no host synchronisation): a
regression target must be finite, a class an integer in ``[0, num_classes)``
(0 or 1 for 'binary' and 'multilabel'), a point finite lon/lat in degrees and
a precomputed embedding finite; the message names the value and its row.
Lightning's note that the task overrides ``on_before_batch_transfer`` while
a datamodule is passed (it then uses the task's) is silenced: that is the
design, not a mistake to warn of.

The step methods pass each batch's location to the model explicitly; they
compute TorchGeo's losses and metrics, log them as the installed TorchGeo
version does (in every step on 0.8, at epoch end on 0.10) and draw TorchGeo's
validation figures.
"""

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import kornia.augmentation as K
import matplotlib.pyplot as plt
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import Tensor, nn
from torchgeo.datamodules import BaseDataModule
from torchgeo.datasets import RGBBandsMissingError, unbind_samples
from torchvision.models._api import WeightsEnum

from .._compat import (
    METRICS_LOGGED_AT_EPOCH_END,
    ClassificationTask,
    RegressionTask,
    classification_kwargs,
    load_backbone_state_dict,
    regression_kwargs,
)
from ..geo import validate_lonlat
from ..models import (
    LocationEncoder,
    LocationFusionModel,
    LocationInput,
    check_location_embedding,
    read_checkpoint,
)
from ..transforms.location import sample_lonlat
from .utils import (
    LOCATION_DEFAULTS,
    LocationEncoderArgs,
    check_backbone_keys,
    check_frozen_shapes,
    check_point_precision,
    check_random_location,
    location_encoder_architecture,
    pooled_feature_size,
    resolve_deprecated_location_args,
)

__all__ = ['LocationAwareClassificationTask', 'LocationAwareRegressionTask']

#: Where :class:`LocationFusionModel` keeps its image backbone and its
#: location encoder in a task's state dict.
_BACKBONE_PREFIX = 'model.backbone.'
_LOCATION_PREFIX = 'model.location.encoder.'

#: Hyperparameters that are not saved: objects, and the deprecated names.
_IGNORE = (
    'weights',
    'location_weights',
    'location_embed_dim',
    'location_capacity',
    'location_layers',
)


def _position(index: tuple[int, ...]) -> str:
    """``'row 3'``, ``'row 3, column 1'``: where a value is in a batch tensor."""
    if not index:
        return ''
    if len(index) == 1:
        return f' row {index[0]}'
    if len(index) == 2:
        return f' row {index[0]}, column {index[1]}'
    return f' at {list(index)}'


class _LocationSteps:
    """Location encoder and step methods shared by the four tasks.

    Each step reads the batch's location (as ``location_input`` says) and
    passes it to the model with the image; nothing is kept between calls.
    """

    # provided by TorchGeo's tasks and Lightning
    hparams: Any
    model: nn.Module
    criterion: nn.Module
    trainer: Any
    logger: Any
    device: torch.device
    global_step: int
    log: Any
    log_dict: Any
    location_weights: WeightsEnum | str | None

    #: Classification (else regression).
    _classifies: ClassVar[bool]
    #: Whether the model takes images (the fusion tasks).
    _has_image: ClassVar[bool]

    def _location_encoder(self) -> LocationEncoder:
        """Build the location encoder, or load it from ``location_weights``.

        A loaded encoder's architecture is recorded in the hyperparameters,
        with ``location_weights_loaded=True``, so that the task's checkpoint
        rebuilds it alone: ``load_from_checkpoint`` builds the recorded
        architecture (the weights file is not read again, and may be gone)
        and the checkpoint's state dict brings the weights.

        Raises:
            ValueError: if the encoder would be random and frozen (see
                :func:`check_random_location`).
        """
        hp = self.hparams
        args = LocationEncoderArgs.from_hparams(hp)
        if self.location_weights is not None:
            encoder = args.build(self.location_weights, dtype=torch.float32)
            hp.update(location_encoder_architecture(encoder))
            hp['location_weights_loaded'] = True
            return encoder
        if not hp['location_weights_loaded']:
            check_random_location(
                freeze_location=hp['freeze_location'],
                location_input=hp['location_input'],
                allow_random_location=hp['allow_random_location'],
            )
        return args.build(None, dtype=torch.float32)

    def setup(self, stage: str) -> None:
        """Refuse a trainer precision that would round the batches' points.

        A task whose location is a precomputed embedding
        (``location_input='embedding'``) reads no points: nothing to check.
        If the trainer's datamodule has its own ``on_before_batch_transfer``
        (which Lightning then calls instead of the task's), the batches are
        checked in each step instead, on the device.

        Args:
            stage: 'fit', 'validate', 'test' or 'predict'.

        Raises:
            ValueError: under ``'16-true'`` or ``'bf16-true'`` (see
                :func:`check_point_precision`).
        """
        # Lightning notes, once per run, that it takes the hook from the task
        # when the datamodule does not override it: the checks rely on it.
        warnings.filterwarnings(
            'ignore',
            message=r'You have overridden `on_before_batch_transfer` in '
            r'`LightningModule` but have passed in a `LightningDataModule`',
        )
        trainer = getattr(self, '_trainer', None)
        if self.hparams['location_input'] != 'embedding':
            check_point_precision(trainer)
        # Lightning calls a datamodule's on_before_batch_transfer instead of
        # the task's: then each step checks its batch (on the device)
        datamodule = getattr(trainer, 'datamodule', None)
        self._check_in_step = isinstance(datamodule, LightningDataModule) and (
            is_overridden('on_before_batch_transfer', datamodule, LightningDataModule)
        )
        super().setup(stage)  # type: ignore[misc]

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Check a batch on the CPU, before Lightning moves it to the device.

        Lightning calls this hook in every loop (fit, validate, test,
        predict) on the batch as the DataLoader gives it, so the checks cost
        no host synchronisation per step (tensors already on an accelerator
        are not checked here).

        Args:
            batch: the DataLoader's batch.
            dataloader_idx: index of the current dataloader.

        Returns:
            The batch, unchanged.

        Raises:
            ValueError: if a label, a point or a precomputed embedding of the
                batch cannot be learned from (see :meth:`_check_batch_labels`);
                the message names the value and its row.
        """
        batch = super().on_before_batch_transfer(batch, dataloader_idx)  # type: ignore[misc]
        if isinstance(batch, dict):
            self._check_batch(batch, cpu_only=True)
        return batch

    def _check_batch(self, batch: dict[str, Any], *, cpu_only: bool) -> None:
        """Check a batch's location and labels (see :meth:`on_before_batch_transfer`).

        Args:
            batch: the batch.
            cpu_only: check only tensors on the CPU (no host synchronisation).
        """

        def here(tensor: Tensor) -> bool:
            return not cpu_only or tensor.device.type == 'cpu'

        self._check_location(batch, here)
        if 'label' in batch:
            label = torch.as_tensor(batch['label'])
            if here(label):
                self._check_batch_labels(label)

    def _check_location(
        self, batch: dict[str, Any], here: Callable[[Tensor], bool]
    ) -> None:
        """Refuse non-finite points or precomputed embeddings.

        Points read from GeoDataset bounds are left to the location encoder
        (reprojecting them twice would cost more than the check saves).

        Args:
            batch: the batch.
            here: whether to check a tensor (by its device).
        """
        if self.hparams['location_input'] == LocationInput.EMBEDDING:
            embedding = batch.get('location_embedding')
            if isinstance(embedding, Tensor) and here(embedding):
                check_location_embedding(
                    embedding,
                    int(self.hparams['embed_dim']),
                    name="batch 'location_embedding'",
                )
            return
        if 'point' in batch:
            key = "batch 'point'"
        elif 'lon' in batch and 'lat' in batch:
            key = "batch 'lon'/'lat'"
        else:
            return
        lonlat, _ = sample_lonlat(batch)
        if here(lonlat):
            validate_lonlat(lonlat, where=lambda row: f'{key} row {row}')

    def _check_batch_labels(self, label: Tensor) -> None:
        """Refuse labels the task cannot learn from.

        A NaN regression target makes the loss NaN and, after one optimiser
        step, every weight; a class index out of range fails deep inside the
        loss (an opaque device-side assert on a GPU) or torchmetrics.

        Args:
            label: the batch's ``label``.

        Raises:
            ValueError: if the labels are not of the predictions' shape
                (see :meth:`_check_label_shape`), a regression target is
                not finite, a multiclass label not an integer in ``[0,
                num_classes)`` (or ``ignore_index``), or a binary or
                multilabel one not 0 or 1; the message names the shape, or
                the first such value and its row.
        """
        if label.numel() == 0:
            return
        self._check_label_shape(label)
        hp = self.hparams
        if not self._classifies:
            if not label.is_floating_point():
                return
            bad = ~torch.isfinite(label)
            expected = (
                'expected finite regression targets: drop or fill the samples '
                'with missing values'
            )
        else:
            task = hp['task']
            if task == 'multiclass':
                classes = int(hp['num_classes'])
                if (
                    label.is_floating_point()
                    or label.is_complex()
                    or label.dtype == torch.bool
                ):
                    raise ValueError(
                        f"batch 'label' has dtype {label.dtype}: expected integer "
                        f'class indices in [0, {classes}) (task={task!r})'
                    )
                bad = (label < 0) | (label >= classes)
                expected = (
                    f'expected an integer class in [0, {classes}) '
                    f'(num_classes={classes}); class labels count from 0'
                )
            else:
                bad = (label != 0) & (label != 1)
                expected = f'expected 0 or 1 (task={task!r})'
            ignore = hp.get('ignore_index')
            if ignore is not None:
                bad &= label != ignore
        if not bool(bad.any()):
            return
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"batch 'label'{_position(index)} is {label[index].item()}: {expected}"
        )

    def _check_label_shape(self, label: Tensor) -> None:
        """Refuse labels of another shape than the task's predictions.

        Args:
            label: the batch's ``label``.

        Raises:
            ValueError: unless *label* is ``(batch, num_outputs)`` (or
                ``(batch,)`` for one output) for regression, ``(batch,)``
                for 'multiclass' and 'binary', ``(batch, num_labels)`` for
                'multilabel'; the message names the shape and the argument.
        """
        hp = self.hparams
        shape = tuple(label.shape)
        if not self._classifies:
            size = int(hp['num_outputs'])
            if (len(shape) == 2 and shape[1] == size) or (len(shape) == 1 == size):
                return
            expected = '(batch,) or (batch, 1)' if size == 1 else f'(batch, {size})'
            why = f'num_outputs={size} (one target per output of the task)'
        elif hp['task'] == 'multilabel':
            if hp['num_labels'] is None:
                return  # TorchGeo's metrics refuse the task
            size = int(hp['num_labels'])
            if len(shape) == 2 and shape[1] == size:
                return
            expected, why = f'(batch, {size})', f'num_labels={size} (one 0 or 1 each)'
        else:
            if len(shape) == 1:
                return
            expected, why = '(batch,)', f'task={hp["task"]!r} (one class per sample)'
        raise ValueError(
            f"batch 'label' has shape {shape}: expected {expected} for {why}"
        )

    def batch_location(self, batch: dict[str, Any]) -> Tensor:
        """The location input of a batch, as ``location_input`` declares.

        Args:
            batch: a batch with ``point`` (or ``lon``/``lat``) for
                ``location_input='lonlat'``, or ``location_embedding`` for
                ``'embedding'``.

        Returns:
            ``(B, 2)`` float64 lon/lat or ``(B, embed_dim)`` embeddings.

        Raises:
            KeyError: if the batch lacks the declared key; the message names
                the batch's keys (and the other ``location_input``, if the
                batch has its location).
        """
        if self.hparams['location_input'] == LocationInput.EMBEDDING:
            if 'location_embedding' not in batch:
                keys = ', '.join(repr(key) for key in batch)
                other = next(
                    (key for key in ('point', 'lon', 'bounds') if key in batch), None
                )
                hint = f" (for its {other!r} use location_input='lonlat')"
                raise KeyError(
                    "location_input='embedding' needs batches with a "
                    "'location_embedding' (see transforms.LocationEmbedding); "
                    f'the batch has keys {keys}{hint if other else ""}'
                )
            return torch.as_tensor(batch['location_embedding'])
        try:
            lonlat, _ = sample_lonlat(batch)
        except KeyError as error:
            if 'location_embedding' not in batch:
                raise
            raise KeyError(
                f"{error.args[0]} (for its 'location_embedding' use "
                "location_input='embedding')"
            ) from None
        return lonlat

    def _output(self, batch: dict[str, Any]) -> Tensor:
        """The model's raw output for a batch."""
        location = self.batch_location(batch)
        if self._has_image:
            image = batch['image']
            return self.model(image, location.to(image.device))  # type: ignore[no-any-return]
        # lon/lat read from GeoDataset bounds are made on the CPU
        return self.model(location.to(self.device))  # type: ignore[no-any-return]

    def _targets(
        self, y_hat: Tensor, batch: dict[str, Any]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Prediction, metric target and loss target, as TorchGeo's tasks."""
        if self._classifies:
            y = batch['label']
            y_hat = y_hat.squeeze(1)
            return y_hat, y, (y.float() if self.hparams['loss'] == 'bce' else y)
        y = batch['label'].to(torch.float)
        if y_hat.ndim != y.ndim:
            y = y.unsqueeze(dim=1)
        return y_hat, y, y

    def _step(self, batch: dict[str, Any], stage: str) -> tuple[Tensor, Tensor]:
        """Loss and metrics of a batch; returns the loss and the prediction."""
        if getattr(self, '_check_in_step', False):
            self._check_batch(batch, cpu_only=False)
        y_hat, y, y_loss = self._targets(self._output(batch), batch)
        batch_size = y_hat.shape[0]
        metrics = getattr(self, f'{stage}_metrics')
        metrics(y_hat, y)
        if not METRICS_LOGGED_AT_EPOCH_END:  # torchgeo 0.10 logs them at epoch end
            self.log_dict(metrics, batch_size=batch_size)
        loss: Tensor = self.criterion(y_hat, y_loss)
        self.log(f'{stage}_loss', loss, batch_size=batch_size)
        return loss, y_hat

    def training_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        """Compute the training loss and metrics.

        Args:
            batch: the output of your DataLoader.
            batch_idx: index of this batch.
            dataloader_idx: index of the current dataloader.

        Returns:
            The loss tensor.
        """
        loss, _ = self._step(batch, 'train')
        return loss

    def validation_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Compute the validation loss and metrics (and TorchGeo's figures).

        Args:
            batch: the output of your DataLoader.
            batch_idx: index of this batch.
            dataloader_idx: index of the current dataloader.
        """
        _, y_hat = self._step(batch, 'val')
        if self._has_image and batch_idx < 10:
            self._log_figure(batch, batch_idx, y_hat.detach())

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Compute the test loss and metrics.

        Args:
            batch: the output of your DataLoader.
            batch_idx: index of this batch.
            dataloader_idx: index of the current dataloader.
        """
        self._step(batch, 'test')

    def predict_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        """Class probabilities (classification) or values (regression).

        Args:
            batch: the output of your DataLoader.
            batch_idx: index of this batch.
            dataloader_idx: index of the current dataloader.

        Returns:
            ``(B, num_outputs)``.
        """
        y_hat = self._output(batch)
        if not self._classifies:
            return y_hat
        if self.hparams['task'] == 'multiclass':
            return y_hat.softmax(dim=1)
        return y_hat.sigmoid()

    def _log_figure(self, batch: dict[str, Any], batch_idx: int, y_hat: Tensor) -> None:
        """TorchGeo's validation figure: the datamodule's plot of a sample.

        A regression task whose datamodule's plot cannot show a float
        prediction (EuroSAT's names the class of each label) logs no figure
        and warns once; the run goes on.
        """
        experiment: Any = (
            getattr(self.logger, 'experiment', None) if self.logger else None
        )
        if not hasattr(experiment, 'add_figure'):
            return
        datamodule = getattr(self.trainer, 'datamodule', None)
        if not isinstance(datamodule, BaseDataModule):
            return
        aug = K.AugmentationSequential(
            K.Denormalize(datamodule.mean, datamodule.std),
            data_keys=None,
            keepdim=True,
        )
        batch = aug(batch)
        if not self._classifies:
            batch['prediction'] = y_hat
        elif self.hparams['task'] == 'multiclass':
            batch['prediction'] = y_hat.argmax(dim=1)
        else:
            batch['prediction'] = (y_hat.sigmoid() >= 0.5).long()
        for key in ('image', 'label', 'prediction'):
            batch[key] = batch[key].cpu()
        sample = unbind_samples(batch)[0]
        figures = set(plt.get_fignums())
        try:
            fig = datamodule.plot(sample)
        except RGBBandsMissingError:
            fig = None
        except (TypeError, ValueError, IndexError, KeyError) as error:
            if self._classifies:
                raise
            # a plot of class names (EuroSAT's) cannot show a regression
            # value: no figure, but the run goes on
            for number in set(plt.get_fignums()) - figures:
                plt.close(number)
            if not getattr(self, '_figure_warned', False):
                self._figure_warned = True
                warnings.warn(
                    f'{type(datamodule).__name__}.plot cannot show a regression '
                    f'sample ({type(error).__name__}: {error}): no validation '
                    'figures are logged; it expects a class label (a plot that '
                    "shows float 'label' and 'prediction' values is needed)",
                    UserWarning,
                    stacklevel=2,
                )
            return
        if fig:
            experiment.add_figure(
                f'image/{batch_idx}', fig, global_step=self.global_step
            )
            plt.close(fig)


class _FusionTask(_LocationSteps):
    """Image backbone (TorchGeo's recipe) + location encoder + head."""

    _has_image = True
    weights: WeightsEnum | bool | str | None

    def forward(self, image: Tensor, location: Tensor) -> Tensor:
        """Predict from images and their locations.

        Args:
            image: ``(B, C, H, W)`` images.
            location: ``(B, 2)`` lon/lat in degrees, or ``(B, embed_dim)``
                embeddings, as ``location_input`` says.

        Returns:
            ``(B, num_outputs)``.

        Raises:
            ValueError: if *location* is not of the declared kind.
        """
        out: Tensor = self.model(image, location.to(image.device))
        return out

    def _num_outputs(self) -> int:
        raise NotImplementedError

    def _fused_backbone_state(self) -> dict[str, Tensor] | None:
        """The image backbone of a location-aware checkpoint given as ``weights``.

        TorchGeo reads a checkpoint path as ``weights`` by taking its
        ``model.*`` entries as the timm model; a location-aware task keeps
        its backbone under ``model.backbone.*`` (beside
        ``model.location.encoder.*`` and the head), which TorchGeo cannot
        read.

        Returns:
            The backbone's state dict, if ``weights`` is the path of such a
            checkpoint; else None (TorchGeo loads ``weights`` itself).
        """
        weights = self.weights
        if not isinstance(weights, str | os.PathLike) or not os.path.isfile(weights):
            return None
        state = read_checkpoint(weights).get('state_dict')
        if not isinstance(state, dict) or not any(
            key.startswith(_LOCATION_PREFIX) for key in state
        ):
            return None
        n = len(_BACKBONE_PREFIX)
        return {k[n:]: v for k, v in state.items() if k.startswith(_BACKBONE_PREFIX)}

    def _configure_backbone(self, configure: Any) -> None:
        """Run TorchGeo's ``configure_models``, loading a fused checkpoint.

        Args:
            configure: TorchGeo's ``configure_models`` (bound).
        """
        backbone_state = self._fused_backbone_state()
        if backbone_state is None:
            configure()
            return
        weights, self.weights = self.weights, None  # TorchGeo: random weights
        try:
            configure()
        finally:
            self.weights = weights
        # TorchGeo's loader loads with strict=False: refuse what it would leave
        # random. The classifier (the last child) is not in a fused checkpoint:
        # the fused model has none (reset_classifier(0)).
        classifier = list(self.model.named_children())[-1][0]
        check_backbone_keys(
            self.model, backbone_state, str(weights), skip=f'{classifier}.'
        )
        if self.hparams.get('freeze_backbone', False):
            check_frozen_shapes(self.model, backbone_state, weights)
        load_backbone_state_dict(self.model, backbone_state)

    def _configure_fusion(self) -> None:
        """Wrap TorchGeo's timm model (already in ``self.model``) with the rest."""
        backbone: Any = self.model
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
            location_input=self.hparams['location_input'],
        )


class LocationAwareClassificationTask(_FusionTask, ClassificationTask):  # type: ignore[misc]
    """Image classification with a SatCLIP location embedding fused in."""

    ignore: Sequence[str] | str | None = _IGNORE
    _classifies = True

    def __init__(
        self,
        model: str = 'resnet50',
        weights: WeightsEnum | bool | str | None = None,
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
        fusion: Literal['concat', 'film'] = 'concat',
        labels: list[str] | None = None,
        pos_weight: Tensor | None = None,
        ignore_index: int | None = None,
        location_embed_dim: int | None = None,
        location_capacity: int | None = None,
        location_layers: int | None = None,
    ) -> None:
        """Initialise the task.

        Args:
            model: timm model name of the image backbone.
            weights: image backbone weights, as in TorchGeo's classification
                task (enum, enum name, True for ImageNet, or a checkpoint path,
                a location-aware task's included).
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
            fusion: 'concat' (default) or 'film'.
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
        """Build the backbone (TorchGeo's recipe), location encoder and head.

        ``weights`` may also be the checkpoint of a location-aware task: its
        image backbone is loaded.
        """
        self._configure_backbone(super().configure_models)
        self._configure_fusion()


class LocationAwareRegressionTask(_FusionTask, RegressionTask):  # type: ignore[misc]
    """Image regression with a SatCLIP location embedding fused in."""

    ignore: Sequence[str] | str | None = _IGNORE
    _classifies = False

    def __init__(
        self,
        model: str = 'resnet50',
        weights: WeightsEnum | bool | str | None = None,
        in_channels: int = 3,
        num_outputs: int = 1,
        loss: Literal['mse', 'mae'] = 'mse',
        lr: float = 1e-3,
        patience: int = 10,
        freeze_backbone: bool = False,
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
        fusion: Literal['concat', 'film'] = 'concat',
        labels: list[str] | None = None,
        location_embed_dim: int | None = None,
        location_capacity: int | None = None,
        location_layers: int | None = None,
    ) -> None:
        """Initialise the task.

        Args:
            model: timm model name of the image backbone.
            weights: image backbone weights, as in TorchGeo's regression task
                (a location-aware task's checkpoint path included).
            in_channels: image channels.
            num_outputs: regression outputs.
            loss: 'mse' or 'mae'.
            lr: learning rate.
            patience: patience of the learning-rate scheduler.
            freeze_backbone: train only the head (and fusion layers).
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
            fusion: 'concat' (default) or 'film'.
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
        """Build the backbone (TorchGeo's recipe), location encoder and head.

        ``weights`` may also be the checkpoint of a location-aware task: its
        image backbone is loaded.
        """
        self._configure_backbone(super().configure_models)
        self._configure_fusion()
