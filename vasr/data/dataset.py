"""Batches of features for training and evaluation, read from a database split.

Features are computed on the fly by the runtime's kernel (``vasr.kernels.compute_fbank_batch``),
so training sees exactly what the ONNX runtime will feed the model. Batches are duration-bucketed
and capped by padded frames (``max_frames`` = batch size x longest utterance); their order and
their augmentation are functions of (seed, epoch, batch index) only, so a run is deterministic
with any number of DataLoader workers, and a resumed run picks up at the batch where it stopped.
``plan_batches`` plans the same way over shards (or the database cut into the same chunks), within
windows of a few shards (``vasr.data.shards`` reads them).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vasr.runtime import audio
from vasr.data.augment import AugmentConfig, augment_wave, spec_augment
from vasr.data.utterance import Utterance
from vasr.kernels import FbankOptions, compute_fbank_batch
from vasr.text.tokens import Tokenizer

FRAMES_PER_SECOND = 100      # fbank frames per second of audio (10 ms shift)
PAD_VALUE = -23.0259         # log(1e-10): what sherpa-onnx pads features with; the model masks it anyway
SHARD_STREAM = 2             # random stream of plan_batches (make_batches draws from [seed, epoch])


@dataclass(frozen=True)
class DataConfig:
    split_version: str = "default"       # data_splits.version to read
    max_frames: int = 20000              # padded fbank frames per batch (batch size x longest utterance)
    num_buckets: int = 8                 # duration buckets; batches are drawn within one bucket
    num_workers: int = 0                 # DataLoader worker processes; 0 = in the training process
    max_duration_s: float = 30.0         # longer training utterances are skipped (counted in the log)
    dither: float = 0.0                  # fbank dither (std, waveform units) in training; 0 = off
    cmvn_utterances: int = 0             # training utterances the CMVN statistics use; 0 = all
    shards: str | None = None            # read the training split from these shards (`vasr shards write`): their
                                         # folder, index.json, or an http(s) URL of it; None = the database
    shard_size: int = 0                  # database only: plan batches over canonical chunks of this many
                                         # utterances, as shards of this size are (0 = over the whole split)
    shuffle_shards: int = 4              # shards (or chunks) per shuffle window: batches are drawn within one

    @property
    def fbank(self) -> FbankOptions:
        """The features of training batches: the runtime's (DESIGN.md section 2) plus ``dither``,
        drawn from each batch's own generator, so a resumed run sees the same noise."""
        return FbankOptions(dither=self.dither)


def within_duration(records: Sequence[Utterance], max_duration_s: float) -> tuple[list[Utterance], list[Utterance]]:
    """(the records at most ``max_duration_s`` long, the longer ones, longest first): training skips the
    latter, and says so (``vasr.train``)."""
    kept = [r for r in records if r.duration_s <= max_duration_s]
    longer = sorted((r for r in records if r.duration_s > max_duration_s), key=lambda r: -r.duration_s)
    return kept, longer


def frames_of(duration_s: float) -> int:
    return int(round(duration_s * FRAMES_PER_SECOND))


def make_batches(durations: Sequence[float], max_frames: int, seed: int, epoch: int, num_buckets: int = 1,
                 shuffle: bool = True, rank: int = 0, world_size: int = 1) -> list[list[int]]:
    """Index lists of the batches of one epoch (this rank's share).

    Utterances are sorted by duration and cut into ``num_buckets`` equal-count buckets; within a
    bucket the order is shuffled and consecutive utterances fill a batch until the padded size
    would pass ``max_frames`` (a longer utterance makes a batch of its own). The batch order is
    shuffled too. Without ``shuffle`` the batches follow increasing duration. With several ranks
    each gets every ``world_size``-th batch, the count cut to a multiple of ``world_size`` so that
    all ranks step together.
    """
    batches = bucket_batches(durations, max_frames, np.random.default_rng([seed, epoch]), num_buckets, shuffle)
    usable = len(batches) - len(batches) % world_size if world_size > 1 else len(batches)
    return batches[rank:usable:world_size]


