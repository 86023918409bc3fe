/* Row arithmetic of funksgd's SGD loops, shared by funksgd/_sgd.pyx and
   benchmarks/row_update_floor.c.

   funksgd_s_dot / funksgd_d_dot: p.q of two rows of k floats / doubles.
   funksgd_s_update_dot / funksgd_d_update_dot: p, q = ap * p + bp * q, aq * q + bq * p
   (both from the old values), returning the new p.r (0 when r is NULL).
   funksgd_s_dot4 / funksgd_d_dot4: the four dot products q0.v .. q3.v, each row of v
   loaded once for the four (the users' conjugate-gradient solve).
*/
#ifndef FUNKSGD_ROWS_H
#define FUNKSGD_ROWS_H

#include <stddef.h>
#include <string.h>

/* Row arithmetic of the SGD loops in GCC/Clang vector extensions: W values per
   vector (one register), rows need no alignment. Every function visits a row in
   the same chunks (vectors of W, then one of W/2, then single values), so a row
   stored by one update and read by the next dot product is forwarded from the
   stores instead of waiting for the cache. Sums go to four vectors in turn: a
   single one would make a chain of additions, each waiting for the last. */
#if defined(__GNUC__) || defined(__clang__)
#define FUNKSGD_LOAD(V, row, at) (*(const V*) ((row) + (at)))
#define FUNKSGD_STORE(V, row, at) (*(V*) ((row) + (at)))
/* one chunk of PRE##_update_dot */
#define FUNKSGD_STEP(V, SUM, at)                                                         \
    x = FUNKSGD_LOAD(V, p, at);                                                          \
    y = FUNKSGD_LOAD(V, q, at);                                                          \
    FUNKSGD_STORE(V, q, at) = aq * y + bq * x;                                           \
    x = ap * x + bp * y;                                                                 \
    FUNKSGD_STORE(V, p, at) = x;                                                         \
    SUM += x * FUNKSGD_LOAD(V, r, at);
