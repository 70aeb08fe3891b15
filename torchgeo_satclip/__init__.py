"""torchgeo-satclip: SatCLIP location encoders and pretraining for TorchGeo.

The location encoder maps ``(N, 2)`` tensors of **(longitude, latitude) in
degrees** (longitude first) to embeddings usable as features in any
geospatial model.

Importing the package is cheap: the re-exports below are imported on first
use (PEP 562), so that ``torchgeo-satclip --help`` does not import torch.
"""

from typing import TYPE_CHECKING, Any

from ._errors import DataError
from ._lazy import lazy_exports

if TYPE_CHECKING:
    from .models import LocationEncoder, build_location_encoder

    __version__: str

__all__ = ['DataError', 'LocationEncoder', '__version__', 'build_location_encoder']

#: Lazy re-exports: ``name -> module`` it is imported from on first access.
_LAZY = {
    'LocationEncoder': '.models',
    'build_location_encoder': '.models',
}


def _version() -> str:
    """The installed distribution's version (``0+unknown`` if not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version('torchgeo-satclip')
    except PackageNotFoundError:  # pragma: no cover - a source tree, not installed
        return '0+unknown'


_lazy_getattr, __dir__ = lazy_exports(globals(), _LAZY)


def __getattr__(name: str) -> Any:
    """Import a lazy re-export (or read the version) on first access.

    Args:
        name: the attribute.

    Returns:
        Its value.

    Raises:
        AttributeError: for a name that is not a re-export.
    """
    if name == '__version__':
        globals()[name] = _version()
        return globals()[name]
    return _lazy_getattr(name)
