"""Flag likely-wrong transcripts from alignment scores: ``vasr clean --split train [--write-version NAME]``.

``vasr align`` (``vasr.align``) stores per utterance the CTC log-likelihood of its reference per
frame, the best path's log-probability per frame, word confidences, the greedy hypothesis's CER
against the reference and the speaking rate. A wrong transcript stands out against the utterances
of the same voice: a model that is weak on one speaker is weak on all of them, so each score is
compared with its group's median in units of the group's MAD (a robust z-score; the group is the
speaker when the split has at least ``min_group`` scored utterances of them, else the whole split),
and an utterance is flagged only when it is an outlier *and* past an absolute floor (so a group
without spread, where a model transcribes every utterance perfectly, does not flag its slightest
deviation). The reasons, each configurable in ``CleanConfig``:

* ``unaligned``: the transcript could not be aligned: the audio could not be read or is too short for
  the model, the transcript is empty, or it does not fit the audio's frames (more letters than a CTC
  path of the model's frame rate can hold) and its speaking rate is unusual for the voice (robust z
  above ``unaligned_rate_z``). A voice that speaks fast has clean transcripts that do not fit: on the
  demo corpus cross-fitted (2 folds, seed 0), 19 transcripts did not fit; the 7 right ones were all
  the fastest voice's, at rate z 0.9-1.2 within it, the 12 swapped ones at 2.5-32. Flagging every
  transcript that did not fit gave 7 of the 9 false flags. A transcript under the rate bound (or one
  with a character the model cannot spell) is judged by the other rules on what the model heard;
* ``cer``: the greedy hypothesis differs from the reference far more than usual (a swapped or
  truncated transcript, or one with words that were not said); the CER of a short transcript varies
  more, so its z is divided by sqrt(the group's median letters / its letters) when it is shorter than
  the median (on the demo corpus this kept 3-5-syllable utterances a cross-fitted model mishears from
  being flagged: precision 0.875 -> 0.921 at the same recall);
* ``likelihood`` (off by default): the reference is much less likely than the model's own best path
  (per frame, the log-likelihood of the reference minus the best path's log-probability: 0 when they
  agree). On the demo corpus it found 2-3 more replaced words in 40 on the split the model was trained
  on, and cost precision (0.92 -> 0.79) on voices it was not trained on: ``--set gap_z=15`` turns it on;
* ``word``: one word the model hears as something else: over the frames of the reference's worst
  word the model's best path beats the aligned path by far more nats than over its next worst word
  (the contrast: ``vasr.align.Alignment.word_gaps``, the largest minus the second largest), far more
  than the group's contrasts, and the greedy hypothesis over those frames shares few of its letters
  (``word_mismatch``: a model that mishears a word usually gets some of them; a word replaced by
  another has none of the audio's): a word that was not said. The contrast, because a voice the
  model hears badly has every word's gap large, while a replaced word stands out of its own
  transcript. Or, when the transcript has a second bad word, the worst word's gap itself is far
  above the group's (``word_gap_*``, stricter). On the demo corpus cross-fitted (2 folds, 5% of
  the transcripts corrupted, two draws) the gap alone found 26 and 24 of 40 replaced words, both
  together 33 and 30 (at precision 0.95 and 0.93 over all kinds);
  the text has its say in both (``text_weight``): the worst word's gap and contrast get
  ``text_evidence`` added, how much better what the model heard there fits the transcript than
  the written word does under an n-gram model of the split's other transcripts (nats, the same unit
  as the gaps: together, how much more likely the heard word is than the written one given the
  audio and the sentence). A replaced word is one the sentence did not have, and the model hears
  the one it had; a word the model mishears comes out as letters the other transcripts never put
  there. Cross-fitted on the demo corpus (seed 0, the draw it was chosen on), the text raised the
  replaced words found from 29 to 32 of 40 and dropped 8 of 16 false flags (precision 0.871 ->
  0.932 at recall 0.900 -> 0.917; weight 0.5: 0.910 / 0.925, 2: 0.915 / 0.892); on a draw it
  was not chosen on (seed 4) 0.873 -> 0.929 at recall 0.858 -> 0.867 (replaced 25 -> 27 of 40);
* ``untranscribed``: the greedy hypothesis has ``outside_letters`` letters or more before the first
  aligned word's first frame or after the last one's end (speech the transcript leaves out at an end:
  a truncated transcript; cross-fitted, 6 of the 2,281 right transcripts of the demo corpus's train
  split had 2, short ones the fold model misheard; 3 would have dropped them on that draw (seed 0,
  precision 0.932 -> 0.982) and cost a truncated and a replaced one on the next (seed 4, recall
  0.867 -> 0.850): it stays 2);
* ``length``: the greedy hypothesis has far more letters than the reference (``length_ratio``
  times: speech the transcript leaves out, a truncated transcript; 0 turns it off);
* ``rate``: characters per second of speech far from the group's (a truncated transcript reads slow).

With ``write_version`` a new split version is written: the source version minus the flagged
utterances of this split (the other splits copied unless the new version has them already, so that
cleaning train, then val, into one version composes), non-destructive and idempotent.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CleanConfig", "Scored", "Flag", "CleanReport", "TextModel", "text_evidence", "load_scores", "flag", "clean"]

MAD_TO_SIGMA = 1.4826   # MAD x this estimates the standard deviation of normally distributed scores


@dataclass(frozen=True)
class CleanConfig:
    split: str = "train"                 # the split whose alignment scores are judged
    split_version: str = "default"       # the split version they were aligned in (and that is cleaned)
    run: int | None = None               # the alignment run (None: the newest finished one of the split)
    write_version: str | None = None     # write the split version minus the flagged utterances under this name
    db: str | None = None                # SQLite path or SQLAlchemy URL (default $VASR_DB or data/vasr.db)
    min_group: int = 20                  # a speaker with fewer scored utterances is judged against the whole split
    flag_unaligned: bool = True          # flag utterances that could not be aligned ...
    unaligned_rate_z: float = 2.0        # ... where the model heard them, only when their rate's robust z is above this
    cer_z: float = 5.0                   # cer: robust z above the group's median ...
    cer_floor: float = 0.25              # ... and the greedy CER above this
    cer_mad_floor: float = 0.03          # smallest CER spread (MAD) a group is credited with
    gap_z: float = 0.0                   # likelihood (0: off): robust z below the group's median ...
    gap_floor: float = 0.25              # ... and the reference this many nats per frame below the best path
    gap_mad_floor: float = 0.02          # smallest spread (MAD) of that gap, nats per frame
    word_z: float = 2.0                  # word: robust z of the worst word's contrast above the group's median ...
    word_floor: float = 18.0             # ... and that contrast above this many nats ...
    word_mismatch: float = 0.75          # ... and what the model hears there this different from the word, 0..1
    word_gap_z: float = 4.0              # ... or: robust z of the worst word's gap itself above the group's median ...
    word_gap_floor: float = 24.0         # ... and that gap above this many nats ...
    word_gap_mismatch: float = 0.9       # ... and what the model hears there this different, 0..1
    word_mad_floor: float = 5.0          # smallest spread (MAD) of the worst word's contrast and gap, nats
    text_weight: float = 1.0             # the text's say in the worst word's gap: x log P(heard) / P(written), nats (0: off)
    text_order: int = 3                  # n-gram order of that text model (the split's own transcripts)
    length_ratio: float = 1.3            # length: the greedy hypothesis has this many times the reference's letters
    outside_letters: int = 2             # untranscribed: letters heard before/after the aligned words (0: off)
    rate_z: float = 6.0                  # rate: |robust z| of characters per second above this ...
    rate_mad_floor: float = 0.5          # smallest spread (MAD) of the rate, characters per second
    show: int = 50                       # flagged utterances printed (0: all)

    def __post_init__(self) -> None:
        for name in ("cer_z", "word_z", "word_gap_z", "rate_z", "cer_mad_floor", "gap_mad_floor", "word_mad_floor",
                     "rate_mad_floor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} {getattr(self, name)!r}: expected a number > 0")
        if not (isinstance(self.outside_letters, int) and self.outside_letters >= 0):
            raise ValueError(f"outside_letters {self.outside_letters!r}: expected an integer >= 0 (0: the rule is off)")
        if not self.length_ratio >= 0:
            raise ValueError(f"length_ratio {self.length_ratio!r}: expected a number >= 0 (0: the rule is off)")
        if not self.text_weight >= 0:
            raise ValueError(f"text_weight {self.text_weight!r}: expected a number >= 0 (0: the text is not heard)")
        if not (isinstance(self.text_order, int) and self.text_order >= 1):
            raise ValueError(f"text_order {self.text_order!r}: expected an integer >= 1")
        if not self.gap_z >= 0:
            raise ValueError(f"gap_z {self.gap_z!r}: expected a number >= 0 (0: the rule is off)")
        if not self.unaligned_rate_z >= 0:
            raise ValueError(f"unaligned_rate_z {self.unaligned_rate_z!r}: expected a number >= 0")
        if self.min_group < 2:
            raise ValueError(f"min_group {self.min_group!r}: expected an integer >= 2")
        if self.write_version is not None and self.write_version == self.split_version:
            raise ValueError(f"--write-version {self.write_version!r} is the version being cleaned: "
                             f"give a new name (the source version is never changed)")


@dataclass(frozen=True)
class Scored:
    """One utterance's row of an alignment run, with what the table shows about it."""
    audio_id: int
    path: str
    speaker: str | None
    text: str
    hypothesis: str | None
    log_likelihood: float | None
    best_path: float | None
    mean_confidence: float | None
    min_confidence: float | None
    word_gap: float | None
    next_word_gap: float | None
    worst_word: str | None
    worst_heard: str | None
    word_mismatch: float | None
    outside_letters: int | None
    greedy_cer: float | None
    chars_per_s: float | None
    error: str | None

    @property
    def gap(self) -> float | None:
        """Reference log-likelihood minus the best path's log-probability, nats per frame (<= ~0)."""
        if self.log_likelihood is None or self.best_path is None:
            return None
        return self.log_likelihood - self.best_path

    @property
    def word_contrast(self) -> float | None:
        """How many nats the worst word's gap exceeds the next worst word's (an alignment run from before
        vasr stored the next one: the gap itself)."""
        if self.word_gap is None:
            return None
        return self.word_gap - (self.next_word_gap or 0.0)


