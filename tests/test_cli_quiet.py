"""``--quiet`` on every long-running subcommand, and chatter kept off stdout.

``probe`` had no ``--quiet`` (the others have one), and printed a line per
result on standard output, before the results table: ``probe > results.md``
held the progress lines too.
"""

from pathlib import Path

import pytest

from torchgeo_satclip.cli import build_parser, main

#: The subcommands that run for long: each takes --quiet.
LONG_RUNNING = ('embed', 'probe', 'probe-images', 'pack', 'build', 'demo-data')


def user_task(path: Path) -> Path:
    rows = [
        f'{lon},{lat},{lat * 0.5 + 3}'
        for lon in range(-170, 180, 40)
        for lat in range(-80, 81, 20)
    ]
    path.write_text('lon,lat,value\n' + '\n'.join(rows) + '\n', encoding='utf-8')
    return path


def probe_argv(tmp_path: Path) -> list[str]:
    csv = user_task(tmp_path / 'user.csv')
    return [
        'probe',
        *('--csv', f'{csv}:value', '--encoders', 'raw', '--cv', 'random'),
        *('--folds', '2', '--no-plots', '--output-dir', str(tmp_path / 'out')),
    ]


def test_every_long_running_subcommand_takes_quiet() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == 'command')
    assert isinstance(sub.choices, dict)
    for name in LONG_RUNNING:
        dests = {a.dest for a in sub.choices[name]._actions}
        assert 'quiet' in dests, name


def test_probe_quiet_prints_the_results_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip('sklearn')
    argv = probe_argv(tmp_path)
    assert main([*argv, '--quiet']) == 0
    captured = capsys.readouterr()
    assert captured.err == ''
    table = (tmp_path / 'out' / 'probe_results.md').read_text()
    assert captured.out.startswith(table)
    assert f'wrote {tmp_path / "out" / "probe_results.md"}' in captured.out


def test_probe_progress_goes_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --quiet: the bar and a line per result on stderr, stdout clean."""
    pytest.importorskip('sklearn')
    argv = probe_argv(tmp_path)
    assert main(argv) == 0
    captured = capsys.readouterr()
    table = (tmp_path / 'out' / 'probe_results.md').read_text()
    assert captured.out.startswith(table)  # no progress line before the table
    assert 'user:value' in captured.err
    assert 'raw' in captured.err
