"""Tunables of the CUDA backend, all in one place.

Every launch geometry the CUDA engine uses is read from this module when an
engine is built, so tests and benchmarks may change a value in it
(``monkeypatch.setattr(config, "TILE_ROWS", 4)``) before the engine is made.
The environment (``FASTGD_CUDA_TILE_ROWS=32``) sets the values once, when this
module is imported (the process's first CUDA fit); after that, assign them here.

Under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) every CUDA thread is a
Python thread, so the defaults shrink to tiny blocks and tiles (stumpy does the
same); the kernels are the same code either way.

Bit reproducibility holds for a fixed set of these values: the reductions have
a fixed order that depends on them (and on the batch size), never on timing.

Values
------
THREADS_PER_BLOCK   threads of every block (a multiple of 32, at most MAX_THREADS:
                    384, what the register count of the fused kernels leaves).
TILE_ROWS           rows of X staged in shared memory at a time (one thread per
                    row computes that row's prediction).
TILE_COLS           most features per staged tile; wider X is walked in
                    column chunks (read twice per tile: once for the
                    predictions, once for the gradient).
SHARED_BYTES        dynamic shared memory of one block (48 KiB is what every
                    GPU grants without opting in).  The tile, the per-row
                    predictions (TILE_ROWS x K) and the reduction scratch must
                    fit: TILE_COLS, then TILE_ROWS, are lowered until they do
                    (float64 gets about half the columns of float32).
ROWS_PER_BLOCK      batched path: a block handles at least this many rows of a
                    batch; the grid is ceil(rows / ROWS_PER_BLOCK) blocks ...
MAX_BLOCKS          ... capped here (0: BLOCKS_PER_SM x the device's SM count,
                    one full wave, so a BGD epoch has no tail) ...
MAX_PARTIAL_ELEMS   ... and so that blocks x parameters partial sums fit here.
FUSED_MAX_BATCH     batches of at most this many rows run on the fused path: one
                    kernel launch per epoch, one block that walks every batch
                    (small batches are latency bound: one SM wins over launch
                    overhead).  Larger batches use the batched path: two launches
                    per batch (partial gradients, then reduce + penalty + update).
BLOCKS_PER_SM       blocks resident per SM assumed by MAX_BLOCKS = 0.
REDUCE_FANOUT       fan-out of the block-level tree reductions (levels =
                    log_FANOUT(THREADS_PER_BLOCK); each level is one barrier).
ROW_KERNEL          1: the batched path takes a batch's partial gradients one warp a
                    row (``batch_partials_rows``: the row, theta and the gradient
                    sums in registers, no tiles) when K = 1 and d <= 256;
                    0: always the tiles (``batch_partials``).
SPLIT_DOTS          k > 1 (GPU default 4): each row's prediction (a dot product over the
                    tile's columns) is cut into up to k strided column slices and each
                    feature's gradient sum (over the tile's rows) into row slices, on
                    threads that are otherwise idle (64 of 256 threads work in the
                    predictions of a 64-row tile), the slices added in a fixed order.
                    1: one thread a dot product.  H200 (docs/benchmarks.md): MBGD b = 32
                    on the fused path 52.0 -> 41.7 ms an epoch at k = 4 (41.3 at 8).
"""
import os

try:  # numba is a core dependency, but never let a config import fail
    from numba import config as _numba_config

    SIMULATOR = bool(getattr(_numba_config, "ENABLE_CUDASIM", 0))
except Exception:  # pragma: no cover
    SIMULATOR = False

if not SIMULATOR:
    THREADS_PER_BLOCK = 256
    TILE_ROWS = 64
    TILE_COLS = 128
    SHARED_BYTES = 48 * 1024
    ROWS_PER_BLOCK = 128
    MAX_BLOCKS = 0
    BLOCKS_PER_SM = 4
    MAX_PARTIAL_ELEMS = 1 << 24
    FUSED_MAX_BATCH = 512
    REDUCE_FANOUT = 16
    ROW_KERNEL = 1
    SPLIT_DOTS = 4
else:
    # Tiny, but still exercising every code path: several tiles per batch,
    # several column chunks for d > 4, several blocks per batch on the
    # batched path.
    THREADS_PER_BLOCK = 32
    TILE_ROWS = 8
    TILE_COLS = 4
    SHARED_BYTES = 48 * 1024
    ROWS_PER_BLOCK = 16
    MAX_BLOCKS = 4
    BLOCKS_PER_SM = 1
    MAX_PARTIAL_ELEMS = 1 << 16
    FUSED_MAX_BATCH = 16
    REDUCE_FANOUT = 4
    ROW_KERNEL = 1
    SPLIT_DOTS = 1

_NAMES = ("THREADS_PER_BLOCK", "TILE_ROWS", "TILE_COLS", "SHARED_BYTES", "ROWS_PER_BLOCK",
          "MAX_BLOCKS", "BLOCKS_PER_SM", "MAX_PARTIAL_ELEMS", "FUSED_MAX_BATCH", "REDUCE_FANOUT",
          "ROW_KERNEL", "SPLIT_DOTS")

for _name in _NAMES:
    _env = os.environ.get("FASTGD_CUDA_" + _name)
    if _env:
        globals()[_name] = int(_env)


#: Threads a block of every kernel can launch with: the fused and tiled linear kernels
#: use 148-150 registers a thread and the row kernel 160 for d > 128 (``ptxas -v``, sm_90,
#: CUDA 13.0; the MLP's 109), and a block gets 65,536: 13 warps of 160 need 66,560, so 384
#: is the row kernel's ceiling (416 the others').  numba-cuda sets no register cap, so a
#: larger block would compile and then fail to launch (CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES)
#: on a GPU, not on the simulator.  (The H200 sweep had timed 512 threads on the row kernel
#: at d = 100, 72 registers: slower than 128 or 256, docs/benchmarks.md.)
MAX_THREADS = 384

#: Dynamic shared memory a block gets without the opt-in attribute (which numba-cuda does
#: not set): a launch asking for more fails on every GPU (the simulator allocates any size).
MAX_SHARED_BYTES = 48 * 1024


def snapshot():
    """The current values, as a dict (the engine copies them when built), checked against
    what a GPU launch accepts: the simulator takes any block size or shared-memory size, a
    GPU refuses the launch, so a bad value is an error here, naming it, not at the launch."""
    cfg = {name: int(globals()[name]) for name in _NAMES}
    nt = cfg["THREADS_PER_BLOCK"]
    if nt % 32 != 0 or not 32 <= nt <= MAX_THREADS:
        raise ValueError(f"Invalid config.THREADS_PER_BLOCK: {nt}; a block has whole warps, and "
                         f"the kernels' registers (up to 160 a thread of a block's 65,536) let "
                         f"at most {MAX_THREADS} threads launch, so it must be a multiple of 32 "
                         f"in 32..{MAX_THREADS}")
    if not 1 <= cfg["SHARED_BYTES"] <= MAX_SHARED_BYTES:
        raise ValueError(f"Invalid config.SHARED_BYTES: {cfg['SHARED_BYTES']}; a block gets at "
                         f"most {MAX_SHARED_BYTES} bytes of dynamic shared memory without "
                         "opting in, so it must be in 1..49152")
    for name in ("TILE_ROWS", "TILE_COLS", "ROWS_PER_BLOCK", "MAX_PARTIAL_ELEMS"):
        if cfg[name] < 1:
            raise ValueError(f"Invalid config.{name}: {cfg[name]}; it must be >= 1")
    return cfg
