r"""Functional core of the recurrent layers: one layer in one direction, forward and backward.

Every function works time-major: ``x`` is ``(T, B, I)`` (sequence length, batch, features),
the initial state ``h0`` is ``(B, H_out)`` (and ``c0`` is ``(B, H)`` for an LSTM). The classes
of ``refbp.nn.rnn`` / ``refbp.nn.rnn_cell`` do validation, ``batch_first``, unbatched inputs,
layers and directions; a reverse direction is the same recurrence run on ``x[::-1]``.

Weights use torch's layout (``weight_ih`` is ``(G, I)``, ``weight_hh`` is ``(G, H_out)`` with
the gate blocks stacked in torch's order: LSTM ``i, f, g, o``, GRU ``r, z, n``).

Recurrences (per step t, x_t: (B, I), h_{t-1}: (B, H_out)), exactly as torch
-------------------------------------------------------------------------------
RNN:   h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),   act = tanh or relu.

LSTM:  [a_i, a_f, a_g, a_o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
       i = sigma(a_i), f = sigma(a_f), g = tanh(a_g), o = sigma(a_o)
       c_t = f * c_{t-1} + i * g
       m_t = o * tanh(c_t);  h_t = m_t W_hr^T  (proj_size > 0)  or  h_t = m_t.

GRU:   [gx_r, gx_z, gx_n] = x_t W_ih^T + b_ih,  [gh_r, gh_z, gh_n] = h_{t-1} W_hh^T + b_hh
       r = sigma(gx_r + gh_r), z = sigma(gx_z + gh_z)
       n = tanh(gx_n + r * gh_n)          (b_hn sits *inside* r * (...), as in torch)
       h_t = (h_{t-1} - n) * z + n        (= (1 - z) * n + z * h_{t-1}, torch's evaluation order)

The input projections ``x_t W_ih^T`` of all steps are one matrix product before the loop; only
``h_{t-1} W_hh^T`` is sequential. sigma(a) is evaluated as ``0.5 * tanh(a / 2) + 0.5`` (the same
function, no overflow for any a, one transcendental for all four LSTM gates at once).

Backward through time
---------------------
Let dh_t be the total gradient reaching h_t: the upstream gradient of output step t plus what
step t+1 sends back through the recurrence (and dh_T, the gradient of the final state h_n, at
the last step). Going from t = T down to 1:

RNN:   da_t = dh_t * act'(.)  with tanh' = 1 - h_t^2, relu' = 1[h_t > 0] (relu'(0) = 0);
       dh_{t-1} = da_t W_hh.

LSTM:  dm = dh_t W_hr (or dh_t);  dc_t += dm * o * (1 - tanh(c_t)^2)   (dc_t starts as the
       gradient from step t+1, or dc_T of c_n);
       da_i = dc_t g i (1 - i),   da_f = dc_t c_{t-1} f (1 - f),   da_g = dc_t i (1 - g^2),
       da_o = dm tanh(c_t) o (1 - o);
       dc_{t-1} = dc_t * f,   dh_{t-1} = da_t W_hh.

GRU:   dn = dh_t (1 - z),  dz = dh_t (h_{t-1} - n),  da_n = dn (1 - n^2),
       da_r = da_n gh_n r (1 - r),  da_z = dz z (1 - z);
       d(gx) = [da_r, da_z, da_n],  d(gh) = [da_r, da_z, da_n * r];
       dh_{t-1} = dh_t z + d(gh) W_hh.

Parameter gradients are sums over steps, done once after the loop as matrix products over all
T*B rows (A = the gate gradients d(gx), d(gh); for RNN/LSTM both are da):

       dW_ih = d(gx)^T X,   db_ih = sum d(gx),   dW_hh = d(gh)^T H_prev,   db_hh = sum d(gh),
       dW_hr = dH^T M  (LSTM projection: dH the total dh_t, M the m_t),   dX = d(gx) W_ih.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


#: torch's parameter name stem -> the ``CellWeights`` field holding it
FIELDS = {"weight_ih": "w_ih", "weight_hh": "w_hh", "bias_ih": "b_ih", "bias_hh": "b_hh",
          "weight_hr": "w_hr"}


@dataclass
class CellWeights:
    """The weights of one layer and direction, torch's layout; absent ones are ``None``."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray | None = None
    b_hh: np.ndarray | None = None
    w_hr: np.ndarray | None = None


