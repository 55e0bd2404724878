/* Shoal neural-network kernels: int8 operators bit-exact with TensorFlow Lite Micro.
 *
 * Every kernel takes a const parameter block computed by the Shoal compiler (shapes,
 * offsets, fixed-point multipliers), its input pointers, its output pointers and, when the
 * parameter block says so, a scratch pointer into the caller's arena. Kernels never allocate
 * and never keep state; buffers are owned by the caller (the generated model code).
 * Tensors are NHWC, row-major. Weights are OHWI (conv) or [1, H, W, C*M] (depthwise).
 * Define SHOAL_USE_DSP (with __ARM_FEATURE_DSP) to use Cortex-M SIMD MACs; results are
 * identical to the portable C.
 */
#ifndef SHOAL_NN_H
#define SHOAL_NN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[b][o] = requantize(bias[o] + sum_i in[b][i] * w[o][i]); bias already holds
 * -input_zero_point * sum_i w[o][i]. */
typedef struct {
    int32_t batches;
    int32_t in_depth;
    int32_t out_depth;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
} shoal_nn_fully_connected_s8_params_t;

void shoal_nn_fully_connected_s8(const shoal_nn_fully_connected_s8_params_t *p,
                                 const int8_t *input, const int8_t *weights, int8_t *output);

typedef struct {
    int32_t batches, in_h, in_w, in_c, out_h, out_w, out_c;
    int32_t filter_h, filter_w, stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w;
    int32_t input_zero_point;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
} shoal_nn_conv_2d_s8_params_t;

/* scratch: filter_h * filter_w * in_c bytes (one output pixel's receptive field). */
void shoal_nn_conv_2d_s8(const shoal_nn_conv_2d_s8_params_t *p, const int8_t *input,
                         const int8_t *weights, int8_t *output, void *scratch);

/* The same without scratch (slower: reads the input once per output channel). */
typedef shoal_nn_conv_2d_s8_params_t shoal_nn_conv_2d_direct_s8_params_t;

void shoal_nn_conv_2d_direct_s8(const shoal_nn_conv_2d_direct_s8_params_t *p,
                                const int8_t *input, const int8_t *weights, int8_t *output);

typedef struct {
    int32_t batches, in_h, in_w, in_c, out_h, out_w, out_c, depth_multiplier;
    int32_t filter_h, filter_w, stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w;
    int32_t input_zero_point;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
} shoal_nn_depthwise_conv_2d_s8_params_t;

void shoal_nn_depthwise_conv_2d_s8(const shoal_nn_depthwise_conv_2d_s8_params_t *p,
                                   const int8_t *input, const int8_t *weights, int8_t *output);

typedef struct {
    int32_t batches, in_h, in_w, channels, out_h, out_w;
    int32_t filter_h, filter_w, stride_h, stride_w, pad_h, pad_w;
    int32_t act_min;
    int32_t act_max;
} shoal_nn_average_pool_2d_s8_params_t;

void shoal_nn_average_pool_2d_s8(const shoal_nn_average_pool_2d_s8_params_t *p,
                                 const int8_t *input, int8_t *output);

/* MAX_POOL_2D uses the same parameter block as AVERAGE_POOL_2D. */
typedef shoal_nn_average_pool_2d_s8_params_t shoal_nn_max_pool_2d_s8_params_t;

void shoal_nn_max_pool_2d_s8(const shoal_nn_max_pool_2d_s8_params_t *p, const int8_t *input,
                             int8_t *output);

/* MEAN over the axes flagged reduceK of a 4-D input: (sum + sum_offset) requantized. */
typedef struct {
    int32_t dim0, dim1, dim2, dim3;
    int32_t reduce0, reduce1, reduce2, reduce3;
    int32_t sum_offset, multiplier, shift, output_zero_point;
} shoal_nn_mean_s8_params_t;

void shoal_nn_mean_s8(const shoal_nn_mean_s8_params_t *p, const int8_t *input, int8_t *output);

/* PAD/PADV2 over 4-D (leading unit dims for lower ranks): the output is filled with `value`
 * and the input placed at offsets before0..before3. */
typedef struct {
    int32_t in_dim0, in_dim1, in_dim2, in_dim3;
    int32_t out_dim0, out_dim1, out_dim2, out_dim3;
    int32_t before0, before1, before2, before3;
    int32_t value;
} shoal_nn_pad_s8_params_t;

void shoal_nn_pad_s8(const shoal_nn_pad_s8_params_t *p, const int8_t *input, int8_t *output);

/* TRANSPOSE and STRIDED_SLICE: output[i0][i1][i2][i3] =
 * input[base + i0*stride0 + i1*stride1 + i2*stride2 + i3*stride3] (strides may be negative). */