def bucket_batches(durations: Sequence[float], max_frames: int, rng: np.random.Generator, num_buckets: int = 1,
                   shuffle: bool = True) -> list[list[int]]:
    """The batches of ``make_batches`` (all of them, in their order), drawn with ``rng``: the one
    batching rule of a whole split (``make_batches``) and of a window of shards (``vasr.data.shards``)."""
    order = np.argsort(np.asarray(durations, dtype=np.float64), kind="stable")
    buckets = np.array_split(order, max(1, min(num_buckets, len(order)))) if shuffle else [order]
    batches: list[list[int]] = []
    for bucket in buckets:
        members = rng.permutation(bucket) if shuffle else bucket
        current: list[int] = []
        longest = 0
        for i in members.tolist():
            frames = frames_of(durations[i])
            if current and max(longest, frames) * (len(current) + 1) > max_frames:
                batches.append(current)
                current, longest = [], 0
            current.append(i)
            longest = max(longest, frames)
        if current:
            batches.append(current)
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


@dataclass(frozen=True)
class Plan:
    """One epoch's batches for one rank: index lists into the training records, and the window
    (shards ``windows[w]``) each batch is drawn from."""
    batches: list[list[int]]
    window_of: list[int] = field(default_factory=list)      # batch -> window number (non-decreasing)
    windows: list[list[int]] = field(default_factory=list)  # window -> shard (chunk) numbers, in read order

    def __len__(self) -> int:
        return len(self.batches)


def plan_batches(chunks: Sequence[Sequence[int]], durations: Sequence[float], max_frames: int, seed: int, epoch: int,
                 num_buckets: int = 1, window: int = 4, rank: int = 0, world_size: int = 1) -> Plan:
    """The batches of epoch ``epoch`` on ``rank``, planned from durations only.

    chunks: the record indices of each shard (or database chunk), in shard order; durations: seconds,
    by record index. The shards are permuted with rng(seed, epoch) (the same on every rank), rank r
    takes every ``world_size``-th from r, walks them in windows of ``window`` shards and batches each
    window with ``bucket_batches`` (rng(seed, epoch, rank, window)); every rank's list is cut to the
    shortest rank's length so that all step together.
    """
    if len(chunks) < world_size:
        raise ValueError(f"{len(chunks)} shards cannot feed {world_size} ranks: write smaller shards "
                         f"(vasr shards write --utterances-per-shard) or train on fewer ranks")
    order = np.random.default_rng([seed, epoch, SHARD_STREAM]).permutation(len(chunks)).tolist()
    plans = [_rank_plan(chunks, durations, order[r::world_size], max_frames, seed, epoch, num_buckets, window, r)
             for r in range(world_size)]
    keep = min(len(p) for p in plans)
    mine = plans[rank]
    return Plan(mine.batches[:keep], mine.window_of[:keep], mine.windows)


def _rank_plan(chunks, durations, shards: list[int], max_frames, seed, epoch, num_buckets, window, rank) -> Plan:
    batches, window_of, windows = [], [], []
    for w, start in enumerate(range(0, len(shards), max(1, window))):
        members = [j for s in shards[start:start + window] for j in chunks[s]]
        windows.append(shards[start:start + window])
        rng = np.random.default_rng([seed, epoch, SHARD_STREAM, rank, w])
        local = bucket_batches([durations[j] for j in members], max_frames, rng, num_buckets) if members else []
        batches += [[members[k] for k in b] for b in local]
        window_of += [w] * len(local)
    return Plan(batches, window_of, windows)


