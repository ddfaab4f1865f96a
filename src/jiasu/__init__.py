"""jiasu (加速): make PyTorch models train and serve faster, measured and verified."""

from __future__ import annotations

__version__ = "0.1.0"
