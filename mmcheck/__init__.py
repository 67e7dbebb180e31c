"""mmcheck: a declarative spec-and-verify model checker for Linux memory management."""

__version__ = "0.1.0"
