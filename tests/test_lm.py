"""The KenLM word LM: building with lmplz, querying, and shallow fusion in the beam search (vasr.lm)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vasr.kernels import dispatch
from vasr.lm import LMConfig, build_lm, find_tool
from vasr.runtime.decode.lm import LN10, KenLMWordLM

pytest.importorskip("kenlm")

# A bigram model written by hand: "mà" is common, "ma" rare; after "mà", "nó" is likely.
ARPA = """
\\data\\
ngram 1=6
ngram 2=3

\\1-grams:
-1.0\t<s>\t-0.3
-0.5\t</s>
-2.0\t<unk>
-0.4\tmà\t-0.2
-2.5\tma\t-0.1
-0.9\tnó\t-0.1

\\2-grams:
-0.2\t<s> mà
-0.1\tmà nó
-0.3\tnó </s>

\\end\\
"""
SYMBOLS = ["<blk>", "\u2581", "m", "a", "à", "n", "ó"]
BLANK, SPACE, M, A, A_GRAVE, N, O = range(7)


@pytest.fixture(params=dispatch.available("ctc"))
def search(request):
    """The prefix beam search of every built backend: the LM adapter is a Python object to all."""
    return dispatch.load("ctc", request.param).ctc_prefix_beam_search


@pytest.fixture
def lm(tmp_path):
    path = tmp_path / "lm.arpa"
    path.write_text(ARPA.lstrip(), encoding="utf-8")
    return KenLMWordLM(path, SYMBOLS)


def test_word_scores_are_natural_logs(lm):
    state = lm.initial_state()
    score, after = lm.score(state, (M, A_GRAVE))
    assert score == pytest.approx(-0.2 * LN10)  # the bigram <s> mà
    score2, _ = lm.score(after, (SPACE, N, O))
    assert score2 == pytest.approx(-0.1 * LN10)  # the bigram mà nó
    # back-off: <s> ma is not listed -> backoff(<s>) + P(ma)
    assert lm.score(state, (M, A))[0] == pytest.approx((-0.3 - 2.5) * LN10)
    assert lm.score(state, (SPACE,)) == (0.0, state)  # a lone boundary token is no word
    assert lm.sentence_score("mà nó") == pytest.approx((-0.2 - 0.1 - 0.3) * LN10)


def test_hot_words_unknown_to_the_lm_are_free(lm):
    # "nam" is not in the LM: alone it costs P(<unk>) = 10^-2; in the view of hot word "mà nam" it is free
    plain = lm.sentence_score("mà nam")
    view = lm.with_hotwords(["mà nam"])
    assert view.free == {"nam"} and lm.free == frozenset()  # "mà" is known: it keeps its score
    assert view.model is lm.model  # a view, not a second copy of the model
    # <s> mà (-0.2); nam free; </s> after an unknown word backs off to P(</s>) (-0.5)
    assert view.sentence_score("mà nam") == pytest.approx((-0.2 - 0.5) * LN10)
    assert plain == pytest.approx((-0.2 - 0.2 - 2.0 - 0.5) * LN10)  # backoff(mà) + P(<unk>) + P(</s>)
    # the word-by-word score of a view without free words equals KenLM's own sentence score
    assert view.sentence_score("mà nó") == pytest.approx(lm.sentence_score("mà nó"))
    unknown = (SPACE, N, A, M)  # " nam" as the beam search hands it over
    state = view.initial_state()
    assert view.score(state, unknown)[0] == 0.0 and lm.score(state, unknown)[0] == pytest.approx(
        (-0.3 - 2.0) * LN10)


def _frames(rows: list[dict[int, float]]) -> np.ndarray:
    """log-probs (T, V): each row's listed tokens get their probability, the rest share what is left."""
    out = np.empty((len(rows), len(SYMBOLS)), dtype=np.float32)
    for t, row in enumerate(rows):
        rest = (1.0 - sum(row.values())) / (len(SYMBOLS) - len(row))
        out[t] = [math.log(row.get(v, rest)) for v in range(len(SYMBOLS))]
    return out


def test_shallow_fusion_changes_the_winner(lm, search):
    # acoustically "ma" (0.55) beats "mà" (0.40)
    lp = _frames([{M: 0.95}, {A: 0.55, A_GRAVE: 0.40}, {BLANK: 0.95}])
    plain = search(lp, beam=4, symbols=SYMBOLS)
    assert plain[0].text == "ma"
    fused = search(lp, beam=4, lm=lm, lm_weight=0.5, word_boundary=(SPACE,), symbols=SYMBOLS)
    assert fused[0].text == "mà"
    # the fused score: 0.5 * ln P(<s> mà </s>) on top of the acoustic score
    assert fused[0].lm == pytest.approx(0.5 * lm.sentence_score("mà"))
    assert fused[0].score == pytest.approx(fused[0].acoustic + fused[0].lm)


