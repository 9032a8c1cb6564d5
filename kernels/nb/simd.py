"""Four-lane float64 vector loops written as LLVM IR for the linear epoch's hot loops:
the margins of four rows over a range of features (the mid-sized batches,
``linear_epoch._split_batches``), and the gradient pass that adds four scaled rows to
the gradient (there and in ``_scalar_rows``: BGD, chunks, the halves pair).

Why IR and not plain loops: LLVM's loop vectoriser, left to itself, turns the
four-row dot into 8-wide (512-bit where the CPU has it) loops of 32 elements a
pass, with one accumulator chain per row, a 4-wide epilogue and a long horizontal
reduction; every 64-byte load of a row that starts 16 bytes past a 64-byte boundary
(NumPy's float64 rows of W1) straddles two cache lines.  Measured on the split
epoch with the rows in L3 (3,000 x 100, b = 32): the margins took 19.6 ns a row and
the gradient pass 13.3, against 13.3 and 7.3 for the same arithmetic in the Cython
backend's C (``fgd_dot4_dd``, ``fgd_axpy4_dd_l1``).  These are those two functions
operation for operation: 4-wide vectors, two accumulators a row, the rows'
remaining elements peeled off so the gradient pass loads them aligned, and the
same summation trees (no fast-math flags on these instructions, so LLVM keeps the
order).  ``llvm.fmuladd`` fuses a multiply-add where the CPU has FMA, as GCC's
default contraction does for the C.

Each overload takes the IR path for float64 C-contiguous arrays and falls back to
plain loops (LLVM's own vectorisation, as before) for other dtypes.  In
``_scalar_rows`` the gradient pass gives the same bits as the plain loop did (LLVM had
kept its tree); the split epoch's margins are summed in a new order.
"""
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from ._util import zero_of

_F64 = ir.DoubleType()
_V4 = ir.VectorType(_F64, 4)
_I64 = ir.IntType(64)
_I32 = ir.IntType(32)
_PF = _F64.as_pointer()


def _const_i64(v):
    return ir.Constant(_I64, v)


def _fmuladd(builder, a, b, c):
    ty = a.type
    name = "llvm.fmuladd.v4f64" if ty == _V4 else "llvm.fmuladd.f64"
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty, ty, ty]), name)
    return builder.call(fn, [a, b, c])


def _load4(builder, p, j, align=8):
    vp = builder.bitcast(builder.gep(p, [j]), _V4.as_pointer())
    return builder.load(vp, align=align)


def _store4(builder, p, j, v):
    vp = builder.bitcast(builder.gep(p, [j]), _V4.as_pointer())
    builder.store(v, vp, align=8)


def _shuffle(builder, u, v, idx):
    return builder.shuffle_vector(u, v, ir.Constant(ir.VectorType(_I32, 4),
                                                    [ir.Constant(_I32, k) for k in idx]))


def _splat(builder, s):
    v = ir.Constant(_V4, ir.Undefined)
    for k in range(4):
        v = builder.insert_element(v, s, ir.Constant(_I32, k))
    return v


def _blocks(fn, *names):
    return [fn.append_basic_block(name) for name in names]


def _new_function(module, name, argtys):
    fnty = ir.FunctionType(ir.VoidType(), argtys)
    fn = cgutils.get_or_insert_function(module, fnty, name)
    if not fn.is_declaration:
        return fn, False
    fn.linkage = "internal"
    return fn, True


# --------------------------------------------------------------------------
# out[r] = x_r[0:n] . w[0:n], r = 0..3 (fgd_dot4_dd)

