/* UNIDIRECTIONAL_SEQUENCE_LSTM, integer 8x8->16: int8 input/hidden, int16 cell state, gates
 * in Q3.12 -> Q0.15, arithmetic as TFLite Micro's integer LSTM (no CIFG/peephole/projection).
 * State lives in caller-owned buffers and is updated in place.
 * Kernel bodies as always-inline functions: the generated model calls them with its
 * compile-time parameter blocks so the compiler specialises every loop; the .c file of
 * the same family provides out-of-line versions. */
#ifndef SHOAL_NN_LSTM_IMPL_H
#define SHOAL_NN_LSTM_IMPL_H

#include <string.h>
#include "shoal_nn.h"
#include "shoal_fixedpoint.h"

/* sigmoid(i / 24) in unsigned Q0.16, i = 0..255, each sample raised by half the linear-
 * interpolation error at its interval's midpoint; the last entry saturates. Derived by
 * codegen/ops/sigmoid_table.py (tests/codegen/test_sigmoid_table.py keeps them equal);
 * the int16 logistic/tanh of the LSTM gates interpolate it, so every entry matters. */
static const uint16_t shoal_sigmoid_lut[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535,
};

static inline int16_t shoal_clamp16(int32_t x)
{
    return (int16_t)shoal_clamp(x, -32768, 32767);
}

/* Q3.12 -> Q0.15 logistic (TFLite's int16 Logistic with a power-of-two input scale). */
SHOAL_NN_INLINE void shoal_sigmoid_q12(int16_t *data, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t x = (int32_t)data[i] * 3;
        const uint32_t ax = (uint32_t)(x < 0 ? -x : x);
        const uint32_t uh = ax >> 9;
        uint32_t result;
        if (uh >= 255u) {
            result = 0x7FFFu << 10;
        } else {
            const uint32_t ua = shoal_sigmoid_lut[uh];
            const uint32_t ub = shoal_sigmoid_lut[uh + 1u];
            result = (ua << 9) + (ax & 0x1FFu) * (ub - ua);
        }
        result = x >= 0 ? result + (1u << 9) : (1u << 25) - result + (1u << 9) - 1u;
        data[i] = (int16_t)(result >> 10);
    }
}

/* tanh via the sigmoid table: tanh(x) = 2 sigmoid(2x) - 1; output Q0.15. */
SHOAL_NN_INLINE void shoal_tanh_s16(const int16_t *in, int16_t *out, int32_t n, int32_t multiplier,
                           int32_t right_shift)
{
    const int32_t round = right_shift > 0 ? (1 << (right_shift - 1)) : 0;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t x = ((int32_t)in[i] * multiplier + round) >> right_shift;
        const uint32_t ax = (uint32_t)(x < 0 ? -x : x);
        const uint32_t uh = ax >> 8;
        int32_t result;
        if (uh >= 255u) {
            result = 0xFFFF << 8;
        } else {
            const uint32_t ua = shoal_sigmoid_lut[uh];
            const uint32_t ub = shoal_sigmoid_lut[uh + 1u];
            result = (int32_t)((ua << 8) + (ax & 0xFFu) * (ub - ua));
        }
        result = x >= 0 ? result - (1 << 23) + (1 << 7) : -result + (1 << 23) + (1 << 7) - 1;
        out[i] = (int16_t)(result >> 8);
    }
}

/* gate[r][s] = FC(x) + FC(h), each requantized to int16 and the sum saturated. */
SHOAL_NN_INLINE void shoal_lstm_gate(const shoal_nn_lstm_s8_params_t *p, int gate, int32_t rows,
                            const int8_t *x, const int8_t *h, int16_t *out)
{
    const int32_t S = p->state_dim;
    const int32_t I = p->input_dim;
    const int8_t *w_in = p->w_in + (size_t)gate * (size_t)S * (size_t)I;
    const int8_t *w_rec = p->w_rec + (size_t)gate * (size_t)S * (size_t)S;
    const int32_t *b_in = p->bias_in + gate * S;
    const int32_t *b_rec = p->bias_rec + gate * S;
    int32_t r, s;
    for (r = 0; r < rows; ++r) {
        for (s = 0; s < S; ++s) {
            const int32_t from_input = shoal_clamp16(shoal_requantize(
                b_in[s] + shoal_dot_s8(x + r * I, w_in + (size_t)s * (size_t)I, I),
                p->in_multiplier[gate], p->in_shift[gate]));
            const int32_t from_hidden = shoal_clamp16(shoal_requantize(
                b_rec[s] + shoal_dot_s8(h + r * S, w_rec + (size_t)s * (size_t)S, S),
                p->rec_multiplier[gate], p->rec_shift[gate]));
            out[r * S + s] = shoal_clamp16(from_input + from_hidden);
        }
    }
}

SHOAL_NN_INLINE void shoal_nn_lstm_s8_impl(const shoal_nn_lstm_s8_params_t *p, const int8_t *input, int8_t *output,
                      int8_t *hidden_state, int16_t *cell_state, void *scratch)
{
    const int32_t S = p->state_dim;
    const int32_t rows = p->step_batches;
    const int32_t n = rows * S;
    int16_t *forget_gate = (int16_t *)scratch;
    int16_t *input_gate = forget_gate + n;
    int16_t *cell_gate = input_gate + n;
    int16_t *output_gate = cell_gate + n;
    const int8_t *x = input;
    int8_t *y = output;
    int32_t b, t, i;
    for (b = 0; b < p->outer_batches; ++b) {
        int8_t *h = hidden_state + b * S;
        int16_t *c = cell_state + b * S;
        for (t = 0; t < p->time_steps; ++t) {
            shoal_lstm_gate(p, 1, rows, x, h, forget_gate);
            shoal_sigmoid_q12(forget_gate, n);
            shoal_lstm_gate(p, 0, rows, x, h, input_gate);
            shoal_sigmoid_q12(input_gate, n);
            shoal_lstm_gate(p, 2, rows, x, h, cell_gate);
            shoal_tanh_s16(cell_gate, cell_gate, n, 3, 0);
            for (i = 0; i < n; ++i) {
                const int32_t kept = shoal_clamp16(shoal_requantize(
                    (int32_t)forget_gate[i] * c[i], p->forget_cell_multiplier, p->forget_cell_shift));
                const int32_t added = shoal_clamp16(shoal_requantize(
                    (int32_t)input_gate[i] * cell_gate[i], p->input_cell_multiplier,
                    p->input_cell_shift));
                int32_t updated = shoal_clamp16(kept + added);
                if (p->cell_clip > 0) {
                    updated = shoal_clamp(updated, -p->cell_clip, p->cell_clip);
                }
                c[i] = (int16_t)updated;
            }
            /* The output gate still sees the previous hidden state. */
            shoal_lstm_gate(p, 3, rows, x, h, output_gate);
            shoal_sigmoid_q12(output_gate, n);
            shoal_tanh_s16(c, forget_gate, n, p->tanh_multiplier, p->tanh_right_shift);
            for (i = 0; i < n; ++i) {
                const int32_t v = shoal_requantize((int32_t)forget_gate[i] * output_gate[i],
                                                   p->hidden_multiplier, p->hidden_shift)
                                  + p->hidden_zero_point;
                h[i] = (int8_t)shoal_clamp(v, -128, 127);
            }
            memcpy(y, h, (size_t)n);
            x += rows * p->input_dim;
            y += n;
        }
    }
}

#endif /* SHOAL_NN_LSTM_IMPL_H */
