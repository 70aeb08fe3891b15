"""The released weights, as torchvision ``WeightsEnum`` members.

:class:`SatCLIPWeights` (SatCLIP's six checkpoints) and
:class:`GeoCLIPWeights` (GeoCLIP's location encoder) follow TorchGeo's
convention: a member is what users pass to torchgeo- and timm-like APIs
(``satclip_location_encoder(weights=SatCLIPWeights.SATCLIP_RESNET18_L10)``),
and it gives its model's architecture and state dict.
:func:`list_weights` and :func:`weights_table` list them.

:func:`download_checkpoint` fetches a member's checkpoint into the torch hub
cache, verified by :func:`expected_sha256`.

This is the one module of :mod:`torchgeo_satclip.models` that imports
torchvision (for ``WeightsEnum``), which imports its models and
``torch._dynamo``: about two seconds. :mod:`.weights` imports it only when a
member or a weights name is used, and it and :mod:`torchgeo_satclip.models`
re-export its names on first access (PEP 562), so that loading a checkpoint
file or building a new encoder, as ``torchgeo-satclip embed`` does, never
imports torchvision.
"""

import os
import re
import urllib.error
from enum import Enum
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torchvision.models._api import Weights, WeightsEnum

from .._io import atomic_path, remove_stale_temporaries
from .geoclip import (
    GEOCLIP_ARCHITECTURE,
    GEOCLIP_DISTRIBUTION,
    GEOCLIP_EXTRA,
    GEOCLIP_WEIGHTS_FILE,
)
from .weights import (
    ChecksumError,
    DownloadError,
    _check_root,
    load_location_encoder,
    sha256sum,
)

__all__ = [
    'GeoCLIPWeights',
    'SatCLIPWeights',
    'download_checkpoint',
    'expected_sha256',
    'is_weights_member',
    'list_weights',
    'weights_member',
    'weights_table',
]

_PUBLICATION = 'https://doi.org/10.1609/aaai.v39i4.32457'
_REPO = 'https://github.com/microsoft/satclip'
#: Revision of the ViT16-L40 repository pinned by TorchGeo 0.10.
_VIT16_L40_REVISION = '0ef2acc0b91d3c8cfdf4a0cc03207095989287ab'


def _meta(image_encoder: str, timm_name: str, legendre_polys: int) -> dict[str, Any]:
    return {
        'dataset': 'S2-100K',
        'model': 'satclip',
        'image_encoder': image_encoder,
        'timm_model': timm_name,
        'in_chans': 13,
        'ssl_method': 'clip',
        'publication': _PUBLICATION,
        'repo': _REPO,
        'le_type': 'sphericalharmonics',
        'pe_type': 'siren',
        'legendre_polys': legendre_polys,
        'capacity': 512,
        'embed_dim': 256,
        'num_hidden_layers': 2,
        # sha256 of the checkpoint file; None while unknown (not verified)
        'sha256': None,
    }


def _url(repo: str, filename: str, revision: str = 'main') -> str:
    return f'https://huggingface.co/microsoft/{repo}/resolve/{revision}/{filename}'