def _dot4_function(module):
    # (Loading the rows as aligned 16-byte halves, as fgd_dot_dd does for one row, made
    # this slower: 14.5 against 12.4 ns a row with the rows in L2.)
    fn, new = _new_function(module, "fastgd_simd_dot4_f64", [_PF] * 5 + [_I64, _PF])
    if not new:
        return fn
    x = list(fn.args[:4])
    w, n, out = fn.args[4], fn.args[5], fn.args[6]
    entry, head8, body8, tail4, body4, merge, head1, body1, done = _blocks(
        fn, "entry", "head8", "body8", "tail4", "body4", "merge", "head1", "body1", "done")
    b = ir.IRBuilder(entry)
    zero = ir.Constant(_V4, [ir.Constant(_F64, 0.0)] * 4)
    b.branch(head8)

    b.position_at_end(head8)
    j = b.phi(_I64)
    acc_a = [b.phi(_V4) for _ in range(4)]
    acc_b = [b.phi(_V4) for _ in range(4)]
    j.add_incoming(_const_i64(0), entry)
    for a in acc_a + acc_b:
        a.add_incoming(zero, entry)
    b.cbranch(b.icmp_signed("<=", b.add(j, _const_i64(8)), n), body8, tail4)

    b.position_at_end(body8)
    j4 = b.add(j, _const_i64(4))
    w0 = _load4(b, w, j)
    w1 = _load4(b, w, j4)
    new_a = [_fmuladd(b, _load4(b, x[r], j), w0, acc_a[r]) for r in range(4)]
    new_b = [_fmuladd(b, _load4(b, x[r], j4), w1, acc_b[r]) for r in range(4)]
    j.add_incoming(b.add(j, _const_i64(8)), body8)
    for r in range(4):
        acc_a[r].add_incoming(new_a[r], body8)
        acc_b[r].add_incoming(new_b[r], body8)
    b.branch(head8)

    b.position_at_end(tail4)
    b.cbranch(b.icmp_signed("<=", b.add(j, _const_i64(4)), n), body4, merge)

    b.position_at_end(body4)
    w0 = _load4(b, w, j)
    a4 = [_fmuladd(b, _load4(b, x[r], j), w0, acc_a[r]) for r in range(4)]
    j_4 = b.add(j, _const_i64(4))
    b.branch(merge)

    b.position_at_end(merge)
    jm = b.phi(_I64)
    jm.add_incoming(j, tail4)
    jm.add_incoming(j_4, body4)
    a_m = [b.phi(_V4) for _ in range(4)]
    for r in range(4):
        a_m[r].add_incoming(acc_a[r], tail4)
        a_m[r].add_incoming(a4[r], body4)
    c = [b.fadd(a_m[r], acc_b[r]) for r in range(4)]
    # {x_r . w}: pairwise horizontal sums sharing their shuffles
    h01 = b.fadd(_shuffle(b, c[0], c[1], (0, 4, 2, 6)), _shuffle(b, c[0], c[1], (1, 5, 3, 7)))
    h23 = b.fadd(_shuffle(b, c[2], c[3], (0, 4, 2, 6)), _shuffle(b, c[2], c[3], (1, 5, 3, 7)))
    s = b.fadd(_shuffle(b, h01, h23, (0, 1, 4, 5)), _shuffle(b, h01, h23, (2, 3, 6, 7)))
    b.branch(head1)

    b.position_at_end(head1)
    j1 = b.phi(_I64)
    sv = b.phi(_V4)
    j1.add_incoming(jm, merge)
    sv.add_incoming(s, merge)
    b.cbranch(b.icmp_signed("<", j1, n), body1, done)

    b.position_at_end(body1)
    xv = ir.Constant(_V4, ir.Undefined)
    for r in range(4):
        xv = b.insert_element(xv, b.load(b.gep(x[r], [j1])), ir.Constant(_I32, r))
    sv1 = _fmuladd(b, xv, _splat(b, b.load(b.gep(w, [j1]))), sv)
    j1.add_incoming(b.add(j1, _const_i64(1)), body1)
    sv.add_incoming(sv1, body1)
    b.branch(head1)

    b.position_at_end(done)
    _store4(b, out, _const_i64(0), sv)
    b.ret_void()
    return fn


# --------------------------------------------------------------------------
# y[j] += (c0 x0[j] + c1 x1[j]) + (c2 x2[j] + c3 x3[j]), j < n (fgd_axpy4_dd_l1)

def _axpy4_element(b, c, xs, yv):
    u = _fmuladd(b, c[1], xs[1], b.fmul(c[0], xs[0]))
    v = _fmuladd(b, c[3], xs[3], b.fmul(c[2], xs[2]))
    return b.fadd(yv, b.fadd(u, v))


def _rows_at16(b, rows):
    """True when every row pointer is 16 bytes past a 32-byte boundary."""
    at16 = ir.Constant(ir.IntType(1), 1)
    for p in rows:
        low = b.and_(b.ptrtoint(p, _I64), _const_i64(31))
        at16 = b.and_(at16, b.icmp_unsigned("==", low, _const_i64(16)))
    return at16


