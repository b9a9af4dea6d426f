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
    """Multi-head self-attention over valid keys only."""

    def __init__(self, d_model: int, num_heads: int, dropout: float):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} must be a multiple of num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        keep = ~pad[:, None, None, :]                       # (N, 1, 1, T): every query sees valid keys
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(n, t, d))


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

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.att(self.norm_att(x), pad))
        return x + self.drop(self.ff(self.norm_ff(x)))


class ConvModule(nn.Module):
    """Conformer convolution: pointwise + GLU, masked depthwise conv, LayerNorm, SiLU, pointwise."""

    def __init__(self, d_model: int, kernel: int, dropout: float):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd, got {kernel}")
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2, groups=d_model)
        self.norm = nn.LayerNorm(d_model)   # per frame, unlike BatchNorm, so padding cannot leak in
        self.pointwise_out = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        x = F.glu(self.pointwise_in(x), dim=-1).masked_fill(pad[..., None], 0.0)
        x = self.depthwise(x.transpose(1, 2)).transpose(1, 2)
        return self.drop(self.pointwise_out(F.silu(self.norm(x))))


class ConformerBlock(nn.Module):
    """Macaron Conformer block (Gulati et al. 2020): FF/2, MHSA, conv, FF/2, final LayerNorm."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.norm_ff1, self.ff1 = nn.LayerNorm(d), feed_forward(d, cfg.ff_dim, cfg.dropout, nn.SiLU)
        self.norm_att, self.att = nn.LayerNorm(d), SelfAttention(d, cfg.num_heads, cfg.dropout)
        self.norm_conv, self.conv = nn.LayerNorm(d), ConvModule(d, cfg.conv_kernel, cfg.dropout)
        self.norm_ff2, self.ff2 = nn.LayerNorm(d), feed_forward(d, cfg.ff_dim, cfg.dropout, nn.SiLU)
        self.norm_out = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.drop(self.ff1(self.norm_ff1(x)))
        x = x + self.drop(self.att(self.norm_att(x), pad))
        x = x + self.conv(self.norm_conv(x), pad)
        x = x + 0.5 * self.drop(self.ff2(self.norm_ff2(x)))
        return self.norm_out(x)


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
        self.cfg = cfg
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

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x float (N, T, F) raw fbank, x_lens int64 (N,) -> log_probs float32 (N, T', V), lengths int64 (N,)."""
        x = (x - self.cmvn_mean) * self.cmvn_istd
        x = x.masked_fill(padding_mask(x_lens, x.shape[1])[..., None], 0.0)
        # MIN_FRAMES - 1 zero frames at the end, always: short inputs get their one output frame
        # and the graph has no data-dependent branch (ONNX export)
        x = F.pad(x, (0, 0, 0, MIN_FRAMES - 1))
        x = self.subsampling(x)
        lengths = output_lengths(x_lens)
        pad = padding_mask(lengths, x.shape[1])
        x = self.input_drop(x + sinusoids(x.shape[1], x.shape[2], x.device).to(x.dtype))
        for block in self.blocks:
            x = block(x, pad).masked_fill(pad[..., None], 0.0)
        logits = self.head(self.norm(x))
        return torch.log_softmax(logits.float(), dim=-1), lengths


def ctc_loss_sum(log_probs: torch.Tensor, targets: torch.Tensor, out_lens: torch.Tensor,
                 target_lens: torch.Tensor) -> torch.Tensor:
    """Summed CTC loss (nats) of log_probs (N, T', V) against the concatenated targets; blank 0."""
    return F.ctc_loss(log_probs.float().transpose(0, 1), targets, out_lens, target_lens, blank=0,
                      reduction="sum", zero_infinity=True)


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
