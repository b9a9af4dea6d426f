"""The argument parser of the `vasr` command: one small function per subcommand, shared option
helpers, help text on every argument (a test walks the parser), and the epilog that says where to start.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from vasr import __version__
from vasr import config as cfg

EPILOG = f"""\
where to start:
  vasr demo                         the main job end to end: synth, train tiny, eval, export, transcribe
  vasr synth                        render the synthetic Vietnamese corpus and import it into the database
  vasr train --config tiny          train a model (presets: {', '.join(cfg.presets())}; or a YAML file)
  vasr export --checkpoint runs/tiny-1/best.pt --out MODEL_DIR
  vasr transcribe MODEL_DIR a.wav   speech to text with the exported model (no torch needed)
  vasr serve MODEL_DIR              the OpenAI-compatible API, live streaming and the web page

vasr COMMAND --help lists a command's options; --print-config shows a stage's resolved config.
"""
SPLITS = ("train", "val", "test")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vasr", description="Vietnamese speech-to-text toolkit", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"vasr {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, the Python traceback instead of one line (or VASR_DEBUG=1); anywhere on "
                             "the command line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_synth_parser, _import_parser, _db_parser, _shards_parser, _bench_parser, _demo_parser, _train_parser,
                _eval_parser, _runs_parser, _export_parser, _transcribe_parser, _embed_parser, _lm_parser,
                _tune_parser, _bias_eval_parser, _rescore_parser, _punct_parser, _serve_parser,
                _segment_parser, _align_parser, _clean_parser):
        add(sub)
    return parser


# -- options shared by several subcommands

def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLite path or SQLAlchemy URL (default: $VASR_DB or data/vasr.db)")


def _add_config(parser: argparse.ArgumentParser, example: str, what: str = "this stage's options") -> None:
    """--config, --set (``example``: a real key of the stage) and --print-config."""
    parser.add_argument("--config", type=Path, help=f"YAML file with {what}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override one option, e.g. --set {example} (repeatable; --print-config lists "
                             "the keys)")
    _add_print_config(parser)


def _add_print_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config (defaults, --config, --set, flags) as YAML and exit "
                             "without running")


def _add_split_version(parser: argparse.ArgumentParser, default: str = "default",
                       text: str = "split version to read (vasr import --split-version)") -> None:
    parser.add_argument("--split-version", default=default, help=text)


def _add_ratios(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ratios", type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=("TRAIN", "VAL", "TEST"),
                        help="train/val/test fractions of the speakers (default 0.8 0.1 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the speaker shuffle")


# -- one function per subcommand, in the order `vasr --help` lists them

def _synth_parser(sub) -> None:
    p = sub.add_parser("synth", help="render the synthetic Vietnamese corpus with espeak-ng and import it")
    p.add_argument("--n", type=int, help="number of utterances (default 3000; 300 with --bias)")
    p.add_argument("--out", help="output folder (wavs/ and manifest.csv; default data/synth, data/synth-bias)")
    p.add_argument("--bias", action="store_true",
                   help="the biasing test set instead: sentences with person and place names, each with its "
                        "bias list, imported as split version 'bias' (val and test)")
    p.add_argument("--distractors", type=int, help="--bias: phrases per bias list beside its entities (default 20)")
    p.add_argument("--text", help="UTF-8 text file, one sentence per line (default: system message catalogues)")
    p.add_argument("--seed", type=int, help="seed of sentences, voices, rates and the split (default 0)")
    p.add_argument("--no-import", action="store_true", help="render only; do not write the database")
    _add_config(p, "rate_wpm=[140,170]")
    _add_db(p)


def _import_parser(sub) -> None:
    p = sub.add_parser("import", help="import a corpus into the database")
    p.add_argument("kind", choices=("csv", "vivos", "commonvoice", "kaldi", "lhotse"), help="corpus format")
    p.add_argument("path", help="manifest file (csv; lhotse recordings or cuts) or corpus directory")
    p.add_argument("supervisions", nargs="?", help="lhotse: the supervisions manifest of the recordings manifest "
                                                   "(default: the sibling supervisions file)")
    p.add_argument("--audio-root", help="folder that relative audio paths are resolved against")
    p.add_argument("--split", help="kaldi, lhotse: the split of these utterances (train, val/dev, test)")
    p.add_argument("--skip-bad", action="store_true", help="import the good rows and record the rejects")
    p.add_argument("--auto-split", action="store_true",
                   help="seeded speaker-disjoint train/val/test split for utterances without one")
    _add_split_version(p, text="split version that --auto-split and the corpus's own splits are written to")
    _add_ratios(p)
    _add_print_config(p)
    _add_db(p)


def _segment_parser(sub) -> None:
    p = sub.add_parser("segment", help="a long recording and its whole transcript -> aligned utterances, "
                                       "imported as segments of the recording")
    p.add_argument("model_dir", help="exported model directory (vasr export) that aligns the transcript")
    p.add_argument("recording", help="the long audio file")
    p.add_argument("transcript", help="UTF-8 text of the whole recording; cuts fall between its sentences "
                                      "(punctuation or line breaks), else at pauses")
    p.add_argument("--speaker", help="speaker of every segment")
    p.add_argument("--split", choices=SPLITS, help="split of every segment")
    p.add_argument("--dry-run", action="store_true", help="print the segments; do not write the database")
    p.add_argument("--skip-bad", action="store_true",
                   help="import the segments that aligned and record the ones that did not")
    _add_split_version(p, text="split version that --split is written to")
    _add_config(p, "max_segment_s=15")
    _add_db(p)


def _align_parser(sub) -> None:
    p = sub.add_parser("align", help="score every utterance of a split by CTC forced alignment of its transcript "
                                     "(for vasr clean)")
    p.add_argument("model_dir", nargs="?", help="exported model directory (vasr export); or --checkpoint, "
                                                "or --folds")
    p.add_argument("--checkpoint", help="a training checkpoint instead of MODEL_DIR (needs torch)")
    p.add_argument("--split", default="train", choices=SPLITS, help="database split to score (default train)")
    _add_split_version(p)
    p.add_argument("--batch", type=int, help="utterances per model call (default 16)")
    p.add_argument("--int8", action="store_true", help="MODEL_DIR: use model.int8.onnx instead of model.onnx")
    p.add_argument("--threads", type=int, help="onnxruntime / torch threads (default 1)")
    p.add_argument("--folds", type=int, help="instead of a model: cut the train split into K folds and score each "
                                             "with a model trained on the others (K trainings; a model does not "
                                             "judge the transcripts it learnt)")
    p.add_argument("--train-config", help="--folds: training preset or YAML (default tiny)")
    p.add_argument("--train-set", action="append", default=[], metavar="KEY=VALUE",
                   help="--folds: a training override, e.g. max_minutes=15 (repeatable)")
    p.add_argument("--fold-dir", help="--folds: where the fold models go (default runs/align-folds)")
    p.add_argument("--fold-seed", type=int, help="--folds: which utterances go to which fold (default 0)")
    _add_print_config(p)
    _add_db(p)


def _clean_parser(sub) -> None:
    p = sub.add_parser("clean", help="flag likely-wrong transcripts from vasr align's scores; --write-version: "
                                     "a split version without them")
    p.add_argument("--split", default="train", choices=SPLITS, help="split to judge (default train)")
    _add_split_version(p, text="split version that was aligned (and that --write-version copies)")
    p.add_argument("--run", type=int, help="alignment run id (default: the newest finished run of the split)")
    p.add_argument("--write-version", help="write the split version minus the flagged utterances under this name "
                                           "(train on it with data.split_version=NAME)")
    p.add_argument("--show", type=int, help="flagged utterances printed (default 50; 0: all)")
    _add_config(p, "cer_z=5")
    _add_db(p)

def _db_parser(sub) -> None:
    db = sub.add_parser("db", help="database maintenance and statistics").add_subparsers(
        dest="db_command", required=True, metavar="DB_COMMAND")
    p = db.add_parser("stats", help="hours, utterances and speakers per split")
    _add_split_version(p, text="split version to count")
    _add_db(p)
    p = db.add_parser("upgrade", help="migrate the schema to the newest revision")
    _add_db(p)
    p = db.add_parser("split", help="speaker-disjoint split of every utterance that has none")
    _add_split_version(p, text="split version to write")
    _add_ratios(p)
    _add_db(p)
    p = db.add_parser("export", help="a split as a Kaldi data dir, lhotse manifests, NeMo JSON lines or vasr's CSV")
    p.add_argument("out", metavar="OUT", help="output folder (written atomically; must be empty or absent)")
    p.add_argument("--format", required=True, choices=("kaldi", "lhotse", "nemo", "csv"), help="manifest format")
    p.add_argument("--split", required=True, choices=SPLITS, help="the split to export")
    _add_split_version(p, text="split version to export")
    p.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    p.add_argument("--no-gzip", dest="gzip", action="store_false",
                   help="lhotse: write recordings.jsonl and supervisions.jsonl instead of .jsonl.gz")
    _add_db(p)


def _shards_parser(sub) -> None:
    shards = sub.add_parser("shards", help="a split as sequential tar shards for training (data.shards=OUT)"
                            ).add_subparsers(dest="shards_command", required=True, metavar="SHARDS_COMMAND")
    p = shards.add_parser("write", help="write a split as WebDataset-style tar shards (FLAC + JSON per utterance) "
                                        "and index.json, atomically")
    p.add_argument("out", metavar="OUT", help="output folder (must be empty or absent)")
    p.add_argument("--split", required=True, choices=SPLITS, help="the split to write")
    _add_split_version(p, text="split version to write")
    p.add_argument("--utterances-per-shard", type=int, default=1000,
                   help="utterances per shard, in audio id order (default 1000; train with data.shard_size=N "
                        "on the database to get the same batches)")
    p.add_argument("--audio", choices=("flac", "wav"), default="flac",
                   help="16-bit audio as FLAC (default: half the bytes) or WAV (decodes 6x faster); other "
                        "samples (resampled, float) are float32 WAV either way")
    p.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    _add_db(p)


def _bench_parser(sub) -> None:
    p = sub.add_parser("bench", help="benchmark the kernels against peer libraries on this machine")
    p.add_argument("--quick", action="store_true", help="a fast pass with smaller inputs")
    p.add_argument("--out", type=Path, default=Path("bench-report"), help="folder for bench.md/json/png")
    p.add_argument("--only", nargs="*", default=[], help="benchmark name filters (pytest -k terms)")
    p.add_argument("--threads", type=int, default=1, help="threads each kernel and peer may use")
    p.add_argument("--benchmarks", type=Path, help="the benchmarks folder (default: the source checkout's)")


def _demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="the main job: synth -> database -> train tiny -> eval -> export -> transcribe")
    p.add_argument("--n", type=int, help="utterances to synthesise (default 3000)")
    p.add_argument("--out", help="folder for the corpus, runs, model and transcripts (default data)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="training config override, e.g. --set max_minutes=10 (repeatable)")
    _add_print_config(p)
    _add_db(p)


def _train_parser(sub) -> None:
    # a placeholder for `vasr --help`: main() hands `vasr train ARGS` to vasr.train.main(ARGS) unparsed
    p = sub.add_parser("train", add_help=False, help="train a CTC model = python -m vasr.train "
                                                     "(vasr train --help for its options)")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="the options of python -m vasr.train: --config PRESET|FILE, --resume CHECKPOINT, --db, "
                        "KEY=VALUE overrides; and --print-config")


def _eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="score a checkpoint on a split or a CSV manifest (CER/WER, error report)")
    p.add_argument("--checkpoint", required=True, help="a .pt written by python -m vasr.train")
    p.add_argument("--split", default="test", choices=SPLITS, help="database split to score")
    _add_split_version(p)
    p.add_argument("--manifest", help="CSV manifest to score instead of a database split")
    p.add_argument("--beam", type=int, default=1, help="prefix beam search with N prefixes (1 = greedy)")
    p.add_argument("--no-store", action="store_true", help="do not write predictions to the database")
    p.add_argument("--conditions", help="also score through simulated channels, comma-separated: clean, noise, "
                                        "reverb, telephone, codec (one CER/WER row each)")
    p.add_argument("--seed", type=int, default=0, help="seed of the conditions' noise, rooms and codecs")
    _add_print_config(p)
    _add_db(p)


def _runs_parser(sub) -> None:
    runs_sub = sub.add_parser("runs", help="training runs: list, show, compare, plot").add_subparsers(
        dest="runs_command", required=True, metavar="RUNS_COMMAND")
    p = runs_sub.add_parser("list", help="one line per run")
    p.add_argument("--sort", default="id", help="id, name, started, duration, cer, wer, val_loss or status")
    p.add_argument("--ascending", action="store_true", help="smallest first (default: largest first)")
    p.add_argument("--limit", type=int, default=50, help="at most this many runs")
    _add_db(p)
    p = runs_sub.add_parser("show", help="a run's metrics per epoch, settings and sample predictions")
    p.add_argument("run", type=int, help="run id (vasr runs list)")
    _add_db(p)
    p = runs_sub.add_parser("compare", help="runs side by side, with their config differences")
    p.add_argument("runs", type=int, nargs="+", help="run ids")
    _add_db(p)
    p = runs_sub.add_parser("plot", help="loss and CER curves of runs to a PNG")
    p.add_argument("runs", type=int, nargs="+", help="run ids")
    p.add_argument("--out", type=Path, default=Path("runs.png"), help="PNG file to write")
    _add_db(p)


def _export_parser(sub) -> None:
    p = sub.add_parser("export", help="checkpoint -> ONNX model directory (fp32 + gated int8) for the runtime")
    p.add_argument("--checkpoint", required=True, help="a .pt written by python -m vasr.train")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--variant", default="auto", help="int8 variant: auto (measure all, keep the best) or a name")
    p.add_argument("--manifest", help="CSV manifest with transcripts to gate int8 on (default: the test split)")
    p.add_argument("--split", default="test", help="database split to gate int8 on")
    _add_split_version(p)
    p.add_argument("--cer-threshold", type=float, default=0.005, help="warn when int8 CER exceeds fp32's by more")
    p.add_argument("--no-register", action="store_true", help="do not record the export in the models table")
    _add_print_config(p)
    _add_db(p)


def _transcribe_parser(sub) -> None:
    p = sub.add_parser("transcribe", help="speech to text with an exported model (torch-free)")
    p.add_argument("model_dir", help="a directory written by vasr export")
    p.add_argument("audio", nargs="*", help="audio files (wav/flac/ogg/mp3, any rate); '-' reads stdin")
    p.add_argument("--manifest", help="CSV manifest of audio (file_path[,transcript]); CER/WER when transcripts")
    p.add_argument("--split", choices=SPLITS, help="transcribe a database split (scored)")
    _add_split_version(p)
    p.add_argument("--format", default="text", choices=("text", "json", "jsonl", "srt", "vtt"),
                   help="output format (json/jsonl carry timings and the n-best)")
    p.add_argument("--out-dir", help="write one file per input here instead of stdout")
    p.add_argument("--fp32", action="store_true", help="use model.onnx instead of model.int8.onnx")
    p.add_argument("--raw", action="store_true",
                   help="print the acoustic text as the model spells it: no written numbers, punctuation or casing")
    p.add_argument("--channels", default="mix",
                   help="mix (to mono), split (each channel transcribed alone, lines/cues/words labelled [N]) "
                        "or N (channel N only, 1-based)")
    p.add_argument("--beam", type=int, default=1, help="prefix beam search with N prefixes (1 = greedy)")
    p.add_argument("--nbest", type=int, default=1, help="hypotheses per segment in json/jsonl (<= beam)")
    p.add_argument("--hotwords", dest="hotwords_file", help="file of hot words, one 'phrase[:boost]' per line")
    p.add_argument("--hotword", dest="hotwords", action="append", default=[], metavar="PHRASE[:BOOST]",
                   help="a hot word with its bonus in nats per token (repeatable)")
    p.add_argument("--lm", help="n-gram LM (lm.bin from vasr lm build): shallow fusion + N-best rescoring")
    p.add_argument("--lm-weight", type=float, help="fusion weight (default: the model's decode.json, else 0.3)")
    p.add_argument("--word-bonus", type=float, help="fusion bonus per word (default: decode.json, else 0)")
    p.add_argument("--embeddings", help="vasr embed build directory: phonetic hot-word expansion + rescoring")
    p.add_argument("--context", action="append", default=[], help="a phrase the speech is about (repeatable; "
                                                                  "semantic rescoring, needs --embeddings)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    p.add_argument("--max-chunk", type=float, default=20.0, help="longer audio is cut at pauses (seconds)")
    p.add_argument("--no-vad", dest="vad", action="store_false",
                   help="decode all the audio, not only what the VAD calls speech: faster, better on clean "
                        "recordings, worse with noise around the speech")
    p.add_argument("--stream", action="store_true",
                   help="decode with the streaming model chunk by chunk, VAD endpoints; text/jsonl results are "
                        "written as they come (jsonl: partials too), a terminal shows the partial")
    p.add_argument("--realtime", action="store_true", help="--stream: feed the audio no faster than it plays")
    p.add_argument("--chunk-ms", type=int, default=320, help="--stream: chunk length, a multiple of 40 ms")
    _add_print_config(p)
    _add_db(p)


def _embed_parser(sub) -> None:
    embed = sub.add_parser("embed", help="word2vec + phon2vec embeddings with FAISS indexes").add_subparsers(
        dest="embed_command", required=True, metavar="EMBED_COMMAND")
    p = embed.add_parser("build", help="train both embeddings on the corpus and record them in the database")
    p.add_argument("--text", help="extra UTF-8 text, one sentence per line")
    p.add_argument("--out", help="output directory (default: embeddings)")
    p.add_argument("--split", help="transcripts of this split (default: train); 'all' for every transcript")
    _add_config(p, "word2vec.dim=200")
    _add_db(p)
    p = embed.add_parser("neighbours", help="nearest words to a word or phrase")
    p.add_argument("word", help="a word or phrase")
    p.add_argument("--kind", default="phon2vec", choices=("phon2vec", "word2vec"),
                   help="phon2vec: sounds alike; word2vec: used alike")
    p.add_argument("--dir", default="embeddings", help="directory written by vasr embed build")
    p.add_argument("-k", type=int, default=10, help="number of neighbours")
    p = embed.add_parser("convert", help="rewrite an old embeddings directory (gensim pickles, KIND.kv) in the safe "
                         "format; the old files are loaded with gensim's pickle loader: only for files you trust")
    p.add_argument("dir", help="directory of old-format embeddings (word2vec.kv, phon2vec.kv ...)")
    p.add_argument("--keep-old", action="store_true", help="keep the old pickle files (default: removed once "
                   "the new files load back identical)")


def _lm_parser(sub) -> None:
    lm = sub.add_parser("lm", help="n-gram word language model (KenLM)").add_subparsers(
        dest="lm_command", required=True, metavar="LM_COMMAND")
    p = lm.add_parser("build", help="lmplz over the corpus: lm.arpa and lm.bin")
    p.add_argument("--text", help="extra UTF-8 text, one sentence per line")
    p.add_argument("--out", help="output directory (default: lm)")
    p.add_argument("--order", type=int, help="n-gram order (default 3)")
    p.add_argument("--split", help="transcripts of this split (default: train); 'all' for every transcript")
    _add_config(p, "prune=[0,0,1]")
    _add_db(p)


def _decoder_eval_parser(sub, name: str, text: str, split: str) -> argparse.ArgumentParser:
    """The options tune and bias-eval share: a model, a biasing split and the decoder's resources."""
    p = sub.add_parser(name, help=text)
    p.add_argument("model_dir", help="a directory written by vasr export")
    p.add_argument("--split", default=split, choices=SPLITS, help=f"database split to decode (default {split})")
    _add_split_version(p, "bias", "split version with bias lists (vasr synth --bias)")
    p.add_argument("--beam", type=int, default=8, help="prefix beam search with N prefixes")
    p.add_argument("--lm", type=Path, help="lm.bin from vasr lm build")
    p.add_argument("--embeddings", type=Path, help="directory written by vasr embed build")
    p.add_argument("--fp32", action="store_true", help="use model.onnx instead of model.int8.onnx")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    _add_db(p)
    return p


