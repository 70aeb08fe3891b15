"""Real spherical-harmonics positional encoding, computed by a stable recurrence.

SatCLIP's location encoders start from the real spherical harmonics of degrees
``l = 0 .. L-1``. The original implementation evaluates each ``(l, m)`` from a
generated closed-form polynomial, which loses precision at high degree near the
poles (float64) and overflows above ``L = 30`` (float32). This module evaluates
the same functions with the standard three-term recurrence for *normalised*
associated Legendre functions, vectorised over the order ``m``: one loop over
the degree ``l`` (``O(L)`` tensor operations), no per-``(l, m)`` expression,
exact to float rounding at every latitude including the poles.

Conventions (SatCLIP's, the default):

* angles: ``phi = radians(lon + 180)`` in ``[0, 2 pi]`` and
  ``theta = radians(lat + 90)`` in ``[0, pi]`` (theta is measured from the
  **south** pole, so ``cos(theta) = -sin(lat)`` and ``sin(theta) = cos(lat)``);
* column ``l * l + l + m`` holds ``Y(l, m)``, ``m = -l .. l``;
* no Condon-Shortley phase;
* ``m > 0``: ``sqrt(2) N(l, m) P_l^m(cos theta) cos(m phi)``;
  ``m < 0``: ``sqrt(2) N(l, |m|) P_l^|m|(cos theta) sin(|m| phi)``;
  ``m = 0``: ``pi N(l, 0) P_l(cos theta)``, with
  ``N(l, m) = sqrt((2l + 1) / (4 pi) (l - m)! / (l + m)!)``.

The factor ``pi`` on the ``m = 0`` columns comes from a missing bracket in the
original code generator; the released checkpoints were trained with it, so it
is the default here. ``normalization='orthonormal'`` drops it and gives the
orthonormal real basis (``integral of Y(l, m) Y(l', m') dOmega = delta``).

On CUDA, when no gradient with respect to the points is needed (the usual
case: coordinates are data, not parameters), the same recurrence runs as one
fused Triton kernel (``_sh_triton``) that keeps every intermediate value in
registers and writes each harmonic once, in the dtype asked for. The
``backend`` argument chooses explicitly.
"""

import math
import os
import warnings
from functools import lru_cache
from typing import Literal

import torch
from torch import Tensor, nn

from .._checks import check_dtype, check_int
from ..geo import check_lonlat_shape, compute_dtype

__all__ = ['SphericalHarmonics', 'spherical_harmonics']

Normalization = Literal['satclip', 'orthonormal']
Backend = Literal['auto', 'torch', 'triton']

#: Largest number of degrees accepted (degrees ``0 .. 99``).
MAX_LEGENDRE_POLYS = 100


@lru_cache(maxsize=64)
def _tables(
    num_degrees: int, dtype: torch.dtype, device: torch.device
) -> list[tuple[Tensor, Tensor | None, float]]:
    """Recurrence coefficients and output indices for ``num_degrees`` degrees.

    The normalised associated Legendre functions
    ``Q(l, m) = N(l, m) P_l^m(x)`` (no Condon-Shortley phase) obey, for
    ``x = cos(theta)`` and ``s = sin(theta)``::

        Q(0, 0) = 1 / sqrt(4 pi)
        Q(l, m) = a(l, m) x Q(l-1, m) - a(l, m) b(l, m) Q(l-2, m),  m <= l-2
        Q(l, l-1) = sqrt(2l + 1) x Q(l-1, l-1)
        Q(l, l) = sqrt((2l + 1) / (2l)) s Q(l-1, l-1)

    with ``a(l, m) = sqrt((4l^2 - 1) / (l^2 - m^2))`` and
    ``b(l, m) = sqrt(((l-1)^2 - m^2) / (4 (l-1)^2 - 1))``. Coefficients are
    computed in float64 and then cast, so float32 tables are correctly
    rounded.

    Args:
        num_degrees: number of degrees ``L``.
        dtype: floating dtype of the coefficient tables.
        device: device of the tables.

    Returns:
        For each degree ``l >= 1``: the ``(l, 1)`` column of ``x Q(l-1, m)``
        coefficients (``m = 0 .. l-1``), the ``(l-1, 1)`` column of
        ``Q(l-2, m)`` coefficients (None for ``l = 1``) and the diagonal
        factor of ``s Q(l-1, l-1)``.
    """
    # Normal tensors even when the first call runs under inference mode (as
    # `embed` and Lightning's validation do): an inference tensor kept in the
    # cache would make every later call with a gradient fail.
    with torch.inference_mode(False):
        return _build_tables(num_degrees, dtype, device)