@dataclass(frozen=True)
class Flag:
    utterance: Scored
    reasons: tuple[str, ...]             # e.g. ("cer z=9.1", "rate z=-5.3")


class TextModel:
    """An n-gram model of the split's own transcripts (interpolated absolute discounting, discount
    0.75, down to a uniform distribution over the words seen plus one unknown) that scores a
    transcript with its own counts left out (``leave_out``): a word that only its own transcript
    has is as unlikely as an unseen one. KenLM (``vasr lm build``) cannot leave a sentence out, and a
    transcript scored by a model that holds it fits itself."""

    def __init__(self, sentences: Sequence[str], order: int = 3, discount: float = 0.75):
        self.order, self.discount = order, discount
        self.counts: Counter[tuple[str, ...]] = Counter()     # n-grams of 1..order words (with <s>, </s>)
        for sentence in sentences:
            self.counts.update(self._grams(sentence.split()))
        self.total: Counter[tuple[str, ...]] = Counter()      # per history, its n-grams' count ...
        self.types: Counter[tuple[str, ...]] = Counter()      # ... and how many distinct words follow it
        for gram, c in self.counts.items():
            self.total[gram[:-1]] += c
            self.types[gram[:-1]] += 1
        self.vocabulary = self.types[()] + 1

    def _grams(self, words: Sequence[str]) -> Counter[tuple[str, ...]]:
        seq = ["<s>"] * (self.order - 1) + list(words) + ["</s>"]
        return Counter(tuple(seq[i - n + 1:i + 1]) for i in range(self.order - 1, len(seq))
                       for n in range(1, self.order + 1))

    def logprob(self, words: Sequence[str], leave_out: str | None = None) -> float:
        """Natural log-probability of ``words`` (and the sentence end), without ``leave_out``'s counts."""
        own = self._grams(leave_out.split()) if leave_out is not None else Counter()
        own_total: Counter[tuple[str, ...]] = Counter()
        own_types: Counter[tuple[str, ...]] = Counter()       # continuations only ``leave_out`` has
        for gram, c in own.items():
            own_total[gram[:-1]] += c
            own_types[gram[:-1]] += self.counts[gram] == c
        seq = ["<s>"] * (self.order - 1) + list(words) + ["</s>"]
        log_p = 0.0
        for i in range(self.order - 1, len(seq)):
            p = 1.0 / self.vocabulary
            for n in range(1, self.order + 1):
                history, gram = tuple(seq[i - n + 1:i]), tuple(seq[i - n + 1:i + 1])
                total = self.total[history] - own_total[history]
                if total > 0:
                    c = self.counts[gram] - own[gram]
                    p = (max(c - self.discount, 0.0) + self.discount * (self.types[history] - own_types[history]) * p) / total
            log_p += math.log(p)
        return log_p


