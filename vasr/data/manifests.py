"""Reading corpus manifests: CSV, VIVOS, Common Voice, Kaldi data dirs and lhotse manifests, as ``Entry`` rows.

Parsing only (no audio is opened, no database is touched), so the torch-free runtime can read a
manifest too. Lines that cannot be parsed come back as ``Reject`` rows naming file and line.
"""
from __future__ import annotations

import csv
import gzip
import itertools
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "dev": "val", "test": "test"}
CSV_COLUMNS = ("file_path", "transcript", "split", "speaker_id", "dialect")
MAX_FIELD_BYTES = 128 * 1024   # the longest field (path, transcript) a manifest row may hold, UTF-8


@dataclass(frozen=True, slots=True)   # slots: an import of a million rows holds a million of these
class Reject:
    """A row that cannot be imported, and why."""
    row_ref: str     # "manifest.csv:12", "prompts.txt:3" or an utterance id
    path: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One utterance as a corpus lists it, before its audio is looked at."""
    row_ref: str                  # where it came from, for error messages: "train.tsv:7"
    path: Path
    transcript: str
    split: str | None = None      # train | val | test, or None when the corpus gives none
    speaker: str | None = None
    utt_id: str | None = None
    start_s: float = 0.0          # segment inside the file (Kaldi segments), seconds
    end_s: float | None = None    # None: to the end of the file
    dialect: str | None = None


def read_csv(path: Path, audio_root: Path | None = None,
             require_transcript: bool = True) -> tuple[list[Entry], list[Reject]]:
    """``file_path,transcript[,split][,speaker_id]`` rows; with a header, columns go by name
    (``dialect`` allowed too). Audio paths are relative to ``audio_root`` or the CSV's folder.
    ``require_transcript=False`` (audio to transcribe) also accepts rows of a file path alone.

    One row per physical line: a quote left open at the end of a line rejects that line (it may
    not run on into the next rows), so a line break inside a quoted transcript is rejected too,
    naming the line, rather than glued into the text. A repeated header column is an error."""
    root = audio_root or path.parent
    min_columns = 2 if require_transcript else 1
    entries, rejects = [], []
    rows = []
    for line_no, line in enumerate(_read_lines(path), start=1):
        row, problem = _csv_line(line)
        if problem:
            rejects.append(Reject(f"{path.name}:{line_no}", None, problem))
        else:
            rows.append((line_no, row))
    columns = None
    if rows and rows[0][0] == 1 and rows[0][1] and rows[0][1][0].strip().lower() in ("file_path", "path"):
        named = [c.strip().lower() for c in rows[0][1]]
        columns = ["file_path" if c == "path" else c for c in named]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            alias = " ('path' is another name for file_path)" if "path" in named and "file_path" in repeated else ""
            raise ValueError(f"{path}:1: header names column {', '.join(repeated)} more than once{alias}")
        unknown = sorted(set(columns) - set(CSV_COLUMNS))
        if unknown or ("transcript" not in columns and require_transcript):
            raise ValueError(f"{path}:1: header must name file_path and transcript, optional "
                             f"split, speaker_id, dialect; got {', '.join(columns)}")
        rows = rows[1:]
    for line_no, row in rows:
        ref = f"{path.name}:{line_no}"
        if not row or all(not cell.strip() for cell in row):
            continue
        if columns is not None:
            if len(row) != len(columns):
                rejects.append(Reject(ref, None, f"malformed row: {len(row)} columns, header has {len(columns)}"))
                continue
            cells = dict(zip(columns, (c.strip() for c in row)))
        elif not min_columns <= len(row) <= 4:
            rejects.append(Reject(ref, None, f"malformed row: expected {min_columns} to 4 columns, got {len(row)}"))
            continue
        else:
            cells = dict(zip(CSV_COLUMNS, (c.strip() for c in row)))
        too_long = [name for name, cell in cells.items() if len(cell.encode("utf-8")) > MAX_FIELD_BYTES]
        if too_long:
            size = len(cells[too_long[0]].encode("utf-8"))
            rejects.append(Reject(ref, None, f"field {too_long[0]} is {size:,} bytes; at most "
                                             f"{MAX_FIELD_BYTES:,} (128 KiB)"))
            continue
        if not cells["file_path"]:
            rejects.append(Reject(ref, None, "malformed row: empty file_path"))
            continue
        split, problem = _split_name(cells.get("split"))
        if problem:
            rejects.append(Reject(ref, cells["file_path"], problem))
            continue
        entries.append(Entry(ref, _resolve(root, cells["file_path"]), cells.get("transcript", ""), split,
                             cells.get("speaker_id") or None, Path(cells["file_path"]).stem,
                             dialect=cells.get("dialect") or None))
    rejects.sort(key=lambda r: int(r.row_ref.rpartition(":")[2]))
    return entries, rejects


def _csv_line(line: str) -> tuple[list[str], str | None]:
    """The cells of one physical CSV line, or ([], why it is malformed)."""
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(line) + 1))  # the length check gives the clearer message
    try:
        return next(csv.reader([line], strict=True), []), None
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            return [], ("malformed quoting: a quote opened on this line is not closed on it (a transcript "
                        "must be on one line; a line break inside quotes is not allowed)")
        return [], f"malformed quoting: {exc} (a field that starts with a quote must end with one)"
    finally:
        csv.field_size_limit(limit)


def read_vivos(root: Path) -> tuple[list[Entry], list[Reject]]:
    """VIVOS: ``{train,test}/prompts.txt`` (``UTTID TEXT``) and ``{train,test}/waves/SPEAKER/UTTID.wav``."""
    entries, rejects = [], []
    found = False
    for split in ("train", "test"):
        prompts = root / split / "prompts.txt"
        if not prompts.is_file():
            continue
        found = True
        for line_no, line in enumerate(_read_lines(prompts), start=1):
            if not line.strip():
                continue
            utt_id, _, text = line.strip().partition(" ")
            ref = f"{split}/prompts.txt:{line_no}"
            if "_" not in utt_id:
                rejects.append(Reject(ref, None, f"malformed utterance id {utt_id!r}: expected SPEAKER_NUMBER"))
                continue
            speaker = utt_id.rsplit("_", 1)[0]
            entries.append(Entry(ref, root / split / "waves" / speaker / f"{utt_id}.wav", text, split,
                                 speaker, utt_id))
    if not found:
        raise ValueError(f"{root}: not a VIVOS directory (no train/prompts.txt or test/prompts.txt)")
    return entries, rejects


def read_commonvoice(root: Path) -> tuple[list[Entry], list[Reject]]:
    """Common Voice: ``train/dev/test.tsv`` (their splits) then ``validated.tsv`` (the rest, unsplit),
    audio in ``clips/``."""
    entries, rejects, seen = [], [], set()
    tables = [(name, split) for name, split in (("train", "train"), ("dev", "val"), ("test", "test"),
                                                 ("validated", None)) if (root / f"{name}.tsv").is_file()]
    if not tables:
        raise ValueError(f"{root}: not a Common Voice directory (no train/dev/test/validated.tsv)")
    for name, split in tables:
        lines = _read_lines(root / f"{name}.tsv")
        if not lines:
            continue
        header, reader = lines[0].split("\t"), (line.split("\t") for line in lines[1:])
        missing = {"client_id", "path", "sentence"} - set(header)
        if missing:
            raise ValueError(f"{root / f'{name}.tsv'}:1: missing column(s) {', '.join(sorted(missing))}")
        index = {column: i for i, column in enumerate(header)}
        for line_no, row in enumerate(reader, start=2):
            ref = f"{name}.tsv:{line_no}"
            if len(row) != len(header):
                rejects.append(Reject(ref, None, f"malformed row: {len(row)} fields, header has {len(header)}"))
                continue
            clip = row[index["path"]]
            if clip in seen:
                continue  # validated.tsv repeats the rows of the split files
            seen.add(clip)
            entries.append(Entry(ref, root / "clips" / clip, row[index["sentence"]], split,
                                 row[index["client_id"]] or None, Path(clip).stem))
    return entries, rejects


def read_kaldi(root: Path, split: str | None = None, audio_root: Path | None = None
               ) -> tuple[list[Entry], list[Reject]]:
    """A Kaldi data dir: ``wav.scp``, ``text``, ``utt2spk`` and, if present, ``segments``.

    The split is ``split`` or, when the directory is named train/dev/val/test, that name.
    Relative audio paths are resolved against ``audio_root`` or the directory itself.
    """
    for required in ("wav.scp", "text"):
        if not (root / required).is_file():
            raise ValueError(f"{root}: not a Kaldi data directory (missing {required})")
    split_name, problem = _split_name(split if split is not None else
                                      (root.name if root.name.lower() in SPLIT_ALIASES else None))
    if problem:
        raise ValueError(f"{root}: {problem}")
    base = audio_root or root
    rejects: list[Reject] = []
    wav = _kaldi_table(root / "wav.scp", rejects)
    texts = _iter_lines(root / "text")   # first, as ever: a text that is not UTF-8 is the error reported
    first_text = next(texts, None)
    text_rejects: list[Reject] = []
    table_rejects: list[Reject] = []
    speakers = _kaldi_values(root / "utt2spk", table_rejects) if (root / "utt2spk").is_file() else {}
    segments = (_kaldi_values(root / "segments", table_rejects, _segment) if (root / "segments").is_file()
                else None)
    # a corpus of a million lines: one pass over text without a table of it; values and paths shared
    entries, entry_rejects = [], []
    resolved: dict[str, Path] = {}   # recording -> its path: one Path per file, shared by its segments
    seen: set[str] = set()
    shared: dict[str, str] = {}   # transcripts read more than once (a read-speech corpus's prompts) kept once
    lines = itertools.chain(() if first_text is None else (first_text,), texts)
    for line_no, line in enumerate(lines, start=1):
        utt_id, _, text = line.strip().partition(" ")
        if not utt_id:
            continue
        ref = f"text:{line_no}"
        if utt_id in seen:
            first = next(n for n, earlier in enumerate(_iter_lines(root / "text"), start=1)
                         if earlier.strip().partition(" ")[0] == utt_id)
            text_rejects.append(Reject(ref, None, f"duplicate key {utt_id} (first at text:{first})"))
            continue
        seen.add(utt_id)
        text = text.strip()
        if len(shared) < _SHARED_VALUES:
            text = shared.setdefault(text, text)
        else:
            text = shared.get(text, text)
        if segments is not None:
            segment = segments.get(utt_id)
            if segment is None:
                entry_rejects.append(Reject(ref, None, f"utterance {utt_id} has no line in segments"))
                continue
            if isinstance(segment, str):   # the malformed line's reference
                entry_rejects.append(Reject(segment, None, "malformed segments line: expected REC START END"))
                continue
            recording, start, end = segment
        else:
            recording, start, end = utt_id, 0.0, None
        if recording not in wav:
            entry_rejects.append(Reject(ref, None, f"recording {recording} is not in wav.scp"))
            continue
        path = resolved.get(recording)
        if path is None:
            location = wav[recording][1].strip()
            if location.endswith("|"):
                entry_rejects.append(Reject(wav[recording][0], None, "pipe commands in wav.scp are not supported; "
                                                                     "extract the audio to files first"))
                continue
            path = resolved[recording] = _resolve(base, location)
        entries.append(Entry(ref, path, text, split_name, speakers.get(utt_id), utt_id, start, end))
    # the rejects in the order of reading every table first: wav.scp, text, utt2spk, segments, then utterances
    return entries, rejects + text_rejects + table_rejects + entry_rejects


def _segment(value: str) -> tuple[str, float, float]:
    """REC START END of a segments line (ValueError or IndexError when malformed)."""
    parts = value.split()
    return parts[0], float(parts[1]), float(parts[2])


_SHARED_VALUES = 100_000   # distinct values _kaldi_values shares (speaker names); past it, kept as read


def _kaldi_values(path: Path, rejects: list[Reject], parse: Callable[[str], object] | None = None) -> dict:
    """``_kaldi_table`` for the big tables of a Kaldi dir: key -> value without its line reference
    (equal values shared), or -> ``parse(value)``, or -> the line's reference where ``parse`` raises
    ValueError/IndexError. Malformed and duplicate lines are rejected as ``_kaldi_table`` rejects them."""
    table: dict = {}
    shared: dict[str, str] = {}
    first_line: dict[str, int] | None = None
    lines = _read_lines(path)
    for line_no, line in enumerate(lines, start=1):
        key, _, value = line.strip().partition(" ")
        if not key:
            continue
        value = value.strip()
        if not value:
            rejects.append(Reject(f"{path.name}:{line_no}", None, f"malformed line: {path.name} needs KEY VALUE"))
        elif key in table:
            if first_line is None:   # rare: where each key first was
                first_line = {}
                for n, earlier in enumerate(lines, start=1):
                    k, _, v = earlier.strip().partition(" ")
                    if k and v.strip():
                        first_line.setdefault(k, n)
            rejects.append(Reject(f"{path.name}:{line_no}", None,
                                  f"duplicate key {key} (first at {path.name}:{first_line[key]})"))
        elif parse is not None:
            try:
                table[key] = parse(value)
            except (IndexError, ValueError):
                table[key] = f"{path.name}:{line_no}"
        else:
            table[key] = shared.setdefault(value, value) if len(shared) < _SHARED_VALUES else value
    return table


def _kaldi_table(path: Path, rejects: list[Reject], allow_empty_value: bool = False) -> dict[str, tuple[str, str]]:
    table = {}
    for line_no, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        key, _, value = line.strip().partition(" ")
        ref = f"{path.name}:{line_no}"
        if not value.strip() and not allow_empty_value:
            rejects.append(Reject(ref, None, f"malformed line: {path.name} needs KEY VALUE"))
        elif key in table:
            rejects.append(Reject(ref, None, f"duplicate key {key} (first at {table[key][0]})"))
        else:
            table[key] = (ref, value.strip())
    return table


LHOTSE_NAMES = ("recordings", "supervisions", "cuts")
_LHOTSE_SUFFIXES = (".jsonl.gz", ".jsonl", ".json.gz", ".json")
_WHOLE_FILE_TOLERANCE_S = 1e-3   # a supervision ending this close to its recording's end spans the file


def read_lhotse(location: Path, supervisions: Path | None = None, split: str | None = None,
                audio_root: Path | None = None) -> tuple[list[Entry], list[Reject]]:
    """lhotse manifests, read as plain JSON (lhotse itself is not needed): a recordings manifest and
    its supervisions (``supervisions`` or the sibling file named ``supervisions*``), a cuts manifest
    (MonoCuts with their recording and supervisions inline), or a folder holding either. Files may be
    JSON lines or a JSON list, gzipped or not. Only ``file`` audio sources can be imported. The
    transcript is the supervision's ``custom.raw_text`` when present (vasr's own exports keep it
    there), else its ``text``; the split is ``split``, else ``custom.split``. A supervision that
    spans its whole recording is imported as the whole file, others as segments."""
    split_name, problem = _split_name(split)
    if problem:
        raise ValueError(f"{location}: {problem}")
    if location.is_dir():
        found = {name: _lhotse_file(location, name) for name in LHOTSE_NAMES}
        if found["recordings"] and (supervisions or found["supervisions"]):
            location, supervisions = found["recordings"], supervisions or found["supervisions"]
        elif found["cuts"]:
            location = found["cuts"]
        else:
            raise ValueError(f"{location}: no lhotse manifests in this folder (recordings.jsonl[.gz] with "
                             f"supervisions.jsonl[.gz], or cuts.jsonl[.gz])")
    base = audio_root or location.parent
    rejects: list[Reject] = []
    items = _json_items(location, rejects)
    if items and "sources" not in items[0][1] and "recording" in items[0][1]:
        return _lhotse_cuts(items, base, split_name, rejects), rejects
    if supervisions is None:
        sibling = location.parent / location.name.replace("recordings", "supervisions")
        supervisions = sibling if "recordings" in location.name and sibling.is_file() else None
        if supervisions is None:
            raise ValueError(f"{location}: a recordings manifest needs its supervisions manifest "
                             f"(vasr import lhotse RECORDINGS SUPERVISIONS)")
    recordings = {}
    for ref, item in items:
        rec_id, path, problem = _lhotse_recording(item, base)
        if problem:
            rejects.append(Reject(ref, None, problem))
        elif rec_id in recordings:
            rejects.append(Reject(ref, None, f"duplicate recording id {rec_id} (first at {recordings[rec_id][0]})"))
        else:
            recordings[rec_id] = (ref, path, item.get("duration"))
    entries = []
    for ref, item in _json_items(supervisions, rejects):
        rec = recordings.get(item.get("recording_id"))
        if rec is None:
            rejects.append(Reject(ref, None, f"recording {item.get('recording_id')!r} is not in {location.name} "
                                             f"(or was rejected)"))
            continue
        entry = _lhotse_supervision(ref, item, rec[1], rec[2], 0.0, split_name, rejects)
        if entry is not None:
            entries.append(entry)
    return entries, rejects


def _lhotse_file(folder: Path, name: str) -> Path | None:
    return next((folder / f"{name}{s}" for s in _LHOTSE_SUFFIXES if (folder / f"{name}{s}").is_file()), None)


def _lhotse_cuts(items: list[tuple[str, dict]], base: Path, split: str | None, rejects: list[Reject]) -> list[Entry]:
    entries = []
    for ref, cut in items:
        if cut.get("type", "MonoCut") != "MonoCut" or not isinstance(cut.get("recording"), dict):
            rejects.append(Reject(ref, None, f"cut type {cut.get('type')!r} is not supported; only MonoCut with "
                                             f"its recording"))
            continue
        _, path, problem = _lhotse_recording(cut["recording"], base)
        if problem:
            rejects.append(Reject(ref, None, problem))
            continue
        offset = cut.get("start", 0.0)
        for sup in cut.get("supervisions") or []:
            entry = _lhotse_supervision(ref, sup, path, cut["recording"].get("duration"), offset, split, rejects)
            if entry is not None:
                entries.append(entry)
    return entries


def _lhotse_recording(item: dict, base: Path) -> tuple[str | None, Path | None, str | None]:
    """(id, audio path, None) or (None, None, why it cannot be used)."""
    rec_id, sources = item.get("id"), item.get("sources")
    if not isinstance(rec_id, str) or not isinstance(sources, list) or not sources:
        return None, None, "malformed recording: needs an id and sources"
    files = [s for s in sources if isinstance(s, dict) and s.get("type") == "file" and isinstance(s.get("source"), str)]
    if len(files) != 1 or len(sources) != 1:
        kinds = ", ".join(str(s.get("type")) if isinstance(s, dict) else "?" for s in sources)
        return None, None, (f"recording {rec_id}: only one audio source of type 'file' can be imported "
                            f"(it has: {kinds})")
    return rec_id, _resolve(base, files[0]["source"]), None


def _lhotse_supervision(ref: str, item: dict, path: Path, rec_duration: object, offset: float, split: str | None,
                        rejects: list[Reject]) -> Entry | None:
    sup_id = item.get("id")
    try:
        start, duration = offset + float(item["start"]), float(item["duration"])
    except (KeyError, TypeError, ValueError):
        rejects.append(Reject(ref, str(path), f"malformed supervision {sup_id!r}: needs a start and a duration"))
        return None
    custom = item.get("custom") if isinstance(item.get("custom"), dict) else {}
    transcript = custom.get("raw_text") if isinstance(custom.get("raw_text"), str) else item.get("text")
    sup_split = split
    if sup_split is None and isinstance(custom.get("split"), str):
        sup_split, problem = _split_name(custom["split"])
        if problem:
            rejects.append(Reject(ref, str(path), problem))
            return None
    whole = (start == 0 and isinstance(rec_duration, (int, float))
             and abs(duration - rec_duration) <= _WHOLE_FILE_TOLERANCE_S)
    speaker = item.get("speaker")
    return Entry(ref, path, transcript if isinstance(transcript, str) else "", sup_split,
                 str(speaker) if speaker not in (None, "") else None, str(sup_id) if sup_id is not None else None,
                 start, None if whole else start + duration)


def _json_items(path: Path, rejects: list[Reject]) -> list[tuple[str, dict]]:
    """(row_ref, object) for each object of a JSON-lines (or JSON list) manifest; a line that is not
    a JSON object is a reject naming it."""
    lines = _read_lines(path)
    name = path.name
    if name.removesuffix(".gz").endswith(".json") and lines and lines[0].lstrip().startswith("["):
        try:
            data = json.loads("\n".join(lines))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of objects")
        parsed = [(f"{name}[{i}]", item, None) for i, item in enumerate(data, start=1)]
    else:
        parsed = [(f"{name}:{n}", *_json_line(line)) for n, line in enumerate(lines, start=1) if line.strip()]
    items = []
    for ref, item, problem in parsed:
        if problem is None and not isinstance(item, dict):
            problem = "malformed line: not a JSON object"
        if problem:
            rejects.append(Reject(ref, None, problem))
        else:
            items.append((ref, item))
    return items


def _json_line(line: str) -> tuple[object, str | None]:
    try:
        return json.loads(line), None
    except json.JSONDecodeError as exc:
        return None, f"malformed JSON line ({exc.msg})"

READERS: dict[str, Callable[..., tuple[list[Entry], list[Reject]]]] = {
    "csv": read_csv, "vivos": read_vivos, "commonvoice": read_commonvoice, "kaldi": read_kaldi,
    "lhotse": read_lhotse}


def excerpt(text: str | None, limit: int = 60) -> str:
    """``text`` quoted for a one-line message, cut to about ``limit`` characters."""
    if text is None:
        return "none"
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text):,} characters)"


def _split_name(value: str | None) -> tuple[str | None, str | None]:
    """(canonical split, None) or (None, problem)."""
    if value is None or not value.strip():
        return None, None
    canonical = SPLIT_ALIASES.get(value.strip().lower())
    if canonical is None:
        return None, f"unknown split {value!r}; expected train, val (or dev) or test"
    return canonical, None


def _resolve(root: Path, location: str) -> Path:
    path = Path(location).expanduser()
    return path if path.is_absolute() else root / path


_LINE_BLOCK = 1 << 20   # bytes _iter_lines decodes at a time


def _iter_lines(path: Path) -> Iterator[str]:
    """``_read_lines`` one line at a time (a manifest of a million lines is not held whole); the
    same lines, and the same error for a file that is not UTF-8 (or gzip) text."""
    if path.suffix == ".gz" or path.is_dir():
        yield from _read_lines(path)
        return
    try:
        fh = path.open("rb")
    except OSError:
        yield from _read_lines(path)   # raises its message
        return
    with fh:
        rest, first = b"", True
        while True:
            block = fh.read(_LINE_BLOCK)
            data = rest + block
            if not block:
                if data:
                    yield from _decoded_lines(path, data, first)
                return
            cut = data.rfind(b"\n") + 1   # a newline byte is never inside a multi-byte UTF-8 character
            if cut:
                rest = data[cut:]
                yield from _decoded_lines(path, data[:cut - 1], first)
                first = False
            else:
                rest = data


def _decoded_lines(path: Path, data: bytes, first: bool) -> list[str]:
    try:
        text = data.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError:
        _read_lines(path)   # raises the message naming the line
        raise
    return [line.removesuffix("\r") for line in text.split("\n")]


def _read_lines(path: Path) -> list[str]:
    """The file's lines; a clear error naming the file (and line) when it is not a readable UTF-8 file."""
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a manifest file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: not a readable gzip file ({exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    # physical lines as an editor counts them: split at \n only (str.splitlines also splits at
    # \x85, \u2028 and other separators a transcript may hold, and would shift every line number)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines and not lines[-1] else lines
