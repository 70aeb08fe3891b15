"""A probe's output folder holds one run: refused, replaced, never mixed."""

import math
import os
import re
from pathlib import Path
from typing import Any

import matplotlib
import pytest

import torchgeo_satclip.evaluation.report as report_module
from torchgeo_satclip._io import temporary_pattern
from torchgeo_satclip.cli import main
from torchgeo_satclip.evaluation import probe_report
from torchgeo_satclip.evaluation.outputs import (
    check_outputs,
    earlier_outputs,
    remove_earlier_outputs,
)
from torchgeo_satclip.evaluation.plots import plot_scores, save_figure
from torchgeo_satclip.evaluation.probe import ProbeResult
from torchgeo_satclip.evaluation.report import PROBE_OUTPUTS
from torchgeo_satclip.evaluation.tasks import MAX_TASK_POINTS, load_task

matplotlib.use('agg')

#: Small runs: one split of two folds, the linear probe, coarse maps (a map
#: at the default resolution took most of a run's time).
FAST: dict[str, Any] = {
    'splits': ('random',),
    'folds': 2,
    'protocols': ('linear',),
    'map_resolution': 30.0,
}


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_earlier_outputs_and_check(tmp_path: Path) -> None:
    assert earlier_outputs(tmp_path / 'absent', PROBE_OUTPUTS) == []
    check_outputs(tmp_path / 'absent', PROBE_OUTPUTS, overwrite=False)
    for name in ('pca_sh.png', 'notes.txt', '.probe_results.md.1.x.tmp'):
        (tmp_path / name).write_text('x')
    (tmp_path / 'pca_dir.png').mkdir()
    assert earlier_outputs(tmp_path, PROBE_OUTPUTS) == [tmp_path / 'pca_sh.png']
    with pytest.raises(
        FileExistsError,
        match=f'{tmp_path} already holds the results of a probe run \\(pca_sh.png\\); '
        r'pass --overwrite \(overwrite=True\)',
    ):
        check_outputs(tmp_path, PROBE_OUTPUTS, overwrite=False)
    check_outputs(tmp_path, PROBE_OUTPUTS, overwrite=True)
    with pytest.raises(NotADirectoryError, match='is a file, not an output folder'):
        check_outputs(tmp_path / 'notes.txt', PROBE_OUTPUTS, overwrite=True)
    removed = remove_earlier_outputs(tmp_path, PROBE_OUTPUTS, [])
    assert removed == [tmp_path / 'pca_sh.png']
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        '.probe_results.md.1.x.tmp',
        'notes.txt',
        'pca_dir.png',
    ]


