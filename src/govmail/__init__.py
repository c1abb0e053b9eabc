"""govmail: the official e-mail platform of a Vietnamese province."""

__version__ = "0.1.0"
