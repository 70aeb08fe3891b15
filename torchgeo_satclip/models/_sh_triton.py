"""The spherical harmonics as one fused Triton kernel (CUDA).

:func:`~torchgeo_satclip.models.spherical_harmonics` evaluates the recurrence
with whole-tensor operations, a handful per degree: at ``L = 40`` every point
goes through global memory some 200 times, and on an H200 the harmonics alone
ran at 66 M points/s, which capped the whole bf16 encoder near 43 M points/s.
This kernel runs the same recurrence with every intermediate value in
registers: each program takes ``BLOCK`` points and two orders, ``p`` and
``L - 1 - p`` (``L + 1`` degree steps for every ``p``, so the programs are
equal and even a small batch makes many of them), goes up the degrees
``l >= m`` of each and writes each ``Y(l, +-m)`` once, directly in the
output dtype (bf16 under autocast, which is the value the next linear layer
would have cast it to anyway).

The arithmetic is the recurrence's, operation for operation, with the same
float64-computed coefficient tables cast to the compute dtype; only the order
of the loops differs (order by order instead of degree by degree, and
``Q(m, m)`` rebuilt from ``Q(0, 0)`` by the same multiplications), which
does not change any value. The compiler may fuse a multiply and an add into
one FMA, so results can differ from the tensor path in the last bit.

Triton ships with PyTorch's CUDA wheels on Linux. Without it, or on the CPU,
the tensor path is used. With ``TRITON_INTERPRET=1`` set before this module
is imported, the kernel runs on CPU tensors through Triton's interpreter,
which is how the tests check it on machines without a GPU.
"""

import contextlib
import math
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor

__all__ = ['available', 'fused_spherical_harmonics', 'interpreted']

try:
    import triton
    import triton.language as tl
    from triton.language.extra import libdevice

    _AVAILABLE = True
except ImportError:  # pragma: no cover - Triton ships with torch on Linux
    _AVAILABLE = False


def available() -> bool:
    """Whether Triton could be imported."""
    return _AVAILABLE