def test_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    probe_report(tmp_path, ['air_temperature'], ['raw'], plots=False, **FAST)
    before = contents(tmp_path)

    def no_work(*args: Any, **kwargs: Any) -> None:
        raise AssertionError('probed before the output folder was checked')

    monkeypatch.setattr(report_module, 'resolve_encoders', no_work)
    monkeypatch.setattr(report_module, 'run_probes', no_work)
    with pytest.raises(
        FileExistsError, match=re.escape('probe_results.csv, probe_results.md')
    ):
        probe_report(tmp_path, ['air_temperature'], ['raw'], plots=False, **FAST)
    argv = ['probe', '--tasks', 'air_temperature', '--encoders', 'raw']
    assert main([*argv, '--no-plots', '--output-dir', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('torchgeo-satclip probe: error: ')
    assert 'pass --overwrite' in err
    assert contents(tmp_path) == before


def test_overwrite_replaces_the_run_and_drops_its_other_files(tmp_path: Path) -> None:
    first = probe_report(
        tmp_path, ['land_ocean'], ['raw', 'sh'], num_points=200, **FAST
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'pca_sh.png',
        'probe_results.csv',
        'probe_results.md',
        'scores.png',
    ]
    (tmp_path / 'mine.txt').write_text('not a result')
    # a map of the user's own, named like the probe's maps: no run wrote it
    (tmp_path / 'pca_notes.png').write_bytes(b'my own figure')
    second = probe_report(
        tmp_path,
        ['land_ocean'],
        ['raw', 'wrap'],
        num_points=200,
        overwrite=True,
        **FAST,
    )
    assert [r.encoder for r in first.results] == ['raw', 'sh']
    assert [r.encoder for r in second.results] == ['raw', 'wrap']
    # pca_sh.png was the first run's: gone; the user's own files stay
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'mine.txt',
        'pca_notes.png',
        'pca_wrap.png',
        'probe_results.csv',
        'probe_results.md',
        'scores.png',
    ]
    assert 'wrap' in (tmp_path / 'probe_results.md').read_text()
    assert (tmp_path / 'pca_notes.png').read_bytes() == b'my own figure'


@pytest.mark.parametrize('failing', ['plot_scores', 'plot_pca_map', 'write_results'])
def test_a_failed_run_keeps_the_earlier_results(
    failing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tables, score bars, maps: all of the new run or none of it."""
    probe_report(tmp_path, ['land_ocean'], ['raw', 'sh'], num_points=200, **FAST)
    before = contents(tmp_path)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(report_module, failing, broken)
    with pytest.raises(OSError, match='No space left'):
        probe_report(
            tmp_path,
            ['land_ocean'],
            ['raw', 'wrap'],
            num_points=200,
            overwrite=True,
            **FAST,
        )
    assert contents(tmp_path) == before  # no staging folder left either


def test_a_killed_runs_staging_folder_is_removed(tmp_path: Path) -> None:
    dead = tmp_path / '.stage.999999999.abc123'  # no such process
    dead.mkdir()
    (dead / 'probe_results.md').write_text('half a run')
    alive = tmp_path / f'.stage.{os.getpid()}.other'  # a run still going
    alive.mkdir()
    probe_report(tmp_path, ['air_temperature'], ['raw'], plots=False, **FAST)
    assert not dead.exists()
    assert alive.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        'probe_results.csv',
        'probe_results.md',
    ]


def test_save_figure_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt

    path = tmp_path / 'scores.png'
    path.write_bytes(b'the earlier figure')
    fig = plt.figure()

    def failing(self: Any, fname: Any, **kwargs: Any) -> None:
        Path(fname).write_bytes(b'half')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(type(fig), 'savefig', failing)
    with pytest.raises(OSError, match='No space'):
        save_figure(fig, path)
    assert os.listdir(tmp_path) == ['scores.png']
    assert path.read_bytes() == b'the earlier figure'
    monkeypatch.undo()
    fig = plt.figure()
    assert save_figure(fig, tmp_path / 'plain') == tmp_path / 'plain'
    assert (tmp_path / 'plain').read_bytes()[:4] == b'\x89PNG'
    assert sorted(os.listdir(tmp_path)) == ['plain', 'scores.png']


@pytest.mark.parametrize(
    ('options', 'message'),
    [
        ({'tasks': ['koppen', 'koppen']}, "task 'koppen' is given twice; give it once"),
        ({'encoders': ['raw', 'sh', 'raw']}, "encoder 'raw' is given twice"),
        (
            {'csv_tasks': [('{csv}', 'y'), ('{dot}', 'y')]},
            r"CSV task '\./.*t\.csv:y' is given twice \(as '/.*t\.csv:y' and",
        ),
        (
            {'encoders': ['{ckpt}', '{dot_ckpt}']},
            r"encoder '\./.*m\.ckpt' is given twice \(as '/",
        ),
    ],
)
def test_a_value_given_twice_is_refused(
    options: dict[str, Any],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    csv = tmp_path / 't.csv'
    csv.write_text('lon,lat,y\n1,2,3\n')
    ckpt = tmp_path / 'm.ckpt'
    ckpt.write_bytes(b'')
    monkeypatch.chdir(tmp_path.parent)
    names = {
        'csv': str(csv),
        'dot': f'./{tmp_path.name}/t.csv',
        'ckpt': str(ckpt),
        'dot_ckpt': f'./{tmp_path.name}/m.ckpt',
    }

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.format(**names)
        if isinstance(value, tuple):
            return tuple(fill(v) for v in value)
        return [fill(v) for v in value]

    given: dict[str, Any] = {'tasks': [], 'encoders': ['raw']}
    given.update({key: fill(value) for key, value in options.items()})
    with pytest.raises(ValueError, match=message):
        probe_report(tmp_path / 'out', **given, **FAST)
    assert not (tmp_path / 'out').exists()


def test_a_weights_name_spelt_two_ways_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_work(*args: Any, **kwargs: Any) -> None:
        raise AssertionError('an encoder was loaded before the check')

    monkeypatch.setattr(report_module, 'resolve_encoders', no_work)
    for names in (
        ['SATCLIP_RESNET18_L10', 'satclip_resnet18_l10'],
        ['SatCLIPWeights.SATCLIP_RESNET18_L10', 'SATCLIP_RESNET18_L10'],
        ['geoclip', 'GeoCLIPWeights.GEOCLIP'],
    ):
        with pytest.raises(ValueError, match=f"encoder '{names[1]}' is given twice"):
            probe_report(tmp_path / 'out', [], names, **FAST)


def test_cli_duplicate_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / 't.csv'
    csv.write_text('lon,lat,y\n1,2,3\n')
    argv = ['probe', '--csv', f'{csv}:y', '--csv', f'{csv}:y', '--no-plots']
    assert main([*argv, '--output-dir', str(tmp_path / 'out')]) == 2
    assert f"CSV task '{csv}:y' is given twice; give it once" in capsys.readouterr().err


def test_num_points_at_most_the_maximum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match='num_points must be at most 1,000,000'):
        load_task('koppen', num_points=MAX_TASK_POINTS + 1)
    argv = ['probe', '--tasks', 'koppen', '--num-points', str(10**12)]
    assert main([*argv, '--output-dir', str(tmp_path)]) == 2
    assert 'at most 1,000,000' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    # checked before any encoder is loaded (a download, GeoCLIP's weights)
    monkeypatch.setattr(report_module, 'resolve_encoders', None)
    with pytest.raises(ValueError, match='at most 1,000,000'):
        probe_report(tmp_path, ['air_temperature'], ['raw'], num_points=10**7)


def _result(scores: list[float]) -> ProbeResult:
    return ProbeResult('air', 'sh', 'linear', 'random', 'R2', scores)


@pytest.mark.parametrize(
    ('results', 'message'),
    [
        ([], 'results must be a non-empty list of probe results, got []'),
        (
            [_result([0.5, 0.6]), _result([math.nan, 0.5])],
            "result 2 (task 'air', encoder 'sh', linear random) has scores "
            '[nan, 0.5]: expected one or more finite scores',
        ),
        ([_result([])], 'has scores []: expected one or more finite scores'),
    ],
)
def test_plot_scores_refuses_what_it_cannot_draw(
    results: list[ProbeResult], message: str, tmp_path: Path
) -> None:
    """No result left a matplotlib figure open and raised matplotlib's
    'Number of columns must be a positive integer, not 0'; a NaN score was
    drawn as a missing bar, silently."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    with pytest.raises(ValueError, match=re.escape(message)):
        plot_scores(results, tmp_path / 'scores.png')
    assert plt.get_fignums() == before
    assert list(tmp_path.iterdir()) == []


def test_plot_scores_closes_its_figure_when_drawing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError('layout failed')

    monkeypatch.setattr(Figure, 'tight_layout', broken)
    before = plt.get_fignums()
    with pytest.raises(RuntimeError, match='layout failed'):
        plot_scores([_result([0.5, 0.6])], tmp_path / 'scores.png')
    assert plt.get_fignums() == before


def test_every_encoder_drawn_is_in_the_legend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The legend was read from the first panel's first group of bars only:
    an encoder with no result there (results of two runs put together) was
    drawn in its colour with no name."""
    import torchgeo_satclip.evaluation.plots as plots_module

    drawn: list[Any] = []
    save = plots_module.save_figure

    def keep(fig: Any, path: Any, **options: Any) -> Path:
        drawn.append([text.get_text() for text in fig.legends[0].get_texts()])
        return save(fig, path, **options)

    monkeypatch.setattr(plots_module, 'save_figure', keep)
    results = [
        ProbeResult('t1', 'a', 'linear', 'random', 'R2', [0.5, 0.6]),
        ProbeResult('t2', 'a', 'linear', 'random', 'R2', [0.5, 0.6]),
        ProbeResult('t2', 'b', 'linear', 'random', 'R2', [0.7, 0.8]),
        ProbeResult('t1', 'c', 'linear', 'spatial', 'R2', [0.7, 0.8]),
    ]
    plot_scores(results, tmp_path / 'scores.png')
    assert drawn == [['a', 'b', 'c']]


def test_save_figure_closes_its_figure_when_the_folder_cannot_be_made(
    tmp_path: Path,
) -> None:
    """The output folder was made before the ``try`` that closes the figure:
    a path under a file raised and left the figure open."""
    import matplotlib.pyplot as plt

    (tmp_path / 'taken').write_text('a file, not a folder')
    fig = plt.figure()
    before = [n for n in plt.get_fignums() if n != fig.number]
    with pytest.raises(FileExistsError, match='taken'):
        save_figure(fig, tmp_path / 'taken' / 'scores.png')
    assert plt.get_fignums() == before


def test_the_image_probe_plot_closes_its_figure_when_drawing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """probe-images' bar chart had no close-on-error: a failure while drawing
    left its figure open (plot_scores and plot_pca_map close theirs)."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from torchgeo_satclip.evaluation.image_probe import ImageProbeResult, _plot

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError('layout failed')

    monkeypatch.setattr(Figure, 'tight_layout', broken)
    results = [ImageProbeResult('a', 'random', [0.5, 0.7], [0.4, 0.6], 10, 2)]
    before = plt.get_fignums()
    with pytest.raises(RuntimeError, match='layout failed'):
        _plot(results, tmp_path / 'image_probe.png', 'title', 0.5)
    assert plt.get_fignums() == before
    assert list(tmp_path.iterdir()) == []


def flushed_before_rename(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the names of the files flushed to the disk (``os.fsync``)."""
    names: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        names.append(Path(os.readlink(f'/proc/self/fd/{fd}')).name)
        real(fd)

    monkeypatch.setattr(os, 'fsync', spy)
    return names


@pytest.mark.skipif(not Path('/proc/self/fd').is_dir(), reason='needs /proc')
def test_every_file_of_a_probe_run_is_flushed_before_its_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """published.md was written with a plain write_text into the staging
    folder, never flushed to the disk (probe_results.* and the figures go
    through _io.atomic_path, which flushes): a power cut after the rename
    could bring it back empty."""
    flushed = flushed_before_rename(monkeypatch)
    report = probe_report(
        tmp_path, ['air_temperature'], ['raw'], plots=False, references=True, **FAST
    )
    assert report.published == tmp_path / 'published.md'
    for name in ('probe_results.md', 'probe_results.csv', 'published.md'):
        pattern = temporary_pattern(name)
        assert any(pattern.fullmatch(f) for f in flushed), (name, flushed)


@pytest.mark.parametrize('name', ['probe_results.md', 'published.md'])
def test_a_folder_under_an_output_name_is_refused_before_any_work(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder named probe_results.md was not an earlier result (not a
    file), so the run went ahead, probed everything, renamed
    probe_results.csv into place and then failed on the folder with
    IsADirectoryError: the earlier run's files half replaced."""
    (tmp_path / name).mkdir()
    (tmp_path / 'probe_results.csv').write_text('the earlier table')

    def no_work(*args: Any, **kwargs: Any) -> None:
        raise AssertionError('probed before the output folder was checked')

    monkeypatch.setattr(report_module, 'run_probes', no_work)
    for overwrite in (False, True):
        with pytest.raises(IsADirectoryError, match=re.escape(name)) as info:
            probe_report(
                tmp_path, ['air_temperature'], ['raw'], overwrite=overwrite, **FAST
            )
        assert str(tmp_path) in str(info.value)
        assert 'a folder' in str(info.value)
    assert (tmp_path / 'probe_results.csv').read_text() == 'the earlier table'


@pytest.mark.skipif(not Path('/proc/self/fd').is_dir(), reason='needs /proc')
def test_the_output_folder_is_flushed_after_the_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """staged_outputs renamed the run's files into the output folder but
    never flushed the folder's entries: a power cut after the run could
    bring back the folder without the new files (or with the earlier run's
    files it had removed)."""
    from torchgeo_satclip.evaluation.outputs import staged_outputs

    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(('fsync', os.readlink(f'/proc/self/fd/{fd}')))
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append(('replace', str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'replace', replace)
    out = tmp_path / 'run'
    with staged_outputs(out, ['a.md', 'b.csv']) as stage:
        (stage / 'a.md').write_text('a', encoding='utf-8')
        (stage / 'b.csv').write_text('b', encoding='utf-8')
    renames = [i for i, (kind, _) in enumerate(events) if kind == 'replace']
    flushes = [i for i, event in enumerate(events) if event == ('fsync', str(out))]
    assert renames, events
    assert flushes, events
    assert flushes[-1] > renames[-1], events


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row (``\\|`` is inside a cell)."""
    return re.split(r'(?<!\\)\|', line.strip())[1:-1]


def test_a_pipe_in_a_name_stays_in_its_cell() -> None:
    """A task or encoder named with '|' (a CSV column 'a|b', a checkpoint
    'x|y.ckpt') ended its cell: the row had more cells than the header,
    shifting every score after it under another encoder's name."""
    from torchgeo_satclip.evaluation import image_probe_to_markdown, results_to_markdown
    from torchgeo_satclip.evaluation.image_probe import ImageProbeResult
    from torchgeo_satclip.evaluation.references import references_to_markdown

    results = [
        ProbeResult('pts:a|b', 'x|y', 'linear', 'random', 'R2', [0.5, 0.6]),
        ProbeResult('pts:a|b', 'raw', 'linear', 'random', 'R2', [0.1, 0.2]),
        ProbeResult('air_temperature', 'x|y', 'linear', 'random', 'R2', [0.7]),
    ]
    for table in (
        results_to_markdown(results),
        references_to_markdown(results),
        image_probe_to_markdown(
            [ImageProbeResult('m|n', 'random', [0.5], [0.4], 10, 2)],
            {'m|n': 'resnet|18\nv2'},
        ),
    ):
        rows = [line for line in table.splitlines() if line.startswith('|')]
        assert len(rows) >= 3, table
        assert {len(_cells(row)) for row in rows} == {len(_cells(rows[0]))}, table
    table = results_to_markdown(results)
    assert '| pts:a\\|b |' in table
    assert '| x\\|y |' in table.splitlines()[0]


def test_overwrite_deletes_only_the_maps_of_the_earlier_runs_encoders(
    tmp_path: Path,
) -> None:
    """--overwrite deleted every pca_*.png of the folder as an earlier run's
    map (a user's pca_notes.png too): only the maps of the encoders in the
    earlier run's probe_results.csv are its, matched by name, not pattern."""
    from torchgeo_satclip.evaluation.outputs import staged_outputs
    from torchgeo_satclip.evaluation.report import _earlier_run_files

    out = tmp_path / 'run'
    out.mkdir()
    names = ['pca_a[1].png', 'pca_a1.png', 'pca_raw.png', 'pca_notes.png']
    for name in [*names, 'published.md']:
        (out / name).write_bytes(b'x')
    # an earlier run of the encoders raw (no map) and a[1]
    (out / 'probe_results.csv').write_text(
        'task,encoder,protocol,split,metric,mean,std,folds\n'
        't,raw,linear,random,R2,0.5,0.1,0.4 0.6\n'
        't,a[1],linear,random,R2,0.5,0.1,0.4 0.6\n',
        encoding='utf-8',
    )
    with staged_outputs(out, _earlier_run_files(out)) as stage:
        (stage / 'probe_results.csv').write_text('new', encoding='utf-8')
    assert sorted(path.name for path in out.iterdir()) == [
        'pca_a1.png',
        'pca_notes.png',
        'pca_raw.png',
        'probe_results.csv',
    ]
    # no table that can be read: no map is known to be the run's
    (out / 'pca_a[1].png').write_bytes(b'x')
    (out / 'probe_results.csv').write_bytes(b'\xff\xfe not utf-8')
    assert _earlier_run_files(out) == [
        'probe_results.md',
        'probe_results.csv',
        'published.md',
        'scores.png',
    ]
