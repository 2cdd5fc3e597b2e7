"""Model extraction: build a surrogate of a black-box sequential recommender from its top-k lists.

Recipes: ``random`` and ``autoregressive`` (data-free, Yue et al. RecSys 2021) and ``fewshot``
(Zhang & Liu, arXiv 2411.11677, reconstructed). They share the transcript, generation and
distillation parts in this package.
"""