if _AVAILABLE:

    @triton.jit  # type: ignore[untyped-decorator]
    def _rounded(value, out_dtype: tl.constexpr, SOFT_BF16: tl.constexpr):  # type: ignore[no-untyped-def]
        """``value`` rounded to ``out_dtype`` as ``Tensor.to`` rounds it.

        On the GPU that is the hardware conversion (round to nearest even).
        Triton's interpreter truncates float32 to bfloat16 and carries
        wrongly, so there (``SOFT_BF16``) the same rounding is done with
        integer operations, NaN mapped to the quiet NaN ``Tensor.to`` gives.
        """
        if SOFT_BF16:
            bits = value.to(tl.uint32, bitcast=True)
            rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
            rounded = tl.where(value != value, 0x7FC0, rounded)
            return rounded.to(tl.uint16).to(tl.bfloat16, bitcast=True)
        else:
            return value.to(out_dtype)

    @triton.jit  # type: ignore[untyped-decorator]
    def _sin_cos(angle, PRECISE: tl.constexpr):  # type: ignore[no-untyped-def]
        """``(sin, cos)`` of *angle*.

        libdevice's (precise) on the GPU, the interpreter's where libdevice
        does not run.
        """
        if PRECISE:
            return libdevice.sin(angle), libdevice.cos(angle)
        else:
            return tl.sin(angle), tl.cos(angle)

    @triton.jit  # type: ignore[untyped-decorator]
    def _store_orders(  # type: ignore[no-untyped-def]
        centre,
        offset,
        value,
        cos_factor,
        sin_factor,
        active,
        has_sine,
        SOFT_BF16: tl.constexpr,
    ):
        """Store the two harmonics of ``value = Q(l, m)``.

        ``Y(l, +m)`` at ``centre + offset``, ``Y(l, -m)`` at
        ``centre - offset``.
        """
        out_dtype = centre.dtype.element_ty
        tl.store(
            centre + offset,
            _rounded(value * cos_factor, out_dtype, SOFT_BF16),
            mask=active,
        )
        tl.store(
            centre - offset,
            _rounded(value * sin_factor, out_dtype, SOFT_BF16),
            mask=has_sine,
        )

    @triton.jit  # type: ignore[untyped-decorator]
    def _kernel(  # type: ignore[no-untyped-def]
        lonlat_ptr,
        out_ptr,
        coef_ptr,
        const_ptr,
        num_points,
        row_stride,
        stride_point,
        stride_coord,
        DEGREES: tl.constexpr,
        BLOCK: tl.constexpr,
        PRECISE: tl.constexpr,
        SOFT_BF16: tl.constexpr,
    ):
        """``out[l*l + l + m, n] = Y(l, m)`` at point ``n``: see the module.

        Program ``(i, p)`` takes points ``i * BLOCK ..`` and the orders ``p``
        and ``DEGREES - 1 - p``: ``DEGREES + 1`` (l, m) steps in all, the
        same for every ``p``, so small batches still fill the GPU.

        Output rows are ``row_stride`` apart, ``num_points`` rounded up to a
        multiple of 16: the stores' mask, ``points < row_stride``, then holds
        for whole runs of 16 points and Triton vectorises them whatever the
        number of points. The padding points are computed at (0, 0) and
        stored in the padding.
        """
        compute = coef_ptr.dtype.element_ty
        points = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        pair = tl.program_id(1)
        valid = points < num_points
        stored = points < row_stride
        where = lonlat_ptr + points * stride_point
        lon_deg = tl.load(where, mask=valid, other=0.0).to(compute)
        lat_deg = tl.load(where + stride_coord, mask=valid, other=0.0).to(compute)

        # Constants, in the compute dtype: pi / 180, the m = 0 factor (pi or
        # 1), sqrt(2), Q(0, 0) = 1 / sqrt(4 pi).
        rad = tl.load(const_ptr)
        m0 = tl.load(const_ptr + 1)
        root2 = tl.load(const_ptr + 2)
        q00 = tl.load(const_ptr + 3)

        # cos(theta) and sin(theta), theta from the south pole; near the poles
        # from the colatitude, exact there (see spherical_harmonics).
        lat_abs = tl.abs(lat_deg)
        colat = (90.0 - lat_abs) * rad
        lat = lat_deg * rad
        lon = lon_deg * rad
        polar = lat_abs >= 45.0
        sin_colat, cos_colat = _sin_cos(colat, PRECISE)
        sin_lat, cos_lat = _sin_cos(lat, PRECISE)
        x = tl.where(polar, tl.where(lat_deg > 0, -cos_colat, cos_colat), -sin_lat)
        s = tl.where(polar, sin_colat, cos_lat)

        # The coefficient table: rows a(l, m) and a(l, m) b(l, m) of the
        # recurrence, then the diagonal factors; each DEGREES x DEGREES.
        table = DEGREES * DEGREES
        rows = tl.full([], 0, tl.int64) + row_stride  # int64: L^2 N > 2^31
        for half in range(0, 2):
            # Orders p, then DEGREES - 1 - p (skipped when it is p again).
            m = pair + half * (DEGREES - 1 - 2 * pair)
            active = stored & ((half == 0) | (m != pair))
            has_sine = active & (m > 0)
            # Q(m, m) from Q(0, 0) by the recurrence's own multiplications.
            diagonal = tl.zeros([BLOCK], dtype=compute) + q00
            for k in range(0, m):
                diagonal = (diagonal * s) * tl.load(coef_ptr + 2 * table + k)
            sin_m, cos_m = _sin_cos(lon * m, PRECISE)
            # sqrt(2) (-1)^m cos(m lon) = sqrt(2) cos(m phi), phi = lon + pi.
            sign = tl.where(m % 2 == 1, -root2, root2)
            cos_factor = tl.where(m == 0, m0, sign * cos_m)
            sin_factor = sign * sin_m
            # Row l*l + l (degree l, order 0) of the output, moved on by 2l
            # rows per degree; the columns of +m and -m are m rows either side.
            centre = out_ptr + points + (m * m + m) * rows
            offset = m * rows
            _store_orders(
                centre,
                offset,
                diagonal,
                cos_factor,
                sin_factor,
                active,
                has_sine,
                SOFT_BF16,
            )
            older = tl.zeros([BLOCK], dtype=compute)  # Q(l - 2, m)
            current = diagonal  # Q(l - 1, m), then Q(l, m)
            for degree in range(m + 1, DEGREES):
                a = tl.load(coef_ptr + degree * DEGREES + m)
                ab = tl.load(coef_ptr + table + degree * DEGREES + m)
                new = (current * x) * a - ab * older
                older = current
                current = new
                centre += 2 * degree * rows
                _store_orders(
                    centre,
                    offset,
                    current,
                    cos_factor,
                    sin_factor,
                    active,
                    has_sine,
                    SOFT_BF16,
                )


def interpreted() -> bool:
    """Whether the kernel runs in Triton's interpreter (``TRITON_INTERPRET=1``)."""
    if not _AVAILABLE:
        return False
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(_kernel, InterpretedFunction)


