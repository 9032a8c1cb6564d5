"""GPU figures for the CUDA backend (run by bench/gpu_check.sh; see docs/cuda.md).

1. Device memory bandwidth, measured in this run by a simple copy kernel
   (grid-stride, one float32 per thread per step; bytes read + bytes written).
2. A BGD epoch (logistic loss, plain SGD, one batch of n rows) on an n x d
   float32 X resident on the device, against that bandwidth: the epoch must
   read X, y and the batch order once, so "effective bandwidth" = those bytes
   / epoch time.  Goal: >= 70 % of the copy bandwidth.
3. MBGD epochs at b = 32 and b = 1024 against a PyTorch CUDA training loop on
   the same device arrays (nn.Linear + BCEWithLogitsLoss + optim.SGD, the
   same batch order).  Goal: >= 5x faster at b = 32.

``--smoke`` shrinks everything so the script runs end to end on Numba's CUDA
simulator (NUMBA_ENABLE_CUDASIM=1) and, without a CUDA torch, times the
PyTorch loop on the CPU: it checks the script, not the GPU.
"""
import argparse
import json
import sys
import time

import numpy as np
from numba import cuda  # after NUMBA_ENABLE_CUDASIM is set (the simulator swaps this name)


def log(msg):
    print(f"[gpu_check] {msg}", flush=True)


# ----------------------------------------------------------------- device info
def device_info(simulated):
    if simulated:
        return {"name": "Numba CUDA simulator", "cc": None, "sms": 1, "memory_gib": None}
    dev = cuda.get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    try:
        free, total = cuda.current_context().get_memory_info()
        mem = round(total / 2**30, 1)
    except Exception:
        mem = None
    return {"name": name, "cc": "%d.%d" % dev.compute_capability,
            "sms": int(dev.MULTIPROCESSOR_COUNT), "memory_gib": mem}


def best_seconds(launch, repeats):
    """Best wall time of ``launch()`` followed by a device synchronise, after one warm-up."""
    launch()
    cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        launch()
        cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times)


