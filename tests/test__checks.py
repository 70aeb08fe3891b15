"""The shared argument checks: what they accept, and what their messages say."""

from fractions import Fraction

import pytest

from torchgeo_satclip._checks import check_real


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