@dataclass
class LayerResult:
    """Output of :func:`layer_forward`: every h_t, the final states, and the backward cache."""

    output: np.ndarray              # (T, B, H_out)
    h_n: np.ndarray                 # (B, H_out)
    c_n: np.ndarray | None          # (B, H) for an LSTM
    cache: dict[str, Any]


@dataclass
class LayerGrads:
    """Output of :func:`layer_backward`: input and initial-state gradients, weight gradients."""

    dx: np.ndarray
    dh0: np.ndarray
    dc0: np.ndarray | None
    weights: CellWeights


def sigmoid(a: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^-a)`` computed as ``0.5 tanh(a/2) + 0.5`` (exact identity, no overflow)."""
    return np.tanh(a * 0.5) * 0.5 + 0.5


def _rows(a: np.ndarray, rows: int) -> np.ndarray:
    """(T, B, F) as (T * B, F), also for an empty batch (B = 0)."""
    return a.reshape(rows, a.shape[-1])


def _input_projection(x: np.ndarray, w: CellWeights, with_hh_bias: bool) -> np.ndarray:
    """``x W_ih^T + b_ih (+ b_hh)`` for all steps at once: (T, B, G)."""
    t, b, i = x.shape
    gx = (x.reshape(t * b, i) @ w.w_ih.T).reshape(t, b, w.w_ih.shape[0])
    if w.b_ih is not None:
        gx += w.b_ih
        if with_hh_bias and w.b_hh is not None:
            gx += w.b_hh
    return gx


def _states(x: np.ndarray, h0: np.ndarray, width: int) -> np.ndarray:
    hs = np.empty((x.shape[0] + 1, x.shape[1], width), dtype=x.dtype)
    hs[0] = h0
    return hs


# -- RNN ---------------------------------------------------------------------------------
def _rnn_forward(mode: str, x: np.ndarray, h0: np.ndarray, w: CellWeights) -> LayerResult:
    gx = _input_projection(x, w, with_hh_bias=True)
    hs = _states(x, h0, w.w_hh.shape[1])
    whh_t = w.w_hh.T
    for t in range(x.shape[0]):
        a = hs[t + 1]
        np.matmul(hs[t], whh_t, out=a)
        a += gx[t]
        if mode == "RNN_TANH":
            np.tanh(a, out=a)
        else:
            np.maximum(a, 0, out=a)
    return LayerResult(hs[1:], hs[-1], None, {"x": x, "hs": hs})


def _rnn_backward(mode: str, c: dict[str, Any], w: CellWeights, dout: np.ndarray | None,
                  dh: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
    hs = c["hs"]
    out = hs[1:]
    deriv = 1 - out * out if mode == "RNN_TANH" else (out > 0).astype(out.dtype)
    da = np.empty_like(out)
    for t in range(out.shape[0] - 1, -1, -1):
        g = dh if dout is None else dh + dout[t]
        np.multiply(g, deriv[t], out=da[t])
        dh = da[t] @ w.w_hh
    return da, dh, None


# -- LSTM --------------------------------------------------------------------------------
def _gate_affine(hidden: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Per-column scale and shift turning tanh into sigma on the i, f, o blocks."""
    scale = np.full(4 * hidden, 0.5, dtype=dtype)
    scale[2 * hidden:3 * hidden] = 1.0
    shift = np.full(4 * hidden, 0.5, dtype=dtype)
    shift[2 * hidden:3 * hidden] = 0.0
    return scale, shift


