"""Data-parallel training on PyTorch's own engine: torchrun, DistributedDataParallel, DistributedSampler.

Li et al. (2020), "PyTorch Distributed: Experiences on Accelerating Data Parallel Training" describes
the engine used here. Processes are started by ``torchrun`` (``vgzoo train --nproc N`` starts it for
you); the backend is gloo on CPU and nccl on CUDA. Rank 0 alone logs and writes checkpoints.

GAN models expose their objectives as methods (``generator_loss``/``discriminator_loss``), not as
``forward``; :class:`LossCall` routes such a call through ``forward`` so DDP's gradient hooks see it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """Rank and world size from torchrun's environment (a single process without it)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def resolve_device(device: str | torch.device | None, info: DistInfo) -> torch.device:
    """The device this process trains on: CUDA when available by default; in a distributed job, ``cuda:LOCAL_RANK``.

    The run config saved with a checkpoint holds rank 0's resolved device (``cuda:0``); on resume every rank must
    still take its own GPU, so a CUDA device of a distributed job is always the one of this process's local rank.

    Raises:
        DeviceError: a device that does not exist here (``--device cuda`` without CUDA says to use ``--device cpu``).
    """
    from .._runtime import check_device

    default = os.environ.get("VGZOO_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    dev = check_device(device, default=default)
    if dev.type == "cuda":
        if info.enabled:
            dev = check_device(f"cuda:{info.local_rank}")
        elif dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def init(device: torch.device) -> DistInfo:
    """Join the process group torchrun prepared (gloo on CPU, nccl on CUDA); no-op for one process."""
    info = env_info()
    if not info.enabled or (dist.is_available() and dist.is_initialized()):
        return info
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    return info


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def any_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank when any rank's flag is set (so all ranks stop at the same step)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


#: The last barrier's work, held until the process exits. Gloo's runloop thread otherwise drops the last reference
#: to it, and with it the tensors of the collectives it waited for, whose Python objects need the GIL: a rank whose
#: interpreter is already finalizing then dies in std::terminate. Held here, it is freed by the main thread.
_LAST_BARRIER: list[Any] = []


def barrier(info: DistInfo) -> None:
    if info.enabled:
        work = dist.barrier(async_op=True)
        work.wait()
        _LAST_BARRIER[:] = [work]


class LossCall(nn.Module):
    """``LossCall(model)("generator_loss", batch)`` calls ``model.generator_loss(batch)`` through ``forward``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, method: str, *args, **kwargs):
        return getattr(self.model, method)(*args, **kwargs)


def convert_sync_batchnorm(model: nn.Module, device: torch.device, log=print) -> nn.Module:
    """SyncBatchNorm on CUDA; on CPU PyTorch refuses it, so plain batch norm stays (and the log says so)."""
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if not has_bn:
        return model
    if device.type == "cuda":
        log("distributed: batch-norm layers converted to SyncBatchNorm")
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    log("distributed: keeping plain BatchNorm (PyTorch's SyncBatchNorm runs on CUDA only); each process "
        "normalises with its own batch statistics")
    return model


def wrap(module: nn.Module, info: DistInfo, device: torch.device, find_unused: bool) -> nn.Module:
    """DistributedDataParallel around ``module`` when the job has more than one process."""
    if not info.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index if device.index is not None else info.local_rank] if device.type == "cuda" else None
    return DDP(module, device_ids=ids, find_unused_parameters=find_unused)


def launch_torchrun(nproc: int, argv: list[str]) -> int:
    """Re-run ``vgzoo`` with ``argv`` under ``torchrun --standalone --nproc-per-node nproc``; its exit code.

    torchrun parses every ``--option`` it sees, also those after the script, and refuses a prefix of two of its own
    options as ambiguous (``--nproc``), so ``argv`` must not carry one: the per-process command has no ``--nproc``.
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "vgzoo", *argv]
    return subprocess.call(cmd)