def test_fusion_scores_every_word_with_its_bonus(lm, search):
    lp = _frames([{M: 0.9}, {A_GRAVE: 0.9}, {SPACE: 0.9}, {N: 0.9}, {O: 0.9}, {BLANK: 0.9}])
    best = search(lp, beam=4, lm=lm, lm_weight=0.7, word_bonus=0.25, word_boundary=(SPACE,),
                  symbols=SYMBOLS)[0]
    assert best.text == "mà nó"
    assert best.lm == pytest.approx(0.7 * lm.sentence_score("mà nó") + 2 * 0.25)


CORPUS = ["xin chào các bạn", "hôm nay trời đẹp quá", "các bạn đi học", "xin chào thầy giáo",
          "hôm nay các bạn đi chơi", "trời mưa to quá"] * 5


def test_build_lm_with_lmplz(tmp_path):
    try:
        find_tool("lmplz")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(s.upper() + "!" for s in CORPUS) + "\n", encoding="utf-8")
    report = build_lm(LMConfig(out_dir=tmp_path / "lm", order=3, text=text), None)
    assert report.sentences == len(CORPUS)
    assert report.binary == tmp_path / "lm" / "lm.bin" and report.binary.is_file()
    vocab = {w for s in CORPUS for w in s.split()}
    assert report.ngrams[1] == len(vocab) + 3  # + <s> </s> <unk>
    assert sorted(report.ngrams) == [1, 2, 3]
    model = KenLMWordLM(report.binary, SYMBOLS)
    # the corpus was normalised: lower case, no punctuation
    assert model.sentence_score("xin chào các bạn") > model.sentence_score("bạn các chào xin") + 5.0
    assert (tmp_path / "lm" / "corpus.txt").read_text(encoding="utf-8").splitlines()[0] == "xin chào các bạn"


def test_build_lm_needs_sentences(tmp_path):
    with pytest.raises(ValueError, match="no sentences"):
        build_lm(LMConfig(out_dir=tmp_path), None)


def test_rescorer_lm_term_reorders(lm):
    from vasr.runtime.decode.rescore import LMScorer, Rescorer, RescoreWeights

    alternatives = [("ma", -1.0), ("mà", -1.3)]
    assert [s.text for s in Rescorer(RescoreWeights(lm=0.0), [LMScorer(lm)]).rescore(alternatives)] == ["ma", "mà"]
    ranked = Rescorer(RescoreWeights(lm=0.5, word_bonus=0.1), [LMScorer(lm)]).rescore(alternatives)
    assert [s.text for s in ranked] == ["mà", "ma"]
    # mà: <s> mà (-0.2), </s> after mà by back-off (-0.2 - 0.5); ma: (-0.3 - 2.5), (-0.1 - 0.5)
    assert ranked[0].lm == pytest.approx(-0.9 * LN10) and ranked[1].lm == pytest.approx(-3.4 * LN10)
    assert ranked[0].score == pytest.approx(-1.3 + 0.5 * -0.9 * LN10 + 0.1)
    assert (ranked[0].semantic, ranked[0].phonetic, ranked[0].words) == (0.0, 0.0, 1)


def test_cli_rescore_jsonl(lm, tmp_path, capsys):
    import json

    from vasr.cli import main

    record = {"path": "a.wav", "text": "ma", "duration_s": 1.0, "words": [{"word": "ma", "start": 0.0, "end": 0.2}],
              "segments": [{"start": 0.0, "end": 1.0, "text": "ma", "confidence": 0.6,
                            "nbest": [{"text": "ma", "score": -1.0, "acoustic": -1.0, "tokens": [2, 3]},
                                      {"text": "mà", "score": -1.3, "acoustic": -1.3, "tokens": [2, 4]}]}],
              "tokens": [2, 3]}
    nbest = tmp_path / "nbest.jsonl"
    nbest.write_text(json.dumps(record, ensure_ascii=False) + "\n" + json.dumps({"path": "b.wav", "error": "x"})
                     + "\n", encoding="utf-8")
    (tmp_path / "lm.arpa").write_text(ARPA.lstrip(), encoding="utf-8")
    assert main(["rescore", str(nbest), "--lm", str(tmp_path / "lm.arpa"), "--set", "lm=0.5"]) == 0
    first, second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (first["text"], first["first_pass"], first["segments"][0]["text"]) == ("mà", "ma", "mà")
    assert [a["text"] for a in first["segments"][0]["nbest"]] == ["mà", "ma"]
    assert "words" not in first and "tokens" not in first
    assert second == {"path": "b.wav", "error": "x"}
    assert main(["rescore", str(nbest), "--hotword", "mà"]) == 2  # hot words without embeddings: an error
    assert "embeddings" in capsys.readouterr().err
