"""Training techniques; importing this package registers them."""

from jiasu.train.techniques.device_data import DeviceData
from jiasu.train.techniques.fused_optimizer import FusedOptimizer
from jiasu.train.techniques.threads import Threads

__all__ = ["DeviceData", "FusedOptimizer", "Threads"]
