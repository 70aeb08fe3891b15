"""Throughput and peak memory of the streaming ``embed`` against load-all-then-embed.

Writes N random points to a CSV (and a Parquet copy), then, each in a fresh
subprocess so that peak RSS is measured per method:

* ``streaming``: :func:`torchgeo_satclip.embed.embed_file` (batches of 65,536
  points, Parquet output);
* ``naive``: read the whole CSV with pandas, embed all points in one call,
  build one DataFrame of ids + embeddings and write it to Parquet.

Usage::

    python benchmarks/embed_cli.py --points 1000000 --legendre-polys 10

Prints points per second and peak resident memory (MiB) of each.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_input(path: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    lon = rng.uniform(-180, 180, n)
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    with path.open('w') as handle:
        handle.write('id,lon,lat\n')
        for start in range(0, n, 100_000):
            stop = min(start + 100_000, n)
            block = np.column_stack(
                [np.arange(start, stop), lon[start:stop], lat[start:stop]]
            )
            np.savetxt(handle, block, fmt=['%d', '%.6f', '%.6f'], delimiter=',')


def run_method(
    method: str, src: str, dst: str, legendre_polys: int, dtype: str
) -> dict[str, float]:
    import torch

    from torchgeo_satclip.models import build_location_encoder

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    torch.manual_seed(0)
    encoder = build_location_encoder(
        legendre_polys=legendre_polys, dtype=getattr(torch, dtype)
    )
    start = time.perf_counter()
    if method == 'streaming':
        from torchgeo_satclip.embed import embed_file

        result = embed_file(encoder, src, dst, progress=False, device='cpu')
        n = result.num_points
    else:
        import pandas as pd

        frame = pd.read_csv(src)
        lonlat = torch.from_numpy(frame[['lon', 'lat']].to_numpy(np.float64))
        with torch.no_grad():
            emb = encoder.eval()(lonlat).float().numpy()
        out = pd.concat(
            [
                frame,
                pd.DataFrame(emb, columns=[f'emb_{i}' for i in range(emb.shape[1])]),
            ],
            axis=1,
        )
        out.to_parquet(dst)
        n = len(frame)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        'points': n,
        'seconds': seconds,
        'points_per_s': n / seconds,
        'peak_mib': peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--points', type=int, default=1_000_000)
    parser.add_argument('--legendre-polys', type=int, default=10)
    parser.add_argument('--dtype', default='float64', choices=('float64', 'float32'))
    parser.add_argument(
        '--worker', nargs=2, metavar=('METHOD', 'DIR'), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        method, folder = args.worker
        stats = run_method(
            method,
            str(Path(folder) / 'points.csv'),
            str(Path(folder) / f'{method}.parquet'),
            args.legendre_polys,
            args.dtype,
        )
        print(json.dumps(stats))
        return
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        make_input(Path(folder) / 'points.csv', args.points)
        print(f'wrote {args.points:,} points in {time.perf_counter() - t0:.1f} s')
        print(
            f'L = {args.legendre_polys}, {args.dtype}, embed_dim 256, CPU, '
            f'{os.cpu_count()} cores visible'
        )
        for method in ('streaming', 'naive'):
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    '--worker',
                    method,
                    folder,
                    '--legendre-polys',
                    str(args.legendre_polys),
                    '--dtype',
                    args.dtype,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            stats = json.loads(proc.stdout.strip().splitlines()[-1])
            size = (Path(folder) / f'{method}.parquet').stat().st_size / 2**20
            print(
                f'{method:>10}: {stats["points_per_s"]:>10,.0f} points/s '
                f'({stats["seconds"]:.1f} s), peak RSS {stats["peak_mib"]:,.0f} MiB, '
                f'output {size:,.0f} MiB'
            )


if __name__ == '__main__':
    main()
