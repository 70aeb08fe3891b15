"""Running a caller's module for a while, then handing it back as it was.

The feature cache (``datamodules``) and ``embed`` both borrow a module the
caller owns (a feature extractor, a location encoder), run it in eval mode,
maybe on another device, and must give it back unchanged: each submodule
with its own training flag (a backbone training with frozen batch norms
keeps them frozen) and the module on its own device.
"""

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from torch import nn

__all__ = ['evaluating']

_Module = TypeVar('_Module', bound=nn.Module)


@contextmanager
def evaluating(
    module: _Module, device: torch.device | None = None
) -> Iterator[_Module]:
    """Run *module* in eval mode (on *device*), then put it back as it was.

    On leaving (after an error too), every submodule gets its own training
    flag back and, when *device* is given, the module goes back to the device
    its parameters and buffers were on (unless they were on several, or it
    has none).

    Args:
        module: the caller's module.
        device: where to run it; None leaves it where it is.

    Yields:
        *module*, in eval mode (on *device*).
    """
    modes = [(part, part.training) for part in module.modules()]
    homes = {t.device for t in itertools.chain(module.parameters(), module.buffers())}
    if device is not None:
        module.to(device)
    module.eval()
    try:
        yield module
    finally:
        if device is not None and len(homes) == 1:
            (home,) = homes
            if home != device:
                module.to(home)
        for part, training in modes:
            part.training = training
