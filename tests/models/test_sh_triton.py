"""The fused Triton kernel for the spherical harmonics, checked without a GPU.

Three checks run on any machine with Triton installed (it ships with
PyTorch's CUDA wheels on Linux):

* the kernel's arithmetic, run on CPU tensors by Triton's interpreter in a
  subprocess (``TRITON_INTERPRET=1`` must be set before the kernel is
  defined), against the same scipy reference as the tensor path and with
  the same tolerances;
* the real compilation of the kernel to PTX and a cubin for Ampere and
  Hopper (``triton.compile`` with an explicit target needs no GPU), with
  precise, not approximate, sine and cosine;
* the dispatch and argument errors of ``spherical_harmonics(backend=...)``.

``tests/test_cuda.py`` runs the compiled kernel on a GPU.
"""

import json
import os
import re
import subprocess
import sys
from typing import Literal

import numpy as np
import pytest
import torch

from torchgeo_satclip.models import (
    LocationEncoder,
    SphericalHarmonics,
    _sh_triton,
    build_location_encoder,
    spherical_harmonics,
)
from torchgeo_satclip.models.spherical_harmonics import _kernel_dtype

from .test_spherical_harmonics import reference, sample_points

pytestmark = pytest.mark.skipif(
    not _sh_triton.available(), reason='needs the triton package'
)

DEGREES = (1, 2, 3, 10, 40)
# Degrees whose narrow outputs (bfloat16, float16, float64 to float32) are
# checked: the rounding happens once, at the store, whatever the degree, and
# each L = 40 call costs the interpreter seconds (L = 10's polar point at
# 89.999 degrees already rounds subnormal values).
NARROW_DEGREES = (1, 2, 3, 10)

# Runs in a subprocess with TRITON_INTERPRET=1: every case through the public
# function with backend='triton', saved for the test to compare.
INTERPRETED = r"""
import json, sys
import numpy as np
import torch
from torchgeo_satclip.models import SphericalHarmonics, spherical_harmonics
from torchgeo_satclip.models import _sh_triton

assert _sh_triton.interpreted()
points = torch.from_numpy(np.load(sys.argv[1]))
degrees, narrow_degrees = json.loads(sys.argv[2])
out = {}
for L in degrees:
    for dtype in (torch.float32, torch.float64):
        for norm in ('satclip', 'orthonormal'):
            key = f'{L}-{str(dtype)[6:]}-{norm}'
            out[key] = spherical_harmonics(
                points.to(dtype), L, norm, backend='triton'
            )
    if L not in narrow_degrees:
        continue
    f32 = points.float()
    out[f'{L}-bfloat16'] = spherical_harmonics(
        f32, L, dtype=torch.bfloat16, backend='triton'
    )
    out[f'{L}-float16'] = spherical_harmonics(
        f32, L, dtype=torch.float16, backend='triton'
    )
    out[f'{L}-64to32'] = spherical_harmonics(
        points, L, dtype=torch.float32, backend='triton'
    )
    out[f'{L}-64to-bf16'] = spherical_harmonics(
        points, L, dtype=torch.bfloat16, backend='triton'
    )
# A column view (strided points), bf16 coordinates, a size that leaves a
# ragged last block, no points at all, and the module.
wide = torch.cat([points, points], 1)[:, 2:]
out['strided'] = spherical_harmonics(wide, 10, backend='triton')
out['bf16-input'] = spherical_harmonics(points.bfloat16(), 10, backend='triton')
out['ragged'] = spherical_harmonics(points[:257], 10, backend='triton', dtype=None)
out['empty'] = spherical_harmonics(points[:0], 10, backend='triton')
out['module'] = SphericalHarmonics(10, backend='triton')(points)
# Odd L (one program runs a single order), and NaN coordinates.
out['odd'] = spherical_harmonics(points, 7, backend='triton')
nan = points[:8].clone()
nan[3, 1] = float('nan')
nan[5, 0] = float('nan')
out['nan-bf16'] = spherical_harmonics(
    nan.float(), 6, dtype=torch.bfloat16, backend='triton'
)
out['nan'] = spherical_harmonics(nan.float(), 6, backend='triton')
out['strides'] = torch.tensor(out['10-float64-satclip'].stride())
out['ragged-strides'] = torch.tensor(out['ragged'].stride())
aligned = spherical_harmonics(points[:256], 10, backend='triton')
out['aligned-strides'] = torch.tensor(aligned.stride())
out['aligned-contiguous'] = torch.tensor(aligned.T.is_contiguous())
torch.save({k: v.contiguous() for k, v in out.items()}, sys.argv[3])
"""


