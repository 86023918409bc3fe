# cython: language_level=3
"""Compiled loops of funksgd.

One ``def`` per loop. Every function trusts its arguments: the Python side
(``funksgd._funk_svd`` and ``funksgd._blocks``) checks shapes, dtypes and index
ranges before calling, and passes C-contiguous arrays. Factors are updated in
place; at most a scalar is returned.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport NAN, isfinite, sqrt, sqrtf
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

ctypedef long long int64

cdef enum:
    # SGD prefetches the factor rows of the rating this many ratings ahead: enough to
    # hide a memory access behind the updates in between, little enough to stay in L1.
    AHEAD = 4
    # group_by_block asks for the ratings of the row this many rows ahead
    ROWS_AHEAD = 16
    # fewest ratings of a stratum per thread (about a millisecond of work)
    MIN_RATINGS_PER_THREAD = 20000


cdef extern from *:
    """
    #ifdef _OPENMP
    #define FUNKSGD_OPENMP 1
    #else
    #define FUNKSGD_OPENMP 0
    #endif
    """
    bint FUNKSGD_OPENMP


cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define FUNKSGD_PREFETCH(address) __builtin_prefetch((address), 1, 3)
    #else
    #define FUNKSGD_PREFETCH(address) ((void) 0)
    #endif
    """
    void FUNKSGD_PREFETCH(const void* address) noexcept nogil


cdef extern from *:
    """
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    static int funksgd_cpu_has_avx2_fma(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    #else
    static int funksgd_cpu_has_avx2_fma(void) { return 0; }
    #endif
    """
    bint funksgd_cpu_has_avx2_fma() noexcept nogil


def openmp_enabled():
    """Return True if the kernel was compiled with OpenMP (``n_jobs`` > 1 can run)."""
    return FUNKSGD_OPENMP


def cpu_has_avx2_fma():
    """Return True if this CPU (and OS) can run the AVX2 + FMA build of these loops."""
    return funksgd_cpu_has_avx2_fma()


cdef extern from "_rows.h":
    float funksgd_s_dot(const float* p, const float* q, Py_ssize_t k) noexcept nogil
    double funksgd_d_dot(const double* p, const double* q, Py_ssize_t k) noexcept nogil
    float funksgd_s_update_dot(float* p, float* q, const float* r, Py_ssize_t k,
                               float ap, float bp, float aq, float bq) noexcept nogil
    double funksgd_d_update_dot(double* p, double* q, const double* r, Py_ssize_t k,
                                double ap, double bp, double aq, double bq) noexcept nogil
    void funksgd_s_dot4(const float* q0, const float* q1, const float* q2, const float* q3,
                        const float* v, Py_ssize_t k, float* out) noexcept nogil
    void funksgd_d_dot4(const double* q0, const double* q1, const double* q2,
                        const double* q3, const double* v, Py_ssize_t k,
                        double* out) noexcept nogil


cdef inline floating _dot(const floating* p, const floating* q, Py_ssize_t k) noexcept nogil:
    """p.q, summed in a fixed order (results do not depend on the thread count)."""
    if floating is float:
        return funksgd_s_dot(p, q, k)
    else:
        return funksgd_d_dot(p, q, k)


cdef inline void _dot4(const floating* q0, const floating* q1, const floating* q2,
                       const floating* q3, const floating* v, Py_ssize_t k,
                       floating* out) noexcept nogil:
    """out[j] = qj.v for j = 0..3, each value of v loaded once for the four rows."""
    if floating is float:
        funksgd_s_dot4(q0, q1, q2, q3, v, k, out)
    else:
        funksgd_d_dot4(q0, q1, q2, q3, v, k, out)


cdef inline floating _update_dot(floating* p, floating* q, const floating* r, Py_ssize_t k,
                                 floating ap, floating bp, floating aq,
                                 floating bq) noexcept nogil:
    """p, q = ap * p + bp * q, aq * q + bq * p; returns the new p.r (0 if r is NULL)."""
    if floating is float:
        return funksgd_s_update_dot(p, q, r, k, ap, bp, aq, bq)
    else:
        return funksgd_d_update_dot(p, q, r, k, ap, bp, aq, bq)


cdef inline void _prefetch_row(const floating* row, Py_ssize_t k) noexcept nogil:
    """Ask for the cache lines of a row of ``k`` values before they are needed."""
    cdef Py_ssize_t f = 0
    while f < k:
        FUNKSGD_PREFETCH(row + f)
        f += 64 // sizeof(floating)


