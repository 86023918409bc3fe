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

/* the kernel's own row arithmetic (funksgd_s_dot, funksgd_s_update_dot) */
#include "../funksgd/_rows.h"

#define W (FUNKSGD_VECTOR_BYTES / 4)
typedef funksgd_s_vec vec;
#define LD(V, row, at) FUNKSGD_LOAD(V, row, at)
#define ST(V, row, at) FUNKSGD_STORE(V, row, at)

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
                if (!known) pq = funksgd_s_dot(p, q, k);
                float err = ratings[j] - 3.5f - pq;
                sink += err * err;
                known = j + 1 < n && users[j + 1] == users[j];
                const float* r = known ? Q + (long) items[j + 1] * kp : NULL;
                const float a = 1 - 0.005f * 0.05f, b = 0.005f * err;
                pq = funksgd_s_update_dot(p, q, r, k, a, b, a, b);
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
