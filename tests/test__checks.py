"""The shared argument checks: what they accept, and what their messages say."""

from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest
import torch

from torchgeo_satclip._checks import check_flag, check_int, check_real


@pytest.mark.parametrize('value', [10**400, -(10**400), Fraction(10**400, 3)])
def test_real_too_large_for_a_float_is_refused_by_name(value: int | Fraction) -> None:
    """A number beyond a float's range is refused like inf, naming the argument.

    ``float()`` of it raised OverflowError ('int too large to convert to
    float'), which named neither the argument nor what was expected.
    """
    with pytest.raises(ValueError, match=r'^lr must be finite, got ') as raised:
        check_real('lr', value)
    sign = '-' if value < 0 else ''
    assert str(raised.value) == (
        f'lr must be finite, got {sign}1e{399 if isinstance(value, Fraction) else 400} '
        'or so, beyond the range of a float'
    )


@pytest.mark.parametrize(
    ('check', 'shown'),
    [
        (lambda: check_flag('pin', np.True_), 'got np.True_ (type numpy.bool)'),
        (lambda: check_int('size', np.True_), 'got np.True_ (type numpy.bool)'),
        (lambda: check_int('size', torch.tensor(3)), '(type torch.Tensor)'),
        (lambda: check_real('lr', '0.1'), "got '0.1' (type str)"),
    ],
)
def test_wrong_type_is_named_with_its_module(
    check: Callable[[], object], shown: str
) -> None:
    """A type outside the builtins is named with its module.

    NumPy's boolean is named ``bool``: the refusal of a flag said ``pin must
    be True or False, got np.True_ (type bool)``, a bool refused as no bool.
    """
    with pytest.raises(ValueError, match='must be') as raised:
        check()
    assert shown in str(raised.value)
