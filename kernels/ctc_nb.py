"""Numba CTC kernels: mirrors ``ctc_cy.pyx`` step for step, with numpy arrays where ctc_cy has C++ vectors.

The prefix beam search (``_search``), the forward algorithm (``_forward``), Viterbi (``_viterbi``)
and the read-out of the beam's token / frame sequences (``_walk``) are ``@njit(cache=True,
nogil=True)`` functions (with two small helpers, ``_logadd`` and ``_select``); they compile on their
first call (nothing at import: no eager signatures, one specialisation each for the argument types
the wrappers pass) and are cached on disk, so later processes only load them. Mapping to ctc_cy:

* ``Slot`` (a C struct) -> one row of two parallel arrays, ``int64 (n, 7)`` (columns ``I_*``) and
  ``float64 (n, 6)`` (columns ``F_*``); the beam (``entries``) uses the same layout.
* ``_Prefixes`` (C++ vectors + an edge hash map) -> the growable trie ``int64 (cap, 6)`` (columns
  ``N_*``: parent, token, hot-word state, first child, next sibling, beam slot or -1) and its
  ``float64 (cap,)`` hot-word bonus; the edge ``(node, v)`` is found by walking the node's children
  (few: only extensions that entered the beam get a node).
* the Viterbi emission chains (``chain_parent`` / ``chain_frame``) -> a growable ``int64 (cap, 2)``
  array of (previous link, frame).
* ``vector`` growth -> ``PrefixBeamSearch.accept`` calls ``_search`` on a few frames at a time
  (``_RESERVE_ROWS // beam``) and first reserves rows for them (a frame adds at most ``beam`` trie
  nodes and chain links), so the jitted loop never reallocates; it returns the arrays it was given.
* ``Graph`` (borrowed pointers into a ``ContextGraph``) -> the graph's read-only arrays passed as
  they are; without hot words, one-element read-only stand-ins of the same types (one specialisation).
* ``nth_element`` / ``partial_sort`` for the beam and top-k -> ``_select``, a bounded insertion into a
  sorted buffer (key descending, ties: lower index), which gives the same order as ctc_py's
  ``sorted(key=(-score, k))`` and stable ``argsort``.

The frame loop uses the same candidate order, log-add order and tie-breaks as ctc_py / ctc_cy, so
the hypotheses, frames and scores are those of the reference. Where a Numba body cannot follow the
contract the search falls through to the next backend, the pure-Python reference: a word LM
(``lm`` given) is Python callbacks (``WordLM.score`` / ``final``) with opaque Python states, which
jitted code cannot call, so ``PrefixBeamSearch`` / ``ctc_prefix_beam_search`` with an ``lm`` run
``ctc_py.PrefixBeamSearch`` (same results by construction, reference speed). Without an LM the LM
score of every prefix is 0 and is not stored. The names that are plain numpy / Python in ctc_cy
(``ctc_greedy_search``, ``tokens_to_text``, ``Hypothesis``, ``ContextGraph``, ``WordLM``, the
constants) are re-exported from ctc_py, and the argument checks are ctc_py's ``_check_*`` helpers.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
from numba import njit

from vasr.kernels import ctc_py as _py
from vasr.kernels.ctc_py import (DEFAULT_BOOST, WORD_SPACE, ContextGraph, Hypothesis, WordLM,
                                 ctc_greedy_search, tokens_to_text)

__all__ = list(_py.__all__)

NEG_INF, ROOT = _py.NEG_INF, _py.ROOT  # ROOT: the trie id of the empty prefix and the graph's root state
# int columns of a slot / beam entry
I_NODE, I_SRC, I_TOKEN, I_CB, I_CNB, I_CNB_FRAME, I_CTX_STATE = range(7)
# float columns of a slot / beam entry
F_PB, F_PNB, F_VB, F_VNB, F_TOTAL, F_CTX = range(6)
# int columns of a trie node
N_PARENT, N_TOKEN, N_CTX_STATE, N_CHILD, N_SIBLING, N_ENTRY = range(6)
_TRIE_CAPACITY = 256
_CHAIN_CAPACITY = 256
_RESERVE_ROWS = 1 << 15  # trie nodes / chain links reserved at most per call of _search


def _frozen(dtype) -> np.ndarray:
    a = np.zeros(1, dtype=dtype)
    a.flags.writeable = False  # ContextGraph's arrays are read-only: same Numba type, one compilation
    return a


_NO_INT, _NO_FLOAT = _frozen(np.int32), _frozen(np.float64)


def _reserve(a: np.ndarray, used: int, more: int) -> np.ndarray:
    """``a`` (rows [0, used) in use) with room for ``more`` rows after them: itself or a grown copy."""
    if used + more <= a.shape[0]:
        return a
    grown = np.empty((max(2 * a.shape[0], used + more), *a.shape[1:]), a.dtype)
    grown[:used] = a[:used]
    return grown


@njit(cache=True, nogil=True)
def _logadd(a, b):
    if a < b:
        a, b = b, a
    if b == -np.inf:
        return a
    return a + math.log1p(math.exp(b - a))


@njit(cache=True, nogil=True)
def _select(keys, n, m, out):
    """Indices of the (up to) m largest of keys[:n] into out, key descending, ties: lower index first
    (the order of a stable sort on -key); returns how many."""
    c = 0
    for k in range(n):
        x = keys[k]
        if c == m:
            if not x > keys[out[m - 1]]:
                continue
            pos = m - 1
        else:
            pos = c
            c += 1
        lo, hi = 0, pos  # first position whose key is smaller than x: equal keys stay in front
        while lo < hi:
            mid = (lo + hi) // 2
            if keys[out[mid]] < x:
                hi = mid
            else:
                lo = mid + 1
        for q in range(pos, lo, -1):
            out[q] = out[q - 1]
        out[lo] = k
    return c


@njit(cache=True, nogil=True)
def _search(lp, frame0, blank, beam, top_k, prune_logp, ent_i, ent_f, n_ent, trie_i, trie_f, n_trie,
            chain, n_chain, has_ctx, g_start, g_token, g_node, g_fail, g_root, g_score, g_output):
    """Extend the beam by every frame of ``lp`` (as ctc_cy._Search._run); returns the new
    (ent_i, ent_f, n_ent, trie_i, trie_f, n_trie, chain, n_chain)."""
    T, V = lp.shape
    row = np.empty(V)
    top = np.empty(V, np.int64)
    cands = np.empty(V, np.int64)
    head = np.empty(beam, np.int64)
    nxt = np.empty(beam, np.int64)
    new_i = np.empty((beam, 7), np.int64)
    new_f = np.empty((beam, 6))
    cap = 4 * beam + 16
    sl_i = np.empty((cap, 7), np.int64)
    sl_f = np.empty((cap, 6))
    keys = np.empty(cap)
    order = np.empty(beam, np.int64)
    for t in range(T):
        frame = frame0 + t
        best = 0
        for v in range(1, V):
            if lp[t, v] > lp[t, best]:
                best = v
        nc = 0
        if 0 < top_k < V:
            for v in range(V):
                row[v] = lp[t, v]
            m = _select(row, V, top_k, top)
            for k in range(m):
                v = top[k]
                if row[v] >= prune_logp or v == best:
                    cands[nc] = v
                    nc += 1
            for a in range(1, nc):  # ascending token order
                x = cands[a]
                b = a - 1
                while b >= 0 and cands[b] > x:
                    cands[b + 1] = cands[b]
                    b -= 1
                cands[b + 1] = x
        else:
            for v in range(V):
                if lp[t, v] + 0.0 >= prune_logp or v == best:
                    cands[nc] = v
                    nc += 1

        n = n_ent
        for i in range(n):
            head[i] = -1
            nxt[i] = -1
            trie_i[ent_i[i, I_NODE], N_ENTRY] = i
        for j in range(n):
            par = trie_i[ent_i[j, I_NODE], N_PARENT]
            if par >= 0 and trie_i[par, N_ENTRY] >= 0:
                i = trie_i[par, N_ENTRY]
                nxt[j] = head[i]
                head[i] = j
        if sl_i.shape[0] < n * (nc + 1):  # an entry's own slot + one per candidate
            cap = n * (nc + 1) if n * (nc + 1) > 2 * cap else 2 * cap
            sl_i = np.empty((cap, 7), np.int64)
            sl_f = np.empty((cap, 6))
            keys = np.empty(cap)
        for i in range(n):  # slot i: entry i, its sums and chains to be filled
            for f in range(7):
                sl_i[i, f] = -1
            sl_i[i, I_NODE] = ent_i[i, I_NODE]
            sl_i[i, I_CTX_STATE] = ent_i[i, I_CTX_STATE]
            for f in range(F_CTX):
                sl_f[i, f] = -np.inf
            sl_f[i, F_CTX] = ent_f[i, F_CTX]
        ns = n
        for i in range(n):
            total = ent_f[i, F_TOTAL]
            if ent_f[i, F_VB] >= ent_f[i, F_VNB]:
                vbest, cbest = ent_f[i, F_VB], ent_i[i, I_CB]
            else:
                vbest, cbest = ent_f[i, F_VNB], ent_i[i, I_CNB]
            last = trie_i[ent_i[i, I_NODE], N_TOKEN]
            for c in range(nc):
                v = cands[c]
                p = lp[t, v] + 0.0  # float64
                if v == blank:
                    sl_f[i, F_PB] = _logadd(sl_f[i, F_PB], total + p)
                    if vbest + p > sl_f[i, F_VB]:
                        sl_f[i, F_VB] = vbest + p
                        sl_i[i, I_CB] = cbest
                    continue
                if v == last:  # the run of the last token goes on; a new copy needs a blank before it
                    sl_f[i, F_PNB] = _logadd(sl_f[i, F_PNB], ent_f[i, F_PNB] + p)
                    if ent_f[i, F_VNB] + p > sl_f[i, F_VNB]:
                        sl_f[i, F_VNB] = ent_f[i, F_VNB] + p
                        sl_i[i, I_CNB] = ent_i[i, I_CNB]
                        sl_i[i, I_CNB_FRAME] = -1
                    src, vsrc, csrc = ent_f[i, F_PB], ent_f[i, F_VB], ent_i[i, I_CB]
                else:
                    src, vsrc, csrc = total, vbest, cbest
                j = head[i]
                while j >= 0 and trie_i[ent_i[j, I_NODE], N_TOKEN] != v:
                    j = nxt[j]
                if j >= 0:
                    sl_f[j, F_PNB] = _logadd(sl_f[j, F_PNB], src + p)
                    if vsrc + p > sl_f[j, F_VNB]:
                        sl_f[j, F_VNB] = vsrc + p
                        sl_i[j, I_CNB] = csrc
                        sl_i[j, I_CNB_FRAME] = frame
                    continue
                state = ent_i[i, I_CTX_STATE]
                ctx = ent_f[i, F_CTX]
                if has_ctx:  # the Aho-Corasick transition (ContextGraph.forward)
                    g = state
                    while True:
                        if g == ROOT:
                            g = g_root[v] if v < g_root.shape[0] else ROOT
                            break
                        k = g_start[g]
                        while k < g_start[g + 1] and g_token[k] != v:
                            k += 1
                        if k < g_start[g + 1]:
                            g = g_node[k]
                            break
                        g = g_fail[g]
                    ctx = ctx + (g_score[g] - g_score[state] + g_output[g])
                    state = g
                sl_i[ns, I_NODE] = -1
                sl_i[ns, I_SRC] = i
                sl_i[ns, I_TOKEN] = v
                sl_i[ns, I_CB] = -1
                sl_i[ns, I_CNB] = csrc
                sl_i[ns, I_CNB_FRAME] = frame
                sl_i[ns, I_CTX_STATE] = state
                sl_f[ns, F_PB] = -np.inf
                sl_f[ns, F_PNB] = src + p
                sl_f[ns, F_VB] = -np.inf
                sl_f[ns, F_VNB] = vsrc + p
                sl_f[ns, F_CTX] = ctx
                ns += 1

        # zero-probability prefixes never enter the beam (-inf sorts last); ties keep the lower slot index
        for k in range(ns):
            sl_f[k, F_TOTAL] = _logadd(sl_f[k, F_PB], sl_f[k, F_PNB])
            keys[k] = sl_f[k, F_TOTAL] + sl_f[k, F_CTX]
        m = _select(keys, ns, beam, order)
        while m > 0 and keys[order[m - 1]] == -np.inf:
            m -= 1
        for i in range(n):
            trie_i[ent_i[i, I_NODE], N_ENTRY] = -1
        for r in range(m):
            k = order[r]
            node = sl_i[k, I_NODE]
            if node < 0:  # prefix entry src + token: its trie node, created if new
                parent, v = ent_i[sl_i[k, I_SRC], I_NODE], sl_i[k, I_TOKEN]
                node = trie_i[parent, N_CHILD]
                while node >= 0 and trie_i[node, N_TOKEN] != v:
                    node = trie_i[node, N_SIBLING]
                if node < 0:  # room for beam new nodes per frame: reserved by the caller
                    node = n_trie
                    n_trie += 1
                    trie_i[node, N_PARENT] = parent
                    trie_i[node, N_TOKEN] = v
                    trie_i[node, N_CTX_STATE] = sl_i[k, I_CTX_STATE]
                    trie_i[node, N_CHILD] = -1
                    trie_i[node, N_SIBLING] = trie_i[parent, N_CHILD]
                    trie_i[node, N_ENTRY] = -1
                    trie_i[parent, N_CHILD] = node
                    trie_f[node] = sl_f[k, F_CTX]
            cnb = sl_i[k, I_CNB]
            if sl_i[k, I_CNB_FRAME] >= 0:
                chain[n_chain, 0] = cnb
                chain[n_chain, 1] = sl_i[k, I_CNB_FRAME]
                cnb = n_chain
                n_chain += 1
            for f in range(7):  # src, token and cnb_frame of an entry are never read
                new_i[r, f] = sl_i[k, f]
            new_i[r, I_NODE] = node
            new_i[r, I_CNB] = cnb
            for f in range(6):
                new_f[r, f] = sl_f[k, f]
        ent_i, new_i = new_i, ent_i
        ent_f, new_f = new_f, ent_f
        n_ent = m
    return ent_i, ent_f, n_ent, trie_i, trie_f, n_trie, chain, n_chain


def ctc_prefix_beam_search(log_probs, beam=8, blank=0, nbest=None, top_k=0, prune_logp=NEG_INF,
                           context=None, lm=None, lm_weight=0.5, word_bonus=0.0, word_boundary=None,
                           symbols=None):
    search = PrefixBeamSearch(beam, blank, nbest, top_k, prune_logp, context, lm, lm_weight, word_bonus,
                              word_boundary, symbols)
    search.accept(log_probs)
    return search.finish()


class PrefixBeamSearch:
    __doc__ = _py.PrefixBeamSearch.__doc__

    def __init__(self, beam=8, blank=0, nbest=None, top_k=0, prune_logp=NEG_INF, context=None, lm=None,
                 lm_weight=0.5, word_bonus=0.0, word_boundary=None, symbols=None):
        self._ref = None
        if lm is not None:  # Python callbacks: the reference's search, which calls them
            self._ref = _py.PrefixBeamSearch(beam, blank, nbest, top_k, prune_logp, context, lm, lm_weight,
                                             word_bonus, word_boundary, symbols)
            return
        self._nbest = _py._check_search_options(beam, nbest, top_k, lm, word_boundary)
        # numpy integers as Python ints: one specialisation of _search
        self._beam, self._blank, self._top_k = (int(x) if isinstance(x, numbers.Integral) else x
                                                for x in (beam, blank, top_k))
        self._prune_logp = prune_logp
        self._context, self._symbols = context, symbols
        self._graph = (True, context.child_start, context.child_token, context.child_node, context.fail,
                       context.root_next, context.node_score, context.output_score) if context is not None \
            else (False, _NO_INT, _NO_INT, _NO_INT, _NO_INT, _NO_INT, _NO_FLOAT, _NO_FLOAT)
        self._vocab = 0
        self._frames = 0
        self._finished = False
        self._ent_i = np.full((beam, 7), -1, np.int64)
        self._ent_f = np.full((beam, 6), NEG_INF)
        self._ent_i[0, I_NODE], self._ent_i[0, I_CTX_STATE] = ROOT, ROOT
        self._ent_f[0, [F_PB, F_VB, F_TOTAL, F_CTX]] = 0.0
        self._n_ent = 1
        self._trie_i = np.full((_TRIE_CAPACITY, 6), -1, np.int64)
        self._trie_i[ROOT, N_CTX_STATE] = ROOT
        self._trie_f = np.zeros(_TRIE_CAPACITY)
        self._n_trie = 1
        self._chain = np.zeros((_CHAIN_CAPACITY, 2), np.int64)
        self._n_chain = 0

    @property
    def num_frames(self):
        if self._ref is not None:
            return self._ref.num_frames
        return self._frames

    num_frames.__doc__ = _py.PrefixBeamSearch.num_frames.__doc__

    def accept(self, log_probs):
        if self._ref is not None:
            return self._ref.accept(log_probs)
        self._check_open("accept")
        lp = _py._check_log_probs(log_probs)
        if self._vocab == 0:
            _py._check_search_vocab(lp.shape[1], self._blank, self._context, None, None, self._symbols)
            self._vocab = lp.shape[1]
        elif lp.shape[1] != self._vocab:
            raise ValueError(f"log_probs has V = {lp.shape[1]} but the search began with V = {self._vocab}")
        step = max(1, _RESERVE_ROWS // self._beam)  # frames per call: each adds <= beam nodes and links
        for a in range(0, lp.shape[0], step):
            rows = min(step, lp.shape[0] - a) * self._beam
            self._trie_i = _reserve(self._trie_i, self._n_trie, rows)
            self._trie_f = _reserve(self._trie_f, self._n_trie, rows)
            self._chain = _reserve(self._chain, self._n_chain, rows)
            (self._ent_i, self._ent_f, self._n_ent, self._trie_i, self._trie_f, self._n_trie, self._chain,
             self._n_chain) = _search(lp[a:a + step], self._frames + a, self._blank, self._beam, self._top_k,
                                      float(self._prune_logp), self._ent_i, self._ent_f, self._n_ent,
                                      self._trie_i, self._trie_f, self._n_trie, self._chain, self._n_chain,
                                      *self._graph)
        self._frames += lp.shape[0]

    def best(self):
        if self._ref is not None:
            return self._ref.best()
        if self._n_ent == 0:
            return Hypothesis((), (), NEG_INF, NEG_INF, 0.0, 0.0, "")
        return self._hypotheses(1)[0][0]

    def finish(self):
        if self._ref is not None:
            return self._ref.finish()
        self._check_open("finish")
        self._finished = True
        hyps, nodes = self._hypotheses(self._n_ent)
        finals = [(h.tokens, h.frames, h.acoustic, float(self._trie_f[node]), int(self._trie_i[node, N_CTX_STATE]),
                   0.0, None) for h, node in zip(hyps, nodes)]
        return _py._finish(finals, self._context, None, 0.0, self._nbest, self._symbols)

    def _hypotheses(self, n):
        """The first n beam entries as ``best()`` gives them, and their trie nodes."""
        e_i, e_f = self._ent_i[:n], self._ent_f[:n]
        nodes = np.ascontiguousarray(e_i[:, I_NODE])
        links = np.where(e_f[:, F_VB] >= e_f[:, F_VNB], e_i[:, I_CB], e_i[:, I_CNB])  # Viterbi's best chain
        tokens = _split(*_walk(nodes, self._trie_i[:, N_PARENT], self._trie_i[:, N_TOKEN], ROOT))
        frames = _split(*_walk(links, self._chain[:, 0], self._chain[:, 1], -1))
        hyps = []
        for tok, frm, (total, ctx) in zip(tokens, frames, e_f[:, [F_TOTAL, F_CTX]].tolist()):
            hyps.append(Hypothesis(tok, frm, total + ctx + 0.0, total, ctx, 0.0,
                                   tokens_to_text(tok, self._symbols) if self._symbols is not None else ""))
        return hyps, nodes.tolist()

    def _check_open(self, method):
        if self._finished:
            raise RuntimeError(f"PrefixBeamSearch.{method}() after finish(): start a new search")


for _name in ("accept", "best", "finish"):
    getattr(PrefixBeamSearch, _name).__doc__ = getattr(_py.PrefixBeamSearch, _name).__doc__


def _split(flat: np.ndarray, offsets: np.ndarray) -> list[tuple[int, ...]]:
    values, offsets = flat.tolist(), offsets.tolist()
    return [tuple(values[a:b]) for a, b in zip(offsets, offsets[1:])]


@njit(cache=True, nogil=True)
def _walk(starts, parent, value, stop):
    """The sequences value[...] along parent links from each start up to (without) ``stop``, first to
    last (the tokens of a trie node, the frames of an emission chain): flat, and offsets (n + 1)."""
    n = starts.shape[0]
    offsets = np.empty(n + 1, np.int64)  # np.empty only, in int64 / float64: fewer overloads to compile
    offsets[0] = 0
    for k in range(n):
        length, link = 0, starts[k]
        while link != stop:
            length += 1
            link = parent[link]
        offsets[k + 1] = offsets[k] + length
    flat = np.empty(offsets[n], np.int64)
    for k in range(n):
        pos, link = offsets[k + 1], starts[k]
        while link != stop:
            pos -= 1
            flat[pos] = value[link]
            link = parent[link]
    return flat, offsets


def ctc_log_likelihood(log_probs, tokens, blank=0):
    lp, ids = _py._check_likelihood_args(log_probs, tokens, blank)
    return float(_forward(lp, ids, blank)) if lp.shape[0] >= _py._frames_needed(ids) else NEG_INF


def ctc_forced_align(log_probs, tokens, blank=0):
    lp, ids = _py._check_likelihood_args(log_probs, tokens, blank)
    if lp.shape[0] >= _py._frames_needed(ids):
        return tuple(_viterbi(lp, ids, blank).tolist()) if ids.size else ()
    raise ValueError(f"{len(ids)} tokens cannot be aligned to {lp.shape[0]} frames")


for _f in (ctc_prefix_beam_search, ctc_log_likelihood, ctc_forced_align):
    _f.__doc__ = getattr(_py, _f.__name__).__doc__


@njit(cache=True, nogil=True)
def _forward(lp, ids, blank):
    """The CTC forward algorithm over the 2L + 1 extended states (as ctc_cy._forward), T >= the frames
    the tokens need. Frame t updates only the states s in [lo, hi] that frame 0 reaches and that can
    still reach the end by frame T - 1 (the rows start at -inf, the others are never read)."""
    T, L = lp.shape[0], ids.shape[0]
    S = 2 * L + 1
    if T == 0:
        return 0.0
    skip = np.empty(S, np.int64)  # token state 2k + 1 may come from 2k - 1 when the two tokens differ
    for s in range(S):
        skip[s] = s >= 3 and s % 2 == 1 and ids[s // 2] != ids[s // 2 - 1]
    prev = np.empty(S)
    cur = np.empty(S)
    for s in range(S):
        prev[s] = cur[s] = -np.inf
    prev[0] = lp[0, blank]
    if L > 0:
        prev[1] = lp[0, ids[0]]
    for t in range(1, T):
        lo, hi = S - 2 * (T - t), 2 * t + 1
        for s in range(lo if lo > 0 else 0, hi + 1 if hi < S else S):
            emit = lp[t, ids[s // 2]] if s % 2 else lp[t, blank]
            if s == 0:
                cur[s] = prev[s] + emit
            elif not skip[s]:
                cur[s] = _logadd(prev[s], prev[s - 1]) + emit
            else:  # logadd3 of ctc_cy: the largest of the three factored out
                a, b, c = prev[s], prev[s - 1], prev[s - 2]
                if a < b:
                    a, b = b, a
                if a < c:
                    a, c = c, a
                cur[s] = (a if a == -np.inf else a + math.log1p(math.exp(b - a) + math.exp(c - a))) + emit
        prev, cur = cur, prev
    return _logadd(prev[S - 1], prev[S - 2]) if L > 0 else prev[S - 1]


@njit(cache=True, nogil=True)
def _viterbi(lp, ids, blank):
    """Best path over the extended states (as ctc_cy._viterbi); per token the first frame of its run."""
    T, L = lp.shape[0], ids.shape[0]
    S = 2 * L + 1
    skip = np.empty(S, np.int64)
    for s in range(S):
        skip[s] = s >= 3 and s % 2 == 1 and ids[s // 2] != ids[s // 2 - 1]
    back = np.empty((T, S), np.int8)  # 0: stayed in the state, 1: came from s - 1, 2: from s - 2
    for s in range(S):
        back[0, s] = 0
    prev = np.empty(S)
    cur = np.empty(S)
    for s in range(S):
        prev[s] = cur[s] = -np.inf
    prev[0] = lp[0, blank]
    prev[1] = lp[0, ids[0]]
    for t in range(1, T):
        for s in range(S):
            # ties as in the reference: skip (s - 2) over advance (s - 1) over stay; -inf never moves
            best, choice = prev[s], 0
            if s >= 1 and prev[s - 1] > -np.inf and prev[s - 1] >= best:
                best, choice = prev[s - 1], 1
            if s >= 2 and skip[s] and prev[s - 2] > -np.inf and prev[s - 2] >= best:
                best, choice = prev[s - 2], 2
            back[t, s] = choice
            cur[s] = best + (lp[t, ids[s // 2]] if s % 2 else lp[t, blank])
        prev, cur = cur, prev
    state = S - 1 if prev[S - 1] >= prev[S - 2] else S - 2
    first = np.empty(L, np.int64)  # every token state lies on the path: each entry is written
    for t in range(T - 1, -1, -1):
        if state % 2:
            first[state // 2] = t
        state -= back[t, state]
    return first
