"""Published figures to print beside measured ones, each with its source.

A probe result is only worth comparing with a published figure measured on
the same points with the same protocol. :data:`PUBLISHED` holds such figures:
today RANGE's (Dhakal et al., CVPR 2025) linear probe of frozen location
embeddings on SatCLIP's 3,076 weather stations (air temperature, R^2), which
is this package's ``air_temperature`` task with the ``linear`` probe under
``random`` cross-validation. Each figure names the zoo encoder it
corresponds to (``raw``, ``wrap``, ``geoclip``, ``vit16_l40``) or none, when
the model is not in the zoo (printed as published only).
:func:`references_to_markdown` lays measured and published figures side by
side.
"""

from collections.abc import Sequence
from dataclasses import dataclass

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
    "SatCLIP's 3,076 weather stations"
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
    #: Cross-validation it is compared with (``random``).
    split: str
    #: Where it is published.
    source: str


def _range(model: str, encoder: str | None, value: float) -> PublishedScore:
    return PublishedScore(
        'air_temperature', model, encoder, 'R2', value, 'linear', 'random', RANGE_SOURCE
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


def references_to_markdown(
    results: Sequence[ProbeResult],
    published: Sequence[PublishedScore] = PUBLISHED,
) -> str:
    """Measured scores beside the published ones, with their sources.

    A published figure is printed beside a result of the same task, metric,
    probe and cross-validation whose encoder it corresponds to; the others of
    a task that was run are listed as published only.

    Args:
        results: probe results.
        published: the published figures (default: :data:`PUBLISHED`).

    Returns:
        A Markdown table (``task | encoder | published as | measured |
        published | measured - published``) and the sources, or an empty
        string when no result has a published counterpart.
    """
    measured = {(r.task, r.encoder, r.metric, r.protocol, r.split): r for r in results}
    tasks = {r.task for r in results}
    rows = []
    sources: list[str] = []
    for ref in published:
        if ref.task not in tasks:
            continue
        result = measured.get(
            (ref.task, ref.encoder or '', ref.metric, ref.protocol, ref.split)
        )
        if ref.source not in sources:
            sources.append(ref.source)
        mark = f'[{sources.index(ref.source) + 1}]'
        label = f'{ref.task} ({ref.metric}, {ref.protocol}, {ref.split} CV)'
        if result is None:
            rows.append(f'| {label} | | {ref.model} {mark} | | {ref.value:.3f} | |')
        else:
            rows.append(
                f'| {label} | {result.encoder} | {ref.model} {mark} | '
                f'{result.mean:.3f} +- {result.std:.3f} | {ref.value:.3f} | '
                f'{result.mean - ref.value:+.3f} |'
            )
    if not rows:
        return ''
    lines = [
        '| task | encoder | published as | measured | published | measured - published |',
        '|---|---|---|---|---|---|',
        *rows,
        '',
        *(f'[{i}] {source}' for i, source in enumerate(sources, start=1)),
    ]
    return '\n'.join(lines) + '\n'
