"""The contextual-biasing test set: entity facts, bias items, rendering, import under split version "bias"."""
from __future__ import annotations

import csv
import shutil

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from vasr.data import entities
from vasr.data.entities import PLACES, PROVINCES, TEMPLATES, bias_items, check_template
from vasr.data.synth import SynthConfig, bias_config, synthesize, synthesize_bias
from vasr.db import store
from vasr.db.schema import audio_files, bias_phrases, data_splits, metadata, transcripts
from vasr.text.normalize import is_syllable, normalize

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def _occurs(phrase: str, text: str) -> bool:
    return f" {phrase} " in f" {text} "


def test_entities_are_normalised_syllables():
    phrases = [*entities.SURNAMES, *entities.MIDDLE_NAMES, *entities.GIVEN_NAMES, *PLACES,
               *(entities.SLOT.sub("", t) for t in TEMPLATES)]
    for phrase in phrases:
        words = phrase.split()
        assert " ".join(words) == normalize(phrase), phrase
        assert all(is_syllable(w) for w in words), phrase
    assert len(PROVINCES) == len(set(PROVINCES)) == 63
    assert len(PLACES) == len(set(PLACES)) == 97
    assert {"hà nội", "thành phố hồ chí minh", "đà nẵng", "cần thơ", "hải phòng"} <= set(PROVINCES)
    assert (len(set(entities.SURNAMES)), len(set(entities.GIVEN_NAMES)), len(set(TEMPLATES))) == (25, 64, 40)
    assert all(check_template(t) for t in TEMPLATES)


def test_bad_templates_are_rejected():
    with pytest.raises(ValueError, match="no {person} or {place} slot"):
        check_template("xin chào các bạn")
    with pytest.raises(ValueError, match="no {person} or {place} slot"):
        bias_items(3, templates=("hôm nay trời đẹp",))
    with pytest.raises(ValueError, match="unknown slot"):
        check_template("gặp {name} ở {place}")
    with pytest.raises(ValueError, match="not Vietnamese syllables"):
        check_template("hello {person}")
    assert check_template("{person} đã gặp {person} ở {place}") == ("person", "person", "place")
    with pytest.raises(ValueError, match="n > 0"):
        bias_items(0)
    with pytest.raises(ValueError, match="distractors >= 0"):
        bias_items(5, distractors=-1)


def test_bias_items_are_deterministic_and_sound():
    items = bias_items(200, seed=3, distractors=20)
    assert items == bias_items(200, seed=3, distractors=20)
    assert items[:10] == bias_items(10, seed=3, distractors=20)
    assert [i.text for i in bias_items(20, seed=4)] != [i.text for i in items[:20]]
    assert bias_items(1, seed=3, distractors=4)[0] == entities.BiasItem(
        "bạn có biết lâm bảo khôi không", ("lâm bảo khôi",),
        ("lâm bảo khôi", "trịnh xuân văn sơn", "đặng gia lan", "dương hùng", "lâm minh hải"))
    for item in items:
        assert normalize(item.text) == item.text
        assert 1 <= len(item.entities) <= 3 and len(set(item.entities)) == len(item.entities)
        assert all(_occurs(e, item.text) for e in item.entities)
        assert len(item.bias_list) == len(set(item.bias_list)) == len(item.entities) + 20
        distractors = [p for p in item.bias_list if p not in item.entities]
        assert len(distractors) == 20
        assert not any(_occurs(d, item.text) for d in distractors)
        # distractors are of the kinds the item speaks
        spoken_kinds = {e in PLACES for e in item.entities}
        assert {d in PLACES for d in distractors} == spoken_kinds
        assert all(2 <= len(p.split()) <= 4 for p in distractors if p not in PLACES)
    assert any(item.bias_list[:len(item.entities)] != item.entities for item in items)  # shuffled
    spoken = [e for item in items for e in item.entities]
    assert {e for e in spoken if e in PLACES} == set(PLACES)           # every place is spoken
    assert {e.split()[-1] for e in spoken if e not in PLACES} == set(entities.GIVEN_NAMES)


def test_bias_config_defaults():
    config = bias_config(SynthConfig())
    assert (config.bias, config.n, config.out_dir, config.split_version, config.split_ratios, config.distractors) == (
        True, 300, "data/synth-bias", "bias", (0.0, 0.5, 0.5), 20)
    # values already changed from the corpus defaults are kept
    assert bias_config(SynthConfig(n=40, out_dir="x")).n == 40
    assert bias_config(SynthConfig(n=40, out_dir="x")).out_dir == "x"
    with pytest.raises(ValueError, match="synthesize_bias"):
        synthesize(config)


def _count(conn, table, *where) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()