def _build_tables(
    num_degrees: int, dtype: torch.dtype, device: torch.device
) -> list[tuple[Tensor, Tensor | None, float]]:
    """The body of :func:`_tables`."""
    steps: list[tuple[Tensor, Tensor | None, float]] = []
    for degree in range(1, num_degrees):
        orders = torch.arange(degree, dtype=torch.float64)
        ax = torch.empty(degree, dtype=torch.float64)
        ax[degree - 1] = math.sqrt(2.0 * degree + 1.0)
        b: Tensor | None = None
        if degree >= 2:
            low = orders[: degree - 1]
            a = torch.sqrt((4.0 * degree**2 - 1.0) / (degree**2 - low**2))
            prev = degree - 1
            ax[: degree - 1] = a
            b = (a * torch.sqrt((prev**2 - low**2) / (4.0 * prev**2 - 1.0)))[:, None]
            b = b.to(device=device, dtype=dtype)
        diag = math.sqrt((2.0 * degree + 1.0) / (2.0 * degree))
        steps.append((ax[:, None].to(device=device, dtype=dtype), b, diag))

    return steps


def _check_arguments(
    legendre_polys: int, normalization: str, backend: str = 'auto'
) -> int:
    """Raise ``ValueError`` for a bad degree count, basis or backend.

    A bool is refused as a degree count too.

    Returns:
        ``legendre_polys`` as a plain ``int`` (a NumPy integer kept on the
        module would reach an exported checkpoint's ``hyper_parameters``,
        which ``torch.load(weights_only=True)`` then refuses).
    """
    degrees = check_int(
        'legendre_polys', legendre_polys, minimum=1, maximum=MAX_LEGENDRE_POLYS
    )
    if normalization not in ('satclip', 'orthonormal'):
        raise ValueError(
            f"normalization must be 'satclip' or 'orthonormal', got {normalization!r}"
        )
    if backend not in ('auto', 'torch', 'triton'):
        raise ValueError(
            f"backend must be 'auto', 'torch' or 'triton', got {backend!r}"
        )
    return degrees


#: Environment variable that, set to ``0``, keeps ``backend='auto'`` on the
#: tensor recurrence everywhere.
KERNEL_SWITCH = 'TORCHGEO_SATCLIP_SH_KERNEL'

#: Errors of the device, not of the kernel: never a reason to fall back
#: (``torch.AcceleratorError`` exists from torch 2.8).
_DEVICE_ERRORS: tuple[type[Exception], ...] = (
    torch.cuda.OutOfMemoryError,
    *(getattr(torch, name) for name in ('AcceleratorError',) if hasattr(torch, name)),
)

#: The kernel variants (device, L, compute and stored dtypes) that failed to
#: compile or launch under ``backend='auto'``, and why: ``'auto'`` runs the
#: recurrence for them from then on (after one warning each).
_KERNEL_FAILED: dict[tuple[str, int, torch.dtype, torch.dtype], str] = {}


def _auto_kernel(lonlat: Tensor) -> bool:
    """Whether ``backend='auto'`` runs the kernel for points on this device.

    On CUDA devices of compute capability 8.0 (Ampere) and newer, the ones
    Triton supports, when Triton is installed, unless the environment
    variable ``TORCHGEO_SATCLIP_SH_KERNEL`` is ``0`` (the switch for a whole
    run, encoders loaded from checkpoints included), and not while
    ``torch.compile`` or ``torch.export`` traces the call.
    """
    if lonlat.device.type != 'cuda' or os.environ.get(KERNEL_SWITCH) == '0':
        return False
    if torch.compiler.is_compiling():
        # torch.compile and torch.export trace the recurrence (fullgraph
        # included), which the compiler fuses itself; the kernel is eager.
        return False
    from . import _sh_triton

    return _sh_triton.available() and torch.cuda.get_device_capability(
        lonlat.device
    ) >= (8, 0)


def _device_broken(device: torch.device) -> bool:
    """Whether a CUDA *device* fails to synchronise (a sticky error).

    After a kernel failed, a device that still synchronises was left intact
    (the kernel could not be compiled or loaded, or was refused at launch),
    and the recurrence can run there; one that does not is in an error
    state every later call will meet too.
    """
    if device.type != 'cuda' or torch.cuda.is_current_stream_capturing():
        # Synchronising would break a CUDA graph being captured.
        return False
    try:
        torch.cuda.synchronize(device)
    except Exception:
        return True
    return False


