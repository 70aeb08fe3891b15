"""``torchgeo-satclip embed``: embed the points of a file."""

import argparse

from . import _common
from ._common import Subparsers
from ._preflight import UsageError
from ._signatures import StaticSignature, constant

__all__ = ['add_parser', 'run']

PIPELINE = 'torchgeo_satclip.embed.pipeline'
EMBED_POINTS = StaticSignature('torchgeo_satclip.embed', 'embed_points')
EMBED_FILE = StaticSignature('torchgeo_satclip.embed', 'embed_file')
BUILD_ENCODER = StaticSignature(
    'torchgeo_satclip.models.location_encoder', 'build_location_encoder'
)

DESCRIPTION = (
    'Embed every (longitude, latitude) point of INPUT with a SatCLIP location '
    'encoder and write OUTPUT: .parquet/.pq (other input columns kept, then lon, '
    'lat and the embedding as float32 emb_0..emb_{D-1} columns or, with '
    '--layout list, one fixed-size list column "embedding"), .csv (same '
    'columns) or .npy (float32 (N, D) array, input order). Streams in '
    'batches (memory bounded by --batch-size), uses the GPU when available, '
    'never replaces an existing OUTPUT without --overwrite, and writes to a '
    'temporary file renamed when complete (the temporaries of a killed run '
    'are removed by the next). A bad row is refused naming its line (CSV), '
    'row (Parquet) or feature (GeoJSON) and the value: longitudes outside '
    '[-180, 180] and latitudes outside [-90, 90] are refused, with a hint when '
    'the longitude and latitude columns look swapped. CSV: UTF-8, a header '
    'line of unique names, the same number of fields on every line, plain '
    'decimal numbers.'
)


def add_parser(subparsers: Subparsers) -> None:
    """Add the ``embed`` subcommand.

    Args:
        subparsers: the command line's subcommands.
    """
    parser = subparsers.add_parser(
        'embed',
        help='embed the points of a CSV, Parquet or GeoJSON file with a SatCLIP location encoder',
        description=DESCRIPTION,
        parents=[
            _common.seed(
                EMBED_POINTS,
                'seed of the random encoder of --weights random',
                effective=constant(PIPELINE, 'RANDOM_ENCODER_SEED'),
            ),
            _common.columns(EMBED_POINTS),
            _common.overwrite('replace OUTPUT if it exists'),
            _common.quiet(),
        ],
    )
    parser.add_argument(
        'input',
        help=(
            'points: .csv (header line), .parquet/.pq, or .geojson/.json (a '
            'FeatureCollection of Points; properties are kept)'
        ),
    )
    parser.add_argument('output', help='output file: .parquet/.pq, .csv or .npy')
    weights = EMBED_POINTS.default('weights')
    parser.add_argument(
        '--weights',
        default=weights,
        help=(
            'checkpoint path, a SatCLIPWeights name such as SATCLIP_VIT16_L40 '
            f"(downloaded to the torch hub cache if absent), or '{weights}' for a "
            f'randomly initialised encoder (default: {weights})'
        ),
    )
    _common.option(
        parser,
        '--legendre-polys',
        EMBED_POINTS,
        'legendre_polys',
        'spherical-harmonic degrees L of the random encoder of --weights random',
        effective=BUILD_ENCODER.default('legendre_polys'),
        type=int,
    )
    _common.option(
        parser, '--batch-size', EMBED_FILE, 'batch_size', 'points per batch', type=int
    )
    parser.add_argument(
        '--device',
        default=EMBED_FILE.default('device'),
        help='torch device (default: cuda if available, else cpu)',
    )
    dtype = EMBED_POINTS.default('dtype')
    parser.add_argument(
        '--dtype',
        choices=EMBED_POINTS.choices('dtype'),
        default=dtype,
        help=f'compute dtype of the encoder (default: {dtype}, as the checkpoints)',
    )
    parser.add_argument(
        '--neighbours',
        action='store_true',
        help="print each point's nearest neighbour in embedding space (small inputs)",
    )
    _common.option(
        parser,
        '--layout',
        EMBED_FILE,
        'layout',
        'Parquet embedding layout: one float32 column per dimension (emb_0, ...) '
        'or one fixed-size list column "embedding"',
        choices=EMBED_FILE.choices('layout'),
    )
    parser.set_defaults(func=run)


def _check_random_only(args: argparse.Namespace) -> None:
    """Refuse the options of a random encoder with other ``--weights``.

    Raises:
        UsageError: naming the option and the weights, if ``--legendre-polys``
            or ``--seed`` is given with weights other than ``random`` (they
            were ignored: the weights bring their architecture and are not
            random).
    """
    if args.weights == 'random':
        return
    for flag, dest, why in (
        ('--legendre-polys', 'legendre_polys', 'bring their own architecture'),
        ('--seed', 'seed', 'are not random'),
    ):
        value = getattr(args, dest)
        if value is not None:
            raise UsageError(
                f'{flag} {value} applies to a random encoder (--weights random) '
                f'only: the weights {args.weights} {why}; leave {flag} out'
            )


def run(args: argparse.Namespace) -> int:
    """Embed the points: :func:`~torchgeo_satclip.embed.embed_points`.

    Args:
        args: the parsed ``embed`` arguments.

    Returns:
        The exit status.
    """
    from ..embed import embed_points
    from ..embed.pipeline import check_seed

    _check_random_only(args)
    if args.seed is not None:
        check_seed(args.seed, '--seed')
    result = embed_points(
        args.input,
        args.output,
        weights=args.weights,
        legendre_polys=args.legendre_polys,
        seed=args.seed,
        dtype=args.dtype,
        lon_column=args.lon_column,
        lat_column=args.lat_column,
        neighbours=args.neighbours,
        batch_size=args.batch_size,
        device=args.device,
        overwrite=args.overwrite,
        progress=not args.quiet,
        layout=args.layout,
    )
    written = result.written
    print(
        f'wrote {written.num_points} embeddings of size {written.embed_dim} to {written.path}'
        + (' (the input has no points)' if written.num_points == 0 else '')
    )
    if args.neighbours:
        if result.neighbours is None:
            limit = EMBED_POINTS.default('max_neighbour_points')
            print(f'(--neighbours skipped: more than {limit} points)')
            return 0
        if not result.neighbours:
            print('(--neighbours: fewer than two points, so no neighbours)')
            return 0
        print('nearest neighbour in embedding space (cosine similarity):')
        for n in result.neighbours:
            print(f'  {n.name:>20} -> {n.nearest:<20} {n.similarity:.3f}')
    return 0