def _lstm_forward(x: np.ndarray, h0: np.ndarray, c0: np.ndarray,
                  w: CellWeights) -> LayerResult:
    steps, batch = x.shape[:2]
    hidden = w.w_ih.shape[0] // 4
    gx = _input_projection(x, w, with_hh_bias=True)
    hs = _states(x, h0, w.w_hh.shape[1])
    cs = _states(x, c0, hidden)
    acts = np.empty((steps, batch, 4 * hidden), dtype=x.dtype)
    tcs = np.empty((steps, batch, hidden), dtype=x.dtype)
    ms = tcs.copy() if w.w_hr is not None else None
    scale, shift = _gate_affine(hidden, x.dtype)
    whh_t = w.w_hh.T
    h2, h3 = 2 * hidden, 3 * hidden
    for t in range(steps):
        a = acts[t]
        np.matmul(hs[t], whh_t, out=a)
        a += gx[t]
        a *= scale
        np.tanh(a, out=a)
        a *= scale
        a += shift
        np.multiply(a[:, hidden:h2], cs[t], out=cs[t + 1])
        cs[t + 1] += a[:, :hidden] * a[:, h2:h3]
        np.tanh(cs[t + 1], out=tcs[t])
        if ms is None:
            np.multiply(a[:, h3:], tcs[t], out=hs[t + 1])
        else:
            np.multiply(a[:, h3:], tcs[t], out=ms[t])
            np.matmul(ms[t], w.w_hr.T, out=hs[t + 1])  # type: ignore[union-attr]
    cache = {"x": x, "hs": hs, "cs": cs, "acts": acts, "tcs": tcs, "ms": ms}
    return LayerResult(hs[1:], hs[-1], cs[-1], cache)


