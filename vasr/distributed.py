"""Training processes under torchrun: the process group, the few collective steps the loop takes,
and the stop signals (torchrun and schedulers send SIGTERM to every rank).

gloo on CPU, nccl on CUDA (one device per process, ``LOCAL_RANK``). Without torchrun (``WORLD_SIZE``
unset or 1) there is no process group and every helper is the single-process identity.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def setup(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, this process's device), joining torchrun's process group when there is one.

    device: auto (CUDA when there is one, else CPU) | cpu | cuda | cuda:N; under torchrun a CUDA
    process takes device ``LOCAL_RANK``.
    """
    device = torch.device("cuda" if device == "auto" and torch.cuda.is_available()
                          else "cpu" if device == "auto" else device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if not dist.is_initialized():
        return 0, 1, device
    if dist.get_world_size() > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def close() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _world() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


@contextlib.contextmanager
def rank_zero_first(rank: int) -> Iterator[None]:
    """Rank 0 runs the block before every other rank does (it creates what they then open)."""
    if rank != 0 and _world() > 1:
        dist.barrier()
    yield
    if rank == 0 and _world() > 1:
        dist.barrier()


def any_rank(flag: bool) -> bool:
    """``flag`` or-ed over the ranks: every rank then takes the same branch."""
    if _world() == 1:
        return flag
    # nccl reduces CUDA tensors only
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def gather(obj: T) -> list[T]:
    """Every rank's ``obj`` (index = rank), on every rank."""
    if _world() == 1:
        return [obj]
    out: list = [None] * _world()
    dist.all_gather_object(out, obj)
    return out


def from_rank_zero(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (what the other ranks pass is ignored)."""
    if _world() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class StopFlag:
    """SIGINT or SIGTERM: ``set`` becomes true, and the loop stops at the next step boundary with a
    checkpoint; a second signal aborts at once (KeyboardInterrupt). Handlers are installed (main
    thread only) for the ``with`` block and put back after it."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.set = False
        self._previous: dict = {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, *_):
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
