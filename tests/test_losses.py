"""Loss definitions: finite-difference gradient checks and scikit-learn's formulas."""
import numpy as np
import pytest

from fastgd import losses
from fastgd.kernels import ids
from fastgd.reference.linear_epoch import add_penalty, linear_batch_gradient
from fastgd.testing import LINEAR_LOSSES, Case, make_data
from fastgd.validation import check_labels

KINKED = {"hinge", "perceptron", "epsilon_insensitive", "squared_hinge", "modified_huber", "huber",
          "squared_epsilon_insensitive"}


def _problem(name, fit_intercept=True, sample_weight=True):
    case = Case(loss=name, n=25, d=4, k=3)
    X, y, _ = make_data(case)
    loss = losses.get(name)
    y_int, enc = check_labels(np.asarray(y, dtype=float), loss.kind, name)
    K = enc if loss.kind == "multiclass" else 1
    sw = np.random.default_rng(2).uniform(0.5, 2.0, len(y)) if sample_weight else np.empty(0)
    P = X.shape[1] * K + (K if fit_intercept else 0)
    theta = np.random.default_rng(3).standard_normal(P) * 0.7
    return X, y_int, sw, loss, K, theta


def _objective(X, y, sw, loss, K, theta, rows, fit_intercept, alpha, l1_ratio):
    grad = np.empty_like(theta)
    value = linear_batch_gradient(X, y, sw, rows, loss.code, loss.param, K, fit_intercept, theta, grad,
                                  1.0 / len(rows))
    value += add_penalty(theta, grad, X.shape[1] * K, alpha, l1_ratio)
    return value, grad


@pytest.mark.parametrize("name", LINEAR_LOSSES)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_batch_gradient_matches_finite_differences(name, fit_intercept):
    X, y, sw, loss, K, theta = _problem(name, fit_intercept)
    if not fit_intercept:
        theta = theta[:X.shape[1] * K]
    rows = np.array([3, 0, 7, 7, 12, 20, 5], dtype=np.int64)  # repeats are allowed
    alpha, l1_ratio = 0.05, 0.0 if name in KINKED else 0.3
    value, grad = _objective(X, y, sw, loss, K, theta, rows, fit_intercept, alpha, l1_ratio)
    h = 1e-6
    numeric = np.empty_like(theta)
    for j in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        numeric[j] = (_objective(X, y, sw, loss, K, tp, rows, fit_intercept, alpha, l1_ratio)[0]
                      - _objective(X, y, sw, loss, K, tm, rows, fit_intercept, alpha, l1_ratio)[0]) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)
    # the loss is the sample-weighted mean over the batch plus the penalty
    assert np.isfinite(value)


def test_logistic_and_softmax_are_stable_for_huge_margins():
    lg = losses.get("logistic")
    p = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    y = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(lg.py_loss(p, y), [800.0, 40.0, np.log(2.0), 40.0, 800.0], rtol=1e-12)
    np.testing.assert_allclose(lg.py_dloss(p, y), [-1.0, -1.0, -0.5, 1.0, 1.0], rtol=1e-12)
    sm = losses.get("softmax")
    P = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    yk = np.array([2.0, 1.0])
    np.testing.assert_allclose(sm.py_loss(P, yk), [2000.0, np.log(3.0)], rtol=1e-12)
    d = sm.py_dloss(P, yk)
    np.testing.assert_allclose(d, [[1.0, 0.0, -1.0], [1 / 3, -2 / 3, 1 / 3]], atol=1e-15)


def test_softmax_gradient_rows_sum_to_zero():
    d = losses.get("softmax").py_dloss(np.random.default_rng(0).standard_normal((6, 4)),
                                       np.array([0, 1, 2, 3, 0, 1.0]))
    np.testing.assert_allclose(d.sum(axis=1), 0.0, atol=1e-15)


SKLEARN_TWINS = {
    "hinge": lambda m: m.Hinge(1.0),
    "perceptron": lambda m: m.Hinge(0.0),
    "squared_hinge": lambda m: m.SquaredHinge(1.0),
    "modified_huber": lambda m: m.ModifiedHuber(),
    "epsilon_insensitive": lambda m: m.EpsilonInsensitive(0.1),
    "squared_epsilon_insensitive": lambda m: m.SquaredEpsilonInsensitive(0.1),
}


@pytest.mark.parametrize("name", sorted(SKLEARN_TWINS))
def test_loss_equals_scikit_learns_definition(name):
    sgd_fast = pytest.importorskip("sklearn.linear_model._sgd_fast")
    twin = SKLEARN_TWINS[name](sgd_fast)
    ours = losses.get(name)
    rng = np.random.default_rng(0)
    p = rng.uniform(-3, 3, 200)
    y = rng.choice([-1.0, 1.0], 200) if ours.kind == "binary_pm1" else rng.uniform(-3, 3, 200)
    np.testing.assert_allclose(ours.py_loss(p, y), [twin.py_loss(a, b) for a, b in zip(p, y)], rtol=1e-12)
    np.testing.assert_allclose(ours.py_dloss(p, y), [twin.py_dloss(a, b) for a, b in zip(p, y)], rtol=1e-12)


