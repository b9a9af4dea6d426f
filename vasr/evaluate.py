"""Scoring a checkpoint: ``vasr eval --checkpoint CKPT --split test [--beam N] [--manifest FILE]``.

The checkpoint transcribes a database split (or any CSV manifest); its CTC output goes through the
runtime's decoder (``vasr.runtime.decode.Decoder``: greedy or prefix beam search), the same one
``vasr transcribe`` uses; CER and WER come from the Levenshtein kernel (jiwer 4's numbers). Each
utterance's prediction is stored in the predictions table (database utterances only: a prediction
row needs its audio row). The error report lists the most frequent word and character
substitutions, the CER per speaker, and the word error rate per tone mark, with the share of
errors that only got the tone wrong. ``--conditions clean,noise,reverb,telephone,codec`` also
scores the same utterances through each simulated channel (``vasr.data.augment.CONDITIONS``:
10-20 dB noise, a room of RT60 0.3-0.8 s, an 8 kHz G.711 telephone line, MP3/Opus/Vorbis), the
same audio for the same ``--seed``: one CER/WER row per condition.
"""
from __future__ import annotations

import math
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

import torch

from vasr.checkpoint import load_checkpoint
from vasr.data.augment import CONDITIONS, AugmentConfig
from vasr.data.audio import probe
from vasr.data.dataset import BatchDataset, loader, make_batches
from vasr.data.utterance import DataSource
from vasr.db import runs, store
from vasr.db.runs import load_utterances
from vasr.kernels import WORD_SPACE, ErrorRate, align, corpus_cer, corpus_wer
from vasr.runtime.decode import DecodeSettings, Decoder
from vasr.text.normalize import TONE_MARKS
from vasr.tracker import checkpoint_model_id

# combining tone mark -> tone name ("" = no mark)
TONE_NAMES = {"": "ngang", "\u0300": "huyền", "\u0301": "sắc", "\u0309": "hỏi", "\u0303": "ngã",
              "\u0323": "nặng"}


@dataclass(frozen=True)
class EvalConfig:
    checkpoint: str                      # a .pt written by python -m vasr.train
    source: DataSource = DataSource()    # the database split (default: test) or a CSV manifest to score
    beam: int = 1                        # 1 = greedy; N = prefix beam search with N prefixes
    db: str | None = None                # database (default: $VASR_DB or data/vasr.db)
    store: bool = True                   # write per-utterance predictions (database utterances only)
    max_frames: int = 30000              # padded fbank frames per inference batch
    top: int = 10                        # rows of each error-report table
    device: str = "cpu"
    conditions: tuple[str, ...] = ()     # also score under these channels (vasr.data.augment.CONDITIONS)
    seed: int = 0                        # of the conditions' noise, rooms, codecs: the same seed, the same audio

    def __post_init__(self) -> None:
        from vasr.data.augment import CONDITIONS

        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown:
            raise ValueError(f"condition {unknown[0]!r}: expected some of {', '.join(CONDITIONS)}")


@dataclass
class EvalReport:
    decoder: str
    utterances: int
    audio_s: float
    seconds: float                       # model + decoding wall time
    cer: ErrorRate
    wer: ErrorRate
    word_substitutions: list[tuple[str, str, int]] = field(default_factory=list)
    char_substitutions: list[tuple[str, str, int]] = field(default_factory=list)
    per_speaker: list[tuple[str, int, float]] = field(default_factory=list)     # speaker, utterances, CER
    per_tone: list[tuple[str, int, int, int]] = field(default_factory=list)     # tone, words, errors, tone-only
    stored: int = 0                      # prediction rows written
    conditions: list[tuple[str, ErrorRate, ErrorRate]] = field(default_factory=list)   # name, CER, WER

    def format(self) -> str:
        lines = [f"{self.utterances} utterances, {self.audio_s / 60:.1f} min of audio, decoder {self.decoder}, "
                 f"{self.audio_s / max(self.seconds, 1e-9):.0f} audio s/s",
                 f"CER {100 * self.cer.rate:.2f}% ({self.cer.errors}/{self.cer.ref_len}: S {self.cer.substitutions}"
                 f" D {self.cer.deletions} I {self.cer.insertions})",
                 f"WER {100 * self.wer.rate:.2f}% ({self.wer.errors}/{self.wer.ref_len}: S {self.wer.substitutions}"
                 f" D {self.wer.deletions} I {self.wer.insertions})"]
        if self.word_substitutions:
            lines.append("most frequent word substitutions (reference -> hypothesis):")
            lines += [f"  {n:>5}  {r} -> {h}" for r, h, n in self.word_substitutions]
        if self.char_substitutions:
            lines.append("most frequent character substitutions:")
            lines += [f"  {n:>5}  {_visible(r)} -> {_visible(h)}" for r, h, n in self.char_substitutions]
        if self.per_tone:
            lines.append("word errors per tone mark of the reference word (tone-only: right letters, wrong tone):")
            lines += [f"  {t:<6} {w:>6} words  {100 * e / max(1, w):6.2f}% errors  {o:>5} tone-only"
                      for t, w, e, o in self.per_tone]
        if self.per_speaker:
            lines.append("CER per speaker (worst first):")
            lines += [f"  {100 * c:6.2f}%  {n:>5} utts  {s}" for s, n, c in self.per_speaker]
        if self.conditions:
            lines.append("per condition (the same utterances through each channel):")
            lines.append(f"  {'condition':<10} {'CER':>7} {'WER':>7}")
            lines += [f"  {name:<10} {100 * cer.rate:6.2f}% {100 * wer.rate:6.2f}%" for name, cer, wer in self.conditions]
        if self.stored:
            lines.append(f"{self.stored} predictions stored")
        return "\n".join(lines)


