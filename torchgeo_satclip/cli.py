"""The ``torchgeo-satclip`` command line.

Each subcommand parses its arguments and calls one library function, which
the tests call directly. Subcommands:

* ``embed``: embed the points of a CSV file with a location encoder.
* ``pack``: convert S2-100K GeoTIFFs once to the fast packed layout.
"""

import argparse
import sys
from collections.abc import Sequence

import torch

__all__ = ['build_parser', 'main']


def _add_embed(subparsers: 'argparse._SubParsersAction[argparse.ArgumentParser]') -> None:
    parser = subparsers.add_parser(
        'embed',
        help='embed the points of a CSV file with a SatCLIP location encoder',
        description=(
            'Embed every (longitude, latitude) row of INPUT with a SatCLIP location '
            'encoder and write OUTPUT: .csv (other input columns kept, then '
            'emb_0..emb_{D-1}) or .npy (float32 array, input order). Streams in '
            'batches, uses the GPU when available, writes to a temporary file and '
            'renames it when complete.'
        ),
    )
    parser.add_argument('input', help='CSV file with a header and lon/lat columns')
    parser.add_argument('output', help='output file, .csv or .npy')
    parser.add_argument(
        '--weights',
        default='random',
        help=(
            "checkpoint path, a SatCLIPWeights name such as SATCLIP_VIT16_L40 "
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
        '--batch-size', type=int, default=65536, help='points per batch (default: 65536)'
    )
    parser.add_argument(
        '--device', default=None, help='torch device (default: cuda if available, else cpu)'
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
        help='print each point\'s nearest neighbour in embedding space (small inputs)',
    )
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    parser.set_defaults(func=_run_embed)


def _run_embed(args: argparse.Namespace) -> int:
    from .embed import embed_csv
    from .models import build_location_encoder, load_location_encoder

    dtype = getattr(torch, args.dtype)
    if args.weights == 'random':
        torch.manual_seed(args.seed)
        encoder = build_location_encoder(legendre_polys=args.legendre_polys, dtype=dtype)
    else:
        encoder = load_location_encoder(args.weights, dtype=dtype)
    result = embed_csv(
        encoder,
        args.input,
        args.output,
        lon_column=args.lon_column,
        lat_column=args.lat_column,
        batch_size=args.batch_size,
        device=args.device,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(f'wrote {result.num_points} embeddings of size {result.embed_dim} to {result.path}')
    if args.neighbours:
        _print_neighbours(encoder, args)
    return 0


def _print_neighbours(encoder: torch.nn.Module, args: argparse.Namespace) -> None:
    """Print each point's nearest neighbour by cosine similarity of embeddings."""
    from .embed import read_points_csv

    rows, coords = [], []
    for batch_rows, lonlat in read_points_csv(args.input, args.lon_column, args.lat_column):
        rows.extend(batch_rows)
        coords.append(torch.from_numpy(lonlat))
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
        next((v for k, v in row.items() if k not in (args.lon_column, args.lat_column)), str(i))
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
    _add_pack(subparsers)
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
