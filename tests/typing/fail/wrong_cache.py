"""A cache from one layer passed to another layer's backward is a type error."""

import numpy as np

from functional_dl import layers as L
from functional_dl import random

dense = L.dense(3)
relu = L.relu()
_, params = dense.init(random.key(0), (None, 2))
x = np.ones((1, 2), np.float32)
y, relu_cache = relu.forward({}, x)
dense.backward(params, relu_cache, x)  # E: has incompatible type "ElementwiseCache"; expected "DenseCache"
