"""Word2Vec / Phon2Vec embeddings, FAISS indexes, external vectors and `vasr embed` (vasr.embeddings)."""
from __future__ import annotations

import random
import struct

import numpy as np
import pytest
import sqlalchemy as sa

from vasr.cli import main
from vasr.db.schema import audio_files, data_splits, embeddings as embeddings_table, transcripts
from vasr.embeddings.build import EmbedConfig, Word2VecConfig, build, train_phon2vec, train_word2vec
from vasr.embeddings.vectors import Embeddings, IndexOptions, load_external

SMALL = Word2VecConfig(dim=32, window=4, epochs=5, sample=0.0)
WORDS = ("tường tưởng tượng dành giành xin chào các bạn hôm nay trời đẹp quá mình đi học bài mới không có "
         "gì đâu nhà cửa sông núi biển lúa gạo ngon người việt nam quốc gia yêu thương").split()


def _random_corpus(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(6)) for _ in range(n)]


@pytest.fixture(scope="module")
def phon2vec():
    return train_phon2vec(_random_corpus(300), SMALL)


def test_phon2vec_sound_alike_neighbours(phon2vec):
    assert {w for w, _ in phon2vec.neighbours("tường", 2)} == {"tưởng", "tượng"}
    assert phon2vec.neighbours("dành", 1)[0][0] == "giành"
    assert phon2vec.neighbours("giành", 1)[0][0] == "dành"
    # neighbours come best first, the query itself excluded, cosines in [-1, 1]
    found = phon2vec.neighbours("quốc", 5)
    assert "quốc" not in [w for w, _ in found] and len(found) == 5
    scores = [s for _, s in found]
    assert scores == sorted(scores, reverse=True) and -1.0 <= scores[-1] <= scores[0] <= 1.0 + 1e-6
    assert phon2vec.similarity("dành", "giành") > phon2vec.similarity("dành", "biển")


def test_phon2vec_composes_unseen_words(phon2vec):
    # "tướng" and "rành" are not in the corpus: composed from their tokens
    assert "tướng" not in phon2vec
    assert phon2vec.neighbours("tướng", 1)[0][0] in {"tường", "tưởng", "tượng"}
    assert phon2vec.neighbours("rành", 1)[0][0] in {"dành", "giành"}
    assert phon2vec.word_vector("người việt").shape == (3 * SMALL.dim,)
    assert np.linalg.norm(phon2vec.word_vector("tướng")) == pytest.approx(1.0, abs=1e-5)


def test_word2vec_neighbours_share_contexts():
    rng = random.Random(1)
    subjects, foods, places = ("tôi", "anh", "chị", "em"), ("cơm", "phở", "bún"), ("hà nội", "huế", "đà nẵng")
    sentences = [f"{rng.choice(subjects)} ăn {rng.choice(foods)} ngon" for _ in range(200)]
    sentences += [f"{rng.choice(subjects)} đến {rng.choice(places)} chơi" for _ in range(200)]
    w2v = train_word2vec(sentences, Word2VecConfig(dim=24, window=2, epochs=10, sample=0.0))
    assert len(w2v) == len({w for s in sentences for w in s.split()})
    assert {w for w, _ in w2v.neighbours("phở", 2)} == {"cơm", "bún"}
    assert w2v.similarity("cơm", "phở") > w2v.similarity("cơm", "huế")
    with pytest.raises(KeyError, match="pizza"):
        w2v.word_vector("pizza")


def test_hnsw_index_above_threshold_agrees_with_flat(phon2vec, tmp_path):
    hnsw = Embeddings("phon2vec", phon2vec.vectors, phon2vec.tokens, options=IndexOptions(hnsw_threshold=10))
    assert (phon2vec.index_kind, hnsw.index_kind) == ("flat", "hnsw")
    for word in ("tường", "dành", "người", "biển"):
        assert [w for w, _ in hnsw.neighbours(word, 3)] == [w for w, _ in phon2vec.neighbours(word, 3)]
    hnsw.save(tmp_path)
    assert Embeddings.load(tmp_path, "phon2vec").index_kind == "hnsw"


def test_save_and_load_round_trip(phon2vec, tmp_path):
    phon2vec.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "phon2vec.faiss", "phon2vec.json", "phon2vec.npy", "phon2vec.tokens.npy", "phon2vec.tokens.vocab.json",
        "phon2vec.vocab.json"]  # the temporary directory is gone
    loaded = Embeddings.load(tmp_path, "phon2vec")
    assert loaded.neighbours("tường", 5) == phon2vec.neighbours("tường", 5)
    assert loaded.neighbours("tướng", 3) == phon2vec.neighbours("tướng", 3)
    with pytest.raises(FileNotFoundError, match="vasr embed build"):
        Embeddings.load(tmp_path, "word2vec")


