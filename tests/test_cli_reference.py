"""docs/cli.md is the `--help` of every subcommand, kept in step with the parser.

Regenerate the page after changing an option::

    python tests/test_cli_reference.py
"""

import argparse
import os
import sys
from pathlib import Path

from torchgeo_satclip.cli import build_parser

PAGE = Path(__file__).parents[1] / 'docs' / 'cli.md'

INTRO = """# Command-line reference

`torchgeo-satclip` is the package's command; `torchgeo fit`, `torchgeo
predict`, ... are TorchGeo's (see [training](training.md)). Each subcommand
below is shown as its `--help` prints it. This page is generated from the
parser (`python tests/test_cli_reference.py`), and a test fails when the two
differ.
"""


def render() -> str:
    """The page: the top-level help, then each subcommand's."""
    columns = os.environ.get('COLUMNS')
    os.environ['COLUMNS'] = '88'  # argparse wraps to the terminal width
    try:
        parser = build_parser()
        parts = [INTRO, '```text', parser.format_help().rstrip(), '```']
        actions = [
            a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
        ]
        for name, sub in actions[0].choices.items():
            parts += [f'\n## `{name}`\n', '```text', sub.format_help().rstrip(), '```']
    finally:
        if columns is None:
            del os.environ['COLUMNS']
        else:
            os.environ['COLUMNS'] = columns
    return '\n'.join(parts) + '\n'


def test_page_matches_the_parser() -> None:
    assert PAGE.read_text() == render(), (
        'docs/cli.md is out of date: run python tests/test_cli_reference.py'
    )


def test_page_lists_every_subcommand_and_option() -> None:
    text = PAGE.read_text()
    parser = build_parser()
    (subparsers,) = [
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ]
    assert set(subparsers.choices) == {
        'embed',
        'probe',
        'probe-images',
        'pack',
        'build',
        'demo-data',
    }
    for name, sub in subparsers.choices.items():
        assert f'## `{name}`' in text
        for action in sub._actions:
            for flag in action.option_strings:
                assert flag in text, (name, flag)


if __name__ == '__main__':
    PAGE.write_text(render())
    sys.stdout.write(f'wrote {PAGE}\n')
