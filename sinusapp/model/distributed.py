"""Training on several processes, GPUs or nodes with ``torchrun`` (PyTorch DDP).

``torchrun --nproc_per_node=N -m sinusapp train ...`` starts N copies of the command with the
environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init_from_env` turns them into a process group (NCCL on CUDA, gloo on
the CPU) and gives each process its own GPU. :mod:`sinusapp.model.train` then wraps every
model in :class:`~torch.nn.parallel.DistributedDataParallel`, splits each optimizer step's
batch across the processes, and lets rank 0 alone write checkpoints, results, logs and the
bundle (the work and output folders must be on a file system every node sees).

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) nothing here does anything: one process
trains exactly as before.

This module imports torch; it is imported when training starts.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from sinusapp.errors import InputError

__all__ = [
    "DistContext",
    "barrier",
    "init_from_env",
    "is_main",
    "rank_world",
    "restarted_by_torchrun",
    "shutdown",
    "under_torchrun",
]

log = logging.getLogger(__name__)

#: Minutes a process waits at a barrier for the others (rank 0 scores a fold's validation
#: cases and the test cohort while the others wait). ``SINUSAPP_DIST_TIMEOUT_MIN`` overrides.
DEFAULT_TIMEOUT_MIN = 120


@dataclass(frozen=True, slots=True)
class DistContext:
    """This process's place in the job: global rank, number of processes, rank on its node,
    the torch device it trains on and the backend of the process group."""

    rank: int
    world_size: int
    local_rank: int
    device: str
    backend: str


def under_torchrun() -> bool:
    """Whether this process was started by torchrun (or an equivalent launcher) with more than
    one process in the job."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def restarted_by_torchrun() -> bool:
    """Whether torchrun restarted the workers after a failure (``--max-restarts``): a lost
    node or process. The training then continues from the checkpoints, as ``--resume``."""
    try:
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
    except ValueError:
        return False


def _env_int(name: str) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value)
    except ValueError:
        raise InputError(
            f"the environment variable {name}={value!r} is not an integer",
            hint="start distributed training with torchrun, which sets RANK, WORLD_SIZE and "
            "LOCAL_RANK",
        ) from None


def init_from_env(device: str) -> DistContext | None:
    """Initialise the process group from torchrun's environment; ``None`` when not under it.

    ``device``: the resolved device (``cpu``, ``cuda`` or ``cuda:N``). On CUDA every process
    uses ``cuda:LOCAL_RANK`` and the NCCL backend; on the CPU the gloo backend.

    Raises
    ------
    InputError
        Fewer GPUs on this node than processes, or a malformed environment.
    """
    if not under_torchrun():
        return None
    rank, world, local = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    if device.startswith("cuda"):
        n_gpu = torch.cuda.device_count()
        if local >= n_gpu:
            raise InputError(
                f"process {rank} (local rank {local}) has no GPU: this node has {n_gpu}",
                hint="give torchrun --nproc_per_node at most the number of GPUs per node",
            )
        torch.cuda.set_device(local)
        device, backend = f"cuda:{local}", "nccl"
    else:
        backend = "gloo"
    timeout = float(os.environ.get("SINUSAPP_DIST_TIMEOUT_MIN", DEFAULT_TIMEOUT_MIN))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout))
    log.info("distributed training: rank %d of %d (%s, %s)", rank, world, backend, device)
    return DistContext(
        rank=rank, world_size=world, local_rank=local, device=device, backend=backend
    )


def rank_world() -> tuple[int, int]:
    """``(rank, world size)`` of this process; ``(0, 1)`` without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process writes (rank 0, or the only process)."""
    return rank_world()[0] == 0


def barrier() -> None:
    """Wait for every process (no-op with one process)."""
    if rank_world()[1] <= 1:
        return
    if dist.get_backend() == "nccl" and torch.cuda.is_available():
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def shutdown() -> None:
    """Destroy the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
