"""Preflight checks: every seed requirement checked before anything changes."""
