"""Location-aware models: image features fused with a location embedding.

The ``nn.Module`` side of the location-aware tasks
(:mod:`torchgeo_satclip.tasks.location_aware`), usable without Lightning:

* :class:`LocationFusionModel`: an image backbone's pooled features and a
  location embedding, fused by concatenation or FiLM, then a linear head;
  ``forward(image, location)``.
* :class:`LocationOnlyModel`: a location embedding, then an MLP head;
  ``forward(location)``.

``location_input`` declares what ``location`` is: ``'lonlat'``, ``(B, 2)``
longitude/latitude in degrees, embedded by the location encoder; or
``'embedding'``, ``(B, embed_dim)`` precomputed embeddings. A tensor of the
other kind is an error, never a guess. Precomputed embeddings must be finite
(:func:`check_location_embedding`): a model checks them when they are on the
CPU; on an accelerator that would cost a host synchronisation per call, so the
location-aware tasks check each batch on the CPU before Lightning moves it.
"""

import enum
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from .._checks import check_flag, check_int, check_real
from .location_encoder import LocationEncoder

__all__ = [
    'Fusion',
    'LocationFusionModel',
    'LocationInput',
    'LocationOnlyModel',
    'check_location_embedding',
]


class Fusion(enum.StrEnum):
    """How image features and the location embedding are combined."""

    #: ``head([image_features, location_embedding])``.
    CONCAT = 'concat'
    #: Feature-wise linear modulation: ``head(f * (1 + gamma(e)) + beta(e))``.
    FILM = 'film'


class LocationInput(enum.StrEnum):
    """What the location given to a model is."""

    #: ``(B, 2)`` longitude and latitude in degrees, embedded by the encoder.
    LONLAT = 'lonlat'
    #: ``(B, embed_dim)`` embeddings precomputed by the same (frozen) encoder.
    EMBEDDING = 'embedding'


_Choice = TypeVar('_Choice', bound=enum.StrEnum)


def _choice(name: str, kind: type[_Choice], value: Any) -> _Choice:
    """Return ``value`` as a member of *kind*, or raise naming the argument.

    Args:
        name: the argument's name, for the message.
        kind: the enum of the choices.
        value: what was passed (a member or its value).

    Returns:
        The member.

    Raises:
        ValueError: if ``value`` is none of the choices.
    """
    try:
        return kind(value)
    except ValueError:
        choices = ' or '.join(repr(member.value) for member in kind)
        raise ValueError(f'{name} must be {choices}, got {value!r}') from None


def _check_embedding_shape(embedding: Tensor, embed_dim: int) -> None:
    """Raise unless *embedding* is ``(B, embed_dim)`` (see below)."""
    if embedding.ndim != 2 or embedding.shape[1] != embed_dim:
        raise ValueError(
            f"location_input='embedding' expects (B, {embed_dim}) "
            f'embeddings, got shape {tuple(embedding.shape)}'
        )


def check_location_embedding(
    embedding: Tensor, embed_dim: int, *, name: str = 'location embedding'
) -> None:
    """Check ``(B, embed_dim)`` precomputed location embeddings.

    A NaN or infinite embedding would give NaN predictions (and, in
    training, NaN weights after one step) without a word. The values are
    checked on the tensor's device: call it on the CPU (as the tasks do,
    before a batch is moved) to avoid a host synchronisation.

    Args:
        embedding: the embeddings.
        embed_dim: the size the model's location encoder gives.
        name: what *embedding* is, for the message.

    Raises:
        ValueError: if *embedding* is not ``(B, embed_dim)``, or a value is
            not finite; the message names the first such row and column and
            its value.
    """
    _check_embedding_shape(embedding, embed_dim)
    if not embedding.is_floating_point() or embedding.shape[0] == 0:
        return
    bad = ~torch.isfinite(embedding)
    if not bool(bad.any()):
        return
    row, column = (int(i) for i in bad.nonzero()[0])
    raise ValueError(
        f'{name} row {row}, column {column} is {embedding[row, column].item()}: '
        f'expected finite (B, {embed_dim}) embeddings; recompute them with the '
        'location encoder (points must be finite lon/lat in degrees)'
    )


