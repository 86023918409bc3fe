# The users' solve: ridge regression per row, directly for light rows and by conjugate
# gradient for the others (``fold_in``), with its helpers. Included by ``_sgd.pyx``, whose
# imports and row helpers it uses.

cdef enum:
    # rows of at most this many ratings (and no more than the unknowns) are solved
    # directly (see _solve_row), heavier ones by conjugate gradient: LIGHT_MAX from a
    # start near the answer (fit), COLD_LIGHT_MAX from zeros (transform, score)
    LIGHT_MAX = 16
    COLD_LIGHT_MAX = 32


cdef inline floating _times_design(const int* cols, int n_values,
                                   const floating* item_factors, int k, bint biased,
                                   const floating* v, floating* out) noexcept nogil:
    """out += A'A v, with A the row's design (its item factors, and a 1 for the bias
    when ``biased``); returns v'A'Av.

    Four ratings at a time: each value of ``v`` and ``out`` is then loaded once for four
    item rows, not once per row (the loops are bound by loads, not arithmetic).
    """
    cdef int j = 0, f
    cdef floating t[4]
    cdef floating t0, total = 0
    cdef const floating* q0
    cdef const floating* q1
    cdef const floating* q2
    cdef const floating* q3
    while j + 4 <= n_values:
        q0 = item_factors + <Py_ssize_t> cols[j] * k
        q1 = item_factors + <Py_ssize_t> cols[j + 1] * k
        q2 = item_factors + <Py_ssize_t> cols[j + 2] * k
        q3 = item_factors + <Py_ssize_t> cols[j + 3] * k
        _dot4(q0, q1, q2, q3, v, k, t)
        if biased:
            for f in range(4):
                t[f] += v[k]
            out[k] += t[0] + t[1] + t[2] + t[3]
        for f in range(k):
            out[f] += t[0] * q0[f] + t[1] * q1[f] + t[2] * q2[f] + t[3] * q3[f]
        total += t[0] * t[0] + t[1] * t[1] + t[2] * t[2] + t[3] * t[3]
        j += 4
    while j < n_values:
        q0 = item_factors + <Py_ssize_t> cols[j] * k
        t0 = _dot(q0, v, k)
        if biased:
            t0 = t0 + v[k]
            out[k] += t0
        for f in range(k):
            out[f] += t0 * q0[f]
        total += t0 * t0
        j += 1
    return total


cdef inline floating _target(const int* cols, const floating* values, int j,
                             const floating* item_bias, floating global_mean, bint biased,
                             double inverse) noexcept nogil:
    """Rating ``j`` of a row, less the global mean and its item's bias when ``biased``,
    times ``inverse``."""
    cdef double y = values[j]
    if biased:
        y = y - global_mean - item_bias[cols[j]]
    return <floating> (y * inverse)


