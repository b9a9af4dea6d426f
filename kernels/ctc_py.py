"""CTC decoding: greedy search and prefix beam search with a hot-word context graph and a word-LM hook.

This is the pure-Python reference of ``ctc_cy.pyx``: the compiled search follows it step for step
(same candidate order, same log-add order, same tie-breaks), so both give the same tokens, frames and
scores. Input is the model's output contract: ``log_probs`` float32 (T, V), log-softmax over V tokens
per frame, blank id 0 by default. All scores are natural logs (nats).

The search keeps, per prefix (a token sequence without blanks), the log-probability of the alignments
ending in blank (``pb``) and in a token (``pnb``). Prefixes live in a trie (one node per distinct
sequence), so the hot-word and LM state of a prefix, which depend on its tokens only, are computed
once per node. Beside the sums it tracks the best single alignment (Viterbi) ending in blank and in a
token, whose emission frames become ``Hypothesis.frames``: for each token, the first frame of its run
in the most likely alignment of that prefix among those the beam kept. ``PrefixBeamSearch`` runs
the search chunk by chunk (streaming); ``ctc_prefix_beam_search`` is that with a single chunk.
"""
from __future__ import annotations

import abc
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["WORD_SPACE", "DEFAULT_BOOST", "Hypothesis", "ContextGraph", "WordLM", "ctc_greedy_search",
           "ctc_prefix_beam_search", "PrefixBeamSearch", "ctc_log_likelihood", "ctc_forced_align",
           "tokens_to_text"]

WORD_SPACE = "\u2581"  # "▁": the symbol that stands for a space in tokens.txt
DEFAULT_BOOST = 1.5  # nats of bonus per matched token of a hot word (icefall / sherpa-onnx default)
ROOT = 0  # context-graph state (node id) of "no partial match"; also the trie id of the empty prefix
NEG_INF = -math.inf


@dataclass(frozen=True)
class Hypothesis:
    """One decoded hypothesis; all scores in nats, ``score = acoustic + context + lm``."""

    tokens: tuple[int, ...]  # token ids, repeats collapsed, no blanks
    frames: tuple[int, ...]  # per token: frame index (model frames) of the first frame of its run
    score: float  # total score the n-best list is sorted by
    acoustic: float  # log P(tokens | audio) under CTC: log-sum over alignments (greedy: best path)
    context: float  # hot-word bonus after the end-of-utterance correction
    lm: float  # lm_weight * LM log-prob + word_bonus per word (0 without an LM)
    text: str = ""  # tokens_to_text(tokens, symbols), "" when no symbols were given


def tokens_to_text(tokens: Sequence[int], symbols: Sequence[str]) -> str:
    """Detokenise (DESIGN.md section 2): concatenate symbols, "▁" becomes a space, the leading space is
    stripped. Nothing else is removed, so the text equals sherpa-onnx's for the same tokens."""
    return "".join([symbols[t] for t in tokens]).replace(WORD_SPACE, " ").lstrip(" ")


