"""SatCLIP contrastive pretraining as a TorchGeo task.

:class:`SatCLIPTask` trains an image encoder (any timm model, TorchGeo
weights) and a SatCLIP location encoder so that an image and the place it was
taken embed close together (Klemmer et al., AAAI 2025)::

    image -> timm backbone (pooled features) -> linear projection ─┐
    (lon, lat) -> location encoder (positional encoding + network) ┴-> CLIP loss

Run it with ``torchgeo fit --config configs/satclip_resnet18_l10.yaml``. The
checkpoint keys are ``model.*`` (the timm backbone, as TorchGeo's own tasks,
so ``extract_backbone`` and ``weights=<ckpt>`` of TorchGeo's tasks read it),
``projection.*``, ``location_encoder.nnet.*`` and ``logit_scale``;
:func:`~torchgeo_satclip.models.load_location_encoder` loads the location
encoder of a ``.ckpt`` directly, and :func:`export_official_checkpoint` writes
the layout of the released SatCLIP checkpoints.

Batches are dicts with ``point`` ((B, 2) lon/lat in degrees) and either
``image`` (B, C, H, W) or ``features`` ((B, F) pooled backbone features, from
:class:`~torchgeo_satclip.datamodules.CachedFeatureDataModule`): with a frozen
backbone the two give the same loss, and features skip the backbone entirely.

Options add Geography-Aware Self-Supervised Learning (GASSL, Ayush et al.,
ICCV 2021): MoCo-v2 (``moco_loss_weight`` > 0; a momentum encoder, a queue of
negative keys and an MLP head) on two views per sample, ``image`` of shape
(B, 2, C, H, W): two augmentations of one image (the datamodule's
``views=2``) or two dates of one place (the dataset's ``dates='pair'``,
GASSL's temporal positives), and the geo-classification pretext
(``geo_classes``). ``clip_loss_weight: 0`` turns CLIP off (GASSL alone);
with both on, the task is a SatCLIP + GASSL hybrid::

    view 0 -> backbone -> features ─┬-> projection -> CLIP loss (with the location)
                                    ├-> MLP head -> query ─┐
                                    └-> geo head (CLIP off; on: the projection)
    view 1 -> momentum backbone -> momentum head -> key ┴-> InfoNCE vs queue

MoCo's parts are saved as ``moco_head.*`` (the query head) and ``moco.*``
(the momentum backbone and head, ``moco.queue`` and ``moco.queue_ptr``), so
``model.*`` stays the query backbone alone and resuming continues the queue.
"""

import math
import numbers
import os
import re
import warnings
from collections.abc import Mapping, Sequence, Sized
from pathlib import Path
from typing import Any, Literal, cast

import lightning.pytorch.utilities.types
import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import SGD, AdamW, Optimizer
from torch.optim.lr_scheduler import LambdaLR
from torchvision.models._api import WeightsEnum

from .._checks import check_flag, check_int, check_real
from .._compat import BaseTask, load_backbone_state_dict
from ..datamodules.cached import CachedFeatureDataModule
from ..geo import validate_lonlat
from ..models import (
    OFFICIAL_VISION_LAYERS,
    CheckpointError,
    LocationEncoder,
    load_location_encoder,
    read_checkpoint,
    save_official_checkpoint,
)
from ._clip import (
    MAX_KMEANS_SEED,
    clip_loss,
    count_distinct_points,
    float32_math,
    gather_with_grad,
    nearest_centroid,
    retrieval_metrics,
    spherical_kmeans,
)
from ._moco import (
    MomentumEncoder,
    _world,
    gather_no_grad,
    in_parts,
    mlp_head,
    moco_loss,
)
from .utils import (
    LOCATION_DEFAULTS,
    LocationEncoderArgs,
    check_backbone_keys,
    check_frozen_shapes,
    check_point_precision,
    location_encoder_architecture,
    pooled_feature_size,
)

__all__ = ['SatCLIPTask', 'export_official_checkpoint']

_DTYPES = {'float32': torch.float32, 'float64': torch.float64}

#: Smallest batch with a contrastive signal (one positive, one negative).
_MIN_CONTRASTIVE_BATCH = 2

#: Smallest temperature of the contrastive losses: their float32 logits reach
#: 1 / temperature and each cross-entropy twice that, and the two of CLIP are
#: summed, so 1 / temperature must stay under an eighth of float32's largest
#: number (about 2.35e-38; below it the loss is inf or NaN).
_SMALLEST_TEMPERATURE = 8 / torch.finfo(torch.float32).max


def _check_temperature(name: str, value: Any) -> None:
    """Refuse a temperature that is not a finite number at least ``_SMALLEST_TEMPERATURE``.

    Raises:
        ValueError: naming the argument, the value and the limit.
    """
    if _check_real(name, value, positive=True) < _SMALLEST_TEMPERATURE:
        raise ValueError(
            f'{name} must be at least {_SMALLEST_TEMPERATURE:.3g} (below it the '
            'float32 logits or loss overflow to inf and training runs on a NaN '
            f'loss), not {value}'
        )


def _backbone_state_dict(weights: WeightsEnum | str) -> dict[str, Tensor]:
    """State dict of an image backbone from an enum, a name or a checkpoint file.

    A file may be a TorchGeo task checkpoint (``model.*`` keys, or
    ``model.backbone.model.*``), a SatCLIP checkpoint (``model.visual.*``,
    official or exported), a SatCLIPTask checkpoint (``model.*``), or a plain
    state dict; it is read with ``weights_only=True`` (by
    :func:`~torchgeo_satclip.models.read_checkpoint`, which names a file that
    is none).

    Raises:
        CheckpointError: naming the file, if it is not a readable checkpoint.
        ValueError: if *weights* is neither an existing file nor the name of
            TorchGeo weights.
    """
    if isinstance(weights, WeightsEnum):
        return cast(dict[str, Tensor], weights.get_state_dict(progress=True))
    if os.path.exists(weights):
        loaded = read_checkpoint(weights)
        state = loaded.get('state_dict', loaded)
        for prefix in ('model.visual.', 'model.backbone.model.', 'model.'):
            found = {
                key[len(prefix) :]: value
                for key, value in state.items()
                if key.startswith(prefix)
            }
            if found:
                return found
        return dict(state)
    from torchgeo.models import get_weight

    try:
        enum = get_weight(str(weights))
    except ValueError:
        raise ValueError(
            f'weights {str(weights)!r} is neither an existing checkpoint file nor '
            'the name of TorchGeo weights (such as '
            "'ResNet18_Weights.SENTINEL2_ALL_MOCO'); pass null for random weights"
        ) from None
    return cast(dict[str, Tensor], enum.get_state_dict(progress=True))


