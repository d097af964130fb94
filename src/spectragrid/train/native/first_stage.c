/* The first stage of a spectral CNN, fused: convolution (stride 1, zero
 * padding K / 2), max-pool (kernel = stride = P) and ReLU, for training.
 *
 * The first convolution sees only a few spectral channels, a shape the
 * library convolutions handle poorly, and its input needs no gradient. So the
 * forward pass writes the pooled output and, per output, the window offset of
 * its maximum (one byte); the backward pass rebuilds the sparse gradient of
 * the convolution output from those offsets and computes only the weight and
 * bias gradients. Arithmetic is float32 throughout; the output is written as
 * float32 or, under bfloat16 autocast, rounded to bfloat16 as torch rounds.
 *
 * Layouts: x (B, CI, L) float32; wt (CI, K, CO) float32, the weight with the
 * output channel innermost; out and grad (B, LP, CO), which is torch's
 * channels-last (B, CO, 1, LP); idx (B, LP, CO) uint8. CO must be a multiple
 * of V (vectors.h). Both functions return 0, or 1 when memory ran out.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "vectors.h"

#define T 8 /* positions (forward) or weight taps (backward) per register tile */

/* One sample's channels, zero-padded by K / 2 on both sides, plus T spare zeros. */
static void pad_row(const float *xb, float *xp, int64_t CI, int64_t L, int64_t K) {
    const int64_t pad = K / 2, lpad = L + K - 1 + T;
    memset(xp, 0, sizeof(float) * CI * lpad);
    for (int64_t ci = 0; ci < CI; ci++) memcpy(xp + ci * lpad + pad, xb + ci * L, sizeof(float) * L);
}

int first_stage_forward(const float *restrict x, const float *restrict wt,
                        const float *restrict bias, void *restrict out, uint8_t *restrict idx,
                        int out_bf16, int64_t B, int64_t CI, int64_t L, int64_t CO, int64_t K,
                        int64_t P, int64_t LP, int threads) {
    const int64_t lpad = L + K - 1 + T, used = LP * P, tiles = (used + T - 1) / T;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *xp = malloc(sizeof(float) * CI * lpad);
        float *row = malloc(sizeof(float) * tiles * T * CO);
        if (!xp || !row) failed = 1;
#pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            if (!xp || !row) continue;
            pad_row(x + b * CI * L, xp, CI, L, K);
            for (int64_t cb = 0; cb < CO; cb += V) {
                for (int64_t tile = 0; tile < tiles; tile++) {
                    const int64_t p = tile * T;
                    vec b0 = {0};
                    if (bias) b0 = *(const vec_u *)(bias + cb);
                    vec acc[T];
                    for (int t = 0; t < T; t++) acc[t] = b0;
                    for (int64_t ci = 0; ci < CI; ci++) {
                        for (int64_t k = 0; k < K; k++) {
                            const vec w = *(const vec_u *)(wt + (ci * K + k) * CO + cb);
                            const float *xr = xp + ci * lpad + p + k;
                            for (int t = 0; t < T; t++) acc[t] += xr[t] * w;
                        }
                    }
                    for (int t = 0; t < T; t++) *(vec_u *)(row + (p + t) * CO + cb) = acc[t];
                }
            }
            for (int64_t j = 0; j < LP; j++) {
                const int64_t o = (b * LP + j) * CO;
                for (int64_t cb = 0; cb < CO; cb += V) {
                    ivec arg;
                    const vec best = window_max_relu(row, j * P * CO + cb, CO, P, 0, &arg);
                    store_arg(idx, o + cb, arg);
                    store(out, o + cb, best, out_bf16);
                }
            }
        }
        free(xp);
        free(row);
    }
    return failed;
}

int first_stage_backward(const float *restrict x, const void *restrict out,
                         const uint8_t *restrict idx, const void *restrict grad, int half,
                         float *restrict gwt, float *restrict gbias, int64_t B, int64_t CI,
                         int64_t L, int64_t CO, int64_t K, int64_t P, int64_t LP, int threads) {
    const int64_t lpad = L + K - 1 + T, used = LP * P, taps = CI * K;
    const int64_t groups = (taps + T - 1) / T, nw = taps * CO;
    float *partial = calloc((size_t)threads * (nw + CO), sizeof(float));
    int64_t *offsets = malloc(sizeof(int64_t) * groups * T);
    if (!partial || !offsets) {
        free(partial);
        free(offsets);
        return 1;
    }
    /* a tap past the last one reads the spare zeros at the end of channel 0 */
    for (int64_t r = 0; r < groups * T; r++)
        offsets[r] = r < taps ? (r / K) * lpad + r % K : L + K - 1;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        int t_id = 0;
#ifdef _OPENMP
        t_id = omp_get_thread_num();
#endif
        float *gw = partial + t_id * (nw + CO), *gb = gw + nw;
        float *xp = malloc(sizeof(float) * CI * lpad);
        float *row = malloc(sizeof(float) * used * CO);
        if (!xp || !row) failed = 1;
#pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            if (!xp || !row) continue;
            for (int64_t j = 0; j < LP; j++) {
                const int64_t o = (b * LP + j) * CO;
                for (int64_t cb = 0; cb < CO; cb += V)
                    *(vec_u *)(gb + cb) +=
                        window_grad(row, j * P * CO + cb, CO, P, 0, load(out, o + cb, half),
                                    load(grad, o + cb, half), load_arg(idx, o + cb));
            }
            pad_row(x + b * CI * L, xp, CI, L, K);
            for (int64_t cb = 0; cb < CO; cb += V) {
                for (int64_t grp = 0; grp < groups; grp++) {
                    const int64_t *off = offsets + grp * T;
                    vec acc[T];
                    for (int r = 0; r < T; r++) acc[r] = (vec){0};
                    for (int64_t p = 0; p < used; p++) {
                        const vec g = *(const vec_u *)(row + p * CO + cb);
                        for (int r = 0; r < T; r++) acc[r] += xp[off[r] + p] * g;
                    }
                    for (int r = 0; r < T; r++) {
                        const int64_t tap = grp * T + r;
                        if (tap < taps)
                            *(vec_u *)(gw + tap * CO + cb) += acc[r];
                    }
                }
            }
        }
        free(xp);
        free(row);
    }
    if (!failed) /* each thread's partial sums: the weight gradient, then the bias's */
        for (int64_t i = 0; i < nw + CO; i++) {
            float s = 0.0f;
            for (int t = 0; t < threads; t++) s += partial[t * (nw + CO) + i];
            if (i < nw)
                gwt[i] = s;
            else if (gbias)
                gbias[i - nw] = s;
        }
    free(partial);
    free(offsets);
    return failed;
}
