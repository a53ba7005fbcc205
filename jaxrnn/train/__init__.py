"""Training: ``fit`` with Optax, ``evaluate``, ``predict``, losses, metrics, checkpoints (the data it
trains from: ``jaxrnn.data``)."""

from jaxrnn.train.devices import Placement
from jaxrnn.train.evaluation import evaluate, predict
from jaxrnn.train.fitting import default_optimizer, fit
from jaxrnn.train.history import History
from jaxrnn.train.lengths import MissingLengthsWarning
from jaxrnn.train.losses import binary_cross_entropy, cross_entropy, mse
from jaxrnn.train.metrics import accuracy
from jaxrnn.train.objective import Loss

__all__ = [
    "History",
    "Loss",
    "MissingLengthsWarning",
    "Placement",
    "accuracy",
    "binary_cross_entropy",
    "cross_entropy",
    "default_optimizer",
    "evaluate",
    "fit",
    "mse",
    "predict",
]