def _lstm_backward(c: dict[str, Any], w: CellWeights, dout: np.ndarray | None, dh: np.ndarray,
                   dc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    acts, tcs, cs = c["acts"], c["tcs"], c["cs"]
    steps, batch, hidden = tcs.shape
    i, f = acts[..., :hidden], acts[..., hidden:2 * hidden]
    g, o = acts[..., 2 * hidden:3 * hidden], acts[..., 3 * hidden:]
    # everything of da_i, da_f, da_g but the factor dc_t, for all steps at once (T, B, 3, H)
    q = np.empty((steps, batch, 3, hidden), dtype=acts.dtype)
    q[:, :, 0] = g * (i * (1 - i))
    q[:, :, 1] = cs[:-1] * (f * (1 - f))
    q[:, :, 2] = i * (1 - g * g)
    o_dtanh = o * (1 - tcs * tcs)        # dc_t += dm * o (1 - tanh(c_t)^2)
    tc_do = tcs * (o * (1 - o))           # da_o = dm * tanh(c_t) o (1 - o)
    da = np.empty_like(acts)
    da4 = da.reshape(steps, batch, 4, hidden)
    dhs = np.empty(c["hs"][1:].shape, dtype=acts.dtype)
    for t in range(steps - 1, -1, -1):
        gh = dhs[t]
        if dout is None:
            gh[...] = dh
        else:
            np.add(dh, dout[t], out=gh)
        dm = gh if w.w_hr is None else gh @ w.w_hr
        dc = dc + dm * o_dtanh[t]
        np.multiply(q[t], dc[:, None, :], out=da4[t, :, :3])
        np.multiply(dm, tc_do[t], out=da4[t, :, 3])
        dc = dc * f[t]
        dh = da[t] @ w.w_hh
    return da, dh, dc, dhs


# -- GRU ---------------------------------------------------------------------------------
def _gru_forward(x: np.ndarray, h0: np.ndarray, w: CellWeights) -> LayerResult:
    steps, batch = x.shape[:2]
    hidden = w.w_hh.shape[1]
    h2 = 2 * hidden
    gx = _input_projection(x, w, with_hh_bias=False)
    hs = _states(x, h0, hidden)
    acts = np.empty((steps, batch, 3 * hidden), dtype=x.dtype)
    ghn = np.empty((steps, batch, hidden), dtype=x.dtype)
    whh_t = w.w_hh.T
    for t in range(steps):
        gh = hs[t] @ whh_t
        if w.b_hh is not None:
            gh += w.b_hh
        a = acts[t]
        np.add(gx[t, :, :h2], gh[:, :h2], out=a[:, :h2])
        a[:, :h2] = sigmoid(a[:, :h2])
        ghn[t] = gh[:, h2:]
        n = a[:, h2:]
        np.multiply(a[:, :hidden], gh[:, h2:], out=n)
        n += gx[t, :, h2:]
        np.tanh(n, out=n)
        np.subtract(hs[t], n, out=hs[t + 1])
        hs[t + 1] *= a[:, hidden:h2]
        hs[t + 1] += n
    return LayerResult(hs[1:], hs[-1], None, {"x": x, "hs": hs, "acts": acts, "ghn": ghn})


def _gru_backward(c: dict[str, Any], w: CellWeights, dout: np.ndarray | None,
                  dh: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    acts, ghn, hs = c["acts"], c["ghn"], c["hs"]
    hidden = ghn.shape[-1]
    h2 = 2 * hidden
    r, z, n = acts[..., :hidden], acts[..., hidden:h2], acts[..., h2:]
    deriv = acts * (1 - acts)
    deriv[..., h2:] = 1 - n * n
    dgx = np.empty_like(acts)
    dgh = np.empty_like(acts)
    for t in range(acts.shape[0] - 1, -1, -1):
        g = dh if dout is None else dh + dout[t]
        d = dgx[t]
        np.multiply(g, 1 - z[t], out=d[:, h2:])
        np.multiply(g, hs[t] - n[t], out=d[:, hidden:h2])
        d[:, h2:] *= deriv[t, :, h2:]
        np.multiply(d[:, h2:], ghn[t], out=d[:, :hidden])
        d[:, :h2] *= deriv[t, :, :h2]
        e = dgh[t]
        e[:, :h2] = d[:, :h2]
        np.multiply(d[:, h2:], r[t], out=e[:, h2:])
        dh = g * z[t] + e @ w.w_hh
    return dgx, dgh, dh


# -- one layer, one direction -------------------------------------------------------------
def layer_forward(mode: str, x: np.ndarray, h0: np.ndarray, c0: np.ndarray | None,
                  w: CellWeights) -> LayerResult:
    """Run one layer over the sequence ``x`` (T, B, I) from ``h0`` (and ``c0``)."""
    if mode == "LSTM":
        if c0 is None:
            raise ValueError("an LSTM layer needs an initial cell state c0")
        return _lstm_forward(x, h0, c0, w)
    if mode == "GRU":
        return _gru_forward(x, h0, w)
    if mode in ("RNN_TANH", "RNN_RELU"):
        return _rnn_forward(mode, x, h0, w)
    raise ValueError(f"Unrecognized RNN mode: {mode}; known: {', '.join(MODES)}")


def _param_grads(w: CellWeights, x2: np.ndarray, hprev2: np.ndarray, dgx2: np.ndarray,
                 dgh2: np.ndarray) -> CellWeights:
    db_ih = dgx2.sum(axis=0) if w.b_ih is not None else None
    db_hh = dgh2.sum(axis=0) if w.b_hh is not None else None
    if db_hh is not None and dgh2 is dgx2:
        db_hh = db_ih.copy()  # type: ignore[union-attr]
    return CellWeights(dgx2.T @ x2, dgh2.T @ hprev2, db_ih, db_hh)


def layer_backward(mode: str, result: LayerResult, w: CellWeights, dout: np.ndarray | None,
                   dh_n: np.ndarray | None, dc_n: np.ndarray | None = None) -> LayerGrads:
    """Backward through time of :func:`layer_forward`.

    ``dout`` (T, B, H_out) is the gradient of every output step, ``dh_n`` (and ``dc_n``) the
    gradient of the final state; ``None`` means zero. Returns the gradients of the input, of
    the initial states and of every weight (see the module docstring for the derivation).
    """
    c = result.cache
    x, hs = c["x"], c["hs"]
    steps, batch = x.shape[:2]
    dh = np.zeros_like(result.h_n) if dh_n is None else dh_n
    rows = steps * batch
    dc0: np.ndarray | None = None
    dhs = None
    if mode == "LSTM":
        dc = np.zeros_like(result.c_n) if dc_n is None else dc_n
        dgx, dh0, dc0, dhs = _lstm_backward(c, w, dout, dh, dc)
        dgh = dgx
    elif mode == "GRU":
        dgx, dgh, dh0 = _gru_backward(c, w, dout, dh)
    else:
        dgx, dh0, _ = _rnn_backward(mode, c, w, dout, dh)
        dgh = dgx
    dgx2 = _rows(dgx, rows)
    dgh2 = dgx2 if dgh is dgx else _rows(dgh, rows)
    grads = _param_grads(w, _rows(x, rows), _rows(hs[:-1], rows), dgx2, dgh2)
    if w.w_hr is not None and dhs is not None:
        grads.w_hr = _rows(dhs, rows).T @ _rows(c["ms"], rows)
    dx = (dgx2 @ w.w_ih).reshape(steps, batch, w.w_ih.shape[1])
    return LayerGrads(dx, dh0, dc0, grads)