class SatCLIPTask(BaseTask):  # type: ignore[misc]
    """SatCLIP: contrastive pretraining of a location encoder on satellite images.

    Faithful to the original recipe by default (symmetric CLIP loss with a
    learnable logit scale initialised to ln(1/0.07) and never clamped, AdamW
    with weight decay on matrices only, no scheduler), with options the
    original lacks: negatives gathered from every device, warmup and cosine
    decay, a clamp of the logit scale, and Geography-Aware SSL (Ayush et al.,
    ICCV 2021): its geo-classification pretext task, and MoCo-v2 with
    temporal positives (``moco_*`` arguments), alone (``clip_loss_weight:
    0``) or combined with CLIP.

    A frozen backbone is kept in eval mode (batch-norm running statistics, no
    dropout), which is what makes cached features exact; the original freezes
    the weights but leaves the module in training mode.

    If you use this task, please cite https://doi.org/10.1609/aaai.v39i4.32457.
    """

    ignore: Sequence[str] | str | None = ('weights', 'location_weights')
    monitor = 'val_loss'

    #: Unit-vector centroids of the geo-classification pseudo-classes.
    geo_centroids: Tensor
    #: CLIP's image projection (only with ``clip_loss_weight`` > 0).
    projection: nn.Linear
    #: CLIP's location encoder (only with ``clip_loss_weight`` > 0).
    location_encoder: LocationEncoder
    #: CLIP's learnable log inverse temperature (only with ``clip_loss_weight`` > 0).
    logit_scale: nn.Parameter
    #: MoCo's MLP head of the queries (only with ``moco_loss_weight`` > 0).
    moco_head: nn.Module
    #: MoCo's momentum encoder and queue (only with ``moco_loss_weight`` > 0).
    moco: MomentumEncoder
    #: The optimiser step of MoCo's last momentum update (None: none yet).
    _moco_updated_at_step: int | None = None
    #: Whether a skipped training batch of one has been warned of.
    _warned_small_batch = False

    def __init__(
        self,
        model: str = 'resnet18',
        weights: WeightsEnum | bool | str | None = None,
        in_channels: int = 13,
        freeze_backbone: bool = False,
        embed_dim: int = LOCATION_DEFAULTS.embed_dim,
        location_weights: WeightsEnum | str | None = None,
        positional_encoding: str = LOCATION_DEFAULTS.positional_encoding,
        location_network: str = LOCATION_DEFAULTS.location_network,
        legendre_polys: int = LOCATION_DEFAULTS.legendre_polys,
        capacity: int = LOCATION_DEFAULTS.capacity,
        num_hidden_layers: int = LOCATION_DEFAULTS.num_hidden_layers,
        location_dropout: float = LOCATION_DEFAULTS.location_dropout,
        positional_encoding_kwargs: dict[str, Any] | None = None,
        location_dtype: Literal['float32', 'float64'] = 'float64',
        validate_locations: bool = True,
        lr: float = 1e-4,
        weight_decay: float = 0.01,
        scheduler: Literal['none', 'cosine'] = 'none',
        warmup_steps: int = 0,
        min_lr: float = 0.0,
        temperature: float = 0.07,
        logit_scale_max: float | None = None,
        gather_distributed: bool = False,
        geo_classes: int = 0,
        geo_loss_weight: float = 0.0,
        geo_kmeans_seed: int = 0,
        image_resolution: int = 224,
        channels_last: bool = False,
        compile_image_encoder: bool = False,
        clip_loss_weight: float = 1.0,
        moco_loss_weight: float = 0.0,
        moco_dim: int = 128,
        moco_hidden_dim: int | None = None,
        moco_queue_size: int = 65536,
        moco_momentum: float = 0.999,
        moco_temperature: float = 0.2,
        moco_positives: Literal['augmentation', 'temporal'] = 'augmentation',
        moco_symmetric: bool = False,
        moco_shuffle_bn: bool = True,
        optimizer: Literal['adamw', 'sgd'] = 'adamw',
        momentum: float = 0.9,
        moco_bn_splits: int = 1,
    ) -> None:
        """Initialize a new SatCLIPTask instance.

        Args:
            model: timm name of the image backbone (``resnet18``, ``resnet50``,
                ``vit_small_patch16_224`` in the released recipes).
            weights: backbone weights: a TorchGeo ``WeightsEnum`` member (for
                example ``ResNet18_Weights.SENTINEL2_ALL_MOCO``), its name, a
                checkpoint path (TorchGeo task, SatCLIP or SatCLIPTask
                checkpoint, or a state dict), True for timm's ImageNet weights
                (``pretrained=True``, as TorchGeo's tasks; timm adapts the
                first layer to *in_channels*), or None (or False) for random
                weights.
            in_channels: image channels (13: SSL4EO-S12 layout).
            freeze_backbone: train only the projection (the released recipe);
                the backbone is then kept in eval mode. With no *weights* it
                stays random: a warning says so.
            embed_dim: size of both embeddings (the location encoder's
                ``embed_dim``).
            location_weights: initialise the location encoder from anything
                :func:`~torchgeo_satclip.models.load_location_encoder` accepts
                (path, ``SatCLIPWeights`` member or name); its architecture then
                overrides the arguments below.
            positional_encoding: positional encoding name
                (``'sphericalharmonics'``, ``'rff'``, ``'spherec'``, ...).
            location_network: network name (``'siren'``, ``'fcnet'``,
                ``'mlp'``, ``'linear'``).
            legendre_polys: spherical-harmonic degrees L (10 or 40 released).
            capacity: hidden width of the location network.
            num_hidden_layers: hidden layers of the location network.
            location_dropout: dropout of the location network in training.
            positional_encoding_kwargs: further arguments of the positional
                encoding (e.g. ``sigmas``/``encoded_size``/``seed`` for
                ``'rff'``, ``frequency_num``/``min_radius``/``max_radius``).
            location_dtype: parameter dtype of the location encoder (float64
                as the original; float32 is much faster on GPUs).
            validate_locations: check the (lon, lat) of every batch (one host
                synchronisation per step).
            lr: learning rate of the optimiser, finite and above 0.
            weight_decay: weight decay; AdamW: of matrices (0 for biases,
                other 1-D parameters and the logit scale); SGD: of every
                parameter but the logit scale.
            scheduler: ``'none'`` (the original) or ``'cosine'`` decay to
                *min_lr* over the run, per optimiser step (the run needs a
                known length: ``max_steps``, or ``max_epochs`` with a sized
                training loader).
            warmup_steps: linear warmup optimiser steps (with either scheduler),
                an integer >= 0.
            min_lr: final learning rate of the cosine schedule, in [0, lr].
            temperature: initial temperature, finite and at least about
                2.35e-38 (the float32 logits overflow below it);
                ``logit_scale = ln(1 / temperature)``.
            logit_scale_max: clamp ``exp(logit_scale)`` at this value, finite
                and above 0 (CLIP uses 100): the parameter is held there after
                every training batch and keeps its gradient at the limit, as
                CLIP's; None never clamps (the original).
            gather_distributed: all-gather embeddings across devices so that
                negatives come from the global batch (the original uses only
                the local micro-batch). Every device's batch must be of one
                size at each step (Lightning's ``DistributedSampler`` gives
                that; a sampler of your own must too): it is not checked. So
                must MoCo's under DDP, whose keys are always gathered.
            geo_classes: K of the geo-classification pretext task: k-means of
                the training locations into K pseudo-classes predicted from the
                image embedding (the projection) with CLIP on, from the
                backbone's pooled features with CLIP off (GASSL's code reads
                the MoCo head's output instead; see docs/gassl.md) (0: off).
                The locations come from the datamodule's ``train_points()``
                (S2100KDataModule and CachedFeatureDataModule have it), or
                from :meth:`fit_geo_centroids` when fitting without a
                datamodule.
            geo_loss_weight: weight lambda of the geo-classification loss.
            geo_kmeans_seed: seed of the k-means, an integer from 0 to
                ``2**64 - 1`` (a 64-bit ``torch.Generator`` seed).
            image_resolution: input size recorded by
                :func:`export_official_checkpoint` (224 in the released models).
            channels_last: keep the image backbone and its input in the
                channels-last memory format (faster convolutions on GPUs with
                tensor cores, in particular under ``bf16-mixed``).
            compile_image_encoder: compile the image backbone with
                :func:`torch.compile` (in place, so checkpoints keep their
                keys); the first steps are slower while it compiles.
            clip_loss_weight: weight of the image-location CLIP loss; 0 turns
                CLIP off: no projection, location encoder or logit scale is
                built (the location-encoder arguments are then ignored), so
                DDP meets no unused parameter.
            moco_loss_weight: weight of the MoCo-v2 loss; > 0 turns MoCo on.
                Batches then carry two views, ``image`` of shape
                ``(B, 2, C, H, W)``: the query is view 0 through the backbone
                and an MLP head, the key view 1 through their momentum copies.
            moco_dim: width of MoCo's keys and queries (128 in MoCo-v2 and
                GASSL).
            moco_hidden_dim: hidden width of MoCo's MLP head; None: the
                backbone's feature width (MoCo-v2).
            moco_queue_size: number of negative keys in the queue (65536).
            moco_momentum: momentum m of the key encoder (0.999).
            moco_temperature: InfoNCE temperature (0.2 in MoCo-v2; GASSL's
                configs use 0.02).
            moco_positives: what the second view is: ``'augmentation'`` (the
                same image augmented twice, MoCo-v2; the datamodule's
                ``views=2``) or ``'temporal'`` (another date of the same place,
                GASSL's temporal positives; the dataset's ``dates='pair'``,
                whose batches carry ``date`` of shape (B, 2)). A batch that
                contradicts the choice is refused.
            moco_symmetric: also use view 1 as query against view 0's key and
                average the two losses (both keys are enqueued).
            moco_shuffle_bn: MoCo's shuffled batch norm: the key encoder sees
                the global batch shuffled across processes under DDP. On one
                process, see *moco_bn_splits*; with 1 there it is a no-op (the
                batch-norm statistics of a key batch are then those of its own
                queries' images).
            optimizer: ``'adamw'`` (SatCLIP) or ``'sgd'`` with *momentum*
                (MoCo-v2 and GASSL: lr 0.03, weight decay 1e-4 on every
                parameter).
            momentum: momentum of SGD.
            moco_bn_splits: on one process with *moco_shuffle_bn*, emulate
                shuffled batch norm over this many devices, as MoCo's one-GPU
                demo does with 8: in training, the backbone encodes the query
                images in this many consecutive parts and the key encoder the
                shuffled key images in as many parts, each part with its own
                batch-norm statistics, and the keys are unshuffled. 1: off.
                Ignored under DDP (the shuffle is across processes there).
                Batch-norm running statistics are then updated once per part
                (k times a step).

        Raises:
            ValueError: on an invalid argument.
        """
        if location_dtype not in _DTYPES:
            raise ValueError(
                f'location_dtype must be float32 or float64, not {location_dtype!r}'
            )
        # Through the Python API nothing else checks these: a string flag
        # ('no') would count as True, and a width of 0 fail deep in torch.
        for name, flag in (
            ('freeze_backbone', freeze_backbone),
            ('validate_locations', validate_locations),
            ('gather_distributed', gather_distributed),
            ('channels_last', channels_last),
            ('compile_image_encoder', compile_image_encoder),
            ('moco_symmetric', moco_symmetric),
            ('moco_shuffle_bn', moco_shuffle_bn),
        ):
            check_flag(name, flag)
        check_int('in_channels', in_channels, minimum=1)
        check_int('embed_dim', embed_dim, minimum=1)
        check_int('image_resolution', image_resolution, minimum=1)
        check_int('geo_classes', geo_classes, minimum=0)
        check_int(
            'geo_kmeans_seed', geo_kmeans_seed, minimum=0, maximum=MAX_KMEANS_SEED
        )
        check_real('location_dropout', location_dropout, minimum=0.0, below=1.0)
        _check_temperature('temperature', temperature)
        _check_optimiser_arguments(
            lr=lr,
            weight_decay=weight_decay,
            scheduler=scheduler,
            warmup_steps=warmup_steps,
            min_lr=min_lr,
        )
        if logit_scale_max is not None:
            _check_real('logit_scale_max', logit_scale_max, positive=True)
        _check_moco_arguments(
            clip_loss_weight=clip_loss_weight,
            moco_loss_weight=moco_loss_weight,
            geo_loss_weight=geo_loss_weight,
            moco_dim=moco_dim,
            moco_hidden_dim=moco_hidden_dim,
            moco_queue_size=moco_queue_size,
            moco_momentum=moco_momentum,
            moco_temperature=moco_temperature,
            moco_positives=moco_positives,
            moco_bn_splits=moco_bn_splits,
            freeze_backbone=freeze_backbone,
            optimizer=optimizer,
            momentum=momentum,
        )
        if geo_loss_weight > 0 and geo_classes < 1:
            raise ValueError('geo_loss_weight > 0 needs geo_classes >= 1')
        if weights is not None and not isinstance(
            weights, bool | str | os.PathLike | WeightsEnum
        ):
            raise ValueError(
                'weights must be a WeightsEnum member, its name, a checkpoint '
                f'path, True (ImageNet) or None, not {weights!r} '
                f'({type(weights).__name__})'
            )
        self.weights = weights
        self.location_weights = location_weights
        super().__init__()

    # ------------------------------------------------------------------ models
    def configure_models(self) -> None:
        """Build the backbone, and what the enabled losses need.

        CLIP: the projection, location encoder and logit scale. MoCo: the MLP
        head (``moco_head.*``) and the momentum encoder with its queue
        (``moco.*``; ``model.*`` stays the query backbone alone). Geo: the
        head on the projection (CLIP on) or on the backbone's pooled features
        (CLIP off).
        """
        hp = self.hparams
        self.model: nn.Module = timm.create_model(
            hp['model'],
            in_chans=hp['in_channels'],
            num_classes=0,
            pretrained=self.weights is True,
        )
        if self.weights is not None and not isinstance(self.weights, bool):
            state_dict = _backbone_state_dict(self.weights)
            if not isinstance(self.weights, WeightsEnum) and os.path.exists(
                self.weights
            ):
                check_backbone_keys(self.model, state_dict, self.weights)
            if hp['freeze_backbone']:
                check_frozen_shapes(self.model, state_dict, self.weights)
            load_backbone_state_dict(self.model, state_dict)
        num_features = pooled_feature_size(self.model)
        if hp['freeze_backbone']:
            if self.weights is None or self.weights is False:
                warnings.warn(
                    'freeze_backbone is True with weights None: the image backbone '
                    'is random and stays so for the whole run (only the projection '
                    'trains); give weights (for example '
                    'ResNet18_Weights.SENTINEL2_ALL_MOCO) or set freeze_backbone: '
                    'false',
                    UserWarning,
                    stacklevel=2,
                )
            self.model.requires_grad_(False)
            self.model.eval()
        if hp.get('channels_last', False):
            self.model.to(memory_format=torch.channels_last)

        if self.clip_enabled:
            self.projection = nn.Linear(num_features, hp['embed_dim'])
            self.location_encoder = self._build_location_encoder()
            self.location_encoder.validate = hp['validate_locations']
            self.logit_scale = nn.Parameter(
                torch.tensor(math.log(1 / hp['temperature']))
            )

        if self.moco_enabled:
            dim = int(hp['moco_dim'])
            hidden = hp.get('moco_hidden_dim') or num_features
            self.moco_head = mlp_head(num_features, int(hidden), dim)
            # Copied before compiling: the key encoder runs uncompiled.
            self.moco = MomentumEncoder(
                self.model, self.moco_head, int(hp['moco_queue_size']), dim
            )
            # Every process enqueues the same gathered keys, so the queue is
            # equal everywhere without DDP broadcasting it (32 MB at the
            # paper's size) from rank 0 before every step.
            self._ddp_params_and_buffers_to_ignore = ['moco.queue', 'moco.queue_ptr']

        if hp.get('compile_image_encoder', False):
            self.model.compile()

        self.geo_head: nn.Linear | None = None
        if hp['geo_classes'] > 0:
            geo_input = hp['embed_dim'] if self.clip_enabled else num_features
            self.geo_head = nn.Linear(geo_input, hp['geo_classes'])
            self.register_buffer(
                'geo_centroids', torch.zeros(hp['geo_classes'], 3, dtype=torch.float64)
            )

    @property
    def clip_enabled(self) -> bool:
        """Whether the image-location CLIP loss is on (``clip_loss_weight`` > 0)."""
        return float(self.hparams.get('clip_loss_weight', 1.0)) > 0

    @property
    def moco_enabled(self) -> bool:
        """Whether the MoCo-v2 loss is on (``moco_loss_weight`` > 0)."""
        return float(self.hparams.get('moco_loss_weight', 0.0)) > 0

    def _require_clip(self, what: str) -> None:
        if not self.clip_enabled:
            raise ValueError(
                f'{what} needs the CLIP part, which is off (clip_loss_weight: 0): '
                'this task has no projection, location encoder or logit scale'
            )

    def _build_location_encoder(self) -> LocationEncoder:
        hp = self.hparams
        args = LocationEncoderArgs.from_hparams(hp)
        encoder = args.build(self.location_weights, dtype=_DTYPES[hp['location_dtype']])
        if encoder.embed_dim != hp['embed_dim']:
            raise ValueError(
                f'the location encoder embeds to {encoder.embed_dim} '
                f'dimensions but embed_dim is {hp["embed_dim"]}'
            )
        if self.location_weights is not None:
            # Record the loaded architecture, so that the checkpoint rebuilds it.
            hp.update(location_encoder_architecture(encoder))
        return encoder

    def train(self, mode: bool = True) -> 'SatCLIPTask':
        """Set training mode, keeping a frozen backbone in eval mode.

        Args:
            mode: training (True) or evaluation (False) mode.

        Returns:
            self.
        """
        super().train(mode)
        if self.hparams['freeze_backbone']:
            self.model.eval()
        return self

    # ----------------------------------------------------------------- forward
    def image_features(self, image: Tensor) -> Tensor:
        """Pooled backbone features (no gradient through a frozen backbone).

        Args:
            image: ``(B, C, H, W)`` images.

        Returns:
            ``(B, num_features)`` features.
        """
        image = self._channels_last(image)
        if self.hparams['freeze_backbone']:
            with torch.no_grad():
                return cast(Tensor, self.model(image))
        return cast(Tensor, self.model(image))

    def feature_extractor(self) -> nn.Module:
        """The frozen backbone, for :class:`~torchgeo_satclip.datamodules.CachedFeatureDataModule`.

        Its pooled features of preprocessed images are what the task projects;
        :meth:`setup` hands it to a cached-feature datamodule that has no
        extractor yet.

        Returns:
            The timm backbone (``self.model``).

        Raises:
            ValueError: if the backbone is not frozen (its features would go
                stale while it trains).
        """
        if not self.hparams['freeze_backbone']:
            raise ValueError(
                'cached features need a frozen backbone: set freeze_backbone: true'
            )
        return self.model

    def encode_image(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Image embeddings of a batch (from ``features`` if present, else ``image``).

        Of a two-view batch (``image`` of shape ``(B, 2, C, H, W)``), view 0.

        Args:
            batch: a batch with ``image`` or cached ``features``.

        Returns:
            ``(B, embed_dim)`` embeddings, not normalised.

        Raises:
            KeyError: if the batch has neither key.
            ValueError: if CLIP is off (no projection).
        """
        self._require_clip('encode_image')
        if 'features' in batch:
            features = batch['features'].to(self.projection.weight.dtype)
        elif 'image' in batch:
            features = self.image_features(_first_view(batch['image']))
        else:
            raise KeyError("a SatCLIP batch needs 'image' or 'features'")
        return cast(Tensor, self.projection(features))

    def encode_location(self, lonlat: Tensor) -> Tensor:
        """Location embeddings in float32.

        The location encoder runs in its own dtype (``location_dtype``) even
        under mixed precision: autocast is off inside it, so ``bf16-mixed``
        speeds up the image side without rounding the spherical harmonics.

        Args:
            lonlat: ``(B, 2)`` (longitude, latitude) in degrees.

        Returns:
            ``(B, embed_dim)`` embeddings, not normalised.
        """
        self._require_clip('encode_location')
        with torch.autocast(lonlat.device.type, enabled=False):
            return cast(Tensor, self.location_encoder(lonlat)).float()

    def forward(self, image: Tensor, lonlat: Tensor) -> tuple[Tensor, Tensor]:
        """Embed images and locations.

        Args:
            image: ``(B, C, H, W)`` images.
            lonlat: ``(B, 2)`` (longitude, latitude) in degrees.

        Returns:
            Image and location embeddings, ``(B, embed_dim)`` each.
        """
        return self.encode_image({'image': image}), self.encode_location(lonlat)

    def current_logit_scale(self) -> Tensor:
        """The logit scale (log inverse temperature), clamped if configured.

        With ``logit_scale_max``, the value is clamped at its log but the
        gradient passes as if it were not (``torch.clamp``'s is 0 at and
        above the limit, so the temperature would stop learning for good
        once it got there); the parameter itself is held at the limit after
        every training batch (:meth:`on_train_batch_end`), as CLIP clamps
        its parameter after each step.

        Returns:
            A scalar tensor.
        """
        self._require_clip('the logit scale')
        maximum = self.hparams['logit_scale_max']
        if maximum is None:
            return self.logit_scale
        scale = self.logit_scale
        return scale.detach().clamp(max=math.log(maximum)) + (scale - scale.detach())

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Hold the logit scale at ``logit_scale_max`` after the optimiser step.

        Args:
            outputs: the training step's output.
            batch: the batch.
            batch_idx: its index.
        """
        maximum = self.hparams['logit_scale_max']
        if self.clip_enabled and maximum is not None:
            with torch.no_grad():
                self.logit_scale.clamp_(max=math.log(maximum))

    # ------------------------------------------------------------------ losses
    def compute_loss(
        self, batch: Mapping[str, Tensor], gather: bool = False, enqueue: bool = False
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss and metrics of a batch.

        ``clip_loss_weight * CLIP + moco_loss_weight * MoCo + geo_loss_weight *
        geo`` over the enabled parts. The backbone runs once on the query view
        (view 0 of a two-view batch; in *moco_bn_splits* parts when they
        apply): CLIP projects its features, MoCo's head maps them to queries,
        and the geo head reads the projection (CLIP on) or the features
        themselves (CLIP off).

        Args:
            batch: ``point`` and ``image`` (``(B, 2, C, H, W)`` with MoCo) or
                ``features``.
            gather: take CLIP's negatives from every process.
            enqueue: push this step's keys (of the global batch) into MoCo's
                queue (training); the momentum update happens first, as in
                MoCo.

        Returns:
            The total loss and a dict of detached metrics (``clip_loss``,
            retrieval accuracies and ``median_km`` with CLIP, ``moco_loss``
            and ``moco_acc`` with MoCo, ``geo_loss`` with the geo pretext).
        """
        lonlat = batch['point']
        if self.moco_enabled:
            self._check_views(batch)
        if 'features' in batch:
            # cached features may be float16: in the dtype of the head that
            # reads them (the projection, or the geo head with CLIP off)
            features = batch['features']
            head = self.projection if self.clip_enabled else self.geo_head
            if head is not None:
                features = features.to(head.weight.dtype)
        elif 'image' in batch:
            features = in_parts(
                self.image_features,
                _first_view(batch['image']),
                self._bn_splits(enqueue),
            )
        else:
            raise KeyError("a SatCLIP batch needs 'image' or 'features'")
        hp = self.hparams
        metrics: dict[str, Tensor] = {}
        loss = features.new_zeros((), dtype=torch.float32)
        geo_input = features
        if self.clip_enabled:
            image_embedding = cast(Tensor, self.projection(features))
            geo_input = image_embedding
            output = clip_loss(
                image_embedding,
                self.encode_location(lonlat),
                self.current_logit_scale(),
                gather=gather,
            )
            all_lonlat = lonlat
            if output.logits_image.shape[1] != lonlat.shape[0]:  # gathered
                all_lonlat, _ = gather_with_grad(lonlat.detach())
            metrics.update(retrieval_metrics(output, lonlat.detach(), all_lonlat))
            metrics['clip_loss'] = output.loss.detach()
            loss = output.loss * float(hp.get('clip_loss_weight', 1.0))
        if self.moco_enabled:
            moco_value, moco_accuracy = self._moco_loss(
                batch['image'], features, enqueue=enqueue
            )
            metrics['moco_loss'] = moco_value.detach()
            metrics['moco_acc'] = moco_accuracy
            loss = loss + hp['moco_loss_weight'] * moco_value
        if self.geo_head is not None:
            target = nearest_centroid(lonlat.detach(), self.geo_centroids)
            # float32 logits and loss under mixed precision, as CLIP's and MoCo's
            with float32_math(geo_input):
                geo_logits = self.geo_head(geo_input.to(self.geo_head.weight.dtype))
                geo_loss = F.cross_entropy(geo_logits.float(), target.to(lonlat.device))
            metrics['geo_loss'] = geo_loss.detach()
            loss = loss + hp['geo_loss_weight'] * geo_loss
        return loss, metrics

    def _check_views(self, batch: Mapping[str, Tensor]) -> None:
        """Refuse a batch that cannot feed MoCo, naming the fix."""
        if 'image' not in batch:
            raise ValueError(
                'MoCo (moco_loss_weight > 0) needs images, not cached features: '
                'cached-feature batches have no second view for the key encoder'
            )
        image = batch['image']
        positives = self.hparams['moco_positives']
        if image.ndim != 5 or image.shape[1] != 2:
            fix = (
                "the dataset's dates: pair"
                if positives == 'temporal'
                else "the datamodule's views: 2"
            )
            raise ValueError(
                'MoCo (moco_loss_weight > 0) needs two views per sample, image of '
                f'shape (B, 2, C, H, W), not {tuple(image.shape)}: set {fix}'
            )
        mask = batch.get('date_mask')
        if mask is not None and not bool(mask.all()):
            fix = (
                "the dataset's dates: pair"
                if positives == 'temporal'
                else "the dataset's dates: index and the datamodule's views: 2"
            )
            raise ValueError(
                'MoCo (moco_loss_weight > 0) needs two real views of every '
                "sample, but this batch pads places of dates='all' (its "
                f"'date_mask' has padding): set {fix}"
            )
        date = batch.get('date')
        temporal = date is not None and date.ndim == 2
        if positives == 'temporal' and not temporal:
            raise ValueError(
                "moco_positives: temporal needs two dates of each place (a 'date' "
                "of shape (B, 2) in the batch, from the dataset's dates: pair); "
                'this batch has two views of one image: set moco_positives: '
                'augmentation, or dates: pair'
            )
        if positives == 'augmentation' and temporal:
            raise ValueError(
                "moco_positives: augmentation, but the batch's two views are two "
                "dates of each place (it has a 'date' of shape (B, 2)): set "
                'moco_positives: temporal, or drop dates: pair and use views: 2'
            )

    def _first_micro_batch_of_step(self) -> bool:
        """Whether no training batch of this optimiser step came before.

        The key encoder follows the query encoder once per optimiser step, as
        in MoCo: with ``accumulate_grad_batches`` k, an update at every batch
        would move it k times towards the same query weights (momentum
        ``m ** k`` instead of ``m``). Without a trainer, every call is a step.
        The step remembered is forgotten when a fit starts
        (:meth:`on_train_start`): another fit's step numbers start again.
        """
        trainer = getattr(self, '_trainer', None)
        if trainer is None:
            return True
        step = int(trainer.global_step)
        if self._moco_updated_at_step == step:
            return False
        self._moco_updated_at_step = step
        return True

    def on_train_start(self) -> None:
        """Forget the optimiser step of MoCo's last momentum update.

        A second fit of this task (another Trainer, or resuming from a
        checkpoint in the same process) counts its steps from 0 or from the
        checkpoint's step again: the step at which the last fit stopped must
        not skip the momentum update of the new fit's step of that number.
        """
        self._moco_updated_at_step = None

    def _moco_loss(
        self, image: Tensor, query_features: Tensor, enqueue: bool
    ) -> tuple[Tensor, Tensor]:
        """MoCo's InfoNCE of view 0's queries against view 1's keys and the queue.

        Follows MoCo's order: momentum update of the key encoder (training
        only), keys without gradient, loss, then the keys of the global batch
        (gathered in rank order, the same on every process) are enqueued.
        """
        hp = self.hparams
        training = enqueue and self.training
        if training and self._first_micro_batch_of_step():
            self.moco.update(self.model, self.moco_head, float(hp['moco_momentum']))
        shuffle = training and bool(hp['moco_shuffle_bn'])
        splits = self._bn_splits(enqueue)
        key_view = self._channels_last(image[:, 1])
        query = cast(Tensor, self.moco_head(query_features))
        key = self.moco(key_view, shuffle_bn=shuffle, splits=splits)
        queue = self.moco.queue.clone()
        temperature = float(hp['moco_temperature'])
        output = moco_loss(query, key, queue, temperature)
        loss, accuracy = output.loss, output.accuracy
        keys = [key]
        if hp.get('moco_symmetric', False):
            second = in_parts(self.image_features, key_view, splits)
            other_key = self.moco(
                self._channels_last(image[:, 0]), shuffle_bn=shuffle, splits=splits
            )
            other = moco_loss(
                cast(Tensor, self.moco_head(second)), other_key, queue, temperature
            )
            loss = (loss + other.loss) / 2
            accuracy = (accuracy + other.accuracy) / 2
            keys.append(other_key)
        if enqueue:
            for part in keys:
                self.moco.enqueue(gather_no_grad(part))
        return loss, accuracy

    def _bn_splits(self, enqueue: bool) -> int:
        """Parts of a batch for emulated shuffled batch norm (1: none).

        *moco_bn_splits* while training MoCo with *moco_shuffle_bn* on one
        process; else 1 (validation, DDP, MoCo off).
        """
        hp = self.hparams
        if not (self.moco_enabled and enqueue and self.training):
            return 1
        if not hp['moco_shuffle_bn'] or _world()[1] > 1:
            return 1
        return int(hp.get('moco_bn_splits', 1))

    def _channels_last(self, image: Tensor) -> Tensor:
        """The image in the backbone's memory format (``channels_last`` option)."""
        if self.hparams.get('channels_last', False):
            return image.contiguous(memory_format=torch.channels_last)
        return image

    def _log_step(
        self, stage: str, loss: Tensor, metrics: Mapping[str, Tensor], batch_size: int
    ) -> None:
        sync = stage != 'train'
        self.log(
            f'{stage}_loss',
            loss.detach(),
            batch_size=batch_size,
            sync_dist=sync,
            prog_bar=True,
        )
        for name, value in metrics.items():
            self.log(f'{stage}_{name}', value, batch_size=batch_size, sync_dist=sync)
        if stage == 'train' and self.clip_enabled:
            self.log(
                'logit_scale',
                self.current_logit_scale().detach().exp(),
                batch_size=batch_size,
            )

    # ------------------------------------------------------------------- steps
    def setup(self, stage: str) -> None:
        """Hand over a frozen backbone and fit the geo-classification k-means.

        A :class:`~torchgeo_satclip.datamodules.CachedFeatureDataModule`
        without a feature extractor gets :meth:`feature_extractor`. With
        ``geo_classes`` > 0, the k-means is fitted on the datamodule's
        ``train_points()`` when fitting.

        Args:
            stage: 'fit', 'validate', 'test' or 'predict'.

        Warns:
            UserWarning: if MoCo's queue is not smaller than the training set
                (see :meth:`_check_queue_size`).

        Raises:
            ValueError: if the geo pretext is on and the datamodule has no
                ``train_points()``, if a cached-feature datamodule meets an
                unfrozen backbone, or under a ``'16-true'`` or
                ``'bf16-true'`` trainer, which would round the points
                (:func:`~torchgeo_satclip.tasks.utils.check_point_precision`).
        """
        check_point_precision(getattr(self, '_trainer', None))
        datamodule = getattr(self.trainer, 'datamodule', None)
        if (
            isinstance(datamodule, CachedFeatureDataModule)
            and datamodule.feature_extractor is None
        ):
            datamodule.set_feature_extractor(self.feature_extractor())
        if self.moco_enabled and stage == 'fit':
            self._check_queue_size(datamodule)
        if self.geo_head is None or stage != 'fit':
            return
        train_points = getattr(datamodule, 'train_points', None)
        if not callable(train_points):
            raise ValueError(
                'geo_classes > 0 needs the training locations: fit with a datamodule '
                'whose train_points() returns the (N, 2) float64 lon/lat of its '
                'training split (S2100KDataModule and CachedFeatureDataModule have '
                f'it; this one is {type(datamodule).__name__}), or set geo_classes: 0'
            )
        self.fit_geo_centroids(train_points())

    def _check_queue_size(self, datamodule: Any) -> None:
        """Warn of a MoCo queue at least as large as the training set.

        Every step enqueues a key of each of its samples (two with
        ``moco_symmetric``), so the queue holds the keys of the last
        ``moco_queue_size`` samples drawn (half as many): once that reaches
        the training set, most queries meet a key of their own sample, from
        an earlier epoch, among their negatives. MoCo's queue is well below
        its training set (65,536 keys for ImageNet's 1.28 million images).
        A datamodule whose ``train_dataset`` has no length is not checked.

        Args:
            datamodule: the trainer's datamodule (after its ``setup('fit')``).
        """
        dataset = getattr(datamodule, 'train_dataset', None)
        if not isinstance(dataset, Sized):
            return
        samples = len(dataset)
        queue = int(self.hparams['moco_queue_size'])
        symmetric = bool(self.hparams.get('moco_symmetric', False))
        keys_per_sample = 2 if symmetric else 1
        if samples == 0 or queue < keys_per_sample * samples:
            return
        each = ' (two keys each, moco_symmetric)' if symmetric else ''
        warnings.warn(
            f'moco_queue_size ({queue}) is not smaller than the {samples} '
            f'training samples{each}: the queue holds the keys of the last '
            f'{queue // keys_per_sample} samples drawn, so '
            'most queries meet a key of their own sample from an earlier epoch '
            'among their negatives; lower moco_queue_size well below the '
            'training set (MoCo: 65,536 keys for 1.28 million images)',
            UserWarning,
            stacklevel=2,
        )

    def _check_geo_fitted(self) -> None:
        """Refuse to evaluate the geo pretext with centres never fitted.

        Run when validation or testing starts: after :meth:`setup` and after
        a checkpoint given as ``ckpt_path`` is restored, which brings its
        centres. Fitted centres are unit vectors; all-zero ones were never
        fitted, and would make every geo target class 0.

        Raises:
            ValueError: naming the ways to fit or restore them.
        """
        if self.geo_head is not None and not bool(self.geo_centroids.any()):
            raise ValueError(
                f'geo_classes ({self.hparams["geo_classes"]}) > 0, but the '
                'geo-classification centres were never fitted (they are fitted '
                'on the training locations when fitting): validate or test a '
                'fitted task (its checkpoint as ckpt_path, or '
                'SatCLIPTask.load_from_checkpoint), or call fit_geo_centroids() '
                'with the training lon/lat first'
            )

    def on_validation_start(self) -> None:
        """Check that the geo pretext's centres were fitted (see :meth:`_check_geo_fitted`)."""
        self._check_geo_fitted()

    def on_test_start(self) -> None:
        """Check that the geo pretext's centres were fitted (see :meth:`_check_geo_fitted`)."""
        self._check_geo_fitted()

    def fit_geo_centroids(self, lonlat: Tensor) -> None:
        """Fit the geo-classification pseudo-classes on training locations.

        Called by :meth:`setup` with the datamodule's ``train_points()``.

        Args:
            lonlat: ``(N, 2)`` (longitude, latitude) in degrees, at least
                ``geo_classes`` distinct places.

        Raises:
            ValueError: if the geo pretext is off, *lonlat* is not ``(N, 2)``,
                holds a point that is not finite or out of range (naming its
                row), or fewer than ``geo_classes`` distinct places.
        """
        if self.geo_head is None:
            raise ValueError('the geo-classification pretext is off (geo_classes: 0)')
        points = torch.as_tensor(lonlat, dtype=torch.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(
                f'training locations must be (N, 2) lon/lat, not {tuple(points.shape)}'
            )
        validate_lonlat(points, where=lambda row: f'training locations row {row}')
        classes = int(self.hparams['geo_classes'])
        distinct = count_distinct_points(points)
        if distinct < classes:
            # more classes than places: k-means++ draws a place twice, and a
            # class is the target of no point
            raise ValueError(
                f'geo_classes ({classes}) needs at least {classes} distinct '
                f'training locations, got {points.shape[0]} ({distinct} '
                'distinct): lower geo_classes'
            )
        centroids = spherical_kmeans(
            points.cpu(),
            self.hparams['geo_classes'],
            seed=self.hparams['geo_kmeans_seed'],
        )
        self.geo_centroids.copy_(centroids)

    def training_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor | None:
        """Compute the training loss.

        With CLIP on, a batch of fewer than two samples (the last one of a
        loader without ``drop_last``) has no negative: its CLIP loss and
        gradient are 0 and its retrieval is perfect. On one process its step
        is skipped (None: no optimiser step, which would still decay the
        weights), with a warning the first time; under DDP, where Lightning
        cannot skip a step, it is refused, unless ``gather_distributed``
        takes the negatives from the other processes.

        Args:
            batch: the output of your DataLoader.
            batch_idx: integer displaying index of this batch.
            dataloader_idx: index of the current dataloader.

        Returns:
            The loss tensor, or None for a skipped batch.

        Raises:
            ValueError: for a CLIP batch of fewer than two samples under DDP
                without ``gather_distributed``.
        """
        batch_size = int(batch['point'].shape[0])
        if self.clip_enabled and batch_size < _MIN_CONTRASTIVE_BATCH:
            world = _world()[1]
            if world > 1 and not self.hparams['gather_distributed']:
                raise ValueError(
                    f'a training batch of {batch_size} sample(s) on this process: '
                    'the CLIP loss needs at least 2 (one negative), and Lightning '
                    'cannot skip a step under DDP. Drop the last incomplete batch '
                    '(drop_last=True in the training DataLoader), or set '
                    "gather_distributed: true to take the other processes' "
                    'samples as negatives'
                )
            if world == 1:
                if not self._warned_small_batch:
                    warnings.warn(
                        f'a training batch of {batch_size} sample(s) skipped: the '
                        'CLIP loss needs at least 2 (one negative; with one, loss '
                        'and gradient are 0 and retrieval is perfect). Drop the '
                        'last incomplete batch (drop_last=True in the training '
                        'DataLoader); this warning is given once',
                        UserWarning,
                        stacklevel=2,
                    )
                    self._warned_small_batch = True
                return None
        loss, metrics = self.compute_loss(
            batch, gather=self.hparams['gather_distributed'], enqueue=True
        )
        self._log_step('train', loss, metrics, batch_size)
        return loss

    def validation_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Compute the validation loss and metrics (local batch negatives).

        Metrics are averaged over the epoch weighted by batch size. A batch
        of one sample (the last one of a split) is skipped: with no negative
        its loss is 0 and its retrieval is perfect, which would skew the
        epoch's metrics.

        Args:
            batch: the output of your DataLoader.
            batch_idx: integer displaying index of this batch.
            dataloader_idx: index of the current dataloader.
        """
        self._evaluate('val', batch)

    def _evaluate(self, stage: str, batch: Any) -> None:
        """Log the loss and metrics of a validation or test batch (size >= 2)."""
        batch_size = int(batch['point'].shape[0])
        if self.clip_enabled and batch_size < _MIN_CONTRASTIVE_BATCH:
            return
        loss, metrics = self.compute_loss(batch)
        self._log_step(stage, loss, metrics, batch_size)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Compute the test loss and metrics (local batch negatives).

        A batch of one sample is skipped, as in :meth:`validation_step`.

        Args:
            batch: the output of your DataLoader.
            batch_idx: integer displaying index of this batch.
            dataloader_idx: index of the current dataloader.
        """
        self._evaluate('test', batch)

    def predict_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Tensor]:
        """Embed the batch's locations (and images, when the batch has them).

        Args:
            batch: the output of your DataLoader.
            batch_idx: integer displaying index of this batch.
            dataloader_idx: index of the current dataloader.

        Returns:
            ``location_embedding`` (and ``image_embedding``) of shape
            ``(B, embed_dim)``, not normalised, and the ``point``. With CLIP
            off: the ``point`` and the backbone's pooled ``image_features``
            (of view 0; a batch's cached ``features`` as float32).
        """
        if not self.clip_enabled:
            if 'features' in batch:  # cached (float16 by default)
                features = batch['features'].float()
            else:
                features = self.image_features(_first_view(batch['image']))
            return {'point': batch['point'], 'image_features': features}
        out = {
            'point': batch['point'],
            'location_embedding': self.encode_location(batch['point']),
        }
        if 'image' in batch or 'features' in batch:
            out['image_embedding'] = self.encode_image(batch)
        return out

    # -------------------------------------------------------------- optimiser
    def configure_optimizers(
        self,
    ) -> 'lightning.pytorch.utilities.types.OptimizerLRScheduler':
        """AdamW or SGD, with optional warmup and cosine decay.

        AdamW (SatCLIP) decays matrices only (not biases, other 1-D
        parameters or the logit scale). SGD with momentum (MoCo-v2, GASSL)
        decays every parameter but the logit scale, as MoCo's
        ``SGD(model.parameters(), weight_decay=1e-4)``. The momentum encoder
        has no trainable parameter.

        Returns:
            The optimiser, and the scheduler (stepped per optimiser step) if
            one is configured.

        Raises:
            ValueError: if the cosine schedule meets a run of unknown length.
        """
        hp = self.hparams
        sgd = hp.get('optimizer', 'adamw') == 'sgd'
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            if name == 'logit_scale' or (
                not sgd and (param.ndim < 2 or name.endswith('bias'))
            ):
                no_decay.append(param)
            else:
                decay.append(param)
        groups = [
            {'params': decay, 'weight_decay': hp['weight_decay']},
            {'params': no_decay, 'weight_decay': 0.0},
        ]
        optimizer: Optimizer
        if sgd:
            optimizer = SGD(groups, lr=hp['lr'], momentum=hp.get('momentum', 0.9))
        else:
            optimizer = AdamW(groups, lr=hp['lr'])
        warmup = int(hp['warmup_steps'])
        if hp['scheduler'] == 'none' and warmup == 0:
            return optimizer
        cosine = hp['scheduler'] == 'cosine'
        # Only the cosine decay needs the length of the run: a warmup alone
        # also works in a run without one (max_epochs: -1, max_time alone).
        total = _cosine_steps(self.trainer) if cosine else 1
        floor = hp['min_lr'] / hp['lr'] if hp['lr'] else 0.0

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if not cosine:
                return 1.0
            progress = min((step - warmup) / max(total - warmup, 1), 1.0)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = LambdaLR(optimizer, factor)
        return {
            'optimizer': optimizer,
            'lr_scheduler': {'scheduler': scheduler, 'interval': 'step'},
        }


def _cosine_steps(trainer: Any) -> int:
    """Optimiser steps of the run, over which the cosine schedule decays.

    Args:
        trainer: the Lightning trainer.

    Returns:
        The trainer's ``estimated_stepping_batches`` (at least 1).

    Raises:
        ValueError: if the run has no known length: infinite (``max_epochs:
            -1`` without ``max_steps``, which ``max_time`` alone implies) or
            an unsized training loader without ``max_steps`` (Lightning then
            estimates -1 steps, and the schedule would decay to ``min_lr``
            after the first step).
    """
    estimated = trainer.estimated_stepping_batches
    if not math.isfinite(estimated) or estimated < 0:
        raise ValueError(
            "scheduler: 'cosine' decays over the optimiser steps of the run, "
            f'but their number is not known (Lightning estimates {estimated}: '
            f'max_epochs={trainer.max_epochs}, max_steps={trainer.max_steps}, '
            'or a training loader without a length): set trainer.max_steps, '
            "or use scheduler: 'none' (a warmup alone needs no length)"
        )
    return max(int(estimated), 1)


def _first_view(image: Tensor) -> Tensor:
    """View 0 of a two-view ``(B, V, C, H, W)`` batch; a ``(B, C, H, W)`` batch as is."""
    return image[:, 0] if image.ndim == 5 else image


def _check_real(name: str, value: Any, *, positive: bool) -> float:
    """Return ``value`` as a float if it is a finite real number above 0 (or >= 0).

    Args:
        name: the argument's name, for the message.
        value: what was passed.
        positive: whether 0 is refused too.

    Returns:
        The value as a ``float``.

    Raises:
        ValueError: naming the argument and the value, if ``value`` is a
            ``bool``, not a real number, not finite (``nan``, ``inf``), or
            below the limit.
    """
    wanted = f'{name} must be a finite real number {"above 0" if positive else ">= 0"}'
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f'{wanted}, not {value!r} ({type(value).__name__})')
    try:
        number = float(value)
    except OverflowError:  # an int beyond a float's range: named as check_real does
        check_real(name, value)
        raise
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise ValueError(f'{wanted}, not {number}')
    return number


