"""The `jiasu train` session: MODEL resolved, outputs checked, MNIST loaded, trained (here or
data-parallel through an engine), tested, saved and written as JSON and HTML.

`resolve_train_model` turns the MODEL argument into what `jiasu.train` trains: a registry
`ModelSpec`, or an `ExternalModel` for a ``.keras`` file or a ``package.module:factory``
(a Keras model is trained through `jiasu.integrations.keras` as a torch module and saved
back as ``DIR/model.keras``; a factory returning a torch ``nn.Module`` is trained as it is).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from jiasu.app import Log
from jiasu.core.errors import ConfigError
from jiasu.core.recipe import Recipe
from jiasu.core.signature import InputSignature
from jiasu.data.mnist import INPUT_SHAPE, NUM_CLASSES
from jiasu.models.argument import parse_model_argument
from jiasu.models.probe import PROBE_BATCH, probe_output
from jiasu.train.history import History
from jiasu.train.model_arg import ExternalModel, ModelSpec
from jiasu.train.session import Trainer, TrainPlan, TrainResult, TrainSettings, train_session

if TYPE_CHECKING:
    from jiasu.engines.data import DataSource

_Builder = Callable[[], nn.Module]

# What MNIST training feeds a model and expects back: two images (a batch norm needs more
# than one sample) and logits for the 10 digits.


def run_train_session(
    model: str | ModelSpec | ExternalModel,
    recipe: str | Recipe,
    settings: TrainSettings,
    *,
    engine: str | None = None,
    workers: int = 2,
    address: str | None = None,
    train_samples: int | None = None,
    data_dir: Path | None = None,
    data: UserData | None = None,
    save: Path | None = None,
    json_path: Path | None = None,
    html_path: Path | None = None,
    quiet: bool = False,
    log: Log | None = None,
) -> TrainResult:
    """`jiasu train`: train `model` on MNIST, or on the user's `data`, with `recipe`, test
    it, and save it to `save`.

    A bad MODEL, bad data and every output path fail before any training. `engine`
    (local, ray, spark) trains the same plan data-parallel on `workers` workers, each
    reading the data itself from the same path. `log` gets each step.
    """
    from jiasu.data import load_mnist

    if data is not None:
        return _user_data_session(model, recipe, settings, data, engine=engine, workers=workers,
                                  address=address, save=save, json_path=json_path,
                                  html_path=html_path, quiet=quiet, log=log)  # fmt: skip
    spec = resolve_train_model(model) if isinstance(model, str) else model
    check_train_outputs(spec, save=save, json_path=json_path, html_path=html_path,
                        data_dir=data_dir)  # fmt: skip
    if engine is not None:
        check_engine_model(spec)
    splits = load_mnist(data_dir)
    if train_samples is not None:
        splits = dataclasses.replace(splits, train=splits.train.take(train_samples))
    if log is not None:
        log(f"data: {splits.source}")
    trainer = None
    if engine is not None:
        from jiasu.engines import MnistSource

        source = MnistSource(None if data_dir is None else str(data_dir.resolve()),
                             train_samples=train_samples, val_samples=0)  # fmt: skip
        trainer = engine_trainer(spec, source, engine=engine, workers=workers, address=address,
                                 log=log)  # fmt: skip
    return train_session(spec, splits, recipe, settings, quiet=quiet, save=save, log=log,
                         trainer=trainer)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class UserData:
    """`jiasu train --data`: the user's data and how to read it (see
    `jiasu.data.read_training_data`)."""

    path: Path
    target_column: str | None = None
    task: str | None = None  # classification | regression; None: from the targets
    val_split: float = 0.2
    resize: tuple[int, int] | None = None


def _user_data_session(
    model: str | ModelSpec | ExternalModel,
    recipe: str | Recipe,
    settings: TrainSettings,
    data: UserData,
    *,
    engine: str | None,
    workers: int,
    address: str | None,
    save: Path | None,
    json_path: Path | None,
    html_path: Path | None,
    quiet: bool,
    log: Log | None,
) -> TrainResult:
    """Train on the user's data: read it (every bad file is one sentence, before the
    model is built), build the model, check it fits the data's inputs and task, train
    (here, or on an engine whose workers read the same path with the same options)."""
    from jiasu.data import read_training_data

    spec = resolve_train_model(model, check=False) if isinstance(model, str) else model
    check_train_outputs(spec, save=save, json_path=json_path, html_path=html_path,
                        data_dir=data.path)  # fmt: skip
    if engine is not None:
        check_engine_model(spec)
    training = read_training_data(
        data.path, target_column=data.target_column, task=data.task,
        val_split=data.val_split, resize=data.resize, seed=settings.seed,
    )  # fmt: skip
    if log is not None:
        log(f"data: {training.source}; {training.task.describe()}")
    trainer = None
    if engine is not None:
        from jiasu.engines import UserDataSource

        source = UserDataSource(
            str(Path(data.path).resolve()), target_column=data.target_column, task=data.task,
            val_split=data.val_split, resize=data.resize, seed=settings.seed,
        )  # fmt: skip
        trainer = engine_trainer(spec, source, engine=engine, workers=workers, address=address,
                                 log=log)  # fmt: skip
    return train_session(spec, training, recipe, settings, quiet=quiet, save=save, log=log,
                         trainer=trainer)  # fmt: skip


def save_train_outputs(
    result: TrainResult,
    *,
    json_path: Path | None = None,
    html_path: Path | None = None,
    save: Path | None = None,
    log: Log | None = None,
) -> None:
    """Write the result as JSON and as an HTML report, where asked; `log` what was written
    (the model itself was saved to `save` by the session)."""
    from jiasu.core.atomic import atomic_write_text

    if json_path is not None:
        atomic_write_text(json_path, json.dumps(result.to_dict(), indent=2) + "\n")
        if log is not None:
            log(f"wrote {json_path}")
    if html_path is not None:
        from jiasu.report import flops_per_sample, from_train, write_html

        shape = result.signature.single_float_shape() if result.signature else INPUT_SHAPE
        model = result.spec.build()
        flops = flops_per_sample(model, shape, training=True) if shape else None
        write_html(from_train(result.to_dict(), flops_per_sample=flops), html_path)
        if log is not None:
            log(f"wrote {html_path}")
    if save is not None and log is not None:
        log(f"saved model to {save}")


def check_train_outputs(
    spec: ModelSpec | ExternalModel,
    *,
    save: Path | None = None,
    json_path: Path | None = None,
    html_path: Path | None = None,
    data_dir: Path | None = None,
) -> None:
    """Every output path, checked before any data is read or any training is done."""
    from jiasu.core.outputs import Output, check_outputs
    from jiasu.models import saved

    if save is not None and not isinstance(spec, ModelSpec):
        save_output = Output("--save", save / "model.keras")  # a Keras model: one file in DIR
    else:
        save_output = Output("--save", save, saved.FOLDER)
    outputs = [save_output, Output("--json", json_path), Output("--html", html_path)]
    check_outputs(outputs, inputs={"--data-dir": data_dir})


def resolve_train_model(text: str, *, check: bool = True) -> ModelSpec | ExternalModel:
    """The MODEL of `jiasu train --model`: a registry name, a .keras file or a factory.

    An external model is built once here and, with `check` (training on MNIST), run on a
    batch of MNIST images, so a model for other inputs fails in one sentence before any
    data is loaded; on the user's data, training checks it against that data instead.
    """
    argument = parse_model_argument(text, accept=("keras", "registry", "factory"))
    if argument.kind == "registry":
        return ModelSpec(text)
    builder = _keras_file(text) if argument.kind == "keras" else FactoryBuilder(text)
    module = builder()
    if isinstance(builder, FactoryBuilder):
        builder = builder.located()
    if check:
        check_takes_mnist(module, text)
    saver = _save_keras if _is_keras(module) else None
    return ExternalModel(text, builder=builder, saver=saver)


def _is_keras(module: nn.Module) -> bool:
    """Whether `module` wraps a Keras model; a torch model's check does not import Keras."""
    bridge = sys.modules.get("jiasu.integrations.keras.torch_bridge")
    return bridge is not None and isinstance(module, bridge.KerasModule)


