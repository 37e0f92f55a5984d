"""The GRU's gates and states step by step, for the gate and state figures.

PyTorch's GRU is re-run by hand from its weights (gate order r, z, n), so every gate is visible:
    r = sigma(W_ir x + b_ir + W_hr h + b_hr)      reset
    z = sigma(W_iz x + b_iz + W_hz h + b_hz)      keep (PyTorch's z keeps the old state)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) candidate
    h' = (1 - z) * n + z * h
so 1 - z is the write strength, the paper's z_t.  ``write_schedule`` averages any gated cell's write
strength (``cells.py``: the share of the new input in each unit) over sequences, step by step.
"""
from __future__ import annotations

import torch

from .model import RepeatRNN
from .packed import Packing


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


@torch.no_grad()
def write_schedule(model: RepeatRNN, tokens: torch.Tensor) -> torch.Tensor:
    """The mean write strength at each step of a single model (a group of one) reading ``tokens
    [B, L]`` (all of length L) and generating them again with teacher forcing: [2L], the mean over
    the B sequences and the units of the cell's ``write`` (1 - z for the GRU)."""
    if not hasattr(model.rnn, "write"):
        raise ValueError(f"the {model.config.cell!r} cell has no gate that sets a write strength")
    x = tokens[None].to(model.device)
    gi = model.input_projection(torch.cat([x, model.decoder_inputs(x)], 2))  # [1, B, 2L, gates * H]
    packing = Packing.of(None, 1, x.shape[1], 1, device=model.device)  # one step: the batch's rows
    s, out = gi.new_zeros(1, x.shape[1], model.state_size), []
    for t in range(gi.shape[2]):
        out.append(model.rnn.write(gi[:, :, t], s).mean())
        s = model.rnn(gi[:, :, t], packing, s)
    return torch.stack(out).cpu()