class ContextGraph:
    """Aho-Corasick automaton over token-id phrases that rewards hot words during the search.

    Each matched token of a phrase earns ``boost`` nats at once; the credit of a partial match is
    taken back when the match is abandoned (and the partial credit of the fail state re-applied), and
    a completed phrase keeps its bonus through ``output_score``. States are node ids (``ROOT`` = 0),
    numbered breadth-first so that ``fail[n] < n``. Per node (arrays of length ``num_nodes``):
    ``token`` (-1 at the root), ``boost`` (bonus of this token: the largest boost of the phrases
    sharing it), ``node_score`` (boosts summed from the root), ``output_score`` (bonus of every phrase
    completed on reaching the node: its own ``node_score`` if it ends a phrase plus that of its output
    link), ``is_end``, ``fail`` and ``output`` (nearest phrase end on the fail chain, -1 if none).
    Children in CSR form sorted by token: ``child_token[child_start[n]:child_start[n + 1]]`` and
    ``child_node``; ``root_next[v]`` is the root's child for token v (0 if none), length
    ``max_token + 1``.
    """

    def __init__(self, phrases: Sequence[Sequence[int]], boosts: Sequence[float] | None = None,
                 default_boost: float = DEFAULT_BOOST, *, vocab_size: int | None = None):
        """phrases: token-id sequences (each non-empty, ids >= 0 and < vocab_size when given);
        boosts: per phrase, the bonus per token in nats (default ``default_boost`` for all)."""
        if boosts is None:
            boosts = [default_boost] * len(phrases)
        if len(boosts) != len(phrases):
            raise ValueError(f"ContextGraph: {len(boosts)} boosts for {len(phrases)} phrases")
        children: list[dict[int, int]] = [{}]
        token, boost, is_end, parent = [-1], [0.0], [False], [-1]
        for p, (phrase, phrase_boost) in enumerate(zip(phrases, boosts)):
            ids = _phrase_ids(p, phrase, vocab_size)
            if not math.isfinite(phrase_boost):
                raise ValueError(f"ContextGraph: phrase {p} has a non-finite boost {phrase_boost!r}")
            node = ROOT
            for tok in ids:
                child = children[node].get(tok)
                if child is None:
                    child = len(token)
                    children[node][tok] = child
                    children.append({})
                    token.append(tok)
                    boost.append(float(phrase_boost))
                    is_end.append(False)
                    parent.append(node)
                else:
                    boost[child] = max(boost[child], float(phrase_boost))
                node = child
            is_end[node] = True
        self._build(children, token, boost, is_end, parent)

    def _build(self, children, token, boost, is_end, parent) -> None:
        order = [ROOT]  # breadth-first: a node's fail target is shallower, hence already done
        for n in order:
            order.extend(sorted(children[n].values(), key=lambda c: token[c]))
        new_id = {old: new for new, old in enumerate(order)}
        n_nodes = len(order)
        self._children = [{tok: new_id[c] for tok, c in sorted(children[old].items())} for old in order]
        self.token = np.array([token[o] for o in order], dtype=np.int32)
        self.boost = np.array([boost[o] for o in order], dtype=np.float64)
        self.is_end = np.array([is_end[o] for o in order], dtype=bool)
        node_score, output_score = [0.0] * n_nodes, [0.0] * n_nodes
        fail, output = [ROOT] * n_nodes, [-1] * n_nodes
        self._fail = fail  # filled in breadth-first order, read by _next as it goes
        for n in range(1, n_nodes):
            up = new_id[parent[order[n]]]
            tok = int(self.token[n])
            node_score[n] = node_score[up] + float(self.boost[n])
            if up != ROOT:
                fail[n] = self._next(fail[up], tok)
            f = fail[n]
            output[n] = f if self.is_end[f] else output[f]
            output_score[n] = ((node_score[n] if self.is_end[n] else 0.0)
                               + (output_score[output[n]] if output[n] >= 0 else 0.0))
        self.node_score = np.array(node_score, dtype=np.float64)
        self.output_score = np.array(output_score, dtype=np.float64)
        self.fail = np.array(fail, dtype=np.int32)
        self.output = np.array(output, dtype=np.int32)
        counts = [len(c) for c in self._children]
        self.child_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        self.child_token = np.array([t for c in self._children for t in c], dtype=np.int32)
        self.child_node = np.array([m for c in self._children for m in c.values()], dtype=np.int32)
        self.root_next = np.zeros(max(self._children[ROOT], default=-1) + 1, dtype=np.int32)
        for tok, child in self._children[ROOT].items():
            self.root_next[tok] = child
        for name in ("token", "boost", "is_end", "node_score", "output_score", "fail", "output",
                     "child_start", "child_token", "child_node", "root_next"):
            getattr(self, name).flags.writeable = False

    @property
    def root(self) -> int:
        return ROOT

    @property
    def num_nodes(self) -> int:
        return len(self._children)

    @property
    def max_token(self) -> int:
        """Largest token id in any phrase (-1 for a graph without phrases)."""
        return int(self.token.max())

    def _next(self, state: int, token: int) -> int:
        while True:
            child = self._children[state].get(token)
            if child is not None:
                return child
            if state == ROOT:
                return ROOT
            state = self._fail[state]

    def forward(self, state: int, token: int) -> tuple[float, int]:
        """Bonus in nats for appending ``token`` in ``state``, and the new state."""
        new = self._next(state, token)
        return float(self.node_score[new] - self.node_score[state] + self.output_score[new]), new

    def finalize(self, state: int) -> tuple[float, int]:
        """End of utterance: take back the credit of an unfinished partial match; back to the root."""
        return -float(self.node_score[state]), ROOT


