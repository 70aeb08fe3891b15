"""What the state says of the files of a root it cannot use.

Every file of the root is created whole (its header included, under a
temporary name, then renamed), so an empty or re-headed ``index.csv``,
``rejected.csv`` or ``dates.csv`` never comes from a killed build: it is
refused, naming the file, what it starts with and the header expected.
A root built with other parameters is refused naming what differs, compactly.
"""

from pathlib import Path

import pytest

from torchgeo_satclip.builders import BuildConfig
from torchgeo_satclip.builders._state import BuildState

MULTI = BuildConfig(start='2022-01-01', end='2022-12-31', dates=2)


@pytest.mark.parametrize('name', ['index.csv', 'rejected.csv', 'dates.csv'])
@pytest.mark.parametrize(
    ('text', 'found'),
    [
        (b'file,x,y\npatch_0.tif,1,2\n', "starts with 'file,x,y'"),
        (b'', 'is empty'),
        (b'\n', "starts with ''"),
        (b'\xff\xfefn,lon,lat\n', "is not text ('utf-8' codec can't decode"),
    ],
)
def test_bad_header_names_file_and_what_it_found(
    tmp_path: Path, name: str, text: bytes, found: str
) -> None:
    config = MULTI if name == 'dates.csv' else BuildConfig()
    with BuildState(tmp_path, config):
        pass
    path = tmp_path / name
    path.write_bytes(text)
    with pytest.raises(ValueError, match='expected the header') as raised:
        BuildState(tmp_path, config).open()
    message = str(raised.value)
    assert str(path) in message
    assert found in message
    assert path.read_bytes() == text  # left as it was
    # The lock was released: the repaired root opens.
    path.unlink()
    with BuildState(tmp_path, config):
        pass
