/* Vectors of V float32 lanes (GCC/clang vector extensions, compiled for the
 * CPU at hand), their float32 / bfloat16 loads and stores, and the window
 * max-pool + ReLU that both kernels share, in both directions.
 *
 * Tensors are torch's channels-last planar (B, C, 1, L), seen as (B, L, C):
 * a window's P positions lie `stride` = C elements apart, and a vector holds
 * V consecutive channels of one position. `half` selects bfloat16 storage.
 */
#ifndef SPECTRAGRID_VECTORS_H
#define SPECTRAGRID_VECTORS_H

#include <stdint.h>

#define V 16 /* channels per vector */

typedef float vec __attribute__((vector_size(V * sizeof(float))));
typedef float vec_u __attribute__((vector_size(V * sizeof(float)), aligned(4)));
typedef int32_t ivec __attribute__((vector_size(V * sizeof(int32_t))));
typedef uint16_t hvec __attribute__((vector_size(V * sizeof(uint16_t)), aligned(2)));
typedef uint8_t bvec __attribute__((vector_size(V), aligned(1)));

static inline vec pick(ivec mask, vec a, vec b) {
    return (vec)(((ivec)a & mask) | ((ivec)b & ~mask));
}

static inline vec load(const void *base, int64_t i, int half) {
    if (half)
        return (vec)(__builtin_convertvector(*(const hvec *)((const uint16_t *)base + i), ivec)
                     << 16);
    return *(const vec_u *)((const float *)base + i);
}

/* bfloat16 stores round to nearest even as torch does (exact for values that
   came from bfloat16); a NaN stays NaN */
static inline void store(void *base, int64_t i, vec v, int half) {
    if (!half) {
        *(vec_u *)((float *)base + i) = v;
        return;
    }
    const ivec u = (ivec)v, nan = v != v;
    const ivec rounded = (u + 0x7fff + ((u >> 16) & 1)) >> 16;
    *(hvec *)((uint16_t *)base + i) =
        __builtin_convertvector((rounded & ~nan) | (((u >> 16) | 0x40) & nan), hvec);
}

/* relu(max over q < P of x[i + q * stride]), and in *arg the first q holding the
   maximum; a NaN wins, so it propagates as in torch */
static inline vec window_max_relu(const void *x, int64_t i, int64_t stride, int64_t P,
                                  int half, ivec *arg) {
    vec best = load(x, i, half);
    ivec at = {0};
    for (int64_t q = 1; q < P; q++) {
        const vec v = load(x, i + q * stride, half);
        const ivec better = (v > best) | ((v != v) & (best == best));
        best = pick(better, v, best);
        at = (at & ~better) | (((ivec){0} + (int32_t)q) & better);
    }
    *arg = at;
    return pick((best > 0) | (best != best), best, (vec){0});
}

/* The gradient below a window max-pool + ReLU: `grad` where the ReLU's output
   `out` is positive, at window position `arg`, zero at the window's others. */
static inline vec window_grad(void *dst, int64_t i, int64_t stride, int64_t P, int half,
                              vec out, vec grad, ivec arg) {
    const vec g = pick(out > 0, grad, (vec){0});
    for (int64_t q = 0; q < P; q++) store(dst, i + q * stride, pick(arg == (int32_t)q, g, (vec){0}), half);
    return g;
}

static inline ivec load_arg(const uint8_t *idx, int64_t i) {
    return __builtin_convertvector(*(const bvec *)(idx + i), ivec);
}

static inline void store_arg(uint8_t *idx, int64_t i, ivec arg) {
    *(bvec *)(idx + i) = __builtin_convertvector(arg, bvec);
}

#endif
