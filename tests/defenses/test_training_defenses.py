"""LoRec's reweighting arithmetic and schedule, the defender's simulated fakes, APR's adversarial
term, and what each defense does to training (without a language model: see test_lm_defenses)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from defenses.apr import APR, APRHook, APRParams
from defenses.base import DefenseInputs, StaticWeights, flag_top
from defenses.lorec import LoRec, LoRecSchedule, multipliers
from defenses.simulation import SimulatedFraud, simulate_fakes


def test_multipliers_follow_the_spec_table() -> None:
    # sigmoid(w) / sigmoid(3): w=3 -> 1, w=0 -> .525 lifted to 1, w=-1 -> .282, w=-2 -> .125, w=-3 -> .050
    m = multipliers(torch.tensor([3.0, 0.0, -1.0, -2.0, -3.0, 3.5]), 3.0).numpy()
    assert m[:2].tolist() == [1.0, 1.0]
    assert m[2:5] == pytest.approx([0.2689 / 0.9526, 0.1192 / 0.9526, 0.04743 / 0.9526], rel=1e-3)
    assert m[5] > 1.0  # up-weighted users keep their extra weight


def test_schedule_scales_the_paper_schedule() -> None:
    s = LoRecSchedule(150, 0.2)  # the paper's length: warm-up 30, every 5, then every 10
    assert (s.warmup, s.every_warmup, s.every_after) == (30, 5, 10)
    assert [e for e in range(1, 61) if s.update_at(e)] == [5, 10, 15, 20, 25, 30, 40, 50, 60]
    assert not s.weighted(30) and s.weighted(31)
    short = LoRecSchedule(20, 0.2)
    assert short.describe() == {"warmup_epochs": 4, "update_every_in_warmup": 1, "update_every_after": 1, "weights_from_epoch": 5}


def test_weight_update_conserves_total_and_skips_large_sets() -> None:
    from defenses.lorec import LoRecHook

    hook = LoRecHook.__new__(LoRecHook)  # only the weight arithmetic
    hook.n_train, hook.w, hook.updates = 6, torch.full((6,), 3.0), {"done": 0, "skipped": 0}
    assert hook._update_weights(np.array([0.9, 0.1, 0.1, 0.1, 0.1, 0.1]))  # mean .233: one user above
    assert hook.w.tolist() == pytest.approx([2.0, 3.2, 3.2, 3.2, 3.2, 3.2])
    assert float(hook.w.sum()) == pytest.approx(18.0)
    assert not hook._update_weights(np.array([0.9, 0.9, 0.1, 0.1, 0.1, 0.1]))  # 2 of 6 = N/3: skipped
    assert hook.updates == {"done": 1, "skipped": 1}


def test_flag_top_and_static_weights() -> None:
    flagged = flag_top(np.array([0.1, 0.9, 0.5, 0.9]), 0.5)
    assert flagged.tolist() == [False, True, False, True]

    class State:
        user_weights = torch.ones(4)

    state = State()
    StaticWeights((~flagged).astype(np.float32)).on_epoch_start(state)
    assert state.user_weights.tolist() == [1.0, 0.0, 1.0, 0.0]


def test_simulated_fakes_follow_the_config_and_are_seeded(tiny_split, tiny_dataset) -> None:
    pop = tiny_dataset.item_popularity(tiny_split.train)
    cfg = SimulatedFraud(share=0.1, targets=3)

    def inputs(seed: int) -> DefenseInputs:
        return DefenseInputs(train=list(tiny_split.train), n_items=tiny_dataset.n_items, seed=seed, item_popularity=pop)

    fakes, again, other = (simulate_fakes(inputs(s), cfg) for s in (1, 1, 2))
    assert len(fakes) == round(0.1 * len(tiny_split.train)) == 30
    assert all((a == b).all() for a, b in zip(fakes, again))
    assert any(len(a) != len(b) or (a != b).any() for a, b in zip(fakes, other))
    # Each target is in 10 of the 30 profiles; a random filler in that many would be a 1e-6 event.
    in_profiles = np.bincount(np.concatenate([np.unique(f) for f in fakes]), minlength=len(pop))
    targets = np.flatnonzero(in_profiles >= 10)
    assert len(targets) == 3 and (pop[targets] <= np.median(pop[pop > 0])).all()


def test_apr_adds_a_larger_loss_at_the_perturbed_point_and_its_gradient_reaches_the_weights(tiny_split, tiny_dataset, one_thread) -> None:
    from redteam.training import TrainState, make_batches, next_item_loss
    from victims.sasrec import SASRec

    victim = SASRec(hidden=16, epochs=1)
    victim.init_model(tiny_dataset.n_items, seed=0)
    train = list(tiny_split.train)
    state = TrainState(victim=victim, train=train, user_weights=torch.ones(len(train)), epoch=3)
    state.generator.manual_seed(0)
    batch = make_batches(train, batch_size=64, max_len=50, generator=state.generator)[0]
    victim.model.eval()  # no dropout: clean and perturbed losses are comparable
    hidden, targets = victim.model.training_pairs(batch.inputs, batch.targets, state.generator)
    clean = next_item_loss(victim.model, hidden, targets, state.user_weights[batch.users], loss="ce", negatives=1,
                           generator=state.generator)
    hook = APRHook(APRParams(eps=0.5, reg=1.0, start_share=0.2), epochs=10)
    assert hook.extra_loss(TrainState(victim=victim, train=train, user_weights=torch.ones(len(train)), epoch=2),
                           victim.model, batch, hidden) is None  # before start_share of the epochs
    adv = hook.extra_loss(state, victim.model, batch, hidden)
    assert float(adv.detach()) > float(clean.detach())  # the worst-case direction raises the loss
    victim.model.zero_grad()
    adv.backward()
    assert victim.model.item_emb.weight.grad is not None and victim.model.item_emb.weight.grad.abs().sum() > 0


def test_defense_identifiers_record_their_configuration() -> None:
    assert APR(eps=0.1).identifier() == {"defense": "apr", "family": "robust-training", "eps": 0.1, "reg": 1.0, "start_share": 0.2}
    ident = LoRec(lm_term=False).identifier()
    assert ident["defense"] == "lorec" and ident["lm_term"] is False and ident["simulate"]["attack"] == "poisoning.random"


@pytest.mark.parametrize("retry", [True, False])
def test_a_skipped_update_is_retried_after_the_next_epoch(retry: bool) -> None:
    """The paper code tries a skipped update again one epoch later; ``retry_skipped: false`` waits
    for the next scheduled one."""
    from types import SimpleNamespace

    from defenses.base import DefensePlan
    from defenses.lorec import LoRecHook, LoRecParams

    hook = LoRecHook.__new__(LoRecHook)  # the schedule logic only: no recommender, no calibrator
    hook.p = LoRecParams(lm_term=False, calibrator_passes=1, retry_skipped=retry)
    hook.schedule = LoRecSchedule(150, 0.2)  # scheduled updates at epochs 5, 10, ...
    hook.n_train = hook.n_given = 6
    hook.w, hook.updates, hook.retry, hook.seconds = torch.full((6,), 3.0), {"done": 0, "skipped": 0}, False, 0.0
    hook.plan, hook.last_p, hook.calibrator = DefensePlan(), np.zeros(6), object()
    broad, sharp = np.array([0.9, 0.9, 0.9, 0.1, 0.1, 0.1]), np.array([0.9, 0.1, 0.1, 0.1, 0.1, 0.1])
    scored: list[int] = []
    state = SimpleNamespace(victim=SimpleNamespace(model=torch.nn.Linear(1, 1)), epoch=0, metrics={})
    hook._calibrator_pass = lambda model: None
    hook._probabilities = lambda model: scored.append(state.epoch) or (broad if len(scored) < 3 else sharp)
    for epoch in range(1, 11):
        state.epoch = epoch
        hook.on_epoch_end(state)
    if retry:  # skipped at 5 and 6, done at 7; then on schedule at 10
        assert scored == [5, 6, 7, 10] and hook.updates == {"done": 2, "skipped": 2}
    else:
        assert scored == [5, 10] and hook.updates == {"done": 0, "skipped": 2}
