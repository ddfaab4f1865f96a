"""torch.compile on a machine short of processes: one compile thread, not a failed run."""

from __future__ import annotations

import errno

import pytest
import torch
from torch import nn

from jiasu.train.techniques.compile import (
    ResilientCompiled,
    out_of_processes,
    use_one_compile_thread,
)


def test_running_out_of_processes_is_recognised_through_wrappers() -> None:
    eagain = BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
    try:
        try:
            raise eagain
        except OSError as inner:
            raise RuntimeError("backend compiler failed") from inner
    except RuntimeError as wrapped:
        assert out_of_processes(wrapped)
    assert out_of_processes(RuntimeError("can't start new thread"))
    assert not out_of_processes(RuntimeError("shape mismatch"))
    assert not out_of_processes(FileNotFoundError(errno.ENOENT, "no such file"))


@pytest.mark.timeout(300)
def test_one_compile_thread_compiles_the_same_model() -> None:
    import torch._inductor.config as inductor_config

    # Inductor's own patch() restores the setting after the test (monkeypatch's undo left
    # the config module without `compile_threads`, and the next compile failed).
    with inductor_config.patch(compile_threads=inductor_config.compile_threads):
        use_one_compile_thread()  # the degraded path: no compile workers are started
        assert inductor_config.compile_threads == 1
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 4), nn.ReLU()).eval()
        x = torch.rand(5, 8)
        compiled = ResilientCompiled(model)
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), model(x))
        assert not compiled.degraded  # nothing failed, so no retry was needed
