"""The onion intervention and the onion probe crossed (notebook 02's no-input puzzle).

Small no-input GRUs are read out by the onion probe, yet the onion intervention barely patches
them.  Both peel the state the same way (a token's embedding at a per-position scale,
``interventions.OnionScale``); they differ in who reads: the probe's own classifier, or the GRU's
decoder.  So on the same corrupted examples (one position replaced, ``OnionUnigram.corrupt``, the
evaluation seed) each writer's patch is read by each reader:

* writers: the trained intervention, h + (tanh E[x] - tanh E[x']) s(p); and the probe's own
  peeling used as a write, h + (E_probe[x] - E_probe[x']) s_probe(p) (no training);
* readers: the GRU's decoder (the intervention's score) and the probe (teacher-forced peeling),
  both scored on the original sequence (exact match).

A patch the probe reads but the decoder does not is right for an onion reader and wrong for the
GRU: the store is decodable as an onion without being the onion the decoder uses.
"""
from __future__ import annotations

import torch

from .analysis import EVAL_SEED, generators
from .interventions import OnionUnigram, per_member
from .layers import gather_rows, group_size
from .loop import exact_matches
from .model import RepeatRNN, exact_match
from .probes import OnionProbe

READINGS = ("gru_reads_intervention", "probe_reads_intervention", "gru_reads_probe_patch", "probe_reads_probe_patch",
            "gru_reads_unpatched", "probe_reads_unpatched", "probe_reads_clean")


def patched_states(gru: RepeatRNN, intervention: OnionUnigram, probe: OnionProbe, x, lengths, gens) -> dict:
    """The states of one batch: each writer's patch of the corrupted state ("intervention",
    "probe_patch"), the corrupted state itself ("unpatched") and the clean one ("clean")."""
    corrupted, original, new, p = per_member(OnionUnigram.corrupt, x, lengths, gens)
    with torch.no_grad():
        h, E = gru.encode(corrupted, lengths), probe.embedding
        return {"intervention": intervention.repair(h, original, new, p), "unpatched": h,
                "probe_patch": h + (gather_rows(E, original) - gather_rows(E, new)) * probe.scale(p),
                "clean": gru.encode(x, lengths)}


def crossed(gru: RepeatRNN, intervention: OnionUnigram, probe: OnionProbe, tokens, lengths,
            batch_size: int = 1000) -> list[dict]:
    """Per member (the intervention's and the probe's member k on the GRU's member k): the accuracy
    of each reading of ``READINGS`` on the set, every example corrupted once as the evaluation does."""
    K = group_size(intervention)
    gens = generators([EVAL_SEED] * K)

    def score(x, l):
        states = patched_states(gru, intervention, probe, x, l, gens)
        with torch.no_grad():
            out = {f"gru_reads_{name}": exact_match(gru.decode(s, x, lengths=l).argmax(-1), x, l)
                   for name, s in states.items() if name != "clean"}
            return out | {f"probe_reads_{name}": exact_match(probe.readout(gru, s, x, l).argmax(-1), x, l)
                          for name, s in states.items()}
    correct = exact_matches(tokens, lengths, K, gru.device, batch_size, score)
    return [{name: correct[name][k].float().mean().item() for name in READINGS} for k in range(K)]