def _axpy4_function(module):
    fn, new = _new_function(module, "fastgd_simd_axpy4_f64", [_F64] * 4 + [_PF] * 5 + [_I64])
    if not new:
        return fn
    cs, x, y, n = list(fn.args[0:4]), list(fn.args[4:8]), fn.args[8], fn.args[9]
    entry, peel, head, pick, body_a, body_u, latch, head1, body1, done = _blocks(
        fn, "entry", "peel", "head", "pick", "body_aligned", "body_unaligned", "latch", "head1",
        "body1", "done")
    b = ir.IRBuilder(entry)
    cv = [_splat(b, s) for s in cs]
    # rows 16 bytes past a 32-byte boundary: two elements alone, then aligned loads
    aligned = b.and_(_rows_at16(b, x), b.icmp_signed(">=", n, _const_i64(6)))
    b.cbranch(aligned, peel, head)

    b.position_at_end(peel)
    for q in range(2):
        qi = _const_i64(q)
        xs = [b.load(b.gep(x[r], [qi])) for r in range(4)]
        yp = b.gep(y, [qi])
        b.store(_axpy4_element(b, cs, xs, b.load(yp)), yp)
    b.branch(head)

    b.position_at_end(head)
    j = b.phi(_I64)
    j.add_incoming(_const_i64(0), entry)
    j.add_incoming(_const_i64(2), peel)
    b.cbranch(b.icmp_signed("<=", b.add(j, _const_i64(4)), n), pick, head1)

    b.position_at_end(pick)
    b.cbranch(aligned, body_a, body_u)  # (the peel ran exactly when aligned)

    for blk, align in ((body_a, 32), (body_u, 8)):
        b.position_at_end(blk)
        xs = [_load4(b, x[r], j, align) for r in range(4)]
        _store4(b, y, j, _axpy4_element(b, cv, xs, _load4(b, y, j)))
        b.branch(latch)

    b.position_at_end(latch)
    j.add_incoming(b.add(j, _const_i64(4)), latch)
    b.branch(head)

    b.position_at_end(head1)
    j1 = b.phi(_I64)
    j1.add_incoming(j, head)
    b.cbranch(b.icmp_signed("<", j1, n), body1, done)

    b.position_at_end(body1)
    xs = [b.load(b.gep(x[r], [j1])) for r in range(4)]
    yp = b.gep(y, [j1])
    b.store(_axpy4_element(b, cs, xs, b.load(yp)), yp)
    j1.add_incoming(b.add(j1, _const_i64(1)), body1)
    b.branch(head1)

    b.position_at_end(done)
    b.ret_void()
    return fn


# --------------------------------------------------------------------------
# The intrinsics (float64, C-contiguous arrays) and the overloads that pick them.

def _is_f64_c(a, ndim):
    return (isinstance(a, types.Array) and a.ndim == ndim and a.dtype == types.float64
            and a.layout == "C")


def _pointer(context, builder, aryty, ary, idx):
    arr = context.make_array(aryty)(context, builder, ary)
    idx = [context.cast(builder, v, t, types.intp) for v, t in idx]
    return cgutils.get_item_pointer(context, builder, aryty, arr, idx, wraparound=False)


@intrinsic
def _dot4_ir(typingctx, X, i0, i1, i2, i3, lo, hi, w):
    if not (_is_f64_c(X, 2) and _is_f64_c(w, 1)):
        return None
    sig = types.UniTuple(types.float64, 4)(X, i0, i1, i2, i3, lo, hi, w)

    def codegen(context, builder, signature, args):
        Xty, wty = signature.args[0], signature.args[7]
        lo_t = signature.args[5]
        rows = [_pointer(context, builder, Xty, args[0], [(args[1 + r], signature.args[1 + r]),
                                                         (args[5], lo_t)]) for r in range(4)]
        wp = _pointer(context, builder, wty, args[7], [(args[5], lo_t)])
        n = builder.sub(context.cast(builder, args[6], signature.args[6], types.int64),
                        context.cast(builder, args[5], lo_t, types.int64))
        out = cgutils.alloca_once(builder, _V4)
        fargs = rows + [wp, n, builder.bitcast(out, _PF)]
        builder.call(_dot4_function(builder.module), fargs)
        v = builder.load(out)
        return context.make_tuple(builder, signature.return_type,
                                  [builder.extract_element(v, ir.Constant(_I32, r))
                                   for r in range(4)])

    return sig, codegen