def _keras_file(path: str) -> _Builder:
    def build() -> nn.Module:
        from jiasu.integrations.keras import resolve_keras_model

        return resolve_keras_model(path)

    return build


@dataclasses.dataclass(frozen=True)
class FactoryBuilder:
    """Builds the model of the ``package.module:factory`` the user named; picklable, so
    an engine's workers build it too (importing the module the user named is the opt-in).

    `search_path` is the folder the module was imported from here; a worker that cannot
    import the module otherwise finds it there (at the end of its sys.path), as workers
    on this machine do. On a cluster, install the module on every machine.
    """

    name: str
    search_path: str | None = None

    def __call__(self) -> nn.Module:
        from jiasu.core.imports import call_factory

        top = self.name.partition(":")[0].split(".")[0]
        path = self.search_path
        if path and path not in sys.path and importlib.util.find_spec(top) is None:
            sys.path.append(path)
        model = call_factory(self.name)
        from_keras = type(model).__module__.split(".")[0] == "keras"
        if isinstance(model, nn.Module) and not from_keras:
            return model
        if not from_keras:
            raise ConfigError(
                f"model factory {self.name!r} returned {type(model).__name__}, not a torch "
                "nn.Module or a Keras model; return the model from the factory"
            )
        from jiasu.integrations.keras import resolve_keras_model

        return resolve_keras_model(model)  # a Keras model built by the factory

    def located(self) -> FactoryBuilder:
        """This builder with the folder its module was imported from (once built here)."""
        module = sys.modules.get(self.name.partition(":")[0].split(".")[0])
        file = getattr(module, "__file__", None)
        if not file:
            return self
        folder = Path(file).resolve().parent
        if Path(file).name == "__init__.py":
            folder = folder.parent  # a package: the folder that holds it
        return dataclasses.replace(self, search_path=str(folder))


