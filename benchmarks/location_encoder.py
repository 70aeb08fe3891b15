"""Benchmark the spherical-harmonics encoding and the full location encoder.

Prints microseconds per point and points per second for

* ``ours``: :func:`torchgeo_satclip.models.spherical_harmonics` (vectorised
  recurrence; on CUDA the fused Triton kernel, timed against the recurrence
  too) and the full L^2 -> 512 -> 512 -> 256 SIREN encoder;
* ``naive``: the original's approach, one closed-form expression per (l, m)
  (``L^2`` separate polynomial evaluations), written here generically;
* ``sphericart``: ``sphericart-torch`` (optional: ``pip install
  sphericart-torch``), mapped to SatCLIP's convention (angles, column signs
  and the pi on m = 0) by a per-column factor,

at L = 10, 40, 100, float32 and float64, on the CPU with one thread and with
all threads, and on CUDA when present, with ratios against the baselines
measured in the same run.

Usage::

    python benchmarks/location_encoder.py              # full run
    python benchmarks/location_encoder.py --quick      # fewer points/repeats
    python benchmarks/location_encoder.py --precision  # accuracy table (scipy)
    python benchmarks/location_encoder.py --precision --grid 2001 37
    python benchmarks/location_encoder.py --precision --grid 2001 37 --lat-range 89.9 90
"""

import argparse
import math
import subprocess
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import torch
from torch import Tensor

from torchgeo_satclip.models import build_location_encoder, spherical_harmonics

try:  # optional baseline
    import sphericart.torch as sphericart_torch
except ImportError:  # pragma: no cover - optional
    sphericart_torch = None


# ---------------------------------------------------------------- baselines
@cache
def _closed_form_coefficients(degree: int, order: int) -> list[tuple[int, float]]:
    """Coefficients of P_l^m(x) / (1 - x^2)^(m/2) as (power, coefficient).

    From Rodrigues' formula: P_l^m(x) = (1-x^2)^(m/2) d^m/dx^m P_l(x) with
    P_l(x) = 1/(2^l l!) d^l/dx^l (x^2 - 1)^l (no Condon-Shortley phase).
    """
    # (x^2 - 1)^l = sum_k C(l, k) (-1)^(l-k) x^(2k)
    poly = {
        2 * k: math.comb(degree, k) * (-1) ** (degree - k) for k in range(degree + 1)
    }
    for _ in range(degree + order):  # differentiate l + m times
        poly = {p - 1: c * p for p, c in poly.items() if p > 0}
    scale = 1.0 / (2**degree * math.factorial(degree))
    return [(p, c * scale) for p, c in sorted(poly.items())]


def naive_spherical_harmonics(lonlat: Tensor, num_degrees: int) -> Tensor:
    """One closed-form expression per (l, m): the original's approach."""
    phi = torch.deg2rad(lonlat[:, 0] + 180)
    theta = torch.deg2rad(lonlat[:, 1] + 90)
    x, s = torch.cos(theta), torch.sin(theta)
    columns = []
    for degree in range(num_degrees):
        for order in range(-degree, degree + 1):
            m = abs(order)
            norm = math.sqrt(
                (2 * degree + 1)
                / (4 * math.pi)
                * math.factorial(degree - m)
                / math.factorial(degree + m)
            )
            poly = torch.zeros_like(x)
            for power, coef in _closed_form_coefficients(degree, m):
                poly = poly + coef * x**power
            legendre = s**m * poly
            if order > 0:
                columns.append(math.sqrt(2) * norm * legendre * torch.cos(m * phi))
            elif order < 0:
                columns.append(math.sqrt(2) * norm * legendre * torch.sin(m * phi))
            else:
                columns.append(math.pi * norm * legendre)
    return torch.stack(columns, dim=1)


