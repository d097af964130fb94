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
 * of V. Both functions return 0, or 1 when memory ran out.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define V 16 /* output channels per vector block */
#define T 8  /* positions (forward) or weight taps (backward) per register tile */

typedef float vec __attribute__((vector_size(V * sizeof(float))));
typedef float vec_u __attribute__((vector_size(V * sizeof(float)), aligned(4)));
typedef int32_t ivec __attribute__((vector_size(V * sizeof(int32_t))));
typedef uint16_t hvec __attribute__((vector_size(V * sizeof(uint16_t)), aligned(2)));
typedef uint8_t bvec __attribute__((vector_size(V), aligned(1)));

/* float32 -> bfloat16 bits, rounding to nearest even as torch does; NaN stays NaN */
static inline hvec to_bf16(vec f) {
    ivec u = (ivec)f;
    ivec rounded = (u + 0x7fff + ((u >> 16) & 1)) >> 16;
    ivec nan = f != f;
    return __builtin_convertvector((rounded & ~nan) | (((u >> 16) | 0x40) & nan), hvec);
}

static inline vec from_bf16(hvec h) {
    return (vec)(__builtin_convertvector(h, ivec) << 16);
}

static inline vec pick(ivec mask, vec a, vec b) {
    return (vec)(((ivec)a & mask) | ((ivec)b & ~mask));
}

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
                const float *r = row + j * P * CO;
                const int64_t o = (b * LP + j) * CO;
                for (int64_t cb = 0; cb < CO; cb += V) {
                    vec best = *(const vec_u *)(r + cb);
                    ivec arg = {0};
                    for (int64_t q = 1; q < P; q++) {
                        const vec v = *(const vec_u *)(r + q * CO + cb);
                        /* the first maximum wins; a NaN wins, so it propagates as in torch */
                        const ivec better = (v > best) | ((v != v) & (best == best));
                        best = pick(better, v, best);
                        arg = (arg & ~better) | (((ivec){0} + (int32_t)q) & better);
                    }
                    *(bvec *)(idx + o + cb) = __builtin_convertvector(arg, bvec);
                    best = pick((best > 0) | (best != best), best, (vec){0});
                    if (out_bf16)
                        *(hvec *)((uint16_t *)out + o + cb) = to_bf16(best);
                    else
                        *(vec_u *)((float *)out + o + cb) = best;
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
                for (int64_t cb = 0; cb < CO; cb += V) {
                    const vec gv = half ? from_bf16(*(const hvec *)((const uint16_t *)grad + o + cb))
                                        : *(const vec_u *)((const float *)grad + o + cb);
                    const vec ov = half ? from_bf16(*(const hvec *)((const uint16_t *)out + o + cb))
                                        : *(const vec_u *)((const float *)out + o + cb);
                    /* ReLU passes the gradient where its output is positive */
                    const vec g = pick(ov > 0, gv, (vec){0});
                    *(vec_u *)(gb + cb) += g;
                    const ivec arg = __builtin_convertvector(*(const bvec *)(idx + o + cb), ivec);
                    for (int64_t q = 0; q < P; q++)
                        *(vec_u *)(row + (j * P + q) * CO + cb) = pick(arg == (int32_t)q, g, (vec){0});
                }
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
    if (!failed) {
        for (int64_t i = 0; i < nw; i++) {
            float s = 0.0f;
            for (int t = 0; t < threads; t++) s += partial[t * (nw + CO) + i];
            gwt[i] = s;
        }
        if (gbias)
            for (int64_t c = 0; c < CO; c++) {
                float s = 0.0f;
                for (int t = 0; t < threads; t++) s += partial[t * (nw + CO) + nw + c];
                gbias[c] = s;
            }
    }
    free(partial);
    free(offsets);
    return failed;
}
