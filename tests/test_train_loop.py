"""The one training loop (forensics.train.loop.fit) on a tiny generated problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from forensics.train.loop import Step, fit


def _setup(seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    return model, opt, torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.7)


def _batch_loss(model: torch.nn.Module) -> Callable[[int], torch.Tensor]:
    w = torch.tensor([1.0, -2.0, 0.5, 0.0])

    def batch_loss(step: int) -> torch.Tensor:
        rng = np.random.default_rng(step)  # batch ``step`` is the same in every run
        x = torch.from_numpy(rng.normal(size=(16, 4)).astype(np.float32))
        y = (x @ w > 0).float()
        return torch.nn.functional.binary_cross_entropy_with_logits(model(x)[:, 0], y)

    return batch_loss


def _states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_fit_trains_and_logs() -> None:
    model, opt, sched = _setup()
    logged: list[Step] = []
    res = fit(model, opt, _batch_loss(model), steps=40, scheduler=sched, log=logged.append, log_every=10)
    assert res.step == 40 and res.stopped == "steps" and [p.step for p in logged] == [10, 20, 30, 40]
    assert np.mean(logged[-1].losses[-10:]) < np.mean(logged[-1].losses[:10])


def test_resumed_run_continues_identically(tmp_path: Path) -> None:
    whole, opt, sched = _setup()
    fit(whole, opt, _batch_loss(whole), steps=12, scheduler=sched, checkpoint=tmp_path / "a.pt", checkpoint_every=4)
    seen: list[tuple[int, dict]] = []
    first, opt, sched = _setup()
    fit(first, opt, _batch_loss(first), steps=5, scheduler=sched, checkpoint=tmp_path / "b.pt", extra=lambda: {"n": 5})
    resumed, opt, sched = _setup(seed=1)  # a new process: other initial weights, replaced by the checkpoint's
    res = fit(resumed, opt, _batch_loss(resumed), steps=12, scheduler=sched, checkpoint=tmp_path / "b.pt",
              resume=lambda step, extra: seen.append((step, extra)))  # fmt: skip
    assert seen == [(5, {"n": 5})] and res.step == 12
    assert _states_equal(whole, resumed)
    assert torch.load(tmp_path / "b.pt", weights_only=True)["step"] == 12


def test_early_stop_and_best_state(tmp_path: Path) -> None:
    for best in (tmp_path / "best.pt", None):
        model, opt, _ = _setup()
        states = {}

        def validate(p: Step, model: torch.nn.Module = model, states: dict = states) -> tuple[float, dict]:
            states[p.step] = {k: v.clone() for k, v in model.state_dict().items()}
            return (1.0 if p.step == 4 else 0.5), {"step": p.step}

        res = fit(model, opt, _batch_loss(model), steps=100, validate=validate, validate_every=2, patience=3, best=best)
        assert res.stopped == "patience" and res.step == 10 and res.best_step == 4
        assert [r["step"] for r in res.history] == [2, 4, 6, 8, 10]
        assert all(torch.equal(v, states[4][k]) for k, v in model.state_dict().items())


def test_budget_and_validate_first() -> None:
    model, opt, _ = _setup()
    res = fit(model, opt, _batch_loss(model), steps=10**6, budget_s=0.2,
              validate=lambda p: (p.step, {"step": p.step}), validate_first=True)  # fmt: skip
    assert res.stopped == "budget" and res.history[0] == {"step": 0} and res.history[-1]["step"] == res.step
