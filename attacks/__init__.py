"""Attacks: extraction/, poisoning/, sts/ — one paper or recipe per file."""