def text_evidence(rows: Sequence[Scored], order: int = 3) -> dict[int, float]:
    """Per utterance (audio id), how much better what the model heard over its worst word fits the
    transcript than the written word does: log P(the transcript with the heard words in its place)
    - log P(the transcript), nats, under a ``TextModel`` of ``rows``' transcripts (each left out of
    its own score). A word that was not said is a random one in a sentence that had another: on the
    demo corpus's train split with one word replaced in 40 transcripts (three draws), the original
    transcript was the likelier by a median of 7.5 nats (trigram; 7.2 bigram). A word the model
    mishears comes out as letters that make no word: the written one fits far better. (An alignment
    run from before vasr kept the spaces of ``worst_heard`` gives the heard words as one: an unseen
    word, so there the text counts for the written word unless one word was heard.)"""
    scored = [r for r in rows if r.error is None and r.worst_word is not None]
    model = TextModel([r.text for r in rows if r.text], order)
    out = {}
    for r in scored:
        words = r.text.split()
        if r.worst_word not in words:
            continue
        i = words.index(r.worst_word)
        heard = words[:i] + (r.worst_heard or "").split() + words[i + 1:]
        out[r.audio_id] = model.logprob(heard, r.text) - model.logprob(words, r.text)
    return out


def _median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


class _Robust:
    """Median and MAD-based spread of one score per group (speaker or the whole split)."""

    def __init__(self, rows: Sequence[Scored], value, group, mad_floor: float):
        self.value, self.group, self.mad_floor = value, group, mad_floor
        by: dict[object, list[float]] = defaultdict(list)
        for r in rows:
            v = value(r)
            if v is not None:
                by[group(r)].append(v)
        self.stats = {}
        for g, vs in by.items():
            med = _median(vs)
            self.stats[g] = (med, max(MAD_TO_SIGMA * _median([abs(v - med) for v in vs]), mad_floor))

    def z(self, row: Scored) -> float | None:
        v = self.value(row)
        if v is None or self.group(row) not in self.stats:       # a group of unaligned utterances only
            return None
        med, spread = self.stats[self.group(row)]
        return (v - med) / spread


