"""hfwizard: a terminal installer for the self-hosted Highflame platform."""

__version__ = "0.1.0"
