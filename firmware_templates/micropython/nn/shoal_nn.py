"""Shoal int8 neural-network kernels for MicroPython, bit-exact with TensorFlow Lite Micro.

Responsible for: the kernels a generated model module calls (one function per kernel id of
the Shoal compiler), written in plain Python that every MicroPython port runs, and choosing
at import the faster viper kernels of `shoal_nn_viper` when that module imports (a port with
the native emitter); `set_backend("bytecode")` forces this file's kernels, e.g. in tests.
Both give identical integers: the arithmetic mirrors Shoal's C kernels (firmware_templates/c/nn).

Calling convention: `kernel(p, [q,] inputs..., outputs..., [states..., scratch])`. `p` holds
the scalar parameters in the order each kernel documents (an array('i'), or a tuple when one
is a float); `q` is a bytes object of per-output-channel int32 triples (bias, multiplier,
shift), little-endian; tensors are buffers (bytes, bytearray, memoryview) of raw
little-endian values. Kernels keep no state. The viper kernels allocate nothing; these
bytecode ones allocate where Python ints exceed a port's small-int range (int32 products
on 32-bit ports), in the float edge kernels (struct) and in the byte-moving slices.

Must not: know any model; import anything beyond array/struct (and shoal_nn_viper).
"""

import struct
from array import array

INT32_MIN = -2147483648
INT32_MAX = 2147483647
BACKEND = "bytecode"


# --- fixed-point helpers (TFLite/gemmlowp semantics on int32 values) -------------------------


