"""CTC prefix beam search: vasr's backends against pyctcdecode on peaky synthetic log-probs; and
the CTC forward algorithm (``ctc_log_likelihood``) against torch's ``ctc_loss``.

Both sides prune like pyctcdecode's defaults: tokens below -5 nats are skipped (vasr:
``prune_logp=-5.0``; pyctcdecode also drops beams 10 nats behind the best and prunes history).
Whether the best texts agree is stored in each vasr row's ``extra_info["same_best_text"]``.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import QUICK, label

from vasr.kernels import dispatch

VOCAB = 96  # tokens incl. blank 0, a character-sized vocabulary
FRAME_RATE = 25.0  # CTC frames per second of audio (10 ms fbank shift, subsampling x4)
PRUNE_LOGP = -5.0  # pyctcdecode's default token_min_logp
BLANK_SHARE = 0.6  # fraction of frames that are blank
AMBIGUOUS_SHARE = 0.2  # token frames with a second plausible token
HOT_WORDS = 100  # phrases in the context-graph benchmark, a few of them present in the audio
TOKENS_PER_SECOND = 6.0  # length of the token sequence scored by ctc_log_likelihood (60 in 10 s)

BACKENDS = dispatch.available("ctc")
CASES = [(8, 10.0), (32, 10.0)] + ([] if QUICK else [(8, 60.0), (32, 60.0)])
LABELS = ["", *(chr(0x100 + i) for i in range(VOCAB - 1))]  # single letters, no space: one "word"


def peaky_log_probs(seconds: float, seed: int = 0) -> np.ndarray:
    """float32 (T, VOCAB) log-softmax: blank frames at p ~ 0.95, token runs of 1-2 frames at
    p ~ 0.6-0.95, some with a rival token, every frame with a little noise on all tokens."""
    rng = np.random.default_rng(seed)
    T = int(seconds * FRAME_RATE)
    logits = rng.normal(0.0, 1.0, size=(T, VOCAB))
    t = 0
    while t < T:
        if rng.random() < BLANK_SHARE:
            logits[t, 0] += 8.0
            t += 1
            continue
        token, run = rng.integers(1, VOCAB), int(rng.integers(1, 3))
        for u in range(t, min(T, t + run)):
            logits[u, token] += rng.uniform(6.0, 9.0)
            logits[u, 0] += rng.uniform(0.0, 6.0)
            if rng.random() < AMBIGUOUS_SHARE:
                logits[u, rng.integers(1, VOCAB)] += rng.uniform(5.0, 8.0)
        t += run
    logits -= logits.max(axis=1, keepdims=True)
    return (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)


def hot_word_phrases(log_probs: np.ndarray, ctc) -> list[list[int]]:
    """Random 3-6 token phrases, plus 5 three-token pieces of the greedy transcript."""
    rng = np.random.default_rng(1)
    phrases = [rng.integers(1, VOCAB, size=rng.integers(3, 7)).tolist() for _ in range(HOT_WORDS - 5)]
    tokens = ctc.ctc_greedy_search(log_probs).tokens
    return phrases + [list(tokens[i:i + 3]) for i in range(0, 50, 10)]


def warm_up(ctc, lp: np.ndarray, **options) -> None:
    """One untimed call on a few frames: a Numba backend compiles (or loads its disk cache) on its
    first call, which is not what the benchmark measures (see ``ctc_nb``'s docstring)."""
    ctc.ctc_prefix_beam_search(lp[:50], **options)


@pytest.fixture(scope="module")
def decoder():
    """pyctcdecode's decoder over LABELS (no LM), or None where it is not installed."""
    try:
        import pyctcdecode
    except ImportError:
        return None
    return pyctcdecode.build_ctcdecoder(LABELS)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("beam,seconds", CASES)
def test_vasr(benchmark, decoder, backend, beam, seconds):
    ctc = dispatch.load("ctc", backend)
    lp = peaky_log_probs(seconds)
    label(benchmark, group=f"ctc beam {beam}, {seconds:g} s", impl=f"vasr:{backend}", unit="ms/s",
          per=seconds)
    warm_up(ctc, lp, beam=beam, prune_logp=PRUNE_LOGP, symbols=LABELS)
    hyps = benchmark(ctc.ctc_prefix_beam_search, lp, beam=beam, prune_logp=PRUNE_LOGP, symbols=LABELS)
    if decoder is not None:
        theirs = decoder.decode_beams(lp, beam_width=beam)[0][0]
        benchmark.extra_info["same_best_text"] = hyps[0].text == theirs


@pytest.mark.parametrize("beam,seconds", CASES)
def test_pyctcdecode(benchmark, decoder, beam, seconds):
    pytest.importorskip("pyctcdecode")
    lp = peaky_log_probs(seconds)
    label(benchmark, group=f"ctc beam {beam}, {seconds:g} s", impl="peer:pyctcdecode", unit="ms/s",
          per=seconds)
    benchmark(decoder.decode_beams, lp, beam_width=beam)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("with_graph", [True, False], ids=["graph", "no-graph"])
def test_vasr_context_graph(benchmark, backend, with_graph):
    """The same search with and without the graph, in one group: the ratio is the graph's overhead."""
    ctc = dispatch.load("ctc", backend)
    lp = peaky_log_probs(10.0)
    graph = ctc.ContextGraph(hot_word_phrases(lp, ctc)) if with_graph else None
    impl = f"vasr:{backend}" if with_graph else f"vasr:{backend} without graph"
    label(benchmark, group="ctc beam 8 + context graph, 10 s", impl=impl, unit="ms/s", per=10.0)
    warm_up(ctc, lp, beam=8, prune_logp=PRUNE_LOGP, context=graph)
    benchmark(ctc.ctc_prefix_beam_search, lp, beam=8, prune_logp=PRUNE_LOGP, context=graph)


def test_pyctcdecode_hotwords(benchmark, decoder):
    pytest.importorskip("pyctcdecode")
    lp = peaky_log_probs(10.0)
    ctc = dispatch.load("ctc", "python")
    words = ["".join(LABELS[t] for t in phrase) for phrase in hot_word_phrases(lp, ctc)]
    label(benchmark, group="ctc beam 8 + context graph, 10 s", impl="peer:pyctcdecode", unit="ms/s", per=10.0)
    benchmark(decoder.decode_beams, lp, beam_width=8, hotwords=words)


@pytest.mark.parametrize("impl", [*(f"vasr:{b}" for b in BACKENDS), "peer:torch"])
@pytest.mark.parametrize("seconds", [10.0] + ([] if QUICK else [60.0]))
def test_ctc_log_likelihood(benchmark, impl, seconds):
    """log P(tokens | audio) of one N-best hypothesis, as hot-word rescoring needs it per candidate."""
    lp = peaky_log_probs(seconds)
    tokens = np.random.default_rng(2).integers(1, VOCAB, size=int(seconds * TOKENS_PER_SECOND))
    label(benchmark, group=f"ctc log-likelihood, {tokens.size} tokens, {seconds:g} s", impl=impl,
          unit="ms/s", per=seconds)
    if impl == "peer:torch":
        torch = pytest.importorskip("torch")
        args = (torch.from_numpy(lp).unsqueeze(1), torch.from_numpy(tokens), (lp.shape[0],), (tokens.size,))
        score = -benchmark(lambda: torch.nn.functional.ctc_loss(*args, reduction="sum").item())
    else:
        ctc = dispatch.load("ctc", impl.split(":")[1])
        ctc.ctc_log_likelihood(lp[:tokens.size], tokens[:tokens.size // 2])  # compile / load a JIT kernel
        score = benchmark(ctc.ctc_log_likelihood, lp, tokens)
    assert np.isfinite(score)
