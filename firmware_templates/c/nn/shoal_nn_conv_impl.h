/* CONV_2D and DEPTHWISE_CONV_2D int8 with per-channel requantization.
 * The input zero point is folded into the bias, so a padded tap reads the input zero point. 
 * Kernel bodies as always-inline functions: the generated model calls them with its
 * compile-time parameter blocks so the compiler specialises every loop; the .c file of
 * the same family provides out-of-line versions. */
#ifndef SHOAL_NN_CONV_IMPL_H
#define SHOAL_NN_CONV_IMPL_H

#include <string.h>

#include "shoal_nn.h"
#include "shoal_fixedpoint.h"

/* Each output pixel's receptive field is first gathered into `scratch` (padded taps read
 * the input zero point), then every pair of output channels is one shared-input dot product
 * over it: the input is touched once per pixel instead of once per output channel. */
SHOAL_NN_INLINE void shoal_nn_conv_2d_s8_impl(const shoal_nn_conv_2d_s8_params_t *p,
                                              const int8_t *input, const int8_t *weights,
                                              int8_t *output, void *scratch)
{
    int8_t *patch = (int8_t *)scratch;
    const int32_t in_c = p->in_c;
    const int32_t row_len = p->filter_w * in_c;
    const int32_t patch_len = p->filter_h * row_len;
    int32_t b, oy, ox, oc, fy, fx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + (size_t)b * (size_t)(p->in_h * p->in_w * in_c);
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int row_inside = p->dilation_w == 1 && ix0 >= 0
                                       && ix0 + p->filter_w <= p->in_w;
                int8_t *y = output + ((size_t)(b * p->out_h + oy) * (size_t)p->out_w + (size_t)ox)
                                         * (size_t)p->out_c;
                for (fy = 0; fy < p->filter_h; ++fy) {
                    const int32_t iy = iy0 + fy * p->dilation_h;
                    int8_t *dst = patch + fy * row_len;
                    if (iy < 0 || iy >= p->in_h) {
                        memset(dst, (int)(uint8_t)p->input_zero_point, (size_t)row_len);
                    } else if (row_inside) {
                        memcpy(dst, image + ((size_t)iy * (size_t)p->in_w + (size_t)ix0)
                                                * (size_t)in_c, (size_t)row_len);
                    } else {
                        for (fx = 0; fx < p->filter_w; ++fx) {
                            const int32_t ix = ix0 + fx * p->dilation_w;
                            if (ix < 0 || ix >= p->in_w) {
                                memset(dst + fx * in_c, (int)(uint8_t)p->input_zero_point,
                                       (size_t)in_c);
                            } else {
                                memcpy(dst + fx * in_c,
                                       image + ((size_t)iy * (size_t)p->in_w + (size_t)ix)
                                                   * (size_t)in_c,
                                       (size_t)in_c);
                            }
                        }
                    }
                }
                for (oc = 0; oc + 2 <= p->out_c; oc += 2) {
                    const int8_t *w = weights + (size_t)oc * (size_t)patch_len;
                    int32_t acc0 = p->bias[oc];
                    int32_t acc1 = p->bias[oc + 1];
                    int32_t v0, v1;
                    shoal_dot2_s8(patch, w, w + patch_len, patch_len, &acc0, &acc1);
                    v0 = shoal_requantize(acc0, p->multiplier[oc], p->shift[oc]) + p->output_offset;
                    v1 = shoal_requantize(acc1, p->multiplier[oc + 1], p->shift[oc + 1])
                         + p->output_offset;
                    y[oc] = (int8_t)shoal_clamp(v0, p->act_min, p->act_max);
                    y[oc + 1] = (int8_t)shoal_clamp(v1, p->act_min, p->act_max);
                }
                if (oc < p->out_c) {
                    const int32_t acc = p->bias[oc] + shoal_dot_s8(patch, weights + (size_t)oc
                                                                       * (size_t)patch_len,
                                                                   patch_len);
                    const int32_t v = shoal_requantize(acc, p->multiplier[oc], p->shift[oc])
                                      + p->output_offset;
                    y[oc] = (int8_t)shoal_clamp(v, p->act_min, p->act_max);
                }
            }
        }
    }
}

/* The same convolution without scratch memory, for when the planner has no room for the
 * patch: with unit dilation and the window row inside the image, a filter row is one
 * contiguous dot product; other taps are visited one by one. */
