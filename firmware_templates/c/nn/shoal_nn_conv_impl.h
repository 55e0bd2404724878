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

/* TFLM's MultiplyByQuantizedMultiplier (double rounding) for a right shift of at least 2
 * (-31 <= shift <= -2) and multiplier >= 0, as one 64-bit multiply-add and three shifts.
 * With q = floor((x*m + 2^30) / 2^31) (the rounding doubling high multiply) and e = -shift,
 * rounding q / 2^e half away from zero is floor((q + 2^(e-1) - [q < 0]) / 2^e); nested floor
 * divisions merge, so the result is h = floor((x*m + nudge) / 2^32) rounded by 2^(e-1), where
 * nudge = +-2^30 by the sign of x (when -2^30 <= x*m < 0 both forms give 0, and with m = 0
 * the result is 0 either way). |h| <= 2^30, so 2h does not overflow. */
SHOAL_NN_INLINE int32_t shoal_dw_requantize_right(int32_t x, int32_t multiplier, int32_t shift)
{
    /* Low word 0x40000000 or 0xC0000000, sign-extended: +2^30 or -2^30. */
    const int32_t nudge = (int32_t)(((uint32_t)x & 0x80000000u) | 0x40000000u);
    const int32_t high = (int32_t)(((int64_t)x * (int64_t)multiplier + (int64_t)nudge) >> 32);
    /* ~shift == e - 1: floor(2h / 2^(e-1)) == floor(h / 2^(e-2)), then round off one bit. */
    return (((int32_t)((uint32_t)high << 1) >> ~shift) + 1) >> 1;
}

/* How a depthwise kernel requantizes, chosen once per call by checking every channel. */
enum { SHOAL_DW_RQ_ANY = 0, SHOAL_DW_RQ_RIGHT = 1, SHOAL_DW_RQ_SMALL = 2 };

/* The cheapest requantizer exact for every channel. SHOAL_DW_RQ_SMALL needs shifts in
 * [-31, -1] and |accumulator| < 2^30: callers pass `small_ok` only for windows of at most
 * 32 taps, where |acc| <= |bias| + 32 * 2^14 (int8 products, padded taps included), so
 * |bias| < 2^29 suffices. SHOAL_DW_RQ_RIGHT needs shifts in [-31, -2]. Both need
 * multipliers >= 0 (the planner's are in [0, 2^31)). */
SHOAL_NN_INLINE int shoal_dw_requantizer(const shoal_nn_depthwise_conv_2d_s8_params_t *p,
                                         int small_ok)
{
    int right = 1;
    int32_t c;
    for (c = 0; c < p->out_c; ++c) {
        const int32_t shift = p->shift[c];
        const int32_t bias = p->bias[c];
        if (shift > -2 || shift < -31 || p->multiplier[c] < 0) {
            right = 0;
        }
        if (shift > -1 || shift < -31 || p->multiplier[c] < 0 || bias >= (1 << 29)
            || bias <= -(1 << 29)) {
            small_ok = 0;
        }
    }
    return small_ok ? SHOAL_DW_RQ_SMALL : (right ? SHOAL_DW_RQ_RIGHT : SHOAL_DW_RQ_ANY);
}

#if defined(SHOAL_HAVE_DSP)
/* MultiplyByQuantizedMultiplier for -31 <= shift <= -1 and |x| < 2^30 (so 2x fits), with
 * one SMMLAR: (2^32 * (x >> 31) + 2x*m + 2^31) >> 32 == floor((x*m + nudge) / 2^31) =: g,
 * the accumulator word x >> 31 subtracting 2^32 exactly when x < 0 (the nudge of
 * shoal_dw_requantize_right), and the result is floor((g + 2^(e-1)) / 2^e) with
 * e = -shift, taken as two shifts by ~shift == e - 1. */
SHOAL_NN_INLINE int32_t shoal_dw_requantize_small(int32_t x, int32_t multiplier, int32_t shift)
{
    int32_t g;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(g) : "r"(x * 2), "r"(multiplier), "r"(x >> 31));
    return ((g >> ~shift) + 1) >> 1;
}
#endif

