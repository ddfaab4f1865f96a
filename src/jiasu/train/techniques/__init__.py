"""Training techniques; importing this package registers them."""

from jiasu.train.techniques.averaging import Ema, Lookahead
from jiasu.train.techniques.compile import Compile, CudaGraphs
from jiasu.train.techniques.device import CudnnBenchmark, DevicePlacement, PinnedMemory
from jiasu.train.techniques.device_data import DeviceData
from jiasu.train.techniques.fused_optimizer import FusedOptimizer
from jiasu.train.techniques.gradients import Accumulate, ClipNorm, GradFn, SkipNonfinite
from jiasu.train.techniques.layout import ChannelsLast
from jiasu.train.techniques.precision import MixedPrecision
from jiasu.train.techniques.schedule import LabelSmoothing, LargeBatch, LrWarmup, OneCycle
from jiasu.train.techniques.threads import Threads

__all__ = [
    "Accumulate",
    "ChannelsLast",
    "ClipNorm",
    "Compile",
    "CudaGraphs",
    "CudnnBenchmark",
    "DeviceData",
    "DevicePlacement",
    "Ema",
    "FusedOptimizer",
    "GradFn",
    "LabelSmoothing",
    "LargeBatch",
    "Lookahead",
    "LrWarmup",
    "MixedPrecision",
    "OneCycle",
    "PinnedMemory",
    "SkipNonfinite",
    "Threads",
]
