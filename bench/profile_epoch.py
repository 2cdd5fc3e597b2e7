"""Where one training epoch of a victim spends its time, on Amazon Beauty.

    python bench/profile_epoch.py [--victim sasrec] [--threads 2] [--batches 60] [--loss ce|sampled]
                                  [--ops] [--nondeterministic] [--unfused]

Times, over ``--batches`` batches spread over one epoch's lengths: building the length-bucketed batches,
the encoder forward, the output layer and loss forward, the backward pass, the optimiser step;
then one validation pass over every validation user (full ranking). Prints seconds per phase,
each phase's share, and the extrapolation to a whole epoch. Torch's own operator profile of the
same batches is printed with ``--ops``. ``--nondeterministic`` turns torch's deterministic
algorithms off (runs always have them on) to measure what they cost; ``--unfused`` steps AdamW
without the fused kernel.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict

from common import base_parser, beauty, emit


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--victim", default="sasrec")
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--loss", default=None, help="override the victim's loss (ce or sampled)")
    parser.add_argument("--negatives", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--ops", action="store_true", help="also print torch.profiler's top operators")
    parser.add_argument("--nondeterministic", action="store_true", help="torch's deterministic algorithms off (not as runs train)")
    parser.add_argument("--unfused", action="store_true", help="AdamW without the fused kernel (the trainers' optimiser before 2026-12-07)")
    args = parser.parse_args()

    import torch

    from redteam.environment import configure_torch
    from redteam.registry import resolve
    from redteam.seeding import derive_seed
    from redteam.negatives import negative_sampler
    from redteam.trainer_loop import adamw
    from redteam.training import make_batches, next_item_loss, resolved_loss, validation_ndcg10

    configure_torch(args.threads)
    if args.nondeterministic:
        torch.use_deterministic_algorithms(False)
    dataset, split = beauty(args)
    overrides = {k: v for k, v in {"loss": args.loss, "negatives": args.negatives, "batch_size": args.batch_size}.items() if v is not None}
    victim = resolve("victims", args.victim)(**overrides)
    model = victim.init_model(dataset.n_items, args.seed)
    p = victim.params
    loss_kind = resolved_loss(p, dataset.n_items)
    gen = torch.Generator().manual_seed(derive_seed(args.seed, "trainer", "batches"))
    optimizer = adamw(model.parameters(), lr=p.lr, weight_decay=p.weight_decay, fused=not args.unfused)
    weights = torch.ones(len(split.train))
    sampler = negative_sampler(p.negative_sampler, split.train, dataset.n_items, power=p.sampler_power) if loss_kind == "sampled" else None
    seconds: dict[str, float] = defaultdict(float)

    def timed(phase, fn):
        start = time.perf_counter()
        out = fn()
        seconds[phase] += time.perf_counter() - start
        return out

    batches = timed("batching", lambda: make_batches(split.train, batch_size=p.batch_size, max_len=p.max_len, generator=gen))
    model.train()
    # batches come sorted by length: time an evenly spaced sample over all of them (taking every
    # k-th and stopping at --batches left the longest third of an epoch out before 2026-12-07)
    count = min(args.batches, len(batches))
    picks = sorted({round(i * (len(batches) - 1) / max(1, count - 1)) for i in range(count)})
    chosen = [batches[i] for i in picks]
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if args.ops else None
    if profiler:
        profiler.__enter__()
    positions = 0
    for batch in chosen:
        hidden, targets = timed("encoder forward", lambda: model.training_pairs(batch.inputs, batch.targets, gen))
        loss = timed("output layer + loss forward", lambda: next_item_loss(
            model, hidden, targets, weights[batch.users], loss=loss_kind, negatives=p.negatives, generator=gen,
            sampler=sampler))
        timed("backward", lambda: (optimizer.zero_grad(set_to_none=True), loss.backward()))
        timed("optimiser step", lambda: (optimizer.step(), model.reset_padding_()))
        positions += int((targets != 0).sum())
    if profiler:
        profiler.__exit__(None, None, None)
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15), file=sys.stderr)
    valid = (split.valid_histories(), split.valid_targets())
    timed("validation (all users)", lambda: validation_ndcg10(victim, valid))

    scale = len(batches) / len(chosen)
    per_epoch = {k: (v if k in ("batching", "validation (all users)") else v * scale) for k, v in seconds.items()}
    total = sum(per_epoch.values())
    print(f"{args.victim} on Amazon Beauty, {args.threads} threads, loss {loss_kind}, batch {p.batch_size}, "
          f"deterministic algorithms {'off' if args.nondeterministic else 'on'}: "
          f"{len(chosen)} of {len(batches)} batches timed ({positions} positions), extrapolated to one epoch")
    for phase, value in per_epoch.items():
        print(f"  {phase:32s} {value:7.2f} s  {value / total:5.1%}")
    print(f"  {'epoch total':32s} {total:7.2f} s")
    emit(args.json_path, {"victim": args.victim, "threads": args.threads, "loss": loss_kind, "batch_size": p.batch_size,
                          "batches": len(batches), "timed_batches": len(chosen), "seconds_per_epoch": per_epoch,
                          "deterministic": not args.nondeterministic})


if __name__ == "__main__":
    main()
