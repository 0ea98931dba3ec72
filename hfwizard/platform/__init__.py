"""Highflame platform knowledge: what gets installed, as data and pure functions of the profile."""
