# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
# distutils: language = c++
"""Compiled CTC prefix beam search: mirrors ``ctc_py.PrefixBeamSearch`` step for step (same
candidate order, log-add order and tie-breaks), with the prefix trie, the beam and the Aho-Corasick
transitions in C++. The other public names are numpy / pure Python and re-exported from ctc_py.
"""
from libc.math cimport INFINITY, exp, log1p
from libc.string cimport memset
from libcpp.algorithm cimport nth_element, partial_sort, sort
from libcpp.unordered_map cimport unordered_map
from libcpp.utility cimport pair
from libcpp.vector cimport vector
from cython.operator cimport dereference as deref

from vasr.kernels import ctc_py as _py
from vasr.kernels.ctc_py import (DEFAULT_BOOST, WORD_SPACE, ContextGraph, Hypothesis, WordLM,
                                 ctc_greedy_search, tokens_to_text)

__all__ = list(_py.__all__)

cdef enum:
    ROOT = 0


cdef struct Slot:
    # a prefix in the beam or a candidate for it; fields as ctc_py._Slot
    int node
    int src
    int token
    double pb
    double pnb
    double vb
    double vnb
    double total
    int cb
    int cnb
    int cnb_frame
    int ctx_state
    double ctx
    double lm


cdef struct Graph:
    # borrowed views of a ContextGraph's arrays
    const int* child_start
    const int* child_token
    const int* child_node
    const int* fail
    const int* root_next
    int n_root
    const double* node_score
    const double* output_score


cdef inline double logadd(double a, double b) noexcept nogil:
    cdef double t
    if a < b:
        t = a
        a = b
        b = t
    if b == -INFINITY:
        return a
    return a + log1p(exp(b - a))


cdef inline int graph_next(const Graph* g, int state, int v) noexcept nogil:
    cdef int k
    while True:
        if state == ROOT:
            return g.root_next[v] if v < g.n_root else ROOT
        for k in range(g.child_start[state], g.child_start[state + 1]):
            if g.child_token[k] == v:
                return g.child_node[k]
        state = g.fail[state]


cdef class _Prefixes:
    """Trie of the prefixes that entered the beam (as ctc_py._Prefixes), in C++ vectors; the edge keys
    need V, set from the first chunk by ``set_vocab``."""
    cdef vector[int] parent, token, word_len, ctx_state
    cdef vector[double] ctx, lm
    cdef unordered_map[long long, int] edges
    cdef object wordlm
    cdef double lm_weight, word_bonus
    cdef const unsigned char[::1] boundary
    cdef bint has_boundary
    cdef list lm_state
    cdef dict word_cache
    cdef long long V

    def __init__(self, lm, lm_weight, word_bonus):
        self.wordlm, self.lm_weight, self.word_bonus = lm, lm_weight, word_bonus
        self.parent.push_back(-1)
        self.token.push_back(-1)
        self.word_len.push_back(0)
        self.ctx_state.push_back(ROOT)
        self.ctx.push_back(0.0)
        self.lm.push_back(0.0)
        self.lm_state = [lm.initial_state() if lm is not None else None]
        self.word_cache = {}

    cdef int set_vocab(self, long long V, object boundary) except -1:
        self.V = V
        self.has_boundary = boundary is not None
        if self.has_boundary:
            self.boundary = boundary
        return 0

    cdef double word_delta(self, int node) except? -1.5e308:
        cdef int n = self.word_len[node]
        if node not in self.word_cache:
            if n == 0:
                self.word_cache[node] = (0.0, self.lm_state[node])
            else:
                tokens = self.tokens(node)
                score, state = self.wordlm.score(self.lm_state[node], tokens[len(tokens) - n:])
                self.word_cache[node] = (self.lm_weight * <double>score + self.word_bonus, state)
        return self.word_cache[node][0]

    cdef int add(self, int node, int v, const Slot* s) except -1:
        cdef long long key = node * self.V + v
        cdef int child
        cdef bint starts_word
        cdef unordered_map[long long, int].iterator it = self.edges.find(key)
        if it != self.edges.end():
            return deref(it).second
        child = self.parent.size()
        self.edges[key] = child
        starts_word = self.has_boundary and self.boundary[v]
        self.parent.push_back(node)
        self.token.push_back(v)
        self.word_len.push_back(1 if starts_word else self.word_len[node] + 1)
        self.ctx_state.push_back(s.ctx_state)
        self.ctx.push_back(s.ctx)
        self.lm.push_back(s.lm)
        if self.wordlm is not None:
            if starts_word:
                self.word_delta(node)
                self.lm_state.append(self.word_cache[node][1])
            else:
                self.lm_state.append(self.lm_state[node])
        return child

    cdef tuple tokens(self, int node):
        cdef list out = []
        while node != ROOT:
            out.append(self.token[node])
            node = self.parent[node]
        out.reverse()
        return tuple(out)