class _Location(nn.Module):
    """A location encoder, frozen (in eval mode, no gradients) or trainable."""

    def __init__(
        self,
        encoder: LocationEncoder,
        frozen: bool,
        location_input: LocationInput | str = LocationInput.LONLAT,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.frozen = check_flag('freeze_location', frozen)
        self.location_input = _choice('location_input', LocationInput, location_input)
        if self.location_input is LocationInput.EMBEDDING and not frozen:
            raise ValueError(
                "location_input='embedding' needs a frozen location encoder "
                '(freeze_location=True): precomputed embeddings cannot be fine-tuned'
            )
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
        """Embed ``(B, 2)`` lon/lat, or check and pass on ``(B, D)`` embeddings.

        The embedding keeps its dtype (the encoder's, or the given one's):
        each model casts it to the dtype of the layer it feeds, so that a
        model in float64 (``precision='64-true'``) gets float64 embeddings.

        Raises:
            ValueError: if the tensor is not of the declared kind, or a
                precomputed embedding on the CPU is not finite (one on an
                accelerator is not checked here: that would synchronise).
        """
        if self.location_input is LocationInput.EMBEDDING:
            if location.device.type == 'cpu':
                check_location_embedding(location, self.embed_dim)
            else:
                _check_embedding_shape(location, self.embed_dim)
            return location
        if location.ndim != 2 or location.shape[1] != 2:
            raise ValueError(
                "location_input='lonlat' expects (B, 2) longitude/latitude in "
                f'degrees, got shape {tuple(location.shape)}; for precomputed '
                "embeddings use location_input='embedding'"
            )
        if self.frozen:
            with torch.no_grad():
                frozen: Tensor = self.encoder(location)
            return frozen
        out: Tensor = self.encoder(location)
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
        location_input: LocationInput | str = LocationInput.LONLAT,
    ) -> None:
        """Initialise the model.

        Args:
            backbone: maps images to ``(B, num_features)`` pooled features.
            num_features: size of the backbone's features.
            location_encoder: maps ``(B, 2)`` lon/lat to embeddings.
            num_outputs: size of the output.
            fusion: 'concat' or 'film'.
            freeze_location: keep the location encoder fixed.
            location_input: 'lonlat' (``forward`` embeds lon/lat) or
                'embedding' (``forward`` takes precomputed embeddings; needs
                *freeze_location*).

        Raises:
            ValueError: if *location_input* is 'embedding' and the encoder is
                not frozen, if *num_features* or *num_outputs* is not a
                positive integer, *freeze_location* not a bool, or *fusion*
                or *location_input* none of its choices.
        """
        super().__init__()
        num_features = check_int('num_features', num_features, minimum=1)
        num_outputs = check_int('num_outputs', num_outputs, minimum=1)
        self.fusion = _choice('fusion', Fusion, fusion)
        self.backbone = backbone
        self.location = _Location(location_encoder, freeze_location, location_input)
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
            location: ``(B, 2)`` lon/lat in degrees, or ``(B, embed_dim)``
                embeddings, as ``location_input`` says.

        Returns:
            ``(B, num_outputs)`` logits or values.

        Raises:
            ValueError: if *location* is not of the declared kind, or has
                not one row per image (one location is not broadcast over a
                batch).
        """
        if location.ndim == 0 or location.shape[0] != image.shape[0]:
            lonlat = self.location.location_input is LocationInput.LONLAT
            width = 2 if lonlat else self.location.embed_dim
            raise ValueError(
                f'location has shape {tuple(location.shape)} for {image.shape[0]} '
                f'images: expected one location per image, ({image.shape[0]}, '
                f'{width})'
            )
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
        location_input: LocationInput | str = LocationInput.LONLAT,
    ) -> None:
        """Initialise the model.

        Args:
            location_encoder: maps ``(B, 2)`` lon/lat to embeddings.
            num_outputs: size of the output.
            hidden: width of the head's hidden layers.
            num_layers: hidden layers of the head (0: a linear head).
            dropout: dropout after each hidden layer.
            freeze_location: keep the location encoder fixed.
            location_input: 'lonlat' or 'embedding' (see
                :class:`LocationFusionModel`).

        Raises:
            ValueError: if *location_input* is 'embedding' and the encoder is
                not frozen, or if *num_outputs* or *hidden* is not a positive
                integer, *num_layers* not a non-negative integer, *dropout*
                not in [0, 1) (a head of width 0 would predict a constant),
                *freeze_location* not a bool or *location_input* none of its
                choices.
        """
        super().__init__()
        num_outputs = check_int('num_outputs', num_outputs, minimum=1)
        hidden = check_int('hidden', hidden, minimum=1)
        num_layers = check_int('num_layers', num_layers, minimum=0)
        dropout = check_real('dropout', dropout, minimum=0.0, below=1.0)
        self.location = _Location(location_encoder, freeze_location, location_input)
        layers: list[nn.Module] = []
        width = self.location.embed_dim
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_outputs))
        self.head = nn.Sequential(*layers)

    def forward(self, location: Tensor) -> Tensor:
        """Predict from ``(B, 2)`` lon/lat or ``(B, embed_dim)`` embeddings.

        Args:
            location: the locations, as ``location_input`` says.

        Returns:
            ``(B, num_outputs)``.

        Raises:
            ValueError: if *location* is not of the declared kind.
        """
        dtype = next(self.head.parameters()).dtype
        out: Tensor = self.head(self.location(location).to(dtype))
        return out