class SphericartSatCLIP:
    """sphericart-torch mapped to SatCLIP's convention.

    SatCLIP's polar axis points to the south pole and phi = lon + 180, so a
    point maps to the unit vector (cos lat cos(lon + pi), cos lat sin(lon + pi),
    -sin lat); the remaining differences (sign convention, the pi on m = 0)
    are one constant factor per column, fitted once on random points and
    checked to be exact.
    """

    def __init__(self, num_degrees: int, dtype: torch.dtype) -> None:
        assert sphericart_torch is not None
        self.module = sphericart_torch.SphericalHarmonics(num_degrees - 1)
        self.num_degrees = num_degrees
        probe = torch.rand(512, 2, dtype=torch.float64) * torch.tensor(
            [360.0, 170.0]
        ) - torch.tensor([180.0, 85.0])
        ours = spherical_harmonics(probe, num_degrees)
        theirs = self._raw(probe)
        factor = (ours * theirs).sum(0) / (theirs * theirs).sum(0)
        mapped = theirs * factor
        error = (mapped - ours).abs().max().item()
        if error > 1e-8:
            raise RuntimeError(f'sphericart mapping is not exact: {error}')
        self.factor = factor.to(dtype)
        self.dtype = dtype

    def _raw(self, lonlat: Tensor) -> Tensor:
        lon = torch.deg2rad(lonlat[:, 0])
        lat = torch.deg2rad(lonlat[:, 1])
        xyz = torch.stack(
            [
                -torch.cos(lat) * torch.cos(lon),
                -torch.cos(lat) * torch.sin(lon),
                -torch.sin(lat),
            ],
            dim=1,
        )
        out: Tensor = self.module(xyz)
        return out

    def __call__(self, lonlat: Tensor) -> Tensor:
        return self._raw(lonlat) * self.factor.to(lonlat.device)


# ---------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize()


def time_per_point(
    fn: Callable[[], object], n: int, device: torch.device, repeats: int
) -> float:
    """Best-of-``repeats`` seconds per point after one warm-up call."""
    with torch.no_grad():
        fn()
        _sync(device)
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            _sync(device)
            best = min(best, time.perf_counter() - start)
    return best / n


