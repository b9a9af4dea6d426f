"""CTC greedy / prefix beam search, the hot-word context graph and the word-LM hook, on every backend."""
from __future__ import annotations

import inspect
import itertools
import math

import numpy as np
import pytest

from vasr.kernels import dispatch
from vasr.kernels import WordLM

SPACE = "\u2581"


@pytest.fixture(params=dispatch.available("ctc"))
def ctc(request):
    return dispatch.load("ctc", request.param)


@pytest.fixture(scope="module")
def ref():
    return dispatch.load("ctc", "python")


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return (x - np.log(np.exp(x).sum(axis=1, keepdims=True))).astype(np.float32)


def from_probs(rows: list[dict[int, float]], V: int, floor: float = 1e-6) -> np.ndarray:
    """(T, V) log-probs from sparse per-frame probabilities (the rest share what is left)."""
    out = np.empty((len(rows), V))
    for t, row in enumerate(rows):
        rest = (1.0 - sum(row.values())) / (V - len(row))
        out[t] = [row.get(v, max(rest, floor)) for v in range(V)]
    return log_softmax(np.log(out))


def peaky(rng: np.random.Generator, T: int, V: int) -> np.ndarray:
    """Mostly-blank frames, peaked tokens, some frames with two plausible tokens."""
    x = rng.normal(0.0, 1.0, size=(T, V))
    for t in range(T):
        if rng.random() < 0.5:
            x[t, 0] += 6.0
        else:
            x[t, rng.integers(1, V)] += 5.0
            if rng.random() < 0.3:
                x[t, rng.integers(0, V)] += 4.5
    return log_softmax(x)


def brute_force(lp: np.ndarray, blank: int = 0) -> dict[tuple, tuple[float, tuple]]:
    """Every collapsed token sequence -> (log-sum over its alignments, frames of its best alignment)."""
    T, V = lp.shape
    out: dict[tuple, tuple[float, float, tuple]] = {}
    for path in itertools.product(range(V), repeat=T):
        score = sum(float(lp[t, v]) for t, v in enumerate(path))
        tokens, frames = [], []
        for t, v in enumerate(path):
            if v != blank and (t == 0 or path[t - 1] != v):
                tokens.append(v), frames.append(t)
        total, best, best_frames = out.get(tuple(tokens), (-math.inf, -math.inf, ()))
        out[tuple(tokens)] = (np.logaddexp(total, score), *((score, tuple(frames)) if score > best
                                                             else (best, best_frames)))
    return {k: (total, frames) for k, (total, _, frames) in out.items()}


def test_backends_export_the_reference_api(ctc, ref):
    assert sorted(ctc.__all__) == sorted(ref.__all__)
    for name in ref.__all__:
        ours, theirs = getattr(ctc, name), getattr(ref, name)
        assert ours.__doc__ == theirs.__doc__, name
    assert (list(inspect.signature(ctc.ctc_prefix_beam_search).parameters)
            == list(inspect.signature(ref.ctc_prefix_beam_search).parameters))
    # the streaming search takes every keyword of the one-shot search, with the same defaults
    ours, theirs = inspect.signature(ctc.PrefixBeamSearch), inspect.signature(ref.PrefixBeamSearch)
    assert [(p.name, p.default) for p in ours.parameters.values()] == \
        [(p.name, p.default) for p in theirs.parameters.values()] == \
        [(p.name, p.default) for p in list(inspect.signature(ref.ctc_prefix_beam_search).parameters.values())[1:]]
    for method in ("accept", "best", "finish", "num_frames"):
        assert getattr(ctc.PrefixBeamSearch, method).__doc__ == getattr(ref.PrefixBeamSearch, method).__doc__, method


def test_tokens_to_text(ctc):
    symbols = ["<blk>", f"{SPACE}xin", f"{SPACE}chào", "a", SPACE]
    assert ctc.tokens_to_text([1, 2, 3], symbols) == "xin chàoa"
    assert ctc.tokens_to_text([4, 3, 3, 4, 4, 3], symbols) == "aa  a"
    assert ctc.tokens_to_text([4, 1, 3, 4], symbols) == "xina "  # only the leading space goes, as in sherpa-onnx
    assert ctc.tokens_to_text([], symbols) == ""


def test_greedy_concrete(ctc):
    V = 3
    lp = from_probs([{0: .8}, {1: .7}, {1: .6}, {0: .9}, {1: .5}, {2: .9}, {2: .8}], V)
    hyp = ctc.ctc_greedy_search(lp, symbols=["<blk>", "x", "y"])
    assert hyp.tokens == (1, 1, 2) and hyp.frames == (1, 4, 5) and hyp.text == "xxy"
    assert hyp.acoustic == pytest.approx(float(lp.max(axis=1).astype(np.float64).sum()), abs=1e-9)
    assert hyp.score == hyp.acoustic and hyp.context == 0.0 and hyp.lm == 0.0
    assert ctc.ctc_greedy_search(np.zeros((0, 4), np.float32)).tokens == ()


def test_prefix_sums_match_brute_force(ctc):
    """Exact search (no pruning, beam wider than the number of prefixes) == enumeration of V^T paths;
    frames are those of each prefix's best alignment."""
    rng = np.random.default_rng(7)
    for _ in range(120):
        T, V = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        lp = log_softmax(rng.normal(0.0, 2.0, size=(T, V)))
        expected = brute_force(lp)
        hyps = ctc.ctc_prefix_beam_search(lp, beam=len(expected) + 2)
        assert {h.tokens for h in hyps} == set(expected)
        for h in hyps:
            assert h.acoustic == pytest.approx(expected[h.tokens][0], abs=1e-5)
            assert h.frames == expected[h.tokens][1]
            assert h.score == h.acoustic
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_empty_input_gives_one_empty_hypothesis(ctc):
    hyps = ctc.ctc_prefix_beam_search(np.zeros((0, 5), np.float32), symbols=list("_abcd"))
    assert hyps == [ctc.Hypothesis((), (), 0.0, 0.0, 0.0, 0.0, "")]


