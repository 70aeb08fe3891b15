"""torchgeo-satclip: SatCLIP location encoders and pretraining for TorchGeo.

The location encoder maps ``(N, 2)`` tensors of **(longitude, latitude) in
degrees** (longitude first) to embeddings usable as features in any
geospatial model.

Importing the package is cheap: the re-exports below are imported on first
use (PEP 562), so that ``torchgeo-satclip --help`` does not import torch.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import LocationEncoder, build_location_encoder

    __version__: str

__all__ = ['LocationEncoder', '__version__', 'build_location_encoder']

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


def __getattr__(name: str) -> Any:
    """Import a lazy re-export on first access, then cache it in the module.

    Args:
        name: the attribute.

    Returns:
        Its value.

    Raises:
        AttributeError: for a name that is not a re-export.
    """
    if name == '__version__':
        value: Any = _version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    else:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's attributes, lazy re-exports included.

    Returns:
        The sorted names.
    """
    return sorted({*globals(), *__all__})
