"""The punctuation model: word features -> a small Transformer encoder -> a mark and a case per word.

Input per word (``vasr.runtime.punct.Features``): the embedding of its vocabulary id plus the mean
embedding of its hashed character n-grams, so a word the vocabulary lacks (a name, a loan word) is
still described by its spelling. A depthwise convolution over neighbouring words gives the layers
word order (no position table, so any length works); then pre-norm Transformer layers, whose attention
ignores padded keys, and two linear heads. Outputs at valid positions do not depend on the padding:
padded positions are zeroed before the convolution and never attended to.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vasr.runtime.punct import CASES, MARKS

__all__ = ["PunctModelConfig", "PunctModel"]


@dataclass(frozen=True)
class PunctModelConfig:
    dim: int = 128                 # width of the embeddings and every layer
    layers: int = 2                # Transformer layers
    heads: int = 4                 # attention heads (dim must divide by heads)
    ff_dim: int = 256              # hidden width of each feed-forward block
    conv_kernel: int = 5           # words the order-giving convolution sees (odd)
    dropout: float = 0.1


class _Layer(nn.Module):
    def __init__(self, c: PunctModelConfig):
        super().__init__()
        self.heads = c.heads
        self.scale = 1.0 / math.sqrt(c.dim // c.heads)
        self.norm1, self.norm2 = nn.LayerNorm(c.dim), nn.LayerNorm(c.dim)
        self.qkv = nn.Linear(c.dim, 3 * c.dim)
        self.out = nn.Linear(c.dim, c.dim)
        self.ff = nn.Sequential(nn.Linear(c.dim, c.ff_dim), nn.GELU(), nn.Linear(c.ff_dim, c.dim))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        """x (N, T, D); key_bias (N, 1, 1, T): 0 for a word, a large negative number for padding."""
        n, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        scores = q @ k.transpose(-1, -2) * self.scale + key_bias
        attended = (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, t, d)
        x = x + self.drop(self.out(attended))
        return x + self.drop(self.ff(self.norm2(x)))


class PunctModel(nn.Module):
    """forward(word_ids (N, T), gram_ids (N, T, G), lengths (N,)) -> (mark logits (N, T, 5),
    case logits (N, T, 3)); ids int64, 0 = padding."""

    def __init__(self, c: PunctModelConfig, vocab_size: int, buckets: int):
        """vocab_size: word ids including padding (0) and unknown (1); buckets: n-gram hash buckets."""
        super().__init__()
        if c.dim % c.heads or c.conv_kernel % 2 == 0:
            raise ValueError(f"model: dim {c.dim} must divide by heads {c.heads}, conv_kernel must be odd")
        self.words = nn.Embedding(vocab_size, c.dim, padding_idx=0)
        self.grams = nn.Embedding(buckets + 1, c.dim, padding_idx=0)
        self.conv = nn.Conv1d(c.dim, c.dim, c.conv_kernel, padding=c.conv_kernel // 2, groups=c.dim)
        self.layers = nn.ModuleList(_Layer(c) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.dim)
        self.marks = nn.Linear(c.dim, len(MARKS))
        self.cases = nn.Linear(c.dim, len(CASES))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, word_ids: torch.Tensor, gram_ids: torch.Tensor,
                lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        valid = torch.arange(word_ids.shape[1], device=word_ids.device)[None, :] < lengths[:, None]
        counts = (gram_ids > 0).sum(-1, keepdim=True).clamp(min=1).to(torch.float32)
        x = self.words(word_ids) + self.grams(gram_ids).sum(2) / counts
        x = self.drop(x) * valid[..., None].to(x.dtype)
        x = x + self.conv(x.transpose(1, 2)).transpose(1, 2)
        key_bias = (~valid)[:, None, None, :].to(x.dtype) * -1e9
        for layer in self.layers:
            x = layer(x, key_bias)
        x = self.norm(x)
        return self.marks(x), self.cases(x)