@pytest.fixture(scope='module')
def interpreted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    """The kernel's outputs, computed by Triton's interpreter on the CPU."""
    tmp = tmp_path_factory.mktemp('sh_triton')
    points = tmp / 'points.npy'
    np.save(points, sample_points(300, seed=3))
    result = tmp / 'out.pt'
    env = {**os.environ, 'TRITON_INTERPRET': '1'}
    run = subprocess.run(
        [
            sys.executable,
            '-c',
            INTERPRETED,
            str(points),
            json.dumps([DEGREES, NARROW_DEGREES]),
            str(result),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out: dict[str, torch.Tensor] = torch.load(result, weights_only=True)
    out['points'] = torch.from_numpy(np.load(points))
    return out


@pytest.mark.parametrize('num_degrees', DEGREES)
@pytest.mark.parametrize('normalization', ['satclip', 'orthonormal'])
def test_interpreted_kernel_matches_reference(
    interpreted: dict[str, torch.Tensor],
    num_degrees: int,
    normalization: Literal['satclip', 'orthonormal'],
) -> None:
    points = interpreted['points'].numpy()
    expected = reference(points, num_degrees, pi_on_m0=normalization == 'satclip')
    f64 = interpreted[f'{num_degrees}-float64-{normalization}']
    f32 = interpreted[f'{num_degrees}-float32-{normalization}']
    assert f64.dtype == torch.float64
    assert f32.dtype == torch.float32
    assert f64.shape == (len(points), num_degrees**2)
    # The tolerances of the tensor path's own tests against this reference.
    np.testing.assert_allclose(f64.numpy(), expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(f32.double().numpy(), expected, rtol=0, atol=5e-4)
    # And against the tensor path itself: the same recurrence.
    torch.testing.assert_close(
        f64,
        spherical_harmonics(interpreted['points'], num_degrees, normalization),
        rtol=0,
        atol=1e-12,
    )


@pytest.mark.parametrize('num_degrees', NARROW_DEGREES)
def test_interpreted_kernel_rounds_like_tensor_to(
    interpreted: dict[str, torch.Tensor], num_degrees: int
) -> None:
    """Narrow outputs are the float32 (or float64) values rounded once,
    bit for bit as ``Tensor.to`` rounds them."""
    f32 = interpreted[f'{num_degrees}-float32-satclip']
    f64 = interpreted[f'{num_degrees}-float64-satclip']
    bf16 = interpreted[f'{num_degrees}-bfloat16']
    assert bf16.dtype == torch.bfloat16
    assert torch.equal(bf16, f32.to(torch.bfloat16))
    assert torch.equal(interpreted[f'{num_degrees}-float16'], f32.to(torch.float16))
    assert torch.equal(interpreted[f'{num_degrees}-64to32'], f64.to(torch.float32))
    assert torch.equal(interpreted[f'{num_degrees}-64to-bf16'], f64.to(torch.bfloat16))


def test_interpreted_kernel_odd_inputs(interpreted: dict[str, torch.Tensor]) -> None:
    points = interpreted['points']
    f64 = interpreted['10-float64-satclip']
    # The result is laid out as the tensor path's, a transposed view, of rows
    # padded to a multiple of 16 points (the kernel's stores stay vectorised).
    assert tuple(interpreted['aligned-strides'].tolist()) == (1, 256)
    assert bool(interpreted['aligned-contiguous'])
    padded = -(-len(points) // 16) * 16
    assert padded > len(points)
    assert tuple(interpreted['strides'].tolist()) == (1, padded)
    assert tuple(interpreted['ragged-strides'].tolist()) == (1, 272)
    assert torch.equal(interpreted['strided'], f64)
    assert torch.equal(interpreted['module'], f64)
    assert torch.equal(interpreted['ragged'], f64[:257])
    assert interpreted['empty'].shape == (0, 100)
    torch.testing.assert_close(
        interpreted['odd'],
        spherical_harmonics(points, 7),
        rtol=0,
        atol=1e-12,
    )
    bf16_points = interpreted['bf16-input']
    assert bf16_points.dtype == torch.float32
    torch.testing.assert_close(
        bf16_points,
        spherical_harmonics(points.bfloat16(), 10),
        rtol=0,
        atol=5e-5,
    )


@pytest.mark.parametrize('arch', [80, 90])
@pytest.mark.parametrize(
    ('compute', 'stored'),
    [('fp32', 'fp32'), ('fp32', 'bf16'), ('fp32', 'fp16'), ('fp64', 'fp64')],
)
@pytest.mark.parametrize('aligned', [True, False])
def test_kernel_compiles_for_gpus(
    arch: int, compute: str, stored: str, aligned: bool
) -> None:
    """The real kernel compiles for Ampere and Hopper, with precise trig.

    ``aligned`` gives the kernel the alignment Triton infers at launch for
    16-byte-aligned tensors and a point count divisible by 16 (the usual
    batch); without it, the variant a ragged batch compiles to. The row
    stride is a multiple of 16 either way (the launch pads the rows), so
    both store several points per instruction.
    """
    triton = pytest.importorskip('triton')
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    signature = {
        'lonlat_ptr': f'*{compute}',
        'out_ptr': f'*{stored}',
        'coef_ptr': f'*{compute}',
        'const_ptr': f'*{compute}',
        'num_points': 'i32',
        'row_stride': 'i32',
        'stride_point': 'i32',
        'stride_coord': 'i32',
        'DEGREES': 'constexpr',
        'BLOCK': 'constexpr',
        'PRECISE': 'constexpr',
        'SOFT_BF16': 'constexpr',
    }
    block = _sh_triton._block(torch.float64 if compute == 'fp64' else torch.float32)
    constants = {'DEGREES': 40, 'BLOCK': block, 'PRECISE': True, 'SOFT_BF16': False}
    hint = [['tt.divisibility', 16]]
    # Pointers 0-3, num_points (4) when aligned, the row stride (5) always.
    attrs = {(i,): hint for i in [0, 1, 2, 3, *([4] if aligned else []), 5]}
    source = ASTSource(
        fn=_sh_triton._kernel, signature=signature, constexprs=constants, attrs=attrs
    )
    try:
        compiled = triton.compile(
            source, target=GPUTarget('cuda', arch, 32), options={'num_warps': 4}
        )
    except FileNotFoundError as error:  # pragma: no cover - no ptxas shipped
        pytest.skip(f'Triton has no CUDA toolchain here: {error}')
    ptx = compiled.asm['ptx']
    assert len(compiled.asm['cubin']) > 0
    assert 'sin.approx' not in ptx
    assert 'cos.approx' not in ptx
    # The hardware rounds to bf16 (cvt.rn), which keeps NaN a NaN.
    assert ('cvt.rn.bf16' in ptx) == (stored == 'bf16')
    # Several points per store instruction, never one value at a time.
    stores = set(re.findall(r'st\.global[.\w]*', ptx))
    assert stores
    assert all('.v' in store for store in stores), stores


def test_interpreted_kernel_keeps_nan(interpreted: dict[str, torch.Tensor]) -> None:
    """A NaN coordinate gives NaN harmonics where the recurrence does (all but
    the constant Y(0, 0); a NaN longitude leaves the m = 0 columns), in
    every dtype: never a number in their place."""
    points = interpreted['points'][:8].float()
    points[3, 1] = float('nan')
    points[5, 0] = float('nan')
    recurrence = torch.isnan(spherical_harmonics(points, 6))
    assert recurrence[3, 1:].all()
    assert recurrence[5].any()
    assert torch.equal(torch.isnan(interpreted['nan']), recurrence)
    assert torch.equal(torch.isnan(interpreted['nan-bf16']), recurrence)
    rows = [i for i in range(8) if i not in (3, 5)]
    assert torch.equal(
        interpreted['nan-bf16'][rows], interpreted['nan'][rows].to(torch.bfloat16)
    )


def test_kernel_dtype_rounds_only_where_exact() -> None:
    f32, f64, bf16, f16 = torch.float32, torch.float64, torch.bfloat16, torch.float16
    assert _kernel_dtype(f32, f32) == f32
    assert _kernel_dtype(f32, bf16) == bf16
    assert _kernel_dtype(f32, f16) == f16
    assert _kernel_dtype(f64, f32) == f32
    # float64 to bf16 in one rounding is not what float64 -> float32 -> bf16
    # gives; the kernel stores float64 and Tensor.to rounds once.
    assert _kernel_dtype(f64, bf16) == f64
    assert _kernel_dtype(f32, f64) == f32


def test_auto_on_cpu_is_the_tensor_path() -> None:
    points = torch.from_numpy(sample_points(50))
    auto = spherical_harmonics(points, 12)
    assert torch.equal(auto, spherical_harmonics(points, 12, backend='torch'))
    assert not _sh_triton.interpreted()


def test_dtype_argument_on_the_tensor_path() -> None:
    points = torch.from_numpy(sample_points(50)).float()
    full = spherical_harmonics(points, 10)
    narrow = spherical_harmonics(points, 10, dtype=torch.bfloat16)
    assert narrow.dtype == torch.bfloat16
    assert torch.equal(narrow, full.to(torch.bfloat16))
    assert narrow.stride() == full.stride()
    wide = spherical_harmonics(points, 10, dtype=torch.float64)
    assert torch.equal(wide, full.double())


def test_backend_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    points = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"backend must be 'auto', 'torch' or"):
        spherical_harmonics(points, 4, backend='cuda')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"backend must be .* got 'fast'"):
        SphericalHarmonics(4, backend='fast')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='runs on CUDA tensors, got lonlat on cpu'):
        spherical_harmonics(points, 4, backend='triton')
    tracked = points.clone().requires_grad_(True)
    with pytest.raises(ValueError, match='computes no gradient'):
        spherical_harmonics(tracked, 4, backend='triton')
    with pytest.raises(ValueError, match='dtype must be None or a floating'):
        spherical_harmonics(points, 4, dtype=torch.int32)
    with pytest.raises(ValueError, match='dtype must be None or a floating'):
        spherical_harmonics(points, 4, dtype='bfloat16')  # type: ignore[arg-type]
    monkeypatch.setattr(_sh_triton, 'available', lambda: False)
    with pytest.raises(RuntimeError, match='needs the triton package'):
        spherical_harmonics(points, 4, backend='triton')


def test_environment_switch_turns_the_kernel_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TORCHGEO_SATCLIP_SH_KERNEL=0 keeps 'auto' on the recurrence; the
    check is made before anything else about the device (here: a CPU tensor
    claimed to be on CUDA)."""
    module = sys.modules['torchgeo_satclip.models.spherical_harmonics']

    class Device:
        type = 'cuda'

    class Points:
        device = Device()

    monkeypatch.setenv('TORCHGEO_SATCLIP_SH_KERNEL', '0')
    assert module._auto_kernel(Points()) is False
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device: (9, 0))
    monkeypatch.setenv('TORCHGEO_SATCLIP_SH_KERNEL', '1')
    assert module._auto_kernel(Points()) is True
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device: (7, 5))
    assert module._auto_kernel(Points()) is False
    # torch.compile / torch.export trace the recurrence (fullgraph too).
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device: (9, 0))
    monkeypatch.setattr(torch.compiler, 'is_compiling', lambda: True)
    assert module._auto_kernel(Points()) is False


def test_fullgraph_compile_traces_the_recurrence() -> None:
    """An encoder compiles with fullgraph=True (on CUDA too: 'auto' picks the
    recurrence while compiling)."""
    encoder = build_location_encoder(
        legendre_polys=6, dtype=torch.float32, dropout=0.0, validate=False
    ).eval()
    points = torch.from_numpy(sample_points(40)).float()
    with torch.no_grad():
        compiled = torch.compile(encoder, fullgraph=True)(points)
        torch.testing.assert_close(compiled, encoder(points), rtol=1e-5, atol=1e-5)


def test_module_backend_in_repr() -> None:
    assert 'backend' not in repr(SphericalHarmonics(5))
    assert "backend='torch'" in repr(SphericalHarmonics(5, backend='torch'))
    assert SphericalHarmonics(5, backend='torch').state_dict() == {}


class _Recorder:
    """Keeps the dtype of the features a network receives."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.dtypes: list[torch.dtype] = []
        module.register_forward_pre_hook(self.hook)

    def hook(self, module: torch.nn.Module, args: tuple[torch.Tensor]) -> None:
        self.dtypes.append(args[0].dtype)


@pytest.mark.parametrize('network', ['siren', 'fcnet', 'mlp', 'linear'])
def test_encoder_under_autocast_gets_narrow_features(network: str) -> None:
    """Under autocast a float32 network receives bf16 harmonics: the values its
    first linear layer would have rounded them to, so its output is
    bit-identical to feeding it the float32 harmonics."""
    torch.manual_seed(0)
    encoder = build_location_encoder(
        network=network, legendre_polys=6, dtype=torch.float32, dropout=0.0
    ).eval()
    points = torch.from_numpy(sample_points(40)).float()
    recorder = _Recorder(encoder.nnet)
    with torch.autocast('cpu', dtype=torch.bfloat16), torch.no_grad():
        out = encoder(points)
        expected = encoder.nnet(spherical_harmonics(points, 6))
    assert recorder.dtypes[0] == torch.bfloat16
    assert recorder.dtypes[1] == torch.float32
    assert torch.equal(out, expected)
    # Without autocast, the features are float32 as always.
    with torch.no_grad():
        encoder(points)
    assert recorder.dtypes[2] == torch.float32


def test_encoder_keeps_wide_features_where_autocast_would_not_narrow() -> None:
    points = torch.from_numpy(sample_points(20))
    double = build_location_encoder(legendre_polys=4, dropout=0.0).eval()
    recorder = _Recorder(double.nnet)
    with torch.autocast('cpu', dtype=torch.bfloat16), torch.no_grad():
        double(points)
    # float64 is never autocast: the network gets float64 features.
    assert recorder.dtypes == [torch.float64]
    # A network this package does not know might not start with a linear
    # layer: it gets the features in its own dtype.
    other = LocationEncoder(
        SphericalHarmonics(4), torch.nn.Sequential(torch.nn.Linear(16, 8))
    )
    recorder = _Recorder(other.nnet)
    with torch.autocast('cpu', dtype=torch.bfloat16), torch.no_grad():
        other(points.float())
    assert recorder.dtypes == [torch.float32]


def test_auto_falls_back_once_when_the_kernel_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kernel variant that cannot compile or launch warns once; the
    recurrence gives the same values for it from then on, while other
    variants still try the kernel. Device errors are not such failures."""
    # The package re-exports the function under the submodule's name.
    module = sys.modules['torchgeo_satclip.models.spherical_harmonics']

    calls: list[int] = []

    def broken(lonlat: torch.Tensor, num_degrees: int, *args: object) -> torch.Tensor:
        calls.append(num_degrees)
        raise RuntimeError('no kernel image is available for this device')

    monkeypatch.setattr(module, '_KERNEL_FAILED', {})
    monkeypatch.setattr(module, '_auto_kernel', lambda lonlat: True)
    monkeypatch.setattr(_sh_triton, 'fused_spherical_harmonics', broken)
    points = torch.from_numpy(sample_points(30)).float()
    expected = spherical_harmonics(points, 8, backend='torch')
    with pytest.warns(
        RuntimeWarning, match='failed for L = 8 on cpu .*no kernel image'
    ):
        first = spherical_harmonics(points, 8)
    assert torch.equal(first, expected)
    assert torch.equal(spherical_harmonics(points, 8), expected)
    assert calls == [8]
    # Another variant (here another L) still tries the kernel.
    with pytest.warns(RuntimeWarning, match='failed for L = 5'):
        spherical_harmonics(points, 5)
    assert calls == [8, 5]
    # An explicit backend='triton' is not redirected by an 'auto' failure:
    # it still runs the kernel, and still refuses points that need a gradient.
    with monkeypatch.context() as patch:
        patch.setattr(module, '_use_kernel', lambda *args: True)
        with pytest.raises(RuntimeError, match='no kernel image'):
            spherical_harmonics(points, 8, backend='triton')
    assert calls == [8, 5, 8]
    with pytest.raises(ValueError, match='computes no gradient'):
        spherical_harmonics(points.clone().requires_grad_(True), 8, backend='triton')
    # bf16 storage is another variant too.
    with pytest.warns(RuntimeWarning, match='failed for L = 8'):
        narrow = spherical_harmonics(points, 8, dtype=torch.bfloat16)
    assert torch.equal(narrow, expected.to(torch.bfloat16))

    for error in (
        torch.OutOfMemoryError('CUDA out of memory'),
        torch.AcceleratorError('CUDA error: an illegal memory access'),
        RuntimeError('CUDA error: device-side assert triggered'),
    ):

        def failing(*args: object, error: Exception = error) -> torch.Tensor:
            raise error

        monkeypatch.setattr(module, '_KERNEL_FAILED', {})
        monkeypatch.setattr(_sh_triton, 'fused_spherical_harmonics', failing)
        with pytest.raises(type(error), match='CUDA'):
            spherical_harmonics(points, 8)
        assert module._KERNEL_FAILED == {}

    # Triton's own launch errors ('Triton Error [CUDA]: ...') fall back only
    # when the device still synchronises afterwards.
    def triton_error(*args: object) -> torch.Tensor:
        raise RuntimeError('Triton Error [CUDA]: an illegal memory access')

    monkeypatch.setattr(_sh_triton, 'fused_spherical_harmonics', triton_error)
    monkeypatch.setattr(module, '_device_broken', lambda device: True)
    with pytest.raises(RuntimeError, match='Triton Error'):
        spherical_harmonics(points, 8)
    assert module._KERNEL_FAILED == {}
    monkeypatch.setattr(module, '_device_broken', lambda device: False)
    with pytest.warns(RuntimeWarning, match='Triton Error'):
        assert torch.equal(spherical_harmonics(points, 8), expected)


def test_device_broken_is_a_failed_synchronisation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = sys.modules['torchgeo_satclip.models.spherical_harmonics']
    assert not module._device_broken(torch.device('cpu'))
    seen: list[torch.device] = []

    def synchronize(device: torch.device) -> None:
        seen.append(device)

    monkeypatch.setattr(torch.cuda, 'synchronize', synchronize)
    monkeypatch.setattr(torch.cuda, 'is_current_stream_capturing', lambda: False)
    assert not module._device_broken(torch.device('cuda', 1))
    assert seen == [torch.device('cuda', 1)]

    def sticky(device: torch.device) -> None:
        raise RuntimeError('CUDA error: an illegal memory access was encountered')

    monkeypatch.setattr(torch.cuda, 'synchronize', sticky)
    assert module._device_broken(torch.device('cuda', 0))
    # Never synchronised while a CUDA graph is being captured.
    monkeypatch.setattr(torch.cuda, 'is_current_stream_capturing', lambda: True)
    assert not module._device_broken(torch.device('cuda', 0))
