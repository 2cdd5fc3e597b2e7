"""The shared epoch loop's stopping rule: patience, a minimum number of epochs, and patience on a
smoothed score, so that a lucky or flat start does not end training."""

from __future__ import annotations

import torch

from redteam.trainer_loop import run_epochs


def trained(scores: list[float], **settings) -> tuple[int, int]:
    """(epochs run, best epoch) of the loop fed ``scores`` one per epoch."""
    model = torch.nn.Linear(1, 1)

    def run_epoch(epoch: int) -> dict[str, float]:
        with torch.no_grad():
            model.weight.fill_(epoch)
        return {"epoch": epoch, "score": scores[epoch - 1]}

    result = run_epochs(model, epochs=len(scores), dropout_seed=0, run_epoch=run_epoch, **settings)
    assert model.weight.item() == result.best_epoch  # the best epoch's weights are restored
    return result.epochs_run, result.best_epoch


# a lucky second epoch, a flat stretch, then the real climb
LUCKY_START = [0.10, 0.30, 0.12, 0.13, 0.14, 0.15, 0.16, 0.20, 0.26, 0.32, 0.38, 0.40, 0.41, 0.41, 0.40]


def test_plain_patience_stops_on_the_lucky_start() -> None:
    assert trained(LUCKY_START, patience=5) == (7, 2)


def test_a_minimum_number_of_epochs_carries_training_past_the_flat_stretch() -> None:
    # raw patience: stale from epoch 3 on; past epoch 10 the climb sets new bests until epoch 13
    assert trained(LUCKY_START, patience=5, min_epochs=10) == (15, 13)


# a slow climb under epoch-to-epoch noise
NOISY = [0.10, 0.18, 0.12, 0.17, 0.14, 0.175, 0.16, 0.178, 0.19, 0.20, 0.21, 0.20, 0.19, 0.18, 0.17, 0.16]


def test_patience_on_the_smoothed_score_rides_out_the_noise() -> None:
    assert trained(NOISY, patience=3) == (5, 2)  # raw: .12 .17 .14 never beat the noisy .18
    # smoothed (0.5): .10 .14 .13 .15 .145 .16 .16 .169 .18 .19 .20 .20 .195 ... stops 3 after its peak
    epochs, best = trained(NOISY, patience=3, smoothing=0.5)
    assert best == 11 and 12 <= epochs <= 15


def test_the_fused_optimiser_takes_adamws_steps_whatever_the_thread_count() -> None:
    from redteam.trainer_loop import adamw

    def steps(threads: int, *, fused: bool) -> torch.Tensor:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            weights = torch.nn.Parameter(torch.linspace(-1, 1, 50_000).reshape(500, 100))
            optimizer = adamw([weights], lr=1e-2, weight_decay=0.01, fused=fused)
            for step in range(5):
                weights.grad = torch.sin(weights.detach() * (step + 1))
                optimizer.step()
            return weights.detach()
        finally:
            torch.set_num_threads(before)

    fused = steps(2, fused=True)
    assert torch.equal(fused, steps(1, fused=True))  # elementwise: no thread-order sums
    assert torch.allclose(fused, steps(1, fused=False), atol=1e-6)  # the same update as torch's plain AdamW
    assert not torch.allclose(fused, torch.linspace(-1, 1, 50_000).reshape(500, 100), atol=1e-3)  # it moved
