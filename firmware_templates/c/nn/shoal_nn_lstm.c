/* Out-of-line lstm kernels (bodies in shoal_nn_lstm_impl.h). */
#include "shoal_nn_lstm_impl.h"

void shoal_nn_lstm_s8(const shoal_nn_lstm_s8_params_t *p, const int8_t *input, int8_t *output, int8_t *hidden_state, int16_t *cell_state, void *scratch)
{
    shoal_nn_lstm_s8_impl(p, input, output, hidden_state, cell_state, scratch);
}