def test_greedy_equals_beam_one_on_peaky_input(ctc):
    rng = np.random.default_rng(3)
    for _ in range(20):
        lp = peaky(rng, 60, 12)
        greedy = ctc.ctc_greedy_search(lp)
        (best,) = ctc.ctc_prefix_beam_search(lp, beam=1)
        assert best.tokens == greedy.tokens and best.frames == greedy.frames
        assert best.acoustic >= greedy.acoustic  # a log-sum over alignments >= its best path


@pytest.mark.parametrize("pruning", [{}, {"top_k": 3}, {"prune_logp": -4.0},
                                     {"top_k": 4, "prune_logp": -3.0}])
@pytest.mark.parametrize("with_context", [False, True])
def test_backend_matches_reference(ctc, ref, pruning, with_context):
    rng = np.random.default_rng(11)
    for _ in range(6):
        lp = peaky(rng, 50, 10)
        context = ref.ContextGraph([[1, 2], [2, 3, 4], [5], [1, 2, 6, 7]], boosts=[1.0, 2.0, 0.5, 1.5]) \
            if with_context else None
        ours = ctc.ctc_prefix_beam_search(lp, beam=6, context=context, **pruning)
        theirs = ref.ctc_prefix_beam_search(lp, beam=6, context=context, **pruning)
        assert [(h.tokens, h.frames) for h in ours] == [(h.tokens, h.frames) for h in theirs]
        for a, b in zip(ours, theirs):
            for field in ("score", "acoustic", "context", "lm"):
                assert getattr(a, field) == pytest.approx(getattr(b, field), abs=1e-4)
        assert all(list(h.frames) == sorted(set(h.frames)) for h in ours)


def test_nbest_and_pruned_candidates(ctc):
    rng = np.random.default_rng(5)
    lp = peaky(rng, 40, 10)
    assert len(ctc.ctc_prefix_beam_search(lp, beam=5, nbest=2)) == 2
    assert len(ctc.ctc_prefix_beam_search(lp, beam=5)) == 5
    # with only the argmax tried per frame the search is the greedy one
    only_best = ctc.ctc_prefix_beam_search(lp, beam=4, prune_logp=0.0)
    assert only_best[0].tokens == ctc.ctc_greedy_search(lp).tokens
    assert len(only_best) == 1


def test_best_text_equals_pyctcdecode_without_pruning(ctc):
    """pyctcdecode keeps "ends in blank" and "ends in a token" as separate beams, so its n-best lists
    differ from ours; on peaky input with pruning off both find the same best text."""
    pyctcdecode = pytest.importorskip("pyctcdecode")
    labels = ["", *"abcdefghi"]
    decoder = pyctcdecode.build_ctcdecoder(labels)
    rng = np.random.default_rng(21)
    for _ in range(8):
        lp = peaky(rng, 60, len(labels))
        theirs = decoder.decode_beams(lp, beam_width=16, token_min_logp=-1e9, beam_prune_logp=-1e9,
                                      prune_history=False)[0][0]
        ours = ctc.ctc_prefix_beam_search(lp, beam=16, symbols=["<blk>", *labels[1:]])[0]
        assert ours.text == theirs


# hot words: "a b" is acoustically better than "c b" by ln(0.55 / 0.449) ~ 0.2 nats
HOT_SYMBOLS = ["<blk>", "a", "b", "c", "d", "e"]
A, B, C, D, E = 1, 2, 3, 4, 5


@pytest.fixture
def ab_or_cb():
    return from_probs([{0: .999}, {A: .55, C: .449}, {0: .999}, {B: .999}, {0: .999}], len(HOT_SYMBOLS))


def test_hot_word_changes_the_winner(ctc, ab_or_cb):
    plain = ctc.ctc_prefix_beam_search(ab_or_cb, symbols=HOT_SYMBOLS)
    assert plain[0].text == "ab" and plain[0].context == 0.0 and plain[0].score == plain[0].acoustic
    boosted = ctc.ctc_prefix_beam_search(ab_or_cb, context=ctc.ContextGraph([[C, B]]), symbols=HOT_SYMBOLS)
    assert boosted[0].text == "cb"
    assert boosted[0].context == pytest.approx(3.0)  # 2 tokens x default boost 1.5, kept at the end
    assert boosted[0].score == pytest.approx(boosted[0].acoustic + 3.0)
    cb = next(h for h in plain if h.tokens == (C, B))
    assert boosted[0].acoustic == pytest.approx(cb.acoustic, abs=1e-3)  # the beams pruned differently
    weak = ctc.ctc_prefix_beam_search(ab_or_cb, context=ctc.ContextGraph([[C, B]], boosts=[0.1]))
    assert weak[0].tokens == (A, B)


def test_unrelated_hot_word_changes_nothing(ctc, ab_or_cb):
    # d and e (p = 2e-4) are never tried under pyctcdecode-like pruning, so the search is the same
    plain = ctc.ctc_prefix_beam_search(ab_or_cb, prune_logp=-5.0)[0]
    unrelated = ctc.ContextGraph([[E, E, D], [D]])
    other = ctc.ctc_prefix_beam_search(ab_or_cb, prune_logp=-5.0, context=unrelated)[0]
    assert (other.tokens, other.frames, other.acoustic, other.context) == \
        (plain.tokens, plain.frames, plain.acoustic, 0.0)
    assert other.score == plain.score