def flag(rows: Sequence[Scored], config: CleanConfig = CleanConfig()) -> list[Flag]:
    """The utterances of ``rows`` (one alignment run) that ``config``'s rules flag, in input order."""
    counts: dict[str | None, int] = defaultdict(int)
    for r in rows:
        if r.error is None:
            counts[r.speaker] += 1

    def group(r: Scored) -> object:
        return r.speaker if r.speaker is not None and counts[r.speaker] >= config.min_group else None

    scored = [r for r in rows if r.error is None]
    cer = _Robust(scored, lambda r: r.greedy_cer, group, config.cer_mad_floor)
    gap = _Robust(scored, lambda r: r.gap, group, config.gap_mad_floor)
    text = text_evidence(rows, config.text_order) if config.text_weight else {}

    def said(r: Scored, value: float | None) -> float | None:       # a worst word's score, the text's say added
        return None if value is None else value + config.text_weight * text.get(r.audio_id, 0.0)

    word = _Robust(scored, lambda r: said(r, r.word_contrast), group, config.word_mad_floor)
    worst = _Robust(scored, lambda r: said(r, r.word_gap), group, config.word_mad_floor)
    rate = _Robust(scored, lambda r: r.chars_per_s, group, config.rate_mad_floor)
    letters = {g: med for g, (med, _) in _Robust(scored, lambda r: _letters(r.text), group, 1.0).stats.items()}
    flags = []
    for r in rows:
        reasons = []          # an unaligned transcript has no alignment scores: those rules below see None
        if r.error is not None:
            z = rate.z(r)
            if r.hypothesis is None or not r.text or z is None:         # nothing the model heard to judge by
                if config.flag_unaligned:
                    flags.append(Flag(r, (f"unaligned: {r.error}",)))
                continue
            if config.flag_unaligned and z > config.unaligned_rate_z:
                reasons.append(f"unaligned: {r.error} (rate z={z:.1f})")
        z = cer.z(r)
        if z is not None:     # the CER of a short transcript varies more: its spread scaled by sqrt(median / letters)
            z /= math.sqrt(max(1.0, letters[group(r)] / max(1, _letters(r.text))))
        if z is not None and z > config.cer_z and r.greedy_cer > config.cer_floor:
            reasons.append(f"cer z={z:.1f}")
        z = gap.z(r)
        if config.gap_z and z is not None and z < -config.gap_z and r.gap < -config.gap_floor:
            reasons.append(f"likelihood z={z:.1f}")
        z, z_gap = word.z(r), worst.z(r)
        mismatch = 1.0 if r.word_mismatch is None else r.word_mismatch
        from_text = f", {config.text_weight * text[r.audio_id]:+.0f} from the text" if r.audio_id in text else ""
        if (z is not None and z > config.word_z and said(r, r.word_contrast) > config.word_floor
                and mismatch >= config.word_mismatch):
            reasons.append(f"word z={z:.1f} ({r.worst_word!r} heard as {r.worst_heard!r}, "
                           f"{said(r, r.word_contrast):.0f} nats past the next worst word{from_text})")
        elif (z_gap is not None and z_gap > config.word_gap_z and said(r, r.word_gap) > config.word_gap_floor
              and mismatch >= config.word_gap_mismatch):
            reasons.append(f"word gap z={z_gap:.1f} ({r.worst_word!r} heard as {r.worst_heard!r}, "
                           f"{said(r, r.word_gap):.0f} nats{from_text})")
        if config.outside_letters and (r.outside_letters or 0) >= config.outside_letters:
            reasons.append(f"untranscribed: {r.outside_letters} letters heard outside the transcript")
        ratio = _letters(r.hypothesis) / max(1, _letters(r.text))
        if config.length_ratio and ratio > config.length_ratio:
            reasons.append(f"length x{ratio:.2f}")
        z = rate.z(r)
        if z is not None and abs(z) > config.rate_z:
            reasons.append(f"rate z={z:.1f}")
        if reasons:
            flags.append(Flag(r, tuple(reasons)))
    return flags


