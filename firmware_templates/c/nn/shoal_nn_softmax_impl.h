/* SOFTMAX int8 -> int8 (scale 1/256, zero point -128) in gemmlowp fixed point, as TFLite.
 * Kernel bodies as always-inline functions: the generated model calls them with its
 * compile-time parameter blocks so the compiler specialises every loop; the .c file of
 * the same family provides out-of-line versions. */
#ifndef SHOAL_NN_SOFTMAX_IMPL_H
#define SHOAL_NN_SOFTMAX_IMPL_H

#include "shoal_nn.h"
#include "shoal_fixedpoint.h"

SHOAL_NN_INLINE void shoal_nn_softmax_s8_impl(const shoal_nn_softmax_s8_params_t *p, const int8_t *input,
                         int8_t *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = input + (size_t)r * (size_t)p->depth;
        int8_t *y = output + (size_t)r * (size_t)p->depth;
        int32_t max_in_row = -128;
        int32_t sum_of_exps = 0; /* Q12.19 */
        int headroom_plus_one, num_bits_over_unit, exponent;
        int32_t shifted_scale;
        for (c = 0; c < p->depth; ++c) {
            max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled = shoal_srdhm(
                    (int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                sum_of_exps += shoal_rounding_divide_by_pot(
                    shoal_exp_on_negative_values_q5(scaled), 12);
            }
        }
        headroom_plus_one = shoal_count_leading_zeros((uint32_t)sum_of_exps);
        num_bits_over_unit = 12 - headroom_plus_one;
        shifted_scale = shoal_one_over_one_plus_x(
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31)));
        exponent = num_bits_over_unit + 31 - 8;
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled = shoal_srdhm(
                    (int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                const int32_t e = shoal_exp_on_negative_values_q5(scaled);
                const int32_t v = shoal_rounding_divide_by_pot(shoal_srdhm(shifted_scale, e),
                                                               exponent) - 128;
                y[c] = (int8_t)shoal_clamp(v, -128, 127);
            } else {
                y[c] = -128;
            }
        }
    }
}

#endif /* SHOAL_NN_SOFTMAX_IMPL_H */