def _use_kernel(lonlat: Tensor, backend: str, track: bool) -> bool:
    """Whether to run the fused Triton kernel (see the module docstring).

    Raises:
        ValueError: for ``backend='triton'`` with points that need a gradient
            or live where the kernel cannot run.
        RuntimeError: for ``backend='triton'`` without Triton.
    """
    if backend == 'torch':
        return False
    if backend == 'auto':
        return not track and _auto_kernel(lonlat)
    if track:
        raise ValueError(
            "backend='triton' computes no gradient, but lonlat requires one: "
            "use backend='auto' or 'torch'"
        )
    from . import _sh_triton

    if not _sh_triton.available():
        raise RuntimeError(
            "backend='triton' needs the triton package, which could not be "
            "imported (it ships with PyTorch's CUDA wheels on Linux); use "
            "backend='torch'"
        )
    if lonlat.device.type != 'cuda' and not _sh_triton.interpreted():
        raise ValueError(
            f"backend='triton' runs on CUDA tensors, got lonlat on "
            f'{lonlat.device} (set TRITON_INTERPRET=1 before importing '
            f"torchgeo_satclip to run it on the CPU in Triton's interpreter, "
            f'for tests)'
        )
    return True


def _kernel_dtype(compute: torch.dtype, wanted: torch.dtype) -> torch.dtype:
    """The dtype the kernel stores its values in.

    ``wanted`` where the kernel rounds to it exactly as ``Tensor.to`` would
    (the same dtype, a narrower one from float32, float32 from float64), else
    the compute dtype, cast afterwards.
    """
    if wanted == compute:
        return wanted
    if compute == torch.float32 and wanted in (torch.bfloat16, torch.float16):
        return wanted
    if compute == torch.float64 and wanted == torch.float32:
        return wanted
    return compute


def spherical_harmonics(
    lonlat: Tensor,
    legendre_polys: int = 10,
    normalization: Normalization = 'satclip',
    *,
    dtype: torch.dtype | None = None,
    backend: Backend = 'auto',
) -> Tensor:
    """Evaluate the real spherical harmonics at (lon, lat) points.

    Args:
        lonlat: ``(N, 2)`` floating tensor of **(longitude, latitude) in
            degrees**, longitude first, lon in [-180, 180], lat in [-90, 90].
            Ranges are not checked here (see
            :class:`~torchgeo_satclip.models.LocationEncoder`, which does).
        legendre_polys: number of degrees ``L`` (degrees ``0 .. L-1``), from 1
            to 100. The output has ``L * L`` columns.
        normalization: ``'satclip'`` (default) reproduces the released
            checkpoints' basis, with the factor ``pi`` on every ``m = 0``
            column; ``'orthonormal'`` gives the orthonormal real basis.
        dtype: dtype of the result. The values are always computed in
            float64 (float64 input) or float32 (narrower input) and rounded
            once to ``dtype``: ``torch.bfloat16`` gives exactly
            ``spherical_harmonics(...).to(torch.bfloat16)``, but the fused
            kernel writes it directly, at half the memory traffic. Default:
            the compute dtype.
        backend: ``'auto'`` (default) runs the fused Triton kernel on CUDA
            (compute capability 8.0 and newer) when no gradient with respect
            to ``lonlat`` is needed, Triton is installed and the environment
            variable ``TORCHGEO_SATCLIP_SH_KERNEL`` is not ``0``, and the
            tensor recurrence otherwise (also, after one ``RuntimeWarning``, from
            the first time the kernel fails to compile or launch);
            ``'torch'`` always runs the recurrence; ``'triton'`` always runs
            the kernel.

    Returns:
        ``(N, L * L)`` tensor on ``lonlat``'s device, in ``dtype`` (default
        float64 for float64 input and float32 for any narrower floating
        input: float32, float16, bfloat16). Differentiable with respect to
        ``lonlat``. The result is a transposed view of an ``(L * L, N)``
        buffer (points vary fastest in memory, which makes every step a long
        vectorised loop; the fused kernel pads the rows to a multiple of 16
        points and returns the first ``N`` columns); call ``.contiguous()``
        if a row-major copy is needed.

    Raises:
        ValueError: if ``legendre_polys`` is out of range, ``normalization``,
            ``backend`` or ``dtype`` is unknown, ``lonlat`` is not a floating
            ``(N, 2)`` tensor, or ``backend='triton'`` is asked for points
            that need a gradient or are not on a CUDA device.
        RuntimeError: if ``backend='triton'`` and Triton is not installed.
    """
    _check_arguments(legendre_polys, normalization, backend)
    check_dtype('dtype', dtype, optional=True)
    check_lonlat_shape(lonlat)
    # bf16 cannot even hold a longitude to better than one degree: narrow
    # inputs are encoded in float32 and the cast, if wanted, comes after.
    compute = compute_dtype(lonlat.dtype)
    wanted = compute if dtype is None else dtype
    track = torch.is_grad_enabled() and lonlat.requires_grad
    stored = _kernel_dtype(compute, wanted)
    variant = (str(lonlat.device), legendre_polys, compute, stored)
    failed = backend == 'auto' and variant in _KERNEL_FAILED
    if not failed and _use_kernel(lonlat, backend, track):
        from . import _sh_triton

        try:
            fused: Tensor = _sh_triton.fused_spherical_harmonics(
                lonlat, legendre_polys, normalization, compute, stored
            )
        except _DEVICE_ERRORS:
            raise  # the device's trouble, not the kernel's
        except Exception as error:
            # A kernel that cannot compile or load on this machine must not
            # stop a run that asked for nothing in particular; a device left
            # broken by the launch (an illegal address, a launch failure:
            # Triton reports them as 'Triton Error [CUDA]: ...') must.
            if (
                backend != 'auto'
                or 'CUDA error' in str(error)
                or _device_broken(lonlat.device)
            ):
                raise
            _KERNEL_FAILED[variant] = f'{type(error).__name__}: {error}'
            warnings.warn(
                f'the fused spherical-harmonics kernel failed for L = '
                f'{legendre_polys} on {lonlat.device} ({_KERNEL_FAILED[variant]}); '
                'the tensor recurrence computes the same values there from now '
                "on (backend='torch' silences this)",
                RuntimeWarning,
                stacklevel=2,
            )
        else:
            return fused if stored == wanted else fused.to(wanted)
    out = _recurrence(lonlat, legendre_polys, normalization, compute, track)
    return out if wanted == compute else out.to(wanted)