def random_points(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    gen = torch.Generator().manual_seed(0)
    lon = torch.rand(n, generator=gen, dtype=torch.float64) * 360 - 180
    lat = torch.rand(n, generator=gen, dtype=torch.float64) * 180 - 90
    return torch.stack([lon, lat], dim=1).to(device=device, dtype=dtype)


def report(name: str, seconds: float, baselines: dict[str, float]) -> str:
    ratios = ' '.join(
        f'{seconds_b / seconds:7.1f}x vs {b}'
        for b, seconds_b in baselines.items()
        if seconds_b
    )
    return (
        f'  {name:<34} {seconds * 1e6:10.3f} us/pt {1 / seconds:14,.0f} pt/s  {ratios}'
    )


def run_cpu(threads: int, quick: bool) -> None:
    torch.set_num_threads(threads)
    device = torch.device('cpu')
    repeats = 2 if quick else 5
    print(f'\n== CPU, {threads} thread(s) ==')
    for num_degrees in (10, 40, 100):
        n = 4096 if quick else 16384
        n_naive = 1024
        for dtype in (torch.float32, torch.float64):
            label = f'L={num_degrees} {str(dtype).split(".")[-1]}'
            print(f' {label}')
            pts = random_points(n, dtype, device)
            ours = time_per_point(
                lambda: spherical_harmonics(pts, num_degrees), n, device, repeats
            )
            naive = None
            # The closed forms' integer coefficients exceed float64 beyond
            # degree ~85 (as the original's generator, limited to degree 50).
            if num_degrees <= 40:
                few = pts[:n_naive]
                naive = time_per_point(
                    lambda: naive_spherical_harmonics(few, num_degrees),
                    n_naive,
                    device,
                    1,
                )
            spc = None
            if sphericart_torch is not None:
                sc = SphericartSatCLIP(num_degrees, dtype)
                spc = time_per_point(lambda: sc(pts), n, device, repeats)
                # Same-precision float64 sphericart, the reference of the target.
                if dtype == torch.float32:
                    sc64 = SphericartSatCLIP(num_degrees, torch.float64)
                    pts64 = pts.double()
                    spc64 = time_per_point(lambda: sc64(pts64), n, device, repeats)
                else:
                    spc64 = spc
            else:
                spc64 = None
            baselines = {'naive': naive or 0.0, 'sphericart': spc or 0.0}
            if dtype == torch.float32:
                baselines['sphericart-f64'] = spc64 or 0.0
            print(report('SH ours', ours, baselines))
            if naive is not None:
                print(report('SH naive per-(l,m) (original)', naive, {}))
            if spc is not None:
                print(report('SH sphericart (mapped)', spc, {}))
            encoder = build_location_encoder(
                legendre_polys=num_degrees, dtype=dtype, validate=False
            ).eval()
            full = time_per_point(lambda: encoder(pts), n, device, repeats)
            print(report('full encoder (SH + SIREN) ours', full, {}))


def run_cuda(quick: bool) -> None:
    device = torch.device('cuda')
    print(f'\n== CUDA: {torch.cuda.get_device_name(device)} ==')
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    n = 1 << (20 if quick else 22)
    repeats = 5 if quick else 20
    for num_degrees in (10, 40, 100):
        for dtype in (torch.float64, torch.float32, torch.bfloat16):
            label = f'L={num_degrees} {str(dtype).split(".")[-1]}'
            size = n if num_degrees < 100 else n // 8
            pts = random_points(
                size, torch.float32 if dtype != torch.float64 else dtype, device
            )
            sh_t = time_per_point(
                lambda: spherical_harmonics(pts, num_degrees), size, device, repeats
            )
            recurrence = time_per_point(
                lambda: spherical_harmonics(pts, num_degrees, backend='torch'),
                size,
                device,
                repeats,
            )
            encoder = (
                build_location_encoder(
                    legendre_polys=num_degrees, dtype=dtype, validate=False
                )
                .to(device)
                .eval()
            )
            full = time_per_point(lambda: encoder(pts), size, device, repeats)
            baselines: dict[str, float] = {}
            if sphericart_torch is not None and dtype != torch.bfloat16:
                sc = SphericartSatCLIP(num_degrees, dtype)
                baselines['sphericart'] = time_per_point(
                    lambda: sc(pts), size, device, repeats
                )
            baselines['recurrence'] = recurrence
            print(f' {label}')
            print(report('SH ours (fused kernel on CUDA)', sh_t, baselines))
            print(report('SH ours, tensor recurrence', recurrence, {}))
            print(report('full encoder ours', full, {}))


def precision_table(num_degrees: int = 40) -> None:
    """Print max abs error by latitude against the exact float64 reference."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.models.test_spherical_harmonics import reference

    print(f'max abs error over all {num_degrees**2} features, L = {num_degrees}')
    print('| latitude | closed forms f64 | closed forms f32 | ours f64 | ours f32 |')
    print('|---:|---:|---:|---:|---:|')
    for lat in (0, 30, 45, 60, 75, 89, 90):
        points = np.stack([np.linspace(-180, 180, 50), np.full(50, float(lat))], axis=1)
        exact = reference(points, num_degrees)
        t = torch.from_numpy(points)
        cells = []
        for fn in (naive_spherical_harmonics, spherical_harmonics):
            for dtype in (torch.float64, torch.float32):
                with np.errstate(invalid='ignore'):
                    err = np.abs(fn(t.to(dtype), num_degrees).double().numpy() - exact)
                cells.append(
                    'inf / NaN' if not np.isfinite(err).all() else f'{err.max():.1e}'
                )
        print(f'| {lat} | ' + ' | '.join(cells) + ' |')


def grid_worst_case(
    num_latitudes: int,
    num_longitudes: int,
    lat_range: tuple[float, float] = (-90.0, 90.0),
    num_degrees: int = 40,
) -> None:
    """Print this package's worst error on a lon/lat grid, float64 and float32.

    The reference is the tests' scipy evaluation; at the worst (point,
    feature) of each dtype the feature is also evaluated with mpmath at 30
    digits, which tells whose error the difference is: near the poles scipy's
    ``lpmv`` loses digits (it works from ``cos(theta)`` alone).
    """
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.models.test_spherical_harmonics import mp_reference, reference

    lats = np.linspace(lat_range[0], lat_range[1], num_latitudes)
    lons = np.linspace(-180.0, 180.0, num_longitudes)
    points = np.stack(np.meshgrid(lons, lats), axis=-1).reshape(-1, 2)
    exact = reference(points, num_degrees)
    print(
        f'worst abs error over all {num_degrees**2} features, L = {num_degrees}, '
        f'{num_latitudes} latitudes in [{lat_range[0]:g}, {lat_range[1]:g}] x '
        f'{num_longitudes} longitudes (reference: scipy)'
    )
    for dtype in (torch.float64, torch.float32):
        ours = spherical_harmonics(torch.from_numpy(points).to(dtype), num_degrees)
        err = np.abs(ours.double().numpy() - exact)
        row, column = np.unravel_index(int(err.argmax()), err.shape)
        degree = math.isqrt(int(column))
        order = int(column) - degree * degree - degree
        lon, lat = (float(v) for v in points[row])
        try:
            mp = mp_reference(lon, lat, degree, order)
            versus_mp = (
                f'; vs mpmath (30 digits) there: ours '
                f'{abs(float(ours[row, column]) - mp):.1e}, '
                f'scipy {abs(float(exact[row, column]) - mp):.1e}'
            )
        except ValueError:  # mpmath does not converge on some exact zeros
            versus_mp = ''
        print(
            f'  {str(dtype).split(".")[-1]}: {err.max():.1e} at lon {lon:g}, '
            f'lat {lat:.10g}, degree {degree}, order {order} '
            f'(feature {exact[row, column]:.2g}, relative '
            f'{err.max() / abs(exact[row, column]):.0e}){versus_mp}'
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='fewer points and repeats')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='"all threads" count (default: all cores)',
    )
    parser.add_argument(
        '--cpu-only-threads', type=int, default=None, help=argparse.SUPPRESS
    )
    parser.add_argument(
        '--precision', action='store_true', help='print the accuracy table and exit'
    )
    parser.add_argument(
        '--grid',
        type=int,
        nargs=2,
        metavar=('LATITUDES', 'LONGITUDES'),
        default=None,
        help='with --precision: the worst error on this lon/lat grid instead',
    )
    parser.add_argument(
        '--lat-range',
        type=float,
        nargs=2,
        metavar=('LOW', 'HIGH'),
        default=(-90.0, 90.0),
        help='with --grid: the latitudes of the grid (default: -90 90)',
    )
    args = parser.parse_args()
    if args.grid is not None and not args.precision:
        parser.error('--grid needs --precision')
    if args.precision:
        if args.grid is not None:
            if min(args.grid) < 2:
                parser.error(f'--grid needs at least 2 x 2 points, got {args.grid}')
            latitudes, longitudes = args.grid
            low, high = args.lat_range
            grid_worst_case(latitudes, longitudes, lat_range=(low, high))
        else:
            precision_table()
        return
    if args.cpu_only_threads is not None:
        run_cpu(args.cpu_only_threads, args.quick)
        return
    all_threads = args.threads or torch.get_num_threads()
    print(
        f'torch {torch.__version__}; sphericart-torch: {"yes" if sphericart_torch else "not installed"}'
    )
    # Each thread count runs in a fresh process: changing the OpenMP pool size
    # inside one process that has also loaded sphericart's runtime crashed.
    for threads in sorted({1, all_threads}):
        command = [sys.executable, __file__, '--cpu-only-threads', str(threads)]
        subprocess.run(command + (['--quick'] if args.quick else []), check=True)
    if torch.cuda.is_available():
        run_cuda(args.quick)
    else:
        print('\n(no CUDA device: GPU figures skipped)')


if __name__ == '__main__':
    main()
