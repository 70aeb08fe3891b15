"""``torchgeo predict`` writes embeddings with their points (issue 12)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .test_satclip import CONF, RECIPES, run

pytestmark = pytest.mark.usefixtures('tiny_timm')


@pytest.mark.parametrize('fmt', ['parquet', 'npy'])
def test_predict_writes_embeddings(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / 'embeddings'
    run(
        [
            'predict',
            '--config',
            str(CONF / 'satclip_s2_100k.yaml'),
            '--trainer.callbacks+=torchgeo_satclip.tasks.EmbeddingWriter',
            f'--trainer.callbacks.output_dir={out}',
            f'--trainer.callbacks.format={fmt}',
        ],
        tmp_path,
    )
    if fmt == 'parquet':
        frame = pd.read_parquet(out / 'embeddings.parquet')
        assert list(frame.columns) == [
            'lon',
            'lat',
            'location_embedding',
            'image_embedding',
        ]
        assert len(frame['location_embedding'].iloc[0]) == 8
    else:
        frame = pd.read_csv(out / 'points.csv')
        embedding = np.load(out / 'location_embedding.npy')
        assert embedding.shape == (len(frame), 8)
        assert np.load(out / 'image_embedding.npy').shape == (len(frame), 8)
    assert len(frame) > 0
    assert frame['lon'].between(-180, 180).all()
    assert not list(out.glob('.*'))  # no temporary leftovers


def test_every_recipe_writes_its_predictions() -> None:
    """`torchgeo predict` with any released-recipe config writes embeddings."""
    import yaml

    assert RECIPES
    outputs = set()
    for path in RECIPES:
        config = yaml.safe_load(path.read_text())
        writers = [
            c
            for c in config['trainer'].get('callbacks', [])
            if c['class_path'] == 'torchgeo_satclip.tasks.EmbeddingWriter'
        ]
        assert len(writers) == 1, path
        outputs.add(writers[0]['init_args']['output_dir'])
    assert len(outputs) == len(RECIPES)  # no two recipes overwrite each other