SHOAL_NN_INLINE int8_t shoal_dw_output(const shoal_nn_depthwise_conv_2d_s8_params_t *p,
                                       int32_t acc, int32_t c, int requantizer)
{
    int32_t v;
#if defined(SHOAL_HAVE_DSP)
    if (requantizer == SHOAL_DW_RQ_SMALL) {
        v = shoal_dw_requantize_small(acc, p->multiplier[c], p->shift[c]);
    } else
#endif
    if (requantizer == SHOAL_DW_RQ_RIGHT) {
        v = shoal_dw_requantize_right(acc, p->multiplier[c], p->shift[c]);
    } else {
        v = shoal_requantize(acc, p->multiplier[c], p->shift[c]);
    }
    v += p->output_offset;
#if defined(SHOAL_HAVE_DSP)
    if (p->act_min == -128 && p->act_max == 127) {
        int32_t r;
        __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
        return (int8_t)r;
    }
#endif
    return (int8_t)shoal_clamp(v, p->act_min, p->act_max);
}

#if defined(SHOAL_HAVE_DSP)
/* The window loops of the by-four kernel are unrolled completely: it is only instantiated
 * with a constant filter shape (the specialised build, or the 3x3 case of the size build). */
#if defined(__GNUC__) && !defined(__clang__)
#define SHOAL_DW_UNROLL _Pragma("GCC unroll 32")
#else
#define SHOAL_DW_UNROLL
#endif
#define SHOAL_DW_MAX_TAPS 32

/* acc[k] += x[k] * w[k] for four adjacent channels: halfword lanes via SXTB16 (channels 0,2
 * and 1,3), one SMLABB/SMLATT per channel. One asm block per tap keeps the compiler from
 * hoisting a whole window's sign-extended words ahead of the MACs (which spills). */
SHOAL_NN_INLINE void shoal_dw_mac4(const int8_t *x, const int8_t *w, int32_t *a0, int32_t *a1,
                                   int32_t *a2, int32_t *a3)
{
    const uint32_t xv = shoal_load4(x);
    const uint32_t wv = shoal_load4(w);
    uint32_t t0, t1;
    __asm__("sxtb16 %[t0], %[x]\n\t"
            "sxtb16 %[t1], %[w]\n\t"
            "smlabb %[a0], %[t0], %[t1], %[a0]\n\t"
            "smlatt %[a2], %[t0], %[t1], %[a2]\n\t"
            "sxtb16 %[t0], %[x], ror #8\n\t"
            "sxtb16 %[t1], %[w], ror #8\n\t"
            "smlabb %[a1], %[t0], %[t1], %[a1]\n\t"
            "smlatt %[a3], %[t0], %[t1], %[a3]"
            : [t0] "=&r"(t0), [t1] "=&r"(t1), [a0] "+r"(*a0), [a1] "+r"(*a1), [a2] "+r"(*a2),
              [a3] "+r"(*a3)
            : [x] "r"(xv), [w] "r"(wv));
}

/* acc[k] += zero_point * w[k]: a tap in the padding reads the input zero point. */
SHOAL_NN_INLINE void shoal_dw_pad4(uint32_t zero_point, const int8_t *w, int32_t *a0,
                                   int32_t *a1, int32_t *a2, int32_t *a3)
{
    const uint32_t wv = shoal_load4(w);
    uint32_t t;
    __asm__("sxtb16 %[t], %[w]\n\t"
            "smlabb %[a0], %[t], %[z], %[a0]\n\t"
            "smlatb %[a2], %[t], %[z], %[a2]\n\t"
            "sxtb16 %[t], %[w], ror #8\n\t"
            "smlabb %[a1], %[t], %[z], %[a1]\n\t"
            "smlatb %[a3], %[t], %[z], %[a3]"
            : [t] "=&r"(t), [a0] "+r"(*a0), [a1] "+r"(*a1), [a2] "+r"(*a2), [a3] "+r"(*a3)
            : [w] "r"(wv), [z] "r"(zero_point));
}