def _save_keras(module: nn.Module, directory: Path) -> None:
    from jiasu.integrations.keras import KerasModule, save_keras

    assert isinstance(module, KerasModule)  # the saver is given to Keras models only
    save_keras(module.eval(), directory / "model.keras")


def check_takes_mnist(module: nn.Module, name: str) -> None:
    """One forward pass on a batch of MNIST images: the logits must be (2, classes).

    A model for other inputs or another number of classes fails here, in one sentence,
    before any data is loaded or any training starts.
    """
    fix = (
        f"MNIST training needs a model that takes (N, {', '.join(map(str, INPUT_SHAPE))}) "
        f"images and returns (N, {NUM_CLASSES}) logits"
    )
    what = f"model {name!r}"
    signature = InputSignature.from_shape(INPUT_SHAPE)
    output = probe_output(module, signature, what=what, fix=fix)
    expected = (PROBE_BATCH, NUM_CLASSES)
    if tuple(output.shape) != expected:
        raise ConfigError(
            f"{what} returned shape {tuple(output.shape)} for inputs {signature.describe()}, "
            f"not {expected}; {fix}"
        )


def check_engine_model(spec: ModelSpec | ExternalModel) -> None:
    """An engine's workers rebuild the model themselves: a registry model, or a
    ``package.module:factory`` (each worker imports the module the user named)."""
    if isinstance(spec, ModelSpec):
        return
    if not isinstance(spec.builder, FactoryBuilder) or spec.saver is not None:
        raise ConfigError(
            f"--engine trains registry models and package.module:factory models of torch; "
            f"{spec.name!r} is a Keras model: drop --engine to train it here"
        )


def engine_trainer(
    spec: ModelSpec | ExternalModel,
    source: DataSource,
    *,
    engine: str,
    workers: int,
    address: str | None = None,
    log: Log | None = None,
) -> Trainer:
    """A session's `Trainer` that runs the plan data-parallel: `workers` workers of
    `engine`, each loading `source` itself and training with `fit` (batch size and lr
    per worker); rank 0's weights come back."""

    def train(plan: TrainPlan) -> tuple[nn.Module, History]:
        from jiasu.engines import TrainJob, train_distributed

        job = TrainJob(model=spec, data=source, settings=plan.settings, recipe=plan.recipe,
                       callbacks=plan.callbacks)  # fmt: skip
        if log:
            log(f"training on {engine} with {workers} workers...")
        result = train_distributed(job, engine=engine, workers=workers, address=address)
        if log:
            log(
                f"{engine}: {result.total_seconds:.1f} s in total, {result.loop_seconds:.1f} s "
                f"in the training loop, {result.startup_seconds:.1f} s starting up"
            )
        result.history.engine = {"engine": engine, "workers": workers}
        return result.model, result.history

    return train
