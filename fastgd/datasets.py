"""Small data sets shipped inside the package (no network needed)."""
from importlib import resources

import numpy as np


def load_digits():
    """The UCI handwritten digits (1,797 8x8 images): X (1797, 64) float64 in [0, 16], y int64 0..9.

    Source and licence: ``fastgd/data/README.txt`` (CC BY 4.0).
    """
    with resources.files("fastgd").joinpath("data/digits.npz").open("rb") as fh:
        data = np.load(fh)
        return data["X"].astype(np.float64), data["y"].astype(np.int64)
