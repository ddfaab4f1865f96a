"""Set the number of intra-op threads torch uses."""

from __future__ import annotations

import dataclasses

from jiasu.core.technique import (
    Effect,
    Exactness,
    Kind,
    Stage,
    register_technique,
)
from jiasu.hardware.threads import check_threads, default_threads
from jiasu.train.setup import TrainSetup, TrainTechnique


@register_technique
@dataclasses.dataclass(frozen=True)
class Threads(TrainTechnique):
    """Use `num_threads` intra-op threads (default: every CPU this process may use).

    Too many threads for the cores (for example two workers × two threads on two
    cores) makes them fight for the cores; too few leaves cores idle.
    """

    name = "threads"
    effect = Effect(Stage.TRAIN, Kind.HARDWARE, Exactness.EXACT)
    summary = "intra-op thread count matched to the CPUs available"
    plain_function = "jiasu.hardware.threads.set_threads"

    num_threads: int | None = None  # None: all CPUs available to this process

    def __post_init__(self) -> None:
        if self.num_threads is not None:
            check_threads(self.num_threads, "technique 'threads': num_threads")

    def configure(self, setup: TrainSetup) -> TrainSetup:
        return dataclasses.replace(setup, num_threads=self.num_threads or default_threads())
