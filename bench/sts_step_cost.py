"""Cost of one GCG step of the STS attack (Kumar & Lakkaraju, 2024) on SmolLM2-135M-Instruct, CPU.

    python bench/sts_step_cost.py [--threads 2] [--candidates 32] [--tokens 30] [--target-position 5]

White-box setting: the attacker runs the ranker's own model. A 10-product catalog (the packaged
``coffee_machines`` one), an STS of ``--tokens`` '*' on the product shown at ``--target-position``
(fixed order), and times: the gradient pass, the exact losses of ``--candidates`` candidates with
the shared prefix key/value cache, and the same losses with full sequences (no cache). Prints
seconds, the speed-up and the largest loss difference between the two paths.
"""

from __future__ import annotations

import time

from common import base_parser, emit, peak_rss_mib


def _catalog() -> tuple[list, list[str]]:
    from redteam.catalog_sources import load_catalog

    catalog = load_catalog("coffee_machines")
    return list(catalog.products)[:10], list(catalog.requests)


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=30)
    parser.add_argument("--target-position", type=int, default=5)
    args = parser.parse_args()

    import torch

    from attacks.sts.causal_lm_loss import CausalLMObjective
    from redteam.environment import configure_torch
    from victims.causal_lm_ranker import CausalLMRanker

    configure_torch(args.threads)
    products, requests = _catalog()
    t0 = time.perf_counter()
    ranker = CausalLMRanker()
    ranker.lm  # noqa: B018 (load now, outside the timings)
    load_s = time.perf_counter() - t0
    obj = CausalLMObjective(ranker, products, args.target_position, requests, shuffle=False,
                            batch_size=args.candidates)
    sts = obj.initial(args.tokens, "*")
    gen = torch.Generator().manual_seed(args.seed)
    step = obj.step(gen)
    lay = step.layouts[0]
    print(f"model load {load_s:.1f}s; prompt tokens: prefix {len(lay.prefix_ids)} + STS {args.tokens} "
          f"+ suffix {len(lay.suffix_ids)} + answer {len(obj.answer_ids)}; threads {args.threads}")

    def timed(fn):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - start

    allowed = obj.allowed_tokens().nonzero()[:, 0]
    cands = sts.repeat(args.candidates, 1)
    rows = torch.arange(args.candidates)
    cols = torch.randint(args.tokens, (args.candidates,), generator=gen)
    cands[rows, cols] = allowed[torch.randint(len(allowed), (args.candidates,), generator=gen)]

    _, prefix_s = timed(step.prefix)
    (loss, _), grad_first_s = timed(lambda: step.gradient(sts))  # the first backward pays a warm-up
    (loss, _), grad_s = timed(lambda: step.gradient(sts))
    ok, retok_s = timed(lambda: obj.retokenizes(cands))
    step.losses(cands[:2])  # warm-up of each path before its timing
    cached, cached_s = timed(lambda: step.losses(cands))
    obj.use_prefix_cache = False
    step.losses(cands[:2])
    naive, naive_s = timed(lambda: step.losses(cands))
    diff = float((cached - naive).abs().max())
    figures = {
        "threads": args.threads, "candidates": args.candidates, "sts_tokens": args.tokens,
        "prefix_tokens": len(lay.prefix_ids), "suffix_tokens": len(lay.suffix_ids), "loss": loss,
        "prefix_cache_s": prefix_s, "gradient_first_s": grad_first_s, "gradient_s": grad_s,
        "retokenize_s": retok_s, "retokenized": int(ok.sum()), "losses_cached_s": cached_s,
        "losses_naive_s": naive_s, "speedup": naive_s / cached_s, "max_loss_diff": diff,
        "peak_rss_mib": peak_rss_mib(),
    }
    print(f"prefix cache {prefix_s:.2f}s (once per step, shared by the gradient and all candidates)")
    print(f"gradient pass {grad_s:.2f}s (first call {grad_first_s:.2f}s; loss {loss:.3f})")
    print(f"retokenize filter {retok_s:.3f}s ({int(ok.sum())}/{args.candidates} kept)")
    print(f"losses of {args.candidates} candidates: cached {cached_s:.2f}s, naive {naive_s:.2f}s; "
          f"speed-up {naive_s / cached_s:.2f}x ({naive_s / (prefix_s + cached_s):.2f}x counting the prefix pass); "
          f"max |diff| {diff:.2e}")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")
    emit(args.json_path, figures)


if __name__ == "__main__":
    main()
