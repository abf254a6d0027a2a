"""paperbot: a self-hosted daily-papers alert bot."""

__version__ = "0.1.0"
