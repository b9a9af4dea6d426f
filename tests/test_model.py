"""The acoustic model: the ONNX I/O contract, padding invariance, CMVN inside, short inputs."""
from __future__ import annotations

import pytest
import torch

from vasr.model import MIN_FRAMES, CtcModel, ModelConfig, num_parameters, output_lengths

SHERPA_PAD = -23.0259  # log(1e-10): what sherpa-onnx pads a batch with
VOCAB = 12


def tiny(architecture: str) -> CtcModel:
    torch.manual_seed(0)
    model = CtcModel(ModelConfig(architecture=architecture, d_model=32, num_layers=2, num_heads=2, ff_dim=64,
                                 conv_kernel=5, subsampling_channels=8), VOCAB)
    model.set_cmvn(torch.linspace(-5.0, 5.0, 80), torch.linspace(0.5, 2.0, 80))
    return model.eval()


def test_output_lengths_follow_the_subsampling_arithmetic():
    lens = torch.tensor([1, 6, 7, 8, 10, 11, 100, 300], dtype=torch.int64)
    # ((max(L, 7) - 1) // 2 - 1) // 2
    assert output_lengths(lens).tolist() == [1, 1, 1, 1, 1, 2, 24, 74]
    assert MIN_FRAMES == 7


@pytest.mark.parametrize("architecture", ["transformer", "conformer"])
def test_contract_shapes_dtypes_and_log_softmax(architecture):
    model = tiny(architecture)
    x = torch.randn(3, 300, 80)
    log_probs, lens = model(x, torch.tensor([300, 120, 5]))
    assert log_probs.dtype == torch.float32 and lens.dtype == torch.int64
    assert log_probs.shape[0] == 3 and log_probs.shape[2] == VOCAB
    assert lens.tolist() == [74, 29, 1]
    assert log_probs.shape[1] >= 74
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(3, log_probs.shape[1]), atol=1e-5)


@pytest.mark.parametrize("architecture", ["transformer", "conformer"])
@pytest.mark.parametrize("pad_value", [SHERPA_PAD, 0.0, 1e4])
def test_valid_outputs_do_not_depend_on_padding(architecture, pad_value):
    model = tiny(architecture)
    g = torch.Generator().manual_seed(1)
    utts = [torch.randn(n, 80, generator=g) * 3 - 8 for n in (93, 4, 160, 37)]
    alone = [model(u[None], torch.tensor([len(u)]))[0][0] for u in utts]
    batch = torch.full((len(utts), 200, 80), pad_value)
    for k, u in enumerate(utts):
        batch[k, : len(u)] = u
    log_probs, lens = model(batch, torch.tensor([len(u) for u in utts]))
    for k, single in enumerate(alone):
        n = int(lens[k])
        assert n == int(output_lengths(torch.tensor([len(utts[k])]))[0])
        assert torch.isfinite(log_probs[k, :n]).all()
        torch.testing.assert_close(log_probs[k, :n], single[:n], atol=2e-5, rtol=1e-5)


def test_cmvn_is_inside_the_model_and_saved_with_it():
    model = tiny("transformer")
    x = torch.randn(2, 50, 80)
    lens = torch.tensor([50, 50])
    mean, std = torch.full((80,), 3.0), torch.full((80,), 2.0)
    model.set_cmvn(mean, std)
    shifted = model(x * 2.0 + 3.0, lens)[0]
    model.set_cmvn(torch.zeros(80), torch.ones(80))
    plain = model(x, lens)[0]
    torch.testing.assert_close(shifted, plain, atol=1e-5, rtol=1e-5)
    state = model.state_dict()
    assert torch.equal(state["cmvn_mean"], torch.zeros(80)) and torch.equal(state["cmvn_istd"], torch.ones(80))


def test_short_inputs_give_one_frame_and_gradients_flow():
    model = tiny("conformer").train()
    x = torch.randn(2, 3, 80, requires_grad=True)
    log_probs, lens = model(x, torch.tensor([3, 1]))
    assert lens.tolist() == [1, 1]
    log_probs[:, 0, 1].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad[1, 1:].abs().sum() == 0  # frames past an utterance's length never matter


