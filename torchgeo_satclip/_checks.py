"""Argument checks shared by the models, ``embed`` and any other part (plumbing).

Each check raises ``ValueError`` naming the argument, the value it got (and
its type when the type is wrong) and what was expected. A ``bool`` is never
taken for a number, although Python's ``True`` is the integer 1: a flag passed
where a size belongs is a mistake, not a size.
"""

import math
import numbers
from typing import Any, SupportsInt, cast

import torch

__all__ = [
    'check_device',
    'check_dtype',
    'check_flag',
    'check_int',
    'check_name',
    'check_real',
]


def _shown(value: Any) -> str:
    """``True (type bool)``: the value and its type, for a wrong type.

    A type outside the builtins is named with its module (``numpy.bool``,
    ``torch.Tensor``): NumPy's boolean alone is ``bool``.
    """
    kind = type(value)
    module = '' if kind.__module__ == 'builtins' else f'{kind.__module__}.'
    return f'{value!r} (type {module}{kind.__qualname__})'


def check_int(
    name: str,
    value: Any,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """Return ``value`` as an ``int`` if it is an integer in range.

    Args:
        name: the argument's name, for the message.
        value: what was passed; any integral number but a ``bool``.
        minimum: smallest value accepted (None: no bound).
        maximum: largest value accepted (None: no bound).

    Returns:
        The value as a plain ``int``.

    Raises:
        ValueError: if ``value`` is not an integer or is out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f'{name} must be an integer, got {_shown(value)}')
    number = int(value)
    if minimum is not None and maximum is not None:
        if not minimum <= number <= maximum:
            raise ValueError(
                f'{name} must be between {minimum} and {maximum}, got {number}'
            )
    elif minimum is not None and number < minimum:
        raise ValueError(f'{name} must be at least {minimum}, got {number}')
    elif maximum is not None and number > maximum:
        raise ValueError(f'{name} must be at most {maximum}, got {number}')
    return number


def check_real(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    below: float | None = None,
    positive: bool = False,
) -> float:
    """Return ``value`` as a ``float`` if it is a finite real number in range.

    Args:
        name: the argument's name, for the message.
        value: what was passed; any real number but a ``bool``.
        minimum: smallest value accepted (None: no lower bound).
        below: values must be strictly smaller than this (None: no bound).
        positive: values must be strictly greater than 0.

    Returns:
        The value as a ``float``.

    Raises:
        ValueError: if ``value`` is not a finite real number or is out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f'{name} must be a real number, got {_shown(value)}')
    try:
        number = float(value)
    except OverflowError:  # an int or Fraction beyond a float's range
        whole = int(cast(SupportsInt, value))
        sign = '-' if whole < 0 else ''
        raise ValueError(
            f'{name} must be finite, got {sign}1e{int(math.log10(abs(whole)))} '
            'or so, beyond the range of a float'
        ) from None
    if not math.isfinite(number):
        raise ValueError(f'{name} must be finite, got {number}')
    if positive and number <= 0:
        raise ValueError(f'{name} must be finite and positive, got {number}')
    if minimum is not None and below is not None:
        if not minimum <= number < below:
            raise ValueError(
                f'{name} must be in [{minimum:g}, {below:g}), got {number}'
            )
    elif minimum is not None and number < minimum:
        raise ValueError(f'{name} must be at least {minimum:g}, got {number}')
    elif below is not None and number >= below:
        raise ValueError(f'{name} must be below {below:g}, got {number}')
    return number


def check_flag(name: str, value: Any) -> bool:
    """Return ``value`` if it is a ``bool``.

    Args:
        name: the argument's name, for the message.
        value: what was passed.

    Returns:
        The flag.

    Raises:
        ValueError: if ``value`` is not ``True`` or ``False`` (``0`` and ``1``
            included: they are usually a size in the wrong place).
    """
    if not isinstance(value, bool):
        raise ValueError(f'{name} must be True or False, got {_shown(value)}')
    return value


def check_name(name: str, value: Any) -> str:
    """Return ``value`` if it is a string (a registry name).

    Args:
        name: the argument's name, for the message.
        value: what was passed.

    Returns:
        The string.

    Raises:
        ValueError: if ``value`` is not a string.
    """
    if not isinstance(value, str):
        raise ValueError(f'{name} must be a name (a string), got {_shown(value)}')
    return value


def check_dtype(name: str, value: Any, *, optional: bool = False) -> None:
    """Raise unless ``value`` is a floating torch dtype (or None, if optional).

    Args:
        name: the argument's name, for the message.
        value: what was passed.
        optional: None is accepted too.

    Raises:
        ValueError: if ``value`` is not a floating torch dtype (nor None when
            *optional*).
    """
    if optional and value is None:
        return
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        accepted = 'None or a floating' if optional else 'a floating'
        raise ValueError(
            f'{name} must be {accepted} torch dtype such as torch.float64, '
            f'got {value!r}'
        )


def check_device(name: str, value: Any) -> torch.device:
    """Return ``value`` as a ``torch.device``, if this machine has that device.

    Only a name (``'cpu'``, ``'cuda'``, ``'cuda:1'``, ``'mps'``) or a
    ``torch.device`` is taken: ``torch.device(1)`` would read an integer as
    CUDA device 1, where Lightning's ``devices=1`` is a count.

    Args:
        name: the argument's name, for the message.
        value: what was passed.

    Returns:
        The device.

    Raises:
        ValueError: if ``value`` is not a string or a ``torch.device``, is a
            name torch does not know, is a CUDA or MPS device this machine
            lacks, or is of another type (``meta``, ``xpu``).
    """
    expected = "'cpu', 'cuda' or 'cuda:N'"
    if not isinstance(value, (str, torch.device)):
        raise ValueError(
            f'{name} must be a torch device such as {expected}, got {_shown(value)}'
        )
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f'{name} {value!r} is not a torch device; expected {expected}'
        ) from None
    shown = repr(str(device) if isinstance(value, torch.device) else value)
    if device.type == 'cuda':
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f'{name} {shown}: no CUDA device is available on this machine; '
                "use 'cpu'"
            )
        if device.index is not None and device.index >= count:
            raise ValueError(
                f'{name} {shown}: this machine has {count} CUDA device(s), '
                f'cuda:0 to cuda:{count - 1}'
            )
    elif device.type == 'mps':
        if not torch.backends.mps.is_available():
            raise ValueError(
                f"{name} {shown}: MPS is not available on this machine; use 'cpu'"
            )
    elif device.type != 'cpu':
        raise ValueError(
            f"{name} {shown} is not supported; expected 'cpu', 'cuda', 'cuda:N' "
            "or 'mps'"
        )
    return device
