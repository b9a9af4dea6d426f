"""Sequential training shards: a database split written as WebDataset-style tar files, and the
training reader that plans exact batches from their index.

On disk (``vasr shards write``)::

    OUT/shard-000000.tar   members {key}.flac (or {key}.wav) + {key}.json, in canonical order
    OUT/shard-000001.tar   ...
    OUT/index.json         format, version, split, split version; per shard: name, bytes, sha256,
                           and its utterances' keys, durations and transcripts, in order

Audio is the 16 kHz mono float32 that ``vasr.runtime.audio.load`` gives for the segment, stored
exactly: 16-bit FLAC when the samples are 16-bit values (any 16-bit source at 16 kHz), else float32
WAV (a resampled or float source). FLAC by default: half the bytes of WAV (15.8 vs 32.0 kB per audio
second on the synthetic corpus), which is what shards on a network or object store pay for, at 0.3 ms
of decoding per audio second (16-bit WAV read with numpy: 0.07; the database's files: 0.2), about 3%
of the tiny model's training cost per audio second on one core, and done by a thread beside it (see
below); ``codec="wav"`` (``--audio wav``) trades the bytes for the decoding.
The key is the utterance id (the database audio id); the utterances go into shards in canonical
order (audio id, as ``vasr.db.runs.split_records`` returns them), ``utterances_per_shard`` to a shard.

Planning (``vasr.data.dataset.plan_batches``) reads the index only. Per epoch the shards are
permuted (seed, epoch), dealt to the DDP ranks, and each rank walks its shards in windows of
``window`` shards (a shuffle buffer): within a window, ``bucket_batches`` makes the batches
``make_batches`` would (duration buckets, shuffled, filled to ``max_frames``); every rank keeps as many batches as the rank with the
fewest, so all step together. The database can be planned the same way (``data.shard_size``): the
same canonical chunks, the same function, so the same seed gives the same batches from either.

Reading (``ShardBatchDataset``): item i is planned batch i, as in ``BatchDataset``, so a resumed
epoch starts at batch i and any number of DataLoader workers give the same batches. A worker that
needs batch i of window w reads w's shards front to back once, keeps the encoded members of its own
coming batches of w (DataLoader deals batches round-robin; a miss reads the window again) and drops
the previous window: memory is bounded by a window. Every shard read is checked against the
index's size and sha256 (``ShardError`` names the shard).
"""
from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import re
import shutil
import struct
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf

from vasr.data.dataset import (BatchDataset, DataConfig, Plan, compute_cmvn, make_batches, plan_batches,
                               within_duration)
from vasr.data.utterance import Utterance
from vasr.runtime import audio
from vasr.staging import publish, stage

__all__ = ["ShardError", "ShardIndex", "Plan", "write_shards", "open_index", "plan_batches", "canonical_chunks",
           "ShardBatchDataset", "TrainingSplit", "training_split", "read_shard"]

FORMAT = "vasr-shards"             # index.json "format"
FORMAT_VERSION = 1                 # index.json "version": readers refuse a newer one
INDEX = "index.json"
SHARD_NAME = "shard-{:06d}.tar"
UTTERANCES_PER_SHARD = 1000        # default: ~45 MB of FLAC at 3 s per utterance
INT16_SCALE = 32768                # libsndfile reads 16-bit PCM as value / 32768
CODECS = ("flac", "wav")           # member audio of 16-bit sources: FLAC (default, half the bytes) or WAV
READ_BLOCK = 1 << 20               # bytes read per step when streaming a shard
HTTP_TIMEOUT_S = 60.0              # per blocking read of an http(s) shard or index
_KEY = re.compile(r"[A-Za-z0-9_-]+")            # WebDataset: a key ends at the first dot
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")  # a shard file inside the index's folder, no path


class ShardError(ValueError):
    """A shard or index that cannot be used; the message (one line) names it."""

    def __init__(self, message: str):
        # a DataLoader worker's error comes back as "Caught ShardError in DataLoader worker ...\n<its
        # traceback>": keep the one line that names the shard
        if message.startswith("Caught ShardError") and "ShardError: " in message:
            message = message.rstrip().rsplit("ShardError: ", 1)[1]
        super().__init__(message)


# ---------------------------------------------------------------------------------------------- index