def _wrap32(x):
    return ((x + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul: (a * b * 2) >> 32, rounded."""
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    if ab >= 0:
        return (ab + 0x40000000) >> 31
    # C division truncates toward zero; work on the magnitude.
    return -((0x3FFFFFFF - ab) >> 31)


def rdbp(x, exponent):
    """RoundingDivideByPOT: x / 2**exponent rounded half away from zero."""
    if exponent <= 0:
        return x
    mask = (1 << exponent) - 1
    threshold = mask >> 1
    if x < 0:
        threshold += 1
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


def requantize(x, multiplier, shift):
    """TFLite MultiplyByQuantizedMultiplier: x * multiplier * 2**(shift - 31)."""
    if shift > 0:
        return srdhm(_wrap32(x << shift), multiplier)
    return rdbp(srdhm(x, multiplier), -shift)


def _s8(v):
    return (v ^ 0x80) - 0x80


def _i32(buf, k):
    """Signed little-endian int32 at byte offset k."""
    return (buf[k] | (buf[k + 1] << 8) | (buf[k + 2] << 16) | (_s8(buf[k + 3]) << 24))


def _i16(buf, k):
    return buf[k] | (_s8(buf[k + 1]) << 8)


def _put16(buf, k, v):
    buf[k] = v & 0xFF
    buf[k + 1] = (v >> 8) & 0xFF


def _clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


# --- kernels ---------------------------------------------------------------------------------


def fully_connected_s8(p, q, x, w, y):
    """p: batches, in_depth, out_depth, output_offset, act_min, act_max."""
    batches = p[0]
    depth = p[1]
    out_depth = p[2]
    out_off = p[3]
    lo = p[4]
    hi = p[5]
    for b in range(batches):
        xb = b * depth
        for o in range(out_depth):
            k = 12 * o
            acc = _i32(q, k)
            wo = o * depth
            for i in range(depth):
                acc += _s8(x[xb + i]) * _s8(w[wo + i])
            v = requantize(acc, _i32(q, k + 4), _i32(q, k + 8)) + out_off
            y[b * out_depth + o] = _clamp(v, lo, hi) & 0xFF


def conv_2d_s8(p, q, x, w, y):
    """p: batches, in_h, in_w, in_c, out_h, out_w, out_c, filter_h, filter_w, stride_h,
    stride_w, dilation_h, dilation_w, pad_h, pad_w, input_zero_point, output_offset,
    act_min, act_max. Weights OHWI; padded taps read the input zero point."""
    batches = p[0]
    in_h = p[1]
    in_w = p[2]
    in_c = p[3]
    out_h = p[4]
    out_w = p[5]
    out_c = p[6]
    fh = p[7]
    fw = p[8]
    sh = p[9]
    sw = p[10]
    dh = p[11]
    dw = p[12]
    ph = p[13]
    pw = p[14]
    in_zp = p[15]
    out_off = p[16]
    lo = p[17]
    hi = p[18]
    fsize = fh * fw * in_c
    yi = 0
    for b in range(batches):
        xb = b * in_h * in_w * in_c
        for oy in range(out_h):
            iy0 = oy * sh - ph
            for ox in range(out_w):
                ix0 = ox * sw - pw
                for oc in range(out_c):
                    k = 12 * oc
                    acc = _i32(q, k)
                    wo = oc * fsize
                    for ky in range(fh):
                        iy = iy0 + ky * dh
                        for kx in range(fw):
                            ix = ix0 + kx * dw
                            wt = wo + (ky * fw + kx) * in_c
                            if iy < 0 or iy >= in_h or ix < 0 or ix >= in_w:
                                wsum = 0
                                for c in range(in_c):
                                    wsum += _s8(w[wt + c])
                                acc += wsum * in_zp
                            else:
                                xt = xb + (iy * in_w + ix) * in_c
                                for c in range(in_c):
                                    acc += _s8(x[xt + c]) * _s8(w[wt + c])
                    v = requantize(acc, _i32(q, k + 4), _i32(q, k + 8)) + out_off
                    y[yi] = _clamp(v, lo, hi) & 0xFF
                    yi += 1


def depthwise_conv_2d_s8(p, q, x, w, y):
    """p: batches, in_h, in_w, in_c, out_h, out_w, out_c, depth_multiplier, filter_h,
    filter_w, stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w, input_zero_point,
    output_offset, act_min, act_max. Weights [1, H, W, out_c]."""
    batches = p[0]
    in_h = p[1]
    in_w = p[2]
    in_c = p[3]
    out_h = p[4]
    out_w = p[5]
    out_c = p[6]
    mult = p[7]
    fh = p[8]
    fw = p[9]
    sh = p[10]
    sw = p[11]
    dh = p[12]
    dw = p[13]
    ph = p[14]
    pw = p[15]
    in_zp = p[16]
    out_off = p[17]
    lo = p[18]
    hi = p[19]
    yi = 0
    for b in range(batches):
        xb = b * in_h * in_w * in_c
        for oy in range(out_h):
            iy0 = oy * sh - ph
            for ox in range(out_w):
                ix0 = ox * sw - pw
                for oc in range(out_c):
                    k = 12 * oc
                    acc = _i32(q, k)
                    ic = oc // mult
                    for ky in range(fh):
                        iy = iy0 + ky * dh
                        for kx in range(fw):
                            ix = ix0 + kx * dw
                            wv = _s8(w[(ky * fw + kx) * out_c + oc])
                            if iy < 0 or iy >= in_h or ix < 0 or ix >= in_w:
                                acc += wv * in_zp
                            else:
                                acc += _s8(x[xb + (iy * in_w + ix) * in_c + ic]) * wv
                    v = requantize(acc, _i32(q, k + 4), _i32(q, k + 8)) + out_off
                    y[yi] = _clamp(v, lo, hi) & 0xFF
                    yi += 1


def average_pool_2d_s8(p, x, y):
    """p: batches, in_h, in_w, channels, out_h, out_w, filter_h, filter_w, stride_h,
    stride_w, pad_h, pad_w, act_min, act_max. Padding is not counted in the mean."""
    batches = p[0]
    in_h = p[1]
    in_w = p[2]
    ch = p[3]
    out_h = p[4]
    out_w = p[5]
    fh = p[6]
    fw = p[7]
    sh = p[8]
    sw = p[9]
    ph = p[10]
    pw = p[11]
    lo = p[12]
    hi = p[13]
    yi = 0
    for b in range(batches):
        for oy in range(out_h):
            iy0 = oy * sh - ph
            y0 = -iy0 if iy0 < 0 else 0
            y1 = min(in_h - iy0, fh)
            for ox in range(out_w):
                ix0 = ox * sw - pw
                x0 = -ix0 if ix0 < 0 else 0
                x1 = min(in_w - ix0, fw)
                count = (y1 - y0) * (x1 - x0)
                for c in range(ch):
                    total = 0
                    for ky in range(y0, y1):
                        row = ((b * in_h + iy0 + ky) * in_w + ix0) * ch + c
                        for kx in range(x0, x1):
                            total += _s8(x[row + kx * ch])
                    if count == 0:
                        avg = 0
                    elif total > 0:
                        avg = (total + count // 2) // count
                    else:
                        avg = -((count // 2 - total) // count)
                    y[yi] = _clamp(avg, lo, hi) & 0xFF
                    yi += 1


def binary_s8(p, a, b, y):
    """ADD (op 0), SUB (op 1), MUL (op 2) with broadcasting over a 4-D output.
    p: op, dim0..dim3, stride1_0..stride1_3, stride2_0..stride2_3 (element strides of each
    input, 0 where broadcast), input1_offset, input2_offset, left_shift, input1_multiplier,
    input1_shift, input2_multiplier, input2_shift, output_multiplier, output_shift,
    output_offset, act_min, act_max. y may be an input of the output's shape."""
    op = p[0]
    d0 = p[1]
    d1 = p[2]
    d2 = p[3]
    d3 = p[4]
    s10 = p[5]
    s11 = p[6]
    s12 = p[7]
    s13 = p[8]
    s20 = p[9]
    s21 = p[10]
    s22 = p[11]
    s23 = p[12]
    off1 = p[13]
    off2 = p[14]
    left = p[15]
    m1 = p[16]
    e1 = p[17]
    m2 = p[18]
    e2 = p[19]
    mo = p[20]
    eo = p[21]
    out_off = p[22]
    lo = p[23]
    hi = p[24]
    yi = 0
    for i0 in range(d0):
        for i1 in range(d1):
            for i2 in range(d2):
                ka = i0 * s10 + i1 * s11 + i2 * s12
                kb = i0 * s20 + i1 * s21 + i2 * s22
                for i3 in range(d3):
                    x1 = off1 + _s8(a[ka + i3 * s13])
                    x2 = off2 + _s8(b[kb + i3 * s23])
                    if op == 2:
                        v = requantize(x1 * x2, mo, eo)
                    else:
                        sa = requantize(_wrap32(x1 << left), m1, e1)
                        sb = requantize(_wrap32(x2 << left), m2, e2)
                        v = requantize(sa + sb if op == 0 else sa - sb, mo, eo)
                    y[yi] = _clamp(v + out_off, lo, hi) & 0xFF
                    yi += 1


def lut_s8(p, table, x, y):
    """p: size. y[i] = table[x[i] + 128] (any int8 -> int8 function); y may be x."""
    for i in range(p[0]):
        y[i] = table[_s8(x[i]) + 128]


def max_pool_2d_s8(p, x, y):
    """p as average_pool_2d_s8."""
    batches = p[0]
    in_h = p[1]
    in_w = p[2]
    ch = p[3]
    out_h = p[4]
    out_w = p[5]
    fh = p[6]
    fw = p[7]
    sh = p[8]
    sw = p[9]
    ph = p[10]
    pw = p[11]
    lo = p[12]
    hi = p[13]
    yi = 0
    for b in range(batches):
        for oy in range(out_h):
            iy0 = oy * sh - ph
            y0 = -iy0 if iy0 < 0 else 0
            y1 = min(in_h - iy0, fh)
            for ox in range(out_w):
                ix0 = ox * sw - pw
                x0 = -ix0 if ix0 < 0 else 0
                x1 = min(in_w - ix0, fw)
                for c in range(ch):
                    best = -128
                    for ky in range(y0, y1):
                        row = ((b * in_h + iy0 + ky) * in_w + ix0) * ch + c
                        for kx in range(x0, x1):
                            v = _s8(x[row + kx * ch])
                            if v > best:
                                best = v
                    y[yi] = _clamp(best, lo, hi) & 0xFF
                    yi += 1


def mean_s8(p, x, y):
    """MEAN over the flagged axes of a 4-D input. p: dim0..dim3, reduce0..reduce3,
    sum_offset, multiplier, shift, output_zero_point."""
    d = (p[0], p[1], p[2], p[3])
    n = [1 if p[4 + k] else d[k] for k in range(4)]
    m = [d[k] if p[4 + k] else 1 for k in range(4)]
    sum_off = p[8]
    mult = p[9]
    shift = p[10]
    out_zp = p[11]
    yi = 0
    for i0 in range(n[0]):
        for i1 in range(n[1]):
            for i2 in range(n[2]):
                for i3 in range(n[3]):
                    total = 0
                    for j0 in range(m[0]):
                        for j1 in range(m[1]):
                            for j2 in range(m[2]):
                                row = (((i0 + j0) * d[1] + i1 + j1) * d[2] + i2 + j2) * d[3] + i3
                                for j3 in range(m[3]):
                                    total += _s8(x[row + j3])
                    v = requantize(total + sum_off, mult, shift) + out_zp
                    y[yi] = _clamp(v, -128, 127) & 0xFF
                    yi += 1


def pad_s8(p, x, y):
    """PAD/PADV2 over 4-D. p: in_dim0..in_dim3, out_dim0..out_dim3, before0..before3, value."""
    i_d1 = p[1]
    i_d2 = p[2]
    i_d3 = p[3]
    o_d1 = p[5]
    o_d2 = p[6]
    o_d3 = p[7]
    b0 = p[8]
    b1 = p[9]
    b2 = p[10]
    b3 = p[11]
    fill = p[12] & 0xFF
    for k in range(p[4] * o_d1 * o_d2 * o_d3):
        y[k] = fill
    for i0 in range(p[0]):
        for i1 in range(i_d1):
            for i2 in range(i_d2):
                src = ((i0 * i_d1 + i1) * i_d2 + i2) * i_d3
                dst = (((i0 + b0) * o_d1 + i1 + b1) * o_d2 + i2 + b2) * o_d3 + b3
                y[dst : dst + i_d3] = x[src : src + i_d3]


def gather_s8(p, x, y):
    """TRANSPOSE and STRIDED_SLICE: y[i0][i1][i2][i3] = x[base + sum(ik * stride_k)].
    p: dim0..dim3, stride0..stride3 (may be negative), base."""
    d0 = p[0]
    d1 = p[1]
    d2 = p[2]
    d3 = p[3]
    s0 = p[4]
    s1 = p[5]
    s2 = p[6]
    s3 = p[7]
    base = p[8]
    yi = 0
    for i0 in range(d0):
        for i1 in range(d1):
            for i2 in range(d2):
                k = base + i0 * s0 + i1 * s1 + i2 * s2
                for i3 in range(d3):
                    y[yi] = x[k + i3 * s3]
                    yi += 1


def concat_s8(p, sizes, inputs, y):
    """CONCATENATION. p: count, outer; for each of `outer` slices input k contributes
    sizes[k] contiguous bytes."""
    yi = 0
    for o in range(p[1]):
        for k in range(p[0]):
            n = sizes[k]
            y[yi : yi + n] = inputs[k][o * n : o * n + n]
            yi += n


def requantize_s8(p, x, y):
    """p: size, input_zero_point, output_zero_point, multiplier, shift. y may be x."""
    size = p[0]
    in_zp = p[1]
    out_zp = p[2]
    m = p[3]
    s = p[4]
    for i in range(size):
        v = requantize(_s8(x[i]) - in_zp, m, s) + out_zp
        y[i] = _clamp(v, -128, 127) & 0xFF


def _round_to_int32(v):
    """round half away from zero, saturated to int32 (NaN -> INT32_MIN), like the C kernel."""
    if not v > -2147483648.0:
        return INT32_MIN
    if not v < 2147483648.0:
        return INT32_MAX
    t = int(v)
    frac = v - t
    if frac >= 0.5:
        t += 1
    elif frac <= -0.5:
        t -= 1
    return t


_F32 = array("f", [0.0])


def quantize_f32_s8(p, x, y):
    """p: size, scale (float), zero_point. x holds float32 values."""
    size = p[0]
    scale = p[1]
    zp = p[2]
    f = _F32
    for i in range(size):
        # Divide, then round to float32: on ports whose float is a double this is the
        # float32 quotient exactly (53 >= 2 * 24 + 2 bits), as TFLite computes it.
        f[0] = struct.unpack_from("<f", x, 4 * i)[0] / scale
        y[i] = _clamp(_round_to_int32(f[0]) + zp, -128, 127) & 0xFF


def dequantize_s8_f32(p, x, y):
    """p: size, scale (float), zero_point. y receives float32 values."""
    size = p[0]
    scale = p[1]
    zp = p[2]
    for i in range(size):
        # scale * small integer is exact in a double; packing rounds it once to float32.
        struct.pack_into("<f", y, 4 * i, scale * (_s8(x[i]) - zp))


def copy(p, x, y):
    """p: bytes."""
    n = p[0]
    if x is not y:
        y[0:n] = x[0:n]


def softmax_s8(p, x, y):
    """p: rows, depth, input_multiplier, input_left_shift, diff_min. Output scale 1/256,
    zero point -128; y may be x."""
    rows = p[0]
    depth = p[1]
    mult = p[2]
    left = p[3]
    diff_min = p[4]
    for r in range(rows):
        base = r * depth
        top = -128
        for c in range(depth):
            v = _s8(x[base + c])
            if v > top:
                top = v
        total = 0
        for c in range(depth):
            diff = _s8(x[base + c]) - top
            if diff >= diff_min:
                total += rdbp(_exp_on_negative_values(srdhm(_wrap32(diff << left), mult)), 12)
        headroom = _clz32(total)
        scale = _one_over_one_plus_x(((total << headroom) & 0xFFFFFFFF) - 0x80000000)
        exponent = 12 - headroom + 31 - 8
        # Each element is read before it is written, so y may alias x.
        for c in range(depth):
            diff = _s8(x[base + c]) - top
            if diff >= diff_min:
                e = _exp_on_negative_values(srdhm(_wrap32(diff << left), mult))
                v = _clamp(rdbp(srdhm(scale, e), exponent) - 128, -128, 127)
            else:
                v = -128
            y[base + c] = v & 0xFF


def _clz32(x):
    if x <= 0:
        return 32 if x == 0 else 0
    n = 0
    while x < 0x80000000:
        x <<= 1
        n += 1
    return n


def _saturating_shift_left(x, exponent):
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x << exponent


def _exp_on_interval(a):
    x = a + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4_over_4 = rdbp(srdhm(x2, x2), 2)
    poly = rdbp(srdhm(x4_over_4 + x3, 715827883) + x2, 1)
    return 1895147668 + srdhm(1895147668, x + poly)


_EXP_MULTIPLIERS = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)


def _exp_on_negative_values(a):
    """exp(a) for a <= 0 in Q5.26, result Q0.31."""
    if a == 0:
        return INT32_MAX
    quarter = 1 << 24
    mod = (a & (quarter - 1)) - quarter
    result = _exp_on_interval(_saturating_shift_left(mod, 5))
    remainder = mod - a
    for k in range(7):
        if remainder & (1 << (24 + k)):
            result = srdhm(result, _EXP_MULTIPLIERS[k])
    return result


def _one_over_one_plus_x(a):
    half = (a + INT32_MAX + 1) >> 1
    x = 1515870810 + srdhm(half, -1010580540)
    for _ in range(3):
        x = x + _saturating_shift_left(srdhm(x, (1 << 29) - srdhm(half, x)), 2)
    return _saturating_shift_left(x, 1)


# --- UNIDIRECTIONAL_SEQUENCE_LSTM (integer 8x8->16) ------------------------------------------

# sigmoid(i / 24) in unsigned Q0.16, i = 0..255, midpoint-corrected for linear interpolation:
# derived by codegen/ops/sigmoid_table.py (tests/codegen/test_sigmoid_table.py keeps this copy,
# the C kernel's and the derivation equal). Stored, not computed here: ports with single-
# precision floats would round some entries differently.
_SIGMOID_LUT = array("H", (
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
))


def _clamp16(v):
    return -32768 if v < -32768 else (32767 if v > 32767 else v)


def _sigmoid_q12(v):
    """Q3.12 -> Q0.15 logistic (TFLite int16 Logistic)."""
    x = v * 3
    ax = -x if x < 0 else x
    uh = ax >> 9
    if uh >= 255:
        result = 0x7FFF << 10
    else:
        ua = _SIGMOID_LUT[uh]
        result = (ua << 9) + (ax & 0x1FF) * (_SIGMOID_LUT[uh + 1] - ua)
    if x >= 0:
        result += 1 << 9
    else:
        result = (1 << 25) - result + (1 << 9) - 1
    return _s16(result >> 10)


def _s16(v):
    v &= 0xFFFF
    return v - 0x10000 if v & 0x8000 else v


def _tanh_s16(v, multiplier, right_shift):
    """tanh of int16 v scaled by multiplier / 2**right_shift into Q3.12; output Q0.15."""
    rnd = (1 << (right_shift - 1)) if right_shift > 0 else 0
    x = (v * multiplier + rnd) >> right_shift
    ax = -x if x < 0 else x
    uh = ax >> 8
    if uh >= 255:
        result = 0xFFFF << 8
    else:
        ua = _SIGMOID_LUT[uh]
        result = (ua << 8) + (ax & 0xFF) * (_SIGMOID_LUT[uh + 1] - ua)
    if x >= 0:
        result = result - (1 << 23) + (1 << 7)
    else:
        result = -result + (1 << 23) + (1 << 7) - 1
    return _s16(result >> 8)


def dot_s8(a, a_off, b, b_off, n):
    """sum(a[a_off + i] * b[b_off + i]) over n signed bytes."""
    acc = 0
    for i in range(n):
        acc += _s8(a[a_off + i]) * _s8(b[b_off + i])
    return acc


def _lstm_gate(p, arrays, gate, x, x_off, h, h_off, out, out_off):
    """out[s] (int16 at out + 2 * (out_off + s)) = sat16(FC(x) + FC(h)) for gate `gate`."""
    w_in, w_rec, bias_in, bias_rec, in_m, in_s, rec_m, rec_s = arrays
    rows = p[1]
    in_dim = p[3]
    state = p[4]
    dot = _DOT[0]
    m_in = in_m[gate]
    s_in = in_s[gate]
    m_rec = rec_m[gate]
    s_rec = rec_s[gate]
    for r in range(rows):
        for s in range(state):
            row = gate * state + s
            from_input = _clamp16(requantize(
                bias_in[row] + dot(x, x_off + r * in_dim, w_in, row * in_dim, in_dim), m_in, s_in))
            from_hidden = _clamp16(requantize(
                bias_rec[row] + dot(h, h_off + r * state, w_rec, row * state, state),
                m_rec, s_rec))
            _put16(out, 2 * (out_off + r * state + s), _clamp16(from_input + from_hidden))


def lstm_s8(p, arrays, x, y, hidden, cell, scratch):
    """p: outer_batches, step_batches, time_steps, input_dim, state_dim,
    forget_cell_multiplier, forget_cell_shift, input_cell_multiplier, input_cell_shift,
    hidden_multiplier, hidden_shift, hidden_zero_point, tanh_multiplier, tanh_right_shift,
    cell_clip. arrays: (w_in, w_rec, bias_in, bias_rec, in_multiplier, in_shift,
    rec_multiplier, rec_shift). hidden (int8) and cell (int16) are updated in place;
    scratch holds 4 * step_batches * state_dim int16 values (forget, input, cell, output)."""
    outer = p[0]
    rows = p[1]
    steps = p[2]
    in_dim = p[3]
    state = p[4]
    fc_m = p[5]
    fc_s = p[6]
    ic_m = p[7]
    ic_s = p[8]
    h_m = p[9]
    h_s = p[10]
    h_zp = p[11]
    t_m = p[12]
    t_rs = p[13]
    clip = p[14]
    n = rows * state
    fg = 0
    ig = n
    cg = 2 * n
    og = 3 * n
    x_off = 0
    y_off = 0
    for b in range(outer):
        h_off = b * state
        for _t in range(steps):
            _lstm_gate(p, arrays, 1, x, x_off, hidden, h_off, scratch, fg)
            _lstm_gate(p, arrays, 0, x, x_off, hidden, h_off, scratch, ig)
            _lstm_gate(p, arrays, 2, x, x_off, hidden, h_off, scratch, cg)
            for i in range(n):
                _put16(scratch, 2 * (fg + i), _sigmoid_q12(_i16(scratch, 2 * (fg + i))))
                _put16(scratch, 2 * (ig + i), _sigmoid_q12(_i16(scratch, 2 * (ig + i))))
                _put16(scratch, 2 * (cg + i), _tanh_s16(_i16(scratch, 2 * (cg + i)), 3, 0))
            for i in range(n):
                c_at = 2 * (h_off + i)
                kept = _clamp16(requantize(
                    _i16(scratch, 2 * (fg + i)) * _i16(cell, c_at), fc_m, fc_s))
                added = _clamp16(requantize(
                    _i16(scratch, 2 * (ig + i)) * _i16(scratch, 2 * (cg + i)), ic_m, ic_s))
                updated = _clamp16(kept + added)
                if clip > 0:
                    updated = _clamp(updated, -clip, clip)
                _put16(cell, c_at, updated)
            # The output gate still sees the previous hidden state.
            _lstm_gate(p, arrays, 3, x, x_off, hidden, h_off, scratch, og)
            for i in range(n):
                o = _sigmoid_q12(_i16(scratch, 2 * (og + i)))
                t = _tanh_s16(_i16(cell, 2 * (h_off + i)), t_m, t_rs)
                v = requantize(t * o, h_m, h_s) + h_zp
                hidden[h_off + i] = _clamp(v, -128, 127) & 0xFF
            for i in range(n):
                y[y_off + i] = hidden[h_off + i]
            x_off += rows * in_dim
            y_off += n


# --- backend selection -----------------------------------------------------------------------

_BYTECODE = {
    "fully_connected_s8": fully_connected_s8,
    "conv_2d_s8": conv_2d_s8,
    "depthwise_conv_2d_s8": depthwise_conv_2d_s8,
    "average_pool_2d_s8": average_pool_2d_s8,
    "binary_s8": binary_s8,
    "requantize_s8": requantize_s8,
    "dot_s8": dot_s8,
}
_DOT = [dot_s8]


def set_backend(name):
    """Use "viper" kernels (raises ImportError/ValueError where the port cannot run them)
    or "bytecode" ones. Both give identical results; generated modules look kernels up on
    every call, so switching takes effect at once."""
    global BACKEND
    if name == "bytecode":
        chosen = _BYTECODE
    elif name == "viper":
        import shoal_nn_viper

        chosen = dict(_BYTECODE)
        for kernel in shoal_nn_viper.KERNELS:
            chosen[kernel] = getattr(shoal_nn_viper, kernel)
    else:
        raise ValueError("shoal_nn backend must be 'viper' or 'bytecode', not %r" % (name,))
    g = globals()
    for kernel, func in chosen.items():
        g[kernel] = func
    _DOT[0] = chosen["dot_s8"]
    BACKEND = name


try:
    set_backend("viper")
except Exception:  # no native emitter, no shoal_nn_viper, or an .mpy for another arch
    set_backend("bytecode")