def _tune_parser(sub) -> None:
    p = _decoder_eval_parser(sub, "tune", "search decoding weights on a dev split; writes MODEL_DIR/decode.json",
                             "val")
    _add_print_config(p)


def _bias_eval_parser(sub) -> None:
    p = _decoder_eval_parser(sub, "bias-eval", "WER, U-WER and B-WER of five decoders on a biasing test split",
                             "test")
    p.add_argument("--limit", type=int, default=0, help="first N utterances only")
    p.add_argument("--stream", action="store_true",
                   help="log-probs of the streaming model fed chunk by chunk (hot words while streaming)")
    p.add_argument("--out", type=Path, help="also write the table (markdown) here")
    _add_print_config(p)


def _rescore_parser(sub) -> None:
    p = sub.add_parser("rescore", help="re-rank the n-best lists of vasr transcribe --format jsonl")
    p.add_argument("nbest", help="jsonl written by vasr transcribe --format jsonl --beam N --nbest N")
    p.add_argument("--lm", help="n-gram model (lm.bin or lm.arpa from vasr lm build)")
    p.add_argument("--embeddings", help="directory written by vasr embed build")
    p.add_argument("--context", action="append", default=[], help="a sentence or phrase the speech is about")
    p.add_argument("--hotwords", dest="hotwords_file", help="file of hot words, one 'phrase[:boost]' per line")
    p.add_argument("--hotword", dest="hotwords", action="append", default=[], metavar="PHRASE",
                   help="a hot word (repeatable)")
    _add_config(p, "lm=0.8", "the weights (acoustic, lm, semantic, phonetic, word_bonus)")


