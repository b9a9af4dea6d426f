"""Forced alignment of transcripts (vasr.align), corpus scoring (`vasr align`) and flagging (`vasr clean`).

The word times are checked on hand-made log-probs whose best alignment is known; the commands end to
end on the session's fixture model (tests/test_export.py ``exported()``) over a database of the 16
renderings it was trained on (8 sentences at 2 speeds; at its held-out speed the 150-step model gets
a third of the letters wrong), one of them given another sentence's transcript, on SQLite and
PostgreSQL.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from vasr.align import WordSpan, align_tokens, align_words, score_utterance, token_runs
from vasr.clean import CleanConfig, Scored, TextModel, flag, text_evidence
from vasr.text.tokens import CharTokenizer

FRAME_S = 0.04
HIGH, LOW = 0.9, 0.02


def _log_probs(path: list[str], symbols: list[str], peak: dict[int, float] | None = None) -> np.ndarray:
    """(T, V) log-softmax whose frame t puts ``HIGH`` (or ``peak[t]``) on ``path[t]`` and ``LOW`` elsewhere."""
    lp = np.full((len(path), len(symbols)), LOW)
    for t, s in enumerate(path):
        lp[t, symbols.index(s)] = (peak or {}).get(t, HIGH)
    return np.log(lp / lp.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def tok() -> CharTokenizer:
    return CharTokenizer.build(["ab ba"])      # <blk> ▁ a b


def test_align_words_known_alignment(tok):
    # frames:  0 a  1 a  2 _  3 b  4 ▁  5 b  6 _  7 a  8 a  9 _ ; frame 8 less sure of its a
    path = ["a", "a", "<blk>", "b", "▁", "b", "<blk>", "a", "a", "<blk>"]
    lp = _log_probs(path, tok.symbols, peak={8: 0.5, 0: 0.5})
    alignment = align_tokens(lp, "ab ba", tok, FRAME_S)
    assert alignment.tokens == (2, 3, 1, 3, 2)
    assert alignment.starts == (0, 3, 4, 5, 7)
    assert alignment.ends == (2, 4, 5, 6, 9)      # each run's last frame + 1: the blanks are not the token's
    # a word's gap is taken from the previous word's last run to the next word's first: the ▁ is shared
    assert alignment.word_frames == ((0, 5), (4, 10))
    assert alignment.word_gaps == (0.0, 0.0)       # the aligned path is the argmax path
    p_high = HIGH / (HIGH + 3 * LOW)              # the posterior of the peak token of a frame
    p_half = 0.5 / (0.5 + 3 * LOW)
    words = align_words(lp, "ab ba", tok, FRAME_S, offset_s=1.0)
    # a word's confidence: the mean over its letters of the best posterior within the letter's run
    assert words == [WordSpan("ab", 1.0, 1.16, round(p_high, 4)), WordSpan("ba", 1.2, 1.36, round(p_high, 4))]
    # the run of 'a' at frames 7-8 keeps its best frame: 0.5 at frame 8 does not lower it
    assert words[1].confidence == round((p_high + p_high) / 2, 4)
    assert p_half < p_high
    assert align_words(lp, "", tok, FRAME_S) == []


def test_a_word_the_audio_lacks_gets_a_low_confidence():
    tok = CharTokenizer.build(["ab ba cd"])
    path = ["a", "a", "<blk>", "b", "▁", "b", "<blk>", "a", "a", "<blk>"]
    lp = _log_probs(path, tok.symbols)
    right, wrong = align_words(lp, "ab cd", tok, FRAME_S)   # the audio says "ab ba"
    gaps = align_tokens(lp, "ab cd", tok, FRAME_S).word_gaps
    assert gaps == (3.807, 11.42)   # nats; the second word: c and d forced where a was heard (the first: b)
    scored = score_utterance(lp, "ab cd", tok, FRAME_S, len(path) * FRAME_S)
    assert (scored.word_gap, scored.next_word_gap, scored.worst_word) == (11.42, 3.807, "cd")
    assert score_utterance(lp, "ab", tok, FRAME_S, len(path) * FRAME_S).next_word_gap == 0.0   # one word
    assert right.confidence >= 0.85
    assert wrong.confidence < 0.1
    assert 0.0 <= wrong.start_s < wrong.end_s <= len(path) * FRAME_S


def test_token_runs_of_repeats_leave_a_blank():
    # tokens a a: the first run must end before the blank that separates the copies
    lp = np.log(np.array([[0.05, 0.9, 0.05], [0.05, 0.9, 0.05], [0.3, 0.6, 0.1], [0.05, 0.9, 0.05]],
                         dtype=np.float32))
    starts = (0, 3)
    assert token_runs(lp, [1, 1], starts) == [2, 4]
    # the tie-break: equal token and blank scores give the longer run
    lp = np.log(np.array([[0.1, 0.8, 0.1], [0.45, 0.45, 0.1]], dtype=np.float32))
    assert token_runs(lp, [1], (0,)) == [2]


def test_align_words_errors_name_the_problem(tok):
    lp = _log_probs(["a", "b", "<blk>"], tok.symbols)
    with pytest.raises(ValueError, match=r"'c' \(U\+0063\)"):
        align_words(lp, "abc", tok, FRAME_S)
    with pytest.raises(ValueError, match="need at least 5 model frames.*gives 3"):
        align_words(lp, "ab ba", tok, FRAME_S)
    with pytest.raises(ValueError, match="need at least 3 model frames"):   # a repeat needs a blank too
        align_words(lp[:2], "aa", tok, FRAME_S)


def _scored(i: int, cer: float, speaker: str = "s", error: str | None = None, gap: float = -0.01,
            rate: float = 10.0, word_gap: float = 1.0, next_gap: float = 0.0, outside: int = 0,
            hyp: str | None = "hyp") -> Scored:
    return Scored(i, f"{i}.wav", speaker, "ref", hyp, None if error else gap - 0.1, None if error else -0.1,
                  0.9, 0.8, None if error else word_gap, None if error else next_gap, "ref", "heard", 1.0, outside,
                  cer, rate, error)


def test_flag_rules_are_robust_and_need_the_floor():
    rng = np.random.default_rng(0)
    rows = [_scored(i, float(c), word_gap=float(w)) for i, (c, w) in
            enumerate(zip(rng.uniform(0.0, 0.1, 40), rng.uniform(0.0, 4.0, 40)))]
    too_fast = "cannot align 'ref': its 3 tokens need at least 3 model frames (0.12 s), the audio gives 2"
    rows += [_scored(100, 0.8), _scored(101, 0.2), _scored(102, 0.0, error="audio: too short", hyp=None),
             _scored(103, 0.0, gap=-2.0), _scored(104, 0.05, rate=2.0), _scored(105, 0.05, word_gap=60.0, next_gap=2.0),
             _scored(106, 0.05, word_gap=14.0), _scored(107, 0.05, outside=3), _scored(108, 0.05, hyp="hyphyp"),
             _scored(109, 0.05, error=too_fast), _scored(110, 0.8, error=too_fast),
             _scored(111, 0.05, word_gap=22.0, next_gap=14.0), _scored(112, 0.05, error=too_fast, rate=11.5),
             _scored(113, 0.05, error=too_fast, rate=10.8), _scored(114, 0.05, word_gap=40.0, next_gap=30.0)]
    config = CleanConfig(gap_z=6.0, text_weight=0)   # the likelihood rule is off by default; the text: below
    flags = {f.utterance.audio_id: f.reasons for f in flag(rows, config)}
    # 101: an outlier, but under the CER floor; 106: a word gap under the floor; 109: its transcript does
    # not fit the frames, but the model heard it (CER 0.05): fast speech, not a wrong transcript; 111: its
    # worst word is bad, but the next one nearly as bad (a word the model mishears, not one replaced) and
    # its gap under the gap floor; 114: a contrast of 10, but a gap of 40 (two bad words);
    # 112 does not fit either and speaks faster than the voice does (rate z 3 > 2): flagged, 113 (z 1.6) not
    assert set(flags) == {100, 102, 103, 104, 105, 107, 108, 110, 112, 114}
    assert flags[114] == ("word gap z=7.7 ('ref' heard as 'heard', 40 nats)",)
    assert flags[100][0].startswith("cer z=") and flags[102] == ("unaligned: audio: too short",)
    assert len(flags[110]) == 1 and flags[110][0].startswith("cer z=")
    assert flags[112] == (f"unaligned: {too_fast} (rate z=3.0)",)
    assert flags[103][0].startswith("likelihood") and flags[104][0].startswith("rate")
    assert flags[105][0].startswith("word z=")
    assert flags[105][0].endswith("('ref' heard as 'heard', 58 nats past the next worst word)")
    assert flags[107] == ("untranscribed: 3 letters heard outside the transcript",)
    assert flags[108] == ("length x2.00",)
    assert 103 not in {f.utterance.audio_id for f in flag(rows, CleanConfig(text_weight=0))}
    assert not flag(rows, CleanConfig(flag_unaligned=False, cer_floor=0.9, rate_z=100, word_floor=100,
                                      word_gap_floor=100, outside_letters=0, length_ratio=0))
    # a voice whose every utterance is unaligned has no group to be judged against: flagged as unaligned
    lone = _scored(300, 0.05, speaker="lone", error=too_fast)
    assert [f.reasons for f in flag([*rows[:40], lone], CleanConfig(min_group=2))] == [(f"unaligned: {too_fast}",)]
    # a speaker with enough utterances is judged against itself: a weak voice's high CER is its normal
    weak = [_scored(200 + i, 0.5 + 0.01 * (i % 5), speaker="weak") for i in range(25)]
    assert {f.utterance.audio_id for f in flag(rows + weak, config)} == set(flags)


def test_the_text_model_leaves_the_scored_transcript_out():
    model = TextModel(["a b", "a"], order=1)
    # unigrams a 2, b 1, </s> 2 (5 in all, 3 kinds, 4 words with the unknown one), discount 0.75:
    # P(a) = P(</s>) = (2 - 0.75 + 0.75 * 3 / 4) / 5 = 0.3625
    assert model.logprob(["a"]) == pytest.approx(2 * math.log(0.3625))
    # without "a"'s own counts: a 1, b 1, </s> 1: (1 - 0.75 + 0.75 * 3 / 4) / 3
    assert model.logprob(["a"], leave_out="a") == pytest.approx(2 * math.log(0.8125 / 3))
    trigram = TextModel(["mở tập tin", "mở tập tin mới", "lưu tập tin"])
    assert sum(math.exp(trigram.logprob([w], leave_out="lưu tập tin")) for w in ("mở", "tập", "tin", "mới", "lưu",
                                                                                 "xyz")) < 1.0
    # a word only the left-out transcript has is as unlikely as one never seen
    assert trigram.logprob(["lưu"], leave_out="lưu tập tin") == pytest.approx(trigram.logprob(["xyz"],
                                                                                                leave_out="lưu tập tin"))


def _corpus_rows() -> list[Scored]:
    """40 right transcripts of a small command language, each heard as written (worst word gap 0-4)."""
    import dataclasses

    rng = np.random.default_rng(2)
    objects = ["tập tin", "thư mục", "cửa sổ", "bảng tính"]
    verbs = ["mở", "đóng", "lưu", "xóa", "chọn"]
    rows = []
    for i in range(40):
        text = f"{verbs[i % 5]} {objects[i % 4]} này"
        rows.append(dataclasses.replace(_scored(i, 0.05, word_gap=float(rng.uniform(0, 4))), text=text,
                                        worst_word=text.split()[1], worst_heard=text.split()[1]))
    return rows


def test_the_text_decides_a_word_the_audio_alone_leaves_in_doubt():
    import dataclasses

    base = _scored(0, 0.05)
    # "mở tập tin này" written as "mở tập bàn này": 15 nats past the next worst word, under the floor
    # of 18 alone; the model heard "tin", which the other transcripts say follows "tập"
    replaced = dataclasses.replace(base, audio_id=100, text="mở tập bàn này", worst_word="bàn", worst_heard="tin",
                                   word_gap=16.0, next_word_gap=1.0)
    # a right transcript whose "cửa" the model hears as "cưa x": 22 nats past the next one, but
    # the text says the written word fits and what was heard does not
    misheard = dataclasses.replace(base, audio_id=101, text="đóng cửa sổ này", worst_word="cửa",
                                   worst_heard="cưa x", word_gap=23.0, next_word_gap=1.0)
    rows = [*_corpus_rows(), replaced, misheard]
    evidence = text_evidence(rows)
    assert evidence[100] == pytest.approx(10.90, abs=0.01) and evidence[101] == pytest.approx(-14.85, abs=0.01)
    assert all(evidence[i] == 0.0 for i in range(40))        # heard as written: the same sentence
    assert [f.reasons for f in flag(rows, CleanConfig(text_weight=0))] == [
        ("word z=4.0 ('cửa' heard as 'cưa x', 22 nats past the next worst word)",)]
    assert [f.reasons for f in flag(rows)] == [
        ("word z=4.7 ('bàn' heard as 'tin', 26 nats past the next worst word, +11 from the text)",)]


def test_a_short_transcript_needs_a_larger_cer_to_be_flagged():
    import dataclasses

    long_text = "một hai ba bốn năm sáu bảy tám chín mười"          # 31 letters
    rng = np.random.default_rng(1)
    rows = [dataclasses.replace(_scored(i, float(c)), text=long_text) for i, c in enumerate(rng.uniform(0.0, 0.1, 40))]
    # the same CER, 0.6: flagged on a transcript of the median length, not on one of 3 letters, where
    # the spread is scaled by sqrt(31 / 3) = 3.21; a 3-letter one is still flagged with more
    rows += [dataclasses.replace(_scored(100, 0.6), text=long_text), dataclasses.replace(_scored(101, 0.6), text="ă ru"),
             dataclasses.replace(_scored(102, 1.0), text="ă ru")]
    z = {f.utterance.audio_id: f.reasons[0] for f in flag(rows)}
    assert set(z) == {100, 102}
    full = float(z[100].removeprefix("cer z="))
    scaled = float(z[102].removeprefix("cer z="))
    m = float(np.median([r.greedy_cer for r in rows]))
    assert full > 6 and scaled == pytest.approx(full * (1.0 - m) / (0.6 - m) / math.sqrt(31 / 3), abs=0.1)


# -- the commands end to end on the fixture model

CORRUPTED = 5      # the fixture rendering (sentence index) whose transcript is another's


@pytest.fixture(scope="module")
def fixture():
    from test_export import SENTENCES, exported

    fx = exported()
    lines = ["file_path,transcript,split,speaker_id"]
    for speed in (140, 170):
        for i, text in enumerate(SENTENCES):
            if speed == 170 and i == CORRUPTED:
                text = SENTENCES[2]                 # "một hai ba" for "người dân"
            lines.append(f"{fx['root']}/s{speed}_{i}.wav,{text},train,v{speed}")
    manifest = fx["root"] / "align.csv"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {**fx, "align_manifest": manifest}


def _run(capsys, *argv) -> tuple[int, str, str]:
    from vasr.cli import main

    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def _audio_id(engine, name: str) -> int:
    from sqlalchemy import select

    from vasr.db.schema import audio_files

    with engine.connect() as conn:
        return conn.execute(select(audio_files.c.id).where(audio_files.c.path.like(f"%/{name}"))).scalar_one()


def _version(engine, version: str) -> set[int]:
    from sqlalchemy import select

    from vasr.db.schema import data_splits

    with engine.connect() as conn:
        return set(conn.execute(select(data_splits.c.audio_id).where(data_splits.c.version == version)).scalars())


def test_align_and_clean_end_to_end(fixture, db_url, capsys):
    from sqlalchemy import func, select

    from vasr.db import store
    from vasr.db.schema import alignment_runs, alignment_scores, alignment_words

    assert _run(capsys, "import", "csv", str(fixture["align_manifest"]), "--db", db_url)[0] == 0
    rc, out, err = _run(capsys, "align", str(fixture["model_dir"]), "--split", "train", "--db", db_url)
    assert rc == 0, err
    assert "alignment run 1: 16 utterances" in out and "0 could not be aligned" in out
    engine = store.connect(db_url)
    try:
        bad = _audio_id(engine, f"s170_{CORRUPTED}.wav")
        with engine.connect() as conn:
            run = conn.execute(select(alignment_runs)).one()
            assert (run.split, run.split_version, run.utterances, run.failed) == ("train", "default", 16, 0)
            assert run.finished_at is not None and run.model.endswith("model")
            scores = {r.audio_id: r for r in conn.execute(select(alignment_scores))}
            words = conn.execute(select(func.count()).select_from(alignment_words)).scalar()
        assert len(scores) == 16 and words == sum(len(t.split()) for t in _texts(fixture))
        good = [s for a, s in scores.items() if a != bad]
        assert scores[bad].greedy_cer > 0.5 and max(s.greedy_cer for s in good) < 0.1
        assert scores[bad].log_likelihood < min(s.log_likelihood for s in good)
        assert all(0 <= s.min_confidence <= s.mean_confidence <= 1 and s.chars_per_s > 0 for s in good)

        rc, out, err = _run(capsys, "clean", "--split", "train", "--db", db_url, "--write-version", "cleaned")
        assert rc == 0, err
        assert "1 of 16 utterances" in out and f"{bad:>7}" in out and "hyp: " in out
        everything = _version(engine, "default")
        assert _version(engine, "cleaned") == everything - {bad}
        # idempotent; a second alignment run is the one clean reads next
        assert _run(capsys, "clean", "--split", "train", "--db", db_url, "--write-version", "cleaned")[0] == 0
        assert _version(engine, "cleaned") == everything - {bad}
        assert _run(capsys, "align", str(fixture["model_dir"]), "--split", "train", "--db", db_url)[0] == 0
        rc, out, _ = _run(capsys, "clean", "--split", "train", "--db", db_url)
        assert out.startswith("alignment run 2: 1 of 16")
        assert _run(capsys, "clean", "--split", "train", "--db", db_url, "--run", "1")[1].startswith("alignment run 1")
    finally:
        engine.dispose()


def _texts(fixture) -> list[str]:
    return [line.split(",")[1] for line in fixture["align_manifest"].read_text(encoding="utf-8").splitlines()[1:]]


def test_checkpoint_scores_like_the_exported_model(fixture, tmp_path, capsys):
    from sqlalchemy import select

    from vasr.db import store
    from vasr.db.schema import alignment_scores

    db = str(tmp_path / "vasr.db")
    assert _run(capsys, "import", "csv", str(fixture["align_manifest"]), "--db", db)[0] == 0
    assert _run(capsys, "align", str(fixture["model_dir"]), "--db", db)[0] == 0
    rc, out, err = _run(capsys, "align", "--checkpoint", str(fixture["checkpoint"]), "--db", db, "--batch", "5")
    assert rc == 0, err
    engine = store.connect(db)
    with engine.connect() as conn:
        rows = conn.execute(select(alignment_scores).order_by(alignment_scores.c.audio_id)).all()
    engine.dispose()
    onnx = {r.audio_id: r for r in rows if r.run_id == 1}
    torch_ = {r.audio_id: r for r in rows if r.run_id == 2}
    assert onnx.keys() == torch_.keys() and len(onnx) == 16
    for a, r in onnx.items():
        assert math.isclose(r.log_likelihood, torch_[a].log_likelihood, abs_tol=2e-3)
        assert r.hypothesis == torch_[a].hypothesis and r.frames == torch_[a].frames


def test_folds_score_each_utterance_with_a_model_that_did_not_train_on_it(fixture, tmp_path, capsys):
    from sqlalchemy import select

    from vasr.align import fold_assignment
    from vasr.db import store
    from vasr.db.schema import alignment_runs, alignment_scores, training_runs

    db = str(tmp_path / "vasr.db")
    assert _run(capsys, "import", "csv", str(fixture["align_manifest"]), "--db", db)[0] == 0
    rc, out, err = _run(capsys, "align", "--folds", "2", "--train-set", "epochs=1", "--train-set", "threads=1",
                        "--fold-dir", str(tmp_path / "folds"), "--db", db)
    assert rc == 0, err
    assert "alignment run 1: 16 utterances" in out and "2-fold cross-fitting (tiny)" in out
    engine = store.connect(db)
    try:
        everything = _version(engine, "default")
        assert len(everything) == 16
        folds = fold_assignment(sorted(everything), 2, seed=0)
        assert sorted(folds.values()) == [0] * 8 + [1] * 8
        for k in (1, 2):
            # fold k's model trained on the other fold only; the scores of fold k are its
            assert _version(engine, f"default.fold{k}of2") == {a for a, f in folds.items() if f != k - 1}
            assert len(list((tmp_path / "folds" / "run1" / f"fold{k}").glob("*/last.pt"))) == 1   # no val: no best
        with engine.connect() as conn:
            versions = sorted(conn.execute(select(training_runs.c.split_version)).scalars())
            run = conn.execute(select(alignment_runs)).one()
            scored = set(conn.execute(select(alignment_scores.c.audio_id)).scalars())
        assert versions == ["default.fold1of2", "default.fold2of2"]
        assert (run.utterances, run.model, run.config["folds"], run.model_id) == (16, "2-fold cross-fitting (tiny)", 2,
                                                                                 None)
        assert scored == everything
        # the same folds again: the fold versions are rewritten with the same rows
        assert fold_assignment(sorted(everything), 2, seed=0) == folds
        assert fold_assignment(sorted(everything), 2, seed=1) != folds
    finally:
        engine.dispose()
    for argv, message in [(["align", str(fixture["model_dir"]), "--folds", "2"], "give no MODEL_DIR"),
                          (["align", "--folds", "2", "--split", "val"], "--folds scores the train split"),
                          (["align", "--folds", "1"], "folds 1: expected an integer >= 2"),
                          (["align", "--folds", "2", "--train-set", "db=x.db"], "train override 'db=x.db'")]:
        rc, _, err = _run(capsys, *argv, "--db", db)
        assert rc == 2 and err.strip().count("\n") == 0 and message in err, err


def test_one_line_errors(fixture, tmp_path, capsys):
    db = str(tmp_path / "vasr.db")
    rc, _, err = _run(capsys, "align", str(tmp_path / "nope"), "--db", db)
    assert rc == 2 and err.strip().count("\n") == 0 and "no such model directory" in err
    rc, _, err = _run(capsys, "align", "--db", db)
    assert rc == 2 and "MODEL_DIR" in err and "--checkpoint" in err
    rc, _, err = _run(capsys, "align", str(fixture["model_dir"]), "--split", "test", "--db", db)
    assert rc == 2 and err.strip().count("\n") == 0 and "split 'test' of version 'default' has no utterances" in err
    rc, _, err = _run(capsys, "clean", "--split", "val", "--db", db)
    assert rc == 2 and "no finished alignment run of split 'val'" in err and "vasr align" in err
    rc, _, err = _run(capsys, "clean", "--db", db, "--write-version", "default")
    assert rc == 2 and "the version being cleaned" in err
    with pytest.raises(SystemExit):                  # argparse: an unknown split name
        _run(capsys, "align", str(fixture["model_dir"]), "--split", "dev", "--db", db)