# ----------------------------------------------------------------- bandwidth
def copy_bandwidth(n_bytes, repeats):
    @cuda.jit
    def copy(src, dst):
        i = cuda.grid(1)
        stride = cuda.gridsize(1)
        while i < src.shape[0]:
            dst[i] = src[i]
            i += stride

    n = n_bytes // 4
    src = cuda.device_array(n, dtype=np.float32)
    dst = cuda.device_array(n, dtype=np.float32)
    tpb = 256
    blocks = min(-(-n // tpb), 65535 * 4)
    best = best_seconds(lambda: copy[blocks, tpb](src, dst), repeats)
    return {"bytes": 2 * n * 4, "best_s": best, "gbps": 2 * n * 4 / best / 1e9}


# ----------------------------------------------------------------- data
def make_data(n, d, chunk_rows=1_000_000, seed=0):
    """X uniform(-1, 1) float32 (n, d) and logistic labels, built in chunks on the
    host and copied into device arrays (so host memory stays small)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d).astype(np.float32) / np.sqrt(d)
    dX = cuda.device_array((n, d), dtype=np.float32)
    dy = cuda.device_array(n, dtype=np.float32)
    for r0 in range(0, n, chunk_rows):
        r1 = min(n, r0 + chunk_rows)
        Xc = rng.random((r1 - r0, d), dtype=np.float32)
        Xc *= 2.0
        Xc -= 1.0
        score = Xc @ w + 0.3 * rng.standard_normal(r1 - r0).astype(np.float32)
        if r0 == 0 and r1 == n:
            dX.copy_to_device(Xc)
            dy.copy_to_device((score > 0).astype(np.float32))
        else:
            dX[r0:r1].copy_to_device(Xc)
            dy[r0:r1].copy_to_device((score > 0).astype(np.float32))
    return dX, dy


class Spec:
    """fastgd.engines.LinearSpec's fields (duck-typed, as the engine expects)."""

    def __init__(self, batch_size, lr_rule_hyper=(0.0, 0.0, 0.0, 0.0)):
        from fastgd.kernels import ids

        self.loss_id = ids.LOSS_LOGISTIC
        self.loss_param = None
        self.n_outputs = 1
        self.fit_intercept = True
        self.alpha = 0.0
        self.l1_ratio = 0.0
        self.rule_id = ids.RULE_SGD
        self.hyper = np.asarray(lr_rule_hyper, dtype=np.float64)
        self.batch_size = batch_size


def fastgd_epochs(dX, dy, b, orders, epochs, lr, path=None, warm_batches=2):
    """Seconds per epoch of the CUDA engine (after a compile/warm-up run)."""
    from fastgd.kernels.cuda.engine import LinearEngine

    n, d = dX.shape
    nb = -(-n // b)
    theta = np.zeros(d + 1, dtype=np.float32)
    state = np.zeros((1, d + 1), dtype=np.float32)
    eng = LinearEngine(dX, dy, None, Spec(b), theta, state, path=path)
    eng.prepare(orders)
    lrs = np.full(nb, lr)
    bl = np.zeros(nb)
    t0 = time.perf_counter()
    eng.run_epoch(0, min(nb, warm_batches), lrs, 0, bl)  # compiles the kernels
    if nb <= warm_batches and time.perf_counter() - t0 > 5.0:
        epochs = 1  # a slow full epoch: one timed run says enough, and saves device time
    eng.set_theta_state(theta, state)
    times, losses = [], []
    for e in range(epochs):
        t0 = time.perf_counter()
        done = eng.run_epoch(e % orders.shape[0], nb, lrs, e * nb, bl)
        times.append(time.perf_counter() - t0)
        if done != nb:
            raise RuntimeError(f"diverged at batch {done} of epoch {e}")
        losses.append(float(bl[-1]))
    return {"path": eng.path, "kernel": eng.partials if eng.path == "batched" else "fused_epoch",
            "epoch_s": min(times), "all_s": times, "last_loss": losses[-1],
            "blocks": eng._grid(b) if eng.path == "batched" else 1}


def torch_epochs(X, y, order, b, epochs, lr, device):
    """Seconds per epoch of the PyTorch loop (nn.Linear + BCEWithLogitsLoss + SGD)."""
    import torch

    Xt = torch.as_tensor(X, device=device)
    yt = torch.as_tensor(y, device=device)
    perm = torch.as_tensor(np.asarray(order, dtype=np.int64), device=device)
    n, d = Xt.shape
    nb = -(-n // b)
    model = torch.nn.Linear(d, 1).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    crit = torch.nn.BCEWithLogitsLoss()

    def run(n_batches):
        for k in range(n_batches):
            idx = perm[k * b:(k + 1) * b]
            opt.zero_grad(set_to_none=True)
            loss = crit(model(Xt[idx]).squeeze(1), yt[idx])
            loss.backward()
            opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return float(loss.detach())

    run(min(nb, 20))  # warm-up (cuBLAS handles, caching allocator)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        last = run(nb)
        times.append(time.perf_counter() - t0)
    return {"epoch_s": min(times), "all_s": times, "last_loss": last, "device": device}


def _row_sum_kernel():
    """A plain reader with the gradient kernel's geometry: block g sums the entries of its
    rows_per_block rows (warps over rows, lanes over features, as ``load_tile`` reads), one
    fixed-order reduction, one store.  What the blocks' reads alone cost."""
    @cuda.jit
    def row_sums(X, rows_per_block, out):
        sm = cuda.shared.array(1024, np.float32)
        t = cuda.threadIdx.x
        nt = cuda.blockDim.x
        g = cuda.blockIdx.x
        d = X.shape[1]
        lane = t % 32
        r = g * rows_per_block + t // 32
        r1 = (g + 1) * rows_per_block
        s = np.float32(0.0)
        while r < r1:
            for j in range(lane, d, 32):
                s += X[r, j]
            r += nt // 32
        sm[t] = s
        cuda.syncthreads()
        if t == 0:
            tot = np.float32(0.0)
            for i in range(nt):
                tot += sm[i]
            out[g] = tot
    return row_sums


def block_scaling(dX, dy, sms, rows_per_block=4096, repeats=3):
    """``batch_partials`` alone, the same work per block (rows_per_block rows) on 1, 8,
    sms / 4 and sms blocks: if the blocks run side by side the time stays flat; if it
    grows with the blocks, they do not.  Each block's partial loss is read back too
    (equal shares: every block did its own rows)."""
    from fastgd.kernels.cuda.engine import LinearEngine

    d = dX.shape[1]
    theta = np.zeros(d + 1, dtype=np.float32)
    state = np.zeros((1, d + 1), dtype=np.float32)
    rows = []
    for G in sorted({1, 8, max(1, sms // 4), sms}):
        nb = G * rows_per_block
        if nb > dX.shape[0]:
            break
        eng = LinearEngine(dX[:nb], dy[:nb], None, Spec(nb), theta, state, path="batched")
        eng.prepare(np.arange(nb, dtype=np.int64)[None, :])
        eng.part = cuda.device_array((G, eng.S), dtype=eng.dtype)
        args = eng._partials_args(eng.orders[0], 0, nb, rows_per_block)
        launch = eng._launcher(eng.partials, args)[G, eng.threads, 0, eng.partials_shared_bytes]
        kernel_s = best_seconds(lambda: launch(*args), repeats)
        # the launch call alone, the device idle before it: a long one is host-side work
        # (argument handling, a hidden transfer), not the kernel
        cuda.synchronize()
        t0 = time.perf_counter()
        launch(*args)
        host_s = time.perf_counter() - t0
        cuda.synchronize()
        shares = eng.part.copy_to_host()[:G, eng.P]
        reader = _row_sum_kernel()[G, eng.threads]
        sums = cuda.device_array(G, dtype=np.float32)
        read_s = best_seconds(lambda: reader(dX, rows_per_block, sums), repeats)
        rows.append({"blocks": G, "rows": nb, "ms": kernel_s * 1e3, "read_ms": read_s * 1e3,
                     "launch_call_ms": host_s * 1e3,
                     "share_min": float(shares.min()), "share_max": float(shares.max()),
                     "zero_shares": int(np.sum(shares == 0))})
        x = rows[-1]
        log(f"scaling: {G:4d} blocks x {rows_per_block} rows: {x['ms']:8.2f} ms "
            f"({x['ms'] * 1e3 / (rows_per_block / eng.rows):.1f} us a tile a block; the same "
            f"rows only read: {x['read_ms']:.2f} ms; the launch call {x['launch_call_ms']:.3f} ms); "
            f"block losses {x['share_min']:.4g}..{x['share_max']:.4g}, "
            f"{x['zero_shares']} zero")
    return rows


def sweep_bgd(dX, dy, epochs, bandwidth, sms, simulated, budget_s=90.0):
    """The BGD epoch over launch geometries: total blocks (1 block, 8, one and four per
    SM) with and without config.SPLIT_DOTS first, then threads per block, tile rows and
    slices at one block per SM.  The kernels take these as arguments, so nothing
    recompiles; stops after ``budget_s``.  If one block takes as long as one per SM, the
    blocks are not running side by side."""
    from fastgd.kernels.cuda import config

    names = ("THREADS_PER_BLOCK", "TILE_ROWS", "MAX_BLOCKS", "SPLIT_DOTS", "ROW_KERNEL")
    saved = {k: getattr(config, k) for k in names}
    n = dX.shape[0]
    orders = np.arange(n, dtype=np.int64)[None, :]
    # (row kernel, threads, tile rows, blocks (0: one wave by occupancy), split)
    if simulated:
        grid = [(1, 32, 8, 1, 1), (0, 32, 8, 1, 4)]
    else:
        grid = [(1, t, 64, g, 1) for t in (256, 128, 384) for g in (0, sms, 2 * sms, 8 * sms)]
        grid += [(0, 256, 64, g, sp) for g in (0, 4 * sms) for sp in (1, 4)]
    rows = []
    t_end = time.perf_counter() + budget_s
    try:
        for rk, t, r, g, sp in grid:
            if time.perf_counter() > t_end:
                log(f"sweep: stopped after {budget_s:.0f} s ({len(rows)} geometries)")
                break
            config.THREADS_PER_BLOCK, config.TILE_ROWS, config.ROW_KERNEL = t, r, rk
            config.MAX_BLOCKS, config.SPLIT_DOTS = g, sp
            try:
                res = bandwidth(fastgd_epochs(dX, dy, n, orders, epochs, lr=0.5), n)
            except Exception as exc:  # a geometry the device refuses: say so, go on
                log(f"sweep row_kernel={rk} threads={t} tile_rows={r} blocks={g} split={sp}: "
                    f"{exc!r}")
                continue
            rows.append({"row_kernel": rk, "threads": t, "tile_rows": r,
                         "blocks": res["blocks"], "split": sp,
                         "epoch_ms": res["epoch_s"] * 1e3,
                         "fraction_of_copy": res["fraction_of_copy"]})
            log(f"sweep {n} rows: {'rows ' if rk else 'tiles'} threads={t:4d} tile_rows={r:3d} "
                f"blocks={res['blocks']:4d} "
                f"split={sp}: {rows[-1]['epoch_ms']:9.2f} ms = "
                f"{100 * rows[-1]['fraction_of_copy']:.1f}% of copy")
    finally:
        for k, v in saved.items():
            setattr(config, k, v)
    return rows


# ----------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description="fastgd CUDA backend: bandwidth and speed check")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes: runs on the CUDA simulator (checks the script only)")
    ap.add_argument("--rows", type=int, default=10_000_000, help="BGD rows (default 1e7)")
    ap.add_argument("--features", type=int, default=100)
    ap.add_argument("--mbgd-rows", type=int, default=100_000, help="rows of the MBGD epochs")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs (best is reported)")
    ap.add_argument("--copy-bytes", type=int, default=2**30, help="copy kernel buffer size")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--sweep", action="store_true",
                    help="also time the BGD epoch over launch geometries (config values)")
    ap.add_argument("--scaling", action="store_true",
                    help="also time the gradient kernel alone on 1, 8, SMs/4 and SMs blocks "
                         "with the same rows per block (do the blocks run side by side?)")
    ap.add_argument("--sweep-rows", type=int, default=1_000_000, help="rows of the sweep")
    ap.add_argument("--bgd-shuffled", action="store_true",
                    help="also time one BGD epoch reading the rows through a permutation")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)

    if args.smoke:
        args.rows, args.features, args.mbgd_rows, args.epochs, args.copy_bytes = 40, 5, 40, 1, 4096
    from numba import config as nbconfig

    import fastgd.kernels.cuda as fcuda

    simulated = bool(nbconfig.ENABLE_CUDASIM)
    if not fcuda.is_available():
        log(f"CUDA backend unavailable: {fcuda.unavailable_reason()}")
        return 2
    if simulated and not args.smoke:
        log("NUMBA_ENABLE_CUDASIM is set: use --smoke (the simulator cannot time a GPU)")
        return 2
    out = {"device": device_info(simulated), "smoke": args.smoke}
    log(f"device: {out['device']}")
    from fastgd.kernels.cuda import config

    out["config"] = config.snapshot()

    # 1. bandwidth
    bw = copy_bandwidth(args.copy_bytes, repeats=1 if args.smoke else 10)
    out["copy"] = bw
    log(f"copy kernel: {bw['gbps']:.1f} GB/s ({bw['bytes'] / 2**30:.2f} GiB moved, best of runs)")

    # 2. BGD epoch
    n, d = args.rows, args.features
    t0 = time.perf_counter()
    dX, dy = make_data(n, d)
    log(f"data: {n} x {d} float32 on the device ({n * d * 4 / 2**30:.2f} GiB) in "
        f"{time.perf_counter() - t0:.1f} s")
    # A fit hands a full batch its rows in storage order (fastgd.batching.OrderStream: the
    # same set of rows whatever the permutation), so this is the order a BGD epoch reads.
    orders = np.arange(n, dtype=np.int64)[None, :]

    def bandwidth(res, rows=n):
        read = rows * d * 4 + rows * 4 + rows * 8
        res["bytes_read"] = read
        res["effective_gbps"] = read / res["epoch_s"] / 1e9
        res["fraction_of_copy"] = res["effective_gbps"] / bw["gbps"]
        return res

    bgd = bandwidth(fastgd_epochs(dX, dy, n, orders, args.epochs, lr=0.5))
    out["bgd"] = bgd
    log(f"BGD epoch ({n} x {d}, {bgd['blocks']} blocks, {bgd['kernel']}): "
        f"{bgd['epoch_s'] * 1e3:.2f} ms, "
        f"{bgd['effective_gbps']:.1f} GB/s = {100 * bgd['fraction_of_copy']:.0f}% of copy "
        f"(goal >= 70%)")
    saved, config.ROW_KERNEL = config.ROW_KERNEL, 0
    try:  # the same epoch on the tile kernel (what the softmax and d > 256 take)
        tiles = bandwidth(fastgd_epochs(dX, dy, n, orders, args.epochs, lr=0.5))
    finally:
        config.ROW_KERNEL = saved
    out["bgd_tiles"] = tiles
    log(f"BGD epoch on the tile kernel ({tiles['blocks']} blocks): "
        f"{tiles['epoch_s'] * 1e3:.2f} ms = {100 * tiles['fraction_of_copy']:.0f}% of copy")
    if args.scaling:
        out["block_scaling"] = block_scaling(dX, dy, out["device"]["sms"],
                                             rows_per_block=16 if simulated else 4096)
    if args.sweep:
        k = min(n, args.sweep_rows)
        out["bgd_sweep"] = sweep_bgd(dX[:k], dy[:k], 2, bandwidth, out["device"]["sms"],
                                     simulated)
    if args.bgd_shuffled:
        perm = np.random.default_rng(1).permutation(n)[None, :]
        shuf = bandwidth(fastgd_epochs(dX, dy, n, perm, 1, lr=0.5))
        out["bgd_shuffled"] = shuf
        log(f"BGD epoch through a shuffled order (rows gathered at random, not what a fit "
            f"does): {shuf['epoch_s'] * 1e3:.1f} ms = {100 * shuf['fraction_of_copy']:.1f}% "
            "of copy")

    # 3. MBGD epochs vs PyTorch
    m = min(args.mbgd_rows, n)
    dXm, dym = dX[:m], dy[:m]
    order_m = np.random.default_rng(2).permutation(m)
    torch_dev = None
    if not args.no_torch:
        try:
            import torch

            torch_dev = "cuda" if (torch.cuda.is_available() and not simulated) else None
            if torch_dev is None and args.smoke:
                torch_dev = "cpu"
            if torch_dev is None:
                log("torch has no CUDA here: the PyTorch comparison is skipped")
        except ImportError:
            log("torch is not installed: the PyTorch comparison is skipped")
    out["mbgd"] = {}
    sizes = (4, 16) if args.smoke else (32, 1024)
    for b in sizes:
        row = {"b": b}
        row["fastgd"] = fastgd_epochs(dXm, dym, b, order_m[None, :], args.epochs, lr=0.05)
        other = "batched" if row["fastgd"]["path"] == "fused" else "fused"
        row["fastgd_other_path"] = fastgd_epochs(dXm, dym, b, order_m[None, :], 1, lr=0.05,
                                                 path=other)
        msg = (f"MBGD b={b} ({m} rows): fastgd {row['fastgd']['epoch_s'] * 1e3:.1f} ms/epoch "
               f"[{row['fastgd']['path']}; {other}: "
               f"{row['fastgd_other_path']['epoch_s'] * 1e3:.1f} ms]")
        if args.sweep:
            from fastgd.kernels.cuda import config

            row["split"] = {}
            for sp in (4, 8):
                saved, config.SPLIT_DOTS = config.SPLIT_DOTS, sp
                try:
                    row["split"][sp] = fastgd_epochs(dXm, dym, b, order_m[None, :], args.epochs,
                                                     lr=0.05)
                finally:
                    config.SPLIT_DOTS = saved
            msg += " [SPLIT_DOTS " + ", ".join(
                f"{sp}: {r['epoch_s'] * 1e3:.1f} ms" for sp, r in row["split"].items()) + "]"
        if torch_dev is not None:
            if torch_dev == "cuda":
                Xh, yh = dXm, dym  # zero-copy through __cuda_array_interface__
            else:
                Xh, yh = dXm.copy_to_host(), dym.copy_to_host()
            row["torch"] = torch_epochs(Xh, yh, order_m, b, args.epochs, 0.05, torch_dev)
            row["speedup"] = row["torch"]["epoch_s"] / row["fastgd"]["epoch_s"]
            msg += (f", torch ({torch_dev}) {row['torch']['epoch_s'] * 1e3:.1f} ms/epoch: "
                    f"{row['speedup']:.1f}x" + (" (goal >= 5x)" if b == sizes[0] else ""))
        log(msg)
        out["mbgd"][str(b)] = row

    # summary
    print()
    print(f"| GPU | {out['device']['name']} (cc {out['device']['cc']}, {out['device']['sms']} SMs) |")
    print("|---|---|")
    print(f"| copy-kernel bandwidth | {bw['gbps']:.1f} GB/s |")
    print(f"| BGD epoch {n} x {d} float32 | {bgd['epoch_s'] * 1e3:.2f} ms, "
          f"{bgd['effective_gbps']:.1f} GB/s = {100 * bgd['fraction_of_copy']:.0f}% of copy |")
    for b, row in out["mbgd"].items():
        cell = f"{row['fastgd']['epoch_s'] * 1e3:.1f} ms/epoch ({row['fastgd']['path']})"
        if "torch" in row:
            cell += f"; torch {row['torch']['epoch_s'] * 1e3:.1f} ms: {row['speedup']:.1f}x"
        print(f"| MBGD b={b}, {m} rows | {cell} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2, default=float)
        log(f"wrote {args.json}")
    if args.smoke:
        log("smoke run: the figures above time the simulator, not a GPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