@intrinsic
def _axpy4_ir(typingctx, c0, c1, c2, c3, X, i0, i1, i2, i3, lo, hi, g):
    if not (_is_f64_c(X, 2) and _is_f64_c(g, 1)
            and all(isinstance(c, types.Float) for c in (c0, c1, c2, c3))):
        return None
    sig = types.void(c0, c1, c2, c3, X, i0, i1, i2, i3, lo, hi, g)

    def codegen(context, builder, signature, args):
        Xty, gty = signature.args[4], signature.args[11]
        lo_t = signature.args[9]
        cs = [context.cast(builder, args[r], signature.args[r], types.float64) for r in range(4)]
        rows = [_pointer(context, builder, Xty, args[4], [(args[5 + r], signature.args[5 + r]),
                                                         (args[9], lo_t)]) for r in range(4)]
        gp = _pointer(context, builder, gty, args[11], [(args[9], lo_t)])
        n = builder.sub(context.cast(builder, args[10], signature.args[10], types.int64),
                        context.cast(builder, args[9], lo_t, types.int64))
        builder.call(_axpy4_function(builder.module), cs + rows + [gp, n])
        return context.get_dummy_value()

    return sig, codegen


def dot4_rows(X, i0, i1, i2, i3, lo, hi, w):
    """(x_r[lo:hi] . w[lo:hi] for the rows r = i0..i3 of X), summed as fgd_dot4_dd does."""
    return tuple(float(X[i, lo:hi] @ w[lo:hi]) for i in (i0, i1, i2, i3))


@overload(dot4_rows, inline="always")
def _ol_dot4_rows(X, i0, i1, i2, i3, lo, hi, w):
    if _is_f64_c(X, 2) and _is_f64_c(w, 1):
        def impl(X, i0, i1, i2, i3, lo, hi, w):
            return _dot4_ir(X, i0, i1, i2, i3, lo, hi, w)
        return impl

    def impl(X, i0, i1, i2, i3, lo, hi, w):
        th = w[lo:hi]  # (loops from a nonzero start were not vectorised: 3x slower)
        x0 = X[i0, lo:hi]
        x1 = X[i1, lo:hi]
        x2 = X[i2, lo:hi]
        x3 = X[i3, lo:hi]
        s0 = zero_of(w)
        s1 = zero_of(w)
        s2 = zero_of(w)
        s3 = zero_of(w)
        for j in range(hi - lo):
            tj = th[j]
            s0 += x0[j] * tj
            s1 += x1[j] * tj
            s2 += x2[j] * tj
            s3 += x3[j] * tj
        return s0, s1, s2, s3
    return impl


def axpy4_rows(c0, c1, c2, c3, X, i0, i1, i2, i3, lo, hi, g):
    """g[lo:hi] += (c0 x_i0 + c1 x_i1) + (c2 x_i2 + c3 x_i3) over the features [lo, hi)."""
    for j in range(lo, hi):
        g[j] += (c0 * X[i0, j] + c1 * X[i1, j]) + (c2 * X[i2, j] + c3 * X[i3, j])


@overload(axpy4_rows, inline="always")
def _ol_axpy4_rows(c0, c1, c2, c3, X, i0, i1, i2, i3, lo, hi, g):
    if _is_f64_c(X, 2) and _is_f64_c(g, 1):
        def impl(c0, c1, c2, c3, X, i0, i1, i2, i3, lo, hi, g):
            _axpy4_ir(c0, c1, c2, c3, X, i0, i1, i2, i3, lo, hi, g)
        return impl

    def impl(c0, c1, c2, c3, X, i0, i1, i2, i3, lo, hi, g):
        x0 = X[i0, lo:hi]
        x1 = X[i1, lo:hi]
        x2 = X[i2, lo:hi]
        x3 = X[i3, lo:hi]
        gs = g[lo:hi]
        for j in range(hi - lo):
            gs[j] += (x0[j] * c0 + x1[j] * c1) + (x2[j] * c2 + x3[j] * c3)
    return impl
