"""The inner loop of `fit`: one epoch of steps through the techniques' hooks.

Kept apart from `fit` so the hot path is short and readable: per batch, forward under
the setup's autocast, loss (with label smoothing), the hooks' loss scaling, backward,
the gradient pipeline (STEP / DEFER / SKIP), the optimizer step, the after-step hooks.
Losses and accuracies accumulate on the device: no host sync per step.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from jiasu.hardware.device import synchronize
from jiasu.train.data import Arrays
from jiasu.train.evaluate import evaluate
from jiasu.train.loaders import Batch
from jiasu.train.setup import StepAction, StepHooks, TrainSetup
from jiasu.ui.progress import TaskProgress


@dataclass
class TargetCheck:
    """Stop once test accuracy reaches `accuracy`, checked `per_epoch` times per epoch.

    The checks' own time is excluded from the training clock; `reached_at_s` is the
    training time (`train_seconds` so far, see `jiasu.train.history.DEFINITIONS`) at the
    end of the step after which the target was first met.
    """

    accuracy: float
    data: Arrays
    per_epoch: int = 1
    reached_at_s: float | None = None
    curve: list[tuple[float, float]] = field(default_factory=list)  # (train s, test accuracy)


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

    def evaluate(self, data: Arrays) -> tuple[float, float]:
        with self.eval_weights():
            return evaluate(self.model, data.images, data.labels, device=self.setup.device)


@dataclass(frozen=True)
class EpochFigures:
    train_loss: float
    train_accuracy: float
    samples: int
    train_seconds: float
    reached_target: bool


def run_epoch(run: LiveRun, bar: TaskProgress, target: TargetCheck | None) -> EpochFigures:
    setup, model = run.setup, run.model
    model.train()
    device = setup.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    n_batches = len(run.batches)  # type: ignore[arg-type]
    check_every = max(1, n_batches // target.per_epoch) if target else 0
    reached = False
    start = time.perf_counter()
    paused_s = 0.0
    for index, (x, y) in enumerate(run.batches):
        if setup.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with run.autocast():
            logits = run.step_model(x)  # (B, classes)
            loss = F.cross_entropy(logits, y, label_smoothing=setup.label_smoothing)
        _step(run, loss, last_in_epoch=index == n_batches - 1)
        loss_sum += loss.detach() * y.shape[0]
        correct += (logits.detach().argmax(dim=1) == y).sum()
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
        train_accuracy=correct.item() / seen,
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
    done = 0
    while done < steps:
        for x, y in run.batches:
            if run.setup.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with run.autocast():
                loss = F.cross_entropy(
                    run.step_model(x), y, label_smoothing=run.setup.label_smoothing
                )
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
    _, accuracy = run.evaluate(target.data)
    run.model.train()
    now_s = run.clock_s + elapsed_in_epoch_s
    target.curve.append((now_s, accuracy))
    if accuracy >= target.accuracy and target.reached_at_s is None:
        target.reached_at_s = now_s
    return time.perf_counter() - start


def compile_warmup(run: LiveRun, train: Arrays) -> float:
    """Compile for the batch shapes the epoch will use; leave weights and RNG untouched.

    Returns the seconds spent. The model's state (BN statistics included), the RNG and
    the gradients are restored, so the run that follows is the one it would have been.
    """
    setup = run.setup
    n = len(train)
    sizes = [min(setup.batch_size, n)]
    if n % setup.batch_size and n > setup.batch_size:
        sizes.append(n % setup.batch_size)  # the last, shorter batch of an epoch
    state = copy.deepcopy(run.model.state_dict())
    rng = torch.get_rng_state()
    run.model.train()
    start = time.perf_counter()
    for size in sizes:
        x = train.images[:size].to(setup.device)
        y = train.labels[:size].to(setup.device)
        if setup.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with run.autocast():
            loss = F.cross_entropy(run.step_model(x), y, label_smoothing=setup.label_smoothing)
        loss.backward()
    synchronize(setup.device)
    seconds = time.perf_counter() - start
    run.optimizer.zero_grad(set_to_none=True)
    run.model.load_state_dict(state)
    torch.set_rng_state(rng)
    return seconds


def finish(run: LiveRun) -> None:
    for _, hook in run.hooks:
        hook.on_train_end(run.model)


LogFn = Callable[[str], None]