def _check_optimiser_arguments(
    *, lr: Any, weight_decay: Any, scheduler: Any, warmup_steps: Any, min_lr: Any
) -> None:
    """Refuse optimiser and schedule arguments that would train silently wrong.

    A misspelt scheduler would run without one, a negative warmup as none, and
    a ``min_lr`` above ``lr`` would make the cosine schedule rise.

    Raises:
        ValueError: naming the argument and the value.
    """
    rate = _check_real('lr', lr, positive=True)
    _check_real('weight_decay', weight_decay, positive=False)
    floor = _check_real('min_lr', min_lr, positive=False)
    if floor > rate:
        raise ValueError(
            f'min_lr ({floor}) must not be above lr ({rate}): the cosine '
            'schedule decays from lr to min_lr'
        )
    if scheduler not in ('none', 'cosine'):
        raise ValueError(f"scheduler must be 'none' or 'cosine', not {scheduler!r}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, numbers.Integral):
        raise ValueError(
            f'warmup_steps must be an integer >= 0, not {warmup_steps!r} '
            f'({type(warmup_steps).__name__})'
        )
    if warmup_steps < 0:
        raise ValueError(f'warmup_steps must be an integer >= 0, not {warmup_steps}')


def _check_moco_arguments(
    *,
    clip_loss_weight: float,
    moco_loss_weight: float,
    geo_loss_weight: float,
    moco_dim: int,
    moco_hidden_dim: int | None,
    moco_queue_size: int,
    moco_momentum: float,
    moco_temperature: float,
    moco_positives: str,
    moco_bn_splits: int,
    freeze_backbone: bool,
    optimizer: str,
    momentum: float,
) -> None:
    """Refuse invalid loss weights and MoCo arguments with a specific message.

    Each is checked for its kind before any comparison: a string failed with
    a ``TypeError`` of the comparison, naming no argument, and a float width
    or queue size was truncated silently.
    """
    for name, weight in (
        ('clip_loss_weight', clip_loss_weight),
        ('moco_loss_weight', moco_loss_weight),
        ('geo_loss_weight', geo_loss_weight),
    ):
        _check_real(name, weight, positive=False)
    if clip_loss_weight == 0 and moco_loss_weight == 0 and geo_loss_weight == 0:
        raise ValueError(
            'clip_loss_weight, moco_loss_weight and geo_loss_weight are all 0: '
            'nothing to train'
        )
    if optimizer not in ('adamw', 'sgd'):
        raise ValueError(f"optimizer must be 'adamw' or 'sgd', not {optimizer!r}")
    check_real('momentum', momentum, minimum=0.0, below=1.0)
    if moco_positives not in ('augmentation', 'temporal'):
        raise ValueError(
            "moco_positives must be 'augmentation' or 'temporal', not "
            f'{moco_positives!r}'
        )
    check_int('moco_dim', moco_dim, minimum=1)
    if moco_hidden_dim is not None:
        check_int('moco_hidden_dim', moco_hidden_dim, minimum=1)
    check_int('moco_queue_size', moco_queue_size, minimum=1)
    if isinstance(moco_bn_splits, bool) or not isinstance(
        moco_bn_splits, numbers.Integral
    ):
        raise ValueError(f'moco_bn_splits must be an integer, not {moco_bn_splits!r}')
    if moco_bn_splits < 1:
        raise ValueError(f'moco_bn_splits must be >= 1, not {moco_bn_splits}')
    if not 0 <= check_real('moco_momentum', moco_momentum) <= 1:
        raise ValueError(f'moco_momentum must be in [0, 1], got {moco_momentum}')
    _check_temperature('moco_temperature', moco_temperature)
    if moco_loss_weight > 0 and freeze_backbone:
        raise ValueError(
            'MoCo (moco_loss_weight > 0) trains the backbone: it cannot be '
            'frozen (set freeze_backbone: false)'
        )


def _classifier_name(model: str) -> str:
    """Timm's name of the classifier of ``model`` (``fc``, ``head``, ...)."""
    try:
        cfg = timm.get_pretrained_cfg(model)
    except Exception:  # unknown to timm: the ResNet convention
        cfg = None
    name = getattr(cfg, 'classifier', None) if cfg is not None else None
    return str(name) if name else 'fc'


def export_official_checkpoint(
    task_or_ckpt: SatCLIPTask | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    location_only: bool = False,
) -> Path:
    """Write a SatCLIPTask in the layout of the released SatCLIP checkpoints.

    The file opens in the official SatCLIP code (``satclip/load.py``'s
    ``get_satclip``, strict loading), in RANGE's location-only loader and in
    :func:`~torchgeo_satclip.models.load_location_encoder`. The location
    network goes to ``model.location.nnet.*`` and ``model.nnet.*`` (float64),
    the image encoder to ``model.visual.*`` with the projection as timm's
    classifier (``model.visual.fc.*`` for ResNets, ``model.visual.head.*``
    for ViTs: SatCLIP's visual encoder is the timm model with
    ``num_classes=embed_dim``), the logit scale to ``model.logit_scale``, and
    ``hyper_parameters`` has every key of the released checkpoints (see
    :func:`~torchgeo_satclip.models.save_official_checkpoint`), with the
    image encoder under its official name: ``resnet18`` is
    ``vision_layers='moco_resnet18'``, ``resnet50`` is ``'moco_resnet50'``,
    ``vit_small_patch16_224`` is ``'moco_vit16'``, always with 13 input
    channels; ``vision_width`` is the backbone's feature width.

    Args:
        task_or_ckpt: a task, or the path of a SatCLIPTask Lightning
            checkpoint (read with ``weights_only=True`` by
            :func:`~torchgeo_satclip.models.read_checkpoint`; no timm model
            is built).
        path: destination file (written atomically).
        location_only: write the location encoder alone (no ``model.visual.*``;
            ``hyper_parameters['location_only']`` is True), for an image
            encoder the official code cannot build. RANGE and
            ``load_location_encoder`` read such a file; the official full
            loader does not.

    Returns:
        The path written.

    Raises:
        CheckpointError: if a checkpoint file cannot be read, is not a
            SatCLIPTask checkpoint, or is one with CLIP off.
        ValueError: if the official code cannot build the image encoder (and
            ``location_only`` is False) or the location encoder.
    """
    if isinstance(task_or_ckpt, SatCLIPTask):
        task_or_ckpt._require_clip('export_official_checkpoint')
        state = {k: v.detach() for k, v in task_or_ckpt.state_dict().items()}
        hparams: dict[str, Any] = dict(task_or_ckpt.hparams)
        encoder = task_or_ckpt.location_encoder
    else:
        checkpoint = read_checkpoint(task_or_ckpt)
        state = dict(checkpoint.get('state_dict', {}))
        hparams = dict(checkpoint.get('hyper_parameters', {}))
        clip_weight = hparams.get('clip_loss_weight', 1.0)
        if isinstance(clip_weight, int | float) and not clip_weight > 0:
            raise CheckpointError(
                f'{task_or_ckpt}: export_official_checkpoint needs the CLIP part, '
                f'which is off in this SatCLIPTask checkpoint (clip_loss_weight: '
                f'{clip_weight}): it has no projection, location encoder or logit '
                'scale to export'
            )
        if 'projection.weight' not in state or 'logit_scale' not in state:
            raise CheckpointError(
                f'{task_or_ckpt}: not a SatCLIPTask checkpoint (no projection.weight '
                'or logit_scale)'
            )
        encoder = load_location_encoder(checkpoint)
    official: dict[str, Any] = {
        'image_resolution': hparams.get('image_resolution', 224),
        'in_channels': hparams.get('in_channels', 13),
        'learning_rate': hparams.get('lr', 1e-4),
        'weight_decay': hparams.get('weight_decay', 0.01),
    }
    extra: dict[str, Tensor] = {'model.logit_scale': state['logit_scale'].cpu()}
    if not location_only:
        model_name = str(hparams.get('model', 'resnet18'))
        official.update(_official_image_hyper_parameters(model_name, official, state))
        extra.update(_official_image_state(model_name, state))
    return save_official_checkpoint(
        encoder, path, hyper_parameters=official, extra_state=extra
    )


#: Input channels of every image encoder the official code builds.
_OFFICIAL_IN_CHANNELS = 13


def _official_image_hyper_parameters(
    model_name: str, official: Mapping[str, Any], state: Mapping[str, Tensor]
) -> dict[str, Any]:
    """``vision_layers``, ``vision_width`` and ``vision_patch_size`` of the image encoder."""
    vision_layers = OFFICIAL_VISION_LAYERS.get(model_name)
    if vision_layers is None or official['in_channels'] != _OFFICIAL_IN_CHANNELS:
        known = ', '.join(f'{k} ({v})' for k, v in OFFICIAL_VISION_LAYERS.items())
        raise ValueError(
            f'the official SatCLIP code cannot build the image encoder {model_name!r} '
            f'with {official["in_channels"]} input channels: it builds only {known}, '
            f'with {_OFFICIAL_IN_CHANNELS} channels. Pass location_only=True to '
            'export the location encoder alone (RANGE and load_location_encoder '
            'read it; the official full loader does not)'
        )
    patch = re.search(r'patch(\d+)', model_name)
    return {
        'vision_layers': vision_layers,
        'vision_width': int(state['projection.weight'].shape[1]),
        'vision_patch_size': int(patch.group(1)) if patch else None,
    }


def _official_image_state(
    model_name: str, state: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """The image encoder as ``model.visual.*``, the projection as timm's classifier."""
    classifier = _classifier_name(model_name)
    visual = {
        'model.visual.' + key[len('model.') :]: value.cpu()
        for key, value in state.items()
        if key.startswith('model.')
    }
    visual[f'model.visual.{classifier}.weight'] = state['projection.weight'].cpu()
    visual[f'model.visual.{classifier}.bias'] = state['projection.bias'].cpu()
    return visual