def test_abandoned_partial_match_leaves_no_bonus(ctc, ab_or_cb):
    """(c, b, d) matches "cb" only partly: its credit counts while searching, finalize takes it back."""
    hyps = ctc.ctc_prefix_beam_search(ab_or_cb, context=ctc.ContextGraph([[C, B, D]]))
    assert hyps[0].tokens == (A, B)
    assert (C, B) in [h.tokens for h in hyps]
    for h in hyps:
        if h.tokens == (C, B, D):  # the one hypothesis that completes the phrase keeps 3 x 1.5
            assert h.context == 4.5 and h.score == h.acoustic + 4.5
        else:
            assert h.context == 0.0 and h.score == h.acoustic
    assert (C, B, D) in [h.tokens for h in hyps]


def node_of(graph, tokens) -> int:
    state = graph.root
    for tok in tokens:
        state = graph.forward(state, tok)[1]
    return state


def test_context_graph_fail_links_on_overlapping_phrases(ctc):
    graph = ctc.ContextGraph([[1, 2, 3], [2, 3, 4]], default_boost=1.0)
    assert graph.num_nodes == 7
    assert graph.fail[node_of(graph, [1, 2])] == node_of(graph, [2])
    assert graph.fail[node_of(graph, [1, 2, 3])] == node_of(graph, [2, 3])
    assert graph.output[node_of(graph, [1, 2, 3])] == -1
    assert all(graph.fail[n] < n for n in range(1, graph.num_nodes))
    state, bonuses = graph.root, []
    for tok in [1, 2, 3, 4]:
        bonus, state = graph.forward(state, tok)
        bonuses.append(bonus)
    # 1, 2: partial credit; 3 completes [1,2,3] (+3 kept); 4 jumps via the fail link to [2,3,4]
    assert bonuses == pytest.approx([1.0, 1.0, 4.0, 3.0])
    assert state == node_of(graph, [2, 3, 4])
    assert graph.finalize(state) == (pytest.approx(-3.0), graph.root)  # 9 - 3 = both phrases, 3 each
    state, total = graph.root, 0.0
    for tok in [1, 2, 5]:
        bonus, state = graph.forward(state, tok)
        total += bonus
    assert total == pytest.approx(0.0) and state == graph.root  # abandoned: credit taken back


def test_context_graph_output_links_and_shared_prefix(ctc):
    graph = ctc.ContextGraph([[2, 3], [1, 2, 3]], default_boost=1.0)
    end = node_of(graph, [1, 2, 3])
    assert graph.output[end] == node_of(graph, [2, 3])
    assert graph.output_score[end] == pytest.approx(5.0)  # [1,2,3] and the [2,3] inside it
    total, state = 0.0, graph.root
    for tok in [1, 2, 3]:
        bonus, state = graph.forward(state, tok)
        total += bonus
    assert total + graph.finalize(state)[0] == pytest.approx(5.0)
    shared = ctc.ContextGraph([[1, 2], [1, 3]], boosts=[1.0, 2.0])
    assert shared.forward(shared.root, 1)[0] == pytest.approx(2.0)  # the larger boost of the two
    assert shared.boost[node_of(shared, [1, 2])] == pytest.approx(1.0)


class ToyLM(WordLM):
    """Rewards the word (▁, c, b): ln P = 0 for it, -2 for any other word; -0.5 at the end."""

    TARGET = (1, 4, 3)

    def __init__(self):
        self.words = set()

    def initial_state(self):
        return ()

    def score(self, state, word):
        assert word and 1 not in word[1:], word  # a word never spans a boundary token
        self.words.add(word)
        return (0.0 if word == self.TARGET else -2.0), state + (word,)

    def final(self, state):
        return -0.5


@pytest.fixture
def words():
    """'▁ab▁a' slightly better than '▁cb▁a' (ids: ▁ 1, a 2, b 3, c 4)."""
    frames = [{1: .9}, {0: .9}, {2: .55, 4: .40}, {0: .9}, {3: .9}, {0: .9}, {1: .9}, {2: .9}, {0: .9}]
    return from_probs(frames, 5), ["<blk>", SPACE, "a", "b", "c"]


def test_word_lm_changes_the_winner(ctc, words):
    lp, symbols = words
    lm = ToyLM()
    plain = ctc.ctc_prefix_beam_search(lp, symbols=symbols)
    assert plain[0].text == "ab a"
    scored = ctc.ctc_prefix_beam_search(lp, lm=lm, lm_weight=1.0, word_bonus=0.25, word_boundary=[1],
                                        symbols=symbols)
    best = scored[0]
    assert best.text == "cb a"
    # words (▁,c,b) = 0 and (▁,a) = -2, each + 0.25; the end -0.5
    assert best.lm == pytest.approx(0.0 + 0.25 - 2.0 + 0.25 - 0.5)
    assert best.score == pytest.approx(best.acoustic + best.lm)
    assert {(1, 4, 3), (1, 2, 3), (1, 2)} <= lm.words
    again = ctc.ctc_prefix_beam_search(lp, symbols=symbols)
    assert again == plain  # lm=None: identical results, no state left behind


# the Numba backend: nothing compiled at import, the LM case falls through to the reference

@pytest.fixture
def numba_ctc():
    if "numba" not in dispatch.available("ctc"):
        pytest.skip("numba is not installed")
    return dispatch.load("ctc", "numba")


