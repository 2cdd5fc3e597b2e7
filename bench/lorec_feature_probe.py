"""Probe for LoRec's calibrator: do the recommender's own features separate fake users at all?

    python bench/lorec_feature_probe.py [--threads 2] [--epochs 20]

On the embedded shop (2,000 users, 1,000 items) with 20 injected random fakes (5 unpopular
targets) and the defender's 100 simulated random fakes (defenses/simulation.py), SASRec is
trained on all of them; each user becomes the mean and spread over positions of the item
embeddings and hidden states that LoRec's calibrator reads. A logistic regression learns the
simulated fakes against every given user (as LoRec's calibrator does) and is scored on the
injected fakes against the real users. If it separates them well, LoRec's weakness is in how
its transformer calibrator is trained, not in what it reads.
"""

from __future__ import annotations

import time

from common import base_parser, emit


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="SASRec epochs (fixed, as in poisoning_defenses.yaml)")
    args = parser.parse_args()

    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from attacks.poisoning.base import make_plan
    from attacks.poisoning.random_profiles import RandomProfiles
    from defenses.base import DefenseInputs
    from defenses.simulation import SimulatedFraud, simulate_fakes
    from redteam.data import LeaveOneOutSplit
    from redteam.data.synthetic import make_synthetic
    from redteam.environment import configure_torch
    from redteam.knowledge import Knowledge
    from redteam.stages.poisoning_targets import select_targets
    from redteam.scenario import PoisoningConfig
    from redteam.seeding import numpy_rng
    from victims.batching import left_pad
    from victims.sasrec import SASRec

    configure_torch(args.threads)
    dataset = make_synthetic(users=2000, items=1000, seed=7)
    split = LeaveOneOutSplit.of(dataset)
    rng = numpy_rng(args.seed, "lorec-feature-probe")
    targets = list(select_targets(dataset, split, PoisoningConfig(), args.seed).items)  # 5 unpopular, as in the scenarios
    real_lengths = np.array([len(s) for s in split.train])
    lengths = np.maximum(2, real_lengths[rng.integers(0, len(real_lengths), 20)])
    plan = make_plan(targets, n_fakes=20, lengths=lengths, placement="random", target_share=0.2, rng=rng)
    injected = RandomProfiles().craft(Knowledge(api=None, n_items=dataset.n_items, seed=args.seed), plan)  # type: ignore[arg-type]
    given = [*split.train, *injected]
    inputs = DefenseInputs(train=given, n_items=dataset.n_items, seed=args.seed, item_popularity=dataset.item_popularity(given))
    simulated = simulate_fakes(inputs, SimulatedFraud())

    t0 = time.perf_counter()
    victim = SASRec(SASRec.Params(epochs=args.epochs, patience=args.epochs))
    victim.fit([*given, *simulated], None, n_items=dataset.n_items, seed=args.seed)
    fit_seconds = time.perf_counter() - t0
    model = victim.model.eval()
    with torch.no_grad():
        seqs = left_pad([np.asarray(s)[-victim.params.max_len:] for s in [*given, *simulated]], victim.params.max_len)
        keep = (seqs != 0).unsqueeze(-1).float()
        count = keep.sum(1)
        emb, hidden = model.embed_items(seqs) * keep, model.encode(seqs) * keep
        feats = torch.cat([emb.sum(1) / count, hidden.sum(1) / count, emb.std(1), hidden.std(1)], 1).numpy()

    n_real, n_given = len(split.train), len(given)
    labels = np.r_[np.zeros(n_given), np.ones(len(simulated))]
    probe = LogisticRegression(max_iter=2000, class_weight="balanced").fit(feats, labels)
    p = probe.predict_proba(feats)[:, 1]
    figures = {
        "users_real": n_real, "injected": len(injected), "simulated": len(simulated), "sasrec_epochs": args.epochs,
        "fit_seconds": round(fit_seconds, 1),
        "auc_simulated_vs_given (training fit)": round(float(roc_auc_score(labels, p)), 3),
        "auc_injected_vs_real": round(float(roc_auc_score(np.r_[np.zeros(n_real), np.ones(len(injected))], p[:n_given])), 3),
    }
    for key, value in figures.items():
        print(f"{key:<40}{value}")
    emit(args.json_path, figures)


if __name__ == "__main__":
    main()