ROWS = [("hoà", [1.0, 0.0, 0.0]), ("hòa", [0.0, 1.0, 0.0]), ("bình", [0.9, 0.1, 0.0]), ("Việt", [0.0, 0.0, 1.0])]


def _write_text(path, header: bool):
    lines = [f"{len(ROWS)} 3"] if header else []
    lines += [f"{w} {' '.join(str(x) for x in v)}" for w, v in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("name,header", [("vectors.txt", True), ("cc.vi.300.vec", True), ("glove.txt", False)])
def test_load_external_text(tmp_path, name, header):
    _write_text(tmp_path / name, header)
    emb = load_external(tmp_path / name)
    # keys respelt like normalised text; of hoà/hòa the first row is kept
    assert emb.vectors.index_to_key == ["hòa", "bình", "việt"]
    np.testing.assert_allclose(emb.vectors["hòa"], [1.0, 0.0, 0.0])
    assert emb.neighbours("hòa", 1)[0][0] == "bình"
    assert emb.neighbours("hòa", 1)[0][1] == pytest.approx(0.9 / np.hypot(0.9, 0.1), abs=1e-5)


def test_load_external_binary(tmp_path):
    path = tmp_path / "vectors.bin"
    with open(path, "wb") as f:
        f.write(f"{len(ROWS)} 3\n".encode())
        for word, vector in ROWS:
            f.write(word.encode("utf-8") + b" " + struct.pack("<3f", *vector) + b"\n")
    emb = load_external(path)
    assert emb.vectors.index_to_key == ["hòa", "bình", "việt"] and emb.dim == 3
    emb.save(tmp_path / "out")
    assert Embeddings.load(tmp_path / "out", "word2vec").neighbours("bình", 1)[0][0] == "hòa"


def test_load_external_rejects_garbage(tmp_path):
    (tmp_path / "bad.vec").write_text("2 3\nxin 1 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.vec"):
        load_external(tmp_path / "bad.vec")


def _add_corpus(engine, sentences: dict[str, list[str]]) -> None:
    with engine.begin() as conn:
        n = 0
        for split, texts in sentences.items():
            for text in texts:
                n += 1
                audio_id = conn.execute(sa.insert(audio_files).values(
                    path=f"/x/{n}.wav", sha256=f"h{n}", end_s=1.0, duration_s=1.0, sample_rate=16000, channels=1,
                    format="WAV", source="test")).inserted_primary_key[0]
                conn.execute(sa.insert(transcripts).values(
                    audio_id=audio_id, raw_text=text, normalized_text=text, normalizer_version="1",
                    word_count=len(text.split()), char_count=len(text.replace(" ", ""))))
                conn.execute(sa.insert(data_splits).values(audio_id=audio_id, split=split))


def test_build_from_database_records_both_kinds(engine, tmp_path):
    _add_corpus(engine, {"train": _random_corpus(60), "test": ["câu kiểm tra riêng"]})
    extra = tmp_path / "extra.txt"
    extra.write_text("Hoà Bình có 2 con sông.\n\n", encoding="utf-8")
    config = EmbedConfig(out_dir=tmp_path / "emb", text=extra, word2vec=SMALL, phon2vec=SMALL)
    report = build(config, engine)
    assert report.sentences == 61
    assert {k: v[:3] for k, v in report.built.items()} == {"word2vec": (len(WORDS) + 4, 32, "flat"),
                                                         "phon2vec": (len(WORDS) + 4, 96, "flat")}
    w2v = Embeddings.load(tmp_path / "emb", "word2vec")
    # the test split stays out; the extra text comes in normalised
    assert "kiểm" not in w2v and {"hòa", "bình", "hai", "con"} <= set(w2v.vectors.index_to_key)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(embeddings_table).order_by(embeddings_table.c.id)).mappings().all()
    assert [(r["kind"], r["vocab_size"], r["dim"], r["index_kind"], r["source"]) for r in rows] == [
        ("word2vec", len(WORDS) + 4, 32, "flat", "corpus"), ("phon2vec", len(WORDS) + 4, 96, "flat", "corpus")]
    assert rows[0]["path"] == str((tmp_path / "emb" / "word2vec.json").resolve())
    # the new directory was written beside it under a temporary name, now gone
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert rows[1]["params"]["dim"] == 32 and rows[1]["params"]["sentences"] == 61