SHOAL_NN_INLINE void shoal_nn_conv_2d_direct_s8_impl(const shoal_nn_conv_2d_s8_params_t *p,
                                                     const int8_t *input, const int8_t *weights,
                                                     int8_t *output)
{
    const int32_t in_c = p->in_c;
    const int32_t row_len = p->filter_w * in_c;
    const int32_t filter_size = p->filter_h * row_len;
    int32_t b, oy, ox, oc, fy, fx, ic;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + (size_t)b * (size_t)(p->in_h * p->in_w * in_c);
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int row_inside = p->dilation_w == 1 && ix0 >= 0
                                       && ix0 + p->filter_w <= p->in_w;
                int8_t *y = output + ((size_t)(b * p->out_h + oy) * (size_t)p->out_w + (size_t)ox)
                                         * (size_t)p->out_c;
                for (oc = 0; oc < p->out_c; ++oc) {
                    const int8_t *w = weights + (size_t)oc * (size_t)filter_size;
                    int32_t acc = p->bias[oc];
                    for (fy = 0; fy < p->filter_h; ++fy) {
                        const int32_t iy = iy0 + fy * p->dilation_h;
                        const int8_t *w_row = w + fy * row_len;
                        const int y_inside = iy >= 0 && iy < p->in_h;
                        if (y_inside && row_inside) {
                            acc += shoal_dot_s8(
                                image + ((size_t)iy * (size_t)p->in_w + (size_t)ix0) * (size_t)in_c,
                                w_row, row_len);
                            continue;
                        }
                        for (fx = 0; fx < p->filter_w; ++fx) {
                            const int32_t ix = ix0 + fx * p->dilation_w;
                            const int8_t *wt = w_row + fx * in_c;
                            if (!y_inside || ix < 0 || ix >= p->in_w) {
                                int32_t wsum = 0;
                                for (ic = 0; ic < in_c; ++ic) {
                                    wsum += wt[ic];
                                }
                                acc += wsum * p->input_zero_point;
                            } else {
                                acc += shoal_dot_s8(
                                    image + ((size_t)iy * (size_t)p->in_w + (size_t)ix) * (size_t)in_c,
                                    wt, in_c);
                            }
                        }
                    }
                    acc = shoal_requantize(acc, p->multiplier[oc], p->shift[oc]) + p->output_offset;
                    y[oc] = (int8_t)shoal_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

/* Channels are processed in blocks with accumulators on the stack, so the weights and the
 * input pixel are read contiguously and no arena scratch is needed. */
#define SHOAL_DW_BLOCK 32

SHOAL_NN_INLINE void shoal_nn_depthwise_conv_2d_s8_impl(const shoal_nn_depthwise_conv_2d_s8_params_t *p,
                                   const int8_t *input, const int8_t *weights, int8_t *output)
{
    int32_t acc[SHOAL_DW_BLOCK];
    const int32_t out_c = p->out_c;
    const int32_t mult = p->depth_multiplier;
    /* A block holds whole groups of `mult` output channels that share one input channel. */
    const int32_t step = (mult > 1 && mult <= SHOAL_DW_BLOCK) ? (SHOAL_DW_BLOCK / mult) * mult
                                                              : SHOAL_DW_BLOCK;
    int32_t b, oy, ox, c0, k, fy, fx, j, m;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + (size_t)b * (size_t)(p->in_h * p->in_w * p->in_c);
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int8_t *y = output + ((size_t)(b * p->out_h + oy) * (size_t)p->out_w + (size_t)ox)
                                         * (size_t)out_c;
                for (c0 = 0; c0 < out_c; c0 += step) {
                    const int32_t n = (out_c - c0) < step ? (out_c - c0) : step;
                    for (k = 0; k < n; ++k) {
                        acc[k] = p->bias[c0 + k];
                    }
                    for (fy = 0; fy < p->filter_h; ++fy) {
                        const int32_t iy = iy0 + fy * p->dilation_h;
                        for (fx = 0; fx < p->filter_w; ++fx) {
                            const int32_t ix = ix0 + fx * p->dilation_w;
                            const int8_t *wt = weights
                                + (size_t)(fy * p->filter_w + fx) * (size_t)out_c + (size_t)c0;
                            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                                for (k = 0; k < n; ++k) {
                                    acc[k] += (int32_t)wt[k] * p->input_zero_point;
                                }
                            } else {
                                const int8_t *x = image
                                    + ((size_t)iy * (size_t)p->in_w + (size_t)ix) * (size_t)p->in_c;
                                if (mult == 1 && n == SHOAL_DW_BLOCK) {
                                    const int8_t *xc = x + c0;
#if defined(SHOAL_HAVE_DSP)
                                    /* Four channels per word: halfword lanes via SXTB16, one
                                     * SMLABB/SMLATT per channel. */
                                    for (k = 0; k < SHOAL_DW_BLOCK; k += 4) {
                                        shoal_mac4_lanes_dsp(xc + k, wt + k, acc + k);
                                    }
#else
                                    /* Constant trip count: vectorised at -O2. */
                                    for (k = 0; k < SHOAL_DW_BLOCK; ++k) {
                                        acc[k] += (int32_t)xc[k] * (int32_t)wt[k];
                                    }
#endif
                                } else if (mult == 1) {
                                    const int8_t *xc = x + c0;
                                    for (k = 0; k < n; ++k) {
                                        acc[k] += (int32_t)xc[k] * (int32_t)wt[k];
                                    }
                                } else if (mult <= SHOAL_DW_BLOCK) {
                                    const int8_t *xc = x + c0 / mult;
                                    for (j = 0; j < n / mult; ++j) {
                                        const int32_t xv = xc[j];
                                        const int8_t *wj = wt + j * mult;
                                        int32_t *aj = acc + j * mult;
                                        for (m = 0; m < mult; ++m) {
                                            aj[m] += xv * (int32_t)wj[m];
                                        }
                                    }
                                } else {
                                    /* Output channel c reads input channel c / mult. */
                                    int32_t ic = c0 / mult;
                                    int32_t within = c0 - ic * mult;
                                    for (k = 0; k < n; ++k) {
                                        acc[k] += (int32_t)x[ic] * (int32_t)wt[k];
                                        if (++within == mult) {
                                            within = 0;
                                            ++ic;
                                        }
                                    }
                                }
                            }
                        }
                    }
                    for (k = 0; k < n; ++k) {
                        const int32_t v = shoal_requantize(acc[k], p->multiplier[c0 + k],
                                                           p->shift[c0 + k]) + p->output_offset;
                        y[c0 + k] = (int8_t)shoal_clamp(v, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}

#endif /* SHOAL_NN_CONV_IMPL_H */
