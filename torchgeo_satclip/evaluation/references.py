"""Published figures to print beside measured ones, each with its source.

A probe result is only worth comparing with a published figure measured on
the same points with the same protocol. :data:`PUBLISHED` holds such figures:
today RANGE's (Dhakal et al., CVPR 2025) linear probe of frozen location
embeddings on SatCLIP's 3,076 weather stations (air temperature, R^2), which
is this package's ``air_temperature`` task with the ``linear`` probe. RANGE
evaluates on one 80/20 split (``--cv range``, see
:func:`~.probe.range_split`); under it the probe reproduces RANGE's figures
for raw coordinates, ``wrap`` and GeoCLIP to the third decimal. Each figure
names the zoo encoder it corresponds to (``raw``, ``wrap``, ``geoclip``,
``vit16_l40``) or none, when the model is not in the zoo (printed as
published only). :func:`references_to_markdown` lays measured and published
figures side by side: under the publication's own split and under random
k-fold cross-validation, which averages over more test points.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from .outputs import markdown_cell
from .probe import ProbeResult

__all__ = [
    'PUBLISHED',
    'RANGE_SOURCE',
    'PublishedScore',
    'references_to_markdown',
]

#: Where RANGE's figures come from.
RANGE_SOURCE = (
    'RANGE (Dhakal et al., CVPR 2025), linear probe of frozen embeddings '
    '(MinMax scaling, RidgeCV alpha in {0.1, 1, 10}), air temperature R^2 on '
    "SatCLIP's 3,076 weather stations, one 80/20 split (torch seed 42)"
)


@dataclass(frozen=True)
class PublishedScore:
    """One published score of one location encoder on one task."""

    #: The task, as this package names it (``air_temperature``).
    task: str
    #: The model, as the publication names it.
    model: str
    #: The zoo encoder it corresponds to (``raw``, ``geoclip``, ...), or None.
    encoder: str | None
    #: ``R2`` or ``accuracy``, as :class:`~.probe.ProbeResult`.
    metric: str
    #: The score.
    value: float
    #: Probe protocol it was measured with (``linear``).
    protocol: str
    #: The evaluation split it was measured with (``range``: RANGE's own).
    split: str
    #: Where it is published.
    source: str


def _range(model: str, encoder: str | None, value: float) -> PublishedScore:
    return PublishedScore(
        'air_temperature', model, encoder, 'R2', value, 'linear', 'range', RANGE_SOURCE
    )


#: The published figures this package knows.
PUBLISHED: tuple[PublishedScore, ...] = (
    _range('direct (lon, lat)', 'raw', 0.381),
    _range('wrap', 'wrap', 0.861),
    _range('sphereC+', None, 0.842),
    _range('CSP-fMoW', None, 0.865),
    _range('SINR', None, 0.942),
    _range('GeoCLIP', 'geoclip', 0.916),
    _range('SatCLIP-ViT16-L40', 'vit16_l40', 0.825),
    _range('RANGE+', None, 0.931),
)


def _cell(result: ProbeResult | None, published: float) -> str:
    """``mean (+-std) | difference`` of a result, or two empty cells.

    The difference is that of the two figures as printed (three decimals), so
    that the row adds up: 0.4865 is printed 0.486, and beside a published
    0.476 its difference is +0.010, not the +0.011 of the unrounded mean.
    """
    if result is None:
        return ' | '
    spread = f' +- {result.std:.3f}' if len(result.scores) > 1 else ''
    mean = f'{result.mean:.3f}'
    difference = round(float(mean) - float(f'{published:.3f}'), 3) + 0.0  # no -0
    return f'{mean}{spread} | {difference:+.3f}'


def references_to_markdown(
    results: Sequence[ProbeResult],
    published: Sequence[PublishedScore] = PUBLISHED,
) -> str:
    """Measured scores beside the published ones, with their sources.

    A published figure is printed beside the results of the same task,
    metric and probe whose encoder it corresponds to: the one under the
    publication's own split (``--cv range`` for RANGE) and the one under
    random k-fold cross-validation, each with its difference from the
    published figure. Figures of models outside the zoo, for a task that was
    run, are listed as published only.

    Args:
        results: probe results.
        published: the published figures (default: :data:`PUBLISHED`).

    Returns:
        A Markdown table (``task | encoder | published as | published | same
        split | difference | random k-fold CV | difference``) and the
        sources, or an empty string when no task of ``results`` has a
        published figure.
    """
    measured = {(r.task, r.encoder, r.metric, r.protocol, r.split): r for r in results}
    tasks = {r.task for r in results}
    rows = []
    sources: list[str] = []
    for ref in published:
        if ref.task not in tasks:
            continue
        if ref.source not in sources:
            sources.append(ref.source)
        mark = f'[{sources.index(ref.source) + 1}]'
        key = (ref.task, ref.encoder or '', ref.metric, ref.protocol)
        same = measured.get((*key, ref.split)) if ref.encoder else None
        kfold = measured.get((*key, 'random')) if ref.encoder else None
        label = markdown_cell(f'{ref.task} ({ref.metric}, {ref.protocol})')
        encoder = markdown_cell(ref.encoder) if same or kfold else ''
        rows.append(
            f'| {label} | {encoder} | {markdown_cell(ref.model)} {mark} '
            f'| {ref.value:.3f} | {_cell(same, ref.value)} | '
            f'{_cell(kfold, ref.value)} |'
        )
    if not rows:
        return ''
    lines = [
        '| task | encoder | published as | published | same split | difference '
        '| random k-fold CV | difference |',
        '|---|---|---|---|---|---|---|---|',
        *rows,
        '',
        '"same split": measured under the publication\'s own evaluation split '
        '(`--cv range` for RANGE); "random k-fold CV": mean +- std over the folds.',
        '',
        *(f'[{i}] {source}' for i, source in enumerate(sources, start=1)),
    ]
    return '\n'.join(lines) + '\n'