cdef inline void _first_residual(const int* cols, const floating* values, int n_values,
                                 const floating* item_factors, const floating* item_bias,
                                 int k, floating global_mean, bint biased, double inverse,
                                 const floating* x, floating* r, floating* aty,
                                 floating* d) noexcept nogil:
    """r = A'(y - Ax), aty = A'y and d = the diagonal of A'A, for the row's targets y
    (see ``_target``); four ratings at a time, as ``_times_design``."""
    cdef int j = 0, f, dim = k + biased
    cdef floating t[4]
    cdef floating y0, y1, y2, y3, e0, e1, e2, e3
    cdef const floating* q0
    cdef const floating* q1
    cdef const floating* q2
    cdef const floating* q3
    memset(r, 0, dim * sizeof(floating))
    memset(aty, 0, dim * sizeof(floating))
    memset(d, 0, dim * sizeof(floating))
    while j + 4 <= n_values:
        q0 = item_factors + <Py_ssize_t> cols[j] * k
        q1 = item_factors + <Py_ssize_t> cols[j + 1] * k
        q2 = item_factors + <Py_ssize_t> cols[j + 2] * k
        q3 = item_factors + <Py_ssize_t> cols[j + 3] * k
        _dot4(q0, q1, q2, q3, x, k, t)
        y0 = _target(cols, values, j, item_bias, global_mean, biased, inverse)
        y1 = _target(cols, values, j + 1, item_bias, global_mean, biased, inverse)
        y2 = _target(cols, values, j + 2, item_bias, global_mean, biased, inverse)
        y3 = _target(cols, values, j + 3, item_bias, global_mean, biased, inverse)
        e0, e1, e2, e3 = y0 - t[0], y1 - t[1], y2 - t[2], y3 - t[3]
        if biased:
            e0, e1, e2, e3 = e0 - x[k], e1 - x[k], e2 - x[k], e3 - x[k]
            r[k] += e0 + e1 + e2 + e3
            aty[k] += y0 + y1 + y2 + y3
            d[k] += 4
        for f in range(k):
            r[f] += e0 * q0[f] + e1 * q1[f] + e2 * q2[f] + e3 * q3[f]
            aty[f] += y0 * q0[f] + y1 * q1[f] + y2 * q2[f] + y3 * q3[f]
            d[f] += q0[f] * q0[f] + q1[f] * q1[f] + q2[f] * q2[f] + q3[f] * q3[f]
        j += 4
    while j < n_values:
        q0 = item_factors + <Py_ssize_t> cols[j] * k
        y0 = _target(cols, values, j, item_bias, global_mean, biased, inverse)
        e0 = y0 - _dot(q0, x, k)
        if biased:
            e0 = e0 - x[k]
            r[k] += e0
            aty[k] += y0
            d[k] += 1
        for f in range(k):
            r[f] += e0 * q0[f]
            aty[f] += y0 * q0[f]
            d[f] += q0[f] * q0[f]
        j += 1


cdef inline double _sum_sq(const floating* v, int n) noexcept nogil:
    """v.v in double: the squared norms of a solve must not overflow in float32."""
    cdef double total = 0
    cdef int f
    for f in range(n):
        total += <double> v[f] * v[f]
    return total


cdef inline double _sum_scaled(const floating* v, const floating* d, int n) noexcept nogil:
    """v.(d * v) in double."""
    cdef double total = 0
    cdef int f
    for f in range(n):
        total += <double> v[f] * d[f] * v[f]
    return total


cdef inline bint _finite(double value) noexcept nogil:
    return -1.7e308 < value < 1.7e308


cdef inline const floating* _item_row(const floating* item_factors, const int* cols, int j,
                                      int k) noexcept nogil:
    """The factors of the row's ``j``-th item."""
    return item_factors + <Py_ssize_t> cols[j] * k