cdef inline floating _sqrt(floating x) noexcept nogil:
    """Square root in the precision of ``x`` (libc's ``sqrt`` is a double one)."""
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating _error(floating rating, floating dot, const floating* user_bias,
                            const floating* item_bias, int u, int i, floating global_mean,
                            bint biased) noexcept nogil:
    """The rating's error: ``rating - dot``, less the global mean and biases when ``biased``."""
    cdef floating err = rating - dot
    if biased:
        err = err - (global_mean + user_bias[u] + item_bias[i])
    return err


cdef inline void _step_biases(floating* user_bias, floating* item_bias, int u, int i,
                              floating err, floating eta_u, floating eta_i,
                              floating alpha) noexcept nogil:
    """One SGD step of the two biases of a rating with error ``err``."""
    user_bias[u] += eta_u * (err - alpha * user_bias[u])
    item_bias[i] += eta_i * (err - alpha * item_bias[i])


cdef int _useful_threads(int n_threads, const int64[::1] block_ptr, Py_ssize_t n_strata):
    """Threads worth waking: a stratum needs enough ratings to share (the result of an
    epoch is the same for any number of threads)."""
    cdef int64 per_stratum = block_ptr[block_ptr.shape[0] - 1] // n_strata
    return max(1, min(n_threads, per_stratum // MIN_RATINGS_PER_THREAD))


cdef double _sgd_block(const int* users, const int* items, const floating* ratings,
                       int64 start, int64 end,
                       floating* user_factors, floating* item_factors,
                       floating* user_bias, floating* item_bias,
                       floating* user_grad_sq, floating* item_grad_sq,
                       floating* user_norm, floating* item_norm, Py_ssize_t k,
                       floating global_mean, floating eta0, floating alpha,
                       bint biased, bint per_row, double loss=0) noexcept nogil:
    """Koren's simultaneous update over ratings[start:end]; returns ``loss`` plus their
    squared error (summed in turn).

    With ``per_row``, the rates are AdaGrad's, one per user row and per item row
    (LIBMF's): ``eta0 / sqrt(grad_sq)``, from the squared gradients accumulated
    before this rating, and ``user_norm``/``item_norm`` hold each row's p.p, kept
    up to date here; else the rate is ``eta0``.
    """
    cdef int64 n
    cdef int u, i
    cdef floating err, pq, pp, qq, ap, bp, aq, bq, eta_u = eta0, eta_i = eta0
    cdef floating* p
    cdef floating* q
    cdef floating* next_q
    cdef bint known = False  # pq of rating n came with the last update
    # constants in the factors' precision (Cython writes a literal 1 or 2 as a double,
    # which would turn the arithmetic on the chain between ratings into double)
    cdef floating one = 1, inv_k = one / k, two_alpha = alpha + alpha, alpha_sq = alpha * alpha
    for n in range(start, end):
        if n + AHEAD < end:
            _prefetch_row(user_factors + <Py_ssize_t> users[n + AHEAD] * k, k)
            _prefetch_row(item_factors + <Py_ssize_t> items[n + AHEAD] * k, k)
        u = users[n]
        i = items[n]
        p = user_factors + <Py_ssize_t> u * k
        q = item_factors + <Py_ssize_t> i * k
        if not known:
            pq = _dot(p, q, k)
        err = _error(ratings[n], pq, user_bias, item_bias, u, i, global_mean, biased)
        loss += <double> err * err
        if per_row:
            eta_u = eta0 / _sqrt(user_grad_sq[u])
            eta_i = eta0 / _sqrt(item_grad_sq[i])
        if biased:
            _step_biases(user_bias, item_bias, u, i, err, eta_u, eta_i, alpha)
        # p += eta_u * (err * q - alpha * p), likewise q: the rates are folded into the
        # error and the decay once per rating, then used for all k updates
        ap = one - eta_u * alpha
        bp = eta_u * err
        aq = one - eta_i * alpha
        bq = eta_i * err
        if per_row:
            # one accumulator per row: the mean squared gradient of its factors,
            # |err q - alpha p|^2, and the rows' new p.p, all from p.q, p.p and q.q: no
            # pass over the rows. The bias shares the row's rate but not the sum: its
            # large early gradients would otherwise shrink the rate before the small
            # initial factors have grown.
            pp = user_norm[u]
            qq = item_norm[i]
            user_grad_sq[u] += max(err * (err * qq - two_alpha * pq) + alpha_sq * pp, 0) * inv_k
            item_grad_sq[i] += max(err * (err * pp - two_alpha * pq) + alpha_sq * qq, 0) * inv_k
            user_norm[u] = max(ap * (ap * pp + (bp + bp) * pq) + bp * bp * qq, 0)
            item_norm[i] = max(aq * (aq * qq + (bq + bq) * pq) + bq * bq * pp, 0)
        # ratings come grouped by user: when the next one has this user too, its p.q
        # comes from the update's pass over p
        known = n + 1 < end and users[n + 1] == u
        next_q = item_factors + <Py_ssize_t> items[n + 1] * k if known else NULL
        pq = _update_dot(p, q, next_q, k, ap, bp, aq, bq)
    return loss


cdef double _funk_block(const int* users, const int* items, const floating* ratings,
                        const floating* cache, int64 start, int64 end,
                        floating* user_factors, floating* item_factors,
                        floating* user_bias, floating* item_bias,
                        floating* user_grad_sq, floating* item_grad_sq,
                        Py_ssize_t k, Py_ssize_t factor, floating global_mean,
                        floating eta0, floating alpha, bint biased, bint train_biases,
                        bint per_row) noexcept nogil:
    """Funk's update of one factor over ratings[start:end]; returns their squared error."""
    cdef double loss = 0
    cdef int64 n
    cdef int u, i
    cdef floating err, eta_u = eta0, eta_i = eta0, gp, gq, pf, qf
    cdef floating* p
    cdef floating* q
    for n in range(start, end):
        u = users[n]
        i = items[n]
        p = user_factors + <Py_ssize_t> u * k + factor
        q = item_factors + <Py_ssize_t> i * k + factor
        pf = p[0]
        qf = q[0]
        # the earlier factors are frozen: their part of the prediction comes from the cache
        err = _error(ratings[n] - cache[n], pf * qf, user_bias, item_bias, u, i, global_mean,
                     biased)
        loss += <double> err * err
        if per_row:
            eta_u = eta0 / _sqrt(user_grad_sq[u])
            eta_i = eta0 / _sqrt(item_grad_sq[i])
        if biased and train_biases:
            _step_biases(user_bias, item_bias, u, i, err, eta_u, eta_i, alpha)
        gp = err * qf - alpha * pf
        gq = err * pf - alpha * qf
        p[0] = pf + eta_u * gp
        q[0] = qf + eta_i * gq
        if per_row:
            user_grad_sq[u] += gp * gp
            item_grad_sq[i] += gq * gq
    return loss


cdef double _strata(const int[::1] users, const int[::1] items, const floating[::1] ratings,
                    const int64[::1] block_ptr, const int[:, ::1] schedule,
                    floating[:, ::1] user_factors, floating[:, ::1] item_factors,
                    floating[::1] user_bias, floating[::1] item_bias,
                    floating* user_grad_sq, floating* item_grad_sq,
                    floating* user_norm, floating* item_norm,
                    floating global_mean, floating eta0, floating alpha, bint biased,
                    bint per_row, int n_threads, double[::1] block_loss,
                    const floating* cache=NULL, Py_ssize_t factor=0,
                    bint train_biases=False) noexcept nogil:
    """The strata of an epoch in turn, each stratum's blocks shared out among threads.

    With a ``cache``, the blocks run Funk's update of column ``factor`` instead of the
    simultaneous one.
    """
    cdef Py_ssize_t s, j, b, k = user_factors.shape[1]
    cdef int block
    cdef double total = 0
    for s in range(schedule.shape[0]):
        for j in prange(schedule.shape[1], schedule="dynamic", num_threads=n_threads):
            block = schedule[s, j]
            if cache != NULL:
                block_loss[block] = _funk_block(
                    &users[0], &items[0], &ratings[0], cache, block_ptr[block],
                    block_ptr[block + 1], &user_factors[0, 0], &item_factors[0, 0],
                    &user_bias[0], &item_bias[0], user_grad_sq, item_grad_sq, k, factor,
                    global_mean, eta0, alpha, biased, train_biases, per_row)
            else:
                block_loss[block] = _sgd_block(
                    &users[0], &items[0], &ratings[0], block_ptr[block], block_ptr[block + 1],
                    &user_factors[0, 0], &item_factors[0, 0], &user_bias[0], &item_bias[0],
                    user_grad_sq, item_grad_sq, user_norm, item_norm, k, global_mean, eta0,
                    alpha, biased, per_row)
    for b in range(block_loss.shape[0]):
        total += block_loss[b]
    return total


def sgd_epoch(const int[::1] users, const int[::1] items, const floating[::1] ratings,
              const int64[::1] block_ptr, const int[:, ::1] schedule,
              floating[:, ::1] user_factors, floating[:, ::1] item_factors,
              floating[::1] user_bias, floating[::1] item_bias,
              double global_mean, double eta0, double alpha, bint biased,
              int n_threads, double[::1] block_loss):
    """One SGD epoch over ratings grouped in blocks; returns the summed squared error.

    ``block_ptr[b]:block_ptr[b + 1]`` are the ratings of block ``b``. Each row of
    ``schedule`` is a stratum: blocks sharing no user and no item, so threads can
    share them out in any way and the result does not depend on ``n_threads``.
    """
    cdef double total
    n_threads = _useful_threads(n_threads, block_ptr, schedule.shape[0])
    with nogil:
        total = _strata(users, items, ratings, block_ptr, schedule, user_factors,
                        item_factors, user_bias, item_bias, NULL, NULL, NULL, NULL,
                        <floating> global_mean, <floating> eta0, <floating> alpha, biased,
                        False, n_threads, block_loss)
    return total


def adagrad_epoch(const int[::1] users, const int[::1] items, const floating[::1] ratings,
                  const int64[::1] block_ptr, const int[:, ::1] schedule,
                  floating[:, ::1] user_factors, floating[:, ::1] item_factors,
                  floating[::1] user_bias, floating[::1] item_bias,
                  floating[::1] user_grad_sq, floating[::1] item_grad_sq,
                  double global_mean, double eta0, double alpha, bint biased,
                  int n_threads, double[::1] block_loss):
    """One epoch of :func:`sgd_epoch` with per-row AdaGrad rates; returns the squared error.

    The rate of user ``u`` is ``eta0 / sqrt(user_grad_sq[u])`` (likewise for
    items); each update adds the row's mean squared gradient to its accumulator.
    """
    cdef Py_ssize_t r, k = user_factors.shape[1]
    cdef Py_ssize_t n_users = user_factors.shape[0], n_items = item_factors.shape[0]
    cdef double total
    # every row's p.p, which the updates keep up to date
    cdef floating* user_norm = <floating*> malloc(max(n_users, 1) * sizeof(floating))
    cdef floating* item_norm = <floating*> malloc(max(n_items, 1) * sizeof(floating))
    if user_norm == NULL or item_norm == NULL:
        free(user_norm)
        free(item_norm)
        raise MemoryError("no memory for the AdaGrad row norms")
    n_threads = _useful_threads(n_threads, block_ptr, schedule.shape[0])
    with nogil:
        for r in prange(n_users, schedule="static", num_threads=n_threads):
            user_norm[r] = _dot(&user_factors[r, 0], &user_factors[r, 0], k)
        for r in prange(n_items, schedule="static", num_threads=n_threads):
            item_norm[r] = _dot(&item_factors[r, 0], &item_factors[r, 0], k)
        total = _strata(users, items, ratings, block_ptr, schedule, user_factors,
                        item_factors, user_bias, item_bias, &user_grad_sq[0],
                        &item_grad_sq[0], user_norm, item_norm, <floating> global_mean,
                        <floating> eta0, <floating> alpha, biased, True, n_threads,
                        block_loss)
    free(user_norm)
    free(item_norm)
    return total


def copy_rows(const floating[:, ::1] source, floating[:, ::1] out, floating[::1] norms):
    """Copy ``source`` into ``out`` and each row's p.p into ``norms``, in one pass.

    The norms are those :func:`adagrad_epoch` computes (the same sum, in the same
    order), as :func:`sgd_cell` takes them.
    """
    cdef Py_ssize_t r, k = source.shape[1]
    if source.shape[0] == 0 or k == 0:
        return
    with nogil:
        for r in range(source.shape[0]):
            memcpy(&out[r, 0], &source[r, 0], k * sizeof(floating))
            norms[r] = _dot(&source[r, 0], &source[r, 0], k)


def sgd_cell(const int[::1] users, const int[::1] items, const floating[::1] ratings,
             const int64[::1] chunk_ptr, const int[::1] chunk_rows,
             const floating[:, ::1] user_source, floating[:, ::1] user_factors,
             floating[:, ::1] item_factors, floating[::1] user_bias, floating[::1] item_bias,
             floating[::1] user_grad_sq, floating[::1] item_grad_sq, floating[::1] item_norms,
             double global_mean, double eta0, double alpha, bint biased, bint per_row,
             bint check, double loss=0):
    """One SGD pass over a cell, training a copy of the user factors made as it goes.

    ``user_factors`` receives the rows of ``user_source`` (left as it was) a chunk at a
    time, each chunk (contiguous rows, one ``memcpy``) just before its ratings: the
    ratings ``chunk_ptr[c]:chunk_ptr[c + 1]`` touch only the rows
    ``chunk_rows[c]:chunk_rows[c + 1]``, and the chunks cover every row (of all the
    calls, for a cell in segments). So a row comes from memory once, for the copy and
    the updates both. The result is that of
    :func:`adagrad_epoch` (``per_row``; ``item_norms`` as :func:`copy_rows` gives them,
    updated in place) or :func:`sgd_epoch` (the AdaGrad arrays unread, may be None) run
    on a copy of ``user_source`` as one block, bit for bit: a chunk boundary falls
    between two users. Returns ``loss`` plus the squared errors, added in turn (the
    segments of a cell in turn so sum as the whole cell); with ``check``, NaN if a
    trained user row is not finite (or its p.p overflows), checked while the row is in
    cache.
    """
    cdef Py_ssize_t c, r, k = user_factors.shape[1]
    cdef bint finite = True
    cdef floating* user_norm = NULL
    cdef floating* user_sums = NULL
    cdef floating* item_sums = NULL
    cdef floating* item_norm = NULL
    if per_row:
        user_norm = <floating*> malloc(max(user_factors.shape[0], 1) * sizeof(floating))
        if user_norm == NULL:
            raise MemoryError("no memory for the AdaGrad row norms")
        user_sums, item_sums = &user_grad_sq[0], &item_grad_sq[0]
        item_norm = &item_norms[0]
    with nogil:
        for c in range(chunk_ptr.shape[0] - 1):
            if chunk_rows[c + 1] > chunk_rows[c]:  # the chunk's rows are contiguous
                memcpy(&user_factors[chunk_rows[c], 0], &user_source[chunk_rows[c], 0],
                       (chunk_rows[c + 1] - chunk_rows[c]) * k * sizeof(floating))
            if per_row:
                for r in range(chunk_rows[c], chunk_rows[c + 1]):
                    user_norm[r] = _dot(&user_factors[r, 0], &user_factors[r, 0], k)
            loss = _sgd_block(&users[0], &items[0], &ratings[0], chunk_ptr[c],
                              chunk_ptr[c + 1], &user_factors[0, 0], &item_factors[0, 0],
                              &user_bias[0], &item_bias[0], user_sums, item_sums, user_norm,
                              item_norm, k, <floating> global_mean, <floating> eta0,
                              <floating> alpha, biased, per_row, loss)
            if check:
                for r in range(chunk_rows[c], chunk_rows[c + 1]):
                    finite &= isfinite(_dot(&user_factors[r, 0], &user_factors[r, 0], k))
    free(user_norm)
    return loss if finite else NAN


def funk_epoch(const int[::1] users, const int[::1] items, const floating[::1] ratings,
               const floating[::1] cache, const int64[::1] block_ptr,
               const int[:, ::1] schedule, Py_ssize_t factor,
               floating[:, ::1] user_factors, floating[:, ::1] item_factors,
               floating[::1] user_bias, floating[::1] item_bias,
               floating[::1] user_grad_sq, floating[::1] item_grad_sq,
               double global_mean, double eta0, double alpha, bint biased,
               bint train_biases, bint per_row, int n_threads, double[::1] block_loss):
    """One epoch of Funk's factor-at-a-time SGD on column ``factor``; returns the squared error.

    ``cache[n]`` holds rating ``n``'s dot product over the factors already
    trained; the prediction is ``cache[n] + p[u, factor] * q[i, factor]`` plus
    the biases when ``biased``, which are updated too when ``train_biases``.
    With ``per_row`` the rates are per-row AdaGrad rates as in
    :func:`adagrad_epoch` (the accumulators are then read and updated), else
    ``eta0``.
    """
    cdef double total
    n_threads = _useful_threads(n_threads, block_ptr, schedule.shape[0])
    with nogil:
        total = _strata(users, items, ratings, block_ptr, schedule, user_factors,
                        item_factors, user_bias, item_bias, &user_grad_sq[0],
                        &item_grad_sq[0], NULL, NULL, <floating> global_mean,
                        <floating> eta0, <floating> alpha, biased, per_row, n_threads,
                        block_loss, &cache[0], factor, train_biases)
    return total


def group_by_block(const int64[::1] indptr, const int[::1] indices,
                   const floating[::1] data, const int[::1] row_order,
                   const int[::1] user_block, const int64[::1] user_block_start,
                   const int[::1] item_block,
                   const int[::1] item_position, const int64[::1] skip, int n_threads,
                   int64[::1] block_ptr, int[::1] users, int[::1] items,
                   floating[::1] ratings):
    """Copy CSR ratings into COO triplets grouped by (user block, item block).

    Rows are visited in ``row_order``, so inside a block the ratings of one user
    are adjacent and users come in that order. ``users`` receives the position of
    the rating's row in ``row_order``, not the row, and ``items`` the item's
    ``item_position``: factors stored in those orders are read front to back within
    a block, a stream the hardware prefetches (about 2x faster than rows scattered
    over memory when they do not fit in cache). User block ``b`` holds the rows
    ``row_order[user_block_start[b]:user_block_start[b + 1]]`` (``user_block[row]`` is
    the block of a row). ``skip[row]`` is the position in ``indices`` of one rating of
    the row left out, or -1; ``skip`` may be empty (nothing left out). ``block_ptr``
    (length n_user_blocks * n_item_blocks + 1) receives the block boundaries.
    User blocks are shared out among ``n_threads`` threads: each writes only its own
    blocks, so the result does not depend on ``n_threads``.
    """
    cdef Py_ssize_t n_cells = block_ptr.shape[0] - 1
    cdef Py_ssize_t n_user_blocks = user_block_start.shape[0] - 1
    cdef Py_ssize_t n_item_blocks = n_cells // max(n_user_blocks, 1)
    cdef Py_ssize_t ub, r, b, first
    cdef int row, col
    cdef int64 n, pos, ahead, left_out = -1
    cdef bint skipping = skip.shape[0] > 0
    # where the next rating of each block goes
    cdef int64* cursor = <int64*> malloc(max(n_cells, 1) * sizeof(int64))
    if cursor == NULL:
        raise MemoryError("no memory for the block cursors")
    with nogil:
        memset(&block_ptr[0], 0, (n_cells + 1) * sizeof(int64))
        # counted in the rows' own order: a stream through memory
        for r in range(indptr.shape[0] - 1):
            first = user_block[r] * n_item_blocks + 1
            for n in range(indptr[r], indptr[r + 1]):
                block_ptr[first + item_block[indices[n]]] += 1
            if skipping and skip[r] >= 0:
                block_ptr[first + item_block[indices[skip[r]]]] -= 1
        for b in range(n_cells):
            block_ptr[b + 1] += block_ptr[b]
            cursor[b] = block_ptr[b]
        for ub in prange(n_user_blocks, schedule="dynamic", num_threads=n_threads):
            first = ub * n_item_blocks
            for r in range(user_block_start[ub], user_block_start[ub + 1]):
                # the rows come in a random order: ask for a later one's ratings now
                if r + ROWS_AHEAD < user_block_start[ub + 1]:
                    ahead = indptr[row_order[r + ROWS_AHEAD]]
                    FUNKSGD_PREFETCH(&indices[ahead])
                    FUNKSGD_PREFETCH(&data[ahead])
                    if skipping:
                        FUNKSGD_PREFETCH(&skip[row_order[r + ROWS_AHEAD]])
                row = row_order[r]
                left_out = skip[row] if skipping else -1
                for n in range(indptr[row], indptr[row + 1]):
                    if n == left_out:
                        continue
                    col = indices[n]
                    b = first + item_block[col]
                    pos = cursor[b]
                    cursor[b] = pos + 1
                    users[pos] = <int> r
                    items[pos] = item_position[col]
                    ratings[pos] = data[n]
        free(cursor)


include "_solve.pxi"


def predict_pairs(const int[::1] users, const int[::1] items,
                  const floating[:, ::1] user_factors, const floating[:, ::1] item_factors,
                  const floating[::1] user_bias, const floating[::1] item_bias,
                  double global_mean, bint biased, int n_threads, floating[::1] out):
    """Predicted rating for each (user, item) pair, written into ``out``."""
    cdef Py_ssize_t n, k = user_factors.shape[1]
    with nogil:
        for n in prange(users.shape[0], schedule="static", num_threads=n_threads):
            out[n] = _dot(&user_factors[users[n], 0], &item_factors[items[n], 0], k)
            if biased:
                out[n] = out[n] + global_mean + user_bias[users[n]] + item_bias[items[n]]
