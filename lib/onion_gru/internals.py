"""The GRU's gates and states step by step, for the gate and state figures.

PyTorch's GRU is re-run by hand from its weights (gate order r, z, n), so every gate is visible:
    r = sigma(W_ir x + b_ir + W_hr h + b_hr)      reset
    z = sigma(W_iz x + b_iz + W_hz h + b_hz)      keep (PyTorch's z keeps the old state)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) candidate
    h' = (1 - z) * n + z * h
so 1 - z is the write strength, the paper's z_t.
"""
from __future__ import annotations

import torch

from .model import RepeatRNN


@torch.no_grad()
def run_with_gates(model: RepeatRNN, tokens: list[int]) -> dict[str, torch.Tensor]:
    """Read ``tokens`` with a single model (a group of one), then generate them again with teacher
    forcing.  Returns h, r, z, n as [2L, H] tensors (reading steps, then generation steps) and the
    input fed at each step."""
    if model.config.cell != "gru":
        raise ValueError(f"gates are drawn for the GRU only, not {model.config.cell!r}")
    rnn, H = model.rnn, model.config.hidden_size
    x = torch.tensor(tokens)[None, None]
    inputs = torch.cat([x[0, 0], model.decoder_inputs(x)[0, 0]])
    W_ih, W_hh, b_ih, b_hh = rnn.weight_ih_l0[0], rnn.weight_hh_l0[0], rnn.bias_ih_l0[0], rnn.bias_hh_l0[0]
    h = torch.zeros(H, device=model.device)
    out = {k: [] for k in "hrzn"}
    for token in inputs.to(model.device):
        gi = W_ih @ model.embedding.weight[0, token] + b_ih
        gh = W_hh @ h + b_hh
        r = torch.sigmoid(gi[:H] + gh[:H])
        z = torch.sigmoid(gi[H:2 * H] + gh[H:2 * H])
        n = torch.tanh(gi[2 * H:] + r * gh[2 * H:])
        h = (1 - z) * n + z * h
        for k, v in zip("hrzn", (h, r, z, n)):
            out[k].append(v.cpu())
    result = {k: torch.stack(v) for k, v in out.items()}
    result["inputs"] = inputs.cpu()
    return result
