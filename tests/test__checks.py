"""The shared argument checks: what they accept, and what their messages say."""

from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest
import torch

from torchgeo_satclip._checks import check_device, check_flag, check_int, check_real


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


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has no CUDA device (whatever it really has)."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 0)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has two CUDA devices (whatever it really has)."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)


@pytest.mark.parametrize('value', ['cpu', 'cpu:0', torch.device('cpu')])
def test_device_cpu_is_taken(value: str | torch.device, no_cuda: None) -> None:
    assert check_device('device', value) == torch.device(value)


@pytest.mark.parametrize('value', ['cuda', 'cuda:1', torch.device('cuda', 0)])
def test_device_cuda_this_machine_has_is_taken(
    value: str | torch.device, two_gpus: None
) -> None:
    assert check_device('device', value) == torch.device(value)


@pytest.mark.parametrize(
    ('value', 'message'),
    [
        (
            'gpu',
            "dev 'gpu' is not a torch device; expected 'cpu', 'cuda' or 'cuda:N'",
        ),
        (
            'cuda:-1',
            "dev 'cuda:-1' is not a torch device; expected 'cpu', 'cuda' or 'cuda:N'",
        ),
        (
            1,
            "dev must be a torch device such as 'cpu', 'cuda' or 'cuda:N', "
            'got 1 (type int)',
        ),
        (
            True,
            "dev must be a torch device such as 'cpu', 'cuda' or 'cuda:N', "
            'got True (type bool)',
        ),
        (
            None,
            "dev must be a torch device such as 'cpu', 'cuda' or 'cuda:N', "
            'got None (type NoneType)',
        ),
        (
            'cuda',
            "dev 'cuda': no CUDA device is available on this machine; use 'cpu'",
        ),
        (
            torch.device('cuda', 1),
            "dev 'cuda:1': no CUDA device is available on this machine; use 'cpu'",
        ),
        (
            'meta',
            "dev 'meta' is not supported; expected 'cpu', 'cuda', 'cuda:N' or 'mps'",
        ),
    ],
)
def test_device_refused_names_the_argument_and_the_value(
    value: object, message: str, no_cuda: None
) -> None:
    with pytest.raises(ValueError, match=r'^dev ') as raised:
        check_device('dev', value)
    assert str(raised.value) == message


def test_device_cuda_index_beyond_this_machine_is_refused(two_gpus: None) -> None:
    with pytest.raises(ValueError, match=r'^dev ') as raised:
        check_device('dev', 'cuda:2')
    assert str(raised.value) == (
        "dev 'cuda:2': this machine has 2 CUDA device(s), cuda:0 to cuda:1"
    )


def test_device_mps_this_machine_lacks_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.backends.mps, 'is_available', lambda: False)
    with pytest.raises(ValueError, match=r'^dev ') as raised:
        check_device('dev', 'mps')
    assert str(raised.value) == (
        "dev 'mps': MPS is not available on this machine; use 'cpu'"
    )