SHOAL_NN_INLINE void shoal_dw_store4(const shoal_nn_depthwise_conv_2d_s8_params_t *p, int8_t *y,
                                     int32_t c, int requantizer, int32_t a0, int32_t a1,
                                     int32_t a2, int32_t a3)
{
#if defined(__OPTIMIZE_SIZE__)
    /* One copy of the requantization instead of four. */
    const int32_t acc[4] = {a0, a1, a2, a3};
    int32_t k;
    for (k = 0; k < 4; ++k) {
        y[c + k] = shoal_dw_output(p, acc[k], c + k, requantizer);
    }
#else
    y[c] = shoal_dw_output(p, a0, c, requantizer);
    y[c + 1] = shoal_dw_output(p, a1, c + 1, requantizer);
    y[c + 2] = shoal_dw_output(p, a2, c + 2, requantizer);
    y[c + 3] = shoal_dw_output(p, a3, c + 3, requantizer);
#endif
}

/* Depth multiplier 1, a multiple of four channels, fh * fw <= SHOAL_DW_MAX_TAPS: four channels
 * at a time with their accumulators in registers over the whole (unrolled) window. Bit t of
 * `inside` says whether tap t = fy * fw + fx reads the image; a tap in the padding adds
 * input_zero_point * w, exactly what the folded bias expects. */
SHOAL_NN_INLINE void shoal_dw_by4_s8(const shoal_nn_depthwise_conv_2d_s8_params_t *p,
                                     const int8_t *input, const int8_t *weights, int8_t *output,
                                     const int32_t fh, const int32_t fw)
{
    const int32_t ch = p->out_c;
    const int32_t tap_x = p->dilation_w * ch;
    const int32_t row_x = p->dilation_h * p->in_w * ch;
    /* The zero point in the bottom halfword, as SMLAxB reads it. */
    const uint32_t zp = (uint32_t)(uint16_t)(int16_t)p->input_zero_point;
    const int requantizer = shoal_dw_requantizer(p, 1);
    int32_t b, oy, ox, c, fy, fx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + (size_t)b * (size_t)(p->in_h * p->in_w * ch);
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            uint32_t rows = 0; /* bit fy: row iy0 + fy * dilation_h is inside */
            for (fy = 0; fy < fh; ++fy) {
                const int32_t iy = iy0 + fy * p->dilation_h;
                rows |= (uint32_t)(iy >= 0 && iy < p->in_h) << fy;
            }
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int8_t *y = output + ((size_t)(b * p->out_h + oy) * (size_t)p->out_w + (size_t)ox)
                                         * (size_t)ch;
                /* Window origin as an offset: it may lie outside the image, the taps read
                 * do not. */
                const int32_t x0 = (iy0 * p->in_w + ix0) * ch;
                uint32_t inside = 0;
                for (fy = 0; fy < fh; ++fy) {
                    for (fx = 0; fx < fw; ++fx) {
                        const int32_t ix = ix0 + fx * p->dilation_w;
                        inside |= (uint32_t)(((rows >> fy) & 1u) != 0 && ix >= 0 && ix < p->in_w)
                                  << (fy * fw + fx);
                    }
                }
#if !defined(__OPTIMIZE_SIZE__)
                /* Inside the image: the same window without per-tap tests (not worth its
                 * code in the size build). */
                if (inside == (fh * fw == 32 ? 0xFFFFFFFFu : ((uint32_t)1 << (fh * fw)) - 1u)) {
                    const int8_t *xw = image + x0;
                    for (c = 0; c < ch; c += 4) {
                        int32_t a0 = p->bias[c], a1 = p->bias[c + 1];
                        int32_t a2 = p->bias[c + 2], a3 = p->bias[c + 3];
                        SHOAL_DW_UNROLL
                        for (fy = 0; fy < fh; ++fy) {
                            SHOAL_DW_UNROLL
                            for (fx = 0; fx < fw; ++fx) {
                                shoal_dw_mac4(xw + fy * row_x + fx * tap_x + c,
                                              weights + (fy * fw + fx) * ch + c, &a0, &a1, &a2,
                                              &a3);
                            }
                        }
                        shoal_dw_store4(p, y, c, requantizer, a0, a1, a2, a3);
                    }
                    continue;
                }
#endif
                for (c = 0; c < ch; c += 4) {
                    int32_t a0 = p->bias[c], a1 = p->bias[c + 1];
                    int32_t a2 = p->bias[c + 2], a3 = p->bias[c + 3];
                    SHOAL_DW_UNROLL
                    for (fy = 0; fy < fh; ++fy) {
                        SHOAL_DW_UNROLL
                        for (fx = 0; fx < fw; ++fx) {
                            const int8_t *wt = weights + (fy * fw + fx) * ch + c;
                            if (inside & ((uint32_t)1 << (fy * fw + fx))) {
                                shoal_dw_mac4(image + (x0 + fy * row_x + fx * tap_x + c), wt,
                                              &a0, &a1, &a2, &a3);
                            } else {
                                shoal_dw_pad4(zp, wt, &a0, &a1, &a2, &a3);
                            }
                        }
                    }
                    shoal_dw_store4(p, y, c, requantizer, a0, a1, a2, a3);
                }
            }
        }
    }
}
#endif

