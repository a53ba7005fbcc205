"""The notes' equations written out by hand in numpy, in the notes' own notation.

Gate weights act on the concatenation [h_{t-1}, x_t] as in notes 003
(f_t = σ(W_f [h_{t-1}, x_t] + b_f), ...). ``split`` maps such a matrix to jaxrnn's
(W_hh block, W_xh block).
"""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def layer_norm(a, gain, shift=0.0, eps=1e-5):
    mu = a.mean(-1, keepdims=True)
    var = ((a - mu) ** 2).mean(-1, keepdims=True)
    return (a - mu) / np.sqrt(var + eps) * gain + shift


def rnn_step(h, x, W_xh, W_hh, b_h, f=np.tanh):
    """Notes 000-002: h_t = f(W_xh x_t + W_hh h_{t-1} + b_h)."""
    return f(W_xh @ x + W_hh @ h + b_h)


def lstm_step(h, c, x, W, b):
    """Notes 003, section 6. W[g] is (H, H + in) acting on [h, x]; gates 'f', 'i', 'C', 'o'."""
    hx = np.concatenate([h, x])
    f = sigmoid(W["f"] @ hx + b["f"])
    i = sigmoid(W["i"] @ hx + b["i"])
    C_tilde = np.tanh(W["C"] @ hx + b["C"])
    o = sigmoid(W["o"] @ hx + b["o"])
    c = f * c + i * C_tilde
    return o * np.tanh(c), c


def gru_step_seed(h, x, W, b):
    """Notes 003, section 7 (reset before the matmul): W[g] is (H, H + in) acting on [h, x]."""
    hx = np.concatenate([h, x])
    z = sigmoid(W["z"] @ hx + b["z"])
    r = sigmoid(W["r"] @ hx + b["r"])
    h_tilde = np.tanh(W["h"] @ np.concatenate([r * h, x]) + b["h"])
    return (1 - z) * h + z * h_tilde


def gru_step_reset_after(h, x, W, b, b_hn):
    """Reset-after GRU (PyTorch/cuDNN form) with the notes' z: r multiplies W_hn h + b_hn."""
    H = len(h)
    hx = np.concatenate([h, x])
    z = sigmoid(W["z"] @ hx + b["z"])
    r = sigmoid(W["r"] @ hx + b["r"])
    n = np.tanh(W["h"][:, H:] @ x + b["h"] + r * (W["h"][:, :H] @ h + b_hn))
    return (1 - z) * h + z * n


def ln_lstm_step(h, c, x, W_xh, W_hh, b, g_x, g_h, g_c, s_c):
    """Layer-norm LSTM (Ba et al. 2016), gate order i, f, g, o, each gate normalised alone."""
    H = len(h)
    ax = np.concatenate([layer_norm(blk, g) for blk, g in zip(np.split(W_xh @ x, 4), np.split(g_x, 4))])
    ah = np.concatenate([layer_norm(blk, g) for blk, g in zip(np.split(W_hh @ h, 4), np.split(g_h, 4))])
    a = ax + ah + b
    i, f, g, o = sigmoid(a[:H]), sigmoid(a[H : 2 * H]), np.tanh(a[2 * H : 3 * H]), sigmoid(a[3 * H :])
    c = f * c + i * g
    return o * np.tanh(layer_norm(c, g_c, s_c)), c


def split(W, H):
    """[h, x]-matrix (H, H + in) -> (recurrent block (H, H), input block (H, in))."""
    return W[:, :H], W[:, H:]