def _visible(char: str) -> str:
    return WORD_SPACE if char == " " else char


def tone_of(word: str) -> str:
    """The tone name of a Vietnamese syllable: the tone mark it carries, ngang without one."""
    marks = [c for c in unicodedata.normalize("NFD", word) if c in TONE_MARKS]
    return TONE_NAMES[marks[0] if marks else ""]


def strip_tone(word: str) -> str:
    return unicodedata.normalize("NFC", "".join(c for c in unicodedata.normalize("NFD", word) if c not in TONE_MARKS))


def error_report(refs: list[str], hyps: list[str], speakers: list[str | None], top: int) -> dict:
    """Word/character substitution counts, CER per speaker and word errors per tone."""
    words, chars, tones = Counter(), Counter(), defaultdict(lambda: [0, 0, 0])
    for ref, hyp in zip(refs, hyps):
        r, h = ref.split(), hyp.split()
        ids = {w: i for i, w in enumerate(dict.fromkeys(r + h))}
        for op, i, j in align([ids[w] for w in r], [ids[w] for w in h]):
            if i < 0:
                continue
            counts = tones[tone_of(r[i])]
            counts[0] += 1
            if op != "=":
                counts[1] += 1
            if op == "S":
                words[(r[i], h[j])] += 1
                counts[2] += strip_tone(r[i]) == strip_tone(h[j])
        for op, i, j in align(ref, hyp):
            if op == "S":
                chars[(ref[i], hyp[j])] += 1
    by_speaker = defaultdict(lambda: ([], []))
    for ref, hyp, speaker in zip(refs, hyps, speakers):
        by_speaker[speaker or "?"][0].append(ref)
        by_speaker[speaker or "?"][1].append(hyp)
    per_speaker = sorted(((s, len(r), corpus_cer(r, h).rate) for s, (r, h) in by_speaker.items()),
                         key=lambda row: (-row[2], row[0]))
    return {"word_substitutions": [(r, h, n) for (r, h), n in words.most_common(top)],
            "char_substitutions": [(r, h, n) for (r, h), n in chars.most_common(top)],
            "per_speaker": per_speaker[:top],
            "per_tone": [(t, *tones[t]) for t in TONE_NAMES.values() if t in tones]}


def _transcribe(model, records: list, decoder: Decoder, config: EvalConfig,
                augment: AugmentConfig | None) -> dict[int, tuple[str, float, float]]:
    """record index -> (text, confidence, seconds of model and search), the audio through ``augment``
    (deterministic: the batches' generators come from ``config.seed``)."""
    batches = make_batches([r.duration_s for r in records], config.max_frames, 0, 0, shuffle=False)
    results: dict[int, tuple[str, float, float]] = {}
    dataset = BatchDataset(records, batches, None, augment=augment, seed=config.seed)
    for indices, batch in zip(batches, loader(dataset)):
        t0 = time.perf_counter()
        log_probs, lens = model(batch["x"].to(config.device), batch["x_lens"].to(config.device))
        lp = log_probs.cpu().numpy()
        for k, index in enumerate(indices):
            frames = lp[k, : int(lens[k])]
            best = decoder.decode(frames).best
            results[index] = (best.text, math.exp(best.acoustic / max(1, len(frames))), 0.0)
        share = (time.perf_counter() - t0) / len(indices)
        results.update({i: (*results[i][:2], share) for i in indices})
    return results


@torch.no_grad()
def evaluate(config: EvalConfig) -> EvalReport:
    """Transcribe and score the split or manifest of ``config``; store predictions when asked."""
    loaded = load_checkpoint(config.checkpoint, config.device)
    records = load_utterances(config.source, config.db)
    if config.source.manifest:  # batching goes by duration: probe the files the manifest lists
        records = [replace(r, duration_s=probe(r.path).duration_s) for r in records]
    name = f"beam{config.beam}" if config.beam > 1 else "greedy"
    decoder = Decoder(loaded.tokenizer.symbols, DecodeSettings(beam=config.beam), loaded.tokenizer)
    start = time.perf_counter()
    results = _transcribe(loaded.model, records, decoder, config, None)
    seconds = time.perf_counter() - start
    refs = [r.text for r in records]
    hyps = [results[i][0] for i in range(len(records))]
    report = EvalReport(name, len(records), sum(r.duration_s for r in records), seconds,
                        corpus_cer(refs, hyps), corpus_wer(refs, hyps),
                        **error_report(refs, hyps, [r.speaker for r in records], config.top))
    for condition in config.conditions:
        heard = results if condition == "clean" else _transcribe(loaded.model, records, decoder, config,
                                                                  CONDITIONS[condition])
        got = [heard[i][0] for i in range(len(records))]
        report.conditions.append((condition, corpus_cer(refs, got), corpus_wer(refs, got)))
    if config.store and not config.source.manifest:
        engine = store.connect(config.db)
        model_id = checkpoint_model_id(engine, loaded, config.checkpoint)
        rows = [{"model_id": model_id, "audio_id": r.audio_id, "text": hyps[i], "reference": r.text,
                 "decoder": name, "confidence": results[i][1], "inference_time_s": results[i][2],
                 "cer": corpus_cer([r.text], [hyps[i]]).rate, "wer": corpus_wer([r.text], [hyps[i]]).rate}
                for i, r in enumerate(records)]
        runs.add_predictions(engine, rows)
        engine.dispose()
        report.stored = len(rows)
    return report