@needs_espeak
def test_bias_set_renders_imports_and_reruns(engine, tmp_path, monkeypatch):
    voices = {"voices": ("vi", "vi-vn-x-south"), "variants": ("m1",)}
    text = tmp_path / "sentences.txt"
    text.write_text("xin chào các bạn\nhôm nay trời rất đẹp\n", encoding="utf-8")
    corpus, _ = synthesize(SynthConfig(n=2, out_dir=str(tmp_path / "corpus"), text=str(text), **voices), engine,
                           progress=False)
    config = bias_config(SynthConfig(n=6, out_dir=str(tmp_path / "bias"), distractors=4, **voices))

    def fail(conn, rows):
        raise RuntimeError("disk full")

    # the bias lists are part of the import's transaction: when they fail, no utterance is kept
    monkeypatch.setattr(store, "write_bias_lists", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        synthesize_bias(config, engine, progress=False)
    monkeypatch.undo()
    with engine.connect() as conn:
        assert (_count(conn, audio_files), _count(conn, bias_phrases)) == (len(corpus), 0)
    made = synthesize_bias(config, engine, progress=False)
    assert made.report.imported == 6 and made.phrases_written == sum(len(i.bias_list) for i in made.items)
    assert [i.text for i in made.items] == [j.text for j in made.jobs]
    assert 0 < made.seconds < 6 * 8
    with open(tmp_path / "bias" / "manifest.csv", encoding="utf-8") as fh:
        manifest = list(csv.DictReader(fh))
    assert [r["entities"].split(" | ") for r in manifest] == [list(i.entities) for i in made.items]
    assert [r["bias_list"].split(" | ") for r in manifest] == [list(i.bias_list) for i in made.items]
    assert [r["split"] for r in manifest] == made.splits
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audio_files.c.id, audio_files.c.speaker, data_splits.c.split,
                                      transcripts.c.normalized_text)
                            .join(data_splits, data_splits.c.audio_id == audio_files.c.id)
                            .join(transcripts, transcripts.c.audio_id == audio_files.c.id)
                            .where(data_splits.c.version == "bias")).all()
        assert _count(conn, data_splits, data_splits.c.version == "default") == 2
        lists = {**store.bias_lists(conn, "val"), **store.bias_lists(conn, "test")}
        assert store.bias_lists(conn, "train") == {} and store.bias_lists(conn, "test", "default") == {}
    # only the six bias utterances are in version "bias", split val/test, speaker-disjoint
    assert sorted(r.normalized_text for r in rows) == sorted(i.text for i in made.items)
    assert {r.split for r in rows} == {"val", "test"}
    assert len({(r.speaker, r.split) for r in rows}) == len({r.speaker for r in rows}) == 2
    item_of = {i.text: i for i in made.items}
    assert {r.id: [(p, p in item_of[r.normalized_text].entities) for p in item_of[r.normalized_text].bias_list]
            for r in rows} == lists
    # a second run renders nothing, imports nothing and writes no phrase twice
    again = synthesize_bias(config, engine, progress=False)
    assert (again.report.imported, again.report.already_present, again.phrases_written) == (0, 6, 0)
    with engine.connect() as conn:
        assert _count(conn, bias_phrases) == made.phrases_written
        assert _count(conn, data_splits, data_splits.c.version == "bias") == 6
        assert _count(conn, audio_files) == 6 + len(corpus)


def test_write_bias_lists_skips_stored_phrases(engine):
    with engine.begin() as conn:
        audio_id = conn.execute(sa.insert(audio_files).values(
            path="/x/a.wav", sha256="a" * 64, end_s=1.0, duration_s=1.0, sample_rate=16000, channels=1,
            format="WAV", source="synth")).inserted_primary_key[0]
        conn.execute(sa.insert(data_splits).values(audio_id=audio_id, split="test", version="bias"))
        assert store.audio_ids(conn, [("a" * 64, 0.0, 1.0), ("a" * 64, 0.0, 2.0), ("b" * 64, 0.0, 1.0)]) == \
            {("a" * 64, 0.0, 1.0): audio_id}
        assert store.write_bias_lists(conn, {audio_id: [("hà nội", True), ("lê văn an", False)]}) == 2
        assert store.write_bias_lists(conn, {audio_id: [("hà nội", True), ("lê văn an", False),
                                                        ("huế", False)]}) == 1
        assert store.bias_lists(conn, "test") == {audio_id: [("hà nội", True), ("lê văn an", False),
                                                             ("huế", False)]}
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            conn.execute(sa.insert(bias_phrases).values(audio_id=audio_id + 1000, phrase="x", is_entity=False,
                                                        position=0))
    with engine.begin() as conn:
        conn.execute(sa.delete(audio_files).where(audio_files.c.id == audio_id))
        assert _count(conn, bias_phrases) == 0


def test_migration_0003_downgrades_and_upgrades(engine):
    config = store._alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    with engine.connect() as conn:
        assert store.schema_revision(conn) == "0002"
        assert "bias_phrases" not in sa.inspect(conn).get_table_names()
    store.migrate(engine)
    with engine.connect() as conn:      # back at the newest revision (0003 and what came after it)
        assert store.schema_revision(conn) == ScriptDirectory.from_config(config).get_current_head()
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []

