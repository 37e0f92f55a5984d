"""crossed.py: each writer's patch, computed another way on a random GRU (the states, not accuracies,
since an untrained GRU gets no sequence right)."""
import torch

from onion_gru.analysis import generators
from onion_gru.crossed import patched_states
from onion_gru.interventions import OnionUnigram
from onion_gru.model import ModelConfig, RepeatRNN
from onion_gru.probes import OnionProbe


def models(k=2, hidden=16):
    torch.manual_seed(0)
    gru = RepeatRNN([ModelConfig(hidden, "no_input")] * k).eval().requires_grad_(False)
    intervention, probe = OnionUnigram(hidden, k), OnionProbe(hidden, k)
    with torch.no_grad():  # away from the initialisation, so that every parameter matters
        for p in [*intervention.parameters(), *probe.parameters()]:
            p.add_(0.3 * torch.randn_like(p))
    return gru, intervention, probe


def test_each_writer_patches_the_corrupted_position_with_its_own_embedding_and_scale():
    gru, intervention, probe = models()
    g = torch.Generator().manual_seed(1)
    x, lengths = torch.randint(0, 30, (2, 12, 9), generator=g), torch.randint(2, 10, (2, 12), generator=g)
    states = patched_states(gru, intervention, probe, x, lengths, generators([7, 7]))
    # the intervention's own path, on the same draws: its state() with the same generators
    torch.testing.assert_close(states["intervention"], intervention.state(gru, x, lengths, generators([7, 7])), rtol=0, atol=0)
    torch.testing.assert_close(states["unpatched"], intervention.state(gru, x, lengths, generators([7, 7]), patch=False),
                               rtol=0, atol=0)
    torch.testing.assert_close(states["clean"], gru.encode(x, lengths), rtol=0, atol=0)
    # the probe's write, by hand: the same draws, member by member, s(p) = g gamma^p + p l + b
    for k, gen in enumerate(generators([7, 7])):
        corrupted, original, new, p = OnionUnigram.corrupt(x[k], lengths[k], gen)
        s = probe.scale
        scale = s.g[k] * s.gamma[k] ** p[:, None].float() + p[:, None] * s.l[k] + s.b[k]
        expected = states["unpatched"][k] + (probe.embedding[k, original] - probe.embedding[k, new]) * scale
        torch.testing.assert_close(states["probe_patch"][k], expected, rtol=1e-6, atol=1e-6)
        assert (corrupted != x[k]).any()
