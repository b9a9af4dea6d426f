"""Contextual biasing: U-WER/B-WER, the decoder's hot words, phonetic expansion and second pass,
tuned weights in decode.json (vasr.biasing, vasr.runtime.decode)."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from vasr.biasing import BiasedCounts, biased_counts
from vasr.runtime.decode import DecodeOptions, Decoder, Tuned, read_tuned, resolve, write_tuned
from vasr.runtime.decode.rescore import RescoreWeights, word_spans
from vasr.runtime.decode.settings import TUNED_FILE
from vasr.text.tokens import CharTokenizer

pytest.importorskip("gensim")
pytest.importorskip("faiss")

NAME = "hải phòng"
HEARD = "hai phong"  # what the crafted acoustics favour
CARRIER = "tôi đến"
CORPUS_WORDS = ("tôi đến hải phòng hai phong phòng hà nội nam định đà nẵng cần thơ huế vinh lạng sơn "
                "ninh bình thái bình nam ninh thành phố về ở đi từ").split()


def decoder_of(directory, symbols, options: DecodeOptions) -> Decoder:
    """The decoder the recognizer of a model directory builds: its tuned settings and tokenizer."""
    return Decoder(symbols, resolve(options, read_tuned(directory)), CharTokenizer.load(directory))


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
    assert decoder_of(model_dir / "model", symbols, DecodeOptions(beam=1)).decode(lp).best.text == f"{CARRIER} {HEARD}"
    plain = decoder_of(model_dir / "model", symbols, DecodeOptions(beam=8))
    assert plain.decode(lp).best.text == f"{CARRIER} {HEARD}"
    boosted = decoder_of(model_dir / "model", symbols, DecodeOptions(beam=8, hotwords=((NAME, 1.0),)))
    assert boosted.decode(lp).best.text == f"{CARRIER} {NAME}"
    # per-call hot words (an utterance's bias list) replace the options' ones
    assert boosted.decode(lp, hotwords=[("hà nội", 1.0)]).best.text == f"{CARRIER} {HEARD}"
    assert plain.decode(lp, hotwords=[(NAME, 1.0)]).best.text == f"{CARRIER} {NAME}"
    # a phrase alone takes the default boost (1.5 nats per token)
    assert plain.decode(lp, hotwords=[NAME]).best.text == f"{CARRIER} {NAME}"


def test_hot_words_that_cannot_work_say_so(model_dir):
    symbols = _symbols(model_dir)
    with pytest.warns(UserWarning, match="hot words need beam search; greedy search cannot use them"):
        decoder = decoder_of(model_dir / "model", symbols, DecodeOptions(beam=1, hotwords=((NAME, 1.0),)))
    assert decoder.settings.beam == 4
    with pytest.warns(UserWarning, match="'москва' ignored"):
        decoder_of(model_dir / "model", symbols, DecodeOptions(beam=4, hotwords=(("москва", 1.0), (NAME, 1.0))))
    with pytest.warns(UserWarning, match="'hải phòng' has boost 0: it changes nothing"):
        decoder_of(model_dir / "model", symbols, DecodeOptions(beam=4, hotwords=((NAME, 0.0),)))
    with pytest.warns(UserWarning) as caught:
        decoder_of(model_dir / "model", symbols, DecodeOptions(beam=4, hotwords=(("москва", 1.0),)))
    assert [str(w.message)[:25] for w in caught] == ["hot word 'москва' ignored", "no hot word could be used"]


def test_phonetic_expansion_substitutes_a_sound_alike_hot_word(model_dir):
    """The first pass never holds the name (its spelling is unlikely and the boost is 0): only the
    second pass's Phon2Vec proposal, scored against the audio, can bring it in."""
    symbols = _symbols(model_dir)
    lp = crafted(symbols, HEARD, NAME, p_favour=0.55)
    emb = str(model_dir / "emb")
    hot = ((NAME, 0.0),)
    without = decoder_of(model_dir / "model", symbols, DecodeOptions(beam=2, hotwords=hot, embeddings=emb,
                                                                   rescore=RescoreWeights(phonetic=0.0)))
    assert without.decode(lp).best.text == f"{CARRIER} {HEARD}"
    assert f"{CARRIER} {NAME}" not in [h.text for h in without.search(lp, without.prepared, 2)]
    with_ = decoder_of(model_dir / "model", symbols, DecodeOptions(beam=2, nbest=3, hotwords=hot, embeddings=emb,
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
    decoder = decoder_of(directory, symbols, DecodeOptions(beam=2, hotwords=((NAME, None),), embeddings=emb))
    assert decoder.settings.rescore == RescoreWeights(phonetic=8.0) and decoder.settings.expand_threshold == 0.5
    assert decoder.decode(lp).best.text == f"{CARRIER} {NAME}"
    # an explicit option wins over the file
    explicit = decoder_of(directory, symbols, DecodeOptions(beam=2, hotwords=((NAME, None),), embeddings=emb,
                                                         rescore=RescoreWeights(phonetic=0.0)))
    assert explicit.decode(lp).best.text == f"{CARRIER} {HEARD}"
    (directory / TUNED_FILE).write_text(json.dumps({"rescore": {"lm": "high"}}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"decode\.json.*lm"):
        read_tuned(directory)
    (directory / TUNED_FILE).write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match=r"decode\.json: not valid JSON"):
        read_tuned(directory)


def test_expander_proposes_sound_alike_spans_in_one_search(model_dir):
    from vasr.runtime.decode.expand import ExpandOptions, HotwordExpander
    from vasr.embeddings.vectors import Embeddings

    phon2vec = Embeddings.load(model_dir / "emb", "phon2vec")
    expander = HotwordExpander(phon2vec, [NAME, "cần thơ", NAME, " "], ExpandOptions(threshold=0.6))
    assert expander.hotwords == [NAME, "cần thơ"]  # duplicates and empty phrases dropped
    heard, exact, unrelated = "tôi đến hai phong".split(), f"tôi đến {NAME}".split(), "nam định".split()
    found = expander.proposals([heard, exact, unrelated, []])
    assert [(p.start, p.end, p.hotword) for p in found[0]][0] == (2, 4, NAME)
    assert all(p.cosine >= 0.6 for p in found[0]) and found[0] == sorted(found[0], key=lambda p: -p.cosine)
    # a span that already reads as the hot word is not proposed again; nothing matches in the others
    assert all((p.start, p.end) != (2, 4) for p in found[1]) and found[2] == [] and found[3] == []
    # searched together or one by one: the same proposals (cosines to float32 rounding)
    alone = [expander.proposals([h])[0] for h in (heard, exact, unrelated)]
    assert [[(p.start, p.end, p.hotword) for p in ps] for ps in alone] == \
        [[(p.start, p.end, p.hotword) for p in ps] for ps in found[:3]]
    assert [p.cosine for ps in alone for p in ps] == pytest.approx([p.cosine for ps in found[:3] for p in ps],
                                                                    abs=1e-5)
    sets = expander.substitutions([heard])[0]
    assert sets[0] == [found[0][0]] and all(len(s) == 1 for s in sets[:-1] or sets)


@pytest.fixture(scope="module")
def biased_model(tmp_path_factory):
    """The session's exported fixture model (copied: tuning writes into it), a database with a small
    rendered bias set, an LM and embeddings built from that database."""
    import shutil

    from test_export import exported

    from vasr.data.synth import SynthConfig, bias_config, synthesize_bias
    from vasr.db import store
    from vasr.embeddings.build import EmbedConfig, Word2VecConfig, build
    from vasr.lm import LMConfig, build_lm

    root = tmp_path_factory.mktemp("biased")
    shutil.copytree(exported()["model_dir"], root / "model")
    engine = store.connect(root / "vasr.db")
    config = bias_config(SynthConfig(n=8, out_dir=str(root / "bias"), distractors=3, voices=("vi",),
                                     variants=("m1", "f1")))
    made = synthesize_bias(config, engine, progress=False)
    small = Word2VecConfig(dim=16, window=3, epochs=3, sample=0.0)
    build(EmbedConfig(out_dir=root / "emb", split=None, word2vec=small, phon2vec=small), engine)
    build_lm(LMConfig(out_dir=root / "lm", split=None), engine)
    engine.dispose()
    return root, made


def test_bias_eval_and_tune_on_a_rendered_bias_set(biased_model, capsys):
    from vasr.biasing import load_bias_split, utterance_counts
    from vasr.cli import main

    root, made = biased_model
    db, model = str(root / "vasr.db"), str(root / "model")
    models = ["--lm", str(root / "lm" / "lm.bin"), "--embeddings", str(root / "emb"), "--db", db]
    assert main(["bias-eval", model, *models, "--out", str(root / "table.md")]) == 0
    table = (root / "table.md").read_text(encoding="utf-8").splitlines()
    names = [line.split(" | ")[0].lstrip("| ") for line in table[2:7]]
    assert names == ["greedy", "beam 8", "beam 8 + LM", "beam 8 + hot words",
                     "beam 8 + hot words + rescoring (LM + phonetic)"]
    test = load_bias_split(db)
    assert len(test) == made.splits.count("test")
    words = [utterance_counts(u, u.text) for u in test]
    assert table[-1] == (f"{sum(c.unbiased_words for c in words)} unbiased and "
                         f"{sum(c.biased_words for c in words)} biased reference words")
    assert main(["tune", model, *models]) == 0
    tuned = read_tuned(model)
    report = tuned.report
    assert report["utterances"] == made.splits.count("val") and report["split_version"] == "bias"
    # "no biasing" is in the grid, so the tuned setting never loses to plain beam search on the dev split
    assert report["u_wer_promise_kept"] is True
    assert report["tuned"]["wer"] <= min(report["beam_search"]["wer"], report["defaults"]["wer"])
    assert tuned.boost in (0.0, 0.5, 1.0, 2.0, 3.0, 4.0) and "U-WER within +0.5" in capsys.readouterr().out
    # vasr transcribe picks the tuned settings up and runs the second pass
    wav = made.jobs[0].path
    assert main(["transcribe", model, str(wav), *models[:4], "--hotword", "hòa bình", "--format", "json",
                 "--beam", "4", "--nbest", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    alternatives = out["segments"][0]["nbest"]
    assert 1 <= len(alternatives) <= 3 and alternatives[0]["text"] == out["text"]
    assert [a["score"] for a in alternatives] == sorted((a["score"] for a in alternatives), reverse=True)


def test_transcribe_with_lm_embeddings_and_hot_words_imports_no_torch_or_sqlalchemy(biased_model):
    import subprocess
    import sys
    import textwrap

    from test_runtime import BLOCKER

    root, made = biased_model
    code = BLOCKER + textwrap.dedent(f"""
        from vasr.cli import main
        code = main(["transcribe", {str(root / "model")!r}, {str(made.jobs[0].path)!r}, "--lm",
                     {str(root / "lm" / "lm.bin")!r}, "--embeddings", {str(root / "emb")!r},
                     "--hotword", "hòa bình", "--context", "thành phố", "--beam", "4"])
        for name in ("torch", "sqlalchemy", "vasr.train", "vasr.db"):
            assert name not in sys.modules, name + " was imported"
        assert "kenlm" in sys.modules and "faiss" in sys.modules  # the LM and the expander did run
        sys.exit(code)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()  # a transcript came out
