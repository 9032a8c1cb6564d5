#!/usr/bin/env bash
# The GPU check of the CUDA backend: ONE command on a fresh GPU machine, < 5 minutes.
#
#   bash bench/gpu_check.sh            # install, gpu tests, figures
#   bash bench/gpu_check.sh --smoke    # the same steps on Numba's CUDA simulator, tiny sizes
#   bash bench/gpu_check.sh --full     # also every test of tests/test_cuda.py on the device
#   bash bench/gpu_check.sh --scaling --sweep   # also the diagnostics of docs/cuda.md
#                                               # (do the blocks overlap? which geometry?)
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
FULL=0
ARGS=()
for a in "$@"; do
    case "$a" in
        --smoke) SMOKE=1; ARGS+=("$a") ;;
        --full) FULL=1 ;;
        *) ARGS+=("$a") ;;
    esac
done
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

have() { $PY -c "import $1" >/dev/null 2>&1; }
if [ "${GPU_CHECK_NO_INSTALL:-0}" != 1 ]; then
    CU=12
    if command -v nvidia-smi >/dev/null 2>&1; then
        V=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' | head -1)
        if [ -n "$V" ] && [ "$V" -ge 13 ]; then CU=13; fi
    fi
    # GPU images often hold numba-cuda, pytest, Cython and torch already and reach no
    # package index: ask pip only for what is missing, and build fastgd against what is there.
    NEED=()
    have numba_cuda || NEED+=("numba-cuda[cu$CU]")
    have pytest || NEED+=(pytest)
    if ! have fastgd.kernels.cuda; then
        if have Cython && have setuptools && have numpy && have scipy; then
            log "building fastgd (editable) against the installed Cython, NumPy and SciPy"
            timeout 300 $PY -m pip install -q --no-build-isolation --no-deps -e . \
                || log "building fastgd failed"
            have numba || NEED+=(numba)
        else
            NEED+=(-e ".[cuda]")
        fi
    fi
    if [ ${#NEED[@]} -gt 0 ]; then
        log "installing ${NEED[*]}"
        timeout 240 $PY -m pip install -q "${NEED[@]}" || log "pip failed; going on with what is installed"
    fi
    if [ "$SMOKE" = 0 ] && [ "${GPU_CHECK_NO_TORCH_INSTALL:-0}" != 1 ] && ! have torch; then
        log "installing torch (optional: the PyTorch comparison)"
        timeout 150 $PY -m pip install -q torch || log "no torch: the PyTorch comparison is skipped"
    fi
fi

probe() {
    $PY - <<'EOF'
import fastgd.kernels.cuda as c
print("[gpu_check.sh] fastgd cuda backend available:", c.is_available(), "simulated:", c.is_simulated())
if not c.is_available():
    print("[gpu_check.sh]", c.unavailable_reason())
EOF
}
PROBE=$(probe 2>&1); echo "$PROBE"
if [ "${GPU_CHECK_NO_INSTALL:-0}" != 1 ] && echo "$PROBE" | grep -q 'numpy<2.5'; then
    # numba-cuda cannot compile beside NumPy 2.5 (docs/cuda.md); offline, carry a wheel
    log "installing numpy<2.5 for numba-cuda"
    timeout 120 $PY -m pip install -q "numpy<2.5" || log "pip failed: install numpy<2.5 by hand"
    probe
fi

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

log "figures (bench/gpu_check.py ${ARGS[*]})"
timeout 300 $PY bench/gpu_check.py "${ARGS[@]}"
RC_BENCH=$?
if [ "$FULL" = 1 ] && [ "$SMOKE" = 0 ]; then
    # The parity tests that CI runs on the simulator, here on the device (its launch
    # geometry, warp-synchronous code and float rounding are what the simulator cannot show).
    log "--full: every test of tests/test_cuda.py on the device"
    timeout 420 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py
    RC=$?
    [ "$RC_TESTS" = 0 ] && RC_TESTS=$RC
fi
log "done: tests rc=$RC_TESTS, figures rc=$RC_BENCH"
[ "$RC_TESTS" = 0 ] && [ "$RC_BENCH" = 0 ]
