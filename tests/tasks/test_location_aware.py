import dataclasses
import inspect
import re
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal, cast

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.loggers import Logger
from torch import Tensor
from torchgeo.main import main

from torchgeo_satclip._compat import (
    TORCHGEO_AT_LEAST_0_10,
    ClassificationTask,
    RegressionTask,
)
from torchgeo_satclip.datamodules import EuroSATLocationDataModule
from torchgeo_satclip.models import (
    LocationFusionModel,
    LocationOnlyModel,
    save_official_checkpoint,
)
from torchgeo_satclip.tasks import (
    LocationAwareClassificationTask,
    LocationAwareRegressionTask,
    LocationClassificationTask,
    LocationRegressionTask,
    SatCLIPTask,
)
from torchgeo_satclip.tasks.utils import (
    DEPRECATED_LOCATION_ARGS,
    LOCATION_DEFAULTS,
    LocationEncoderArgs,
    check_point_precision,
)

CONF = Path('tests', 'conf')


pytestmark = pytest.mark.usefixtures('tiny_timm_classifier')


def run(args: list[str], tmp_path: Path) -> None:
    main(
        [
            *args,
            '--trainer.accelerator',
            'cpu',
            '--trainer.fast_dev_run',
            '1',
            '--trainer.default_root_dir',
            str(tmp_path),
        ]
    )


@pytest.mark.parametrize('name', ['eurosat_location', 'eurosat_location_film'])
def test_fit_fast_dev_run(name: str, tmp_path: Path) -> None:
    run(['fit', '--config', str(CONF / f'{name}.yaml')], tmp_path)


def test_shipped_eurosat_config_on_fake_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Path('configs', 'eurosat_location.yaml').resolve()
    data = Path('tests', 'data', 'eurosat').resolve()
    monkeypatch.chdir(tmp_path)  # the recipe writes checkpoints/eurosat_location
    run(
        [
            'fit',
            '--config',
            str(config),
            '--model.init_args.weights',
            'null',
            '--model.init_args.location_weights',
            'null',
            '--model.init_args.allow_random_location',
            'true',
            '--model.init_args.num_classes',
            '2',
            '--data.init_args.batch_size',
            '2',
            '--data.init_args.num_workers',
            '0',
            '--data.dict_kwargs.root',
            str(data),
            '--data.dict_kwargs.download',
            'false',
        ],
        tmp_path,
    )


def test_air_temperature_recipe_resumes_from_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`--ckpt_path last` continues the shipped recipe instead of starting over.

    The recipe had no ModelCheckpoint with a fixed folder: Lightning warned
    that there was no last checkpoint and trained from scratch.
    """
    config = Path('configs', 'air_temperature_location.yaml').resolve()
    monkeypatch.chdir(tmp_path)
    last = tmp_path / 'checkpoints' / 'air_temperature_location' / 'last.ckpt'

    def fit(max_epochs: int, *extra: str) -> None:
        main(
            [
                'fit',
                '--config',
                str(config),
                '--model.init_args.location_weights',
                'null',
                '--model.init_args.freeze_location',
                'false',
                '--model.init_args.legendre_polys',
                '3',
                '--model.init_args.embed_dim',
                '8',
                '--model.init_args.capacity',
                '16',
                '--model.init_args.head_hidden',
                '8',
                '--trainer.accelerator',
                'cpu',
                '--trainer.limit_train_batches',
                '3',
                '--trainer.limit_val_batches',
                '1',
                '--trainer.num_sanity_val_steps',
                '0',
                '--trainer.max_epochs',
                str(max_epochs),
                '--trainer.logger',
                'false',
                '--trainer.enable_progress_bar',
                'false',
                *extra,
            ]
        )

    fit(1)
    first = torch.load(last, weights_only=True, map_location='cpu')
    assert first['global_step'] == 3
    with caplog.at_level('INFO'):
        fit(2, '--ckpt_path', 'last')
    assert f'Restoring states from the checkpoint path at {last}' in caplog.text
    resumed = torch.load(last, weights_only=True, map_location='cpu')
    assert resumed['global_step'] == 6  # 3 more steps, not 3 from scratch


def test_point_dataset_location_only_fit(tmp_path: Path) -> None:
    run(['fit', '--config', str(CONF / 'air_temperature_location.yaml')], tmp_path)


@pytest.mark.parametrize('precision', ['16-true', 'bf16-true'])
def test_true_half_precision_is_refused(precision: str, tmp_path: Path) -> None:
    """The points would reach the location encoder rounded (by up to 0.5 degree)."""
    with pytest.raises(ValueError, match=f"precision='{precision}' casts every"):
        run(
            [
                'fit',
                '--config',
                str(CONF / 'air_temperature_location.yaml'),
                f'--trainer.precision={precision}',
            ],
            tmp_path,
        )


@pytest.mark.parametrize('precision', ['32-true', '64-true', 'bf16-mixed'])
def test_other_precisions_keep_the_points(precision: str) -> None:
    trainer = Trainer(precision=precision, accelerator='cpu', logger=False)  # type: ignore[arg-type]
    check_point_precision(trainer)
    check_point_precision(None)
    check_point_precision(SimpleNamespace())  # no precision plugin


def test_any_plugin_narrowing_the_batches_is_refused() -> None:
    """Transformer Engine's precisions cast batches to half too (asked, not named)."""
    for dtype, mixed in ((torch.bfloat16, 'bf16-mixed'), (torch.float16, '16-mixed')):
        plugin = SimpleNamespace(convert_input=lambda x, d=dtype: x.to(d))
        trainer = SimpleNamespace(
            precision='transformer-engine', precision_plugin=plugin
        )
        with pytest.raises(ValueError, match=f"'transformer-engine' .* use '{mixed}'"):
            check_point_precision(trainer)


