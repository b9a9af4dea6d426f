"""Scores of punctuation and case: precision, recall and F1 per mark, case accuracy; the eval table.

A mark is counted per word: the reference mark after a word against the predicted one (no mark is a
class of its own and is not reported). Case accuracy is over every word; ``capital F1`` counts a word
as capitalised when its case is Capitalised or UPPER, the one that matters for names.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from vasr.punct.corpus import evaluation_windows
from vasr.punct.labels import Labelled, label_text
from vasr.runtime.punct import Punctuator

__all__ = ["Scores", "score", "evaluate_file"]

REPORTED = {1: ".", 2: ",", 3: "?", 4: "!"}


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


@dataclass
class Scores:
    """Counts over words; every figure derives from them."""
    words: int = 0
    case_correct: int = 0
    hits: dict[int, int] = field(default_factory=lambda: dict.fromkeys(REPORTED, 0))       # ref == hyp == mark
    predicted: dict[int, int] = field(default_factory=lambda: dict.fromkeys(REPORTED, 0))  # hyp == mark
    expected: dict[int, int] = field(default_factory=lambda: dict.fromkeys(REPORTED, 0))   # ref == mark
    capital: list[int] = field(default_factory=lambda: [0, 0, 0])                  # hits, predicted, expected

    def add(self, ref_marks: Sequence[int], ref_cases: Sequence[int], marks: Sequence[int],
            cases: Sequence[int]) -> None:
        for r, h in zip(ref_marks, marks):
            if r in REPORTED:
                self.expected[r] += 1
            if h in REPORTED:
                self.predicted[h] += 1
                self.hits[h] += r == h
        for r, h in zip(ref_cases, cases):
            self.case_correct += r == h
            self.capital[0] += r > 0 and h > 0
            self.capital[1] += h > 0
            self.capital[2] += r > 0
        self.words += len(ref_marks)

    def mark(self, mark: int) -> dict[str, float]:
        """precision, recall, f1 and support (reference count) of mark id ``mark``."""
        p = self.hits[mark] / self.predicted[mark] if self.predicted[mark] else 0.0
        r = self.hits[mark] / self.expected[mark] if self.expected[mark] else 0.0
        return {"precision": p, "recall": r, "f1": _f1(p, r), "support": self.expected[mark]}

    def as_dict(self) -> dict:
        hits, predicted, expected = self.capital
        p, r = (hits / predicted if predicted else 0.0), (hits / expected if expected else 0.0)
        return {"words": self.words, "marks": {REPORTED[m]: self.mark(m) for m in REPORTED},
                "case_accuracy": self.case_correct / max(1, self.words), "capital_f1": _f1(p, r)}

    def table(self) -> str:
        lines = [f"{'mark':<6}{'precision':>10}{'recall':>8}{'F1':>7}{'support':>9}"]
        for m, name in REPORTED.items():
            s = self.mark(m)
            lines.append(f"{name:<6}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}{s['support']:>9}")
        d = self.as_dict()
        lines.append(f"case accuracy {d['case_accuracy']:.4f}, capital F1 {d['capital_f1']:.3f} "
                     f"over {self.words} words")
        return "\n".join(lines)


def score(windows: Iterable[Labelled], punctuator: Punctuator) -> Scores:
    """The scores of ``punctuator.labels`` (the runtime's rules included) on ``windows``."""
    scores = Scores()
    for window in windows:
        marks, cases = punctuator.labels(list(window.words))
        scores.add(window.marks, window.cases, marks, cases)
    return scores


def evaluate_file(model_dir: str | os.PathLike, path: str | os.PathLike, window: int = 40) -> tuple[Scores, int, int]:
    """(scores, lines used, lines skipped) of the model in ``model_dir`` on a punctuated UTF-8 text file,
    one paragraph per line, packed into windows of at most ``window`` words. A line is skipped when
    its tokens do not align with its normalised words (``vasr.punct.labels``)."""
    punctuator = Punctuator(model_dir)
    lines = [line for line in open(path, encoding="utf-8").read().splitlines() if line.strip()]
    labelled = [x for x in map(label_text, lines) if x is not None]
    return score(evaluation_windows(labelled, window), punctuator), len(labelled), len(lines) - len(labelled)
