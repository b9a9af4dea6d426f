"""CTC forced alignment of reference transcripts: word times and confidences, corpus scoring.

``align_words(log_probs, text, tokenizer, frame_s)`` aligns a normalised transcript to a model's
(T, V) CTC log-probs (Viterbi, ``vasr.kernels.ctc_forced_align``) and returns its words with their
times and a confidence each. ``vasr align`` (``align_split``) scores every utterance of a split with
an exported model (or a checkpoint) and stores the scores in the database, where ``vasr clean``
(``vasr.clean``) reads them to flag wrong transcripts.

Cross-fitting (``--folds K``). A model trained on a corpus has learnt its wrong transcripts too: on
the demo corpus with 5% of the training transcripts corrupted, a model trained on them and then asked
to judge them found 79% of the errors (a replaced word: 40%). With ``folds`` the train split is cut
into K folds at random (``fold_assignment``); for each fold a model is trained (``python -m
vasr.train``, ``train_config`` + ``train_overrides``) on split version ``<version>.fold<k>of<K>``, the
train split without that fold (val and test as they are), and it scores that fold only: no utterance
is judged by a model that trained on it. K trainings: the cost of cleaning a corpus this way.

Token runs. The kernel gives the first frame of each token's run in the best alignment. Between the
first frames ``f_i`` and ``f_{i+1}`` of two consecutive tokens the best path is the token for frames
``f_i..k`` and blank for ``k+1..f_{i+1}-1``; the run end ``k`` is the split of that stretch that
maximises the path's score (cumulative sums, so O(T) in all): the Viterbi path's own split, which
the kernel's back-pointers hold but do not return. A token equal to the next one must leave at least
one blank frame; the last token's stretch runs to the last frame. On equal scores the longest run
wins (the kernel also prefers advancing to staying in a state). A word spans from the first frame of
its first letter token to the end of its last letter token's run (+1 frame) x ``frame_s``; a lone
``▁`` token spells nothing and is not timed, as in the recognizer's word times.

Confidence of a word: the mean over its letter tokens of the token's best posterior within its run
(exp of the largest log-prob of that token over the run's frames), the same definition as
``vasr.runtime.recognizer.Word.confidence``. A word the audio does not contain gets a small one.

What ``vasr align`` stores per utterance (``score_utterance``): the CTC log-likelihood of the
reference and the greedy best path's log-probability, per frame; the mean and least word
confidence; the greedy hypothesis and its CER against the reference; characters per second; the
worst word's gap (``Alignment.word_gaps``: how many nats the argmax path beats the aligned one over
the word's frames) and the next worst word's, that word, what the greedy hypothesis says over those
frames and how different the two are; and how many letters the greedy hypothesis has before the first
aligned word or after the last one (speech the transcript leaves out).

This module imports numpy, vasr.kernels and vasr.text at import time only; onnxruntime, sqlalchemy,
tqdm and torch (``--checkpoint``) are imported by the functions that need them.
"""
from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vasr.kernels import WORD_SPACE, ctc_forced_align, ctc_log_likelihood

__all__ = ["WordSpan", "Alignment", "align_words", "align_tokens", "token_runs", "score_utterance",
           "AlignConfig", "UtteranceScore", "align_split", "fold_assignment"]


@dataclass(frozen=True)
class WordSpan:
    word: str
    start_s: float        # seconds: first frame of the word's first letter token (+ offset_s)
    end_s: float          # seconds: one past the last frame of its last letter token's run (+ offset_s)
    confidence: float     # 0..1: mean over its letter tokens of the best posterior within the token's run


def _frames_needed(tokens: Sequence[int]) -> int:
    """Frames a CTC path of ``tokens`` needs: one per token plus a blank between adjacent repeats."""
    return len(tokens) + sum(1 for a, b in zip(tokens, tokens[1:]) if a == b)


