/* Shoal fixed-point helpers: the integer arithmetic TFLite Micro's reference kernels use.
 *
 * Responsible for: rounding high multiplies, rounding shifts, requantization and the gemmlowp
 * exp / reciprocal used by softmax, all bit-exact with TFLM (double rounding).
 * Must not: allocate, or depend on anything beyond <stdint.h>.
 */
#ifndef SHOAL_FIXEDPOINT_H
#define SHOAL_FIXEDPOINT_H

#include <stdint.h>
#include <string.h>

/* Kernel bodies are forced inline where the compiler allows it, so that a call with a
 * compile-time parameter block is specialised (constant loop bounds, vectorised blocks). */
#if defined(__GNUC__)
#define SHOAL_NN_INLINE static inline __attribute__((always_inline))
#else
#define SHOAL_NN_INLINE static inline
#endif

/* (a * b * 2) >> 32 with rounding half away from zero, saturating the one overflow case. */
static inline int32_t shoal_srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    int64_t nudged;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudged = ab + (ab >= 0 ? (int64_t)(1 << 30) : (int64_t)(1 - (1 << 30)));
    /* Division truncates toward zero, as gemmlowp's does; a plain shift would floor. */
    if (nudged < 0) {
        nudged += (((int64_t)1) << 31) - 1;
    }
    return (int32_t)(nudged >> 31);
}

