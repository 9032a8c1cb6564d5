"""Integer codes shared by every backend and by the Python API.

Kernels never see names: the API resolves ``loss="logistic"`` or
``optimizer=Adam(...)`` to these codes once, before any kernel runs.  They are
plain ints so Cython, Numba and CUDA code can branch on them cheaply.
"""

# Linear losses (scikit-learn's definitions; see fastgd/losses.py for formulas).
LOSS_SQUARED = 0
LOSS_LOGISTIC = 1
LOSS_SOFTMAX = 2
LOSS_HINGE = 3
LOSS_SQUARED_HINGE = 4
LOSS_MODIFIED_HUBER = 5
LOSS_HUBER = 6
LOSS_EPSILON_INSENSITIVE = 7
LOSS_SQUARED_EPSILON_INSENSITIVE = 8
LOSS_PERCEPTRON = 9
# A user's loss (fastgd.Loss): loss_param then carries the function itself
# (the @njit fn for numba, a vectorised NumPy callable for the reference).
LOSS_CUSTOM = -1

# Update rules (PyTorch's formulas).  ``hyper`` layout per rule:
#   SGD      [momentum, dampening, nesterov, weight_decay]
#   ADAM(W)  [beta1, beta2, eps, weight_decay, amsgrad]
#   ADAGRAD  [lr_decay, weight_decay, eps, initial_accumulator_value]
#   RMSPROP  [alpha, eps, weight_decay, momentum, centered]
RULE_SGD = 0
RULE_ADAM = 1
RULE_ADAMW = 2
RULE_ADAGRAD = 3
RULE_RMSPROP = 4

# Rows of the ``state`` array per rule:
#   SGD [momentum_buffer]; ADAM(W) [exp_avg, exp_avg_sq, max_exp_avg_sq];
#   ADAGRAD [sum]; RMSPROP [square_avg, momentum_buffer, grad_avg]
STATE_SLOTS = {RULE_SGD: 1, RULE_ADAM: 3, RULE_ADAMW: 3, RULE_ADAGRAD: 1, RULE_RMSPROP: 3}
HYPER_LEN = {RULE_SGD: 4, RULE_ADAM: 5, RULE_ADAMW: 5, RULE_ADAGRAD: 4, RULE_RMSPROP: 5}

# MLP hidden-layer activations.
ACT_RELU = 0
ACT_TANH = 1
ACT_SIGMOID = 2