class TargetEncoder:
    """Token ids of a transcript; characters the tokenizer cannot spell are dropped (and counted)."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.unknown: set[str] = set()

    def __call__(self, text: str) -> list[int]:
        try:
            return self.tokenizer.encode(text)
        except ValueError:
            kept = "".join(c for c in text if self._known(c))
            return self.tokenizer.encode(" ".join(kept.split()))

    def _known(self, char: str) -> bool:
        if char == " ":
            return True
        try:
            self.tokenizer.encode(char)
            return True
        except ValueError:
            self.unknown.add(char)
            return False


class BatchDataset(Dataset):
    """Item i = the collated batch ``batches[i]``: a dict of tensors and lists (see ``collate``)."""

    def __init__(self, records: Sequence[Utterance], batches: list[list[int]], encoder: TargetEncoder | None,
                 fbank: FbankOptions = FbankOptions(), augment: AugmentConfig | None = None,
                 seed: int = 0, epoch: int = 0, spec_fill: np.ndarray | None = None):
        self.records = records
        self.batches = batches
        self.encoder = encoder
        self.fbank = fbank
        self.augment = augment
        self.seed = seed
        self.epoch = epoch
        self.spec_fill = spec_fill

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, i, 1])   # this batch's augmentation, whoever builds it
        recs = [self.records[j] for j in self.batches[i]]
        waves = self.waves(i)
        if self.augment is not None:
            waves = [augment_wave(w, self.augment, rng) for w in waves]
        feats = compute_fbank_batch(waves, self.fbank, rng if self.fbank.dither > 0 else None)
        if self.augment is not None:
            feats = [spec_augment(f, self.augment.spec, rng, self.spec_fill) for f in feats]
        targets = [self.encoder(r.text) for r in recs] if self.encoder is not None else None
        return collate(feats, targets, recs, sum(len(w) for w in waves) / audio.TARGET_RATE)

    def waves(self, i: int) -> list[np.ndarray]:
        """float32 (S,) 16 kHz samples of each utterance of batch i; here from its audio file
        (``vasr.data.shards.ShardBatchDataset`` reads them from shards)."""
        return [audio.load(r.path, r.start_s, r.end_s) for r in (self.records[j] for j in self.batches[i])]


def collate(feats: Sequence[np.ndarray], targets: Sequence[list[int]] | None, recs: Sequence[Utterance],
            audio_s: float) -> dict:
    """x float32 (N, T, F) padded with PAD_VALUE, x_lens int64 (N,), targets int64 (sum of lengths,),
    target_lens int64 (N,), records, audio_s (seconds of audio in the batch)."""
    lens = [len(f) for f in feats]
    x = np.full((len(feats), max(lens), feats[0].shape[1]), PAD_VALUE, dtype=np.float32)
    for k, f in enumerate(feats):
        x[k, : len(f)] = f
    batch = {"x": torch.from_numpy(x), "x_lens": torch.tensor(lens, dtype=torch.int64), "records": list(recs),
             "audio_s": audio_s}
    if targets is not None:
        batch["targets"] = torch.tensor([t for ts in targets for t in ts], dtype=torch.int64)
        batch["target_lens"] = torch.tensor([len(t) for t in targets], dtype=torch.int64)
    return batch


def loader(dataset: BatchDataset, start: int = 0, num_workers: int = 0) -> DataLoader:
    """Iterate batches ``start..len-1`` of ``dataset`` in order (a resumed epoch starts mid-way)."""
    # its own generator: a DataLoader otherwise draws its worker seed from the global torch RNG,
    # and a resumed epoch (one more DataLoader) would shift the dropout masks
    return DataLoader(dataset, batch_size=None, sampler=range(start, len(dataset)), num_workers=num_workers,
                      collate_fn=_as_built, generator=torch.Generator().manual_seed(0))


def _as_built(batch: dict) -> dict:
    """The batch as ``BatchDataset`` collated it (the default would convert it again)."""
    return batch


def compute_cmvn(records: Sequence[Utterance], fbank: FbankOptions = FbankOptions(),
                 limit: int = 0, waves: Iterable[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean and standard deviation (float64 (F,) each) of the fbank of ``records``
    (the first ``limit`` when limit > 0), over every frame. ``waves``: their samples in the same
    order, when they come from elsewhere than the records' files (shards)."""
    chosen = records[:limit] if limit > 0 else records
    if waves is None:
        waves = (audio.load(r.path, r.start_s, r.end_s) for r in chosen)
    total = np.zeros(fbank.num_bins)
    squares = np.zeros(fbank.num_bins)
    count = 0
    for _, wave in zip(chosen, waves):
        f = compute_fbank_batch([wave], fbank)[0].astype(np.float64)
        total += f.sum(axis=0)
        squares += (f ** 2).sum(axis=0)
        count += len(f)
    if count == 0:
        raise ValueError("no feature frames to compute CMVN statistics from")
    mean = total / count
    return mean, np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
