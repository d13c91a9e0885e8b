"""The one training loop: optimiser steps over a family's batches, validation with best-state tracking and
early stopping, time budgets, and checkpoints a later run resumes from.

A family brings its own parts as callables: ``batch_loss(step)`` draws batch ``step`` and returns its loss,
``validate(progress)`` measures the model and returns ``(score, record)`` (higher scores are better; a tuple
compares item by item, so ``(-eer, step)`` prefers the later of equal ones; ``None`` measures without
selecting), ``log(progress)`` reports. Checkpoints hold only what ``torch.load(weights_only=True)`` reads:
state dicts, tensors, numbers, strings, lists, tuples and dicts of them (the family's ``extra`` state too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class Step:
    """Where a run stands, for the family's ``validate`` and ``log`` callables."""

    step: int  # optimiser steps done
    steps: int  # steps planned
    loss: float  # the last step's loss
    losses: list[float]  # every step's loss in this session (since the start or the resume)
    wall_s: float  # time of the run, all sessions, validation included
    train_s: float  # time of the training steps alone, all sessions
    record: dict[str, Any] | None = None  # the validation record of this step, if it validated


@dataclass
class FitResult:
    """How a run ended: ``stopped`` is ``"steps"``, ``"budget"`` or ``"patience"``."""

    step: int
    wall_s: float
    train_s: float
    best_score: Any = None
    best_step: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = "steps"


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fit(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_loss: Callable[[int], torch.Tensor],
    *,
    steps: int,
    scheduler: Any = None,
    lr: Callable[[int, float], float] | None = None,
    validate: Callable[[Step], tuple[Any, dict[str, Any]]] | None = None,
    validate_every: int = 0,
    validate_first: bool = False,
    patience: int | None = None,
    budget_s: float | None = None,
    checkpoint: Path | None = None,
    checkpoint_every: int = 0,
    best: Path | None = None,
    restore_best: bool = True,
    log: Callable[[Step], None] | None = None,
    log_every: int = 0,
    extra: Callable[[], dict[str, Any]] | None = None,
    resume: Callable[[int, dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train ``model`` for ``steps`` optimiser steps (fewer when ``budget_s`` seconds of training or
    ``patience`` validations without improvement run out) and return how it ended.

    Each step: ``model.train()``, the learning rate ``lr(step, train_s)`` if given, ``batch_loss(step)``,
    backward, ``optimizer.step()``, ``scheduler.step()``. Every ``validate_every`` steps and at the last one,
    ``validate``; its best state goes to the file ``best`` (``{"model", "step", "score"}``) or stays in memory,
    and is loaded into the model at the end when ``restore_best``. ``validate_first`` also measures the
    starting model (step 0). Every ``checkpoint_every`` steps and at the last one, the run state (model,
    optimiser, scheduler, step, times, best score, history, torch's random state and ``extra()``) is saved to
    ``checkpoint``; if that file exists at the start, the run resumes from it and calls
    ``resume(step, extra)`` so the family can restore its own state (samplers, random generators).
    """
    step, wall0, train_s, history, stale = 0, 0.0, 0.0, [], 0
    best_score: Any = None
    best_step: int | None = None
    best_state: dict[str, torch.Tensor] | None = None
    if checkpoint is not None and checkpoint.exists():
        ck = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(ck["scheduler"])
        step, wall0, train_s, history = int(ck["step"]), float(ck["wall_s"]), float(ck["train_s"]), ck["history"]
        best_score, best_step, stale, best_state = ck["best_score"], ck["best_step"], int(ck["stale"]), ck["best_model"]
        torch.set_rng_state(ck["torch_rng"])
        if resume is not None:
            resume(step, ck["extra"])
    t0 = time.time()
    losses: list[float] = []

    def progress(loss: float, record: dict[str, Any] | None = None) -> Step:
        return Step(step, steps, loss, losses, wall0 + time.time() - t0, train_s, record)

    def measure(loss: float) -> tuple[dict[str, Any], bool]:
        """Validate; returns the record and whether the score improved on the best."""
        nonlocal best_score, best_step, best_state
        score, record = validate(progress(loss))  # type: ignore[misc]
        history.append(record)
        if score is None or (best_score is not None and not score > best_score):
            return record, False
        best_score, best_step = score, step
        if best is not None:
            torch.save({"model": model.state_dict(), "step": step, "score": score}, best)
        else:
            best_state = _state(model)
        return record, True

    if validate is not None and validate_first and step == 0:
        measure(float("nan"))
    stopped = "steps"
    while step < steps and (budget_s is None or train_s < budget_s):
        started = time.time()
        if lr is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr(step, train_s)
        model.train()
        loss = batch_loss(step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
        step += 1
        train_s += time.time() - started
        last = step == steps or (budget_s is not None and train_s >= budget_s)
        record = None
        if validate is not None and ((validate_every and step % validate_every == 0) or last):
            record, improved = measure(losses[-1])
            stale = 0 if improved else stale + 1
            if not improved and patience is not None and stale >= patience:
                last, stopped = True, "patience"
        if log is not None and ((log_every and step % log_every == 0) or last):
            log(progress(losses[-1], record))
        if checkpoint is not None and ((checkpoint_every and step % checkpoint_every == 0) or last):
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "step": step,
                    "wall_s": wall0 + time.time() - t0,
                    "train_s": train_s,
                    "best_score": best_score,
                    "best_step": best_step,
                    "best_model": best_state,
                    "stale": stale,
                    "history": history,
                    "torch_rng": torch.get_rng_state(),
                    "extra": extra() if extra is not None else {},
                },
                checkpoint,
            )
        if last:
            break
    if stopped == "steps" and step < steps:
        stopped = "budget"
    if restore_best and best_step is not None:
        chosen = torch.load(best, weights_only=True)["model"] if best is not None else best_state
        model.load_state_dict(chosen)
    return FitResult(step, wall0 + time.time() - t0, train_s, best_score, best_step, history, stopped)
