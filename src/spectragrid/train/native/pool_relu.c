/* Max-pool (kernel = stride = P, no padding) then ReLU, fused, for training.
 *
 * torch runs the two as separate operators: the pool records a 64-bit index
 * per output, its backward fills a zero gradient and scatters into it, and the
 * ReLU reads and writes the pooled tensor twice more. Here the forward pass
 * writes the output and a one-byte window offset per output, and the backward
 * pass writes the whole input gradient in one sweep. Pooling and ReLU do no
 * arithmetic, so the results are exactly torch's, in float32 and bfloat16: the
 * first maximum of a window wins, a NaN wins and propagates, and the gradient
 * passes where the output is positive.
 *
 * Layouts, torch's channels-last (B, C, 1, L) seen as (B, L, C): x and grad_in
 * (B, L, C); out, grad and idx (B, LP, C), LP = L / P rounded down. `half`
 * selects bfloat16 for x, out, grad and grad_in, else float32.
 */
#include <stdint.h>
#include <string.h>

#include "vectors.h"

/* one channel, for the last C % V */
static inline float load1(const void *base, int64_t i, int half) {
    if (half) {
        uint32_t u = (uint32_t)((const uint16_t *)base)[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    return ((const float *)base)[i];
}

static inline void store1(void *base, int64_t i, float f, int half) {
    if (half) {
        uint32_t u;
        memcpy(&u, &f, 4);
        ((uint16_t *)base)[i] = (uint16_t)(u >> 16); /* exact: f came from bfloat16 */
    } else {
        ((float *)base)[i] = f;
    }
}

void pool_relu_forward(const void *restrict x, void *restrict out, uint8_t *restrict idx,
                       int half, int64_t B, int64_t L, int64_t C, int64_t P, int64_t LP,
                       int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t n = 0; n < B * LP; n++) {
        const int64_t b = n / LP, j = n % LP;
        const int64_t in = (b * L + j * P) * C, o = n * C;
        int64_t c = 0;
        for (; c + V <= C; c += V) {
            ivec arg;
            const vec best = window_max_relu(x, in + c, C, P, half, &arg);
            store_arg(idx, o + c, arg);
            store(out, o + c, best, half);
        }
        for (; c < C; c++) {
            float best = load1(x, in + c, half);
            uint8_t arg = 0;
            for (int64_t q = 1; q < P; q++) {
                const float v = load1(x, in + q * C + c, half);
                if (v > best || (v != v && best == best)) {
                    best = v;
                    arg = (uint8_t)q;
                }
            }
            idx[o + c] = arg;
            store1(out, o + c, best > 0 || best != best ? best : 0.0f, half);
        }
    }
}

void pool_relu_backward(const void *restrict grad, const void *restrict out,
                        const uint8_t *restrict idx, void *restrict grad_in, int half, int64_t B,
                        int64_t L, int64_t C, int64_t P, int64_t LP, int threads) {
    const size_t elem = half ? 2 : 4;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t j = 0; j < LP; j++) {
            const int64_t o = (b * LP + j) * C, in = (b * L + j * P) * C;
            int64_t c = 0;
            for (; c + V <= C; c += V)
                window_grad(grad_in, in + c, C, P, half, load(out, o + c, half),
                            load(grad, o + c, half), load_arg(idx, o + c));
            for (; c < C; c++) {
                const float g = load1(out, o + c, half) > 0 ? load1(grad, o + c, half) : 0.0f;
                for (int64_t q = 0; q < P; q++)
                    store1(grad_in, in + q * C + c, idx[o + c] == q ? g : 0.0f, half);
            }
        }
        /* the points past the last whole window get no gradient */
        memset((char *)grad_in + (b * L + LP * P) * C * elem, 0, (size_t)((L - LP * P) * C) * elem);
    }
}