class SatCLIPWeights(WeightsEnum):  # type: ignore[misc]
    """The six released SatCLIP checkpoints (Klemmer et al., AAAI 2025).

    Each is a Lightning checkpoint of the full model; only its location
    encoder is used by :func:`load_location_encoder`. ``meta`` holds the
    location encoder's architecture (``legendre_polys``, ``capacity``,
    ``embed_dim``, ``num_hidden_layers``) and the image encoder it was trained
    with (``timm_model``).

    As TorchGeo's ``WeightsEnum`` members, a member gives the state dict of
    its model with :meth:`get_state_dict`, which loads into
    ``satclip_location_encoder(**architecture)``, and the model itself comes
    from ``satclip_location_encoder(weights=SatCLIPWeights.SATCLIP_...)``.

    If you use these weights, please cite https://doi.org/10.1609/aaai.v39i4.32457.
    """

    SATCLIP_RESNET18_L10 = Weights(
        url=_url('SatCLIP-ResNet18-L10', 'satclip-resnet18-l10.ckpt'),
        transforms=nn.Identity(),
        meta=_meta('resnet18', 'resnet18', 10),
    )
    SATCLIP_RESNET18_L40 = Weights(
        url=_url('SatCLIP-ResNet18-L40', 'satclip-resnet18-l40.ckpt'),
        transforms=nn.Identity(),
        meta=_meta('resnet18', 'resnet18', 40),
    )
    SATCLIP_RESNET50_L10 = Weights(
        url=_url('SatCLIP-ResNet50-L10', 'satclip-resnet50-l10.ckpt'),
        transforms=nn.Identity(),
        meta=_meta('resnet50', 'resnet50', 10),
    )
    SATCLIP_RESNET50_L40 = Weights(
        url=_url('SatCLIP-ResNet50-L40', 'satclip-resnet50-l40.ckpt'),
        transforms=nn.Identity(),
        meta=_meta('resnet50', 'resnet50', 40),
    )
    SATCLIP_VIT16_L10 = Weights(
        url=_url('SatCLIP-ViT16-L10', 'satclip-vit16-l10.ckpt'),
        transforms=nn.Identity(),
        meta=_meta('vit16', 'vit_small_patch16_224', 10),
    )
    SATCLIP_VIT16_L40 = Weights(
        url=_url('SatCLIP-ViT16-L40', 'satclip-vit16-l40.ckpt', _VIT16_L40_REVISION),
        transforms=nn.Identity(),
        meta=_meta('vit16', 'vit_small_patch16_224', 40),
    )

    def get_state_dict(
        self,
        progress: bool = True,
        model_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The location encoder's state dict, as torchvision's ``Weights``.

        The checkpoint is downloaded (once, verified against
        ``meta['sha256']`` when known) and its location encoder is returned
        as a state dict that loads into
        ``satclip_location_encoder(**self.architecture())``.

        Args:
            progress: show a progress bar while downloading.
            model_dir: where checkpoints are cached (default:
                ``<torch hub dir>/checkpoints``).
            **kwargs: accepted for torchvision compatibility
                (``check_hash``, ``map_location``, ``weights_only``) and
                ignored: the hash is always checked when known and the
                file is always read with ``weights_only=True`` on the CPU.

        Returns:
            The state dict of the location encoder (float64 tensors).
        """
        encoder = load_location_encoder(self, root=model_dir, progress=progress)
        return dict(encoder.state_dict())

    def architecture(self) -> dict[str, Any]:
        """Arguments of ``satclip_location_encoder`` building this model.

        Returns:
            ``positional_encoding``, ``network``, ``legendre_polys``,
            ``capacity``, ``embed_dim`` and ``num_hidden_layers``.
        """
        meta = self.meta
        return {
            'positional_encoding': meta['le_type'],
            'network': meta['pe_type'],
            'legendre_polys': meta['legendre_polys'],
            'capacity': meta['capacity'],
            'embed_dim': meta['embed_dim'],
            'num_hidden_layers': meta['num_hidden_layers'],
        }


def weights_table() -> str:
    """The released weights as a reStructuredText list-table (for the docs).

    Returns:
        One row per :class:`SatCLIPWeights` member: its name, L, capacity,
        embedding dimension, image encoder and source URL.
    """
    lines = [
        '.. list-table::',
        '   :header-rows: 1',
        '',
        '   * - Weights',
        '     - L',
        '     - Capacity',
        '     - Embed dim',
        '     - Image encoder',
        '     - Source',
    ]
    for name, member in SatCLIPWeights.__members__.items():
        meta = member.meta
        lines += [
            f'   * - ``SatCLIPWeights.{name}``',
            f'     - {meta["legendre_polys"]}',
            f'     - {meta["capacity"]}',
            f'     - {meta["embed_dim"]}',
            f'     - {meta["timm_model"]}',
            f'     - {member.url}',
        ]
    return '\n'.join(lines) + '\n'


class GeoCLIPWeights(WeightsEnum):  # type: ignore[misc]
    """GeoCLIP's pretrained location encoder (Vivanco Cepeda et al., NeurIPS 2023).

    GeoCLIP trained an image encoder and a location encoder contrastively on
    4.7 million geotagged Flickr photos (MP-16). Its location encoder is
    released under the MIT licence in the ``geoclip`` wheel on PyPI, as
    ``geoclip/model/weights/location_encoder_weights.pth``. Install it with
    the ``geoclip`` extra (``pip install "torchgeo-satclip[geoclip]"``); the
    file is then found in the installed distribution without importing
    geoclip, and read with ``torch.load(..., weights_only=True)``. Nothing is
    downloaded at load time.

    The encoder is built from this package's parts
    (:func:`~torchgeo_satclip.models.geoclip.geoclip_location_encoder`):
    random Fourier features at scales 2^0, 2^4, 2^8 of the Equal Earth
    projection, a ReLU MLP per scale, outputs summed into 512 dimensions. It
    takes **(lon, lat)**, like everything here (GeoCLIP's own code takes
    (lat, lon)).

    ``load_location_encoder('geoclip')`` is the short form;
    :meth:`architecture` and :meth:`get_state_dict` give torchvision's two
    steps. If you use these weights, please cite
    https://arxiv.org/abs/2309.16020.
    """

    GEOCLIP = Weights(
        url='https://pypi.org/project/geoclip/1.3.0/',
        transforms=nn.Identity(),
        meta={
            'dataset': 'MP-16',
            'model': 'geoclip',
            'ssl_method': 'clip',
            'publication': 'https://arxiv.org/abs/2309.16020',
            'repo': 'https://github.com/VicenteVivan/geo-clip',
            'license': 'MIT',
            'distribution': GEOCLIP_DISTRIBUTION,
            'file': GEOCLIP_WEIGHTS_FILE,
            'extra': GEOCLIP_EXTRA,
            'le_type': GEOCLIP_ARCHITECTURE['positional_encoding'],
            'pe_type': GEOCLIP_ARCHITECTURE['network'],
            'capacity': GEOCLIP_ARCHITECTURE['capacity'],
            'embed_dim': GEOCLIP_ARCHITECTURE['embed_dim'],
            'num_hidden_layers': GEOCLIP_ARCHITECTURE['num_hidden_layers'],
        },
    )

    def get_state_dict(
        self,
        progress: bool = True,
        model_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The location encoder's state dict, in this package's layout.

        Args:
            progress: accepted for torchvision compatibility (nothing is
                downloaded).
            model_dir: accepted for torchvision compatibility (the file is
                the installed distribution's).
            **kwargs: accepted for torchvision compatibility and ignored.

        Returns:
            A state dict that loads into
            ``satclip_location_encoder(**self.architecture())`` (float64).

        Raises:
            GeoCLIPNotInstalledError: if the ``geoclip`` extra is not installed.
        """
        return dict(load_location_encoder(self).state_dict())

    def architecture(self) -> dict[str, Any]:
        """Arguments of ``satclip_location_encoder`` building this model.

        Returns:
            ``positional_encoding`` (``'rff'``), ``network`` (``'geoclip'``),
            ``embed_dim``, ``capacity``, ``num_hidden_layers``, ``sigmas`` and
            ``encoded_size``.
        """
        return dict(GEOCLIP_ARCHITECTURE)


def list_weights() -> list[str]:
    """Names of the released weights (:class:`SatCLIPWeights` members).

    Returns:
        The member names, in declaration order (smallest model first).
    """
    return list(SatCLIPWeights.__members__)


def weights_member(name: str) -> WeightsEnum | None:
    """The member a weights name names, in any case.

    Args:
        name: a :class:`SatCLIPWeights` member's name, alone or after the
            class (``'SATCLIP_RESNET18_L10'``,
            ``'SatCLIPWeights.SATCLIP_RESNET18_L10'``, or after TorchGeo's
            ``'SatCLIP_Weights.'``), or GeoCLIP's (``'geoclip'``,
            ``'GeoCLIPWeights.GEOCLIP'``); the class may follow its module.

    Returns:
        The member, or None if the name is none of them (a member's name
        after another class, ``'SatCLIPWeights.GEOCLIP'``, is none).
    """
    prefix, _, last = name.rpartition('.')
    cls = prefix.rsplit('.', 1)[-1].lower()
    key = last.upper()
    for enum, classes in _WEIGHTS_CLASSES:
        members = cast(dict[str, WeightsEnum], enum.__members__)
        if key in members and (not prefix or cls in classes):
            return members[key]
    return None


#: The weights enums :func:`weights_member` looks in, with the class names
#: (lower case) that may come before a member's name.
_WEIGHTS_CLASSES: tuple[tuple[type[WeightsEnum], frozenset[str]], ...] = (
    (SatCLIPWeights, frozenset({'satclipweights', 'satclip_weights'})),
    (GeoCLIPWeights, frozenset({'geoclipweights'})),
)


#: A hash prefix in a file name, as torch.hub and TorchGeo (``name-<hex>.pth``).
_HASH_PREFIX = re.compile(r'-([a-f0-9]{8,64})\.[A-Za-z0-9]+$')


def expected_sha256(weights: WeightsEnum) -> str | None:
    """The known sha256 (or a prefix of it) of a released checkpoint.

    TorchGeo's convention: ``meta['sha256']`` when set, else the hash prefix
    in the file name (``satclip-resnet18-l10-<hex>.ckpt``), else None.

    Args:
        weights: a weights member.

    Returns:
        The full hash or a prefix, lower case, or None when unknown.
    """
    known = weights.meta.get('sha256')
    if known:
        return str(known).lower()
    match = _HASH_PREFIX.search(Path(weights.url).name)
    return match.group(1) if match else None


#: What ``torch.hub.download_url_to_file`` adds to the name it is given for
#: the file it streams into (and renames at the end): ``.<uuid hex>.partial``.
_HUB_PARTIAL = r'\.[0-9a-f]{32}\.partial'


def _cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / 'checkpoints'


def download_checkpoint(
    weights: WeightsEnum,
    root: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Path:
    """Return the local path of a released checkpoint, downloading it if absent.

    The file is downloaded to a temporary name in ``root`` and renamed when
    complete (:func:`~torchgeo_satclip._io.atomic_path`), so an interrupted
    download never leaves a truncated checkpoint under the final name, and
    the temporary file of a download killed outright is removed by the next
    one. When its sha256 is known (:func:`expected_sha256`)
    the download is verified before the rename; a mismatch deletes it.

    Args:
        weights: a :class:`SatCLIPWeights` member (or any ``WeightsEnum``
            member whose ``url`` is a checkpoint).
        root: directory to keep checkpoints in; defaults to
            ``<torch hub dir>/checkpoints``.
        progress: show a progress bar while downloading.

    Returns:
        Path of the checkpoint file.

    Raises:
        DownloadError: if the file is absent and cannot be downloaded (no
            network); the message says where to put it.
        ChecksumError: if the download does not have the known sha256.
        ValueError: for :attr:`GeoCLIPWeights.GEOCLIP`, whose weights are in
            the installed ``geoclip`` distribution, not at its ``url``; or
            naming ``root``, if it is not a path, is empty, is a file or
            cannot be created as a folder (checked before any download).
    """
    if isinstance(weights, GeoCLIPWeights):
        raise ValueError(
            f'GeoCLIPWeights.{weights.name} has no checkpoint to download (its url '
            f"{weights.url} is the 'geoclip' package's page): its weights come "
            f"from the installed 'geoclip' distribution ({GEOCLIP_WEIGHTS_FILE}; "
            f'pip install "torchgeo-satclip[{GEOCLIP_EXTRA}]"): use '
            "load_location_encoder('geoclip') or find_geoclip_weights()"
        )
    directory = _check_root(root) or _cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        why = error.strerror or str(error)
        if root is not None:
            raise ValueError(
                f'root {str(directory)!r} cannot be created as a folder ({why}): '
                'expected the folder to keep released checkpoints in (or None for '
                'the torch hub cache)'
            ) from None
        raise DownloadError(
            f'cannot create the checkpoint cache {directory} ({why}): set '
            'TORCH_HOME, or pass root, a folder to keep released checkpoints in'
        ) from None
    path = directory / Path(weights.url).name
    if path.exists():
        return path
    # What a download killed by SIGKILL (or a power cut) left behind: the
    # package's temporary file and the one torch streams into beside it
    # (.<temporary>.<hex>.partial), in one look at the folder.
    remove_stale_temporaries(path, after=f'(?:{_HUB_PARTIAL})?')
    with atomic_path(path) as partial:
        try:
            torch.hub.download_url_to_file(weights.url, str(partial), progress=progress)
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, 'reason', error)
            raise DownloadError(
                f'cannot download {weights.url} ({reason}); no network? put the '
                f'file at {path} or pass a checkpoint path instead'
            ) from None
        expected = expected_sha256(weights)
        if expected is not None:
            actual = sha256sum(partial)
            if not actual.startswith(expected):
                raise ChecksumError(
                    f'{weights.url} downloaded with sha256 {actual}, expected '
                    f'{expected}; the partial file was deleted, try again'
                )
    return path


def is_weights_member(member: Enum) -> bool:
    """Whether an enum member is a torchvision ``Weights`` one.

    True for the members of :class:`SatCLIPWeights`, :class:`GeoCLIPWeights`
    and any other ``WeightsEnum`` (TorchGeo's ``SatCLIP_Weights``).

    Args:
        member: an enum member.

    Returns:
        Whether its value is a torchvision ``Weights``.
    """
    return isinstance(getattr(member, 'value', None), Weights)
