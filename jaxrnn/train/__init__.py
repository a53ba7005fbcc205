"""Training: ``fit`` with Optax, losses, truncated BPTT, checkpoints."""

from jaxrnn.train.data import Data, streams
from jaxrnn.train.fit import default_optimizer, fit
from jaxrnn.train.history import History
from jaxrnn.train.losses import accuracy, cross_entropy, mse

__all__ = ["Data", "History", "accuracy", "cross_entropy", "default_optimizer", "fit", "mse", "streams"]
