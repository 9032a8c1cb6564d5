/* fgd_rules_t.h: the rule loops of fgd_rules.h for one type, FGD_T (with FGD_SQRT
 * and FGD_NAME); included once per type by fgd_rules.h, not on its own. */

/* Adam / AdamW over n parameters: m, v (and vmax with amsgrad) updated, then
 * theta = theta decay - step_size m / (sqrt(v) / bias2_sqrt + eps).  decay is
 * AdamW's 1 - lr wd, or exactly 1 (w * 1 == w).  Once bias2_sqrt is exactly 1
 * (from step 38,200 on at beta2 = 0.999), sqrt(v) / 1 is sqrt(v): the same bits
 * with one division a parameter instead of two. */
FGD_RULE void FGD_NAME(fgd_adam_core)(FGD_T *theta, const FGD_T *g, FGD_T *m, FGD_T *v,
                                      FGD_T *vmax, ptrdiff_t n, FGD_T step_size, FGD_T b1,
                                      FGD_T c1, FGD_T b2, FGD_T c2, FGD_T bias2_sqrt,
                                      FGD_T eps, FGD_T decay, int amsgrad)
{
    FGD_EXACT_BODY
    ptrdiff_t j;
    FGD_T mm, vv, vm;
    if (amsgrad) {
        for (j = 0; j < n; j++) {
            mm = b1 * m[j] + c1 * g[j];
            vv = b2 * v[j] + c2 * g[j] * g[j];
            m[j] = mm;
            v[j] = vv;
            vm = vmax[j];
            vm = ((vv > vm) | (vv != vv)) ? vv : vm;  /* torch.maximum: a NaN in either wins */
            vmax[j] = vm;
            theta[j] = theta[j] * decay - step_size * (mm / (FGD_SQRT(vm) / bias2_sqrt + eps));
        }
    } else if (bias2_sqrt == 1) {
        for (j = 0; j < n; j++) {
            mm = b1 * m[j] + c1 * g[j];
            vv = b2 * v[j] + c2 * g[j] * g[j];
            m[j] = mm;
            v[j] = vv;
            theta[j] = theta[j] * decay - step_size * (mm / (FGD_SQRT(vv) + eps));
        }
    } else {
        for (j = 0; j < n; j++) {
            mm = b1 * m[j] + c1 * g[j];
            vv = b2 * v[j] + c2 * g[j] * g[j];
            m[j] = mm;
            v[j] = vv;
            theta[j] = theta[j] * decay - step_size * (mm / (FGD_SQRT(vv) / bias2_sqrt + eps));
        }
    }
}

/* Adagrad: acc += g^2, theta -= clr g / (sqrt(acc) + eps). */
FGD_RULE void FGD_NAME(fgd_adagrad_core)(FGD_T *theta, const FGD_T *g, FGD_T *acc,
                                         ptrdiff_t n, FGD_T clr, FGD_T eps)
{
    FGD_EXACT_BODY
    ptrdiff_t j;
    FGD_T a;
    for (j = 0; j < n; j++) {
        a = acc[j] + g[j] * g[j];
        acc[j] = a;
        theta[j] = theta[j] - clr * (g[j] / (FGD_SQRT(a) + eps));
    }
}

/* RMSprop: square_avg = al square_avg + c g^2 (c = 1 - al), centered subtracts the
 * running mean gradient's square, momentum keeps buf = mom buf + g / avg; one loop
 * per case (a store under a flag kept the loop scalar). */
FGD_RULE void FGD_NAME(fgd_rmsprop_core)(FGD_T *theta, const FGD_T *g, FGD_T *square_avg,
                                         FGD_T *buf, FGD_T *grad_avg, ptrdiff_t n, FGD_T lr,
                                         FGD_T al, FGD_T c, FGD_T eps, FGD_T mom,
                                         int has_mom, int centered)
{
    FGD_EXACT_BODY
    ptrdiff_t j;
    FGD_T sa, ga, b;
    if (centered && has_mom) {
        for (j = 0; j < n; j++) {
            sa = al * square_avg[j] + c * g[j] * g[j];
            square_avg[j] = sa;
            ga = al * grad_avg[j] + c * g[j];
            grad_avg[j] = ga;
            b = mom * buf[j] + g[j] / (FGD_SQRT(sa - ga * ga) + eps);
            buf[j] = b;
            theta[j] = theta[j] - lr * b;
        }
    } else if (centered) {
        for (j = 0; j < n; j++) {
            sa = al * square_avg[j] + c * g[j] * g[j];
            square_avg[j] = sa;
            ga = al * grad_avg[j] + c * g[j];
            grad_avg[j] = ga;
            theta[j] = theta[j] - lr * (g[j] / (FGD_SQRT(sa - ga * ga) + eps));
        }
    } else if (has_mom) {
        for (j = 0; j < n; j++) {
            sa = al * square_avg[j] + c * g[j] * g[j];
            square_avg[j] = sa;
            b = mom * buf[j] + g[j] / (FGD_SQRT(sa) + eps);
            buf[j] = b;
            theta[j] = theta[j] - lr * b;
        }
    } else {
        for (j = 0; j < n; j++) {
            sa = al * square_avg[j] + c * g[j] * g[j];
            square_avg[j] = sa;
            theta[j] = theta[j] - lr * (g[j] / (FGD_SQRT(sa) + eps));
        }
    }
}