cdef int _solve_light(const int* cols, const floating* values, int n_values,
                      const floating* item_factors, const floating* item_bias, int k,
                      floating global_mean, floating penalty, bint biased,
                      floating* x) noexcept nogil:
    """One light row's ridge problem (A'A + penalty I) x = A'y, solved exactly in its
    dual form x = A'c, (AA' + penalty I) c = y: a Cholesky factorisation U'U of an
    ``n_values`` x ``n_values`` system (at most ``COLD_LIGHT_MAX``), in double. Returns 0,
    -1 if the arithmetic overflowed, or 1 if AA' + penalty I is singular (penalty 0), for
    conjugate gradient to solve instead.

    U is kept in the upper triangle of ``g``, a row at a time, and factorised column by
    column (each step subtracts its row from the rows after it), so that the inner loops
    run along rows instead of each waiting for the last sum. At k = 100 this is faster
    than conjugate gradient up to 16 ratings from a start near the answer, and up to 32
    from zeros (far faster, and more precise, under a small penalty); beyond, slower
    (benchmarks/README.md).
    """
    cdef double g[COLD_LIGHT_MAX * COLD_LIGHT_MAX]
    cdef double c[COLD_LIGHT_MAX]
    cdef double diagonal[COLD_LIGHT_MAX]
    cdef int n = n_values  # the rows of g
    cdef double total, root, weight
    cdef floating t[4]
    cdef int i, j, m, f
    cdef const floating* q
    for i in range(n_values):
        q = _item_row(item_factors, cols, i, k)
        j = 0
        while j + 4 <= i + 1:
            _dot4(_item_row(item_factors, cols, j, k), _item_row(item_factors, cols, j + 1, k),
                  _item_row(item_factors, cols, j + 2, k),
                  _item_row(item_factors, cols, j + 3, k), q, k, t)
            for m in range(4):
                g[(j + m) * n + i] = t[m] + biased
            j += 4
        while j <= i:
            g[j * n + i] = _dot(_item_row(item_factors, cols, j, k), q, k) + biased
            j += 1
        g[i * n + i] += penalty
        diagonal[i] = g[i * n + i]
        c[i] = values[i]
        if biased:
            c[i] = c[i] - global_mean - item_bias[cols[i]]
    for j in range(n_values):
        total = g[j * n + j]
        if not _finite(total):
            return -1
        if not total > 1e-10 * diagonal[j]:
            return 1  # singular to rounding
        root = sqrt(total)
        g[j * n + j] = root
        for i in range(j + 1, n_values):
            g[j * n + i] /= root
        for m in range(j + 1, n_values):
            weight = g[j * n + m]
            for i in range(m, n_values):
                g[m * n + i] -= weight * g[j * n + i]
    # c = U^-1 U'^-1 c
    for m in range(n_values):
        c[m] /= g[m * n + m]
        for i in range(m + 1, n_values):
            c[i] -= g[m * n + i] * c[m]
    for i in range(n_values - 1, -1, -1):
        c[i] /= g[i * n + i]
        for m in range(i):
            c[m] -= g[m * n + i] * c[i]
    total = 0
    for i in range(n_values):
        total += c[i]
    if not _finite(total):
        return -1
    if biased:
        x[k] = <floating> total
    memset(x, 0, k * sizeof(floating))
    for i in range(n_values):
        q = _item_row(item_factors, cols, i, k)
        weight = c[i]
        for f in range(k):
            x[f] += <floating> weight * q[f]
    return 0


cdef int _conjugate_gradient(const int* cols, const floating* values, int n_values,
                             const floating* item_factors, const floating* item_bias,
                             int k, floating global_mean, floating penalty, bint biased,
                             int max_steps, double tol, floating* x, floating* r,
                             floating* p, floating* ap, floating* d) noexcept nogil:
    """Conjugate gradient on one row's ridge problem (A'A + penalty I) x = A'y, from the
    ``x`` given; returns the steps taken, or -1 if the arithmetic overflowed.

    Preconditioned by the diagonal of A'A + penalty I, kept in ``d`` (Jacobi: the item
    factors' components differ in scale; a fifth to a quarter fewer steps at 10M
    ratings).

    Stops once the residual is under ``tol`` times A'y or after ``max_steps``; in exact
    arithmetic it ends in at most ``dim`` steps. The row is solved for y / max|y| (the
    answer scales with y), so that huge ratings cannot overflow the sums.
    """
    cdef int dim = k + biased
    cdef int j, f, step = 0
    cdef floating step_size, ratio
    cdef double y, scale = 0, inverse, rr, rz, rz_new, pap, threshold
    for j in range(n_values):
        y = values[j]
        if biased:
            y = y - global_mean - item_bias[cols[j]]
        scale = max(scale, -y, y)
    if not scale > 0:
        memset(x, 0, dim * sizeof(floating))
        return 0 if scale == 0 else -1
    inverse = 1 / scale
    for f in range(dim):
        x[f] = <floating> (x[f] * inverse)
    # r = A'(y - Ax) - penalty x, and A'y (in ap) for the tolerance, in one pass
    _first_residual(cols, values, n_values, item_factors, item_bias, k, global_mean,
                    biased, inverse, x, r, ap, d)
    for f in range(dim):
        r[f] -= penalty * x[f]
        if d[f] + penalty > 0:
            d[f] = 1 / (d[f] + penalty)
        else:
            d[f] = 1
        p[f] = d[f] * r[f]
    threshold = tol * tol * _sum_sq(ap, dim)
    rr = _sum_sq(r, dim)
    rz = _sum_scaled(r, d, dim)
    while step < max_steps and rr > threshold:
        for f in range(dim):
            ap[f] = penalty * p[f]
        pap = _times_design(cols, n_values, item_factors, k, biased, p, ap)
        pap = pap + penalty * _sum_sq(p, dim)
        if not _finite(pap):
            return -1  # the item factors are too large for this precision
        if not pap > 0:
            break  # p is 0 to rounding
        step_size = <floating> (rz / pap)
        for f in range(dim):
            x[f] += step_size * p[f]
            r[f] -= step_size * ap[f]
        rr = _sum_sq(r, dim)
        rz_new = _sum_scaled(r, d, dim)
        ratio = <floating> (rz_new / rz)
        for f in range(dim):
            p[f] = d[f] * r[f] + ratio * p[f]
        rz = rz_new
        step += 1
    if not _finite(rr):
        return -1
    for f in range(dim):
        x[f] = <floating> (x[f] * scale)
    return step


