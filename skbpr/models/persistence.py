"""Persistence of :class:`~skbpr.models.hybrid.HybridBPR`: pickles hold CPU tensors, and return to their device."""

from __future__ import annotations

import copy
from typing import Any

import torch


class DevicePicklingMixin:
    """Pickles a fitted model's torch state on the CPU and moves it back to its device when it can (a mixin)."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if "device_" in state and state["device_"].type != "cpu":
            state = copy.deepcopy(state)
            _move_state(state, torch.device("cpu"))
            state["_saved_device"] = str(self.device_)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        saved = state.pop("_saved_device", None)
        self.__dict__.update(state)
        if saved is not None and torch.cuda.is_available():
            _move_state(self.__dict__, torch.device(saved))


def _move_state(state: dict[str, Any], device: torch.device) -> None:
    """Move a fitted estimator's torch state to ``device`` in place."""
    state["model_"] = state["model_"].to(device)
    for key in ("_user_map", "_item_map"):
        state[key].to(device)
    state["_optimizer_state"] = tuple(
        None if s is None else {k: v.to(device) if v.dim() else v for k, v in s.items()}
        for s in state["_optimizer_state"]
    )
    state["device_"] = device
