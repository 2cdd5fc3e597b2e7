"""The serving chain: every consumer of a victim's answers goes through one small port.

``port``: :class:`~redteam.serving.port.Recommender` (``recommend(histories, k) -> TopK``) and the
explicit full-catalog scoring capability; ``local``: a trained in-process model behind the port;
``middleware``: the base of serving-side defenses (a recommender wrapping a recommender);
``metered``: the sealed endpoint an attacker holds (budget, per-caller accounting, query log).
"""