def _recurrence(
    lonlat: Tensor,
    legendre_polys: int,
    normalization: str,
    dtype: torch.dtype,
    track: bool,
) -> Tensor:
    """The tensor path of :func:`spherical_harmonics`, in ``dtype``."""
    size = legendre_polys
    steps = _tables(size, dtype, lonlat.device)

    # Rows layout: one row per function, points along the last (contiguous) dim.
    coords = lonlat.to(dtype).T.contiguous()
    lon = torch.deg2rad(coords[0:1])
    lat_deg = coords[1:2]
    # theta = lat + 90 deg (from the south pole): cos(theta) = -sin(lat) and
    # sin(theta) = cos(lat). Near the poles (|lat| >= 45) both come from the
    # colatitude 90 - |lat|, which is exact in floating point there (Sterbenz),
    # so sin(theta) is exactly 0 at lat = +-90 even in float32, where
    # cos(deg2rad(90)) would be -4.4e-8. No clamping anywhere.
    lat = torch.deg2rad(lat_deg)
    colat = torch.deg2rad(90.0 - lat_deg.abs())
    polar = lat_deg.abs() >= 45.0
    x = torch.where(polar, -torch.sign(lat_deg) * torch.cos(colat), -torch.sin(lat))
    s = torch.where(polar, torch.sin(colat), torch.cos(lat))

    # Trigonometric rows with the column factors folded in: sqrt(2) sin(m phi)
    # and sqrt(2) cos(m phi) for m = 1 .. L-1. With phi = lon + pi,
    # cos(m phi) = (-1)^m cos(m lon): the smaller argument keeps float32
    # accurate at high order. The sine rows are stored in reverse order
    # (m = L-1 .. 1) so that each degree's m < 0 block is a contiguous slice.
    m0 = math.pi if normalization == 'satclip' else 1.0
    orders = torch.arange(1, size, device=lonlat.device, dtype=dtype)[:, None]
    sign = math.sqrt(2.0) * (1.0 - 2.0 * (orders % 2))
    angle = orders * lon
    cos = sign * torch.cos(angle)
    sin_reversed = (sign * torch.sin(angle)).flip(0)

    # Degree by degree: the Legendre row Q(l, m), m = 0 .. l, from the two
    # previous rows (a handful of whole-row tensor operations, no loop over
    # orders), then the output block of columns l*l .. l*l + 2l:
    # [Q(l, l..1) * sin(l..1 phi), pi Q(l, 0), Q(l, 1..l) * cos(1..l phi)].
    # Without autograd the blocks are written straight into the output
    # (``out=``), which saves two full copies of it; with autograd they are
    # concatenated.
    num_points = lonlat.shape[0]
    out = (
        None
        if track
        else torch.empty(size * size, num_points, device=lonlat.device, dtype=dtype)
    )
    # Inference reuses three row buffers in rotation (degrees l-2, l-1, l)
    # and updates them in place; autograd gets fresh tensors instead.
    rows = (
        None
        if track
        else torch.empty(3, size, num_points, device=lonlat.device, dtype=dtype)
    )
    blocks: list[Tensor] = []
    previous = torch.empty(0, num_points, device=lonlat.device, dtype=dtype)
    current = torch.full_like(x, 0.5 / math.sqrt(math.pi))
    for degree in range(size):
        if degree > 0:
            ax, b, diag = steps[degree - 1]
            if rows is None:  # same operations, same order, out of place
                body = (current * x) * ax
                if b is not None:
                    body = torch.cat(
                        [torch.addcmul(body[:-1], b, previous, value=-1.0), body[-1:]]
                    )
                new = torch.cat([body, (current[-1:] * s) * diag])
            else:
                new = rows[degree % 3, : degree + 1]
                torch.mul(current, x, out=new[:degree]).mul_(ax)
                if b is not None:
                    new[: degree - 1].addcmul_(b, previous, value=-1.0)
                torch.mul(current[-1:], s, out=new[degree:]).mul_(diag)
            previous, current = current, new
        tail = current[1:]
        sin_part = sin_reversed[size - 1 - degree :]
        cos_part = cos[:degree]
        if out is None:
            blocks += [tail.flip(0) * sin_part, current[:1] * m0, tail * cos_part]
        else:
            first = degree * degree
            torch.mul(tail.flip(0), sin_part, out=out[first : first + degree])
            torch.mul(current[:1], m0, out=out[first + degree : first + degree + 1])
            torch.mul(
                tail, cos_part, out=out[first + degree + 1 : first + 2 * degree + 1]
            )
    if out is None:
        out = torch.cat(blocks)
    return out.T


