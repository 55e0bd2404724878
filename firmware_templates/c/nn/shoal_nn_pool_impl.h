/* AVERAGE_POOL_2D int8: rounded mean of the in-bounds taps (padding is not counted).
 * Kernel bodies as always-inline functions: the generated model calls them with its
 * compile-time parameter blocks so the compiler specialises every loop; the .c file of
 * the same family provides out-of-line versions. */
#ifndef SHOAL_NN_POOL_IMPL_H
#define SHOAL_NN_POOL_IMPL_H

#include "shoal_nn.h"
#include "shoal_fixedpoint.h"

SHOAL_NN_INLINE void shoal_nn_average_pool_2d_s8_impl(const shoal_nn_average_pool_2d_s8_params_t *p,
                                 const int8_t *input, int8_t *output)
{
    const int32_t ch = p->channels;
    int32_t b, oy, ox, c, y, x;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int32_t y_start = iy0 < 0 ? -iy0 : 0;
            const int32_t y_end = (p->in_h - iy0) < p->filter_h ? (p->in_h - iy0) : p->filter_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int32_t x_start = ix0 < 0 ? -ix0 : 0;
                const int32_t x_end = (p->in_w - ix0) < p->filter_w ? (p->in_w - ix0) : p->filter_w;
                const int32_t count = (y_end - y_start) * (x_end - x_start);
                int8_t *out = output + ((size_t)(b * p->out_h + oy) * (size_t)p->out_w + (size_t)ox)
                                           * (size_t)ch;
                for (c = 0; c < ch; ++c) {
                    int32_t sum = 0;
                    int32_t avg;
                    for (y = y_start; y < y_end; ++y) {
                        const int8_t *row = input
                            + ((size_t)(b * p->in_h + iy0 + y) * (size_t)p->in_w) * (size_t)ch;
                        for (x = x_start; x < x_end; ++x) {
                            sum += row[(size_t)(ix0 + x) * (size_t)ch + (size_t)c];
                        }
                    }
                    if (count == 0) {
                        avg = 0;
                    } else {
                        avg = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                    }
                    out[c] = (int8_t)shoal_clamp(avg, p->act_min, p->act_max);
                }
            }
        }
    }
}

SHOAL_NN_INLINE void shoal_nn_max_pool_2d_s8_impl(const shoal_nn_max_pool_2d_s8_params_t *p,
                                                  const int8_t *input, int8_t *output)
{
    const int32_t ch = p->channels;
    int32_t b, oy, ox, c, y, x;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int32_t y_start = iy0 < 0 ? -iy0 : 0;
            const int32_t y_end = (p->in_h - iy0) < p->filter_h ? (p->in_h - iy0) : p->filter_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int32_t x_start = ix0 < 0 ? -ix0 : 0;
                const int32_t x_end = (p->in_w - ix0) < p->filter_w ? (p->in_w - ix0) : p->filter_w;
                int8_t *out = output + ((size_t)(b * p->out_h + oy) * (size_t)p->out_w + (size_t)ox)
                                           * (size_t)ch;
                for (c = 0; c < ch; ++c) {
                    int32_t best = -128;
                    for (y = y_start; y < y_end; ++y) {
                        const int8_t *row = input
                            + ((size_t)(b * p->in_h + iy0 + y) * (size_t)p->in_w) * (size_t)ch;
                        for (x = x_start; x < x_end; ++x) {
                            const int32_t v = row[(size_t)(ix0 + x) * (size_t)ch + (size_t)c];
                            best = v > best ? v : best;
                        }
                    }
                    out[c] = (int8_t)shoal_clamp(best, p->act_min, p->act_max);
                }
            }
        }
    }
}

SHOAL_NN_INLINE void shoal_nn_mean_s8_impl(const shoal_nn_mean_s8_params_t *p,
                                           const int8_t *input, int8_t *output)
{
    const int32_t n0 = p->reduce0 ? 1 : p->dim0, m0 = p->reduce0 ? p->dim0 : 1;
    const int32_t n1 = p->reduce1 ? 1 : p->dim1, m1 = p->reduce1 ? p->dim1 : 1;
    const int32_t n2 = p->reduce2 ? 1 : p->dim2, m2 = p->reduce2 ? p->dim2 : 1;
    const int32_t n3 = p->reduce3 ? 1 : p->dim3, m3 = p->reduce3 ? p->dim3 : 1;
    int32_t i0, i1, i2, i3, j0, j1, j2, j3;
    int8_t *y = output;
    for (i0 = 0; i0 < n0; ++i0) {
        for (i1 = 0; i1 < n1; ++i1) {
            for (i2 = 0; i2 < n2; ++i2) {
                for (i3 = 0; i3 < n3; ++i3) {
                    int32_t sum = 0;
                    int32_t v;
                    for (j0 = 0; j0 < m0; ++j0) {
                        for (j1 = 0; j1 < m1; ++j1) {
                            for (j2 = 0; j2 < m2; ++j2) {
                                const int8_t *row = input
                                    + (((size_t)(i0 + j0) * (size_t)p->dim1 + (size_t)(i1 + j1))
                                           * (size_t)p->dim2 + (size_t)(i2 + j2))
                                          * (size_t)p->dim3 + (size_t)i3;
                                for (j3 = 0; j3 < m3; ++j3) {
                                    sum += row[j3];
                                }
                            }
                        }
                    }
                    v = shoal_requantize(sum + p->sum_offset, p->multiplier, p->shift)
                        + p->output_zero_point;
                    *y++ = (int8_t)shoal_clamp(v, -128, 127);
                }
            }
        }
    }
}

#endif /* SHOAL_NN_POOL_IMPL_H */