def test_build_is_reproducible(tmp_path):
    corpus = _random_corpus(50)
    a, b = train_phon2vec(corpus, SMALL), train_phon2vec(corpus, SMALL)
    np.testing.assert_array_equal(a.vectors.vectors, b.vectors.vectors)


def test_build_without_sentences_says_so(tmp_path):
    with pytest.raises(ValueError, match="no sentences"):
        build(EmbedConfig(out_dir=tmp_path), None)


def test_cli_embed_build_and_neighbours(tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    from vasr.db import store

    engine = store.connect(db)
    _add_corpus(engine, {"train": _random_corpus(80)})
    engine.dispose()
    out = tmp_path / "emb"
    assert main(["embed", "build", "--db", db, "--out", str(out), "--set", "word2vec.epochs=2",
                 "--set", "phon2vec.epochs=5", "--set", "phon2vec.dim=32"]) == 0
    assert "80 sentences" in capsys.readouterr().out
    assert main(["embed", "neighbours", "dành", "--dir", str(out), "-k", "1"]) == 0
    assert capsys.readouterr().out.split()[1] == "giành"
    assert main(["embed", "neighbours", "xin", "--kind", "word2vec", "--dir", str(out), "-k", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_rescorer_phonetic_term_prefers_the_hot_word(phon2vec):
    from vasr.runtime.decode.rescore import PhoneticScorer, Rescorer, RescoreWeights

    alternatives = [("nhà tường mới", -2.0), ("nhà tưởng mới", -2.2), ("nhà biển mới", -2.1)]
    hot = [PhoneticScorer(phon2vec, ["tưởng"])]
    plain = Rescorer(RescoreWeights(phonetic=0.0), hot).rescore(alternatives)
    assert plain[0].text == "nhà tường mới"
    ranked = Rescorer(RescoreWeights(phonetic=2.0), hot).rescore(alternatives)
    assert [s.text for s in ranked] == ["nhà tưởng mới", "nhà tường mới", "nhà biển mới"]
    assert ranked[0].phonetic == pytest.approx(1.0, abs=1e-5)
    assert 0.5 < ranked[1].phonetic < 0.99 and ranked[2].phonetic < ranked[1].phonetic
    # a two-word hot word is compared with two-word spans
    two = PhoneticScorer(phon2vec, ["việt nam"])
    assert two.score(["người việt nam", "việt", ""]) == pytest.approx([1.0, 0.0, 0.0], abs=1e-5)
    # texts scored together get what each gets alone (spans never cross from one text to the next)
    mixed = PhoneticScorer(phon2vec, ["tưởng", "việt nam", "quốc gia yêu"])
    texts = _random_corpus(12, seed=3) + ["nam", "việt nam quốc"]
    together = mixed.score(texts)
    assert together == pytest.approx([mixed.score([t])[0] for t in texts], abs=1e-6)
    assert together[-1] > 1.0  # "việt nam" exactly, plus a partial match of the three-word hot word


def test_rescorer_semantic_term_follows_the_context():
    from vasr.runtime.decode.rescore import Rescorer, RescoreWeights, SemanticScorer

    rng = random.Random(1)
    sentences = [f"tôi ăn {rng.choice(('cơm', 'phở', 'bún'))} ngon" for _ in range(200)]
    sentences += [f"tôi đến {rng.choice(('huế', 'vinh', 'sapa'))} chơi" for _ in range(200)]
    w2v = train_word2vec(sentences, Word2VecConfig(dim=24, window=2, epochs=10, sample=0.0))
    alternatives = [("tôi đến huế", -1.0), ("tôi ăn bún", -1.1)]
    ranked = Rescorer(RescoreWeights(semantic=2.0), [SemanticScorer(w2v, ["cơm phở ngon"])]).rescore(alternatives)
    assert ranked[0].text == "tôi ăn bún" and ranked[0].semantic > ranked[1].semantic
    assert SemanticScorer(w2v, ["pizza"]).score(["tôi ăn bún"]).tolist() == [0.0]  # no known context word


def _write_legacy(embedding: Embeddings, directory) -> None:
    """A directory as vasr wrote it before the safe format: gensim pickles (KIND.kv) and the FAISS index."""
    import faiss
    from gensim.models import KeyedVectors

    directory.mkdir(parents=True, exist_ok=True)
    for vectors, name in ((embedding.vectors, embedding.kind), (embedding.tokens, f"{embedding.kind}.tokens")):
        if vectors is not None:
            kv = KeyedVectors(vectors.vector_size, dtype=np.float32)
            kv.add_vectors(vectors.index_to_key, vectors.vectors)
            kv.save(str(directory / f"{name}.kv"))
    faiss.write_index(embedding.index, str(directory / f"{embedding.kind}.faiss"))


def test_old_pickle_format_is_refused_until_converted(phon2vec, tmp_path):
    import subprocess
    import sys

    from vasr.embeddings.vectors import LegacyFormatError

    old = tmp_path / "old"
    _write_legacy(phon2vec, old)
    with pytest.raises(LegacyFormatError, match=r"phon2vec\.kv: .*vasr embed convert"):
        Embeddings.load(old, "phon2vec")
    from vasr.runtime.decode.search import Decoder
    from vasr.runtime.decode.settings import DecodeSettings

    with pytest.raises(LegacyFormatError, match="phon2vec.kv"):  # what transcribe, tune and bias-eval load
        Decoder(["<blk>", "a"], DecodeSettings(embeddings=str(old)))
    cli = [sys.executable, "-m", "vasr", "embed", "convert"]
    out = subprocess.run(cli + [str(old)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "trusting" in out.stderr and "pickle" in out.stderr
    assert f"{old / 'phon2vec.kv'} -> {old / 'phon2vec.json'}" in out.stdout
    assert not list(old.glob("*.kv*")) and not list(old.glob(".*"))  # pickles removed, no temporary left
    converted = Embeddings.load(old, "phon2vec")
    assert converted.neighbours("tường", 5) == phon2vec.neighbours("tường", 5)
    assert converted.neighbours("tướng", 3) == phon2vec.neighbours("tướng", 3)  # token vectors came along
    # nothing left to convert: one line, exit 2
    out = subprocess.run(cli + [str(old)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no old-format embeddings" in out.stderr and "Traceback" not in out.stderr
    # --keep-old keeps the pickles (vasr never loads them once KIND.json is there)
    kept = tmp_path / "kept"
    _write_legacy(phon2vec, kept)
    assert subprocess.run(cli + [str(kept), "--keep-old"], capture_output=True, timeout=120).returncode == 0
    assert (kept / "phon2vec.kv").is_file() and Embeddings.load(kept, "phon2vec").index_kind == "flat"


def test_an_interrupted_save_never_loads_half_written(phon2vec, tmp_path, monkeypatch):
    import vasr.embeddings.vectors as vectors_module

    phon2vec.save(tmp_path)
    other = train_phon2vec(_random_corpus(40, seed=5), SMALL)  # another vocabulary
    real = vectors_module.os.replace
    moved = []

    def crash_after_two(src, dst):
        if len(moved) == 2:
            raise OSError("disk full")
        moved.append(dst)
        real(src, dst)

    monkeypatch.setattr(vectors_module.os, "replace", crash_after_two)
    with pytest.raises(OSError, match="disk full"):
        other.save(tmp_path)
    monkeypatch.undo()
    # the old metadata went first: the kind is absent, not a mix of old and new files
    with pytest.raises(ValueError, match="phon2vec.json: missing"):
        Embeddings.load(tmp_path, "phon2vec")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the temporary directory is gone
    other.save(tmp_path)
    assert Embeddings.load(tmp_path, "phon2vec").vectors.index_to_key == other.vectors.index_to_key


def test_files_that_do_not_match_are_named(phon2vec, tmp_path):
    import shutil

    small = train_word2vec(["xin chào bạn", "chào bạn nhé"], SMALL)
    for name in ("a", "b"):
        phon2vec.save(tmp_path / name)
    small.save(tmp_path / "b")
    shutil.copy(tmp_path / "b" / "word2vec.faiss", tmp_path / "a" / "phon2vec.faiss")
    with pytest.raises(ValueError, match=r"phon2vec\.faiss: the index \(4 x 32\) does not match"):
        Embeddings.load(tmp_path / "a", "phon2vec")
    shutil.copy(tmp_path / "b" / "word2vec.npy", tmp_path / "b" / "phon2vec.npy")
    with pytest.raises(ValueError, match=r"phon2vec\.vocab\.json: .* words for vectors of shape"):
        Embeddings.load(tmp_path / "b", "phon2vec")
    (tmp_path / "b" / "word2vec.json").write_text('{"format": 1, "kind": "word2vec"}', encoding="utf-8")
    with pytest.raises(ValueError, match="not vasr word2vec embeddings of format 2"):
        Embeddings.load(tmp_path / "b", "word2vec")


def test_build_into_an_existing_file_is_refused(tmp_path):
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match="taken: exists and is not a directory"):
        build(EmbedConfig(out_dir=tmp_path / "taken", text=tmp_path / "taken", word2vec=SMALL, phon2vec=SMALL))
