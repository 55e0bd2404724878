/* Out-of-line fully connected kernels (bodies in shoal_nn_fully_connected_impl.h). */
#include "shoal_nn_fully_connected_impl.h"

void shoal_nn_fully_connected_s8(const shoal_nn_fully_connected_s8_params_t *p, const int8_t *input, const int8_t *weights, int8_t *output)
{
    shoal_nn_fully_connected_s8_impl(p, input, weights, output);
}
