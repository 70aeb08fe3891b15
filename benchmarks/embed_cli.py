"""End-to-end ``torchgeo-satclip embed`` against the location encoder alone.

Writes N random points (uniform on the sphere) to a CSV file, then, in the
same run and each in a fresh process:

* ``encoder``: the location encoder alone (L = ``--legendre-polys``,
  embed_dim 256) on the N points already in memory, batches of 65,536, no
  input or output: the ceiling;
* ``startup``: the command on a one-point file (imports and model set-up,
  the fixed cost of every run), ``--startup-runs`` times (the median is
  printed), alternating with the baseline's when there is one;
* ``cli``: the whole command, ``torchgeo-satclip embed points.csv
  out.parquet --dtype D --quiet``, timed from the outside (start-up, CSV
  parsing and checks, embedding, Parquet writing), for each ``--dtypes``;
* ``parts``: where the time of one run goes, in one process: reading and
  checking the CSV, embedding as the command does (chunks laid out for the
  writer) and writing the Parquet file, each timed alone.

Prints points per second, the ratio of each to the encoder alone, peak
resident memory of the command at N and at N / 4 points (bounded by the
batch size: it must not grow with N) and the machine's load average, which
matters on a shared machine. With ``--baseline DIR`` (a checkout of another
version of the package, e.g. ``git archive <commit> torchgeo_satclip | tar -x
-C DIR``), the same command of that version is timed in the same run, and
its start-up too.

Usage::

    python benchmarks/embed_cli.py --points 1000000 --legendre-polys 10
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_input(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    lon = rng.uniform(-180, 180, n)
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    with path.open('w', encoding='utf-8') as handle:
        handle.write('id,lon,lat\n')
        for start in range(0, n, 100_000):
            stop = min(start + 100_000, n)
            block = np.column_stack(
                [np.arange(start, stop), lon[start:stop], lat[start:stop]]
            )
            np.savetxt(handle, block, fmt=['%d', '%.6f', '%.6f'], delimiter=',')


def run_child(argv: list[str], root: Path = REPO) -> tuple[float, float, str]:
    """Run a command; its wall time, peak RSS (MiB) and standard output."""
    env = {**os.environ, 'PYTHONPATH': str(root)}
    start = time.perf_counter()
    # Not in the repository: ``python -m`` would import the package from the
    # current folder, whatever PYTHONPATH says.
    child = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, text=True, cwd=tempfile.gettempdir()
    )
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f'{argv} failed: {out}')
    return seconds, usage.ru_maxrss / 1024, out


def encoder_alone(src: str, legendre_polys: int, dtype: str) -> dict[str, float]:
    import torch

    from torchgeo_satclip.embed import read_points
    from torchgeo_satclip.models import build_location_encoder

    torch.manual_seed(0)
    encoder = build_location_encoder(
        legendre_polys=legendre_polys, dtype=getattr(torch, dtype)
    ).eval()
    lonlat = torch.from_numpy(np.concatenate([b.lonlat for b in read_points(src)]))
    with torch.inference_mode():
        encoder(lonlat[:1024])  # warm up
        start = time.perf_counter()
        for first in range(0, len(lonlat), 65536):
            encoder(lonlat[first : first + 65536]).to(torch.float32)
        seconds = time.perf_counter() - start
    return {
        'points': len(lonlat),
        'seconds': seconds,
        'threads': torch.get_num_threads(),
    }


def parts(src: str, dst: str, legendre_polys: int, dtype: str) -> dict[str, float]:
    import torch

    from torchgeo_satclip.embed import open_points
    from torchgeo_satclip.embed.pipeline import encode
    from torchgeo_satclip.embed.write import SinkOptions, make_sink
    from torchgeo_satclip.models import build_location_encoder

    torch.manual_seed(0)
    encoder = build_location_encoder(
        legendre_polys=legendre_polys, dtype=getattr(torch, dtype)
    ).eval()
    times = {}
    start = time.perf_counter()
    source = open_points(src)
    batches = list(source.batches())
    times['read'] = time.perf_counter() - start
    start = time.perf_counter()
    device = torch.device('cpu')
    embeddings = [encode(encoder, b.lonlat, device, 'columns')[0] for b in batches]
    times['embed'] = time.perf_counter() - start
    options = SinkOptions(256, 'lon', 'lat', 'columns', source.schema, source.estimate)
    start = time.perf_counter()
    sink = make_sink(Path(dst), '.parquet', options)
    for batch, embedding in zip(batches, embeddings, strict=True):
        sink.write(batch, embedding)
    sink.close()
    times['write'] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--points', type=int, default=1_000_000)
    parser.add_argument('--legendre-polys', type=int, default=10)
    parser.add_argument('--dtypes', nargs='+', default=['float32', 'float64'])
    parser.add_argument(
        '--no-parts', action='store_true', help='skip the breakdown into parts'
    )
    parser.add_argument(
        '--baseline', type=Path, help='a checkout of another version to time too'
    )
    parser.add_argument(
        '--startup-runs',
        type=int,
        default=3,
        help='runs of the one-point command whose median is the start-up',
    )
    parser.add_argument('--worker', nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.startup_runs < 1:
        parser.error(f'--startup-runs must be at least 1, got {args.startup_runs}')
    if args.worker:
        what, folder, dtype = args.worker
        src, dst = str(Path(folder) / 'points.csv'), str(Path(folder) / 'parts.parquet')
        if what == 'encoder':
            print(json.dumps(encoder_alone(src, args.legendre_polys, dtype)))
        else:
            print(json.dumps(parts(src, dst, args.legendre_polys, dtype)))
        return
    n = args.points
    load = os.getloadavg()
    print(
        f'{n:,} points, L = {args.legendre_polys}, embed_dim 256, CPU, '
        f'{os.cpu_count()} cores; load average at start {load[0]:.2f} {load[1]:.2f} '
        f'{load[2]:.2f}'
    )
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        make_input(folder / 'points.csv', n)
        make_input(folder / 'quarter.csv', max(n // 4, 1), seed=1)
        make_input(folder / 'one.csv', 1, seed=2)
        me = [sys.executable, __file__, '--legendre-polys', str(args.legendre_polys)]
        cli = [sys.executable, '-m', 'torchgeo_satclip.cli', 'embed']
        common = [
            '--legendre-polys',
            str(args.legendre_polys),
            '--quiet',
            '--overwrite',
        ]
        for dtype in args.dtypes:
            _, _, out = run_child([*me, '--worker', 'encoder', name, dtype])
            alone = json.loads(out.strip().splitlines()[-1])
            ceiling = alone['points'] / alone['seconds']
            print(
                f'\n{dtype}: encoder alone {ceiling:>9,.0f} points/s '
                f'({alone["seconds"]:.2f} s, {alone["threads"]} torch threads)'
            )
            one = [
                *cli,
                str(folder / 'one.csv'),
                str(folder / 'one.parquet'),
                *common,
                '--dtype',
                dtype,
            ]
            roots = [REPO] if args.baseline is None else [REPO, args.baseline]
            starts: dict[Path, list[float]] = {root: [] for root in roots}
            for _ in range(args.startup_runs):
                for root in roots:  # alternating: both see the same load
                    starts[root].append(run_child(one, root=root)[0])
            startup = statistics.median(starts[REPO])
            seconds, peak, _ = run_child(
                [
                    *cli,
                    str(folder / 'points.csv'),
                    str(folder / 'out.parquet'),
                    *common,
                    '--dtype',
                    dtype,
                ]
            )
            _, peak_quarter, _ = run_child(
                [
                    *cli,
                    str(folder / 'quarter.csv'),
                    str(folder / 'quarter.parquet'),
                    *common,
                    '--dtype',
                    dtype,
                ]
            )
            rate = n / seconds
            print(
                f'{dtype}: end to end   {rate:>9,.0f} points/s ({seconds:.2f} s, '
                f'{rate / ceiling:.2f} x the encoder alone), start-up {startup:.2f} s '
                f'(median of {args.startup_runs}: '
                + ' '.join(f'{s:.2f}' for s in starts[REPO])
                + ')'
            )
            print(
                f'{dtype}: peak RSS {peak:,.0f} MiB at {n:,} points, '
                f'{peak_quarter:,.0f} MiB at {max(n // 4, 1):,} '
                f'(ratio {peak / peak_quarter:.2f})'
            )
            if args.baseline is not None:
                before, before_peak, _ = run_child(
                    [
                        *cli,
                        str(folder / 'points.csv'),
                        str(folder / 'before.parquet'),
                        *common,
                        '--dtype',
                        dtype,
                    ],
                    root=args.baseline,
                )
                print(
                    f'{dtype}: baseline     {n / before:>9,.0f} points/s ({before:.2f} s, '
                    f'peak RSS {before_peak:,.0f} MiB, {args.baseline}): this version '
                    f'is {before / seconds:.2f} x faster'
                )
                base_startup = statistics.median(starts[args.baseline])
                print(
                    f'{dtype}: baseline start-up {base_startup:.2f} s (median of '
                    f'{args.startup_runs}: '
                    + ' '.join(f'{s:.2f}' for s in starts[args.baseline])
                    + f'): this version starts {base_startup - startup:.2f} s sooner'
                )
            if args.no_parts:
                continue
            _, _, out = run_child([*me, '--worker', 'parts', name, dtype])
            times = json.loads(out.strip().splitlines()[-1])
            total = sum(times.values())
            print(
                f'{dtype}: parts, one at a time: '
                + ', '.join(
                    f'{k} {v:.2f} s ({v / total:.0%}, {n / v:,.0f} points/s)'
                    for k, v in times.items()
                )
            )
        size = (folder / 'out.parquet').stat().st_size / 2**20
        print(f'\noutput {size:,.0f} MiB of Parquet')
    load = os.getloadavg()
    print(f'load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}')


if __name__ == '__main__':
    main()
