/* Out-of-line conv kernels (bodies in shoal_nn_conv_impl.h). */
#include "shoal_nn_conv_impl.h"

void shoal_nn_conv_2d_s8(const shoal_nn_conv_2d_s8_params_t *p, const int8_t *input, const int8_t *weights, int8_t *output, void *scratch)
{
    shoal_nn_conv_2d_s8_impl(p, input, weights, output, scratch);
}

void shoal_nn_conv_2d_direct_s8(const shoal_nn_conv_2d_direct_s8_params_t *p, const int8_t *input, const int8_t *weights, int8_t *output)
{
    shoal_nn_conv_2d_direct_s8_impl(p, input, weights, output);
}

void shoal_nn_depthwise_conv_2d_s8(const shoal_nn_depthwise_conv_2d_s8_params_t *p, const int8_t *input, const int8_t *weights, int8_t *output)
{
    shoal_nn_depthwise_conv_2d_s8_impl(p, input, weights, output);
}