def test_numba_import_compiles_nothing(numba_ctc):
    """A fresh process that imports the module has no compiled signature: every kernel compiles (or
    loads from the disk cache) on its first call."""
    import ast
    import subprocess
    import sys

    code = ("import numba, vasr.kernels.ctc_nb as m\n"
            "ds = {n: f for n, f in vars(m).items() if isinstance(f, numba.core.registry.CPUDispatcher)}\n"
            "assert {'_search', '_forward', '_viterbi'} <= set(ds), sorted(ds)\n"
            "print({n: list(d.signatures) for n, d in ds.items()})")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    signatures = ast.literal_eval(out.stdout)  # {name: []}
    assert signatures and all(s == [] for s in signatures.values()), signatures


def test_numba_word_lm_gives_the_reference_result(numba_ctc, ref, words):
    lp, symbols = words
    options = dict(lm_weight=1.0, word_bonus=0.25, word_boundary=[1], symbols=symbols)
    ours = numba_ctc.ctc_prefix_beam_search(lp, lm=ToyLM(), **options)
    assert ours == ref.ctc_prefix_beam_search(lp, lm=ToyLM(), **options)
    assert ours[0].text == "cb a"
    rng = np.random.default_rng(12)
    lp = peaky(rng, 80, 12)
    options = dict(beam=5, lm_weight=0.7, word_bonus=0.1, word_boundary=[1, 2, 5], top_k=6,
                   context=ref.ContextGraph([[1, 4, 3], [5, 6]]))
    search, theirs = numba_ctc.PrefixBeamSearch(lm=ToyLM(), **options), ref.PrefixBeamSearch(lm=ToyLM(), **options)
    for a, b in [(0, 7), (7, 7), (7, 50), (50, 80)]:
        search.accept(lp[a:b])
        theirs.accept(lp[a:b])
        assert search.num_frames == theirs.num_frames == b
        assert search.best() == theirs.best()
    assert search.finish() == theirs.finish()


def test_numba_chunk_calls_and_growth_change_nothing(numba_ctc, ref, monkeypatch):
    """The search runs _search on a few frames at a time, reserving trie and chain rows before each
    call; tiny reserves (a call per 2 frames, many regrowths) give the same result."""
    rng = np.random.default_rng(13)
    lp = peaky(rng, 120, 16)
    context = ref.ContextGraph([[1, 2], [3, 4, 5]])
    whole = numba_ctc.ctc_prefix_beam_search(lp, beam=8, top_k=6, context=context)
    monkeypatch.setattr(numba_ctc, "_RESERVE_ROWS", 16)
    monkeypatch.setattr(numba_ctc, "_TRIE_CAPACITY", 2)
    monkeypatch.setattr(numba_ctc, "_CHAIN_CAPACITY", 1)
    assert numba_ctc.ctc_prefix_beam_search(lp, beam=8, top_k=6, context=context) == whole
    theirs = ref.ctc_prefix_beam_search(lp, beam=8, top_k=6, context=context)
    assert [(h.tokens, h.frames) for h in whole] == [(h.tokens, h.frames) for h in theirs]
    for a, b in zip(whole, theirs):
        assert (a.score, a.acoustic, a.context) == pytest.approx((b.score, b.acoustic, b.context), abs=1e-9)


def test_validation_errors(ctc):
    lp = np.log(np.full((4, 3), 1 / 3, np.float32))
    with pytest.raises(ValueError, match="float32"):
        ctc.ctc_prefix_beam_search(lp.astype(np.float64))
    with pytest.raises(ValueError, match="2-D"):
        ctc.ctc_prefix_beam_search(lp[0])
    with pytest.raises(ValueError, match="blank"):
        ctc.ctc_prefix_beam_search(lp, blank=3)
    with pytest.raises(ValueError, match="beam"):
        ctc.ctc_prefix_beam_search(lp, beam=0)
    with pytest.raises(ValueError, match="nbest"):
        ctc.ctc_prefix_beam_search(lp, beam=2, nbest=3)
    with pytest.raises(ValueError, match="top_k"):
        ctc.ctc_prefix_beam_search(lp, top_k=-1)
    with pytest.raises(ValueError, match="symbols"):
        ctc.ctc_greedy_search(lp, symbols=["a"])
    with pytest.raises(ValueError, match="word_boundary"):
        ctc.ctc_prefix_beam_search(lp, lm=ToyLM())
    with pytest.raises(ValueError, match="token id 7"):
        ctc.ctc_prefix_beam_search(lp, context=ctc.ContextGraph([[1, 7]]))
    with pytest.raises(ValueError, match="phrase 1 is empty"):
        ctc.ContextGraph([[1, 2], []])
    with pytest.raises(ValueError, match="phrase 0 has token id -1"):
        ctc.ContextGraph([[-1]])
    with pytest.raises(ValueError, match="phrase 2 has token id 9"):
        ctc.ContextGraph([[1], [2], [3, 9]], vocab_size=9)
    with pytest.raises(ValueError, match="2 boosts for 1 phrases"):
        ctc.ContextGraph([[1]], boosts=[1.0, 2.0])