def _punct_parser(sub) -> None:
    punct = sub.add_parser("punct", help="punctuation and capitalisation of the recognizer's words").add_subparsers(
        dest="punct_command", required=True, metavar="PUNCT_COMMAND")
    p = punct.add_parser("train", help="train the model on punctuated text; writes punct.onnx and punct.json")
    p.add_argument("--out", help="model directory to write (default: punct; a vasr export directory works)")
    _add_config(p, "epochs=8")
    _add_db(p)
    p = punct.add_parser("eval", help="precision, recall and F1 per mark and case accuracy on a punctuated text")
    p.add_argument("model_dir", help="a directory with punct.onnx and punct.json (vasr punct train --out)")
    p.add_argument("--text", required=True, help="UTF-8 text file, one punctuated paragraph per line")
    p.add_argument("--window", type=int, default=40, help="words per scored window: whole lines up to this many")


def _serve_parser(sub) -> None:
    p = sub.add_parser("serve", help="an OpenAI-compatible transcription API, live streaming over a WebSocket "
                                     "and the web page (torch-free)")
    p.add_argument("model_dir", help="a directory written by vasr export")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (or ?api_key=KEY) on /v1/* "
                                     "(default: $VASR_API_KEY, else none)")
    p.add_argument("--threads", type=int, default=0,
                   help="workers, each one recognizer with one onnxruntime thread (default: the cores)")
    p.add_argument("--fp32", action="store_true", help="use model.onnx instead of model.int8.onnx")
    p.add_argument("--raw", action="store_true", help="the acoustic text only: no written numbers, punctuation "
                                                      "or casing")
    p.add_argument("--beam", type=int, default=1, help="default prefix beam width (1 = greedy)")
    p.add_argument("--no-vad", dest="vad", action="store_false",
                   help="uploads: decode all the audio, not only what the VAD calls speech (faster; better on "
                        "clean recordings, worse with noise around the speech); streams keep their VAD endpoints")
    p.add_argument("--max-upload-mb", type=float, default=25.0, help="largest upload (413 above)")
    p.add_argument("--max-duration-s", type=float, default=1800.0, help="longest upload in seconds (413 above)")
    p.add_argument("--max-streams", type=int, default=32, help="open WebSocket streams (more are refused, 1013)")
    p.add_argument("--max-queue", type=int, default=16,
                   help="transcriptions waiting for a worker (more are answered 429)")
    p.add_argument("--idle-timeout-s", type=float, default=30.0, help="close a stream silent for this long")
