"""Listing rewriting: a seller edits its own item's text to raise that item's exposure.

Recipes: ``stuffing`` (append the words of the items the API recommends most, no search) and
``greedy`` (a black-box greedy search over word edits, each candidate scored by the target's
place in the API's answers to the attacker's own histories). In the spirit of ATR (CIKM 2024)
and "Stealthy Attack on Large Language Model based Recommendation" (ACL 2024); see ``base.py``.
"""