class SphericalHarmonics(nn.Module):
    """Spherical-harmonics positional encoding of (lon, lat) points.

    The positional encoding of SatCLIP's released location encoders: ``L * L``
    real spherical harmonics of degrees ``0 .. L-1``. It has no parameters.
    See :func:`spherical_harmonics` for the exact convention.

    .. code-block:: python

        encoding = SphericalHarmonics(legendre_polys=10)
        features = encoding(torch.tensor([[2.35, 48.86]], dtype=torch.float64))
        features.shape  # (1, 100)
    """

    def __init__(
        self,
        legendre_polys: int = 10,
        normalization: Normalization = 'satclip',
        backend: Backend = 'auto',
    ) -> None:
        """Initialise the encoding.

        Args:
            legendre_polys: number of degrees ``L`` (1 to 100); output size
                ``L * L``. The released checkpoints use 10 or 40.
            normalization: ``'satclip'`` (default, compatible with the released
                checkpoints) or ``'orthonormal'``.
            backend: ``'auto'`` (default: the fused Triton kernel on CUDA
                when no gradient is needed), ``'torch'`` or ``'triton'`` (see
                :func:`spherical_harmonics`). Not part of the state dict.

        Raises:
            ValueError: if an argument is out of range.
        """
        super().__init__()
        legendre_polys = _check_arguments(legendre_polys, normalization, backend)
        self.legendre_polys = legendre_polys
        self.normalization: Normalization = normalization
        self.backend: Backend = backend
        self.embedding_dim = legendre_polys * legendre_polys

    def forward(self, lonlat: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """Encode points.

        Args:
            lonlat: ``(N, 2)`` tensor of **(longitude, latitude) in degrees**.
            dtype: dtype of the features (default: float64 for float64
                input, else float32); computed in that default and rounded
                once (see :func:`spherical_harmonics`).

        Returns:
            ``(N, L * L)`` features.
        """
        return spherical_harmonics(
            lonlat,
            self.legendre_polys,
            self.normalization,
            dtype=dtype,
            backend=self.backend,
        )

    def extra_repr(self) -> str:
        """Return the summary shown by ``repr``."""
        backend = '' if self.backend == 'auto' else f', backend={self.backend!r}'
        return (
            f'legendre_polys={self.legendre_polys}, '
            f'normalization={self.normalization!r}{backend}'
        )
