"""The inner loop of `fit`: one epoch of steps through the techniques' hooks.

Kept apart from `fit` so the hot path is short and readable: per batch, forward
``model(*inputs)`` under the setup's autocast, the objective's loss (the task's, with
label smoothing, or the user's), the hooks' loss scaling, backward, the gradient
pipeline (STEP / DEFER / SKIP), the optimizer step, the after-step hooks. Losses (and a
classifier's hits) accumulate on the device: no host sync per step.

The seam for data parallelism: `LiveRun.step_model` is what the step calls (a strategy
wraps it, e.g. in DistributedDataParallel), `LiveRun.batches` is what an epoch iterates
(a strategy gives each rank its shard) and `LiveRun.measure` goes through the run's
`Strategy` (`jiasu.train.strategy`), so a target check inside an epoch is decided on
the whole target data by every rank alike; `run_epoch` returns figures a strategy
all-reduces.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, default_collate

from jiasu.core.interrupt import raise_if_terminated
from jiasu.hardware.device import synchronize
from jiasu.train.data import Samples
from jiasu.train.evaluate import eval_batch_size, measure, predict_all
from jiasu.train.loaders import Batch, Inputs, split_batch
from jiasu.train.objective import Objective
from jiasu.train.setup import StepAction, StepHooks, TrainSetup
from jiasu.train.strategy import SingleProcess, Strategy
from jiasu.ui.progress import TaskProgress


@dataclass
class TargetCheck:
    """Stop once the held-out `metric` reaches `accuracy` (the target value, whatever the
    metric: at or above it when `higher_is_better`, else at or below), checked
    `per_epoch` times per epoch.

    The checks' own time is excluded from the training clock; `reached_at_s` is the
    training time (`train_seconds` so far, see `jiasu.train.history.DEFINITIONS`) at the
    end of the step after which the target was first met.
    """

    accuracy: float
    data: Samples
    per_epoch: int = 1
    reached_at_s: float | None = None
    curve: list[tuple[float, float]] = field(default_factory=list)  # (train s, metric value)
    metric: str = "accuracy"
    higher_is_better: bool = True

    def met_by(self, value: float) -> bool:
        return value >= self.accuracy if self.higher_is_better else value <= self.accuracy


@dataclass
class LiveRun:
    """Everything the loop touches, built once by `fit`."""

    setup: TrainSetup
    model: nn.Module  # the module whose weights are trained and evaluated
    step_model: nn.Module  # what the step calls: `model`, or its compiled form
    optimizer: torch.optim.Optimizer
    hooks: Sequence[tuple[str, StepHooks]]
    batches: Iterable[Batch]
    clock_s: float = 0.0  # train_seconds of the epochs before this one
    objective: Objective = field(default_factory=Objective)
    names: tuple[str, ...] | None = None  # the inputs' names, to order dict batches
    strategy: Strategy = field(default_factory=SingleProcess)  # how many processes train

    def loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return self.objective.train_loss(self.setup.label_smoothing)

    def forward(self, inputs: Inputs) -> torch.Tensor:
        """The step model's outputs for one batch (channels_last where the run asks)."""
        if self.setup.channels_last:
            inputs = tuple(
                x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
                for x in inputs
            )
        return self.step_model(*inputs)

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        dtype = self.setup.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.setup.device.type, dtype=dtype)

    @contextlib.contextmanager
    def eval_weights(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for _, hook in self.hooks:
                stack.enter_context(hook.eval_weights(self.model))
            yield

    def measure(self, data: Samples) -> dict[str, float]:
        """Loss and metrics on `data` with the weights evaluation sees (`eval_weights`),
        over every process of the run's strategy."""
        return self.strategy.measure(self, data)

    def measure_here(self, data: Samples) -> dict[str, float]:
        """`measure` in this process alone."""
        with self.eval_weights():
            return measure(
                self.model,
                data,
                self.objective,
                batch_size=eval_batch_size(data, self.setup.batch_size),
                device=self.setup.device,
                names=self.names,
                num_workers=self.setup.num_workers,
            )

    def outputs_here(self, data: Samples) -> tuple[torch.Tensor, torch.Tensor]:
        """Every output and target on `data` in this process, as `measure_here` sees them."""
        with self.eval_weights():
            return predict_all(
                self.model,
                data,
                batch_size=eval_batch_size(data, self.setup.batch_size),
                device=self.setup.device,
                names=self.names,
                num_workers=self.setup.num_workers,
            )

    def evaluate(self, data: Samples) -> tuple[float, float]:
        """(loss, accuracy) of a classifier on `data` (accuracy NaN for other tasks)."""
        figures = self.measure(data)
        return figures["loss"], figures.get("accuracy", math.nan)


@dataclass(frozen=True)
class EpochFigures:
    train_loss: float
    train_metrics: dict[str, float]  # accumulated over the epoch's steps (e.g. accuracy)
    samples: int
    train_seconds: float
    reached_target: bool

    @property
    def train_accuracy(self) -> float:
        """A classifier's training accuracy over the epoch (NaN for other tasks)."""
        return self.train_metrics.get("accuracy", math.nan)


def run_epoch(run: LiveRun, bar: TaskProgress, target: TargetCheck | None) -> EpochFigures:
    setup, model = run.setup, run.model
    model.train()
    device = setup.device
    loss_sum = torch.zeros((), device=device)
    running = run.objective.running(device)
    loss_fn = run.loss_fn()
    seen = 0
    n_batches = len(run.batches)  # type: ignore[arg-type]
    check_every = max(1, n_batches // target.per_epoch) if target else 0
    reached = False
    start = time.perf_counter()
    paused_s = 0.0
    for index, (inputs, y) in enumerate(run.batches):
        raise_if_terminated()  # a SIGTERM whose exception something swallowed
        with run.autocast():
            outputs = run.forward(inputs)  # (B, classes) or (B, ...) for a regression
            loss = loss_fn(outputs, y)
        _step(run, loss, last_in_epoch=index == n_batches - 1)
        loss_sum += loss.detach() * y.shape[0]
        if running is not None:
            running.update(outputs, y)
        seen += y.shape[0]
        bar.advance()
        if target and ((index + 1) % check_every == 0 or index == n_batches - 1):
            synchronize(device)  # the steps so far are done before the clock is read
            elapsed_s = time.perf_counter() - start - paused_s
            paused_s += _check_target(run, target, elapsed_s)
            if target.reached_at_s is not None:
                reached = True
                break  # the epoch's clock stops where the target was met: elapsed_s
    if not reached:
        synchronize(device)
        elapsed_s = time.perf_counter() - start - paused_s
    train_seconds = elapsed_s
    run.clock_s += train_seconds
    return EpochFigures(
        train_loss=loss_sum.item() / seen,
        train_metrics=running.result(seen) if running is not None else {},
        samples=seen,
        train_seconds=train_seconds,
        reached_target=reached,
    )


def train_steps(run: LiveRun, steps: int, *, record: bool = True) -> list[float]:
    """Run `steps` training steps from a fresh pass over the batches; return their losses.

    Used to probe a configuration's step time and numerics without a whole epoch.
    With ``record=False`` no loss is read back (no per-step sync), only the final sync.
    """
    run.model.train()
    losses: list[float] = []
    loss_fn = run.loss_fn()
    done = 0
    while done < steps:
        for inputs, y in run.batches:
            raise_if_terminated()
            with run.autocast():
                loss = loss_fn(run.forward(inputs), y)
            _step(run, loss, last_in_epoch=False)
            if record:
                losses.append(loss.item())
            done += 1
            if done == steps:
                break
    synchronize(run.setup.device)
    return losses


def _step(run: LiveRun, loss: torch.Tensor, *, last_in_epoch: bool) -> None:
    for _, hook in run.hooks:
        loss = hook.scale_loss(loss)
    loss.backward()
    action = StepAction.STEP
    for _, hook in run.hooks:  # the gradient pipeline, in recipe order
        action = hook.after_backward(run.model, last_in_epoch)
        if action is not StepAction.STEP:
            break
    if action is StepAction.DEFER:
        return  # keep the gradients: the next micro-batch adds to them
    if action is StepAction.STEP:
        if not any(hook.step(run.optimizer) for _, hook in run.hooks):
            run.optimizer.step()
        for _, hook in run.hooks:
            hook.after_step(run.model)
    run.optimizer.zero_grad(set_to_none=True)


def _check_target(run: LiveRun, target: TargetCheck, elapsed_in_epoch_s: float) -> float:
    """Evaluate on the target data; return the seconds spent (excluded from training time)."""
    start = time.perf_counter()
    value = run.measure(target.data)[target.metric]
    run.model.train()
    now_s = run.clock_s + elapsed_in_epoch_s
    target.curve.append((now_s, value))
    if target.met_by(value) and target.reached_at_s is None:
        target.reached_at_s = now_s
    return time.perf_counter() - start


def compile_warmup(run: LiveRun, train: Samples) -> float:
    """Compile for the batch shapes the epoch will use; leave weights and RNG untouched.

    Returns the seconds spent. The model's state (BN statistics included), the RNG and
    the gradients are restored, so the run that follows is the one it would have been.
    """
    setup = run.setup
    if isinstance(train, DataLoader):
        train = train.dataset
    n = len(train)  # type: ignore[arg-type]
    sizes = [min(setup.batch_size, n)]
    if n % setup.batch_size and n > setup.batch_size:
        sizes.append(n % setup.batch_size)  # the last, shorter batch of an epoch
    state = copy.deepcopy(run.model.state_dict())
    rng = torch.get_rng_state()
    run.model.train()
    start = time.perf_counter()
    loss_fn = run.loss_fn()
    for size in sizes:
        inputs, y = first_samples(train, size, run.names)
        inputs = tuple(x.to(setup.device) for x in inputs)
        with run.autocast():
            loss = loss_fn(run.forward(inputs), y.to(setup.device))
        loss.backward()
    synchronize(setup.device)
    seconds = time.perf_counter() - start
    run.optimizer.zero_grad(set_to_none=True)
    run.model.load_state_dict(state)
    torch.set_rng_state(rng)
    return seconds


def first_samples(data: Samples, size: int, names: Sequence[str] | None = None) -> Batch:
    """The first `size` samples of `data` as one batch (a Dataset's are collated), on the
    data's own device."""
    from jiasu.data.examples import Examples

    if isinstance(data, DataLoader):
        data = data.dataset
    if isinstance(data, Examples):
        return tuple(x[:size] for x in data.inputs), data.targets[:size]
    samples = [data[i] for i in range(min(size, len(data)))]  # type: ignore[arg-type]
    return split_batch(default_collate(samples), names)


def finish(run: LiveRun) -> None:
    for _, hook in run.hooks:
        hook.on_train_end(run.model)


LogFn = Callable[[str], None]