def test_parameter_count_of_a_known_shape():
    model = CtcModel(ModelConfig(d_model=32, num_layers=1, num_heads=2, ff_dim=64, subsampling_channels=8), 10)
    conv = (1 * 8 * 9 + 8) + (8 * 8 * 9 + 8)
    subsampling_out = 8 * 19 * 32 + 32
    block = 2 * (2 * 32) + (32 * 96 + 96) + (32 * 32 + 32) + (32 * 64 + 64) + (64 * 32 + 32)
    head = 2 * 32 + (32 * 10 + 10)
    assert num_parameters(model) == conv + subsampling_out + block + head


def streaming_model() -> CtcModel:
    torch.manual_seed(0)
    cfg = ModelConfig(architecture="conformer", d_model=32, num_layers=2, num_heads=4, ff_dim=64,
                      conv_kernel=5, subsampling_channels=8, dropout=0.0, streaming=True)
    return CtcModel(cfg, 20).eval()


def test_chunk_by_chunk_with_caches_equals_the_chunk_masked_forward():
    model = streaming_model()
    chunk, left, chunks = 4, 2, 7
    cache = chunk * left
    frames = 4 * chunk * chunks + 3
    x = torch.randn(1, frames, 80)
    with torch.no_grad():
        expected, lens = model(x, torch.tensor([frames]), chunk=chunk, left_chunks=left)
        att = torch.zeros(2, 4, cache, 2 * 32 // 4)
        conv = torch.zeros(2, 1, 32, 4)
        got = []
        for k in range(chunks):
            mask = torch.zeros(1, 1, cache + chunk, dtype=torch.bool)
            mask[..., cache - min(k * chunk, cache):] = True
            lp, att, conv = model.forward_chunk(x[:, 4 * chunk * k: 4 * chunk * k + 4 * chunk + 3],
                                                torch.tensor([cache + k * chunk]), att, conv, mask,
                                                torch.tensor([cache]))
            got.append(lp)
    assert int(lens[0]) == chunk * chunks
    assert torch.allclose(torch.cat(got, dim=1), expected[:, : chunk * chunks], atol=1e-5)


def test_streaming_outputs_never_see_past_their_chunk():
    model = streaming_model()
    x = torch.randn(1, 203, 80)
    changed = x.clone()
    changed[:, 4 * 16 + 3:] += 5.0                      # everything after the second 8-frame chunk's input
    with torch.no_grad():
        a, _ = model(x, torch.tensor([203]), chunk=8, left_chunks=-1)
        b, _ = model(changed, torch.tensor([203]), chunk=8, left_chunks=-1)
        full_a, _ = model(x, torch.tensor([203]))
        full_b, _ = model(changed, torch.tensor([203]))
    assert torch.equal(a[:, :16], b[:, :16])            # chunked: the first two chunks cannot see the change
    assert not torch.allclose(full_a[:, :16], full_b[:, :16])   # full context: they can


def test_streaming_training_draws_chunkings_and_padded_batches_stay_finite():
    model = streaming_model().train()
    torch.manual_seed(1)
    draws = [model._draw_chunking(50) for _ in range(200)]
    full = sum(c == 0 for c, _ in draws)
    assert 70 <= full <= 130                             # full_context_prob 0.5
    assert all(1 <= c <= 25 and 0 <= left <= 49 // c for c, left in draws if c)
    x = torch.randn(3, 300, 80, requires_grad=True)
    lp, lens = model(x, torch.tensor([300, 120, 40]), chunk=2, left_chunks=1)
    lp[0, :5].sum().backward()
    assert torch.isfinite(lp).all() and torch.isfinite(x.grad).all()


def test_streaming_needs_a_conformer():
    with pytest.raises(ValueError, match="conformer"):
        ModelConfig(architecture="transformer", streaming=True)
