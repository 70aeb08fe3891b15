"""Helpers for the tests that run Lightning's ``ddp_spawn`` on CPU (gloo)."""

import atexit
from typing import Any

import torch.distributed as dist
from lightning.pytorch import Callback, LightningModule, Trainer

__all__ = ['DestroyProcessGroupAtExit']


def _destroy() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class DestroyProcessGroupAtExit(Callback):
    """Each spawned process destroys its process group before it exits.

    Lightning leaves a gloo process group alive when the trainer ends (it
    destroys NCCL ones only), and a process that exits with one alive aborts
    now and then (``terminate called without an active exception``, SIGABRT)
    while its threads are torn down: a flaky failure of the test, not of the
    code under test. Lightning's own CI destroys the group too
    (Lightning-AI/pytorch-lightning#8080, #20620).
    """

    def __init__(self) -> None:
        self._registered = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Register the clean-up in this process, once.

        Args:
            trainer: the trainer.
            pl_module: the module.
            stage: the stage.
        """
        if not self._registered:
            atexit.register(_destroy)
            self._registered = True

    def state_dict(self) -> dict[str, Any]:
        """Nothing to save.

        Returns:
            An empty dict.
        """
        return {}
