/* Out-of-line elementwise kernels (bodies in shoal_nn_elementwise_impl.h). */
#include "shoal_nn_elementwise_impl.h"

void shoal_nn_binary_s8(const shoal_nn_binary_s8_params_t *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    shoal_nn_binary_s8_impl(p, input1, input2, output);
}

void shoal_nn_quantize_f32_s8(const shoal_nn_quantize_f32_s8_params_t *p, const float *input, int8_t *output)
{
    shoal_nn_quantize_f32_s8_impl(p, input, output);
}

void shoal_nn_requantize_s8(const shoal_nn_requantize_s8_params_t *p, const int8_t *input, int8_t *output)
{
    shoal_nn_requantize_s8_impl(p, input, output);
}

void shoal_nn_dequantize_s8_f32(const shoal_nn_dequantize_s8_f32_params_t *p, const int8_t *input, float *output)
{
    shoal_nn_dequantize_s8_f32_impl(p, input, output);
}

void shoal_nn_lut_s8(const shoal_nn_lut_s8_params_t *p, const int8_t *input, int8_t *output)
{
    shoal_nn_lut_s8_impl(p, input, output);
}

void shoal_nn_copy(const shoal_nn_copy_params_t *p, const void *input, void *output)
{
    shoal_nn_copy_impl(p, input, output);
}
