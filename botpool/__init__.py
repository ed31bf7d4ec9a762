"""botpool: fleets of FreqTrade bots in pools, converged from one YAML layout."""

__version__ = "0.1.0"
