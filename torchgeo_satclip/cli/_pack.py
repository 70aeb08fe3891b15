"""``torchgeo-satclip pack``: convert S2-100K GeoTIFFs to the packed layout."""

import argparse

from . import _common
from ._common import Subparsers
from ._preflight import UsageError
from ._signatures import StaticSignature

__all__ = ['add_parser', 'run']

PACK = StaticSignature('torchgeo_satclip.datasets.pack', 'pack_s2_100k')

DESCRIPTION = (
    'Decode every GeoTIFF listed in ROOT/index.csv (and ROOT/dates.csv, if '
    'any) once and write ROOT/packed/: uncompressed uint16 .npy shards read through memory maps '
    '(no decoding at training time; 1.5 MiB per patch, about 157 GB for the '
    'full set). Resumable: finished shards are kept when rerun after an '
    'interruption; every file is written under a temporary name and renamed '
    'when complete. Also records the nodata fraction of each patch in '
    'ROOT/nodata.csv. S2100K reads the packed layout automatically and checks '
    'it cheaply on every open (records, sizes, sampled content, source '
    'GeoTIFF sizes and times); --verify checks it fully (every SHA-256) and '
    'writes nothing.'
)


def add_parser(subparsers: Subparsers) -> None:
    """Add the ``pack`` subcommand.

    Args:
        subparsers: the command line's subcommands.
    """
    parser = subparsers.add_parser(
        'pack',
        help='convert S2-100K GeoTIFFs once into the fast packed layout',
        description=DESCRIPTION,
        parents=[
            _common.overwrite('delete an existing packed layout first'),
            _common.quiet(),
        ],
    )
    parser.add_argument('root', help='S2-100K root (index.csv and images/)')
    _common.option(
        parser,
        '--patch-size',
        PACK,
        'patch_size',
        'side of every (square) patch in pixels; any other size is refused',
        type=int,
    )
    # None when not given (the library's default applies), so that --verify
    # can refuse them even when they repeat the default
    shard_size = PACK.default('shard_size')
    parser.add_argument(
        '--shard-size',
        type=int,
        default=None,
        help=f'patches per shard (default: {shard_size})',
    )
    workers = PACK.default('num_workers')
    parser.add_argument(
        '--workers',
        type=int,
        default=None,
        help=f'decoding processes, at most one per CPU (default: {workers}, in-process)',
    )
    parser.add_argument(
        '--verify',
        action='store_true',
        help='instead of packing, check the packed layout fully: the SHA-256 '
        'of every shard and of every source GeoTIFF present, against the '
        'records written when packing (exit status 1 if damaged); its patches '
        'must be of --patch-size; --shard-size, --workers and --overwrite, '
        'which only packing uses, are refused with it',
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Pack the dataset: :func:`~torchgeo_satclip.datasets.pack_s2_100k`.

    Args:
        args: the parsed ``pack`` arguments.

    Returns:
        The exit status.
    """
    from ..datasets import pack_s2_100k

    packing = {  # the options only packing uses, those given
        flag: value
        for flag, value in (
            ('--shard-size', args.shard_size),
            ('--workers', args.workers),
            ('--overwrite', args.overwrite or None),
        )
        if value is not None
    }
    if args.verify:
        if packing:
            given = ' and '.join(packing)
            raise UsageError(
                '--verify checks an existing layout and writes nothing; it cannot '
                f'be combined with {given}, which only packing uses; leave '
                f'{given} out'
            )
        return _verify(args)
    kwargs: dict[str, int] = {}  # those left out take pack_s2_100k's defaults
    if args.shard_size is not None:
        kwargs['shard_size'] = args.shard_size
    if args.workers is not None:
        kwargs['num_workers'] = args.workers
    result = pack_s2_100k(
        args.root,
        patch_size=args.patch_size,
        overwrite=args.overwrite,
        progress=not args.quiet,
        **kwargs,
    )
    print(
        f'packed {result.num_samples} patches into {result.num_shards} shards '
        f'({result.num_bytes / 2**30:.2f} GiB, {result.num_resumed_shards} resumed) '
        f'in {result.directory}'
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    """Check the packed layout fully: :func:`~torchgeo_satclip.datasets.verify_packed`.

    Args:
        args: the parsed ``pack`` arguments.

    Returns:
        The exit status, 0: a damaged layout raises a
        :class:`~torchgeo_satclip.datasets.PackedLayoutError` (exit status 1).
        Shard files of an earlier pack that the manifest does not list are
        no damage: a note names them, and the status stays 0.
    """
    from ..datasets import verify_packed
    from ..datasets.s2_100k_files import as_patch_size, pack_command

    result = verify_packed(  # raises if damaged
        args.root, patch_size=args.patch_size, progress=not args.quiet
    )
    absent = result.num_sources_missing
    print(
        f'verified {result.directory}: {result.num_samples} patches in '
        f'{result.num_shards} shards ({result.num_bytes / 2**30:.2f} GiB) and '
        f'{result.num_sources_checked} source GeoTIFFs match what was packed'
        + (f'; {absent} source GeoTIFFs are absent (not checked)' if absent else '')
    )
    strays = result.stray_files
    if strays:
        shown = ', '.join(path.name for path in strays[:6])
        more = f', and {len(strays) - 6} more' if len(strays) > 6 else ''
        print(
            f'note: {len(strays)} file(s) in {result.directory} are shards of an '
            f'earlier pack that manifest.json does not list ({shown}{more}; '
            f'{result.stray_bytes / 2**30:.2f} GiB): never read, so the layout '
            f'is intact, but they take disk space; delete them, or run '
            f'{pack_command(args.root, as_patch_size(args.patch_size))}, which '
            'deletes them and keeps every shard of the layout (it needs the '
            'source GeoTIFFs)'
        )
    return 0
