"""Callbacks for ``jaxrnn.fit``: the objects that stop, save, resume, show and log a run.

``fit(..., callbacks=[EarlyStopping(5), ModelCheckpoint("run.ckpt", every=200, resume=True)])``;
see ``jaxrnn.train.callbacks`` for how they act on the run and how to write one's own.
"""

from jaxrnn.train.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    EpochPrinter,
    LambdaCallback,
    MaxSteps,
    ModelCheckpoint,
    ProgressBar,
    Run,
    Stop,
    StopOnNonFinite,
    WarnOnLossRise,
)

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "EpochPrinter",
    "LambdaCallback",
    "MaxSteps",
    "ModelCheckpoint",
    "ProgressBar",
    "Run",
    "Stop",
    "StopOnNonFinite",
    "WarnOnLossRise",
]
