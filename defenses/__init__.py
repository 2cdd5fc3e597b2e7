"""Defenses: training-time reweighting, detectors, robust training, API and text filters."""