def test_no_trainer_or_no_points(tmp_path: Path) -> None:
    """setup() without a trainer does nothing, as Lightning's; a task of
    precomputed embeddings reads no points, so any precision is its own."""
    task = LocationClassificationTask(num_classes=3, allow_random_location=True)
    task.setup('fit')
    embedded = LocationClassificationTask(
        num_classes=3, location_input='embedding', allow_random_location=True
    )
    embedded._trainer = Trainer(precision='bf16-true', accelerator='cpu', logger=False)
    embedded.setup('fit')
    task._trainer = embedded._trainer
    with pytest.raises(ValueError, match="precision='bf16-true'"):
        task.setup('fit')


def test_deprecated_name_in_yaml_still_works(tmp_path: Path) -> None:
    config = CONF / 'air_temperature_location.yaml'
    with pytest.warns(DeprecationWarning, match='location_capacity is deprecated'):
        run(
            [
                'fit',
                '--config',
                str(config),
                '--model.init_args.capacity',
                '512',
                '--model.init_args.location_capacity',
                '12',
            ],
            tmp_path,
        )


def small(**kwargs: Any) -> dict[str, Any]:
    return {
        'legendre_polys': 3,
        'embed_dim': 8,
        'capacity': 8,
        'allow_random_location': True,
        **kwargs,
    }


def test_location_only_moves_locations_to_the_model(tmp_path: Path) -> None:
    """Lon/lat read from GeoDataset bounds are made on the CPU (Lightning has
    no tensor to move): a location-only task on a GPU passed them to its
    model there. The model is put on the meta device, a stand-in for a GPU
    on a machine without one."""
    from torchgeo.datasets import RasterDataset
    from torchgeo.datasets.utils import stack_samples

    from tests.transforms.test_location import PARIS, write_utm_tif

    write_utm_tif(tmp_path / 'paris.tif', PARIS)
    dataset = RasterDataset(paths=str(tmp_path))
    batch = stack_samples([dataset[dataset.bounds], dataset[dataset.bounds]])
    batch['crs'] = [dataset.crs, dataset.crs]  # torchgeo 0.10 samples have none
    seen: list[torch.device] = []

    class Recorder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, location: Tensor) -> Tensor:
            seen.append(location.device)
            return location[:, :1]

    task = LocationRegressionTask(**small())
    task.model = Recorder()
    task.to('meta')
    task._output(batch)
    assert seen == [torch.device('meta')]


def test_subclasses_and_hparams() -> None:
    task = LocationAwareClassificationTask(model='tiny', num_classes=3, **small())
    assert isinstance(task, ClassificationTask)
    assert task.hparams['legendre_polys'] == 3
    assert task.hparams['num_classes'] == 3
    assert 'location_weights' not in task.hparams
    assert isinstance(LocationRegressionTask(**small()), RegressionTask)


LONLAT = torch.tensor([[2.35, 48.86], [-74.0, 40.7]])


@pytest.mark.parametrize('fusion', ['concat', 'film'])
def test_forward_and_frozen_location(fusion: Literal['concat', 'film']) -> None:
    task = LocationAwareClassificationTask(
        model='tiny', num_classes=3, fusion=fusion, **small()
    )
    images = torch.randn(2, 3, 8, 8)
    assert task(images, LONLAT).shape == (2, 3)
    encoder = cast(LocationFusionModel, task.model).location.encoder
    task.train()
    assert not encoder.training
    assert all(not p.requires_grad for p in encoder.parameters())
    # precomputed embeddings, declared as such, give the same output
    embedded = LocationAwareClassificationTask(
        model='tiny',
        num_classes=3,
        fusion=fusion,
        location_input='embedding',
        **small(),
    )
    embedded.load_state_dict(task.state_dict())
    with torch.no_grad():
        embedding = encoder(LONLAT.double()).float()
    torch.testing.assert_close(embedded(images, embedding), task(images, LONLAT))


def batch_at(lonlat: torch.Tensor, **extra: torch.Tensor) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        'image': torch.randn(len(lonlat), 3, 8, 8, generator=g),
        'point': lonlat,
        'label': torch.tensor([0, 2])[: len(lonlat)],
        **extra,
    }


@pytest.mark.parametrize('task_class', ['fusion', 'location-only'])
def test_location_passed_explicitly_and_nothing_kept(task_class: str) -> None:
    """Each step hands the batch's own location to the model; no state stays."""
    if task_class == 'fusion':
        task: Any = LocationAwareClassificationTask(
            model='tiny', num_classes=3, **small()
        )
    else:
        task = LocationClassificationTask(num_classes=3, **small())
    # the location is a required argument of forward, not a fallback
    location = inspect.signature(task.forward).parameters['location']
    assert location.default is inspect.Parameter.empty
    seen: list[torch.Tensor] = []
    model_forward = task.model.forward

    def spy(*args: torch.Tensor) -> torch.Tensor:
        seen.append(args[-1])
        return cast(Tensor, model_forward(*args))

    task.model.forward = spy
    task.configure_losses()
    attributes = set(vars(task))
    far = torch.tensor([[150.0, -30.0], [-120.0, 60.0]])
    losses = [task.training_step(batch_at(lonlat), 0) for lonlat in (LONLAT, far)]
    assert set(vars(task)) == attributes  # no attribute appears between calls
    assert losses[0].item() != losses[1].item()
    torch.testing.assert_close(seen[0], LONLAT.double())
    torch.testing.assert_close(seen[1], far.double())
    task.validation_step(batch_at(far), 0)
    task.test_step(batch_at(LONLAT), 0)
    assert task.predict_step(batch_at(far), 0).shape == (2, 3)
    torch.testing.assert_close(seen[-1], far.double())
    assert set(vars(task)) == attributes


