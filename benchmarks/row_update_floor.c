/* How fast can one core run the simultaneous SGD update when everything is in cache?

   A stand-alone C loop shaped like MovieLens-100k (943 users x 1,682 items, 85 ratings
   per user, ratings grouped by user, items at random, float32, k=100 by default), with
   the kernel's vector code (GCC/Clang vector extensions, 32-byte vectors) and its
   prefetching 4 ratings ahead, but no biases, no AdaGrad and no threads. It times what
   each part of a rating costs, by taking the others away:

     loop     the loop, its index loads and the prefetches, no arithmetic
     q        q += c * p with a fixed c: one row read, one read and written
     pq       p and q updated from each other with fixed coefficients (no error)
     full     p.q, the error, then the update, the next rating's p.q in the same
              pass when it has the same user (what funksgd._sgd does for SGD)

   gcc -O3 -mavx2 -mfma -fno-math-errno -fassociative-math -fno-signed-zeros \
       -fno-trapping-math benchmarks/row_update_floor.c -o /tmp/floor && /tmp/floor 100

   Environment: ITEMS=n (1,682 items by default), STRIDE=n (floats from one row to the
   next, k by default; the arrays are 64-byte aligned), ROUND_ROBIN=1 (users in turn, so
   no two neighbouring ratings share a user).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define W 8
typedef float vec __attribute__((vector_size(32), aligned(4), may_alias));
typedef float half __attribute__((vector_size(16), aligned(4), may_alias));
#define LD(V, row, at) (*(const V*) ((row) + (at)))
#define ST(V, row, at) (*(V*) ((row) + (at)))

static inline float total(vec a, half h) {
    half lo, hi;
    memcpy(&lo, &a, 16);
    memcpy(&hi, (char*) &a + 16, 16);
    h += lo + hi;
    return h[0] + h[1] + h[2] + h[3];
}

static inline float dot(const float* p, const float* q, long k) {
    vec d0 = {0}, d1 = {0};
    half dh = {0};
    long f = 0;
    for (; f + 2 * W <= k; f += 2 * W) {
        d0 += LD(vec, p, f) * LD(vec, q, f);
        d1 += LD(vec, p, f + W) * LD(vec, q, f + W);
    }
    for (; f + W <= k; f += W) d0 += LD(vec, p, f) * LD(vec, q, f);
    if (f + W / 2 <= k) { dh = LD(half, p, f) * LD(half, q, f); f += W / 2; }
    float s = total(d0 + d1, dh);
    for (; f < k; f++) s += p[f] * q[f];
    return s;
}

/* p, q = a * p + b * q, a * q + b * p; returns the new p.r (r may be p: ignored) */
static inline float update_dot(float* p, float* q, const float* r, long k, float a, float b) {
    vec x, y, d0 = {0}, d1 = {0};
    half xh, yh, dh = {0};
    long f = 0;
#define STEP(SUM, at)                                                                  \
    x = LD(vec, p, at); y = LD(vec, q, at);                                            \
    ST(vec, q, at) = a * y + b * x;                                                    \
    x = a * x + b * y;                                                                 \
    ST(vec, p, at) = x;                                                                \
    SUM += x * LD(vec, r, at);
    for (; f + 2 * W <= k; f += 2 * W) { STEP(d0, f) STEP(d1, f + W) }
    for (; f + W <= k; f += W) { STEP(d0, f) }
    if (f + W / 2 <= k) {
        xh = LD(half, p, f); yh = LD(half, q, f);
        ST(half, q, f) = a * yh + b * xh;
        xh = a * xh + b * yh;
        ST(half, p, f) = xh;
        dh = xh * LD(half, r, f);
        f += W / 2;
    }
    float s = total(d0 + d1, dh);
    for (; f < k; f++) {
        float pf = p[f];
        p[f] = a * pf + b * q[f];
        q[f] = a * q[f] + b * pf;
        s += p[f] * r[f];
    }
    return s;
}

