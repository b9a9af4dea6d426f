"""Streaming recognition on the session's streaming fixture (a 2-layer streaming Conformer trained on
espeak-ng speech, exported with model-streaming.onnx): sherpa-onnx's online recognizer loads the
export unchanged and agrees with vasr's stream; finals do not depend on block sizes and equal the
chunk-masked PyTorch model; hot words, endpoints and bad input."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest

from test_export import exported, exported_streaming

from vasr.kernels import edit_distance

TAIL_S = 0.5         # silence after each file: sherpa-onnx decodes only complete chunks


def _wav(name: str) -> np.ndarray:
    from vasr.runtime.audio import load

    return load(exported_streaming()["root"] / name)


def _recognizer(**options):
    from vasr import Recognizer
    from vasr.runtime.recognizer import MODEL_FP32, RecognizerOptions

    return Recognizer(exported_streaming()["model_dir"], RecognizerOptions(model_file=MODEL_FP32, raw=True, **options))


def _finals(recognizer, wave, block: int, rate: int = 16000, hotwords=None, options=None):
    from vasr.runtime.stream import StreamOptions, feed

    stream = recognizer.stream(rate, hotwords, options or StreamOptions())
    return feed(stream, (wave[i: i + block] for i in range(0, len(wave), block)))


def _padded(name: str) -> np.ndarray:
    return np.concatenate([_wav(name), np.zeros(int(TAIL_S * 16000), np.float32)])


TEST_FILES = [f"s155_{i}.wav" for i in range(8)]


def test_sherpa_onnx_online_recognizer_loads_the_export_and_gives_the_same_greedy_text():
    sherpa_onnx = pytest.importorskip("sherpa_onnx")
    model_dir = exported_streaming()["model_dir"]
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["streaming"]
    theirs = sherpa_onnx.OnlineRecognizer.from_wenet_ctc(
        tokens=str(model_dir / "tokens.txt"), model=str(model_dir / "model-streaming.onnx"),
        chunk_size=config["chunk"], num_left_chunks=config["left_chunks"], num_threads=1)
    ours = _recognizer()
    texts = []
    for name in TEST_FILES:
        wave = _padded(name)
        s = theirs.create_stream()
        s.accept_waveform(16000, wave)
        s.input_finished()
        while theirs.is_ready(s):
            theirs.decode_stream(s)
        mine = " ".join(seg.raw_text for seg in _finals(ours, wave, 1600))
        assert theirs.get_result(s).replace("\u2581", " ").strip() == mine, name
        texts.append(mine)
    assert sum(bool(t) for t in texts) == len(TEST_FILES), "the fixture must produce text"


def test_finals_do_not_depend_on_block_size():
    recognizer = _recognizer()
    wave = np.concatenate([_wav("s155_1.wav"), np.zeros(16000, np.float32), _wav("s155_3.wav")])
    results = {}
    for block in (1, 160, 16000):
        finals = _finals(recognizer, wave, block)
        results[block] = [(s.raw_text, s.tokens, s.frames, s.start) for s in finals]
    assert results[1] == results[160] == results[16000]
    # two utterances, the first as the stream hears it alone (within a letter of its text); the
    # fixture, trained on clips that start at once, hears the second one badly
    alone = _finals(recognizer, _wav("s155_1.wav"), 160)[0].raw_text
    assert len(results[160]) == 2 and results[160][0][0] == alone and results[160][1][0]
    assert edit_distance(alone, "cảm ơn bạn") <= 1, alone


def test_stream_equals_the_chunk_masked_pytorch_model():
    torch = pytest.importorskip("torch")
    from vasr.checkpoint import load_checkpoint
    from vasr.kernels import compute_fbank, ctc_greedy_search

    loaded = load_checkpoint(exported_streaming()["checkpoint"])
    recognizer = _recognizer()
    for name in TEST_FILES[:4]:
        wave = _wav(name)
        feats = torch.from_numpy(compute_fbank(wave))[None]
        with torch.no_grad():
            lp, lens = loaded.model.eval()(feats, torch.tensor([feats.shape[1]]), chunk=8, left_chunks=8)
        expected = ctc_greedy_search(lp[0, : int(lens[0])].numpy())
        (final,) = _finals(recognizer, wave, 800)
        assert final.tokens == expected.tokens, name


def test_other_sample_rates_and_int16_blocks_give_the_same_text():
    import soxr

    recognizer = _recognizer()
    wave = _wav("s155_2.wav")
    reference = [s.raw_text for s in _finals(recognizer, wave, 1600)]
    for rate in (22050, 48000):
        resampled = soxr.resample(wave, 16000, rate).astype(np.float32)
        assert [s.raw_text for s in _finals(recognizer, resampled, rate // 10, rate=rate)] == reference, rate
    as_int16 = np.round(wave * 32767).astype(np.int16)
    assert [s.raw_text for s in _finals(recognizer, as_int16, 1600)] == reference


def test_partials_come_per_chunk_and_grow_into_the_final():
    from vasr.runtime.stream import StreamOptions

    recognizer = _recognizer()
    stream = recognizer.stream(16000, None, StreamOptions())
    wave = _wav("s155_2.wav")
    events = []
    for i in range(0, len(wave), 1280):          # 80 ms blocks: a 320 ms chunk every 4 blocks
        events += stream.accept(wave[i: i + 1280])
    events += stream.finish()
    partials = [e for e in events if not e.final]
    finals = [e for e in events if e.final]
    chunks = (len(wave) // 160 - 3) // 32        # complete chunks before finish()
    assert len(partials) == chunks
    assert [f.segment.raw_text for f in finals] == ["một hai ba"]
    assert finals[0].segment.raw_text.startswith(partials[-1].segment.raw_text.rsplit(" ", 1)[0])


def test_hot_words_mend_what_the_plain_beam_search_misspells_mid_stream():
    """Each held-out file decoded in 0.1 s blocks, with and without its own sentence as a hot word:
    the weak fixture misspells some of them (e.g. "cả ơn bạn"), and the hot word gives the truth for
    every one, without disturbing those already right."""
    from vasr.runtime.decode import DecodeOptions

    from test_export import SENTENCES

    plain = _recognizer(decode=DecodeOptions(beam=8))
    misspelt = []
    for name, truth in zip(TEST_FILES, SENTENCES):
        wave = _wav(name)
        text = " ".join(s.raw_text for s in _finals(plain, wave, 1600))
        if text != truth:
            misspelt.append(text)
        assert [s.raw_text for s in _finals(plain, wave, 1600, hotwords=[(truth, 3.0)])] == [truth], name
    assert misspelt, "the test needs a file the plain decode gets wrong"


def test_endpoints_split_at_pauses_and_drop_what_has_no_speech():
    from vasr.runtime.stream import EndpointRules, StreamOptions

    recognizer = _recognizer()
    gap = np.zeros(int(1.5 * 16000), np.float32)
    wave = np.concatenate([_wav("s155_1.wav"), gap, _wav("s155_4.wav")])
    split = _finals(recognizer, wave, 1600)
    alone = _finals(recognizer, _wav("s155_1.wav"), 1600)[0].raw_text
    assert len(split) == 2 and split[0].raw_text == alone and split[1].raw_text
    assert split[0].words[-1].end <= 1.3 and split[1].words[-1].start >= 2.6   # the pause is 1.2..2.7 s
    joined = _finals(recognizer, wave, 1600, options=StreamOptions(endpoint=EndpointRules(trailing_silence_s=3.0)))
    assert len(joined) == 1 and joined[0].raw_text.startswith(alone + " ")
    short = _finals(recognizer, wave, 1600, options=StreamOptions(endpoint=EndpointRules(max_utterance_s=0.5)))
    assert len(short) >= 4 and all(s.end - s.start <= 0.5 + 0.33 for s in short)
    rng = np.random.default_rng(0)
    noise = (0.02 * rng.standard_normal(4 * 16000)).astype(np.float32)
    assert _finals(recognizer, noise, 1600) == []


def test_the_model_waits_for_speech_and_an_utterance_starts_at_it():
    """Silence before speech (at the start and after an endpoint) is not run through the model: no
    partials come, and the utterance begins vad.pad_s before the VAD hears speech; its text is within
    a letter of what the speech alone gives (the weak fixture hears an onset after silence a little
    differently)."""
    recognizer = _recognizer()
    speech = _wav("s155_1.wav")
    stream = recognizer.stream()
    block = 1600
    silence = np.zeros(3 * 16000, np.float32)
    assert [e for i in range(0, silence.size, block) for e in stream.accept(silence[i: i + block])] == []
    events = [e for i in range(0, speech.size, block) for e in stream.accept(speech[i: i + block])]
    events += stream.finish()
    finals = [e.segment for e in events if e.final]
    onset = 3.0 + np.argmax(np.abs(speech) > 0.02) / 16000
    assert len(finals) == 1 and onset - 0.1 - 0.2 <= finals[0].start <= onset, (finals[0].start, onset)
    assert finals[0].words[0].start >= finals[0].start
    assert edit_distance(finals[0].raw_text, _finals(recognizer, speech, block)[0].raw_text) <= 1


def test_bad_input_gets_clear_errors():
    from vasr.runtime.recognizer import ModelDirError, Recognizer

    recognizer = _recognizer()
    stream = recognizer.stream()
    assert stream.accept(np.zeros(0, np.float32)) == []
    with pytest.raises(ValueError, match="NaN"):
        stream.accept(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="1-D"):
        stream.accept(np.zeros((160, 2), np.float32))
    with pytest.raises(ValueError, match="int32"):
        stream.accept(np.zeros(160, np.int32))
    stream.finish()
    with pytest.raises(RuntimeError, match="after finish"):
        stream.accept(np.zeros(160, np.float32))
    for rate in (0, -8000, 16000.5):
        with pytest.raises(ValueError, match="sample_rate"):
            recognizer.stream(rate)
    with pytest.raises(ModelDirError, match="no streaming model"):
        Recognizer(exported()["model_dir"]).stream()


def test_cli_stream_writes_finals_as_lines_and_jsonl_events():
    from vasr.cli import main

    model_dir = exported_streaming()["model_dir"]
    wav = exported_streaming()["root"] / "s155_2.wav"
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["transcribe", str(model_dir), str(wav), "--stream", "--fp32", "--raw"]) == 0
    assert buffer.getvalue() == "một hai ba\n"
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["transcribe", str(model_dir), str(wav), "--stream", "--fp32", "--raw", "--format", "jsonl"]) == 0
    events = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [e["final"] for e in events][-1] is True and not any(e["final"] for e in events[:-1])
    assert events[-1]["raw_text"] == "một hai ba" and events[-1]["words"][0]["word"] == "một"
    assert main(["transcribe", str(model_dir), str(wav), "--stream", "--chunk-ms", "100"]) == 2


def test_streaming_export_parity_with_dropout_and_the_model_left_in_eval_mode(tmp_path):
    torch = pytest.importorskip("torch")
    from vasr.export.streaming import PARITY_TOLERANCE, export_streaming
    from vasr.model import CtcModel, ModelConfig
    from vasr.runtime.stream import StreamOptions

    torch.manual_seed(0)
    model = CtcModel(ModelConfig(architecture="conformer", d_model=32, num_layers=2, num_heads=4, ff_dim=64,
                                 conv_kernel=5, subsampling_channels=8, dropout=0.3, streaming=True), 20)
    parity = export_streaming(model, tmp_path / "s.onnx", {}, StreamOptions(chunk=4, left_chunks=2))
    assert parity < PARITY_TOLERANCE and not model.training