def _letters(text: str | None) -> int:
    return len((text or "").replace(" ", ""))


def newest_run(conn, split: str, version: str) -> int:
    """The newest finished alignment run of ``split`` in ``version``; ValueError when there is none."""
    from sqlalchemy import select

    from vasr.db.schema import alignment_runs

    run = conn.execute(select(alignment_runs.c.id).where(
        alignment_runs.c.split == split, alignment_runs.c.split_version == version,
        alignment_runs.c.finished_at.is_not(None)).order_by(alignment_runs.c.id.desc())).scalars().first()
    if run is None:
        raise ValueError(f"no finished alignment run of split {split!r} (version {version!r}): "
                         f"run `vasr align MODEL_DIR --split {split}` first")
    return run


def _check_run(conn, run: int, config: CleanConfig) -> None:
    from sqlalchemy import select

    from vasr.db.schema import alignment_runs

    row = conn.execute(select(alignment_runs).where(alignment_runs.c.id == run)).first()
    if row is None:
        raise ValueError(f"no alignment run {run} (vasr align writes them)")
    if (row.split, row.split_version) != (config.split, config.split_version):
        raise ValueError(f"alignment run {run} scored split {row.split!r} of version {row.split_version!r}, "
                         f"not {config.split!r} of {config.split_version!r}")
    if row.finished_at is None:
        raise ValueError(f"alignment run {run} did not finish (interrupted?): align again")


def load_scores(conn, run: int) -> list[Scored]:
    """The utterances of alignment run ``run`` with their current transcript, by audio id."""
    from sqlalchemy import select

    from vasr.db.schema import alignment_runs, alignment_scores, audio_files, transcripts

    if conn.execute(select(alignment_runs.c.id).where(alignment_runs.c.id == run)).scalar() is None:
        raise ValueError(f"no alignment run {run} (vasr align writes them)")
    s = alignment_scores.c
    rows = conn.execute(
        select(s.audio_id, audio_files.c.path, audio_files.c.speaker, transcripts.c.normalized_text, s.hypothesis,
               s.log_likelihood, s.best_path, s.mean_confidence, s.min_confidence, s.word_gap, s.next_word_gap,
               s.worst_word,
               s.worst_heard, s.word_mismatch, s.outside_letters, s.greedy_cer,
               s.chars_per_s,
               s.error)
        .join(audio_files, audio_files.c.id == s.audio_id)
        .join(transcripts, transcripts.c.audio_id == s.audio_id)
        .where(s.run_id == run).order_by(s.audio_id)).all()
    return [Scored(*r) for r in rows]


@dataclass(frozen=True)
class CleanReport:
    run: int
    split: str
    split_version: str
    scored: int
    flags: list[Flag]
    write_version: str | None = None
    kept: int | None = None              # utterances of the split in the written version
    show: int = 50

    def format(self) -> str:
        lines = [f"alignment run {self.run}: {len(self.flags)} of {self.scored} utterances of split {self.split!r} "
                 f"(version {self.split_version!r}) flagged"]
        shown = self.flags if not self.show else self.flags[: self.show]
        if shown:
            lines.append(f"{'audio':>7}  {'ll/fr':>6} {'gap':>6} {'minc':>5} {'wgap':>5} {'cer':>5} {'ch/s':>5}  "
                         f"reason / path / "
                         f"transcript / greedy hypothesis")
        for f in shown:
            u = f.utterance
            lines.append(f"{u.audio_id:>7}  {_num(u.log_likelihood, 6, 2)} {_num(u.gap, 6, 2)} "
                         f"{_num(u.min_confidence, 5, 2)} {_num(u.word_gap, 5, 0)} {_num(u.greedy_cer, 5, 2)} "
                         f"{_num(u.chars_per_s, 5, 1)}  "
                         f"{'; '.join(f.reasons)}")
            lines.append(f"{'':>9}{u.path}")
            lines.append(f"{'':>9}ref: {u.text}")
            lines.append(f"{'':>9}hyp: {u.hypothesis or ''}")
        if len(shown) < len(self.flags):
            lines.append(f"... and {len(self.flags) - len(shown)} more")
        if self.write_version is not None:
            lines.append(f"split version {self.write_version!r}: {self.kept} utterances of split {self.split!r} "
                         f"(the {len(self.flags)} flagged left out); train on it with data.split_version="
                         f"{self.write_version}")
        return "\n".join(lines)


def _num(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None or not math.isfinite(value) else f"{value:>{width}.{digits}f}"


def write_version(conn, source: str, target: str, split: str, exclude: set[int]) -> int:
    """Split version ``target`` = ``source``'s ``split`` minus ``exclude`` (audio ids); the other
    splits of ``source`` are copied when ``target`` has none of them yet. Replaces ``target``'s rows
    of ``split``: running it again gives the same rows. Returns the rows of ``split`` written."""
    from sqlalchemy import delete, insert, select

    from vasr.db.schema import check_lengths, data_splits

    check_lengths(data_splits, {"version": target}, "--write-version")
    d = data_splits.c
    rows = conn.execute(select(d.audio_id, d.split).where(d.version == source)).all()
    present = set(conn.execute(select(d.split).where(d.version == target).distinct()).scalars())
    conn.execute(delete(data_splits).where(d.version == target, d.split == split))
    keep = [{"audio_id": a, "split": s, "version": target} for a, s in rows
            if (s == split and a not in exclude) or (s != split and s not in present)]
    if keep:
        conn.execute(insert(data_splits), keep)
    return sum(1 for k in keep if k["split"] == split)


def clean(config: CleanConfig, engine=None) -> CleanReport:
    """Flag the utterances of ``config``'s split from its alignment run (``flag``), and with
    ``write_version`` write the cleaned split version."""
    from vasr.db import store

    own = engine is None
    engine = store.connect(config.db) if own else engine
    try:
        with engine.begin() as conn:
            run = config.run if config.run is not None else newest_run(conn, config.split, config.split_version)
            _check_run(conn, run, config)
            rows = load_scores(conn, run)
            flags = flag(rows, config)
            kept = None
            if config.write_version is not None:
                kept = write_version(conn, config.split_version, config.write_version, config.split,
                                     {f.utterance.audio_id for f in flags})
        return CleanReport(run, config.split, config.split_version, len(rows), flags, config.write_version, kept,
                           config.show)
    finally:
        if own:
            engine.dispose()