cdef int _solve_row(const int* cols, const floating* values, int n_values,
                    const floating* item_factors, const floating* item_bias, int k,
                    floating global_mean, floating penalty, bint biased, int max_steps,
                    double tol, int light_max, floating* scratch) noexcept nogil:
    """One row's answer into ``scratch`` (which holds its start): directly when light,
    else by conjugate gradient. Returns the steps taken, or -1 if the arithmetic or the
    answer overflowed.

    Light means at most ``light_max`` ratings and no more than the unknowns: with more,
    AA' is singular and only the penalty holds the dual system up, so that a small
    penalty leaves its float32 Gram matrix too ill-conditioned (relative errors up to
    1e-2 at alpha = 1e-5, against 1e-6 by conjugate gradient; tests/test_sgd.py).
    """
    cdef int f, dim = k + biased, step = 1
    if n_values <= light_max and n_values <= dim:
        step = _solve_light(cols, values, n_values, item_factors, item_bias, k, global_mean,
                            penalty, biased, scratch)
    if step > 0:
        step = _conjugate_gradient(cols, values, n_values, item_factors, item_bias, k,
                                   global_mean, penalty, biased, max_steps, tol, scratch,
                                   scratch + dim, scratch + 2 * dim, scratch + 3 * dim,
                                   scratch + 4 * dim)
    for f in range(dim):
        if not _finite(scratch[f]):
            return -1
    return step


