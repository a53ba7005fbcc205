"""Training: ``fit`` with Optax, ``evaluate``, ``predict``, losses, metrics, truncated BPTT, checkpoints."""

from jaxrnn.data import Data, streams
from jaxrnn.train.devices import Placement
from jaxrnn.train.evaluation import evaluate, predict
from jaxrnn.train.feeds import HostBatches
from jaxrnn.train.fitting import default_optimizer, fit
from jaxrnn.train.history import History
from jaxrnn.train.lengths import MissingLengthsWarning
from jaxrnn.train.losses import binary_cross_entropy, cross_entropy, mse
from jaxrnn.train.metrics import accuracy
from jaxrnn.train.objective import Loss
from jaxrnn.train.tbptt import TBPTT

__all__ = [
    "Data",
    "History",
    "Loss",
    "MissingLengthsWarning",
    "HostBatches",
    "Placement",
    "TBPTT",
    "accuracy",
    "binary_cross_entropy",
    "cross_entropy",
    "default_optimizer",
    "evaluate",
    "fit",
    "mse",
    "predict",
    "streams",
]
