"""Hand-written peers, each one epoch of the same work as fastgd's kernels."""
import numpy as np


def numpy_logistic_epoch(X, y, w, b, lr, batch_size, order):
    """A careful hand-written NumPy MBGD epoch for logistic regression (in place on w)."""
    for k in range(0, len(order), batch_size):
        rows = order[k:k + batch_size]
        Xb = X[rows]
        g = 1.0 / (1.0 + np.exp(-(Xb @ w + b[0]))) - y[rows]
        w -= (lr / len(rows)) * (Xb.T @ g)
        b[0] -= lr * g.mean()


def numpy_two_pass_gradient(X, y, w, b):
    """NumPy's BGD gradient: X.T @ (sigmoid(X @ w) - y), two passes over X."""
    g = 1.0 / (1.0 + np.exp(-(X @ w + b))) - y
    return X.T @ g / len(y), g.mean()


def torch_epoch_fn(torch, X, y, lr, batch_size, seed=0, model=None, loss="logistic"):
    """A PyTorch CPU training loop: rows indexed per batch, forward, loss, backward, SGD step."""
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y)
    if model is None:
        model = torch.nn.Linear(X.shape[1], 1).to(Xt.dtype)
    crit = torch.nn.BCEWithLogitsLoss() if loss == "logistic" else torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = np.random.default_rng(seed)

    def epoch():
        order = torch.from_numpy(gen.permutation(len(y)))
        for k in range(0, len(y), batch_size):
            rows = order[k:k + batch_size]
            out = model(Xt[rows])
            target = yt[rows]
            value = crit(out[:, 0], target) if loss == "logistic" else crit(out, target)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()

    return epoch
