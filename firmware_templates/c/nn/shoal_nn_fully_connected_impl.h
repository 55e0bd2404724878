/* FULLY_CONNECTED int8 (also 1x1 stride-1 CONV_2D): dot products plus requantization.
 * Kernel bodies as always-inline functions: the generated model calls them with its
 * compile-time parameter blocks so the compiler specialises every loop; the .c file of
 * the same family provides out-of-line versions. */
#ifndef SHOAL_NN_FULLY_CONNECTED_IMPL_H
#define SHOAL_NN_FULLY_CONNECTED_IMPL_H

#include "shoal_nn.h"
#include "shoal_fixedpoint.h"

SHOAL_NN_INLINE void shoal_nn_fully_connected_s8_impl(const shoal_nn_fully_connected_s8_params_t *p,
                                                      const int8_t *input, const int8_t *weights,
                                                      int8_t *output)
{
    const int32_t depth = p->in_depth;
    int32_t b, o;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = input + (size_t)b * (size_t)depth;
        int8_t *y = output + (size_t)b * (size_t)p->out_depth;
        o = 0;
#if defined(SHOAL_HAVE_DSP)
        /* Four output rows at a time share each load of the input vector. */
        for (; o + 4 <= p->out_depth; o += 4) {
            int32_t acc[4];
            int k;
            for (k = 0; k < 4; ++k) {
                acc[k] = p->bias[o + k];
            }
            shoal_dot4rows_dsp(x, weights + (size_t)o * (size_t)depth, depth, depth, acc);
            for (k = 0; k < 4; ++k) {
                const int32_t v = shoal_requantize(acc[k], p->multiplier[o + k], p->shift[o + k])
                                  + p->output_offset;
                y[o + k] = (int8_t)shoal_clamp(v, p->act_min, p->act_max);
            }
        }
#endif
        /* Two output rows at a time share each load of the input vector. */
        for (; o + 2 <= p->out_depth; o += 2) {
            const int8_t *w = weights + (size_t)o * (size_t)depth;
            int32_t acc0 = p->bias[o];
            int32_t acc1 = p->bias[o + 1];
            int32_t v0, v1;
            shoal_dot2_s8(x, w, w + depth, depth, &acc0, &acc1);
            v0 = shoal_requantize(acc0, p->multiplier[o], p->shift[o]) + p->output_offset;
            v1 = shoal_requantize(acc1, p->multiplier[o + 1], p->shift[o + 1]) + p->output_offset;
            y[o] = (int8_t)shoal_clamp(v0, p->act_min, p->act_max);
            y[o + 1] = (int8_t)shoal_clamp(v1, p->act_min, p->act_max);
        }
        if (o < p->out_depth) {
            const int32_t acc = p->bias[o] + shoal_dot_s8(x, weights + (size_t)o * (size_t)depth, depth);
            const int32_t v = shoal_requantize(acc, p->multiplier[o], p->shift[o]) + p->output_offset;
            y[o] = (int8_t)shoal_clamp(v, p->act_min, p->act_max);
        }
    }
}

#endif /* SHOAL_NN_FULLY_CONNECTED_IMPL_H */
