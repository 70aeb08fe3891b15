"""``python -m torchgeo_satclip.cli``: the ``torchgeo-satclip`` command."""

import sys

from . import main

__all__: list[str] = []

if __name__ == '__main__':  # pragma: no branch
    sys.exit(main())
