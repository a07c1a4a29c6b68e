"""Pair a user's refbp module with the user's torch module by ``state_dict`` names.

"Bring both halves": a model with custom ``forward`` code (an LSTM, then its last step, then a
Linear layer; a Transformer encoder with a custom pooling) cannot be converted by
``refbp.mirror.from_torch``, which only knows layers applied in order. The user writes both
halves instead, with the same structure, and refbp pairs them: every ``state_dict`` entry
(parameters and buffers) must exist on both sides under the same name with the same shape.
The refbp module then takes the torch module's values, so both start from identical weights.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from refbp.nn.module import Module


def pairing_problems(model: Module, tmodel: torch.nn.Module) -> list[str]:
    """Every name or shape that does not pair, as readable lines (empty when all pair)."""
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in tmodel.state_dict().items()}
    problems = []
    only_torch = [k for k in theirs if k not in mine]
    only_refbp = [k for k in mine if k not in theirs]
    if only_torch:
        problems.append(f"only in torch_model: {', '.join(only_torch)}")
    if only_refbp:
        problems.append(f"only in refbp_model: {', '.join(only_refbp)}")
    for k, shape in theirs.items():
        if k in mine and mine[k] != shape:
            problems.append(f"{k}: shape {shape} in torch_model, {mine[k]} in refbp_model")
    return problems


def _sync_modes(model: Module, tmodel: torch.nn.Module) -> None:
    """Each refbp submodule takes the train/eval mode of the torch submodule of its name."""
    modes = {name: m.training for name, m in tmodel.named_modules()}
    for name, m in model.named_modules():
        object.__setattr__(m, "training", modes.get(name, tmodel.training))


def paired_refbp_model(refbp_model: Any, tmodel: torch.nn.Module, dtype: str) -> Module:
    """A ``dtype`` copy of ``refbp_model`` holding ``tmodel``'s weights and modes.

    Raises a ValueError that names every name or shape that does not pair.
    """
    if not isinstance(refbp_model, Module):
        raise TypeError("refbp_model must be a refbp.nn.Module, got "
                        f"{type(refbp_model).__name__}")
    model = copy.deepcopy(refbp_model).to(dtype)
    problems = pairing_problems(model, tmodel)
    if problems:
        raise ValueError("refbp_model and torch_model do not pair by state_dict names: "
                         + "; ".join(problems))
    model.load_state_dict({k: v.detach().cpu().numpy() for k, v in tmodel.state_dict().items()})
    params = dict(model.named_parameters())
    for name, tp in tmodel.named_parameters():
        params[name].requires_grad = tp.requires_grad
    _sync_modes(model, tmodel)
    return model
