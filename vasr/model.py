"""The acoustic model: conv2d subsampling x4, a Transformer or Conformer encoder, a CTC head.

``forward(x, x_lens) -> (log_probs, log_probs_len)`` is the ONNX contract of DESIGN.md section 2:
``x`` float32 (N, T, 80) raw log-mel fbank (no CMVN: the statistics live in this module's buffers),
``x_lens`` int64 (N,) valid frames; ``log_probs`` float32 (N, T', V) log-softmax over the vocabulary
(blank = 0) at 40 ms per frame, ``log_probs_len`` int64 (N,) valid output frames.

Outputs of valid frames do not depend on what pads the batch: padded input frames are zeroed
after CMVN, attention ignores padded keys, the subsampling convolutions have no time padding (so a
valid output frame only sees valid input frames), the Conformer's depthwise convolution sees zeros
beyond the end, and every normalisation is per frame (LayerNorm, no BatchNorm).
Inputs shorter than ``MIN_FRAMES`` are padded inside with zeros (after CMVN, i.e. the mean frame),
so every utterance yields at least one output frame.

Streaming (``ModelConfig.streaming``, the U2 recipe of WeNet): the Conformer's depthwise convolution
is causal, positions enter as rotary embeddings of queries and keys (relative by construction, so
cached keys stay valid however long a stream runs), and training draws a chunk size per batch: half
the batches see the full context, the others attend within chunks of 1..``max_train_chunk`` output
frames plus a random number of chunks to their left. One checkpoint then decodes offline (full
context, ``forward(x, x_lens)``) and in chunks (``forward(x, x_lens, chunk, left_chunks)`` here,
``forward_chunk`` with caches in the streaming export) with the same weights.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

SUBSAMPLING = 4          # input frames (10 ms) per output frame (40 ms)
MIN_FRAMES = 7           # the two 3x3 stride-2 convolutions need 7 frames for one output frame
POS_ENC_BASE = 10000.0   # sinusoidal position encoding wavelength base (Vaswani et al.)


@dataclass(frozen=True)
class ModelConfig:
    architecture: Literal["transformer", "conformer"] = "transformer"
    num_mel_bins: int = 80            # feature dimension of x
    d_model: int = 256                # encoder width
    num_layers: int = 6               # encoder blocks
    num_heads: int = 4                # attention heads; d_model must divide by it
    ff_dim: int = 1024                # hidden width of each feed-forward module
    conv_kernel: int = 15             # Conformer depthwise convolution kernel (frames at 40 ms), odd
    subsampling_channels: int = 0     # channels of the two subsampling convs; 0 = d_model
    dropout: float = 0.1              # dropout in attention, feed-forward and after subsampling
    streaming: bool = False           # causal convolution, rotary positions, dynamic chunk training
    max_train_chunk: int = 25         # streaming: largest training chunk, output frames (25 = 1 s)
    full_context_prob: float = 0.5    # streaming: share of training batches that see the full context

    def __post_init__(self) -> None:
        for key, value, ok, bound in [
                ("num_mel_bins", self.num_mel_bins, self.num_mel_bins >= MIN_FRAMES, f">= {MIN_FRAMES}"),
                ("d_model", self.d_model, self.d_model >= 1, ">= 1"),
                ("num_layers", self.num_layers, self.num_layers >= 1, ">= 1"),
                ("num_heads", self.num_heads, self.num_heads >= 1, ">= 1"),
                ("ff_dim", self.ff_dim, self.ff_dim >= 1, ">= 1"),
                ("conv_kernel", self.conv_kernel, self.conv_kernel >= 1 and self.conv_kernel % 2 == 1,
                 "odd and >= 1"),
                ("subsampling_channels", self.subsampling_channels, self.subsampling_channels >= 0,
                 ">= 0 (0 = d_model)"),
                ("dropout", self.dropout, 0.0 <= self.dropout < 1.0, "in [0, 1)")]:
            if not ok:
                raise ValueError(f"model.{key} must be {bound}, got {value!r}")
        if self.streaming and self.architecture != "conformer":
            raise ValueError("streaming needs architecture conformer (its convolution carries the local order)")
        if self.max_train_chunk < 1 or not 0.0 <= self.full_context_prob <= 1.0:
            raise ValueError(f"need max_train_chunk >= 1 and 0 <= full_context_prob <= 1, got "
                             f"{self.max_train_chunk}, {self.full_context_prob}")

    def check(self) -> ModelConfig:
        """This config if its fields agree with each other (checked here, not at construction, so that
        overrides applied one at a time may pass through a mixed state); ValueError naming them."""
        if self.d_model % self.num_heads:
            raise ValueError(f"model.d_model {self.d_model} must be a multiple of model.num_heads {self.num_heads}")
        if self.streaming and (self.d_model // self.num_heads) % 2:
            raise ValueError(f"model.d_model / model.num_heads must be even with streaming (rotary positions turn "
                             f"pairs), got {self.d_model} / {self.num_heads}")
        return self


def chunk_mask(length: int, chunk: int, left_chunks: int, device: torch.device) -> torch.Tensor:
    """Bool (length, length): query i may attend key j when j's chunk is i's or one of the
    ``left_chunks`` before it (``left_chunks < 0``: every chunk before). Chunks hold ``chunk`` frames."""
    index = torch.arange(length, device=device) // chunk
    behind = index[:, None] - index[None, :]
    return (behind >= 0) & ((behind <= left_chunks) if left_chunks >= 0 else True)


def rotate(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (Su et al. 2021) of x (..., T, d) at float positions (T,): each pair
    (x[i], x[i + d/2]) turned by positions * POS_ENC_BASE^(-2i/d) radians."""
    half = x.shape[-1] // 2
    freqs = torch.exp(torch.arange(half, device=x.device, dtype=torch.float32) * (-2.0 * math.log(POS_ENC_BASE) / x.shape[-1]))
    angles = positions.float()[:, None] * freqs[None, :]
    cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def output_lengths(x_lens: torch.Tensor) -> torch.Tensor:
    """Valid output frames for ``x_lens`` valid input frames: ((max(L, 7) - 1) // 2 - 1) // 2."""
    lens = torch.clamp(x_lens, min=MIN_FRAMES)
    return torch.div(torch.div(lens - 1, 2, rounding_mode="floor") - 1, 2, rounding_mode="floor")


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Bool (N, max_len): True at padded positions (index >= length)."""
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


class Conv2dSubsampling(nn.Module):
    """(N, T, F) -> (N, ((T - 1) // 2 - 1) // 2, d_model): two 3x3 stride-2 convolutions with ReLU."""

    def __init__(self, num_bins: int, channels: int, d_model: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, channels, 3, 2), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, 2), nn.ReLU())
        freq = ((num_bins - 1) // 2 - 1) // 2
        self.out = nn.Linear(channels * freq, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x.unsqueeze(1))                       # (N, C, T', F')
        n, c, t, f = x.shape
        return self.out(x.transpose(1, 2).reshape(n, t, c * f))


class SelfAttention(nn.Module):
    """Multi-head self-attention; rotary positions when ``rotary``."""

    def __init__(self, d_model: int, num_heads: int, dropout: float, rotary: bool = False):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} must be a multiple of num_heads {num_heads}")
        self.num_heads = num_heads
        self.rotary = rotary
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def _qkv(self, x: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        if self.rotary:
            q, k = rotate(q, positions), rotate(k, positions)
        return q, k, v

    def _out(self, q, k, v, mask: torch.Tensor) -> torch.Tensor:
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        n, h, t, dk = y.shape
        return self.proj(y.transpose(1, 2).reshape(n, t, h * dk))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """x (N, T, d); mask bool (N, 1, T or 1, T), True = attend; positions (T,)."""
        return self._out(*self._qkv(x, positions), mask)

    def forward_chunk(self, x: torch.Tensor, cache: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
                      keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One chunk x (1, c, d) after the cached keys and values ``cache`` (H, R, 2 d/H) of the R
        frames before it; mask bool (1, 1, R + c); the new cache holds the last ``keep`` frames."""
        q, k, v = self._qkv(x, positions)
        k_cache, v_cache = cache.unsqueeze(0).chunk(2, dim=-1)
        k, v = torch.cat([k_cache, k], dim=2), torch.cat([v_cache, v], dim=2)
        new_cache = torch.cat([k, v], dim=-1)[0, :, -keep:]
        return self._out(q, k, v, mask.unsqueeze(1)), new_cache


def feed_forward(d_model: int, ff_dim: int, dropout: float, activation: type[nn.Module]) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_model, ff_dim), activation(), nn.Dropout(dropout), nn.Linear(ff_dim, d_model))


class TransformerBlock(nn.Module):
    """Pre-norm Transformer encoder block: x + MHSA(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm_att = nn.LayerNorm(cfg.d_model)
        self.att = SelfAttention(cfg.d_model, cfg.num_heads, cfg.dropout)
        self.norm_ff = nn.LayerNorm(cfg.d_model)
        self.ff = feed_forward(cfg.d_model, cfg.ff_dim, cfg.dropout, nn.ReLU)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pad: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.att(self.norm_att(x), mask, positions))
        return x + self.drop(self.ff(self.norm_ff(x)))


class ConvModule(nn.Module):
    """Conformer convolution: pointwise + GLU, masked depthwise conv (centred, or causal: only past
    frames), LayerNorm, SiLU, pointwise."""

    def __init__(self, d_model: int, kernel: int, dropout: float, causal: bool = False):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd, got {kernel}")
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel, groups=d_model)
        self.context = (kernel - 1, 0) if causal else (kernel // 2, kernel // 2)   # frames (before, after)
        self.norm = nn.LayerNorm(d_model)   # per frame, unlike BatchNorm, so padding cannot leak in
        self.pointwise_out = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def _out(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.pointwise_out(F.silu(self.norm(self.depthwise(x).transpose(1, 2)))))

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        x = F.glu(self.pointwise_in(x), dim=-1).masked_fill(pad[..., None], 0.0)
        return self._out(F.pad(x.transpose(1, 2), self.context))

    def forward_chunk(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Causal: one chunk x (1, c, d) after ``cache`` (1, d, kernel - 1), the GLU outputs of the
        frames before it; returns the output and the new cache."""
        x = torch.cat([cache, F.glu(self.pointwise_in(x), dim=-1).transpose(1, 2)], dim=2)
        return self._out(x), x[:, :, -cache.shape[2]:]


class ConformerBlock(nn.Module):
    """Macaron Conformer block (Gulati et al. 2020): FF/2, MHSA, conv, FF/2, final LayerNorm."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.norm_ff1, self.ff1 = nn.LayerNorm(d), feed_forward(d, cfg.ff_dim, cfg.dropout, nn.SiLU)
        self.norm_att = nn.LayerNorm(d)
        self.att = SelfAttention(d, cfg.num_heads, cfg.dropout, rotary=cfg.streaming)
        self.norm_conv = nn.LayerNorm(d)
        self.conv = ConvModule(d, cfg.conv_kernel, cfg.dropout, causal=cfg.streaming)
        self.norm_ff2, self.ff2 = nn.LayerNorm(d), feed_forward(d, cfg.ff_dim, cfg.dropout, nn.SiLU)
        self.norm_out = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pad: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.drop(self.ff1(self.norm_ff1(x)))
        x = x + self.drop(self.att(self.norm_att(x), mask, positions))
        x = x + self.conv(self.norm_conv(x), pad)
        x = x + 0.5 * self.drop(self.ff2(self.norm_ff2(x)))
        return self.norm_out(x)

    def forward_chunk(self, x: torch.Tensor, att_cache: torch.Tensor, conv_cache: torch.Tensor, mask: torch.Tensor,
                      positions: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``forward`` for one chunk of a stream (1, c, d) with its caches (see SelfAttention and
        ConvModule ``forward_chunk``)."""
        x = x + 0.5 * self.ff1(self.norm_ff1(x))
        y, att_cache = self.att.forward_chunk(self.norm_att(x), att_cache, mask, positions, keep)
        x = x + y
        y, conv_cache = self.conv.forward_chunk(self.norm_conv(x), conv_cache)
        x = x + y
        x = x + 0.5 * self.ff2(self.norm_ff2(x))
        return self.norm_out(x), att_cache, conv_cache


def sinusoids(length: int, d_model: int, device: torch.device) -> torch.Tensor:
    """Float (length, d_model) absolute sinusoidal position encoding."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freqs = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float32)
                      * (-math.log(POS_ENC_BASE) / d_model))
    enc = torch.zeros(length, d_model, device=device)
    enc[:, 0::2] = torch.sin(position * freqs)
    enc[:, 1::2] = torch.cos(position * freqs[: d_model // 2])
    return enc


class CtcModel(nn.Module):
    """CMVN -> Conv2dSubsampling -> encoder blocks -> LayerNorm -> Linear -> log-softmax."""

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg.check()
        self.vocab_size = vocab_size
        # CMVN statistics of the training features; identity until set_cmvn is called
        self.register_buffer("cmvn_mean", torch.zeros(cfg.num_mel_bins))
        self.register_buffer("cmvn_istd", torch.ones(cfg.num_mel_bins))
        self.subsampling = Conv2dSubsampling(cfg.num_mel_bins, cfg.subsampling_channels or cfg.d_model, cfg.d_model)
        self.input_drop = nn.Dropout(cfg.dropout)
        block = {"transformer": TransformerBlock, "conformer": ConformerBlock}[cfg.architecture]
        self.blocks = nn.ModuleList(block(cfg) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, vocab_size)

    def set_cmvn(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store per-bin feature mean and standard deviation, each (num_mel_bins,)."""
        self.cmvn_mean.copy_(mean)
        self.cmvn_istd.copy_(1.0 / torch.clamp(std, min=1e-5))

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor, chunk: int | None = None,
                left_chunks: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
        """x float (N, T, F) raw fbank, x_lens int64 (N,) -> log_probs float32 (N, T', V), lengths int64 (N,).

        chunk: attend within chunks of this many output frames and ``left_chunks`` chunks before
        (negative: all before), what the streaming export computes; 0 = full context; None = full
        context, except that a streaming model in training draws the chunking per batch."""
        x = (x - self.cmvn_mean) * self.cmvn_istd
        x = x.masked_fill(padding_mask(x_lens, x.shape[1])[..., None], 0.0)
        # MIN_FRAMES - 1 zero frames at the end, always: short inputs get their one output frame
        # and the graph has no data-dependent branch (ONNX export)
        x = F.pad(x, (0, 0, 0, MIN_FRAMES - 1))
        x = self.subsampling(x)
        lengths = output_lengths(x_lens)
        t = x.shape[1]
        pad = padding_mask(lengths, t)
        mask = ~pad[:, None, None, :]                       # (N, 1, 1, T'): every query sees valid keys
        if chunk is None and self.training and self.cfg.streaming:
            chunk, left_chunks = self._draw_chunking(t)
        if chunk:
            # a padded query whose window holds only padding would have no key at all: it sees itself
            eye = torch.eye(t, dtype=torch.bool, device=x.device)
            mask = (mask & chunk_mask(t, chunk, left_chunks, x.device)) | eye
        positions = torch.arange(t, device=x.device)
        if not self.cfg.streaming:
            x = x + sinusoids(t, x.shape[2], x.device).to(x.dtype)
        x = self.input_drop(x)
        for block in self.blocks:
            x = block(x, mask, pad, positions).masked_fill(pad[..., None], 0.0)
        logits = self.head(self.norm(x))
        return torch.log_softmax(logits.float(), dim=-1), lengths

    def _draw_chunking(self, frames: int) -> tuple[int, int]:
        """U2's dynamic chunk: full context with probability ``full_context_prob``, else a chunk of
        1..max_train_chunk frames and 0..all chunks of left context, drawn from torch's RNG."""
        if float(torch.rand(())) < self.cfg.full_context_prob:
            return 0, -1
        chunk = int(torch.randint(1, self.cfg.max_train_chunk + 1, ()))
        return chunk, int(torch.randint(0, max(1, (frames - 1) // chunk + 1), ()))

    def forward_chunk(self, x: torch.Tensor, offset: torch.Tensor, att_cache: torch.Tensor, conv_cache: torch.Tensor,
                      att_mask: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One chunk of a stream (streaming models only, batch 1).

        x float (1, 4c + 3, F) raw fbank: the chunk's 4c frames and the 3 that follow (the
        subsampling's look-ahead); offset int64 (1,) stream position of the chunk's first output
        frame (any constant may be added: rotary positions are relative); att_cache (L, H, R, 2 d/H)
        keys and values of the R output frames before the chunk; conv_cache (L, 1, d, kernel - 1);
        att_mask bool (1, 1, R + c), False at cache frames that do not exist yet; keep int64 (1,):
        frames of attention cache to return (R). Returns log_probs (1, c, V) and the new caches."""
        x = self.subsampling((x - self.cmvn_mean) * self.cmvn_istd)
        positions = offset + torch.arange(x.shape[1], device=x.device)
        att_out, conv_out = [], []
        for i, block in enumerate(self.blocks):
            x, a, c = block.forward_chunk(x, att_cache[i], conv_cache[i], att_mask, positions, keep)
            att_out.append(a)
            conv_out.append(c)
        logits = self.head(self.norm(x))
        return torch.log_softmax(logits.float(), dim=-1), torch.stack(att_out), torch.stack(conv_out)


def ctc_loss_sum(log_probs: torch.Tensor, targets: torch.Tensor, out_lens: torch.Tensor,
                 target_lens: torch.Tensor) -> torch.Tensor:
    """Summed CTC loss (nats) of log_probs (N, T', V) against the concatenated targets; blank 0."""
    return F.ctc_loss(log_probs.float().transpose(0, 1), targets, out_lens, target_lens, blank=0,
                      reduction="sum", zero_infinity=True)


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