@lru_cache(maxsize=64)
def _coefficients(
    num_degrees: int, normalization: str, dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor]:
    """The kernel's coefficient table and constants, from the shared tables.

    Row block 0 holds ``a(l, m)`` (the factor of ``x Q(l-1, m)``), block 1
    ``a(l, m) b(l, m)`` (the factor of ``Q(l-2, m)``, zero where there is no
    such term) and block 2, at index ``m``, the diagonal factor that takes
    ``s Q(m, m)`` to ``Q(m+1, m+1)``. The values are those of the tensor
    path's tables (computed in float64, then cast), so both paths multiply by
    the same numbers.
    """
    from .spherical_harmonics import _tables

    size = num_degrees
    table = torch.zeros(3, size, size, dtype=torch.float64)
    for degree, (ax, b, diag) in enumerate(
        _tables(size, torch.float64, torch.device('cpu')), 1
    ):
        table[0, degree, :degree] = ax[:, 0]
        if b is not None:
            table[1, degree, : degree - 1] = b[:, 0]
        # Cast the diagonal factor the way the tensor path's scalar multiply
        # does: the Python float is rounded to the compute dtype.
        table[2, 0, degree - 1] = diag
    m0 = math.pi if normalization == 'satclip' else 1.0
    constants = torch.tensor(
        [math.pi / 180.0, m0, math.sqrt(2.0), 0.5 / math.sqrt(math.pi)],
        dtype=torch.float64,
    )
    return table.to(device=device, dtype=dtype), constants.to(
        device=device, dtype=dtype
    )


#: Output rows are padded to a multiple of this many points: Triton then
#: knows them 16-aligned (it specialises integer arguments divisible by 16)
#: and vectorises the stores.
_ROW_ALIGN = 16


def _block(compute: torch.dtype) -> int:
    """Points per program (4 warps): 4 per thread in float32, 2 in float64.

    Chosen from the compiled code for sm_90 (``triton.compile`` needs no GPU):
    at 4 float32 points per thread the inner loop takes about 20 instructions
    per point and (l, m) step, stores 8 or 16 bytes per instruction and uses
    56 registers; at 2 points, 29 instructions; at 8, 16 instructions but 91
    registers. float64 at 4 points per thread needs 168 registers. Not timed
    on a GPU yet: ``benchmarks/gpu_suite.sh`` sweeps the block size.
    """
    return 256 if compute == torch.float64 else 512


# torch.compile runs the kernel as it is, between two compiled graphs, rather
# than tracing the launch code.
@torch.compiler.disable  # type: ignore[untyped-decorator]
def fused_spherical_harmonics(
    lonlat: Tensor,
    num_degrees: int,
    normalization: str,
    compute: torch.dtype,
    out_dtype: torch.dtype,
    block: int | None = None,
) -> Tensor:
    """Evaluate the harmonics with the fused kernel.

    The caller (:func:`~torchgeo_satclip.models.spherical_harmonics`) has
    checked the arguments.

    Args:
        lonlat: ``(N, 2)`` floating (lon, lat) in degrees, on a CUDA device
            (or on the CPU when :func:`interpreted`).
        num_degrees: ``L``.
        normalization: ``'satclip'`` or ``'orthonormal'``.
        compute: float32 or float64.
        out_dtype: dtype the values are rounded to when stored.
        block: points per program (default: :func:`_block`).

    Returns:
        ``(N, L * L)``: the transposed view of an ``(L * L, N)`` buffer, as
        the tensor path returns, when ``N`` is a multiple of 16; else of the
        first ``N`` columns of an ``(L * L, N')`` buffer, ``N'`` the next
        multiple of 16 (the kernel's stores are vectorised only for aligned
        rows). Matrix products read either without a copy.
    """
    assert _AVAILABLE
    num_points = lonlat.shape[0]
    row_stride = -(-num_points // _ROW_ALIGN) * _ROW_ALIGN
    out = torch.empty(
        num_degrees * num_degrees, row_stride, device=lonlat.device, dtype=out_dtype
    )
    if num_points == 0:
        return out.T
    table, constants = _coefficients(num_degrees, normalization, compute, lonlat.device)
    block = block or _block(compute)
    grid = (triton.cdiv(num_points, block), (num_degrees + 1) // 2)
    launch: dict[str, Any] = {
        'DEGREES': num_degrees,
        'BLOCK': block,
        'PRECISE': not interpreted(),
        'SOFT_BF16': out_dtype == torch.bfloat16 and interpreted(),
        'num_warps': 4,
    }
    # The kernel launches on the current device: make it the points' one.
    on_device = (
        torch.cuda.device(lonlat.device)
        if lonlat.device.type == 'cuda'
        else contextlib.nullcontext()
    )
    with on_device:
        _kernel[grid](
            lonlat,
            out,
            table,
            constants,
            num_points,
            row_stride,
            lonlat.stride(0),
            lonlat.stride(1),
            **launch,
        )
    return out[:, :num_points].T
