"""Figures of the spectra (matplotlib, an extra: ``pip install 'jaxrnn[plot]'``).

Each function only draws arrays that the other ``jaxrnn.spectra`` functions return, on a
given axis (a new figure if None), and returns the figure.
"""

import warnings

import numpy as np


def _axis(ax):
    if ax is not None:
        return ax.figure, ax
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    return fig, ax


def plot_spectrum_vs_lag(log_svals, ax=None, top: int | None = 8, legend: bool = True):
    """Natural-log singular values of d s_T / d s_(T-k) against the lag k (as returned by
    ``log_singular_values_vs_lag``), one line per singular value, the ``top`` largest;
    ``legend`` names them sigma_1 (largest) to sigma_top."""
    fig, ax = _axis(ax)
    s = np.asarray(log_svals)
    lags = np.arange(1, s.shape[0] + 1)
    for i in range(s.shape[1] if top is None else min(top, s.shape[1])):
        ax.plot(lags, s[:, i], lw=1, color=f"C{i % 10}", label=f"σ_{i + 1}")
    ax.set_xlabel("lag k")
    ax.set_ylabel("ln σ_i(ds_T/ds_(T-k))")
    if legend:
        ax.legend(fontsize=7, ncol=2)
    return fig


def plot_gradient_norms(norms_by_name: dict, ax=None, ylabel: str = "||dL/ds_k||"):
    """||dL/ds_k|| against the lag T - k on a log scale, one line per entry (``ylabel``
    names the part of the state when the norms are of one block, e.g. h). An entry of shape
    (runs, lags) is drawn as its geometric mean over the runs with a band from the
    smallest to the largest. Exact zeros (a gradient that underflowed) have no place on a
    log axis: they are left out of the mean and the band, and a lag where every run is
    zero is a gap."""
    fig, ax = _axis(ax)
    for name, norms in norms_by_name.items():
        norms = np.asarray(norms, dtype=np.float64)
        runs = np.where(norms > 0, norms, np.nan).reshape(-1, norms.shape[-1])
        lags = np.arange(runs.shape[1])
        with warnings.catch_warnings():  # all-zero lags: NaN, drawn as gaps
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, low, high = np.exp(np.nanmean(np.log(runs), 0)), np.nanmin(runs, 0), np.nanmax(runs, 0)
        (line,) = ax.semilogy(lags, mean, label=name)
        if runs.shape[0] > 1:
            ax.fill_between(lags, low, high, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("lag T - k")
    ax.set_ylabel(ylabel)
    ax.legend(loc="lower left")
    return fig


def plot_eigenvalues(eigs, ax=None, label: str | None = None):
    """Eigenvalues in the complex plane against the unit circle."""
    fig, ax = _axis(ax)
    eigs = np.asarray(eigs).ravel()
    theta = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(theta), np.sin(theta), "k--", lw=0.8)
    ax.scatter(eigs.real, eigs.imag, s=6, label=label)
    ax.set_aspect("equal")
    ax.set_xlabel("Re")
    ax.set_ylabel("Im")
    return fig