/* x / 2^exponent rounded half away from zero (0 <= exponent <= 31). */
static inline int32_t shoal_rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)((((int64_t)1) << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^(shift - 31), TFLite's MultiplyByQuantizedMultiplier. */
static inline int32_t shoal_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int left = shift > 0 ? (int)shift : 0;
    const int right = shift > 0 ? 0 : (int)-shift;
    /* Shift as unsigned: TFLite's multiply wraps the same way but C makes signed overflow UB. */
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return shoal_rounding_divide_by_pot(shoal_srdhm(shifted, multiplier), right);
}

static inline int32_t shoal_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT for a positive exponent: saturating left shift. */
static inline int32_t shoal_saturating_shift_left(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)((((int64_t)1) << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a in [-1/4, 0), a and result in Q0.31. */
static inline int32_t shoal_exp_on_interval_neg_quarter_0(int32_t a)
{
    const int32_t constant_term = 1895147668;
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = shoal_srdhm(x, x);
    const int32_t x3 = shoal_srdhm(x2, x);
    const int32_t x4 = shoal_srdhm(x2, x2);
    const int32_t x4_over_4 = shoal_rounding_divide_by_pot(x4, 2);
    const int32_t poly = shoal_rounding_divide_by_pot(
        shoal_srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1);
    return constant_term + shoal_srdhm(constant_term, x + poly);
}

/* exp(a) for a <= 0 given in Q5.26; result in Q0.31 (gemmlowp exp_on_negative_values). */
static inline int32_t shoal_exp_on_negative_values_q5(int32_t a)
{
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308,
                                           39332535, 720401, 242};
    const int32_t one_quarter = 1 << 24;
    const int32_t a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter;
    int32_t result = shoal_exp_on_interval_neg_quarter_0(
        shoal_saturating_shift_left(a_mod_quarter_minus_one_quarter, 5));
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
    int k;
    for (k = 0; k < 7; ++k) {
        /* Bit (26 + exponent) of the remainder selects exp(-2^exponent), exponent -2..4. */
        if (remainder & (int32_t)(((uint32_t)1) << (24 + k))) {
            result = shoal_srdhm(result, multipliers[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1) in Q0.31 (gemmlowp one_over_one_plus_x_for_x_in_0_1). */
static inline int32_t shoal_one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + (int64_t)INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t constant_48_over_17 = 1515870810;
    const int32_t constant_neg_32_over_17 = -1010580540;
    int32_t x = constant_48_over_17 + shoal_srdhm(half_denominator, constant_neg_32_over_17);
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = shoal_srdhm(half_denominator, x);
        const int32_t one_minus = (1 << 29) - half_denominator_times_x;
        x = x + shoal_saturating_shift_left(shoal_srdhm(x, one_minus), 2);
    }
    return shoal_saturating_shift_left(x, 1);
}

static inline int shoal_count_leading_zeros(uint32_t x)
{
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* round(value) half away from zero, saturated to int32; no libm needed. */
static inline int32_t shoal_round_to_int32(float value)
{
    int32_t truncated;
    float fraction;
    if (!(value > -2147483648.0f)) {
        return INT32_MIN;
    }
    if (!(value < 2147483648.0f)) {
        return INT32_MAX;
    }
    truncated = (int32_t)value;
    fraction = value - (float)truncated; /* exact: both are floats of the same binade */
    if (fraction >= 0.5f) {
        ++truncated;
    } else if (fraction <= -0.5f) {
        --truncated;
    }
    return truncated;
}

#if defined(SHOAL_USE_DSP) && defined(__ARM_FEATURE_DSP)
#define SHOAL_HAVE_DSP 1
/* Sign-extend bytes 0,2 (even) and 1,3 (odd) of a word into halfword pairs. */
static inline uint32_t shoal_sxtb16(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(v));
    return r;
}

static inline uint32_t shoal_sxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* acc + lo(a)*lo(b) + hi(a)*hi(b) on signed halfwords. */
static inline int32_t shoal_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

static inline uint32_t shoal_load4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4); /* one unaligned LDR on Cortex-M4 */
    return v;
}

/* Four int8 MACs with two SMLADs. */
static inline int32_t shoal_dot4_dsp(const int8_t *a, const int8_t *b, int32_t acc)
{
    const uint32_t wa = shoal_load4(a);
    const uint32_t wb = shoal_load4(b);
    acc = shoal_smlad(shoal_sxtb16(wa), shoal_sxtb16(wb), acc);
    return shoal_smlad(shoal_sxtb16_ror8(wa), shoal_sxtb16_ror8(wb), acc);
}
#endif

/* sum of a[i] * b[i] for n int8 pairs. Fixed-size blocks let compilers vectorise at -O2;
 * the DSP path uses SMLAD; integer sums are exact, so every path gives the same result. */
static inline int32_t shoal_dot_s8(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    int32_t k;
#if defined(SHOAL_HAVE_DSP)
    for (k = n >> 2; k > 0; --k) {
        acc = shoal_dot4_dsp(a, b, acc);
        a += 4;
        b += 4;
    }
    k = n & 3;
#else
    for (k = n >> 4; k > 0; --k) {
        int32_t part = 0;
        int j;
        for (j = 0; j < 16; ++j) {
            part += (int32_t)a[j] * (int32_t)b[j];
        }
        acc += part;
        a += 16;
        b += 16;
    }
    k = n & 15;
#endif
    for (; k > 0; --k) {
        acc += (int32_t)*a++ * (int32_t)*b++;
    }
    return acc;
}

#if defined(SHOAL_HAVE_DSP)
/* acc[k] += x[k] * w[k] for k = 0..3 (four independent channels). */
static inline void shoal_mac4_lanes_dsp(const int8_t *x, const int8_t *w, int32_t *acc)
{
    const uint32_t xv = shoal_load4(x);
    const uint32_t wv = shoal_load4(w);
    const uint32_t xe = shoal_sxtb16(xv), xo = shoal_sxtb16_ror8(xv);
    const uint32_t we = shoal_sxtb16(wv), wo = shoal_sxtb16_ror8(wv);
    int32_t r;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(xe), "r"(we), "r"(acc[0]));
    acc[0] = r;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(xo), "r"(wo), "r"(acc[1]));
    acc[1] = r;
    __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(xe), "r"(we), "r"(acc[2]));
    acc[2] = r;
    __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(xo), "r"(wo), "r"(acc[3]));
    acc[3] = r;
}

/* Four dot products sharing the vector x (four weight rows), SMLAD only: the input word is
 * loaded and sign-extended once per four MACs of all four rows. acc[k] += x . w_k. */