def quiet_fast_dev_run() -> Trainer:
    """A CPU trainer of one training and one validation batch, writing nothing."""
    return Trainer(
        accelerator='cpu',
        fast_dev_run=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def test_location_only_refuses_labels_it_cannot_learn() -> None:
    """A missing regression value (NaN) gave a NaN loss in silence, and one
    optimiser step made every weight NaN; a class label outside [0,
    num_classes) (labels counted from 1) failed inside torchmetrics with
    "shape '[3, 3]' is invalid for input of size 18". The batch is checked
    on the CPU, before Lightning moves it (the step checked it on the
    device, a host synchronisation per step)."""
    regression = LocationRegressionTask(**small())
    good = {'point': LONLAT, 'label': torch.tensor([1.5, -0.5])}
    assert regression.on_before_batch_transfer(good, 0) is good
    missing = {'point': LONLAT, 'label': torch.tensor([1.5, float('nan')])}
    message = "batch 'label' row 1 is nan: expected finite regression targets"
    with pytest.raises(ValueError, match=re.escape(message)):
        regression.on_before_batch_transfer(missing, 0)
    two = LocationRegressionTask(num_outputs=2, **small())
    missing = {'point': LONLAT, 'label': torch.tensor([[1.0, 2.0], [float('inf'), 0]])}
    with pytest.raises(ValueError, match=re.escape('row 1')):
        two.on_before_batch_transfer(missing, 0)

    classification = LocationClassificationTask(num_classes=3, **small())
    for label, value in ((torch.tensor([1, 3]), 3), (torch.tensor([0, -1]), -1)):
        message = (
            f"batch 'label' row 1 is {value}: expected an integer class in [0, 3) "
            '(num_classes=3); class labels count from 0'
        )
        with pytest.raises(ValueError, match=re.escape(message)):
            classification.on_before_batch_transfer(
                {'point': LONLAT, 'label': label}, 0
            )
    good = {'point': LONLAT, 'label': torch.tensor([0, 2])}
    assert classification.on_before_batch_transfer(good, 0) is good


def test_location_input_mismatch_is_an_error() -> None:
    images = torch.randn(2, 3, 8, 8)
    task = LocationAwareRegressionTask(model='tiny', **small())
    embedding = torch.randn(2, 8)
    with pytest.raises(ValueError, match="location_input='lonlat' expects"):
        task(images, embedding)  # an embedding where lon/lat is declared
    embedded = LocationAwareRegressionTask(
        model='tiny', location_input='embedding', **small()
    )
    with pytest.raises(ValueError, match="location_input='embedding' expects"):
        embedded(images, LONLAT)  # lon/lat where embeddings are declared
    assert embedded(images, embedding).shape == (2, 1)
    with pytest.raises(KeyError, match='location_embedding'):
        embedded.training_step(batch_at(LONLAT, label=torch.ones(2)), 0)
    only = LocationRegressionTask(location_input='embedding', **small())
    with pytest.raises(ValueError, match="location_input='embedding' expects"):
        only(LONLAT)
    with pytest.raises(ValueError, match='frozen location encoder'):
        LocationRegressionTask(
            location_input='embedding', freeze_location=False, **small()
        )


def test_batch_without_the_declared_location_names_its_keys() -> None:
    """A batch lacking the location that location_input declares was refused
    without the keys it did have, nor a word of the other location_input."""
    embedded = LocationAwareRegressionTask(
        model='tiny', location_input='embedding', **small()
    )
    message = (
        "location_input='embedding' needs batches with a 'location_embedding' "
        "(see transforms.LocationEmbedding); the batch has keys 'image', "
        "'point', 'label' (for its 'point' use location_input='lonlat')"
    )
    with pytest.raises(KeyError) as raised:
        embedded.batch_location(batch_at(LONLAT, label=torch.ones(2)))
    assert raised.value.args[0] == message
    lonlat = LocationAwareRegressionTask(model='tiny', **small())
    batch = {'image': torch.zeros(2, 3, 8, 8), 'location_embedding': torch.zeros(2, 8)}
    message = (
        "the sample (keys 'image', 'location_embedding') has no location: "
        "expected 'point' (lon, lat), 'lon' and 'lat', or GeoDataset 'bounds' "
        "with a CRS (for its 'location_embedding' use location_input='embedding')"
    )
    with pytest.raises(KeyError) as raised:
        lonlat.batch_location(batch)
    assert raised.value.args[0] == message


def test_location_only_fit_in_float64(tmp_path: Path) -> None:
    """``precision='64-true'`` keeps the points, and the location-only head runs.

    The embedding was cast to float32 before the float64 head: "mat1 and
    mat2 must have the same dtype, but got Float and Double".
    """
    run(
        [
            'fit',
            '--config',
            str(CONF / 'air_temperature_location.yaml'),
            '--trainer.precision=64-true',
        ],
        tmp_path,
    )


@pytest.mark.parametrize('location_input', ['lonlat', 'embedding'])
@pytest.mark.parametrize('model_dtype', [torch.float32, torch.float64])
def test_embedding_cast_to_the_model_dtype(
    location_input: Literal['lonlat', 'embedding'], model_dtype: torch.dtype
) -> None:
    """Each model casts the embedding (encoder's or precomputed) to its own dtype."""
    for dtype in (torch.float32, torch.float64):
        if location_input == 'lonlat':
            location = LONLAT.to(dtype)
        else:
            location = torch.randn(2, 8, dtype=dtype)
        only = LocationRegressionTask(location_input=location_input, **small())
        assert only.to(model_dtype)(location).dtype == model_dtype
        aware = LocationAwareRegressionTask(
            model='tiny', location_input=location_input, **small()
        ).to(model_dtype)
        images = torch.randn(2, 3, 8, 8, dtype=model_dtype)
        assert aware(images, location).dtype == model_dtype


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'head_hidden': 0}, 'head_hidden must be at least 1, got 0'),
        ({'head_layers': -1}, 'head_layers must be at least 0, got -1'),
        ({'head_dropout': 1.0}, 'head_dropout must be in [0, 1), got 1.0'),
        ({'head_hidden': 8.0}, 'head_hidden must be an integer, got 8.0'),
    ],
)
@pytest.mark.parametrize(
    'task_class',
    [LocationClassificationTask, LocationRegressionTask],
    ids=lambda c: c.__name__,
)
def test_bad_head_is_refused(
    task_class: type, kwargs: dict[str, Any], message: str
) -> None:
    """A head that cannot learn is refused, naming the argument and the value.

    ``head_hidden=0`` built layers of width 0: the task trained and predicted
    the last bias alone, the same value wherever the point; ``head_layers=-1``
    was a linear head and ``head_dropout=1.0`` zeroed every hidden feature.
    """
    extra = {'num_classes': 3} if task_class is LocationClassificationTask else {}
    with pytest.raises(ValueError, match=re.escape(message)):
        task_class(**extra, **small(), **kwargs)
    # the limits themselves are accepted
    task_class(**extra, **small(), head_hidden=1, head_layers=0, head_dropout=0.0)


