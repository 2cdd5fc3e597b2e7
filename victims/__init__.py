"""Victim recommenders: one file each, one protocol (victims.base.Victim)."""