static inline void shoal_dot4rows_dsp(const int8_t *x, const int8_t *w0, int32_t row_stride,
                                      int32_t n, int32_t *acc)
{
    const int8_t *w1 = w0 + row_stride;
    const int8_t *w2 = w1 + row_stride;
    const int8_t *w3 = w2 + row_stride;
    int32_t s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
    int32_t k;
    for (k = n >> 2; k > 0; --k) {
        const uint32_t xv = shoal_load4(x);
        const uint32_t xe = shoal_sxtb16(xv);
        const uint32_t xo = shoal_sxtb16_ror8(xv);
        uint32_t w = shoal_load4(w0);
        s0 = shoal_smlad(xe, shoal_sxtb16(w), s0);
        s0 = shoal_smlad(xo, shoal_sxtb16_ror8(w), s0);
        w = shoal_load4(w1);
        s1 = shoal_smlad(xe, shoal_sxtb16(w), s1);
        s1 = shoal_smlad(xo, shoal_sxtb16_ror8(w), s1);
        w = shoal_load4(w2);
        s2 = shoal_smlad(xe, shoal_sxtb16(w), s2);
        s2 = shoal_smlad(xo, shoal_sxtb16_ror8(w), s2);
        w = shoal_load4(w3);
        s3 = shoal_smlad(xe, shoal_sxtb16(w), s3);
        s3 = shoal_smlad(xo, shoal_sxtb16_ror8(w), s3);
        x += 4;
        w0 += 4;
        w1 += 4;
        w2 += 4;
        w3 += 4;
    }
    for (k = n & 3; k > 0; --k) {
        const int32_t xi = *x++;
        s0 += xi * *w0++;
        s1 += xi * *w1++;
        s2 += xi * *w2++;
        s3 += xi * *w3++;
    }
    acc[0] = s0;
    acc[1] = s1;
    acc[2] = s2;
    acc[3] = s3;
}
#endif

/* Two dot products sharing the vector x (two weight rows): x is loaded and sign-extended
 * once per four MACs of both rows. Results are added to *acc0 and *acc1. */
static inline void shoal_dot2_s8(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t n,
                                 int32_t *acc0, int32_t *acc1)
{
    int32_t s0 = *acc0;
    int32_t s1 = *acc1;
    int32_t k;
#if defined(SHOAL_HAVE_DSP)
    for (k = n >> 2; k > 0; --k) {
        const uint32_t xv = shoal_load4(x);
        const uint32_t x_even = shoal_sxtb16(xv);
        const uint32_t x_odd = shoal_sxtb16_ror8(xv);
        const uint32_t a = shoal_load4(w0);
        const uint32_t b = shoal_load4(w1);
        s0 = shoal_smlad(x_even, shoal_sxtb16(a), s0);
        s0 = shoal_smlad(x_odd, shoal_sxtb16_ror8(a), s0);
        s1 = shoal_smlad(x_even, shoal_sxtb16(b), s1);
        s1 = shoal_smlad(x_odd, shoal_sxtb16_ror8(b), s1);
        x += 4;
        w0 += 4;
        w1 += 4;
    }
    k = n & 3;
#else
    for (k = n >> 4; k > 0; --k) {
        int32_t p0 = 0;
        int32_t p1 = 0;
        int j;
        for (j = 0; j < 16; ++j) {
            p0 += (int32_t)x[j] * (int32_t)w0[j];
            p1 += (int32_t)x[j] * (int32_t)w1[j];
        }
        s0 += p0;
        s1 += p1;
        x += 16;
        w0 += 16;
        w1 += 16;
    }
    k = n & 15;
#endif
    for (; k > 0; --k) {
        const int32_t xi = *x++;
        s0 += xi * *w0++;
        s1 += xi * *w1++;
    }
    *acc0 = s0;
    *acc1 = s1;
}

#endif /* SHOAL_FIXEDPOINT_H */