def fold_in(const int64[::1] indptr, const int[::1] indices, const floating[::1] data,
            const floating[:, ::1] item_factors, const floating[::1] item_bias,
            double global_mean, double alpha, double beta, bint biased,
            int max_steps, double tol, int n_threads,
            const floating[:, ::1] start_factors, const floating[::1] start_bias,
            floating[:, ::1] user_factors, floating[::1] user_bias):
    """Regularised least-squares user factors (and biases) for CSR rows, written into
    ``user_factors`` and ``user_bias``, a row per CSR row.

    Row ``u`` with ``n_u`` ratings is penalised by ``alpha * n_u + beta``; item factors
    and biases are held fixed. Rows of at most ``LIGHT_MAX`` ratings (``COLD_LIGHT_MAX``
    without a start), and no more than the unknowns, are solved exactly
    (``_solve_light``, see ``_solve_row``). The others run conjugate gradient from row
    ``u`` of ``start_factors`` and ``start_bias`` (from zeros when those are empty) until
    the residual is under ``tol`` times their A'y, or for ``max_steps`` steps. The start
    may be the answer's own arrays: each row is read before it is written. Rows without
    ratings get zeros. Returns ``(steps, failures, no_memory)``: the steps taken in all,
    the number of rows whose arithmetic or answer overflowed, and the number of rows
    left unsolved (zeros) because scratch memory could not be allocated.
    """
    cdef int k = item_factors.shape[1]
    cdef int dim = k + biased
    cdef Py_ssize_t row, f, n_rows = user_factors.shape[0]
    cdef int64 steps = 0
    cdef int n_values, step, failures = 0, no_memory = 0
    cdef bint warm = start_factors.shape[0] > 0
    cdef int light_max = LIGHT_MAX if warm else COLD_LIGHT_MAX
    cdef floating mu = global_mean
    cdef floating reg = alpha
    cdef floating prior = beta
    # per-thread scratch, allocated inside the parallel block: x, r, p, A'Ap and the
    # preconditioner
    cdef floating* scratch = NULL
    with nogil, parallel(num_threads=n_threads):
        scratch = <floating*> malloc(<size_t> 5 * dim * sizeof(floating))
        for row in prange(n_rows, schedule="dynamic", chunksize=64):
            n_values = <int> (indptr[row + 1] - indptr[row])
            if n_values > 0 and scratch == NULL:
                no_memory += 1
            if n_values == 0 or scratch == NULL:
                for f in range(k):
                    user_factors[row, f] = 0
                user_bias[row] = 0
                continue
            for f in range(k):
                scratch[f] = start_factors[row, f] if warm else 0
            if biased:
                scratch[k] = start_bias[row] if warm else 0
            step = _solve_row(&indices[indptr[row]], &data[indptr[row]], n_values,
                              &item_factors[0, 0], &item_bias[0], k, mu,
                              reg * n_values + prior, biased, max_steps, tol, light_max,
                              scratch)
            if step < 0:
                failures += 1
            else:
                steps += step
            for f in range(k):
                user_factors[row, f] = scratch[f]
            user_bias[row] = scratch[k] if biased else 0
        free(scratch)
    return steps, failures, no_memory


def permute_rows(floating[:, ::1] factors, floating[::1] bias, const int[::1] source):
    """Reorder the rows of ``factors`` and ``bias`` in place: row ``u`` becomes the former
    row ``source[u]`` (``source`` a permutation), following its cycles with one spare row,
    so that no second copy of the factors is made."""
    cdef Py_ssize_t n = factors.shape[0], k = factors.shape[1], first, u, s
    cdef floating spare_bias
    cdef bint broken = False
    cdef floating* spare = <floating*> malloc(max(k, 1) * sizeof(floating))
    cdef unsigned char* done = <unsigned char*> calloc(max(n, 1), 1)
    if spare == NULL or done == NULL:
        free(spare)
        free(done)
        raise MemoryError("no memory to reorder the users' factors")
    for u in range(n):
        if not 0 <= source[u] < n:
            free(spare)
            free(done)
            raise ValueError(f"source[{u}] = {source[u]} is not a row of {n}.")
    with nogil:
        for first in range(n):
            if done[first]:
                continue
            memcpy(spare, &factors[first, 0], k * sizeof(floating))
            spare_bias = bias[first]
            u = first
            while True:
                done[u] = 1
                s = source[u]
                if s != first and done[s]:
                    broken = True  # a row twice in source: not a permutation
                    break
                if s == first:
                    memcpy(&factors[u, 0], spare, k * sizeof(floating))
                    bias[u] = spare_bias
                    break
                memcpy(&factors[u, 0], &factors[s, 0], k * sizeof(floating))
                bias[u] = bias[s]
                u = s
            if broken:
                break
    free(spare)
    free(done)
    if broken:
        raise ValueError("source is not a permutation: the rows are left mixed up.")