typedef struct {
    int32_t dim0, dim1, dim2, dim3;
    int32_t stride0, stride1, stride2, stride3;
    int32_t base;
} shoal_nn_gather_s8_params_t;

void shoal_nn_gather_s8(const shoal_nn_gather_s8_params_t *p, const int8_t *input,
                           int8_t *output);

/* CONCATENATION: for each of `outer` slices, input k contributes sizes[k] contiguous bytes. */
typedef struct {
    int32_t count;
    int32_t outer;
    const int32_t *sizes;
} shoal_nn_concat_s8_params_t;

void shoal_nn_concat_s8(const shoal_nn_concat_s8_params_t *p, const int8_t *const *inputs,
                        int8_t *output);

/* ADD (op 0), SUB (op 1), MUL (op 2) with broadcasting over a 4-D output of dims d0..d3;
 * strideN_k is input N's element stride along axis k (0 where it is broadcast). ADD/SUB
 * rescale both inputs (left shift, per-input multiplier), MUL requantizes the product. */
typedef struct {
    int32_t op;
    int32_t dim0, dim1, dim2, dim3;
    int32_t stride1_0, stride1_1, stride1_2, stride1_3;
    int32_t stride2_0, stride2_1, stride2_2, stride2_3;
    int32_t input1_offset, input2_offset, left_shift;
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift, output_offset;
    int32_t act_min, act_max;
} shoal_nn_binary_s8_params_t;

/* output may be an input of the output's shape (in place). */
void shoal_nn_binary_s8(const shoal_nn_binary_s8_params_t *p, const int8_t *input1,
                        const int8_t *input2, int8_t *output);

typedef struct {
    int32_t rows, depth;
    int32_t input_multiplier, input_left_shift, diff_min;
} shoal_nn_softmax_s8_params_t;

/* output may be input (in place). Output scale 1/256, zero point -128. */
void shoal_nn_softmax_s8(const shoal_nn_softmax_s8_params_t *p, const int8_t *input,
                         int8_t *output);

typedef struct {
    int32_t size;
    float scale;
    int32_t zero_point;
} shoal_nn_quantize_f32_s8_params_t;

void shoal_nn_quantize_f32_s8(const shoal_nn_quantize_f32_s8_params_t *p, const float *input,
                              int8_t *output);

typedef struct {
    int32_t size, input_zero_point, output_zero_point, multiplier, shift;
} shoal_nn_requantize_s8_params_t;

void shoal_nn_requantize_s8(const shoal_nn_requantize_s8_params_t *p, const int8_t *input,
                            int8_t *output);

typedef struct {
    int32_t size;
    float scale;
    int32_t zero_point;
} shoal_nn_dequantize_s8_f32_params_t;

void shoal_nn_dequantize_s8_f32(const shoal_nn_dequantize_s8_f32_params_t *p,
                                const int8_t *input, float *output);

/* Integer LSTM (TFLite 8x8->16). Gate order in the weight/bias/multiplier arrays: input,
 * forget, cell, output. w_in is [4][state_dim][input_dim], w_rec [4][state_dim][state_dim];
 * biases have the input/hidden zero points folded in. */
typedef struct {
    int32_t outer_batches, step_batches, time_steps, input_dim, state_dim;
    const int8_t *w_in;
    const int8_t *w_rec;
    const int32_t *bias_in;
    const int32_t *bias_rec;
    const int32_t *in_multiplier;
    const int32_t *in_shift;
    const int32_t *rec_multiplier;
    const int32_t *rec_shift;
    int32_t forget_cell_multiplier, forget_cell_shift;
    int32_t input_cell_multiplier, input_cell_shift;
    int32_t hidden_multiplier, hidden_shift, hidden_zero_point;
    int32_t tanh_multiplier, tanh_right_shift;
    int32_t cell_clip;
} shoal_nn_lstm_s8_params_t;

/* hidden_state (int8) and cell_state (int16) are read and updated in place; scratch holds
 * 4 * step_batches * state_dim int16 values. */
void shoal_nn_lstm_s8(const shoal_nn_lstm_s8_params_t *p, const int8_t *input, int8_t *output,
                      int8_t *hidden_state, int16_t *cell_state, void *scratch);

/* output[i] = table[input[i] + 128]: any int8 -> int8 elementwise function, tabulated at
 * compile time. output may be input (in place). */
typedef struct {
    int32_t size;
    const int8_t *table;
} shoal_nn_lut_s8_params_t;

void shoal_nn_lut_s8(const shoal_nn_lut_s8_params_t *p, const int8_t *input, int8_t *output);

typedef struct {
    int32_t bytes;
} shoal_nn_copy_params_t;

void shoal_nn_copy(const shoal_nn_copy_params_t *p, const void *input, void *output);

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_NN_H */
