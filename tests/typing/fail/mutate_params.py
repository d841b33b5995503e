"""Params are read-only mappings: writing into them is a type error (and a runtime TypeError)."""

import numpy as np

from functional_dl import layers as L
from functional_dl import random

key = random.key(0)
_, params = L.dense(2).init(key, (None, 2))
params["w"] = np.zeros((2, 2))  # E: Unsupported target for indexed assignment
out_shape, params, extra = L.dense(2).init(key, (None, 2))  # E: Need more than 2 values to unpack