def test_log_likelihood_matches_brute_force(ctc):
    """The forward algorithm == the log-sum over all V^T paths of each token sequence: 1e-9 against
    the float32 input the kernel sees, 1e-5 against the float64 log-softmax it was rounded from."""
    assert (list(inspect.signature(ctc.ctc_log_likelihood).parameters)
            == ["log_probs", "tokens", "blank"])
    rng = np.random.default_rng(17)
    for _ in range(60):
        T, V = int(rng.integers(1, 6)), int(rng.integers(2, 4))
        x = rng.normal(0.0, 2.0, size=(T, V))
        lp64 = x - np.logaddexp.reduce(x, axis=1, keepdims=True)
        lp = lp64.astype(np.float32)
        exact, rounded = brute_force(lp), brute_force(lp64)
        for tokens, (total, _) in exact.items():
            got = ctc.ctc_log_likelihood(lp, tokens)
            assert got == pytest.approx(total, abs=1e-9)
            assert got == pytest.approx(rounded[tokens][0], abs=1e-5)
        # sequences no path collapses to: one token too many, or a repeat with no room for a blank
        assert ctc.ctc_log_likelihood(lp, [1] * (T + 1)) == -math.inf
        assert ctc.ctc_log_likelihood(lp, [V - 1] * ((T + 1) // 2 + 1)) == -math.inf


def test_log_likelihood_equals_torch_ctc_loss(ctc):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(19)
    T, V, L = 50, 20, 10
    for k in range(4):
        lp = log_softmax(rng.normal(0.0, 2.0, size=(T, V)))
        tokens = rng.integers(1, V, size=L)
        if k == 0:
            tokens[3:6] = tokens[2]  # runs of a repeated token
        loss = torch.nn.functional.ctc_loss(torch.from_numpy(lp.astype(np.float64)),
                                            torch.from_numpy(tokens.astype(np.int64)), (T,), (L,),
                                            blank=0, reduction="sum")
        assert ctc.ctc_log_likelihood(lp, tokens) == pytest.approx(-loss.item(), abs=1e-9)
        assert ctc.ctc_log_likelihood(lp, tuple(tokens.tolist())) == ctc.ctc_log_likelihood(lp, tokens)


def test_log_likelihood_equals_exact_beam_search_acoustic(ctc):
    """With a beam wider than the number of prefixes the search is exact, so every hypothesis's
    ``acoustic`` is its token sequence's log-likelihood."""
    rng = np.random.default_rng(23)
    for _ in range(3):
        lp = log_softmax(rng.normal(0.0, 1.5, size=(6, 4)))
        hyps = ctc.ctc_prefix_beam_search(lp, beam=1100)  # 1093 sequences of <= 6 tokens from 3
        assert len(hyps) > 100
        for h in hyps:
            assert ctc.ctc_log_likelihood(lp, h.tokens) == pytest.approx(h.acoustic, abs=1e-9)


def test_log_likelihood_concrete_values(ctc):
    """Uniform frames over 3 tokens: every path has probability 3^-T, so the likelihood counts paths."""
    def uniform(T):
        return np.log(np.full((T, 3), 1 / 3, np.float32))

    third = float(np.log(np.float32(1 / 3)))
    assert ctc.ctc_log_likelihood(uniform(0), []) == 0.0
    assert ctc.ctc_log_likelihood(uniform(0), [1]) == -math.inf
    assert ctc.ctc_log_likelihood(uniform(4), []) == pytest.approx(4 * third, abs=1e-12)  # blanks only
    blank_only = from_probs([{0: .5}, {0: .25}, {0: .9}], 3)
    assert ctc.ctc_log_likelihood(blank_only, ()) == pytest.approx(float(blank_only[:, 0].astype(np.float64).sum()),
                                                                   abs=1e-12)
    # "ab" in 3 frames: aab abb _ab a_b ab_; "aa" needs a blank between: a_a only, then 5 ways in 4
    assert ctc.ctc_log_likelihood(uniform(3), [1, 2]) == pytest.approx(np.log(5) + 3 * third, abs=1e-9)
    assert ctc.ctc_log_likelihood(uniform(2), [1, 1]) == -math.inf
    assert ctc.ctc_log_likelihood(uniform(3), [1, 1]) == pytest.approx(3 * third, abs=1e-9)
    assert ctc.ctc_log_likelihood(uniform(4), [1, 1]) == pytest.approx(np.log(5) + 4 * third, abs=1e-9)
    assert ctc.ctc_log_likelihood(uniform(4), [2, 2, 2]) == -math.inf  # needs 5 frames
    assert ctc.ctc_log_likelihood(uniform(5), [2, 2, 2]) == pytest.approx(5 * third, abs=1e-9)
    assert ctc.ctc_log_likelihood(uniform(2), [1, 2, 1]) == -math.inf
    # another blank id: token 0 is an ordinary token
    assert ctc.ctc_log_likelihood(uniform(3), [0, 1], blank=2) == pytest.approx(np.log(5) + 3 * third, abs=1e-9)


def test_log_likelihood_validation_errors(ctc):
    lp = np.log(np.full((4, 3), 1 / 3, np.float32))
    with pytest.raises(ValueError, match=r"tokens\[1\] = 0 is the blank"):
        ctc.ctc_log_likelihood(lp, [1, 0, 2])
    with pytest.raises(ValueError, match=r"tokens\[2\] = 3 .*out of range \[0, 3\)"):
        ctc.ctc_log_likelihood(lp, [1, 2, 3])
    with pytest.raises(ValueError, match=r"tokens\[0\] = -1"):
        ctc.ctc_log_likelihood(lp, np.array([-1, 1]))
    with pytest.raises(ValueError, match=r"tokens\[0\] = 2 is the blank \(2\)"):
        ctc.ctc_log_likelihood(lp, [2], blank=2)
    with pytest.raises(ValueError, match="integer"):
        ctc.ctc_log_likelihood(lp, [1.0])
    with pytest.raises(ValueError, match="1-D"):
        ctc.ctc_log_likelihood(lp, [[1, 2]])
    with pytest.raises(ValueError, match="float32"):
        ctc.ctc_log_likelihood(lp.astype(np.float64), [1])
    with pytest.raises(ValueError, match="blank id 3"):
        ctc.ctc_log_likelihood(lp, [1], blank=3)


def test_forced_align_matches_the_best_brute_force_path(ctc):
    """Viterbi frames == the first frames of the single most likely path of each token sequence."""
    rng = np.random.default_rng(23)
    for _ in range(40):
        T, V = int(rng.integers(1, 6)), int(rng.integers(2, 4))
        lp = log_softmax(rng.normal(0.0, 2.0, size=(T, V)))
        for tokens, (_, frames) in brute_force(lp).items():
            assert ctc.ctc_forced_align(lp, tokens) == frames
        with pytest.raises(ValueError, match="cannot be aligned"):
            ctc.ctc_forced_align(lp, [1] * (T + 1))


def test_forced_align_of_the_greedy_tokens_is_the_greedy_path(ctc):
    rng = np.random.default_rng(5)
    lp = peaky(rng, 200, 30)
    greedy = ctc.ctc_greedy_search(lp)
    assert len(greedy.tokens) > 20
    assert ctc.ctc_forced_align(lp, greedy.tokens) == greedy.frames
    assert ctc.ctc_forced_align(lp, []) == ()
    # a token sequence the audio does not favour still gets an increasing, complete alignment
    other = [int(t) for t in rng.integers(1, 30, size=25)]
    frames = ctc.ctc_forced_align(lp, other)
    assert len(frames) == 25 and all(a < b for a, b in zip(frames, frames[1:]))


# streaming: PrefixBeamSearch fed chunk by chunk

def chunk_cuts(rng: np.random.Generator, T: int) -> dict[str, list[int]]:
    """Chunk boundaries (0 = c0 <= c1 <= ... = T): 1, 3 and 7 frames, a random partition with some
    empty chunks (repeated cuts), and the whole utterance as one chunk."""
    random_cuts = sorted(rng.integers(0, T + 1, size=12).tolist())
    return {"1": list(range(T + 1)), "3": [*range(0, T, 3), T], "7": [*range(0, T, 7), T],
            "random": [0, *random_cuts, random_cuts[-1], T], "whole": [0, T]}


def stream(ctc, lp: np.ndarray, cuts: list[int], **options):
    """(n-best of finish(), best() after each chunk, frames accepted at each chunk)."""
    search = ctc.PrefixBeamSearch(**options)
    bests, seen = [], []
    for a, b in zip(cuts, cuts[1:]):
        search.accept(lp[a:b])
        assert search.num_frames == b
        bests.append(search.best())
        seen.append(b)
    return search.finish(), bests, seen


def hot_phrases_across(tokens, frames, boundary: int) -> list[list[int]]:
    """Three-token pieces of a transcript whose tokens lie on both sides of a chunk boundary
    (a multiple of ``boundary``)."""
    pieces = []
    for i in range(len(tokens) - 2):
        if frames[i] // boundary != frames[i + 2] // boundary:
            pieces.append(list(tokens[i:i + 3]))
    return pieces


STREAM_SEEDS = [(0, 50, 20), (1, 80, 33), (2, 120, 40), (3, 97, 24)]  # (seed, T, V)


@pytest.mark.parametrize("options", [{}, {"top_k": 5}, {"prune_logp": -6.0}, {"top_k": 8, "prune_logp": -4.0},
                                     {"nbest": 3}], ids=["exact", "top_k", "prune", "both", "nbest"])
def test_streaming_equals_the_whole_search(ctc, options):
    """finish() is bit-identical to the one-shot search for every chunking; best() after n frames is
    the one-shot search's best of those n frames (no hot words, no LM: nothing to correct at the end)."""
    for seed, T, V in STREAM_SEEDS:
        rng = np.random.default_rng(seed)
        lp = peaky(rng, T, V)
        symbols = ["<blk>", *(chr(0x61 + v) for v in range(V - 1))]
        whole = ctc.ctc_prefix_beam_search(lp, beam=6, symbols=symbols, **options)
        assert len(whole[0].tokens) > 10
        for name, cuts in chunk_cuts(rng, T).items():
            finished, bests, seen = stream(ctc, lp, cuts, beam=6, symbols=symbols, **options)
            assert finished == whole, (seed, name)  # tokens, frames, text, every score: exactly
            assert bests[-1].tokens == whole[0].tokens and bests[-1].text == whole[0].text
            for best, n in list(zip(bests, seen))[::max(1, len(seen) // 6)]:  # the one-shot search is O(n)
                assert best == ctc.ctc_prefix_beam_search(lp[:n], beam=6, symbols=symbols, **options)[0]


def test_streaming_keeps_hot_word_states_across_chunks(ctc):
    for seed, T, V in STREAM_SEEDS:
        rng = np.random.default_rng(seed)
        lp = peaky(rng, T, V)
        greedy = ctc.ctc_greedy_search(lp)
        across = hot_phrases_across(greedy.tokens, greedy.frames, 7)
        assert len(across) >= 2
        phrases = [across[0], across[-1], [1, 2, 3, 4], [int(greedy.tokens[0])]]
        context = ctc.ContextGraph(phrases, boosts=[1.0, 2.0, 1.5, 0.5])
        whole = ctc.ctc_prefix_beam_search(lp, beam=6, context=context)
        best = whole[0].tokens  # completes the phrases that span a 7-frame chunk boundary
        for phrase in (across[0], across[-1]):
            assert any(best[i:i + 3] == tuple(phrase) for i in range(len(best) - 2)), phrase
        assert whole[0].context >= 3 * 1.0 + 3 * 2.0
        for name, cuts in chunk_cuts(rng, T).items():
            finished, bests, _ = stream(ctc, lp, cuts, beam=6, context=context)
            assert finished == whole, (seed, name)
            for best in bests:  # partial: the bonus so far, an unfinished match's credit included
                assert best.score == best.acoustic + best.context and best.context >= 0.0
            assert bests[-1].context >= whole[0].context


def test_streaming_keeps_lm_states_across_chunks(ctc):
    for seed, T, V in STREAM_SEEDS:
        rng = np.random.default_rng(seed)
        lp = peaky(rng, T, V)
        options = dict(beam=5, lm=ToyLM(), lm_weight=0.7, word_bonus=0.1, word_boundary=[1, 2, 5], top_k=6,
                       context=ctc.ContextGraph([[1, 4, 3], [5, 6]]))
        whole = ctc.ctc_prefix_beam_search(lp, **options)
        assert sum(t in (1, 2, 5) for t in whole[0].tokens) >= 2 and whole[0].lm < -2.0
        for name, cuts in chunk_cuts(rng, T).items():
            options["lm"] = ToyLM()
            finished, bests, _ = stream(ctc, lp, cuts, **options)
            assert finished == whole, (seed, name)
            # the partial LM score covers completed words only: not the last one, not the end
            last = bests[-1]
            assert last.score == last.acoustic + last.context + last.lm


def test_streaming_best_is_a_real_prefix_of_the_audio_so_far(ctc):
    """best() after each chunk: increasing frames inside the frames seen, and an acoustic score that
    sums some of the alignments of its tokens: at most their log-likelihood, and on peaky input close."""
    rng = np.random.default_rng(9)
    lp = peaky(rng, 90, 30)
    _, bests, seen = stream(ctc, lp, chunk_cuts(rng, 90)["7"], beam=4, prune_logp=-5.0)
    for best, n in zip(bests, seen):
        assert len(best.frames) == len(best.tokens)
        assert all(a < b for a, b in zip(best.frames, best.frames[1:])) and all(f < n for f in best.frames)
        exact = ctc.ctc_log_likelihood(lp[:n], best.tokens)
        assert exact - 0.25 <= best.acoustic <= exact + 1e-9  # the beam kept most of their probability
    assert len(bests[-1].tokens) > len(bests[3].tokens) > 0


def test_streaming_empty_chunks_and_no_frames(ctc):
    empty = np.zeros((0, 6), np.float32)
    nothing = ctc.Hypothesis((), (), 0.0, 0.0, 0.0, 0.0, "")
    search = ctc.PrefixBeamSearch(beam=3)
    assert search.num_frames == 0 and search.best() == nothing
    assert search.finish() == [nothing]
    search = ctc.PrefixBeamSearch(beam=3, symbols=list("_abcde"))
    search.accept(empty)
    search.accept(empty)
    assert search.best() == nothing and search.finish() == ctc.ctc_prefix_beam_search(empty, symbols=list("_abcde"))
    # empty chunks between real ones change nothing
    lp = peaky(np.random.default_rng(4), 30, 6)
    search = ctc.PrefixBeamSearch(beam=3)
    for a, b in [(0, 0), (0, 10), (10, 10), (10, 10), (10, 30), (30, 30)]:
        search.accept(lp[a:b])
    assert search.num_frames == 30
    assert search.finish() == ctc.ctc_prefix_beam_search(lp, beam=3)


def test_streaming_errors(ctc):
    lp = peaky(np.random.default_rng(6), 20, 5)
    search = ctc.PrefixBeamSearch(beam=4)
    search.accept(lp[:10])
    with pytest.raises(ValueError, match="V = 6 but the search began with V = 5"):
        search.accept(np.zeros((3, 6), np.float32))
    bad = lp[10:].copy()
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"log_probs\[4, 2\] is nan"):
        search.accept(bad)
    bad[4, 2] = np.inf
    with pytest.raises(ValueError, match=r"log_probs\[4, 2\] is inf"):
        search.accept(bad)
    with pytest.raises(ValueError, match="float32"):
        search.accept(lp[10:].astype(np.float64))
    with pytest.raises(ValueError, match="2-D"):
        search.accept(lp[10])
    assert search.num_frames == 10  # a rejected chunk leaves the search as it was
    search.accept(lp[10:])
    assert search.finish() == ctc.ctc_prefix_beam_search(lp, beam=4)
    with pytest.raises(RuntimeError, match=r"accept\(\) after finish\(\): start a new search"):
        search.accept(lp)
    with pytest.raises(RuntimeError, match=r"finish\(\) after finish\(\): start a new search"):
        search.finish()
    # the keywords are checked as the one-shot search checks them: at once, or against the first chunk's V
    with pytest.raises(ValueError, match="beam must be >= 1"):
        ctc.PrefixBeamSearch(beam=0)
    with pytest.raises(ValueError, match=r"nbest must be in \[1, beam=2\]"):
        ctc.PrefixBeamSearch(beam=2, nbest=3)
    with pytest.raises(ValueError, match="word_boundary"):
        ctc.PrefixBeamSearch(lm=ToyLM())
    for options, message in [({"blank": 5}, r"blank id 5 out of range \[0, 5\)"),
                             ({"symbols": list("abc")}, "symbols has 3 entries but log_probs has V = 5"),
                             ({"context": ctc.ContextGraph([[7]])}, "context graph uses token id 7"),
                             ({"lm": ToyLM(), "word_boundary": [0]}, "word_boundary id 0 is the blank")]:
        with pytest.raises(ValueError, match=message):
            ctc.PrefixBeamSearch(**options).accept(lp[:0])
    # the one-shot functions refuse NaN too
    with pytest.raises(ValueError, match=r"log_probs\[4, 2\] is nan"):
        ctc.ctc_prefix_beam_search(np.where(np.arange(100).reshape(20, 5) == 22, np.nan, lp).astype(np.float32))
    with pytest.raises(ValueError, match="is nan"):
        ctc.ctc_greedy_search(np.full((2, 3), np.nan, np.float32))
    assert ctc.ctc_greedy_search(np.array([[0.0, -np.inf]], np.float32)).tokens == ()  # -inf is allowed


# the decoder's stream: Decoder.stream -> DecodeStream

STREAM_WORDS = "xin chào việt nam hà nội"
STREAM_ARPA = """
\\data\\
ngram 1=7
ngram 2=2

\\1-grams:
-1.0\t<s>\t-0.3
-0.7\t</s>
-2.0\t<unk>
-0.8\txin\t-0.2
-0.9\tchào\t-0.2
-1.1\tviệt\t-0.2
-1.1\tnam\t-0.2

\\2-grams:
-0.1\txin chào
-0.2\tviệt nam

\\end\\
"""


def stream_decoder(**settings):
    from vasr.runtime.decode.search import Decoder
    from vasr.runtime.decode.settings import DecodeSettings
    from vasr.text.tokens import CharTokenizer

    tokenizer = CharTokenizer.build([STREAM_WORDS])
    return Decoder(tokenizer.symbols, DecodeSettings(**settings), tokenizer), tokenizer


def spoken(tokenizer, text: str, rng: np.random.Generator) -> np.ndarray:
    """Peaky log-probs that spell ``text`` (a token, one or two frames, then blanks), with noise."""
    V = tokenizer.vocab_size
    rows = []
    for tok in tokenizer.encode(text):
        for _ in range(int(rng.integers(1, 3))):
            rows.append(tok)
        rows += [0] * int(rng.integers(0, 3))
    x = rng.normal(0.0, 1.0, size=(len(rows), V))
    x[np.arange(len(rows)), rows] += 6.0
    return log_softmax(x)


def decode_stream(decoder, lp, cuts, hotwords=None):
    stream = decoder.stream(hotwords)
    partials = []
    for a, b in zip(cuts, cuts[1:]):
        stream.accept(lp[a:b])
        partials.append(stream.partial())
    assert stream.num_frames == lp.shape[0]
    return stream.finish(), partials


def timeless(decoded):
    from dataclasses import replace

    return replace(decoded, second_pass_s=0.0)


@pytest.mark.parametrize("settings", [{"beam": 1}, {"beam": 8}, {"beam": 8, "nbest": 3},
                                      {"beam": 8, "hotwords": (("hà nội", 1.0),)}],
                         ids=["greedy", "beam", "nbest", "hotwords"])
def test_decode_stream_equals_decode(settings):
    decoder, tokenizer = stream_decoder(**settings)
    rng = np.random.default_rng(2)
    lp = spoken(tokenizer, "xin chào hà nội việt nam", rng)
    whole = decoder.decode(lp)
    assert whole.best.text == "xin chào hà nội việt nam"
    assert whole.best.context == (6 * 1.0 if "hotwords" in settings else 0.0)  # h à ▁ n ộ i
    for name, cuts in chunk_cuts(rng, lp.shape[0]).items():
        finished, partials = decode_stream(decoder, lp, cuts)
        assert finished == whole, name
        if settings["beam"] == 1:
            assert partials[-1] == whole.best
        elif "hotwords" not in settings:
            assert partials[-1].tokens == whole.best.tokens
        for partial, n in zip(partials, cuts[1:]):
            assert len(partial.frames) == len(partial.tokens) and all(f < n for f in partial.frames)
    # per-utterance hot words, prepared for the stream as for decode
    if settings["beam"] > 1:
        hot = [("hà nội", 1.5), "việt"]  # "việt" at the default 1.5 nats per token
        finished, _ = decode_stream(decoder, lp, chunk_cuts(rng, lp.shape[0])["3"], hot)
        assert finished == decoder.decode(lp, hot)
        assert finished.best.context == pytest.approx(6 * 1.5 + 4 * 1.5)


def test_decode_stream_with_lm_and_second_pass_equals_decode(tmp_path):
    pytest.importorskip("kenlm")
    pytest.importorskip("threadpoolctl")
    arpa = tmp_path / "lm.arpa"
    arpa.write_text(STREAM_ARPA.lstrip(), encoding="utf-8")
    decoder, tokenizer = stream_decoder(beam=8, nbest=3, lm=str(arpa), lm_weight=0.5, word_bonus=0.2,
                                        hotwords=(("hà nội", 1.5),))
    assert decoder.prepared.second_pass is not None
    rng = np.random.default_rng(8)
    lp = spoken(tokenizer, "xin chào hà nội", rng)
    whole = decoder.decode(lp)
    assert whole.best.text == "xin chào hà nội" and whole.candidates and whole.best.lm != 0.0
    for name, cuts in chunk_cuts(rng, lp.shape[0]).items():
        finished, _ = decode_stream(decoder, lp, cuts)
        assert timeless(finished) == timeless(whole), name


def test_decode_stream_errors():
    decoder, tokenizer = stream_decoder(beam=1)
    lp = spoken(tokenizer, "xin chào", np.random.default_rng(0))
    for beam in (1, 4):
        decoder, _ = stream_decoder(beam=beam)
        stream = decoder.stream()
        with pytest.raises(ValueError, match="symbols has"):
            stream.accept(np.zeros((2, tokenizer.vocab_size + 1), np.float32))
        with pytest.raises(ValueError, match="is nan"):
            stream.accept(np.full((2, tokenizer.vocab_size), np.nan, np.float32))
        assert stream.num_frames == 0
        assert stream.finish().best.tokens == ()  # nothing accepted: the empty utterance
        with pytest.raises(RuntimeError, match=r"accept\(\) after finish\(\)"):
            stream.accept(lp)
        with pytest.raises(RuntimeError, match=r"finish\(\) after finish\(\)"):
            stream.finish()
    # a chunk is copied: the caller may reuse its buffer
    stream, buffer = decoder.stream(), lp.copy()
    stream.accept(buffer)
    buffer[:] = 0.0
    assert stream.finish() == decoder.decode(lp)
