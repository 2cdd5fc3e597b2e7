"""Profile poisoning: fake users injected into the training data to promote target items.

Recipes: ``random`` (no knowledge), ``bandwagon`` (item popularity), ``segment`` (items related
to the target) and ``surrogate`` (a surrogate model, stolen through the API or a white-box copy;
in the spirit of Yue et al., RecSys 2021). They share the plan (targets, budget, profile shape)
built by the runner; see ``base.py`` and ``specs/poisoning.md``.
"""
