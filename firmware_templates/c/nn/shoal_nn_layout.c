/* Out-of-line layout kernels (bodies in shoal_nn_layout_impl.h). */
#include "shoal_nn_layout_impl.h"

void shoal_nn_pad_s8(const shoal_nn_pad_s8_params_t *p, const int8_t *input, int8_t *output)
{
    shoal_nn_pad_s8_impl(p, input, output);
}

void shoal_nn_gather_s8(const shoal_nn_gather_s8_params_t *p, const int8_t *input, int8_t *output)
{
    shoal_nn_gather_s8_impl(p, input, output);
}

void shoal_nn_concat_s8(const shoal_nn_concat_s8_params_t *p, const int8_t *const *inputs, int8_t *output)
{
    shoal_nn_concat_s8_impl(p, inputs, output);
}
