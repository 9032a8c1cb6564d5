#!/usr/bin/env bash
# The GPU check of the CUDA backend: ONE command on a fresh GPU machine, < 5 minutes.
#
#   bash bench/gpu_check.sh            # install, gpu tests, figures
#   bash bench/gpu_check.sh --smoke    # the same steps on Numba's CUDA simulator, tiny sizes
#
# 1. installs what it needs (fastgd with the cuda extra and the CUDA wheels that match the
#    driver, pytest; torch if it is missing, for the PyTorch comparison -- optional);
# 2. runs the tests marked `gpu` (tests/test_cuda.py) on the device;
# 3. runs bench/gpu_check.py: copy-kernel bandwidth, a BGD epoch on 10,000,000 x 100 float32
#    against it (goal >= 70%), MBGD epochs at b=32 and b=1024 against a PyTorch CUDA loop
#    (goal >= 5x at b=32).  Extra arguments are passed to gpu_check.py (see --help).
#
# Environment: PYTHON (default python3), GPU_CHECK_NO_INSTALL=1 to skip pip,
# GPU_CHECK_NO_TORCH_INSTALL=1 to never install torch.  Exit status: non-zero when the
# tests or the benchmark failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
T0=$(date +%s)
log() { echo "[gpu_check.sh +$(( $(date +%s) - T0 ))s] $*"; }

SMOKE=0
for a in "$@"; do [ "$a" = "--smoke" ] && SMOKE=1; done
if [ "$SMOKE" = 1 ]; then
    export NUMBA_ENABLE_CUDASIM=1
    log "smoke mode: Numba's CUDA simulator, tiny sizes (checks the script, not a GPU)"
else
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    else
        log "nvidia-smi not found: is there a GPU and a driver on this machine?"
    fi
fi

if [ "${GPU_CHECK_NO_INSTALL:-0}" != 1 ]; then
    CU=12
    if command -v nvidia-smi >/dev/null 2>&1; then
        V=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' | head -1)
        if [ -n "$V" ] && [ "$V" -ge 13 ]; then CU=13; fi
    fi
    if $PY -c "import fastgd.kernels.cuda" >/dev/null 2>&1; then
        log "fastgd is installed; adding numba-cuda[cu$CU] and pytest"
        timeout 240 $PY -m pip install -q "numba-cuda[cu$CU]" pytest \
            || log "pip failed; going on with what is installed"
    else
        log "installing fastgd[cuda] (editable), numba-cuda[cu$CU], pytest"
        timeout 240 $PY -m pip install -q -e ".[cuda]" "numba-cuda[cu$CU]" pytest \
            || log "pip failed; going on with what is installed"
    fi
    if [ "$SMOKE" = 0 ] && [ "${GPU_CHECK_NO_TORCH_INSTALL:-0}" != 1 ] \
        && ! $PY -c "import torch" >/dev/null 2>&1; then
        log "installing torch (optional: the PyTorch comparison)"
        timeout 150 $PY -m pip install -q torch || log "no torch: the PyTorch comparison is skipped"
    fi
fi

$PY - <<'EOF'
import fastgd.kernels.cuda as c
print("[gpu_check.sh] fastgd cuda backend available:", c.is_available(), "simulated:", c.is_simulated())
if not c.is_available():
    print("[gpu_check.sh]", c.unavailable_reason())
EOF

RC_TESTS=0
if [ "$SMOKE" = 0 ]; then
    log "tests marked gpu (tests/test_cuda.py)"
    timeout 240 $PY -m pytest -q -m gpu -p no:cacheprovider tests/test_cuda.py
    RC_TESTS=$?
    [ "$RC_TESTS" = 5 ] && { log "no gpu test ran (is the GPU visible?)"; }
else
    log "smoke: the gpu tests skip on the simulator; running the compile check instead"
    env -u NUMBA_ENABLE_CUDASIM timeout 240 $PY -m fastgd.kernels.cuda.compile_check
    RC_TESTS=$?
    [ "$RC_TESTS" = 3 ] && RC_TESTS=0  # no CUDA toolkit here: nothing to compile against
fi

log "figures (bench/gpu_check.py $*)"
timeout 300 $PY bench/gpu_check.py "$@"
RC_BENCH=$?
log "done: tests rc=$RC_TESTS, figures rc=$RC_BENCH"
[ "$RC_TESTS" = 0 ] && [ "$RC_BENCH" = 0 ]