@dataclass(frozen=True)
class ShardInfo:
    name: str                      # file name, relative to the index's folder or URL
    bytes: int                     # size of the tar file
    sha256: str                    # hex digest of the tar file
    keys: tuple[str, ...]          # its utterances, in member order
    durations: tuple[float, ...]   # seconds, the database's duration_s of each
    texts: tuple[str, ...]         # normalised transcripts (the tokenizer is built without reading audio)


@dataclass(frozen=True)
class ShardIndex:
    location: str                  # folder or URL (ending in /) the shard names are relative to
    split: str
    split_version: str
    shards: tuple[ShardInfo, ...]

    def where(self, shard: int) -> str:
        """Path or URL of shard number ``shard``."""
        name = self.shards[shard].name
        if _is_url(self.location):
            return urllib.parse.urljoin(self.location, urllib.parse.quote(name))
        return str(Path(self.location) / name)

    @property
    def utterances(self) -> int:
        return sum(len(s.keys) for s in self.shards)

    def records(self) -> list[Utterance]:
        """Every utterance, in canonical order; ``path`` is ``SHARD#key`` (the audio is in the shard)."""
        out = []
        for n, s in enumerate(self.shards):
            where = self.where(n)
            out += [Utterance(k, f"{where}#{k}", 0.0, d, d, t, audio_id=int(k) if k.isdigit() else None)
                    for k, d, t in zip(s.keys, s.durations, s.texts)]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": FORMAT_VERSION, "split": self.split, "split_version": self.split_version,
                "utterances": self.utterances,
                "shards": [{"name": s.name, "bytes": s.bytes, "sha256": s.sha256, "keys": list(s.keys),
                            "durations": list(s.durations), "texts": list(s.texts)} for s in self.shards]}

    @classmethod
    def from_dict(cls, data: Any, location: str, where: str) -> ShardIndex:
        """The index in ``data`` (parsed JSON); ShardError naming ``where`` and the field otherwise."""
        def fail(field_: str, what: str) -> ShardError:
            return ShardError(f"{where}: {field_}: {what}")

        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise fail("format", f"not a vasr shard index (expected {FORMAT!r})")
        version = data.get("version")
        if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
            raise fail("version", f"{version!r}: this vasr reads versions 1 to {FORMAT_VERSION}")
        for key in ("split", "split_version"):
            if not isinstance(data.get(key), str):
                raise fail(key, "missing or not a string")
        raw = data.get("shards")
        if not isinstance(raw, list) or not raw:
            raise fail("shards", "missing or empty")
        shards, seen = [], set()
        for n, s in enumerate(raw):
            at = f"shards[{n}]"
            if not isinstance(s, dict):
                raise fail(at, "not an object")
            name, size, digest = s.get("name"), s.get("bytes"), s.get("sha256")
            if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
                raise fail(f"{at}.name", f"{name!r} is not a file name")
            if not isinstance(size, int) or size < 0:
                raise fail(f"{at}.bytes", f"{size!r} is not a byte count")
            if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise fail(f"{at}.sha256", f"{digest!r} is not a sha256 hex digest")
            keys, durations, texts = s.get("keys"), s.get("durations"), s.get("texts")
            if not isinstance(keys, list) or not all(isinstance(k, str) and _KEY.fullmatch(k) for k in keys):
                raise fail(f"{at}.keys", "not a list of keys (letters, digits, _ and -)")
            if (not isinstance(durations, list) or len(durations) != len(keys)
                    or not all(isinstance(d, (int, float)) and 0 < d < float("inf") for d in durations)):
                raise fail(f"{at}.durations", "not one positive duration per key")
            if not isinstance(texts, list) or len(texts) != len(keys) or not all(isinstance(t, str) for t in texts):
                raise fail(f"{at}.texts", "not one transcript per key")
            if dup := seen.intersection(keys):
                raise fail(f"{at}.keys", f"key {sorted(dup)[0]!r} is in an earlier shard too")
            if len(set(keys)) != len(keys):
                raise fail(f"{at}.keys", "a key repeats")
            seen.update(keys)
            shards.append(ShardInfo(name, size, digest, tuple(keys), tuple(float(d) for d in durations),
                                    tuple(texts)))
        return cls(location, data["split"], data["split_version"], tuple(shards))