def test_bad_location_only_model_is_refused() -> None:
    encoder = cast(
        LocationOnlyModel, LocationRegressionTask(**small()).model
    ).location.encoder
    for kwargs, message in (
        ({'hidden': 0}, 'hidden must be at least 1, got 0'),
        ({'num_layers': -1}, 'num_layers must be at least 0, got -1'),
        ({'dropout': 1.0}, 'dropout must be in [0, 1), got 1.0'),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            LocationOnlyModel(encoder, 1, **kwargs)


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'fusion': 'sum'}, "fusion must be 'concat' or 'film', got 'sum'"),
        (
            {'location_input': 'latlon'},
            "location_input must be 'lonlat' or 'embedding', got 'latlon'",
        ),
        (
            {'freeze_location': 'false'},
            "freeze_location must be True or False, got 'false' (type str)",
        ),
        ({'num_outputs': 0}, 'num_outputs must be at least 1, got 0'),
        ({'num_features': 0}, 'num_features must be at least 1, got 0'),
    ],
)
def test_bad_fusion_model_is_refused(kwargs: dict[str, Any], message: str) -> None:
    """The fusion models' arguments are checked, naming the argument.

    ``freeze_location='false'`` (a string, so truthy) froze the encoder,
    ``num_outputs=0`` built a head of no outputs (an empty prediction and a
    NaN loss), and a misspelt fusion or location input was reported as
    ``'sum' is not a valid Fusion``, naming neither the argument nor the
    choices.
    """
    encoder = cast(
        LocationOnlyModel, LocationRegressionTask(**small()).model
    ).location.encoder
    args: dict[str, Any] = {
        'backbone': torch.nn.Flatten(),
        'num_features': 12,
        'location_encoder': encoder,
        'num_outputs': 2,
        **kwargs,
    }
    with pytest.raises(ValueError, match=re.escape(message)):
        LocationFusionModel(**args)
    if 'fusion' in kwargs or 'num_features' in kwargs:
        return
    del args['backbone'], args['num_features']
    with pytest.raises(ValueError, match=re.escape(message)):
        LocationOnlyModel(**args)


TASKS = [
    SatCLIPTask,
    LocationAwareClassificationTask,
    LocationAwareRegressionTask,
    LocationClassificationTask,
    LocationRegressionTask,
]


@pytest.mark.parametrize('task_class', TASKS, ids=lambda c: c.__name__)
def test_one_set_of_location_arguments(task_class: type[LightningModule]) -> None:
    """Every task takes the same location-encoder names, with one set of defaults."""
    parameters = inspect.signature(task_class.__init__).parameters
    for field in dataclasses.fields(LocationEncoderArgs):
        assert field.name in parameters, field.name
        default = parameters[field.name].default
        assert default == getattr(LOCATION_DEFAULTS, field.name), field.name
    assert 'location_weights' in parameters
    # released SatCLIP architecture
    assert (LOCATION_DEFAULTS.capacity, LOCATION_DEFAULTS.embed_dim) == (512, 256)
    assert LOCATION_DEFAULTS.num_hidden_layers == 2


@pytest.mark.parametrize(
    ('fused', 'only'),
    [
        (LocationAwareClassificationTask, LocationClassificationTask),
        (LocationAwareRegressionTask, LocationRegressionTask),
    ],
    ids=['classification', 'regression'],
)
def test_location_only_takes_every_argument_but_the_images(
    fused: type[LightningModule], only: type[LightningModule]
) -> None:
    """LocationClassificationTask lacked pos_weight (the 'bce' loss's weight
    of TorchGeo 0.10's task and of the location-aware task): a TypeError, or
    jsonargparse's refusal of the YAML key."""
    image_arguments = {'model', 'weights', 'in_channels', 'freeze_backbone', 'fusion'}
    arguments = inspect.signature(fused.__init__).parameters
    own = inspect.signature(only.__init__).parameters
    assert [name for name in arguments if name not in own] == [
        name for name in arguments if name in image_arguments
    ]
    for name in set(own) & set(arguments):
        assert own[name].default == arguments[name].default, name