def test_squared_huber_logistic_equal_scikit_learns_loss_module():
    """scikit-learn's SGD no longer takes these three from _sgd_fast but from sklearn._loss
    (HalfSquaredError, HuberLoss, HalfBinomialLoss): the same definitions, checked there,
    over |p| up to 40, where its logistic loss takes shortcuts (absolute error < 1e-14)."""
    sk = pytest.importorskip("sklearn._loss.loss")
    rng = np.random.default_rng(0)
    p = rng.uniform(-40, 40, 300)
    y_reg, y01 = rng.uniform(-3, 3, 300), rng.integers(0, 2, 300).astype(float)
    for ours, twin, y in [(losses.get("squared"), sk.HalfSquaredError(), y_reg),
                          (losses.Huber(0.5), sk.HuberLoss(delta=0.5), y_reg),
                          (losses.Huber(1.35), sk.HuberLoss(delta=1.35), y_reg),
                          (losses.get("logistic"), sk.HalfBinomialLoss(), y01)]:
        np.testing.assert_allclose(ours.py_loss(p, y), twin.loss(y_true=y, raw_prediction=p),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ours.py_dloss(p, y), twin.gradient(y_true=y, raw_prediction=p),
                                   rtol=1e-12, atol=1e-14)


def test_huber_matches_its_definition():
    hub = losses.Huber(epsilon=0.5)
    r = np.array([-2.0, -0.5, 0.1, 0.5, 3.0])
    np.testing.assert_allclose(hub.py_loss(r, np.zeros(5)), [0.875, 0.125, 0.005, 0.125, 1.375])
    np.testing.assert_allclose(hub.py_dloss(r, np.zeros(5)), [-0.5, -0.5, 0.1, 0.5, 0.5])


def test_loss_codes_are_distinct_and_names_resolve():
    codes = [losses.get(n).code for n in LINEAR_LOSSES]
    assert len(set(codes)) == len(codes)
    assert losses.get("log_loss").code == ids.LOSS_LOGISTIC
    assert losses.get("huber") == losses.Huber(0.1)


@pytest.mark.parametrize("name,p,y,error,words", [
    ("softmax", [[1.0, 2, 3], [0, 0, 0]], [-1, 0], ValueError, ["y", "-1.0", "0..2"]),
    ("softmax", [[1.0, 2, 3], [0, 0, 0]], [1.5, 0], ValueError, ["y", "1.5"]),
    ("softmax", [[1.0, 2, 3], [0, 0, 0]], [3, 0], ValueError, ["y", "3.0", "K = 3"]),
    ("softmax", [[1.0, 2, 3], [0, 0, 0]], [np.nan, 0], ValueError, ["y", "nan"]),
    ("softmax", [1.0, 2, 3], [2], ValueError, ["p", "(3,)", "(n, K)"]),
    ("logistic", [0.5], [2], ValueError, ["y", "2.0", "0 or 1"]),
    ("hinge", [0.5, 1], [0, 1], ValueError, ["y", "0.0", "-1 or +1"]),
    ("squared", [0.5, 1], [0, np.inf], ValueError, ["y", "inf", "finite"]),
    ("squared", [0.5, 1], [0.5], ValueError, ["p", "(2,)", "(1,)", "one shape"]),
    ("squared", [0.5], ["a"], TypeError, ["y", "<U1", "real numbers"]),
])
def test_reference_formulas_check_their_labels_and_shapes(name, p, y, error, words):
    """py_loss / py_dloss had scored a label of -1 as class 2 and 1.5 as class 1, given a
    negative logistic loss for the label 2, and failed inside NumPy on the rest."""
    loss = losses.get(name)
    for method in (loss.py_loss, loss.py_dloss):
        with pytest.raises(error) as info:
            method(p, y)
        for word in words:
            assert word in str(info.value), f"{word!r} missing from: {info.value}"


def test_squared_loss_keeps_the_references_order_near_overflow():
    """0.5 r r is (0.5 r) r, as NumPy evaluates it: reassociated into 0.5 (r r), it was inf
    for |r| in [sqrt(max), sqrt(2 max)), and the compiled backends' diverging fits stopped
    about 100 updates before the reference's."""
    from fastgd.kernels import ids
    from fastgd.kernels.cy import losses as cy_losses
    from fastgd.kernels.nb import losses as nb_losses
    from fastgd.reference import losses as ref_losses

    for dtype, r in ((np.float64, 1.5e154), (np.float32, 2.0e19)):
        p = np.array([[r]], dtype=dtype)
        y = np.zeros(1, dtype=dtype)
        want, _ = ref_losses.loss_and_dloss(ids.LOSS_SQUARED, None, p, y)
        with np.errstate(over="ignore"):
            assert np.isfinite(want[0]) and not np.isfinite(dtype(r) * dtype(r))
        got, _ = cy_losses.loss_and_dloss(ids.LOSS_SQUARED, None, p, y)
        assert got[0] == want[0], dtype
        for loss_id, param in ((ids.LOSS_SQUARED, 0.0), (ids.LOSS_HUBER, 1e300)):
            if dtype == np.float64:
                assert cy_losses.py_loss(loss_id, param, r, 0.0) == want[0]
                assert nb_losses.loss_dloss(loss_id, param, r, 0.0)[0] == want[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cython_batch_losses_take_read_only_arrays_and_agree_with_the_reference(dtype):
    """p and y are only read (a read-only memmap or frombuffer array is fine), as the
    reference's; the loop runs without the GIL."""
    from fastgd.kernels import ids
    from fastgd.kernels.cy import losses as cy_losses
    from fastgd.reference import losses as ref_losses

    p = np.linspace(-2, 2, 12, dtype=dtype).reshape(6, 2)
    y = np.array([0, 1, 0, 1, 1, 0], dtype=dtype)
    p.flags.writeable = y.flags.writeable = False
    got = cy_losses.loss_and_dloss(ids.LOSS_SOFTMAX, None, p, y)
    want = ref_losses.loss_and_dloss(ids.LOSS_SOFTMAX, None, p.astype(np.float64),
                                     y.astype(np.float64))
    for g, w in zip(got, want):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w, rtol=1e-6 if dtype == np.float32 else 1e-12)
