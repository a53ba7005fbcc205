"""Parallel-in-time evaluation of any cell: Newton iterations on the whole trajectory
(DEER, quasi-DEER), each a linear recurrence solved by an associative scan, or ELK's
damped steps (ELK, quasi-ELK), each a Kalman smoother run as associative scans; and the
forecast, from the largest Lyapunov exponent and a probe, of whether that pays."""

from jaxrnn.parallel.diagonal import separable, step_diagonal
from jaxrnn.parallel.kalman import damped_step
from jaxrnn.parallel.linear import linear_recurrence
from jaxrnn.parallel.newton import Solution, newton, newton_step
from jaxrnn.parallel.predictability import (
    ITERATION_COST,
    Forecast,
    forecast,
    iteration_cost,
    iterations_by_length,
    largest_lyapunov,
    predicted_iterations,
    recommend,
)
from jaxrnn.parallel.unroll import METHODS, ParallelInfo, unroll

__all__ = [
    "ITERATION_COST",
    "Forecast",
    "forecast",
    "iteration_cost",
    "iterations_by_length",
    "largest_lyapunov",
    "predicted_iterations",
    "recommend",
    "METHODS",
    "ParallelInfo",
    "Solution",
    "damped_step",
    "linear_recurrence",
    "newton",
    "newton_step",
    "separable",
    "step_diagonal",
    "unroll",
]
