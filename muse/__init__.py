"""muse: lifelong user-interest recommender (MUSE GSU + ESU ranking, training, export).

Importing the bare package loads nothing heavy; subpackages import torch as they need it.
"""

__version__ = "0.1.0"