def test_location_only_pos_weight_as_the_location_aware_task() -> None:
    weight = torch.tensor([2.0])
    kwargs = small(task='binary', loss='bce', pos_weight=weight)
    if TORCHGEO_AT_LEAST_0_10:
        task = LocationClassificationTask(**kwargs)
        assert torch.equal(task.hparams['pos_weight'], weight)
        return
    message = 'pos_weight need torchgeo >= 0.10'
    with pytest.raises(ValueError, match=re.escape(message)):
        LocationAwareClassificationTask(model='tiny', **kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        LocationClassificationTask(**kwargs)


def test_location_arguments_build_the_encoder() -> None:
    task = LocationRegressionTask(
        positional_encoding='wrap',
        location_network='mlp',
        embed_dim=6,
        capacity=5,
        num_hidden_layers=3,
        allow_random_location=True,
    )
    encoder = cast(LocationOnlyModel, task.model).location.encoder
    assert encoder.embed_dim == 6
    assert type(encoder.posenc).__name__ == 'Wrap'
    assert next(iter(encoder.nnet.parameters())).shape[0] == 5
    assert LocationEncoderArgs.from_hparams(task.hparams).num_hidden_layers == 3


@pytest.mark.parametrize(
    ('key', 'value', 'hint'),
    [
        # the encoding's own argument, but set by the task's argument
        ('legendre_polys', 5, 'give it as legendre_polys'),
        ('dropout', 0.1, 'give it as location_dropout'),
        ('network', 'mlp', 'give it as location_network'),
        # the factory's arguments, no encoding's: validate was taken silently
        ('validate', False, 'no argument of a positional encoding'),
        ('dtype', torch.float64, 'no argument of a positional encoding'),
    ],
)
def test_positional_encoding_kwargs_cannot_set_the_encoders_own_arguments(
    key: str, value: Any, hint: str
) -> None:
    """They failed with 'got multiple values for keyword argument', or were
    taken as the factory's own (``validate: false`` switched the point checks
    off), naming no ``positional_encoding_kwargs``."""
    args = LocationEncoderArgs(
        legendre_polys=3,
        embed_dim=8,
        capacity=8,
        positional_encoding_kwargs={key: value},
    )
    message = f'positional_encoding_kwargs sets {key!r} ({value!r})'
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        args.build()
    assert hint in str(error.value)
    with pytest.raises(ValueError, match=re.escape(message)):
        LocationRegressionTask(**small(positional_encoding_kwargs={key: value}))
    # loaded weights bring their own encoding: the arguments are not used
    encoder = LocationEncoderArgs(legendre_polys=3, embed_dim=8, capacity=8).build()
    assert args.build(encoder.state_dict()).embed_dim == 8


def test_positional_encoding_kwargs_must_be_a_mapping() -> None:
    args = LocationEncoderArgs(positional_encoding_kwargs=[('frequency_num', 4)])  # type: ignore[arg-type]
    message = (
        'positional_encoding_kwargs must be a mapping of argument names to '
        "values, not [('frequency_num', 4)] (list)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        args.build()


@pytest.mark.parametrize('old', sorted(DEPRECATED_LOCATION_ARGS))
def test_deprecated_location_names(old: str) -> None:
    new = DEPRECATED_LOCATION_ARGS[old]
    with pytest.warns(DeprecationWarning, match=f'{old} is deprecated; use {new}'):
        task = LocationRegressionTask(
            **cast(dict[str, Any], {old: 6}), allow_random_location=True
        )
    assert task.hparams[new] == 6
    assert old not in task.hparams
    # the message names both values, not only both names
    message = f'{old} (deprecated) is 6 and {new} is 5: give one of them'
    with pytest.raises(ValueError, match=re.escape(message)):
        LocationRegressionTask(
            **cast(dict[str, Any], {old: 6, new: 5}), allow_random_location=True
        )


def test_loaded_location_weights_rebuild_from_hparams(tmp_path: Path) -> None:
    source = LocationRegressionTask(
        legendre_polys=3, embed_dim=6, capacity=5, allow_random_location=True
    )
    path = save_official_checkpoint(
        cast(LocationOnlyModel, source.model).location.encoder,
        tmp_path / 'encoder.ckpt',
    )
    task = LocationRegressionTask(location_weights=str(path))
    assert (task.hparams['legendre_polys'], task.hparams['capacity']) == (3, 5)
    assert task.hparams['embed_dim'] == 6
    # the saved hyperparameters alone rebuild the architecture of the weights
    # (as load_from_checkpoint does: the arguments of __init__ among them)
    names = inspect.signature(LocationRegressionTask.__init__).parameters
    again = LocationRegressionTask(
        **{key: value for key, value in task.hparams.items() if key in names}
    )
    again.load_state_dict(task.state_dict())


def test_film_starts_as_identity() -> None:
    task = LocationAwareRegressionTask(model='tiny', fusion='film', **small())
    images = torch.randn(2, 3, 8, 8)
    out_a = task(images, torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    out_b = task(images, torch.tensor([[100.0, -60.0], [-120.0, 70.0]]))
    torch.testing.assert_close(out_a, out_b)


def test_fine_tuned_location_gets_gradients() -> None:
    task = LocationAwareRegressionTask(model='tiny', freeze_location=False, **small())
    task.train()
    task.configure_losses()
    loss = task.training_step(batch_at(LONLAT, label=torch.tensor([1.0, 2.0])), 0)
    loss.backward()
    encoder = cast(LocationFusionModel, task.model).location.encoder
    grads = [p.grad for p in encoder.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


class FigureLogger(Logger):
    """Records the figures TorchGeo's validation step draws."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[str] = []

    @property
    def name(self) -> str:
        return 'figures'

    @property
    def version(self) -> int:
        return 0

    @property
    def experiment(self) -> 'FigureLogger':
        return self

    def add_figure(self, tag: str, figure: Any, global_step: int) -> None:
        self.figures.append(tag)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass


def validate_with_figures(task: Any, datamodule: Any, tmp_path: Path) -> list[str]:
    """The tags of the figures one validation batch logs (a real logger:
    fast_dev_run replaces it, and no figure is drawn)."""
    logger = FigureLogger()
    Trainer(
        accelerator='cpu',
        limit_val_batches=1,
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    ).validate(task, datamodule)
    return logger.figures


def test_validation_figures_as_torchgeo(tmp_path: Path) -> None:
    task = LocationAwareClassificationTask(
        model='tiny', in_channels=13, num_classes=2, **small()
    )
    datamodule = EuroSATLocationDataModule(batch_size=2, root='tests/data/eurosat')
    assert validate_with_figures(task, datamodule, tmp_path) == ['image/0']


def test_location_only_tasks() -> None:
    task = LocationClassificationTask(num_classes=4, head_layers=1, **small())
    lonlat = torch.tensor([[2.35, 48.86], [-74.0, 40.7], [139.7, 35.7]])
    assert task(lonlat).shape == (3, 4)
    probs = task.predict_step({'point': lonlat}, 0)
    torch.testing.assert_close(probs.sum(1), torch.ones(3))
    reg = LocationRegressionTask(num_outputs=2, **small())
    assert reg.predict_step({'lon': lonlat[:, 0], 'lat': lonlat[:, 1]}, 0).shape == (
        3,
        2,
    )


@pytest.mark.parametrize('fusion', ['concat', 'film'])
def test_real_timm_backbone_with_pre_logits_head(
    fusion: Literal['concat', 'film'], monkeypatch: pytest.MonkeyPatch
) -> None:
    """MobileNetV3 pools to head_hidden_size (1024), not num_features (288)."""
    monkeypatch.undo()  # a real timm model, not the tiny_timm stand-in
    task = LocationAwareClassificationTask(
        model='mobilenetv3_small_050',
        in_channels=3,
        num_classes=3,
        fusion=fusion,
        **small(),
    ).eval()
    with torch.no_grad():
        out = task(torch.randn(2, 3, 32, 32), torch.tensor([[2.35, 48.86], [0.0, 0.0]]))
    assert out.shape == (2, 3)


@pytest.mark.parametrize('task_class', TASKS[1:], ids=lambda c: c.__name__)
def test_frozen_random_location_encoder_is_an_error(task_class: type) -> None:
    """The old default (no weights, frozen) added fixed noise in silence."""
    kwargs: dict[str, Any] = {'model': 'tiny'} if 'Aware' in task_class.__name__ else {}
    if 'Classification' in task_class.__name__:
        kwargs['num_classes'] = 2
    with pytest.raises(ValueError, match=r'location_weights.*freeze_location=False'):
        task_class(**kwargs, legendre_polys=3, embed_dim=8, capacity=8)
    # each fix works: training the encoder, or opting in
    task_class(**kwargs, **small(allow_random_location=False), freeze_location=False)
    task_class(**kwargs, **small())
    # precomputed embeddings never go through the encoder
    task_class(
        **kwargs, **small(allow_random_location=False), location_input='embedding'
    )


@pytest.mark.parametrize('freeze_backbone', [False, True])
def test_own_checkpoint_as_backbone_weights(
    tmp_path: Path, freeze_backbone: bool
) -> None:
    """A location-aware task's checkpoint is a ``weights`` path, as TorchGeo's.

    TorchGeo extracts ``model.*`` from a checkpoint given as ``weights``; the
    fused model keeps its backbone under ``model.backbone.*``, so TorchGeo
    found no input layer and failed with ``KeyError: 'features.0.weight'``.
    """
    source = LocationAwareClassificationTask(model='tiny', num_classes=3, **small())
    source_model: Any = source.model
    with torch.no_grad():
        for param in source_model.backbone.parameters():
            param.add_(1.0)
    path = tmp_path / 'fused.ckpt'
    torch.save(
        {'state_dict': source.state_dict(), 'hyper_parameters': dict(source.hparams)},
        path,
    )
    task = LocationAwareRegressionTask(
        model='tiny', weights=str(path), freeze_backbone=freeze_backbone, **small()
    )
    fused: Any = task.model
    expected = source_model.backbone.state_dict()
    loaded = fused.backbone.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(loaded[key], value, msg=key)
    assert task.weights == str(path)
    trainable = {p.requires_grad for p in fused.backbone.parameters()}
    assert trainable == {not freeze_backbone}
    assert all(p.requires_grad for p in fused.head.parameters())


@pytest.mark.parametrize('freeze_backbone', [False, True])
def test_own_checkpoint_lacking_backbone_tensors_is_refused(
    tmp_path: Path, freeze_backbone: bool
) -> None:
    """A fused checkpoint lacking some backbone tensors loaded in part (TorchGeo
    loads with strict=False): those layers stayed random, frozen with
    freeze_backbone, in silence. It is refused, naming the file and a key."""
    source = LocationAwareClassificationTask(model='tiny', num_classes=3, **small())
    state = source.state_dict()
    lost = next(k for k in state if k.startswith('model.backbone.'))
    del state[lost]
    path = tmp_path / 'fused.ckpt'
    torch.save({'state_dict': state, 'hyper_parameters': dict(source.hparams)}, path)
    key = lost.removeprefix('model.backbone.')
    with pytest.raises(ValueError, match=rf"fused\.ckpt.*lacks 1 of .*'{key}'"):
        LocationAwareRegressionTask(
            model='tiny', weights=str(path), freeze_backbone=freeze_backbone, **small()
        )


def test_own_checkpoint_of_other_channels_for_a_frozen_backbone_is_refused(
    tmp_path: Path,
) -> None:
    """TorchGeo's loader swaps a first layer of other input channels for a
    random one with a warning; frozen, that random layer stayed for the whole
    run. Refused for a frozen backbone; a trained one keeps the warning."""
    source = LocationAwareClassificationTask(
        model='tiny', num_classes=3, in_channels=4, **small()
    )
    path = tmp_path / 'fused.ckpt'
    torch.save(
        {'state_dict': source.state_dict(), 'hyper_parameters': dict(source.hparams)},
        path,
    )
    with pytest.raises(ValueError, match=r'input channels: 4 in the weights'):
        LocationAwareRegressionTask(
            model='tiny', weights=str(path), freeze_backbone=True, **small()
        )
    with pytest.warns(UserWarning, match='input channels'):
        LocationAwareRegressionTask(model='tiny', weights=str(path), **small())


def image_batch(label: Any, **extra: Any) -> dict[str, Any]:
    return {
        'image': torch.zeros(len(label), 3, 8, 8),
        'point': LONLAT,
        'label': label,
        **extra,
    }


NAN = float('nan')
INF = float('inf')


@pytest.mark.parametrize(
    ('task_kwargs', 'label', 'message'),
    [
        (
            {'task': 'multiclass', 'num_classes': 3},
            torch.tensor([1, 3]),
            "batch 'label' row 1 is 3: expected an integer class in [0, 3) "
            '(num_classes=3); class labels count from 0',
        ),
        (
            {'task': 'multiclass', 'num_classes': 3},
            torch.tensor([-1, 0]),
            "batch 'label' row 0 is -1: expected an integer class in [0, 3)",
        ),
        (
            {'task': 'multiclass', 'num_classes': 3},
            torch.tensor([0.0, 1.0]),
            "batch 'label' has dtype torch.float32: expected integer class "
            'indices in [0, 3)',
        ),
        (
            {'task': 'binary', 'loss': 'bce'},
            torch.tensor([0, 2]),
            "batch 'label' row 1 is 2: expected 0 or 1 (task='binary')",
        ),
        (
            {'task': 'multilabel', 'num_labels': 2, 'loss': 'bce'},
            torch.tensor([[0.0, 1.0], [NAN, 1.0]]),
            "batch 'label' row 1, column 0 is nan: expected 0 or 1 (task='multilabel')",
        ),
    ],
)
def test_location_aware_classification_refuses_bad_labels(
    task_kwargs: dict[str, Any], label: Tensor, message: str
) -> None:
    """An out-of-range class failed deep inside the loss (an opaque CUDA
    assert on a GPU), or trained in silence; it is refused on the CPU batch."""
    task = LocationAwareClassificationTask(model='tiny', **task_kwargs, **small())
    with pytest.raises(ValueError, match=re.escape(message)):
        task.on_before_batch_transfer(image_batch(label), 0)
    good = torch.zeros(label.shape, dtype=torch.long)
    batch = image_batch(good)
    assert task.on_before_batch_transfer(batch, 0) is batch


@pytest.mark.parametrize(
    ('num_outputs', 'label', 'message'),
    [
        (1, torch.tensor([1.5, NAN]), "batch 'label' row 1 is nan: expected finite"),
        (1, torch.tensor([-INF, 0.0]), "batch 'label' row 0 is -inf: expected finite"),
        (
            2,
            torch.tensor([[1.0, 2.0], [0.0, INF]]),
            "batch 'label' row 1, column 1 is inf: expected finite regression targets",
        ),
    ],
)
def test_location_aware_regression_refuses_non_finite_targets(
    num_outputs: int, label: Tensor, message: str
) -> None:
    """A NaN target made the loss NaN and, after one step, every weight."""
    task = LocationAwareRegressionTask(model='tiny', num_outputs=num_outputs, **small())
    with pytest.raises(ValueError, match=re.escape(message)):
        task.on_before_batch_transfer(image_batch(label), 0)
    batch = image_batch(torch.nan_to_num(label, nan=0.0, posinf=0.0, neginf=0.0))
    assert task.on_before_batch_transfer(batch, 0) is batch
    # predict batches have no label
    del batch['label']
    assert task.on_before_batch_transfer(batch, 0) is batch


def test_location_aware_task_refuses_bad_locations_before_transfer() -> None:
    task = LocationAwareRegressionTask(model='tiny', **small())
    points = torch.tensor([[2.35, 48.86], [NAN, 40.7]])
    batch = image_batch(torch.zeros(2), point=points)
    with pytest.raises(ValueError, match=re.escape("batch 'point' row 1: non-finite")):
        task.on_before_batch_transfer(batch, 0)
    embedded = LocationAwareRegressionTask(
        model='tiny', location_input='embedding', **small()
    )
    embedding = torch.zeros(2, 8)
    embedding[0, 5] = INF
    batch = image_batch(torch.zeros(2), location_embedding=embedding)
    message = "batch 'location_embedding' row 0, column 5 is inf: expected finite"
    with pytest.raises(ValueError, match=re.escape(message)):
        embedded.on_before_batch_transfer(batch, 0)


@pytest.mark.parametrize('task_class', ['classification', 'regression'])
def test_bad_label_stops_a_real_fit_before_the_step(task_class: str) -> None:
    """The check runs in Lightning's own loop, on the batch before it moves:
    the model never sees the bad batch."""
    from torch.utils.data import DataLoader

    task: Any
    if task_class == 'classification':
        task = LocationAwareClassificationTask(model='tiny', num_classes=3, **small())
        labels: list[Any] = [0, 1, 5, 2]
        message = "batch 'label' row 0 is 5: expected an integer class in [0, 3)"
    else:
        task = LocationAwareRegressionTask(model='tiny', **small())
        labels = [0.5, 1.0, NAN, 2.0]
        message = "batch 'label' row 0 is nan: expected finite"
    samples: Any = [
        {'image': torch.zeros(3, 8, 8), 'point': LONLAT[i % 2], 'label': labels[i]}
        for i in range(4)
    ]
    calls: list[int] = []
    model_forward = task.model.forward

    def spy(*args: Tensor) -> Tensor:
        calls.append(len(args[0]))
        out: Tensor = model_forward(*args)
        return out

    task.model.forward = spy

    def fit(half: Any) -> None:
        loader: DataLoader[Any] = DataLoader(half, batch_size=2)
        quiet_fast_dev_run().fit(task, train_dataloaders=loader, val_dataloaders=loader)

    with pytest.raises(ValueError, match=re.escape(message)):
        fit(samples[2:])
    assert calls == []
    fit(samples[:2])  # the good half trains and validates
    assert calls == [2, 2]


def test_bad_label_caught_when_the_datamodule_owns_the_hook() -> None:
    """Lightning calls a datamodule's on_before_batch_transfer instead of the
    model's: the task then checks each batch in its step (on the device)."""
    from lightning.pytorch import LightningDataModule
    from torch.utils.data import DataLoader

    samples: Any = [
        {'image': torch.zeros(3, 8, 8), 'point': LONLAT[i], 'label': [0, 4][i]}
        for i in range(2)
    ]

    class OwnHook(LightningDataModule):
        def train_dataloader(self) -> DataLoader[Any]:
            return DataLoader(samples, batch_size=2)

        def val_dataloader(self) -> DataLoader[Any]:
            return DataLoader(samples, batch_size=2)

        def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            return batch

    task = LocationAwareClassificationTask(model='tiny', num_classes=3, **small())
    trainer = quiet_fast_dev_run()
    message = "batch 'label' row 1 is 4: expected an integer class in [0, 3)"
    with pytest.raises(ValueError, match=re.escape(message)):
        trainer.fit(task, datamodule=OwnHook())


def test_no_lightning_note_of_the_task_owning_the_batch_hook() -> None:
    """Every fit through a datamodule (EuroSATLocationDataModule, say) warned
    "You have overridden `on_before_batch_transfer` in `LightningModule` but
    have passed in a `LightningDataModule`": the task's batch checks rely on
    it, so the note is silenced."""
    from lightning.pytorch import LightningDataModule
    from lightning.pytorch.trainer.connectors import data_connector
    from torch.utils.data import DataLoader

    samples: Any = [
        {'image': torch.zeros(3, 8, 8), 'point': LONLAT[i], 'label': i}
        for i in range(2)
    ]

    class Plain(LightningDataModule):
        def train_dataloader(self) -> DataLoader[Any]:
            return DataLoader(samples, batch_size=2)

        def val_dataloader(self) -> DataLoader[Any]:
            return DataLoader(samples, batch_size=2)

    task = LocationAwareClassificationTask(model='tiny', num_classes=3, **small())
    trainer = quiet_fast_dev_run()
    # Lightning warns once per process: forget an earlier test's warning
    data_connector.warning_cache.clear()
    with warnings.catch_warnings(record=True) as caught:
        trainer.fit(task, datamodule=Plain())
    assert not [w for w in caught if 'on_before_batch_transfer' in str(w.message)]


def test_regression_figures_skip_a_plot_of_class_names(tmp_path: Path) -> None:
    """EuroSAT's plot names classes by label: a regression value cannot be
    shown, so the figure is skipped (with a warning), never the run. (Not
    fast_dev_run: it replaces the logger, and no figure is drawn.)"""
    import matplotlib.pyplot as plt

    plt.close('all')
    task = LocationAwareRegressionTask(model='tiny', in_channels=13, **small())
    datamodule = EuroSATLocationDataModule(batch_size=2, root='tests/data/eurosat')
    with pytest.warns(UserWarning, match=r'EuroSATLocationDataModule\.plot'):
        figures = validate_with_figures(task, datamodule, tmp_path)
    assert figures == []
    assert plt.get_fignums() == []  # nothing a failed plot opened stays open


class RegressionPlotDataModule(EuroSATLocationDataModule):  # type: ignore[misc]
    """A datamodule whose plot shows regression values."""

    def plot(self, sample: dict[str, Tensor]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.set_title(f'{float(sample["prediction"][0]):.2f}')
        return fig


def test_regression_figures_when_the_plot_can_show_them(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    plt.close('all')
    task = LocationAwareRegressionTask(model='tiny', in_channels=13, **small())
    datamodule = RegressionPlotDataModule(batch_size=2, root='tests/data/eurosat')
    assert validate_with_figures(task, datamodule, tmp_path) == ['image/0']
    assert plt.get_fignums() == []


@pytest.mark.parametrize(
    ('num_outputs', 'label', 'expected'),
    [
        (2, torch.tensor([1.5, -0.5]), '(batch, 2) for num_outputs=2'),
        (1, torch.ones(2, 3), '(batch,) or (batch, 1) for num_outputs=1'),
        (1, torch.ones(2, 1, 1), '(batch,) or (batch, 1) for num_outputs=1'),
        (2, torch.ones(2, 3, dtype=torch.long), '(batch, 2) for num_outputs=2'),
    ],
)
def test_regression_refuses_labels_of_another_shape(
    num_outputs: int, label: Tensor, expected: str
) -> None:
    """A target of the wrong shape failed in torchmetrics with 'expected to
    have the same shape, but got torch.Size([2, 2]) and torch.Size([2, 1])',
    naming neither the label nor num_outputs, and showing a shape the label
    did not have (the step had added a dimension)."""
    shape = tuple(label.shape)
    message = f"batch 'label' has shape {shape}: expected {expected}"
    for task in (
        LocationRegressionTask(num_outputs=num_outputs, **small()),
        LocationAwareRegressionTask(model='tiny', num_outputs=num_outputs, **small()),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            task.on_before_batch_transfer({'point': LONLAT, 'label': label}, 0)
    goods = [torch.ones(2, num_outputs)] + ([torch.ones(2)] if num_outputs == 1 else [])
    task = LocationRegressionTask(num_outputs=num_outputs, **small())
    for good in goods:
        batch = {'point': LONLAT, 'label': good}
        assert task.on_before_batch_transfer(batch, 0) is batch


@pytest.mark.parametrize(
    ('kwargs', 'label', 'expected'),
    [
        (
            {'num_classes': 3},
            torch.tensor([[1], [2]]),
            "(batch,) for task='multiclass'",
        ),
        ({'task': 'binary'}, torch.tensor([[1], [0]]), "(batch,) for task='binary'"),
        (
            {'task': 'multilabel', 'num_labels': 3},
            torch.tensor([1, 0]),
            '(batch, 3) for num_labels=3',
        ),
        (
            {'task': 'multilabel', 'num_labels': 3},
            torch.tensor([[1, 0], [0, 1]]),
            '(batch, 3) for num_labels=3',
        ),
    ],
)
def test_classification_refuses_labels_of_another_shape(
    kwargs: dict[str, Any], label: Tensor, expected: str
) -> None:
    """As for regression: torchmetrics' 'should have the same shape' named
    neither the label nor the task's argument."""
    message = f"batch 'label' has shape {tuple(label.shape)}: expected {expected}"
    for task in (
        LocationClassificationTask(**kwargs, **small()),
        LocationAwareClassificationTask(model='tiny', **kwargs, **small()),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            task.on_before_batch_transfer({'point': LONLAT, 'label': label}, 0)
    good = torch.ones(2, 3, dtype=torch.long) if 'num_labels' in kwargs else label[:, 0]
    batch = {'point': LONLAT, 'label': good}
    assert task.on_before_batch_transfer(batch, 0) is batch