def _phrase_ids(p: int, phrase: Sequence[int], vocab_size: int | None) -> list[int]:
    if len(phrase) == 0:
        raise ValueError(f"ContextGraph: phrase {p} is empty")
    try:
        ids = [operator.index(t) for t in phrase]
    except TypeError:
        raise ValueError(f"ContextGraph: phrase {p} has a non-integer token id: {list(phrase)!r}") from None
    for t in ids:
        if t < 0 or (vocab_size is not None and t >= vocab_size):
            raise ValueError(f"ContextGraph: phrase {p} has token id {t} out of range "
                             f"[0, {vocab_size if vocab_size is not None else 'inf'})")
    return ids


class WordLM(abc.ABC):
    """A word-level language model consulted at word boundaries. Scores are natural logs (ln).

    A word is the tuple of token ids from a boundary token (inclusive; or the start of the
    hypothesis) up to the next boundary token (exclusive), e.g. ``(▁, x, i, n)`` for characters or
    ``(▁xin,)`` for BPE. The search adds ``lm_weight * score + word_bonus`` per completed word and
    ``lm_weight * final(state)`` at the end. States are opaque and must not be mutated.
    """

    @abc.abstractmethod
    def initial_state(self):
        """State before the first word (e.g. the sentence-start context)."""

    @abc.abstractmethod
    def score(self, state, word: tuple[int, ...]) -> tuple[float, object]:
        """ln P(word | state) and the state after it."""

    @abc.abstractmethod
    def final(self, state) -> float:
        """ln P(end of sentence | state)."""


def ctc_greedy_search(log_probs: np.ndarray, blank: int = 0,
                      symbols: Sequence[str] | None = None) -> Hypothesis:
    """Best-path decoding: argmax per frame, collapse repeats, drop blanks.

    log_probs: float32 (T, V) log-softmax. ``acoustic`` (= ``score``) is the log-probability of the
    single best alignment (sum of per-frame maxima), not the log-sum over alignments of the tokens.
    """
    lp = _check_log_probs(log_probs)
    _check_common(lp.shape[1], blank, symbols)
    if lp.shape[0] == 0:
        return Hypothesis((), (), 0.0, 0.0, 0.0, 0.0, "")
    best = lp.argmax(axis=1)
    acoustic = float(lp[np.arange(lp.shape[0]), best].sum(dtype=np.float64))
    run_starts = np.flatnonzero(np.concatenate([[True], best[1:] != best[:-1]]))
    starts = run_starts[best[run_starts] != blank]
    tokens = tuple(best[starts].tolist())
    text = tokens_to_text(tokens, symbols) if symbols is not None else ""
    return Hypothesis(tokens, tuple(starts.tolist()), acoustic, acoustic, 0.0, 0.0, text)


def ctc_log_likelihood(log_probs: np.ndarray, tokens: Sequence[int], blank: int = 0) -> float:
    """log P(tokens | log_probs) in nats: the log-sum over every CTC alignment of ``tokens`` (the CTC
    forward algorithm), i.e. minus torch's ``ctc_loss`` with ``reduction="sum"``. For a complete
    prefix it equals ``Hypothesis.acoustic`` of an exact prefix beam search.

    log_probs: float32 (T, V) log-softmax; accumulated in float64.
    tokens: L token ids (no blanks; each in [0, V) and != blank). A repeated token needs a blank frame
    between its copies, so ``-inf`` when T < L + number of adjacent repeats. Empty tokens: the sum of
    the blank log-probs (0.0 for T = 0).
    """
    lp, ids = _check_likelihood_args(log_probs, tokens, blank)
    T = lp.shape[0]
    if T < _frames_needed(ids):
        return NEG_INF
    if T == 0:
        return 0.0
    # extended sequence: blank, l1, blank, l2, ..., lL, blank (S = 2L + 1 states)
    ext = np.full(2 * len(ids) + 1, blank, dtype=np.intp)
    ext[1::2] = ids
    emit = lp[:, ext].astype(np.float64)  # (T, S)
    # a state may skip the blank before it only when it is a token that differs from the previous one
    skip = np.zeros(ext.shape[0], dtype=bool)
    skip[3::2] = ids[1:] != ids[:-1]
    alpha = np.full(ext.shape[0], NEG_INF)
    alpha[:2] = emit[0, :2]
    from_one, from_two = np.full_like(alpha, NEG_INF), np.full_like(alpha, NEG_INF)
    for t in range(1, T):
        from_one[1:] = alpha[:-1]
        from_two[2:] = np.where(skip[2:], alpha[:-2], NEG_INF)
        alpha = np.logaddexp(np.logaddexp(alpha, from_one), from_two) + emit[t]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if len(ids) else alpha[-1])