def ctc_prefix_beam_search(log_probs, beam=8, blank=0, nbest=None, top_k=0, prune_logp=-INFINITY,
                           context=None, lm=None, lm_weight=0.5, word_bonus=0.0, word_boundary=None,
                           symbols=None):
    cdef _Search search = _Search(beam, blank, nbest, top_k, prune_logp, context, lm, lm_weight, word_bonus,
                                  word_boundary, symbols)
    search.accept(log_probs)
    return search.finish()


ctc_prefix_beam_search.__doc__ = _py.ctc_prefix_beam_search.__doc__


def ctc_log_likelihood(log_probs, tokens, blank=0):
    lp, ids = _py._check_likelihood_args(log_probs, tokens, blank)
    if lp.shape[0] < _py._frames_needed(ids):
        return -INFINITY
    return _forward(lp, ids, blank)


ctc_log_likelihood.__doc__ = _py.ctc_log_likelihood.__doc__


def ctc_forced_align(log_probs, tokens, blank=0):
    lp, ids = _py._check_likelihood_args(log_probs, tokens, blank)
    if lp.shape[0] < _py._frames_needed(ids):
        raise ValueError(f"{len(ids)} tokens cannot be aligned to {lp.shape[0]} frames")
    if ids.shape[0] == 0:
        return ()
    return tuple(_viterbi(lp, ids, blank))


ctc_forced_align.__doc__ = _py.ctc_forced_align.__doc__


