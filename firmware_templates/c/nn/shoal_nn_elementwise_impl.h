/* Elementwise int8 kernels: ADD, QUANTIZE (float and int8 input), DEQUANTIZE, copy.
 * Kernel bodies as always-inline functions: the generated model calls them with its
 * compile-time parameter blocks so the compiler specialises every loop; the .c file of
 * the same family provides out-of-line versions. */
#ifndef SHOAL_NN_ELEMENTWISE_IMPL_H
#define SHOAL_NN_ELEMENTWISE_IMPL_H

#include <string.h>
#include "shoal_nn.h"
#include "shoal_fixedpoint.h"

#include "shoal_nn.h"
#include "shoal_fixedpoint.h"

SHOAL_NN_INLINE int8_t shoal_binary_element(const shoal_nn_binary_s8_params_t *p, int32_t x1,
                                            int32_t x2)
{
    int32_t v;
    if (p->op == 2) {
        v = shoal_requantize((p->input1_offset + x1) * (p->input2_offset + x2),
                             p->output_multiplier, p->output_shift);
    } else {
        const int32_t a = (int32_t)((uint32_t)(p->input1_offset + x1) << p->left_shift);
        const int32_t b = (int32_t)((uint32_t)(p->input2_offset + x2) << p->left_shift);
        const int32_t sa = shoal_requantize(a, p->input1_multiplier, p->input1_shift);
        const int32_t sb = shoal_requantize(b, p->input2_multiplier, p->input2_shift);
        v = shoal_requantize(p->op == 0 ? sa + sb : sa - sb, p->output_multiplier,
                             p->output_shift);
    }
    return (int8_t)shoal_clamp(v + p->output_offset, p->act_min, p->act_max);
}

SHOAL_NN_INLINE void shoal_nn_binary_s8_impl(const shoal_nn_binary_s8_params_t *p,
                                             const int8_t *input1, const int8_t *input2,
                                             int8_t *output)
{
    const int32_t inner = p->dim3;
    int32_t i0, i1, i2, i3;
    int8_t *y = output;
    for (i0 = 0; i0 < p->dim0; ++i0) {
        for (i1 = 0; i1 < p->dim1; ++i1) {
            for (i2 = 0; i2 < p->dim2; ++i2) {
                const int8_t *a = input1 + i0 * p->stride1_0 + i1 * p->stride1_1 + i2 * p->stride1_2;
                const int8_t *b = input2 + i0 * p->stride2_0 + i1 * p->stride2_1 + i2 * p->stride2_2;
                for (i3 = 0; i3 < inner; ++i3) {
                    y[i3] = shoal_binary_element(p, a[i3 * p->stride1_3], b[i3 * p->stride2_3]);
                }
                y += inner;
            }
        }
    }
}

SHOAL_NN_INLINE void shoal_nn_quantize_f32_s8_impl(const shoal_nn_quantize_f32_s8_params_t *p, const float *input,
                              int8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        /* Divide in float, as TFLite does; multiplying by 1/scale would round differently. */
        const int32_t q = shoal_round_to_int32(input[i] / p->scale);
        /* Saturating add: q may be near INT32_MAX for huge inputs. */
        const int64_t v = (int64_t)q + p->zero_point;
        output[i] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
}

SHOAL_NN_INLINE void shoal_nn_requantize_s8_impl(const shoal_nn_requantize_s8_params_t *p, const int8_t *input,
                            int8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t v = shoal_requantize((int32_t)input[i] - p->input_zero_point, p->multiplier,
                                           p->shift) + p->output_zero_point;
        output[i] = (int8_t)shoal_clamp(v, -128, 127);
    }
}

SHOAL_NN_INLINE void shoal_nn_dequantize_s8_f32_impl(const shoal_nn_dequantize_s8_f32_params_t *p,
                                const int8_t *input, float *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = p->scale * (float)((int32_t)input[i] - p->zero_point);
    }
}

SHOAL_NN_INLINE void shoal_nn_lut_s8_impl(const shoal_nn_lut_s8_params_t *p, const int8_t *input,
                                          int8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = p->table[(int32_t)input[i] + 128];
    }
}

SHOAL_NN_INLINE void shoal_nn_copy_impl(const shoal_nn_copy_params_t *p, const void *input, void *output)
{
    if (input != output) {
        memmove(output, input, (size_t)p->bytes);
    }
}

#endif /* SHOAL_NN_ELEMENTWISE_IMPL_H */