def ctc_forced_align(log_probs: np.ndarray, tokens: Sequence[int], blank: int = 0) -> tuple[int, ...]:
    """The most likely CTC alignment of ``tokens`` (Viterbi): per token, the first frame of its run,
    as ``Hypothesis.frames`` gives them (word timings of a hypothesis the search did not produce).

    log_probs: float32 (T, V) log-softmax; tokens: L token ids (as for ``ctc_log_likelihood``).
    Returns L increasing frame indices; ValueError when no alignment exists (T too short). On equal
    scores a state is entered by skipping a blank, then by advancing, before staying.
    """
    lp, ids = _check_likelihood_args(log_probs, tokens, blank)
    T = lp.shape[0]
    if T < _frames_needed(ids):
        raise ValueError(f"{len(ids)} tokens cannot be aligned to {T} frames")
    if len(ids) == 0:
        return ()
    ext = np.full(2 * len(ids) + 1, blank, dtype=np.intp)
    ext[1::2] = ids
    emit = lp[:, ext].astype(np.float64)
    S = ext.shape[0]
    skip = np.zeros(S, dtype=bool)
    skip[3::2] = ids[1:] != ids[:-1]
    score = np.full(S, NEG_INF)
    score[:2] = emit[0, :2]
    back = np.zeros((T, S), dtype=np.int8)  # 0: stayed in the state, 1: came from s - 1, 2: from s - 2
    for t in range(1, T):
        options = np.full((3, S), NEG_INF)
        options[0] = score
        options[1, 1:] = score[:-1]
        options[2, 2:] = np.where(skip[2:], score[:-2], NEG_INF)
        # argmax takes the first maximum: rows reversed so that ties prefer skip, then advance, then stay
        choice = 2 - np.argmax(options[::-1], axis=0)
        back[t] = choice
        score = options[choice, np.arange(S)] + emit[t]
    state = S - 1 if score[S - 1] >= score[S - 2] else S - 2
    first = [0] * len(ids)
    for t in range(T - 1, -1, -1):
        if state % 2:
            first[state // 2] = t
        state -= int(back[t, state])
    return tuple(first)


def ctc_prefix_beam_search(log_probs: np.ndarray, beam: int = 8, blank: int = 0, nbest: int | None = None,
                           top_k: int = 0, prune_logp: float = NEG_INF, context: ContextGraph | None = None,
                           lm: WordLM | None = None, lm_weight: float = 0.5, word_bonus: float = 0.0,
                           word_boundary: Sequence[int] | None = None,
                           symbols: Sequence[str] | None = None) -> list[Hypothesis]:
    """CTC prefix beam search; the n-best list sorted by ``score`` descending (ties: beam order).

    log_probs: float32 (T, V) log-softmax; T = 0 gives one empty hypothesis.
    beam: prefixes kept per frame, ranked by acoustic + hot-word bonus + LM so far.
    nbest: hypotheses returned (1..beam; default beam; fewer if fewer prefixes exist).
    top_k: per frame, only the k most likely tokens are tried (0 = all); prune_logp: tokens whose
    log-prob at that frame is below it are skipped. The frame's argmax token is always tried.
    The defaults search exactly; ``top_k=0, prune_logp=-5.0`` is pyctcdecode's token pruning.
    context: hot words; the final bonus keeps completed phrases only (``ContextGraph.finalize``).
    lm / lm_weight / word_bonus / word_boundary: a word LM scored when a token of ``word_boundary``
    (ids that begin a word) is appended and once more at the end (see ``WordLM``); ignored without lm.
    symbols: id -> symbol (length V) to fill ``Hypothesis.text``.
    """
    search = PrefixBeamSearch(beam, blank, nbest, top_k, prune_logp, context, lm, lm_weight, word_bonus,
                              word_boundary, symbols)
    search.accept(log_probs)
    return search.finish()


class PrefixBeamSearch:
    """``ctc_prefix_beam_search`` fed chunk by chunk (streaming): the beam, the prefixes' hot-word
    and LM states and the frames' alignment chains carry over from one chunk to the next.

    Keywords as ``ctc_prefix_beam_search`` (same checks; those that need V, such as ``blank``,
    ``symbols``, ``context`` and ``word_boundary``, against the first chunk). ``finish()`` returns
    exactly what ``ctc_prefix_beam_search`` returns for the concatenation of the accepted chunks,
    for any chunking; afterwards the search accepts nothing more (RuntimeError). One per utterance.
    """

    def __init__(self, beam: int = 8, blank: int = 0, nbest: int | None = None, top_k: int = 0,
                 prune_logp: float = NEG_INF, context: ContextGraph | None = None, lm: WordLM | None = None,
                 lm_weight: float = 0.5, word_bonus: float = 0.0, word_boundary: Sequence[int] | None = None,
                 symbols: Sequence[str] | None = None):
        self._nbest = _check_search_options(beam, nbest, top_k, lm, word_boundary)
        self._beam, self._blank, self._top_k, self._prune_logp = beam, blank, top_k, prune_logp
        self._context, self._lm, self._lm_weight = context, lm, lm_weight
        self._word_boundary, self._symbols = word_boundary, symbols
        self._vocab = 0  # V of the first chunk; 0 before it
        self._frames = 0
        self._finished = False
        self._prefixes = _Prefixes(context, lm, lm_weight, word_bonus, None)
        self._chain_parent: list[int] = []  # Viterbi emission chains: link -> previous link (-1 = none)
        self._chain_frame: list[int] = []  # link -> first frame of the token's run
        self._entries = [_Slot(ROOT, -1, -1, 0.0, NEG_INF, 0.0, NEG_INF, 0.0, -1, -1, -1, ROOT, 0.0, 0.0)]

    @property
    def num_frames(self) -> int:
        """Frames accepted so far."""
        return self._frames

    def accept(self, log_probs: np.ndarray) -> None:
        """Search the next t frames: float32 (t, V) log-softmax, t >= 0, V that of the first chunk."""
        self._check_open("accept")
        lp = _check_log_probs(log_probs)
        if self._vocab == 0:
            self._prefixes.boundary = _check_search_vocab(lp.shape[1], self._blank, self._context, self._lm,
                                                           self._word_boundary, self._symbols)
            self._vocab = lp.shape[1]
        elif lp.shape[1] != self._vocab:
            raise ValueError(f"log_probs has V = {lp.shape[1]} but the search began with V = {self._vocab}")
        lp64 = lp.astype(np.float64)
        for t in range(lp.shape[0]):
            self._step(lp64[t], self._frames + t)
        self._frames += lp.shape[0]

    def best(self) -> Hypothesis:
        """The best prefix so far, as the beam ranks it: no end-of-utterance correction (an unfinished
        hot word keeps its partial bonus, the last word is not LM-scored yet), so later frames may
        revise it. The empty hypothesis before the first frame, and (scores -inf) when every prefix
        has probability 0."""
        if not self._entries:
            return Hypothesis((), (), NEG_INF, NEG_INF, 0.0, 0.0, "")
        e = self._entries[0]
        tokens = self._prefixes.tokens(e.node)
        frames = _chain_frames(e.cb if e.vb >= e.vnb else e.cnb, self._chain_parent, self._chain_frame)
        return Hypothesis(tokens, frames, e.total + e.ctx + e.lm, e.total, e.ctx, e.lm,
                          tokens_to_text(tokens, self._symbols) if self._symbols is not None else "")

    def finish(self) -> list[Hypothesis]:
        """End of utterance: the n-best list of ``ctc_prefix_beam_search`` over every accepted frame
        (one empty hypothesis if none was)."""
        self._check_open("finish")
        self._finished = True
        finals = _finals(self._entries, self._prefixes, self._chain_parent, self._chain_frame)
        return _finish(finals, self._context, self._lm, self._lm_weight, self._nbest, self._symbols)

    def _check_open(self, method: str) -> None:
        if self._finished:
            raise RuntimeError(f"PrefixBeamSearch.{method}() after finish(): start a new search")

    def _step(self, row: np.ndarray, t: int) -> None:
        """Extend the beam by frame ``t``: float64 (V,) log-probs."""
        blank, prefixes, entries = self._blank, self._prefixes, self._entries
        candidates = _candidates(row, self._top_k, self._prune_logp)
        index_of = {e.node: i for i, e in enumerate(entries)}
        child_slot = {}  # (entry index, token) -> index of the entry that is that extension
        for j, e in enumerate(entries):
            i = index_of.get(prefixes.parent[e.node])
            if i is not None:
                child_slot[(i, prefixes.token[e.node])] = j
        slots = [_Slot(e.node, -1, -1, NEG_INF, NEG_INF, NEG_INF, NEG_INF, NEG_INF, -1, -1, -1,
                       e.ctx_state, e.ctx, e.lm) for e in entries]
        for i, e in enumerate(entries):
            total = e.total
            vbest, cbest = (e.vb, e.cb) if e.vb >= e.vnb else (e.vnb, e.cnb)
            last = prefixes.token[e.node]
            for v in candidates:
                p = float(row[v])
                if v == blank:
                    s = slots[i]
                    s.pb = _logadd(s.pb, total + p)
                    if vbest + p > s.vb:
                        s.vb, s.cb = vbest + p, cbest
                    continue
                if v == last:  # the run of the last token goes on; a new copy needs a blank before it
                    s = slots[i]
                    s.pnb = _logadd(s.pnb, e.pnb + p)
                    if e.vnb + p > s.vnb:
                        s.vnb, s.cnb, s.cnb_frame = e.vnb + p, e.cnb, -1
                    src, vsrc, csrc = e.pb, e.vb, e.cb
                else:
                    src, vsrc, csrc = total, vbest, cbest
                j = child_slot.get((i, v))
                if j is None:
                    ctx_state, ctx, lm_score = prefixes.extension(e.node, v)
                    slots.append(_Slot(-1, i, v, NEG_INF, src + p, NEG_INF, vsrc + p, NEG_INF, -1, csrc, t,
                                       ctx_state, ctx, lm_score))
                else:
                    s = slots[j]
                    s.pnb = _logadd(s.pnb, src + p)
                    if vsrc + p > s.vnb:
                        s.vnb, s.cnb, s.cnb_frame = vsrc + p, csrc, t
        for s in slots:
            s.total = _logadd(s.pb, s.pnb)
        scores = [s.total + s.ctx + s.lm for s in slots]
        # zero-probability prefixes (e.g. a repeat with no blank between) never enter the beam
        live = [k for k in range(len(slots)) if scores[k] > NEG_INF]
        keep = sorted(live, key=lambda k: (-scores[k], k))[:self._beam]
        self._entries = []
        for k in keep:
            s = slots[k]
            if s.node < 0:
                s.node = prefixes.add(entries[s.src].node, s.token, s)
            if s.cnb_frame >= 0:
                self._chain_parent.append(s.cnb)
                self._chain_frame.append(s.cnb_frame)
                s.cnb, s.cnb_frame = len(self._chain_parent) - 1, -1
            self._entries.append(s)


def _chain_frames(link: int, chain_parent, chain_frame) -> tuple[int, ...]:
    """The frames of the emission chain that ends at ``link``, first to last."""
    frames = []
    while link >= 0:
        frames.append(chain_frame[link])
        link = chain_parent[link]
    return tuple(frames[::-1])


def _finals(entries, prefixes, chain_parent, chain_frame) -> list[tuple]:
    """Per entry of the last beam, the tuple ``_finish`` expects (the last word scored)."""
    finals = []
    for e in entries:
        frames = _chain_frames(e.cb if e.vb >= e.vnb else e.cnb, chain_parent, chain_frame)
        lm_score, lm_state = prefixes.lm[e.node], prefixes.lm_state[e.node]
        if prefixes.wordlm is not None:
            delta, lm_state = prefixes.word_delta(e.node)
            lm_score += delta
        finals.append((prefixes.tokens(e.node), frames, e.total,
                       prefixes.ctx[e.node], prefixes.ctx_state[e.node], lm_score, lm_state))
    return finals


class _Slot:
    """A prefix in the beam (or a candidate for it): sums and Viterbi scores in nats, chain links."""

    __slots__ = ("node", "src", "token", "pb", "pnb", "vb", "vnb", "total", "cb", "cnb", "cnb_frame",
                 "ctx_state", "ctx", "lm")

    def __init__(self, node, src, token, pb, pnb, vb, vnb, total, cb, cnb, cnb_frame, ctx_state, ctx, lm):
        self.node, self.src, self.token = node, src, token  # node -1: new prefix = entry src + token
        self.pb, self.pnb, self.vb, self.vnb = pb, pnb, vb, vnb
        self.total = total  # logadd(pb, pnb), set when the slot is ranked
        self.cb, self.cnb, self.cnb_frame = cb, cnb, cnb_frame  # cnb_frame >= 0: link (cnb, frame) to add
        self.ctx_state, self.ctx, self.lm = ctx_state, ctx, lm


class _Prefixes:
    """Trie of the prefixes that entered the beam, with their hot-word and LM state per node."""

    def __init__(self, context, lm, lm_weight, word_bonus, boundary):
        self.context, self.wordlm, self.lm_weight, self.word_bonus = context, lm, lm_weight, word_bonus
        self.boundary = boundary
        self.parent, self.token, self.word_len = [-1], [-1], [0]
        self.ctx_state, self.ctx, self.lm = [ROOT], [0.0], [0.0]
        self.lm_state = [lm.initial_state() if lm is not None else None]
        self.edges: dict[tuple[int, int], int] = {}
        self.word_cache: dict[int, tuple[float, object]] = {}

    def extension(self, node: int, v: int) -> tuple[int, float, float]:
        """(context state, context bonus so far, LM score so far) of prefix ``node`` + token v."""
        ctx_state, ctx = self.ctx_state[node], self.ctx[node]
        if self.context is not None:
            bonus, ctx_state = self.context.forward(ctx_state, v)
            ctx += bonus
        lm = self.lm[node]
        if self.wordlm is not None and self.boundary[v]:
            lm += self.word_delta(node)[0]
        return ctx_state, ctx, lm

    def word_delta(self, node: int) -> tuple[float, object]:
        """Weighted LM score of the word that ends prefix ``node``, and the LM state after it."""
        if node not in self.word_cache:
            n = self.word_len[node]
            if n == 0:
                self.word_cache[node] = (0.0, self.lm_state[node])
            else:
                score, state = self.wordlm.score(self.lm_state[node], self.tokens(node)[-n:])
                self.word_cache[node] = (self.lm_weight * score + self.word_bonus, state)
        return self.word_cache[node]

    def add(self, node: int, v: int, s: _Slot) -> int:
        """Trie id of prefix ``node`` + v, created from candidate ``s`` if new."""
        child = self.edges.get((node, v))
        if child is None:
            child = len(self.parent)
            self.edges[(node, v)] = child
            starts_word = self.boundary is not None and self.boundary[v]
            self.parent.append(node), self.token.append(v)
            self.word_len.append(1 if starts_word else self.word_len[node] + 1)
            self.ctx_state.append(s.ctx_state), self.ctx.append(s.ctx), self.lm.append(s.lm)
            self.lm_state.append(self.word_delta(node)[1] if self.wordlm is not None and starts_word
                                 else self.lm_state[node])
        return child

    def tokens(self, node: int) -> tuple[int, ...]:
        out = []
        while node != ROOT:
            out.append(self.token[node])
            node = self.parent[node]
        return tuple(out[::-1])


def _candidates(row: np.ndarray, top_k: int, prune_logp: float) -> list[int]:
    """Token ids tried at one frame (float64 row), ascending: top-k (ties: lower id), then those
    >= prune_logp, the argmax always."""
    best = int(row.argmax())
    if 0 < top_k < row.shape[0]:
        ids = np.argsort(-row, kind="stable")[:top_k]
    else:
        ids = np.arange(row.shape[0])
    return sorted(int(v) for v in ids if row[v] >= prune_logp or v == best)


def _logadd(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


def _finish(finals, context, lm, lm_weight, nbest, symbols) -> list[Hypothesis]:
    """Apply the end-of-utterance corrections, rank, and build the n-best list.

    finals: per beam entry, in beam order: (tokens, frames, acoustic, context bonus, context state,
    LM score including the last word, LM state after the last word). Shared by every backend.
    """
    ranked = []
    for k, (tokens, frames, acoustic, ctx, ctx_state, lm_score, lm_state) in enumerate(finals):
        if context is not None:
            ctx += context.finalize(ctx_state)[0]
        if lm is not None:
            lm_score += lm_weight * lm.final(lm_state)
        ranked.append((-(acoustic + ctx + lm_score), k, tokens, frames, acoustic, ctx, lm_score))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [Hypothesis(tokens, frames, -neg, acoustic, ctx, lm_score,
                       tokens_to_text(tokens, symbols) if symbols is not None else "")
            for neg, _, tokens, frames, acoustic, ctx, lm_score in ranked[:nbest]]


def _check_log_probs(log_probs) -> np.ndarray:
    """float32 (T, V >= 1) without NaN or +inf (-inf, a zero probability, is allowed); C-contiguous."""
    if not isinstance(log_probs, np.ndarray) or log_probs.ndim != 2:
        raise ValueError(f"log_probs must be a 2-D numpy array (T, V); got "
                         f"{getattr(log_probs, 'shape', type(log_probs).__name__)}")
    if log_probs.dtype != np.float32:
        raise ValueError(f"log_probs must be float32 (the model's output); got {log_probs.dtype}")
    if log_probs.shape[1] == 0:
        raise ValueError("log_probs has V = 0 tokens")
    # the max is NaN if any entry is, +inf if any is: one vectorised pass over the array
    if log_probs.size and not log_probs.max() < math.inf:
        t, v = np.argwhere(np.isnan(log_probs) | (log_probs == math.inf))[0]
        raise ValueError(f"log_probs[{t}, {v}] is {log_probs[t, v]}: log-probs must be finite or -inf")
    return np.ascontiguousarray(log_probs)


def _check_common(V: int, blank: int, symbols) -> None:
    if not 0 <= blank < V:
        raise ValueError(f"blank id {blank} out of range [0, {V})")
    if symbols is not None and len(symbols) != V:
        raise ValueError(f"symbols has {len(symbols)} entries but log_probs has V = {V}")


def _check_likelihood_args(log_probs, tokens, blank) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``ctc_log_likelihood``'s arguments; returns (C-contiguous log_probs, int32 token ids)."""
    lp = _check_log_probs(log_probs)
    _check_common(lp.shape[1], blank, None)
    ids = np.asarray(tokens)
    if ids.ndim != 1:
        raise ValueError(f"tokens must be a 1-D sequence of token ids; got shape {ids.shape}")
    if ids.size == 0:
        return lp, np.zeros(0, dtype=np.int32)
    if ids.dtype.kind not in "iu":
        raise ValueError(f"tokens must be integer token ids; got {ids.dtype}")
    V = lp.shape[1]
    bad = np.flatnonzero((ids < 0) | (ids >= V) | (ids == blank))
    if bad.size:
        p = int(bad[0])
        raise ValueError(f"tokens[{p}] = {int(ids[p])} is the blank ({blank}) or out of range [0, {V})")
    return lp, ids.astype(np.int32)


def _frames_needed(ids: np.ndarray) -> int:
    """Fewest frames that can emit ``ids``: one per token, plus a blank between equal neighbours."""
    return len(ids) + int(np.count_nonzero(ids[1:] == ids[:-1]))


def _check_search_options(beam, nbest, top_k, lm, word_boundary) -> int:
    """Validate the beam-search arguments that do not depend on V; returns nbest."""
    if beam < 1:
        raise ValueError(f"beam must be >= 1; got {beam}")
    nbest = beam if nbest is None else nbest
    if not 1 <= nbest <= beam:
        raise ValueError(f"nbest must be in [1, beam={beam}]; got {nbest}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 = all tokens); got {top_k}")
    if lm is not None and word_boundary is None:
        raise ValueError("an lm needs word_boundary: the token ids that begin a word")
    return nbest


def _check_search_vocab(V, blank, context, lm, word_boundary, symbols) -> np.ndarray | None:
    """Validate the beam-search arguments against V tokens; returns the uint8 (V,) word-boundary mask
    (None without lm)."""
    _check_common(V, blank, symbols)
    if context is not None and context.max_token >= V:
        raise ValueError(f"context graph uses token id {context.max_token} but log_probs has V = {V}")
    if lm is None:
        return None
    boundary = np.zeros(V, dtype=np.uint8)
    for t in word_boundary:
        if not 0 <= t < V or t == blank:
            raise ValueError(f"word_boundary id {t} is the blank or out of range [0, {V})")
        boundary[t] = 1
    return boundary
