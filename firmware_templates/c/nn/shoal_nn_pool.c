/* Out-of-line pool kernels (bodies in shoal_nn_pool_impl.h). */
#include "shoal_nn_pool_impl.h"

void shoal_nn_average_pool_2d_s8(const shoal_nn_average_pool_2d_s8_params_t *p, const int8_t *input, int8_t *output)
{
    shoal_nn_average_pool_2d_s8_impl(p, input, output);
}

void shoal_nn_max_pool_2d_s8(const shoal_nn_max_pool_2d_s8_params_t *p, const int8_t *input, int8_t *output)
{
    shoal_nn_max_pool_2d_s8_impl(p, input, output);
}

void shoal_nn_mean_s8(const shoal_nn_mean_s8_params_t *p, const int8_t *input, int8_t *output)
{
    shoal_nn_mean_s8_impl(p, input, output);
}
