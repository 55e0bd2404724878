/* Out-of-line softmax kernels (bodies in shoal_nn_softmax_impl.h). */
#include "shoal_nn_softmax_impl.h"

void shoal_nn_softmax_s8(const shoal_nn_softmax_s8_params_t *p, const int8_t *input, int8_t *output)
{
    shoal_nn_softmax_s8_impl(p, input, output);
}