cdef list _viterbi(const float[:, ::1] lp, const int[::1] ids, int blank):
    """Best path over the extended states (as ctc_py.ctc_forced_align); per token its first frame."""
    cdef Py_ssize_t T = lp.shape[0], L = ids.shape[0], S = 2 * L + 1
    cdef Py_ssize_t t, s, state
    cdef vector[double] prev, cur
    cdef vector[char] skip, back
    cdef vector[int] first
    cdef double best, option
    cdef char choice
    skip.assign(S, 0)
    for s in range(3, S, 2):
        skip[s] = ids[s // 2] != ids[s // 2 - 1]
    back.assign(T * S, 0)
    prev.assign(S, -INFINITY)
    cur.assign(S, -INFINITY)
    prev[0] = lp[0, blank]
    prev[1] = lp[0, ids[0]]
    for t in range(1, T):
        for s in range(S):
            # ties as in the reference: skip (s - 2), then advance (s - 1), then stay
            best, choice = -INFINITY, 0
            if s >= 2 and skip[s] and prev[s - 2] > best:
                best, choice = prev[s - 2], 2
            if s >= 1 and prev[s - 1] > best:
                best, choice = prev[s - 1], 1
            if prev[s] > best:
                best, choice = prev[s], 0
            back[t * S + s] = choice
            cur[s] = best + lp[t, ids[s // 2] if s % 2 else blank]
        prev.swap(cur)
    state = S - 1 if prev[S - 1] >= prev[S - 2] else S - 2
    first.assign(L, 0)
    for t in range(T - 1, -1, -1):
        if state % 2:
            first[state // 2] = <int>t
        state -= back[t * S + state]
    return [first[s] for s in range(L)]


cdef inline double logadd3(double a, double b, double c) noexcept nogil:
    # log(e^a + e^b + e^c) with two exps and one log1p: the largest term factored out
    cdef double t
    if a < b:
        t = a
        a = b
        b = t
    if a < c:
        t = a
        a = c
        c = t
    if a == -INFINITY:
        return a
    return a + log1p(exp(b - a) + exp(c - a))


cdef double _forward(const float[:, ::1] lp, const int[::1] ids, int blank):
    """The CTC forward algorithm over the 2L + 1 extended states (as ctc_py.ctc_log_likelihood), with
    T >= the frames the tokens need. Only states that are reachable from frame 0 and can still reach
    the end by frame T - 1 are updated: at frame t, lo <= s <= hi."""
    cdef Py_ssize_t T = lp.shape[0], L = ids.shape[0], S = 2 * L + 1
    cdef Py_ssize_t t, s, lo, hi
    cdef vector[double] prev, cur
    cdef vector[char] skip
    cdef double result
    if T == 0:
        return 0.0
    # token state 2k + 1 may come straight from token state 2k - 1 when the two tokens differ
    skip.assign(S, 0)
    for s in range(3, S, 2):
        skip[s] = ids[s // 2] != ids[s // 2 - 1]
    # both rows start at -inf: a row's states above hi were never written, below lo are never read
    prev.assign(S, -INFINITY)
    cur.assign(S, -INFINITY)
    prev[0] = lp[0, blank]
    if L > 0:
        prev[1] = lp[0, ids[0]]
    for t in range(1, T):
        lo = max(<Py_ssize_t>0, S - 2 * (T - t))
        hi = min(S - 1, 2 * t + 1)
        s = lo
        if s == 0:
            cur[0] = prev[0] + lp[t, blank]
            s = 1
        while s <= hi:
            if s % 2 == 0:
                cur[s] = logadd(prev[s], prev[s - 1]) + lp[t, blank]
            elif skip[s]:
                cur[s] = logadd3(prev[s], prev[s - 1], prev[s - 2]) + lp[t, ids[s // 2]]
            else:
                cur[s] = logadd(prev[s], prev[s - 1]) + lp[t, ids[s // 2]]
            s += 1
        prev.swap(cur)
    result = prev[S - 1]
    if L > 0:
        result = logadd(result, prev[S - 2])
    return result


cdef inline void set_slot(Slot* s, int node, int src, int token, double pb, double pnb,
                  double vb, double vnb, double total, int cb, int cnb, int cnb_frame, int ctx_state,
                  double ctx, double lm) noexcept nogil:
    # filled in place: a struct built on the stack and copied costs a store-forwarding stall
    s.node, s.src, s.token = node, src, token
    s.pb, s.pnb, s.vb, s.vnb, s.total = pb, pnb, vb, vnb, total
    s.cb, s.cnb, s.cnb_frame = cb, cnb, cnb_frame
    s.ctx_state, s.ctx, s.lm = ctx_state, ctx, lm


cdef class _Search:
    """The compiled state and loop of ``PrefixBeamSearch`` (the public class adds the keywords' defaults,
    which a cdef class cannot show to ``inspect``, and ctc_py's docstrings)."""
    cdef int beam, blank, top_k, nbest, V
    cdef double prune_logp, lm_weight
    cdef object context, lm, word_boundary, symbols
    cdef bint has_ctx, has_lm, finished
    cdef readonly Py_ssize_t _frames  # frames accepted so far
    cdef Graph g
    cdef const int[::1] cs, ct, cn, cf, cr  # the context graph's arrays that g points into
    cdef const double[::1] cns, cos
    cdef const unsigned char[::1] is_boundary
    cdef _Prefixes prefixes
    cdef vector[int] chain_parent, chain_frame  # Viterbi emission chains, as in ctc_py
    cdef vector[Slot] entries, slots, kept
    cdef vector[int] entry_of, child_head, child_next, cands
    cdef vector[pair[double, int]] order, ranked

    def __init__(self, beam, blank, nbest, top_k, prune_logp, context, lm, lm_weight, word_bonus, word_boundary,
                 symbols):
        self.nbest = _py._check_search_options(beam, nbest, top_k, lm, word_boundary)
        self.beam, self.blank, self.top_k, self.prune_logp = beam, blank, top_k, prune_logp
        self.context, self.lm, self.lm_weight = context, lm, lm_weight
        self.word_boundary, self.symbols = word_boundary, symbols
        self.has_ctx, self.has_lm = context is not None, lm is not None
        memset(&self.g, 0, sizeof(Graph))
        if self.has_ctx:
            self.cs, self.ct, self.cn = context.child_start, context.child_token, context.child_node
            self.cf, self.cr = context.fail, context.root_next
            self.cns, self.cos = context.node_score, context.output_score
            self.g.child_start, self.g.child_token, self.g.child_node = &self.cs[0], &self.ct[0], &self.cn[0]
            self.g.fail, self.g.root_next, self.g.n_root = &self.cf[0], &self.cr[0], self.cr.shape[0]
            self.g.node_score, self.g.output_score = &self.cns[0], &self.cos[0]
        self.prefixes = _Prefixes(lm, lm_weight, word_bonus)
        self.entries.resize(1)
        set_slot(&self.entries[0], ROOT, -1, -1, 0.0, -INFINITY, 0.0, -INFINITY, 0.0, -1, -1, -1, ROOT, 0.0, 0.0)
        self.entry_of.push_back(-1)

    def accept(self, log_probs):
        self._check_open("accept")
        lp = _py._check_log_probs(log_probs)
        if self.V == 0:
            boundary = _py._check_search_vocab(lp.shape[1], self.blank, self.context, self.lm,
                                               self.word_boundary, self.symbols)
            self.prefixes.set_vocab(lp.shape[1], boundary)
            if self.has_lm:
                self.is_boundary = boundary
            self.V = lp.shape[1]
        elif lp.shape[1] != self.V:
            raise ValueError(f"log_probs has V = {lp.shape[1]} but the search began with V = {self.V}")
        self._run(lp)
        self._frames += lp.shape[0]

    def best(self):
        cdef Slot* e
        if self.entries.size() == 0:
            return Hypothesis((), (), -INFINITY, -INFINITY, 0.0, 0.0, "")
        e = &self.entries[0]
        tokens = self.prefixes.tokens(e.node)
        frames = _chain_frames(e.cb if e.vb >= e.vnb else e.cnb, self.chain_parent, self.chain_frame)
        return Hypothesis(tokens, frames, e.total + e.ctx + e.lm, e.total, e.ctx, e.lm,
                          tokens_to_text(tokens, self.symbols) if self.symbols is not None else "")

    def finish(self):
        self._check_open("finish")
        self.finished = True
        finals = _finals(self.entries, self.prefixes, self.chain_parent, self.chain_frame, self.has_lm)
        return _py._finish(finals, self.context, self.lm, self.lm_weight, self.nbest, self.symbols)

    cdef int _check_open(self, str method) except -1:
        if self.finished:
            raise RuntimeError(f"PrefixBeamSearch.{method}() after finish(): start a new search")
        return 0

    cdef int _run(self, const float[:, ::1] lp) except -1:
        """Extend the beam by every frame of ``lp`` (as ctc_py.PrefixBeamSearch._step, frame by frame)."""
        cdef Py_ssize_t T = lp.shape[0]
        cdef int V = self.V, blank = self.blank, top_k = self.top_k
        cdef double prune_logp = self.prune_logp
        cdef bint has_ctx = self.has_ctx, has_lm = self.has_lm
        cdef const Graph* g = &self.g
        cdef _Prefixes prefixes = self.prefixes
        cdef Slot* s
        cdef Slot e
        cdef Py_ssize_t t, k, n, m, live, n_slots
        cdef int i, j, v, c, best, last, par, csrc, cbest, ctx_state, frame
        cdef double p, total, vbest, src, vsrc, ctx, lmv, score
        cdef size_t edges_needed = 4 * (self._frames + T)  # trie edges: a few new prefixes per frame
        if prefixes.edges.bucket_count() < edges_needed:  # grown geometrically: chunks may be one frame
            prefixes.edges.reserve(max(edges_needed, 2 * prefixes.edges.bucket_count()))
        for t in range(T):
            frame = <int>(self._frames + t)
            best = 0
            for v in range(1, V):
                if lp[t, v] > lp[t, best]:
                    best = v
            self.cands.clear()
            if 0 < top_k < V:
                self.ranked.clear()
                for v in range(V):
                    self.ranked.push_back(pair[double, int](-<double>lp[t, v], v))
                partial_sort(self.ranked.begin(), self.ranked.begin() + top_k, self.ranked.end())
                for k in range(top_k):
                    v = self.ranked[k].second
                    if <double>lp[t, v] >= prune_logp or v == best:
                        self.cands.push_back(v)
                sort(self.cands.begin(), self.cands.end())
            else:
                for v in range(V):
                    if <double>lp[t, v] >= prune_logp or v == best:
                        self.cands.push_back(v)

            n = self.entries.size()
            self.child_head.assign(n, -1)
            self.child_next.assign(n, -1)
            for i in range(n):
                self.entry_of[self.entries[i].node] = i
            for j in range(n):
                par = prefixes.parent[self.entries[j].node]
                if par >= 0 and self.entry_of[par] >= 0:
                    i = self.entry_of[par]
                    self.child_next[j] = self.child_head[i]
                    self.child_head[i] = j
            if self.slots.size() < n * (self.cands.size() + 1):  # an entry's own slot + one per candidate
                self.slots.resize(n * (self.cands.size() + 1))
                self.order.resize(self.slots.size())
            for i in range(n):
                set_slot(&self.slots[i], self.entries[i].node, -1, -1, -INFINITY, -INFINITY, -INFINITY,
                         -INFINITY, -INFINITY, -1, -1, -1, self.entries[i].ctx_state, self.entries[i].ctx,
                         self.entries[i].lm)
            n_slots = n
            for i in range(n):
                e = self.entries[i]
                total = e.total
                if e.vb >= e.vnb:
                    vbest, cbest = e.vb, e.cb
                else:
                    vbest, cbest = e.vnb, e.cnb
                last = prefixes.token[e.node]
                for c in range(<int>self.cands.size()):
                    v = self.cands[c]
                    p = lp[t, v]
                    if v == blank:
                        s = &self.slots[i]
                        s.pb = logadd(s.pb, total + p)
                        if vbest + p > s.vb:
                            s.vb, s.cb = vbest + p, cbest
                        continue
                    if v == last:  # the run of the last token goes on; a new copy needs a blank before it
                        s = &self.slots[i]
                        s.pnb = logadd(s.pnb, e.pnb + p)
                        if e.vnb + p > s.vnb:
                            s.vnb, s.cnb, s.cnb_frame = e.vnb + p, e.cnb, -1
                        src, vsrc, csrc = e.pb, e.vb, e.cb
                    else:
                        src, vsrc, csrc = total, vbest, cbest
                    j = self.child_head[i]
                    while j >= 0 and prefixes.token[self.entries[j].node] != v:
                        j = self.child_next[j]
                    if j < 0:
                        ctx_state, ctx, lmv = e.ctx_state, e.ctx, e.lm
                        if has_ctx:
                            ctx_state = graph_next(g, e.ctx_state, v)
                            ctx = ctx + (g.node_score[ctx_state] - g.node_score[e.ctx_state]
                                         + g.output_score[ctx_state])
                        if has_lm and self.is_boundary[v]:
                            lmv = lmv + prefixes.word_delta(e.node)
                        set_slot(&self.slots[n_slots], -1, i, v, -INFINITY, src + p, -INFINITY, vsrc + p,
                                 -INFINITY, -1, csrc, frame, ctx_state, ctx, lmv)
                        n_slots += 1
                    else:
                        s = &self.slots[j]
                        s.pnb = logadd(s.pnb, src + p)
                        if vsrc + p > s.vnb:
                            s.vnb, s.cnb, s.cnb_frame = vsrc + p, csrc, frame

            # zero-probability prefixes never enter the beam; ties keep the lower slot index
            live = 0
            for k in range(n_slots):
                s = &self.slots[k]
                s.total = logadd(s.pb, s.pnb)
                score = s.total + s.ctx + s.lm
                if score > -INFINITY:
                    self.order[live].first, self.order[live].second = -score, k
                    live += 1
            m = min(<Py_ssize_t>self.beam, live)
            if live > m:
                nth_element(self.order.begin(), self.order.begin() + m, self.order.begin() + live)
            sort(self.order.begin(), self.order.begin() + m)
            for i in range(n):
                self.entry_of[self.entries[i].node] = -1
            self.kept.clear()
            for k in range(m):
                s = &self.slots[self.order[k].second]
                if s.node < 0:
                    s.node = prefixes.add(self.entries[s.src].node, s.token, s)
                if s.cnb_frame >= 0:
                    self.chain_parent.push_back(s.cnb)
                    self.chain_frame.push_back(s.cnb_frame)
                    s.cnb, s.cnb_frame = self.chain_parent.size() - 1, -1
                self.kept.push_back(s[0])
            self.entries.swap(self.kept)
            self.entry_of.resize(prefixes.parent.size(), -1)
        return 0


class PrefixBeamSearch(_Search):
    __doc__ = _py.PrefixBeamSearch.__doc__
    num_frames = property(lambda self: self._frames, doc=_py.PrefixBeamSearch.num_frames.__doc__)

    def __init__(self, beam=8, blank=0, nbest=None, top_k=0, prune_logp=-INFINITY, context=None, lm=None,
                 lm_weight=0.5, word_bonus=0.0, word_boundary=None, symbols=None):
        _Search.__init__(self, beam, blank, nbest, top_k, prune_logp, context, lm, lm_weight, word_bonus,
                         word_boundary, symbols)


for _name in ("accept", "best", "finish"):
    getattr(_Search, _name).__doc__ = getattr(_py.PrefixBeamSearch, _name).__doc__


cdef tuple _chain_frames(int link, vector[int]& chain_parent, vector[int]& chain_frame):
    """The frames of the emission chain that ends at ``link``, first to last."""
    cdef list frames = []
    while link >= 0:
        frames.append(chain_frame[link])
        link = chain_parent[link]
    frames.reverse()
    return tuple(frames)


cdef list _finals(vector[Slot]& entries, _Prefixes prefixes, vector[int]& chain_parent,
                  vector[int]& chain_frame, bint has_lm):
    """Per entry, the tuple ctc_py._finish expects."""
    cdef list finals = []
    cdef Py_ssize_t i
    cdef int node
    cdef double lm_score
    for i in range(<Py_ssize_t>entries.size()):
        node = entries[i].node
        frames = _chain_frames(entries[i].cb if entries[i].vb >= entries[i].vnb else entries[i].cnb,
                               chain_parent, chain_frame)
        lm_score, lm_state = prefixes.lm[node], None
        if has_lm:
            lm_score += prefixes.word_delta(node)
            lm_state = prefixes.word_cache[node][1]
        finals.append((prefixes.tokens(node), frames, entries[i].total,
                       prefixes.ctx[node], prefixes.ctx_state[node], lm_score, lm_state))
    return finals