def _is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def open_index(spec: str | os.PathLike) -> ShardIndex:
    """The index of ``spec``: a shard folder, its index.json, or an http(s) URL of either."""
    spec = str(spec)
    if _is_url(spec):
        url = spec if spec.endswith(".json") else spec.rstrip("/") + "/" + INDEX
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
                raw = response.read()
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise ShardError(f"{url}: cannot read the shard index ({getattr(exc, 'reason', exc)})") from None
        location, where = url.rsplit("/", 1)[0] + "/", url
    else:
        path = Path(spec)
        if path.is_dir():
            path = path / INDEX
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ShardError(f"{path}: no such shard index (vasr shards write makes one)") from None
        except OSError as exc:
            raise ShardError(f"{path}: cannot read the shard index ({exc.strerror or exc})") from None
        location, where = str(path.parent), str(path)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardError(f"{where}: not a JSON shard index ({exc})") from None
    return ShardIndex.from_dict(data, location, where)


# ---------------------------------------------------------------------------------------------- audio

def encode_audio(wave: np.ndarray, codec: str = "flac") -> tuple[str, bytes]:
    """(extension, bytes) storing float32 (S,) 16 kHz ``wave`` so that ``decode_audio`` gives it back
    bit for bit: when every sample is a 16-bit value, 16-bit FLAC (``codec`` flac) or 16-bit WAV (wav);
    else float32 WAV."""
    if codec not in CODECS:
        raise ValueError(f"audio codec {codec!r}: expected one of {', '.join(CODECS)}")
    ints = np.round(wave.astype(np.float64) * INT16_SCALE)
    exact = ints.size and ints.min() >= -INT16_SCALE and ints.max() < INT16_SCALE
    if exact and np.array_equal(ints / INT16_SCALE, wave):
        if codec == "wav":
            return "wav", _wav(ints.astype("<i2").tobytes(), 1, 16)
        buffer = io.BytesIO()
        sf.write(buffer, ints.astype(np.int16), audio.TARGET_RATE, format="FLAC", subtype="PCM_16")
        data = buffer.getvalue()
        if np.array_equal(decode_audio("flac", data), wave):
            return "flac", data
    return "wav", _wav(np.ascontiguousarray(wave, dtype="<f4").tobytes(), 3, 32)


def _wav(data: bytes, tag: int, bits: int) -> bytes:
    """A mono 16 kHz WAV (``tag`` 1: PCM, 3: IEEE float) of sample bytes ``data``, its 44-byte header
    written here: libsndfile's float WAV has a PEAK chunk with the time of writing, and the same
    split should write the same bytes."""
    block = bits // 8
    fmt = struct.pack("<HHIIHH", tag, 1, audio.TARGET_RATE, block * audio.TARGET_RATE, block, bits)
    return (b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE" + b"fmt " +
            struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)


