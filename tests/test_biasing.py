"""Contextual biasing: U-WER/B-WER, the decoder's hot words, phonetic expansion and second pass,
tuned weights in decode.json (vasr.biasing, vasr.export.decoder, vasr.embeddings.expand)."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from vasr.biasing import BiasedCounts, biased_counts
from vasr.embeddings.rescore import RescoreWeights, word_spans
from vasr.export.decoder import TUNED_FILE, DecodeOptions, Decoder, Tuned, read_tuned, write_tuned
from vasr.text.tokens import CharTokenizer

pytest.importorskip("gensim")
pytest.importorskip("faiss")

NAME = "hải phòng"
HEARD = "hai phong"  # what the crafted acoustics favour
CARRIER = "tôi đến"
CORPUS_WORDS = ("tôi đến hải phòng hai phong phòng hà nội nam định đà nẵng cần thơ huế vinh lạng sơn "
                "ninh bình thái bình nam ninh thành phố về ở đi từ").split()


def test_biased_counts_split_errors_by_entity_words():
    ref = "hôm qua nguyễn văn an đến hà nội"
    entities, bias_list = ["nguyễn văn an", "hà nội"], ["nguyễn văn an", "hà nội", "lê thị hoa"]
    # one substitution inside an entity; nothing else wrong
    c = biased_counts(ref, "hôm qua nguyễn văn anh đến hà nội", entities, bias_list)
    assert c == BiasedCounts(unbiased_errors=0, unbiased_words=3, biased_errors=1, biased_words=5)
    assert (c.wer, c.u_wer, c.b_wer) == pytest.approx((1 / 8, 0.0, 0.2))
    # a deleted carrier word and an inserted distractor word ("hoa"): one unbiased, one biased error
    c = biased_counts(ref, "hôm nguyễn văn an đến hà nội hoa", entities, bias_list)
    assert c == BiasedCounts(1, 3, 1, 5)
    # an inserted word outside every bias phrase is unbiased
    assert biased_counts(ref, ref + " rồi", entities, bias_list) == BiasedCounts(1, 3, 0, 5)
    # an entity spoken twice marks both occurrences; corpus totals add up
    two = biased_counts("hà nội và hà nội", "hà nội và hà nam", ["hà nội"], ["hà nội"])
    assert two == BiasedCounts(0, 1, 1, 4)
    assert (c + two).biased_words == 9


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A character tokenizer and a Phon2Vec model, as `vasr export` and `vasr embed build` write them."""
    from vasr.embeddings.build import train_phon2vec
    from vasr.embeddings.vectors import Embeddings
    from vasr.embeddings.build import Word2VecConfig

    root = tmp_path_factory.mktemp("decoder")
    CharTokenizer.build(CORPUS_WORDS).save(root / "model")
    rng = random.Random(0)
    sentences = [" ".join(rng.choice(CORPUS_WORDS) for _ in range(6)) for _ in range(300)]
    phon2vec = train_phon2vec(sentences, Word2VecConfig(dim=32, window=4, epochs=5, sample=0.0))
    phon2vec.save(root / "emb")
    assert isinstance(Embeddings.load(root / "emb", "phon2vec"), Embeddings)
    return root


def _symbols(model_dir) -> list[str]:
    return CharTokenizer.load(model_dir / "model").symbols