#define FUNKSGD_ROWS(T, W, PRE)                                                          \
typedef T PRE##_vec __attribute__((vector_size(W * sizeof(T)), aligned(sizeof(T)), may_alias)); \
typedef T PRE##_half __attribute__((vector_size(W / 2 * sizeof(T)), aligned(sizeof(T)), may_alias)); \
static inline T PRE##_total(PRE##_vec a, PRE##_half h) {                                 \
    PRE##_half lo, hi;                                                                   \
    T total = 0;                                                                         \
    int j;                                                                               \
    memcpy(&lo, &a, sizeof lo);                                                          \
    memcpy(&hi, (const char*) &a + sizeof lo, sizeof hi);                                \
    h += lo + hi;                                                                        \
    for (j = 0; j < W / 2; j++) total += h[j];                                           \
    return total;                                                                        \
}                                                                                        \
/* p.q */                                                                                \
static inline T PRE##_dot(const T* p, const T* q, ptrdiff_t k) {                       \
    PRE##_vec d0 = {0}, d1 = {0}, d2 = {0}, d3 = {0};                                    \
    PRE##_half dh = {0};                                                                 \
    ptrdiff_t f = 0;                                                                    \
    T dot;                                                                               \
    for (; f + 4 * W <= k; f += 4 * W) {                                                 \
        d0 += FUNKSGD_LOAD(PRE##_vec, p, f) * FUNKSGD_LOAD(PRE##_vec, q, f);             \
        d1 += FUNKSGD_LOAD(PRE##_vec, p, f + W) * FUNKSGD_LOAD(PRE##_vec, q, f + W);     \
        d2 += FUNKSGD_LOAD(PRE##_vec, p, f + 2 * W) * FUNKSGD_LOAD(PRE##_vec, q, f + 2 * W); \
        d3 += FUNKSGD_LOAD(PRE##_vec, p, f + 3 * W) * FUNKSGD_LOAD(PRE##_vec, q, f + 3 * W); \
    }                                                                                    \
    for (; f + W <= k; f += W)                                                           \
        d1 += FUNKSGD_LOAD(PRE##_vec, p, f) * FUNKSGD_LOAD(PRE##_vec, q, f);             \
    if (f + W / 2 <= k) {                                                                \
        dh = FUNKSGD_LOAD(PRE##_half, p, f) * FUNKSGD_LOAD(PRE##_half, q, f);            \
        f += W / 2;                                                                      \
    }                                                                                    \
    dot = PRE##_total((d0 + d1) + (d2 + d3), dh);                                        \
    for (; f < k; f++) dot += p[f] * q[f];                                               \
    return dot;                                                                          \
}                                                                                        \
/* out[j] = qj.v for j = 0..3: one load of v for four rows, a sum per row */          \
static inline void PRE##_dot4(const T* q0, const T* q1, const T* q2, const T* q3,       \
                              const T* v, ptrdiff_t k, T* out) {                        \
    PRE##_vec x, s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};                                 \
    PRE##_half xh, h0 = {0}, h1 = {0}, h2 = {0}, h3 = {0};                               \
    ptrdiff_t f = 0;                                                                    \
    for (; f + W <= k; f += W) {                                                         \
        x = FUNKSGD_LOAD(PRE##_vec, v, f);                                               \
        s0 += FUNKSGD_LOAD(PRE##_vec, q0, f) * x;                                        \
        s1 += FUNKSGD_LOAD(PRE##_vec, q1, f) * x;                                        \
        s2 += FUNKSGD_LOAD(PRE##_vec, q2, f) * x;                                        \
        s3 += FUNKSGD_LOAD(PRE##_vec, q3, f) * x;                                        \
    }                                                                                    \
    if (f + W / 2 <= k) {                                                                \
        xh = FUNKSGD_LOAD(PRE##_half, v, f);                                             \
        h0 = FUNKSGD_LOAD(PRE##_half, q0, f) * xh;                                       \
        h1 = FUNKSGD_LOAD(PRE##_half, q1, f) * xh;                                       \
        h2 = FUNKSGD_LOAD(PRE##_half, q2, f) * xh;                                       \
        h3 = FUNKSGD_LOAD(PRE##_half, q3, f) * xh;                                       \
        f += W / 2;                                                                      \
    }                                                                                    \
    out[0] = PRE##_total(s0, h0);                                                        \
    out[1] = PRE##_total(s1, h1);                                                        \
    out[2] = PRE##_total(s2, h2);                                                        \
    out[3] = PRE##_total(s3, h3);                                                        \
    for (; f < k; f++) {                                                                 \
        out[0] += q0[f] * v[f];                                                          \
        out[1] += q1[f] * v[f];                                                          \
        out[2] += q2[f] * v[f];                                                          \
        out[3] += q3[f] * v[f];                                                          \
    }                                                                                    \
}                                                                                        \
/* p, q = ap * p + bp * q, aq * q + bq * p (both from the old values); then returns     \
   the new p.r, or 0 when r is NULL */                                                   \
static inline T PRE##_update_dot(T* p, T* q, const T* r, ptrdiff_t k,                  \
                                 T ap, T bp, T aq, T bq) {                              \
    PRE##_vec x, y, d0 = {0}, d1 = {0}, d2 = {0}, d3 = {0};                              \
    PRE##_half xh, yh, dh = {0};                                                         \
    ptrdiff_t f = 0;                                                                    \
    T pf, dot;                                                                           \
    if (r == NULL) r = p; /* read, never used */                                         \
    for (; f + 4 * W <= k; f += 4 * W) {                                                 \
        FUNKSGD_STEP(PRE##_vec, d0, f) FUNKSGD_STEP(PRE##_vec, d1, f + W)                \
        FUNKSGD_STEP(PRE##_vec, d2, f + 2 * W) FUNKSGD_STEP(PRE##_vec, d3, f + 3 * W)    \
    }                                                                                    \
    for (; f + W <= k; f += W) {                                                         \
        FUNKSGD_STEP(PRE##_vec, d1, f)                                                   \
    }                                                                                    \
    if (f + W / 2 <= k) {                                                                \
        xh = FUNKSGD_LOAD(PRE##_half, p, f);                                             \
        yh = FUNKSGD_LOAD(PRE##_half, q, f);                                             \
        FUNKSGD_STORE(PRE##_half, q, f) = aq * yh + bq * xh;                             \
        xh = ap * xh + bp * yh;                                                          \
        FUNKSGD_STORE(PRE##_half, p, f) = xh;                                            \
        dh = xh * FUNKSGD_LOAD(PRE##_half, r, f);                                        \
        f += W / 2;                                                                      \
    }                                                                                    \
    dot = PRE##_total((d0 + d1) + (d2 + d3), dh);                                        \
    for (; f < k; f++) {                                                                 \
        pf = p[f];                                                                       \
        p[f] = ap * pf + bp * q[f];                                                      \
        q[f] = aq * q[f] + bq * pf;                                                      \
        dot += p[f] * r[f];                                                              \
    }                                                                                    \
    return dot;                                                                          \
}
#else /* plain loops for other compilers */
#define FUNKSGD_ROWS(T, W, PRE)                                                          \
static inline T PRE##_dot(const T* p, const T* q, ptrdiff_t k) {                       \
    T dot = 0;                                                                           \
    ptrdiff_t f;                                                                        \
    for (f = 0; f < k; f++) dot += p[f] * q[f];                                          \
    return dot;                                                                          \
}                                                                                        \
static inline void PRE##_dot4(const T* q0, const T* q1, const T* q2, const T* q3,       \
                              const T* v, ptrdiff_t k, T* out) {                        \
    out[0] = PRE##_dot(q0, v, k);                                                        \
    out[1] = PRE##_dot(q1, v, k);                                                        \
    out[2] = PRE##_dot(q2, v, k);                                                        \
    out[3] = PRE##_dot(q3, v, k);                                                        \
}                                                                                        \
static inline T PRE##_update_dot(T* p, T* q, const T* r, ptrdiff_t k,                  \
                                 T ap, T bp, T aq, T bq) {                              \
    ptrdiff_t f;                                                                        \
    T pf;                                                                                \
    for (f = 0; f < k; f++) {                                                            \
        pf = p[f]; p[f] = ap * pf + bp * q[f]; q[f] = aq * q[f] + bq * pf;               \
    }                                                                                    \
    return r == NULL ? 0 : PRE##_dot(p, r, k);                                           \
}
#endif
/* vectors of one register: 32 bytes with AVX, 16 without */
#ifdef __AVX__
#define FUNKSGD_VECTOR_BYTES 32
#else
#define FUNKSGD_VECTOR_BYTES 16
#endif
FUNKSGD_ROWS(float, FUNKSGD_VECTOR_BYTES / 4, funksgd_s)
FUNKSGD_ROWS(double, FUNKSGD_VECTOR_BYTES / 8, funksgd_d)

#endif /* FUNKSGD_ROWS_H */
