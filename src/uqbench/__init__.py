"""uqbench: uncertainty & robustness baselines and model search for PyTorch."""

__version__ = "0.1.0"
