"""Training: the fit loop, callbacks, optimizers and training techniques."""

from jiasu.train import techniques as techniques  # registers the training techniques
from jiasu.train.callbacks import Callback, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau
from jiasu.train.evaluate import evaluate, measure
from jiasu.train.fit import fit
from jiasu.train.history import EpochRecord, History
from jiasu.train.optimizers import OPTIMIZERS, create_optimizer
from jiasu.train.settings import TrainSettings

__all__ = [
    "OPTIMIZERS",
    "Callback",
    "EarlyStopping",
    "EpochRecord",
    "History",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "TrainSettings",
    "create_optimizer",
    "evaluate",
    "fit",
    "measure",
]