def token_runs(log_probs: np.ndarray, tokens: Sequence[int], starts: Sequence[int],
               blank: int = 0) -> list[int]:
    """Per token, one past the last frame of its run in the alignment whose runs begin at ``starts``
    (``ctc_forced_align``'s output): the score-maximising token/blank split of the stretch up to
    the next token's first frame (see the module docstring). log_probs: (T, V) log-softmax."""
    T = len(log_probs)
    ends = []
    for i, (token, first) in enumerate(zip(tokens, starts)):
        limit = starts[i + 1] if i + 1 < len(starts) else T        # the stretch is first..limit-1
        last_ok = limit - 1
        if i + 1 < len(tokens) and tokens[i + 1] == token:
            last_ok = limit - 2                                      # a repeat needs a blank between
        tok = log_probs[first:limit, token].astype(np.float64)
        blk = log_probs[first:limit, blank].astype(np.float64)
        # score(k) = sum tok[0..k] + sum blk[k+1..]: k = 0 .. last_ok - first
        n = last_ok - first + 1
        score = np.cumsum(tok)[:n] + (blk.sum() - np.cumsum(blk)[:n])
        k = n - 1 - int(np.argmax(score[::-1]))                      # ties: the longest run
        ends.append(first + k + 1)
    return ends


@dataclass(frozen=True)
class Alignment:
    """A transcript's forced alignment: token ids, per-token run [start, end) in model frames, the
    words (``WordSpan``) and per word its gap: how many nats the best path (the per-frame argmax)
    beats the aligned path over the word's frames (from the end of the previous word's last run to
    the start of the next word's first; 0 when the model hears exactly that word, tens of nats for a
    word that was not said)."""
    tokens: tuple[int, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    words: tuple[WordSpan, ...]
    word_gaps: tuple[float, ...] = ()
    word_frames: tuple[tuple[int, int], ...] = ()   # per word, the frames [first, end) its gap is taken over


def align_tokens(log_probs: np.ndarray, text: str, tokenizer, frame_s: float, offset_s: float = 0.0) -> Alignment:
    """``align_words`` with the token-level alignment it came from."""
    from vasr.runtime.decode.rescore import word_spans

    try:
        tokens = list(tokenizer.encode(text))
    except ValueError as exc:
        raise ValueError(f"cannot align {text!r}: {exc}") from None
    T = len(log_probs)
    needed = _frames_needed(tokens)
    if T < needed:
        raise ValueError(f"cannot align {text!r}: its {len(tokens)} tokens need at least {needed} model frames "
                         f"({needed * frame_s:.2f} s), the audio gives {T}")
    if not tokens:
        return Alignment((), (), (), ())
    blank = getattr(tokenizer, "blank_id", 0)
    starts = list(ctc_forced_align(log_probs, tokens, blank=blank))
    ends = token_runs(log_probs, tokens, starts, blank)
    symbols = tokenizer.symbols
    words, bounds = [], []
    for word, a, b in word_spans(tokens, symbols):
        letters = [i for i in range(a, b) if symbols[tokens[i]].replace(WORD_SPACE, "")]
        posteriors = [math.exp(float(log_probs[starts[i]:ends[i], tokens[i]].max())) for i in letters]
        words.append(WordSpan(word, round(offset_s + starts[letters[0]] * frame_s, 3),
                              round(offset_s + ends[letters[-1]] * frame_s, 3),
                              round(sum(posteriors) / len(posteriors), 4)))
        bounds.append((starts[letters[0]], ends[letters[-1]]))
    # the aligned path: each token over its run, blank elsewhere; its shortfall against the argmax per word
    label = np.full(T, blank, dtype=np.intp)
    for token, first, end in zip(tokens, starts, ends):
        label[first:end] = token
    shortfall = np.cumsum(np.concatenate([[0.0], (log_probs.max(axis=1) - log_probs[np.arange(T), label])
                                          .astype(np.float64)]))
    gaps, spans = [], []
    for j in range(len(bounds)):
        lo = bounds[j - 1][1] if j else 0
        hi = bounds[j + 1][0] if j + 1 < len(bounds) else T
        gaps.append(round(float(shortfall[hi] - shortfall[lo]), 3))
        spans.append((lo, hi))
    return Alignment(tuple(tokens), tuple(starts), tuple(ends), tuple(words), tuple(gaps), tuple(spans))


def align_words(log_probs: np.ndarray, text: str, tokenizer, frame_s: float, offset_s: float = 0.0) -> list[WordSpan]:
    """The words of normalised ``text`` aligned to ``log_probs`` (float32 (T, V) log-softmax, one row
    per model frame of ``frame_s`` seconds; ``offset_s`` is added to every time). Tokens come from
    ``tokenizer.encode(text)``; words are split as the recognizer splits a hypothesis
    (``vasr.runtime.decode.rescore.word_spans``: a token whose symbol starts with ▁ begins a word).
    Empty text gives []. ValueError when the text cannot be aligned: a character the tokenizer
    cannot spell, or more tokens than the frames can hold."""
    return list(align_tokens(log_probs, text, tokenizer, frame_s, offset_s).words)


# -- scoring a corpus: `vasr align`

@dataclass(frozen=True)
class AlignConfig:
    model_dir: str | None = None        # an exported model directory (vasr export) ...
    checkpoint: str | None = None       # ... or a training checkpoint (needs torch)
    split: str = "train"                # the database split to score
    split_version: str = "default"
    db: str | None = None               # SQLite path or SQLAlchemy URL (default $VASR_DB or data/vasr.db)
    model_file: str = "model.onnx"      # model_dir: which ONNX file (fp32 by default: scores, not speed)
    batch: int = 16                     # utterances per model call (sorted by duration, so little padding)
    threads: int = 1                    # onnxruntime / torch threads
    folds: int = 0                      # >= 2: cross-fitting, instead of a model: a model trained per fold ...
    train_config: str = "tiny"          # ... with this preset or YAML training config ...
    train_overrides: tuple[str, ...] = ()   # ... and these KEY=VALUE overrides (python -m vasr.train) ...
    fold_dir: str = "runs/align-folds"  # ... in fold_dir/run<alignment run>/fold<k>/
    fold_seed: int = 0                  # which utterances go to which fold

    def __post_init__(self) -> None:
        if self.folds:
            if not (isinstance(self.folds, int) and self.folds >= 2):
                raise ValueError(f"folds {self.folds!r}: expected an integer >= 2 (0: score with one model)")
            if self.model_dir is not None or self.checkpoint is not None:
                raise ValueError("--folds trains its own models: give no MODEL_DIR or --checkpoint")
            if self.split != "train":
                raise ValueError(f"--folds scores the train split, not {self.split!r} (no model trains on "
                                 f"{self.split}: score it with MODEL_DIR)")
        elif (self.model_dir is None) == (self.checkpoint is None):
            raise ValueError("give a model directory (MODEL_DIR) or --checkpoint CKPT, not both or neither")
        if not isinstance(self.batch, int) or self.batch < 1:
            raise ValueError(f"batch {self.batch!r}: expected an integer >= 1")
        for item in self.train_overrides:
            key = item.partition("=")[0].strip()
            if "=" not in item or key in ("db", "data.split_version", "out_dir"):
                raise ValueError(f"train override {item!r}: expected KEY=VALUE, not db, data.split_version or "
                                 f"out_dir (--folds sets them)")

    @property
    def model(self) -> str:
        if self.folds:
            return f"{self.folds}-fold cross-fitting ({self.train_config})"
        return str(self.model_dir if self.model_dir is not None else self.checkpoint)


@dataclass(frozen=True)
class UtteranceScore:
    """One utterance's alignment scores (``error`` set and the scores None when it could not be aligned)."""
    audio_id: int | None
    frames: int | None = None
    log_likelihood: float | None = None    # CTC log P(reference | audio) / frames, nats
    best_path: float | None = None         # log-prob of the greedy best path / frames, nats
    mean_confidence: float | None = None   # mean of the word confidences, 0..1
    min_confidence: float | None = None    # the least confident word
    word_gap: float | None = None          # the largest word gap (``Alignment.word_gaps``), nats
    next_word_gap: float | None = None     # the second largest (0.0 for a one-word transcript)
    worst_word: str | None = None          # the reference word of that gap ...
    worst_heard: str | None = None         # ... what the greedy hypothesis says over its frames ...
    word_mismatch: float | None = None     # ... and their letter edit distance / the longer one's letters, 0..1
    outside_letters: int | None = None     # letters of the greedy hypothesis before the first word / after the last
    greedy_cer: float | None = None        # CER of the greedy hypothesis against the reference
    chars_per_s: float | None = None       # reference characters (spaces excluded) per second
    hypothesis: str | None = None
    words: tuple[WordSpan, ...] = ()
    error: str | None = None


def score_utterance(log_probs: np.ndarray, text: str, tokenizer, frame_s: float, duration_s: float,
                    audio_id: int | None = None) -> UtteranceScore:
    """The alignment scores of one utterance: its (T, V) log-probs against normalised ``text``;
    an utterance that cannot be aligned comes back with ``error`` (its greedy hypothesis kept)."""
    from vasr.kernels import ctc_greedy_search, edit_distance, tokens_to_text

    T = len(log_probs)
    hyp = ctc_greedy_search(log_probs, blank=getattr(tokenizer, "blank_id", 0), symbols=tokenizer.symbols)
    ref = text.strip()
    cer = edit_distance(ref, hyp.text.strip()) / max(1, len(ref))
    chars = len(ref.replace(" ", ""))
    base = dict(audio_id=audio_id, frames=T, hypothesis=hyp.text, greedy_cer=round(cer, 4),
                chars_per_s=round(chars / duration_s, 3) if duration_s > 0 else None,
                best_path=round(hyp.acoustic / T, 4) if T else None)
    if not ref:
        return UtteranceScore(**base, error="empty transcript")
    try:
        alignment = align_tokens(log_probs, ref, tokenizer, frame_s)
    except ValueError as exc:
        return UtteranceScore(**base, error=str(exc))
    ll = ctc_log_likelihood(log_probs, list(alignment.tokens), blank=getattr(tokenizer, "blank_id", 0))
    confidences = [w.confidence for w in alignment.words]
    worst = max(range(len(alignment.word_gaps)), key=alignment.word_gaps.__getitem__)
    lo, hi = alignment.word_frames[worst]
    heard = tokens_to_text([t for t, f in zip(hyp.tokens, hyp.frames) if lo <= f < hi], tokenizer.symbols)
    word, heard, letters = alignment.words[worst].word, heard.strip(), heard.replace(" ", "")
    mismatch = edit_distance(word, letters) / max(len(word), len(letters), 1)
    first, end = round(alignment.words[0].start_s / frame_s), round(alignment.words[-1].end_s / frame_s)
    outside = sum(len(tokenizer.symbols[t].replace(WORD_SPACE, "")) for t, f in zip(hyp.tokens, hyp.frames)
                  if f < first or f >= end)
    return UtteranceScore(**base, log_likelihood=round(ll / T, 4),
                          mean_confidence=round(sum(confidences) / len(confidences), 4),
                          min_confidence=min(confidences), word_gap=alignment.word_gaps[worst],
                          next_word_gap=max((g for i, g in enumerate(alignment.word_gaps) if i != worst), default=0.0),
                          worst_word=word,
                          worst_heard=heard, word_mismatch=round(mismatch, 3), outside_letters=outside,
                          words=alignment.words)


class _OnnxModel:
    """An exported directory through onnxruntime (``vasr.runtime.recognizer.Recognizer``)."""

    def __init__(self, config: AlignConfig):
        from vasr.runtime.recognizer import Recognizer, RecognizerOptions

        recognizer = Recognizer(config.model_dir, RecognizerOptions(model_file=config.model_file,
                                                                    threads=config.threads, raw=True))
        if recognizer.tokenizer is None:
            raise ValueError(f"{config.model_dir}: no tokenizer.json (a directory written by vasr export has one): "
                             f"cannot spell the transcripts")
        self.tokenizer, self.frame_s, self.log_probs = recognizer.tokenizer, recognizer.frame_s, recognizer.log_probs


class _CheckpointModel:
    """A training checkpoint through torch (``vasr.checkpoint.load_checkpoint``)."""

    def __init__(self, config: AlignConfig):
        import torch

        from vasr.checkpoint import load_checkpoint
        from vasr.kernels import FbankOptions

        self._torch = torch
        torch.set_num_threads(config.threads)
        loaded = load_checkpoint(config.checkpoint)
        self.model, self.tokenizer = loaded.model, loaded.tokenizer
        self.fbank = FbankOptions()           # the runtime's features; training's dither is not for scoring
        self.frame_s = self.fbank.frame_shift_ms / 1000 * SUBSAMPLING

    def log_probs(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        from vasr.kernels import compute_fbank_batch
        from vasr.runtime.recognizer import PAD_VALUE

        feats = compute_fbank_batch(list(waves), self.fbank)
        lens = np.array([len(f) for f in feats], dtype=np.int64)
        x = np.full((len(feats), max(1, int(lens.max())), self.fbank.num_bins), PAD_VALUE, dtype=np.float32)
        for i, f in enumerate(feats):
            x[i, : len(f)] = f
        with self._torch.no_grad():
            lp, out = self.model(self._torch.from_numpy(x), self._torch.from_numpy(lens))
        lp = lp.numpy()
        return [lp[i, : int(out[i])] for i in range(len(feats))]


SUBSAMPLING = 4          # vasr's models: conv2d subsampling x4 (vasr.model)
MIN_AUDIO_S = 0.07       # shorter audio gives fewer than 7 fbank frames, which the model cannot take


def fold_assignment(audio_ids: Sequence[int], folds: int, seed: int = 0) -> dict[int, int]:
    """Audio id -> fold (0..folds-1): the ids shuffled with ``seed`` and dealt round, so the folds
    differ in size by at most one and the same ids always get the same folds."""
    order = sorted(set(audio_ids))
    random.Random(seed).shuffle(order)
    return {audio_id: i % folds for i, audio_id in enumerate(order)}


def align_split(config: AlignConfig, engine=None, progress: bool | None = None) -> AlignReport:
    """Score every utterance of ``config``'s split and store the scores as a new alignment run
    (``alignment_runs`` / ``alignment_scores`` / ``alignment_words``). Utterances whose audio cannot
    be read or whose transcript cannot be aligned are stored with their ``error``. With ``folds`` each
    fold is scored by a model trained on the others (the module's docstring). ``engine``: an open
    database (default: ``config.db``); ``progress``: tqdm's ``disable`` inverted (None: on a terminal
    only)."""
    from vasr.data.utterance import DataSource
    from vasr.db import runs as db_runs, store

    model = None if config.folds else _CheckpointModel(config) if config.checkpoint else _OnnxModel(config)
    own = engine is None
    engine = store.connect(config.db) if own else engine
    try:
        source = DataSource(config.split, config.split_version)
        with engine.connect() as conn:
            utterances = db_runs.split_records(conn, source.split, source.version)
        if not utterances:
            raise ValueError(f"{source.describe()} has no utterances (vasr db stats lists the splits)")
        if config.folds and len(utterances) < 2 * config.folds:
            raise ValueError(f"--folds {config.folds}: {source.describe()} has only {len(utterances)} utterances")
        run_id = _create_run(engine, config)
        if config.folds:
            scores = []
            for k, fold_model, fold in _fold_models(config, engine, utterances, run_id):
                scores += _score(engine, run_id, fold_model, fold, config, progress,
                                 f"align fold {k + 1}/{config.folds}")
        else:
            scores = _score(engine, run_id, model, utterances, config, progress, "align")
        failed = sum(s.error is not None for s in scores)
        _finish_run(engine, run_id, len(scores), failed)
        return AlignReport(run_id, config.model, config.split, config.split_version, len(scores), failed,
                           [s for s in scores if s.error][:5])
    finally:
        if own:
            engine.dispose()


def _fold_models(config: AlignConfig, engine, utterances, run_id: int):
    """For each fold k: (k, a model trained without it, its utterances). Each model is trained in its
    own process on split version ``<version>.fold<k>of<K>`` into fold_dir/run<run_id>/fold<k>/."""
    import dataclasses
    import os
    import subprocess
    import sys
    from pathlib import Path

    from vasr.clean import write_version

    assignment = fold_assignment([u.audio_id for u in utterances], config.folds, config.fold_seed)
    url = engine.url.render_as_string(hide_password=False)
    for k in range(config.folds):
        held_out = {a for a, f in assignment.items() if f == k}
        version = f"{config.split_version}.fold{k + 1}of{config.folds}"
        with engine.begin() as conn:
            write_version(conn, config.split_version, version, config.split, held_out)
        out = Path(config.fold_dir) / f"run{run_id}" / f"fold{k + 1}"
        out.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "vasr.train", "--config", config.train_config,
                   f"name=align-fold{k + 1}of{config.folds}", *config.train_overrides,
                   f"data.split_version={version}", f"out_dir={out}"]
        print(f"fold {k + 1}/{config.folds}: training on split version {version!r} "
              f"({len(utterances) - len(held_out)} utterances) into {out}", file=sys.stderr, flush=True)
        engine.dispose()       # no connection of this process stays open beside the trainer's (SQLite's WAL)
        done = subprocess.run(command, env={**os.environ, "VASR_DB": url})
        if done.returncode != 0:
            raise RuntimeError(f"fold {k + 1}/{config.folds}: python -m vasr.train exited {done.returncode} "
                               f"(its error is above)")
        runs = [d for d in out.iterdir() if (d / "last.pt").exists()]
        if len(runs) != 1:
            raise RuntimeError(f"fold {k + 1}/{config.folds}: expected one training run under {out}, found {len(runs)}")
        best = runs[0] / "best.pt" if (runs[0] / "best.pt").exists() else runs[0] / "last.pt"   # no val: the last
        model = _CheckpointModel(dataclasses.replace(config, folds=0, checkpoint=str(best)))
        yield k, model, [u for u in utterances if u.audio_id in held_out]


def _score(engine, run_id: int, model, utterances, config: AlignConfig, progress: bool | None,
           desc: str) -> list[UtteranceScore]:
    """Score ``utterances`` with ``model`` in batches of similar duration, each batch stored as it is done."""
    from tqdm import tqdm

    from vasr.runtime.audio import AudioError, load

    order = sorted(utterances, key=lambda u: (u.duration_s or 0.0, u.audio_id))
    scores: list[UtteranceScore] = []
    bar = tqdm(total=len(order), desc=desc, unit="utt", disable=None if progress is None else not progress)
    for i in range(0, len(order), config.batch):
        group = order[i: i + config.batch]
        waves, ready, batch_scores = [], [], {}
        for u in group:
            try:
                wave = load(u.path, u.start_s, u.end_s)
            except (AudioError, OSError, ValueError) as exc:
                batch_scores[u.audio_id] = UtteranceScore(u.audio_id, error=f"audio: {exc}")
                continue
            if wave.size < MIN_AUDIO_S * 16000:
                batch_scores[u.audio_id] = UtteranceScore(u.audio_id,
                                                          error=f"audio: too short ({wave.size} samples)")
                continue
            waves.append(wave)
            ready.append(u)
        if waves:
            for u, wave, lp in zip(ready, waves, model.log_probs(waves)):
                batch_scores[u.audio_id] = score_utterance(lp, u.text or "", model.tokenizer, model.frame_s,
                                                           wave.size / 16000, u.audio_id)
        batch = [batch_scores[u.audio_id] for u in group]
        _write_scores(engine, run_id, batch)
        scores.extend(batch)
        bar.update(len(group))
    bar.close()
    return scores


@dataclass(frozen=True)
class AlignReport:
    run_id: int
    model: str
    split: str
    split_version: str
    utterances: int
    failed: int
    examples: list[UtteranceScore]    # the first few that could not be aligned

    def format(self) -> str:
        lines = [f"alignment run {self.run_id}: {self.utterances} utterances of split {self.split!r} "
                 f"(version {self.split_version!r}) scored with {self.model}; {self.failed} could not be aligned"]
        lines += [f"  audio {s.audio_id}: {s.error}" for s in self.examples]
        return "\n".join(lines)


def _create_run(engine, config: AlignConfig) -> int:
    import dataclasses
    from pathlib import Path

    from sqlalchemy import insert, or_, select

    from vasr.db.schema import alignment_runs, check_lengths, models

    check_lengths(alignment_runs, {"split": config.split, "split_version": config.split_version}, "alignment run")
    with engine.begin() as conn:
        if config.folds:                   # K models trained for this run: none of them is registered under one id
            where, model_id = config.model, None
        else:
            where = Path(config.model).resolve()
            paths = [str(where), str(where / config.model_file)]
            model_id = conn.execute(select(models.c.id).where(or_(models.c.onnx_path.in_(paths),
                                                                  models.c.checkpoint_path.in_(paths)))
                                    .order_by(models.c.id.desc())).scalars().first()
        return conn.execute(insert(alignment_runs).values(
            model=str(where), model_id=model_id, split=config.split, split_version=config.split_version,
            config={k: v for k, v in dataclasses.asdict(config).items() if k != "db"})).inserted_primary_key[0]


def _write_scores(engine, run_id: int, scores: Sequence[UtteranceScore]) -> None:
    from sqlalchemy import insert, select

    from vasr.db.schema import alignment_scores, alignment_words

    fields = ("frames", "log_likelihood", "best_path", "mean_confidence", "min_confidence", "word_gap",
              "next_word_gap", "worst_word",
              "worst_heard", "word_mismatch", "outside_letters", "greedy_cer",
              "chars_per_s", "hypothesis", "error")
    with engine.begin() as conn:
        conn.execute(insert(alignment_scores), [
            {"run_id": run_id, "audio_id": s.audio_id, **{f: getattr(s, f) for f in fields}} for s in scores])
        ids = dict(conn.execute(select(alignment_scores.c.audio_id, alignment_scores.c.id).where(
            alignment_scores.c.run_id == run_id, alignment_scores.c.audio_id.in_([s.audio_id for s in scores]))).all())
        words = [{"score_id": ids[s.audio_id], "position": i, "word": w.word, "start_s": w.start_s,
                  "end_s": w.end_s, "confidence": w.confidence} for s in scores for i, w in enumerate(s.words)]
        if words:
            conn.execute(insert(alignment_words), words)


def _finish_run(engine, run_id: int, utterances: int, failed: int) -> None:
    import datetime as dt

    from sqlalchemy import update

    from vasr.db.schema import alignment_runs

    with engine.begin() as conn:
        conn.execute(update(alignment_runs).where(alignment_runs.c.id == run_id).values(
            utterances=utterances, failed=failed, finished_at=dt.datetime.now(dt.timezone.utc)))
