"""Gradient-flow diagnostics: step Jacobians, their products' spectra, gradient norm vs lag,
Lyapunov exponents and the Pascanu et al. (2013) bound.

Every function takes one unbatched sequence (T, F) and a cell (its step is the function
differentiated); results are arrays, float32 by default and float64 when JAX's x64 mode
is on and the cell was built with ``dtype=jnp.float64``. Every logarithm, returned or
plotted, is natural (Lyapunov exponents in nats per step). Plots live in
``jaxrnn.spectra.plots`` (matplotlib extra).
"""

from jaxrnn.spectra.bounds import PascanuBound, activation_bound, eigenvalues, pascanu_bound
from jaxrnn.spectra.gradients import (
    MemoryLength,
    gradient_norms_vs_lag,
    last_step_loss,
    memory_length,
    state_gradients,
)
from jaxrnn.spectra.jacobians import Trajectory, input_jacobians, step_jacobians, trajectory
from jaxrnn.spectra.lyapunov import Lyapunov, lyapunov_spectrum
from jaxrnn.spectra.products import log_singular_values, log_singular_values_vs_lag, log_spectral_norm_vs_lag

__all__ = [
    "Lyapunov",
    "MemoryLength",
    "PascanuBound",
    "Trajectory",
    "activation_bound",
    "eigenvalues",
    "gradient_norms_vs_lag",
    "input_jacobians",
    "last_step_loss",
    "log_singular_values",
    "log_singular_values_vs_lag",
    "log_spectral_norm_vs_lag",
    "lyapunov_spectrum",
    "memory_length",
    "pascanu_bound",
    "state_gradients",
    "step_jacobians",
    "trajectory",
]