def crafted(symbols: list[str], favour: str, other: str, p_favour: float = 0.6) -> np.ndarray:
    """Log-probs that spell ``favour`` with ``p_favour`` where it differs from ``other`` (same length)
    and ``other`` with most of the rest: each character gets two frames, then a blank frame."""
    index = {(" " if s == "▁" else s): i for i, s in enumerate(symbols)}
    rows = []
    for a, b in zip(CARRIER + " " + favour, CARRIER + " " + other):
        row = np.full(len(symbols), 1e-4)
        if a == b:
            row[index[a]] = 0.95
        else:
            row[index[a]], row[index[b]] = p_favour, 0.95 - p_favour
        rows += [row, row]
        blank = np.full(len(symbols), 1e-4)
        blank[0] = 0.95
        rows.append(blank)
    probs = np.array(rows)
    return np.log(probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def test_a_boosted_name_is_recognised_only_with_the_boost(model_dir):
    symbols = _symbols(model_dir)
    lp = crafted(symbols, HEARD, NAME)
    assert Decoder(model_dir / "model", symbols, DecodeOptions(beam=1)).decode(lp).best.text == f"{CARRIER} {HEARD}"
    plain = Decoder(model_dir / "model", symbols, DecodeOptions(beam=8))
    assert plain.decode(lp).best.text == f"{CARRIER} {HEARD}"
    boosted = Decoder(model_dir / "model", symbols, DecodeOptions(beam=8, hotwords=((NAME, 1.0),)))
    assert boosted.decode(lp).best.text == f"{CARRIER} {NAME}"
    # per-call hot words (an utterance's bias list) replace the options' ones
    assert boosted.decode(lp, hotwords=[("hà nội", 1.0)]).best.text == f"{CARRIER} {HEARD}"
    assert plain.decode(lp, hotwords=[(NAME, 1.0)]).best.text == f"{CARRIER} {NAME}"


def test_hot_words_that_cannot_work_say_so(model_dir):
    symbols = _symbols(model_dir)
    with pytest.warns(UserWarning, match="hot words need beam search; greedy search cannot use them"):
        decoder = Decoder(model_dir / "model", symbols, DecodeOptions(beam=1, hotwords=((NAME, 1.0),)))
    assert decoder.beam == 4
    with pytest.warns(UserWarning, match="'москва' ignored"):
        Decoder(model_dir / "model", symbols, DecodeOptions(beam=4, hotwords=(("москва", 1.0), (NAME, 1.0))))
    with pytest.warns(UserWarning, match="no hot word could be used"):
        Decoder(model_dir / "model", symbols, DecodeOptions(beam=4, hotwords=(("москва", 1.0),)))


def test_phonetic_expansion_substitutes_a_sound_alike_hot_word(model_dir):
    """The first pass never holds the name (its spelling is unlikely and the boost is 0): only the
    second pass's Phon2Vec proposal, scored against the audio, can bring it in."""
    symbols = _symbols(model_dir)
    lp = crafted(symbols, HEARD, NAME, p_favour=0.55)
    emb = str(model_dir / "emb")
    hot = ((NAME, 0.0),)
    without = Decoder(model_dir / "model", symbols, DecodeOptions(beam=2, hotwords=hot, embeddings=emb,
                                                                   rescore=RescoreWeights(phonetic=0.0)))
    assert without.decode(lp).best.text == f"{CARRIER} {HEARD}"
    assert f"{CARRIER} {NAME}" not in [h.text for h in without.search(lp, without.context, 2)]
    with_ = Decoder(model_dir / "model", symbols, DecodeOptions(beam=2, nbest=3, hotwords=hot, embeddings=emb,
                                                                 rescore=RescoreWeights(phonetic=8.0)))
    decoded = with_.decode(lp)
    assert decoded.best.text == f"{CARRIER} {NAME}"
    assert decoded.substituted == (NAME,)
    # the substituted hypothesis carries its exact CTC score and a frame per token, in order
    from vasr.kernels import ctc_log_likelihood

    tokens = CharTokenizer.load(model_dir / "model").encode(f"{CARRIER} {NAME}")
    assert decoded.best.tokens == tuple(tokens)
    assert decoded.best.acoustic == pytest.approx(ctc_log_likelihood(lp, tokens), abs=1e-4)
    assert list(decoded.best.frames) == sorted(decoded.best.frames) and len(decoded.best.frames) == len(tokens)
    assert decoded.best.frames[len(CARRIER) + 1] == 3 * (len(CARRIER) + 1)  # "h" of the name: its first frame
    assert decoded.alternatives[0].text == f"{CARRIER} {NAME}"
    assert f"{CARRIER} {HEARD}" in [a.text for a in decoded.alternatives]


def test_word_spans_follow_word_boundary_tokens():
    symbols = ["<blk>", "▁", "a", "b", "c"]
    # "ab▁c▁▁a": the lone ▁ before the last word spells nothing and is not a word
    assert word_spans([2, 3, 1, 4, 1, 1, 2], symbols) == [("ab", 0, 2), ("c", 2, 4), ("a", 5, 7)]
    bpe = ["<blk>", "<unk>", "▁ha", "i", "▁phong"]
    assert word_spans([2, 3, 4], bpe) == [("hai", 0, 2), ("phong", 2, 3)]


def test_tuned_weights_load_from_the_model_directory(model_dir, tmp_path):
    symbols = _symbols(model_dir)
    directory = tmp_path / "model"
    CharTokenizer.load(model_dir / "model").save(directory)
    assert read_tuned(directory) == Tuned()  # nothing tuned yet: the defaults
    lp = crafted(symbols, HEARD, NAME, p_favour=0.55)
    emb = str(model_dir / "emb")
    tuned = Tuned(boost=0.0, rescore=RescoreWeights(phonetic=8.0), expand_threshold=0.5,
                  report={"split": "val", "wer_tuned": 0.1})
    path = write_tuned(directory, tuned)
    assert path.name == TUNED_FILE and read_tuned(directory) == tuned
    # a hot word without its own boost takes the tuned one (0 here), the rescoring weights come along
    decoder = Decoder(directory, symbols, DecodeOptions(beam=2, hotwords=((NAME, None),), embeddings=emb))
    assert decoder.options.rescore == RescoreWeights(phonetic=8.0) and decoder.options.expand_threshold == 0.5
    assert decoder.decode(lp).best.text == f"{CARRIER} {NAME}"
    # an explicit option wins over the file
    explicit = Decoder(directory, symbols, DecodeOptions(beam=2, hotwords=((NAME, None),), embeddings=emb,
                                                         rescore=RescoreWeights(phonetic=0.0)))
    assert explicit.decode(lp).best.text == f"{CARRIER} {HEARD}"
    (directory / TUNED_FILE).write_text(json.dumps({"rescore": {"lm": "high"}}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"decode\.json.*lm"):
        read_tuned(directory)
    (directory / TUNED_FILE).write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match=r"decode\.json: not valid JSON"):
        read_tuned(directory)