/* Channels in blocks with accumulators on the stack, so the weights and the input pixel are
 * read contiguously and no arena scratch is needed. */
#define SHOAL_DW_BLOCK 32

SHOAL_NN_INLINE void shoal_dw_blocked_s8(const shoal_nn_depthwise_conv_2d_s8_params_t *p,
                                         const int8_t *input, const int8_t *weights,
                                         int8_t *output)
{
    int32_t acc[SHOAL_DW_BLOCK];
    const int32_t out_c = p->out_c;
    const int32_t mult = p->depth_multiplier;
    /* A block holds whole groups of `mult` output channels that share one input channel. */
    const int32_t step = (mult > 1 && mult <= SHOAL_DW_BLOCK) ? (SHOAL_DW_BLOCK / mult) * mult
                                                              : SHOAL_DW_BLOCK;
    const int requantizer = shoal_dw_requantizer(p, 0);
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
                        y[c0 + k] = shoal_dw_output(p, acc[k], c0 + k, requantizer);
                    }
                }
            }
        }
    }
}

#if defined(SHOAL_HAVE_DSP) && defined(__OPTIMIZE_SIZE__)
/* Out of line in the size build: inlined next to the blocked kernel, the register pressure
 * of both bodies in one function slows the blocked loops down. */
static __attribute__((noinline, unused)) void shoal_dw_by4_3x3_s8(
    const shoal_nn_depthwise_conv_2d_s8_params_t *p, const int8_t *input, const int8_t *weights,
    int8_t *output)
{
    shoal_dw_by4_s8(p, input, weights, output, 3, 3);
}
#endif

SHOAL_NN_INLINE void shoal_nn_depthwise_conv_2d_s8_impl(const shoal_nn_depthwise_conv_2d_s8_params_t *p,
                                   const int8_t *input, const int8_t *weights, int8_t *output)
{
#if defined(SHOAL_HAVE_DSP)
    if (p->depth_multiplier == 1 && (p->out_c & 3) == 0) {
#if defined(__OPTIMIZE_SIZE__)
        /* Size build (runtime parameters): one unrolled instance, for the common 3x3. */
        if (p->filter_h == 3 && p->filter_w == 3) {
            shoal_dw_by4_3x3_s8(p, input, weights, output);
            return;
        }
#else
        /* Speed build: the parameter block is normally constant (specialised), so the
         * filter shape is and the window unrolls. */
        if (p->filter_h * p->filter_w <= SHOAL_DW_MAX_TAPS) {
            shoal_dw_by4_s8(p, input, weights, output, p->filter_h, p->filter_w);
            return;
        }
#endif
    }
#endif
    shoal_dw_blocked_s8(p, input, weights, output);
}

#endif /* SHOAL_NN_CONV_IMPL_H */
