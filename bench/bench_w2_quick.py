"""Workload W2 (issue 5), quick script: MLP 784-128-10 softmax, float32, 20,000 samples,
one epoch, plain SGD, batch sizes 32 and 256.  Every peer runs in this one process on the
same data with the same thread count; the peers run in interleaved rounds and the median
(and min) over the rounds is kept.

    OMP_WAIT_POLICY=PASSIVE python bench/bench_w2_quick.py [--threads 2] [--repeat 7]

Timed for fastgd: one whole epoch in the kernel (the shuffled order, the step sizes and
the workspace are made inside the timed region too).  For PyTorch: one epoch of
zero_grad / forward / CrossEntropyLoss / backward / SGD.step over the same shuffled
batches.  For scikit-learn: ``MLPClassifier(hidden_layer_sizes=(128,), solver="sgd",
batch_size=32, momentum=0, max_iter=1).fit`` (one epoch, as the issue states it).
"""
import argparse
import importlib
import statistics
import time
import warnings

import numpy as np

N, D, H, K = 20_000, 784, 128, 10


def interleaved_times(fns, repeat, pause=0.25):
    """{name: (median, min)}: every round runs each peer once (in a rotating order), so
    that load from other processes hits all peers alike.  Each timed run starts after
    ``pause`` seconds: OpenBLAS's idle worker threads spin for about 0.1 s after a
    threaded call (scikit-learn's numpy GEMMs), and would take a core from whichever
    peer runs next."""
    for fn in fns.values():
        fn()  # warm-up (JIT, caches, thread pools)
    ts = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            time.sleep(pause)
            t = time.perf_counter()
            fns[name]()
            ts[name].append(time.perf_counter() - t)
    return {name: (statistics.median(v), min(v)) for name, v in ts.items()}


def fastgd_epoch(mod, X, y, b, lr=0.01, seed=0):
    from fastgd.kernels import ids
    from fastgd.reference.mlp_epoch import mlp_init

    sizes = np.array([D, H, K], dtype=np.int64)
    rng = np.random.default_rng(seed)
    theta0 = mlp_init(sizes, rng, np.float32)

    def go():
        theta = theta0.copy()
        order = rng.permutation(N).astype(np.int64)
        nb = -(-N // b)
        grad = np.empty_like(theta)
        state = np.zeros((1, theta.size), np.float32)
        work = np.empty(mod.mlp_workspace_size(sizes, b), np.float32)
        bl = np.empty(nb)
        done = mod.mlp_epoch(X, y, np.empty(0, np.float32), order, b, nb, ids.LOSS_SOFTMAX,
                             sizes, ids.ACT_RELU, 0.0, 0.0, ids.RULE_SGD,
                             np.zeros(4), np.full(nb, lr), 0, theta, grad, state, bl, work)
        assert done == nb and np.isfinite(bl).all()
    return go


def torch_epoch(torch, X, y, b, lr=0.01, seed=0):
    torch.manual_seed(seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    rng = np.random.default_rng(seed)
    net0 = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.ReLU(), torch.nn.Linear(H, K))
    state0 = {k: v.clone() for k, v in net0.state_dict().items()}
    lossf = torch.nn.CrossEntropyLoss()

    def go():
        net0.load_state_dict(state0)
        opt = torch.optim.SGD(net0.parameters(), lr=lr)
        order = torch.from_numpy(rng.permutation(N))
        for k in range(0, N, b):
            idx = order[k:k + b]
            opt.zero_grad()
            loss = lossf(net0(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return go


def sklearn_fit(X, y, b, lr=0.01):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def go():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            MLPClassifier(hidden_layer_sizes=(H,), solver="sgd", batch_size=b, momentum=0.0,
                          learning_rate_init=lr, max_iter=1, shuffle=True,
                          random_state=0).fit(X, y)
    return go


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--batch-sizes", default="32,256")
    args = ap.parse_args()

    from threadpoolctl import threadpool_limits
    threadpool_limits(args.threads)  # every BLAS / OpenMP pool in the process (cython's team)
    import numba
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))  # numba's team

    rng = np.random.default_rng(42)
    X = rng.random((N, D), dtype=np.float32)
    y = rng.integers(0, K, N).astype(np.float32)
    yi = y.astype(np.int64)

    peers = {}
    for name, modname in (("numba", "fastgd.kernels.nb.mlp_epoch"),
                          ("cython", "fastgd.kernels.cy.mlp_epoch")):
        try:
            peers[name] = importlib.import_module(modname)
        except ImportError as exc:
            print(f"# {name}: not available ({exc})")
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
        print("# torch: not installed")

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"# W2: {N}x{D} -> {H} -> {K} softmax, float32, one epoch, plain SGD; "
          f"{args.threads} threads; {cpu}; median (min) of {args.repeat}")
    for b in (int(v) for v in args.batch_sizes.split(",")):
        fns = {name: fastgd_epoch(mod, X, y, b) for name, mod in peers.items()}
        if torch is not None:
            fns["torch"] = torch_epoch(torch, X, yi, b)
        try:
            fns["sklearn"] = sklearn_fit(X, yi, b)
        except ImportError:
            pass
        res = interleaved_times(fns, args.repeat)
        for name, (med, mn) in res.items():
            print(f"b={b:4d} {name:8s} {med * 1e3:8.1f} ms ({mn * 1e3:.1f})")
        for ours in peers:
            for peer in ("torch", "sklearn"):
                if peer in res:
                    print(f"b={b:4d} {peer}/{ours}: {res[peer][0] / res[ours][0]:.2f}x")


if __name__ == "__main__":
    main()