static inline void update_q(const float* p, float* q, long k, float c) {
    long f = 0;
    for (; f + W <= k; f += W) ST(vec, q, f) = LD(vec, q, f) + c * LD(vec, p, f);
    for (; f < k; f++) q[f] += c * p[f];
}

static inline void update_pq(float* p, float* q, long k, float c) {
    vec x, y;
    long f = 0;
    for (; f + W <= k; f += W) {
        x = LD(vec, p, f); y = LD(vec, q, f);
        ST(vec, q, f) = y + c * x;
        ST(vec, p, f) = x + c * y;
    }
    for (; f < k; f++) { float pf = p[f]; p[f] = pf + c * q[f]; q[f] += c * pf; }
}

enum { LOOP, Q_ONLY, P_AND_Q, FULL };

static double run(int mode, long k, int reps) {
    const int n_users = 943, per_user = 85, epochs = 50;
    const int n_items = getenv("ITEMS") ? atoi(getenv("ITEMS")) : 1682;
    /* row stride in floats (STRIDE=104: rows of 416 bytes, 32-byte aligned) */
    const long kp = getenv("STRIDE") ? atol(getenv("STRIDE")) : k;
    const int round_robin = getenv("ROUND_ROBIN") != NULL;
    const long n = (long) n_users * per_user;
    int* users = malloc(n * sizeof(int));
    int* items = malloc(n * sizeof(int));
    float* ratings = malloc(n * sizeof(float));
    float* P = aligned_alloc(64, (n_users * kp * sizeof(float) + 63) / 64 * 64);
    float* Q = aligned_alloc(64, (n_items * kp * sizeof(float) + 63) / 64 * 64);
    double best = 1e30, sink = 0;
    for (int rep = 0; rep < reps; rep++) {
        srand(1);
        for (long j = 0; j < n; j++) {
            users[j] = round_robin ? j % n_users : j / per_user;
            items[j] = rand() % n_items;
            if (j > 0 && users[j] == users[j - 1] && items[j] == items[j - 1])
                items[j] = (items[j] + 1) % n_items;
            ratings[j] = 1 + rand() % 5;
        }
        for (long j = 0; j < n_users * kp; j++) P[j] = 0.01f * (rand() % 10);
        for (long j = 0; j < n_items * kp; j++) Q[j] = 0.01f * (rand() % 10);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int e = 0; e < epochs; e++) {
            int known = 0;
            float pq = 0;
            for (long j = 0; j < n; j++) {
                float* p = P + users[j] * kp;
                float* q = Q + (long) items[j] * kp;
                if (j + 4 < n)
                    for (long f = 0; f < k; f += 16) {
                        __builtin_prefetch(P + users[j + 4] * kp + f, 1, 3);
                        __builtin_prefetch(Q + (long) items[j + 4] * kp + f, 1, 3);
                    }
                if (mode == LOOP) { pq += p[0] * q[1] * 1e-9f; continue; }
                if (mode == Q_ONLY) { update_q(p, q, k, 1e-7f); continue; }
                if (mode == P_AND_Q) { update_pq(p, q, k, 1e-7f); continue; }
                if (!known) pq = dot(p, q, k);
                float err = ratings[j] - 3.5f - pq;
                sink += err * err;
                known = j + 1 < n && users[j + 1] == users[j];
                const float* r = known ? Q + (long) items[j + 1] * kp : p;
                pq = update_dot(p, q, r, k, 1 - 0.005f * 0.05f, 0.005f * err);
            }
            sink += pq;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double t = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
        if (t < best) best = t;
    }
    if (sink == 12345) puts("");
    free(users); free(items); free(ratings); free(P); free(Q);
    return (double) n * epochs / best / 1e6;
}

int main(int argc, char** argv) {
    long k = argc > 1 ? atol(argv[1]) : 100;
    const char* names[] = {"loop", "q", "pq", "full"};
    printf("k=%ld, M ratings/s (best of 5 runs of 50 epochs over 80,155 ratings)\n", k);
    for (int mode = LOOP; mode <= FULL; mode++)
        printf("%-5s %6.1f\n", names[mode], run(mode, k, 5));
    return 0;
}