def decode_audio(ext: str, data: bytes) -> np.ndarray:
    """float32 (S,) samples of a member written by ``encode_audio`` (the WAVs it writes are read
    with numpy, which is 20x faster than libsndfile on a byte buffer)."""
    if ext == "wav" and data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt " and data[36:40] == b"data":
        tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[20:36])
        size = struct.unpack("<I", data[40:44])[0]
        if channels == 1 and rate == audio.TARGET_RATE and 44 + size <= len(data):
            if tag == 1 and bits == 16:   # what libsndfile gives: value / 32768, exact in float32
                return np.frombuffer(data, "<i2", size // 2, 44).astype(np.float32) / np.float32(INT16_SCALE)
            if tag == 3 and bits == 32:
                return np.frombuffer(data, "<f4", size // 4, 44).astype(np.float32)
    samples, _ = sf.read(io.BytesIO(data), dtype="float32")
    return samples


# --------------------------------------------------------------------------------------------- writing

@dataclass(frozen=True)
class WriteReport:
    out: Path
    shards: int
    utterances: int
    bytes: int
    audio_s: float
    seconds: float
    formats: dict[str, int] = field(default_factory=dict)   # member extension -> utterances

    def format(self) -> str:
        kinds = ", ".join(f"{n} {ext}" for ext, n in sorted(self.formats.items()))
        return (f"wrote {self.shards} shards ({self.utterances} utterances, {self.audio_s / 3600:.2f} h, {kinds}; "
                f"{self.bytes / 1e6:.1f} MB) to {self.out} in {self.seconds:.1f} s")


class _Hashing:
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.fh.write(data)


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)   # fixed owner, mode and time: the same split writes the same bytes
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def canonical_chunks(count: int, size: int) -> list[range]:
    """Positions 0..count-1 cut into consecutive chunks of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"utterances per shard must be >= 1, got {size}")
    return [range(start, min(count, start + size)) for start in range(0, count, size)]


def write_shards(records: Sequence[Utterance], out: str | os.PathLike, utterances_per_shard: int = UTTERANCES_PER_SHARD,
                 split: str = "train", split_version: str = "default", force: bool = False,
                 progress: bool | None = None, codec: str = "flac") -> WriteReport:
    """Write ``records`` (canonical order) as shards and index.json into the folder ``out``, atomically: a
    staging folder (``vasr.staging``) renamed into place when complete. A non-empty ``out`` is refused
    unless ``force`` (replaced). ``progress``: tqdm bar (None: on terminals). ``codec``: ``encode_audio``'s."""
    from tqdm import tqdm

    out = Path(out)
    chunks = canonical_chunks(len(records), utterances_per_shard)
    if codec not in CODECS:
        raise ValueError(f"audio codec {codec!r}: expected one of {', '.join(CODECS)}")
    if not records:
        raise ValueError(f"split {split!r} of version {split_version!r} has no utterances")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ValueError(f"{out}: folder exists and is not empty (--force replaces it)")
    seen: set[str] = set()
    for r in records:
        if not _KEY.fullmatch(r.id):
            raise ValueError(f"utterance {r.id!r} ({r.path}): id is not a shard key (letters, digits, _ and -)")
        if r.id in seen:
            raise ValueError(f"utterance {r.id!r} ({r.path}): id repeats")
        seen.add(r.id)
        if r.text is None or r.duration_s is None or not r.duration_s > 0:
            raise ValueError(f"utterance {r.id!r} ({r.path}): no transcript or duration")
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = stage(out.parent, out.name, "shards")
    shards, formats, audio_s = [], {}, 0.0
    try:
        with tqdm(total=len(records), desc="shards", unit="utt", disable=None if progress is None else not progress,
                  dynamic_ncols=True) as bar:
            for n, chunk in enumerate(chunks):
                name = SHARD_NAME.format(n)
                chosen = [records[i] for i in chunk]
                with open(tmp / name, "wb") as fh:
                    sink = _Hashing(fh)
                    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
                        for r in chosen:
                            wave = audio.load(r.path, r.start_s, r.end_s)
                            ext, data = encode_audio(wave, codec)
                            formats[ext] = formats.get(ext, 0) + 1
                            audio_s += len(wave) / audio.TARGET_RATE
                            meta = {"key": r.id, "text": r.text, "duration_s": r.duration_s, "speaker": r.speaker,
                                    "audio_id": r.audio_id, "samples": int(len(wave)),
                                    "sample_rate": audio.TARGET_RATE, "audio": ext}
                            _member(tar, f"{r.id}.{ext}", data)
                            _member(tar, f"{r.id}.json", json.dumps(meta, ensure_ascii=False, sort_keys=True)
                                    .encode("utf-8"))
                            bar.update(1)
                shards.append(ShardInfo(name, sink.size, sink.sha.hexdigest(), tuple(r.id for r in chosen),
                                        tuple(float(r.duration_s) for r in chosen), tuple(r.text for r in chosen)))
        index = ShardIndex(str(out), split, split_version, tuple(shards))
        (tmp / INDEX).write_text(json.dumps(index.to_dict(), ensure_ascii=False) + "\n", encoding="utf-8")
        publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return WriteReport(out, len(shards), len(records), sum(s.bytes for s in shards), audio_s,
                       time.perf_counter() - started, formats)


# --------------------------------------------------------------------------------------------- reading

class _Verified:
    """A read-only stream that hashes and counts what is read from it."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data


def _open_stream(where: str) -> BinaryIO:
    if _is_url(where):
        try:
            return urllib.request.urlopen(where, timeout=HTTP_TIMEOUT_S)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise ShardError(f"{where}: cannot read the shard ({getattr(exc, 'reason', exc)})") from None
    try:
        return open(where, "rb")
    except OSError as exc:
        raise ShardError(f"{where}: cannot read the shard ({exc.strerror or exc})") from None


def read_shard(index: ShardIndex, shard: int, wanted: set[str] | None = None) -> dict[str, tuple[str, bytes]]:
    """{key: (extension, encoded audio)} of shard number ``shard`` (only the ``wanted`` keys when
    given), read front to back once; the whole file is checked against the index's size and sha256
    first (ShardError naming the shard when it differs or a wanted key is missing)."""
    info, where = index.shards[shard], index.where(shard)
    if not _is_url(where):
        try:
            size = os.stat(where).st_size
        except OSError as exc:
            raise ShardError(f"{where}: cannot read the shard ({exc.strerror or exc})") from None
        if size != info.bytes:
            raise ShardError(f"{where}: {size} bytes, the index says {info.bytes}: the shard is damaged or stale")
    found: dict[str, tuple[str, bytes]] = {}
    with _open_stream(where) as raw:
        stream = _Verified(raw)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    key, _, ext = member.name.partition(".")
                    if member.isfile() and ext in ("flac", "wav") and (wanted is None or key in wanted):
                        found[key] = (ext, tar.extractfile(member).read())
            while stream.read(READ_BLOCK):     # the tar's padding: the digest is of the whole file
                pass
        except (tarfile.TarError, http.client.HTTPException, OSError, EOFError) as exc:
            raise ShardError(f"{where}: unreadable shard ({exc})") from None
    if stream.size != info.bytes or stream.sha.hexdigest() != info.sha256:
        raise ShardError(f"{where}: sha256 {stream.sha.hexdigest()[:12]}... ({stream.size} bytes) differs from the "
                         f"index's {info.sha256[:12]}... ({info.bytes} bytes): the shard is damaged or stale")
    missing = (set(info.keys) if wanted is None else wanted) - found.keys()
    if missing:
        raise ShardError(f"{where}: no audio member for key {sorted(missing)[0]!r} of the index")
    return found


def iter_waves(index: ShardIndex, keys: Sequence[str]) -> Iterator[np.ndarray]:
    """Samples of ``keys`` (in canonical order, a subsequence of the index's), shard by shard."""
    want = set(keys)
    position = 0
    for n, info in enumerate(index.shards):
        if position >= len(keys):
            return
        mine = {k for k in info.keys if k in want}
        if not mine:
            continue
        found = read_shard(index, n, mine)
        for k in info.keys:
            if position < len(keys) and k == keys[position]:
                yield decode_audio(*found[k])
                position += 1


# ---------------------------------------------------------------------------------------------- dataset

class ShardBatchDataset(BatchDataset):
    """``BatchDataset`` whose audio comes from shards: item i = planned batch i (``plan.batches[i]``).

    records[j] lives in shard ``shard_of[j]`` under key ``records[j].id``. A worker keeps one window's
    encoded members (those of its own batches of that window) at a time, and one thread decodes its
    next batch while the caller trains on this one (libFLAC runs without the GIL): FLAC's decoding
    (0.3 ms per audio second) then costs the training loop nothing where a core is free.
    """

    def __init__(self, index: ShardIndex, records: Sequence[Utterance], shard_of: Sequence[int], plan: Plan,
                 encoder, **kwargs):
        super().__init__(records, plan.batches, encoder, **kwargs)
        self.index, self.shard_of, self.plan = index, shard_of, plan
        self.window_reads = 0                     # windows this copy has read (tests, benchmarks)
        self._reset()

    def _reset(self) -> None:
        self._window: int | None = None
        self._cache: dict[int, tuple[str, bytes]] = {}
        self._step = 1                            # batches between two of this worker's
        self._ahead: tuple[int, Future] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pid = os.getpid()

    def __getstate__(self) -> dict:               # a DataLoader worker gets no cache, thread or future
        state = self.__dict__.copy()
        state.update(_window=None, _cache={}, _ahead=None, _pool=None)
        return state

    def waves(self, i: int) -> list[np.ndarray]:
        if self._pid != os.getpid():              # a forked worker: the parent's thread is not here
            self._reset()
        batch = self.plan.batches[i]
        if self._window != self.plan.window_of[i] or any(j not in self._cache for j in batch):
            self._read_window(i)
        ahead, self._ahead = self._ahead, None
        waves = ahead[1].result() if ahead is not None and ahead[0] == i else _decode_all(
            [self._cache[j] for j in batch])
        following = i + self._step
        if following < len(self.plan.batches) and self.plan.window_of[following] == self._window:
            members = [self._cache.get(j) for j in self.plan.batches[following]]
            if all(m is not None for m in members):
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="vasr-shard-decode")
                self._ahead = (following, self._pool.submit(_decode_all, members))
        return waves

    def _read_window(self, i: int) -> None:
        """Read batch i's window, keeping the members of the batches this worker will be asked for:
        i, i + workers, ... while they are in the same window."""
        from torch.utils.data import get_worker_info

        worker = get_worker_info()
        self._step = worker.num_workers if worker is not None else 1
        w = self.plan.window_of[i]
        wanted: set[int] = set()
        for k in range(i, len(self.plan.batches), self._step):
            if self.plan.window_of[k] != w:
                break
            wanted.update(self.plan.batches[k])
        self._cache, self._window = {}, None       # the previous window goes before the next comes in
        for shard in self.plan.windows[w]:
            mine = {self.records[j].id: j for j in wanted if self.shard_of[j] == shard}
            if mine:
                found = read_shard(self.index, shard, set(mine))
                self._cache.update({j: found[key] for key, j in mine.items()})
        self._window = w
        self.window_reads += 1


def _decode_all(members: Sequence[tuple[str, bytes]]) -> list[np.ndarray]:
    return [decode_audio(ext, data) for ext, data in members]


# ------------------------------------------------------------------------------------ training source

@dataclass
class TrainingSplit:
    """The training utterances and how an epoch's batches are planned and read: from the database
    (``make_batches``, or ``plan_batches`` over chunks of ``data.shard_size``) or from shards."""
    records: list[Utterance]              # kept (at most data.max_duration_s), canonical order
    too_long: list[Utterance]             # skipped, longest first
    chunks: list[list[int]] | None        # record indices per shard or chunk; None: make_batches
    index: ShardIndex | None = None       # shards, when read from them
    shard_of: list[int] = field(default_factory=list)

    def plan(self, data: DataConfig, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> Plan:
        if self.chunks is None:
            return Plan(make_batches([r.duration_s for r in self.records], data.max_frames, seed, epoch,
                                     data.num_buckets, True, rank, world_size))
        return plan_batches(self.chunks, [r.duration_s for r in self.records], data.max_frames, seed, epoch,
                            data.num_buckets, data.shuffle_shards, rank, world_size)

    def dataset(self, plan: Plan, encoder, **kwargs) -> BatchDataset:
        if self.index is None:
            return BatchDataset(self.records, plan.batches, encoder, **kwargs)
        return ShardBatchDataset(self.index, self.records, self.shard_of, plan, encoder, **kwargs)

    def cmvn(self, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``compute_cmvn`` of the records, their audio read from wherever it lives."""
        if self.index is None:
            return compute_cmvn(self.records, limit=limit)
        chosen = self.records[:limit] if limit > 0 else self.records
        return compute_cmvn(chosen, waves=iter_waves(self.index, [r.id for r in chosen]))


def _kept_chunks(everything: Sequence[Utterance], chunks: Sequence[Sequence[int]],
                 max_duration_s: float) -> tuple[list[Utterance], list[Utterance], list[list[int]], list[int]]:
    """(kept records, too long, each chunk's kept-record indices, the chunk of each kept record)."""
    _, too_long = within_duration(everything, max_duration_s)
    records, out, shard_of = [], [], []
    for n, chunk in enumerate(chunks):
        mine = []
        for i in chunk:
            if everything[i].duration_s <= max_duration_s:
                mine.append(len(records))
                records.append(everything[i])
                shard_of.append(n)
        out.append(mine)
    return records, too_long, out, shard_of


def training_split(data: DataConfig, conn=None) -> TrainingSplit:
    """The training split ``data`` names: shards when ``data.shards``, else the database split read
    through ``conn`` (planned in chunks of ``data.shard_size`` when that is set)."""
    if data.shards:
        index = open_index(data.shards)
        if index.split_version != data.split_version:
            raise ValueError(f"data.shards={data.shards}: written from split version {index.split_version!r}, "
                             f"but data.split_version is {data.split_version!r} (validation reads that one)")
        everything = index.records()
        positions, chunks = 0, []
        for s in index.shards:
            chunks.append(range(positions, positions + len(s.keys)))
            positions += len(s.keys)
        records, too_long, kept, shard_of = _kept_chunks(everything, chunks, data.max_duration_s)
        return TrainingSplit(records, too_long, kept, index, shard_of)
    from vasr.db import runs

    everything = runs.split_records(conn, "train", data.split_version)
    if data.shard_size > 0:
        records, too_long, kept, shard_of = _kept_chunks(
            everything, canonical_chunks(len(everything), data.shard_size), data.max_duration_s)
        return TrainingSplit(records, too_long, kept, None, shard_of)
    records, too_long = within_duration(everything, data.max_duration_s)
    return TrainingSplit(records, too_long, None)
