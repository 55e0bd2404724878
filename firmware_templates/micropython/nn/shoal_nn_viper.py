"""Viper kernels for Shoal's MicroPython runtime: the hot loops of `shoal_nn`, compiled to
machine code by MicroPython's viper emitter.

Responsible for: FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, ADD/SUB/MUL and the int8 dot
product (LSTM gates) with the same parameters and bit-exact results as the bytecode kernels in shoal_nn.py.
Viper integers are machine words (32 bits on microcontrollers, 64 on the unix port), so int8
values are sign-extended by hand from ptr8 reads, int32 parameters are assembled from bytes
(no unaligned word loads), and the 32x32->64 multiply of requantization is split into 16-bit
halves whose partial sums stay below 2**32 on every word size.

Must not: be imported directly by models (shoal_nn selects it), or allocate in its loops.
"""

import micropython

KERNELS = ("fully_connected_s8", "conv_2d_s8", "depthwise_conv_2d_s8", "binary_s8", "dot_s8")


@micropython.viper
def dot_s8(a: ptr8, a_off: int, b: ptr8, b_off: int, n: int) -> int:
    acc = 0
    for i in range(n):
        acc += ((int(a[a_off + i]) ^ 128) - 128) * ((int(b[b_off + i]) ^ 128) - 128)
    return acc


@micropython.viper
def fully_connected_s8(p: ptr32, q: ptr8, x: ptr8, w: ptr8, y: ptr8):
    # ptr32 loads zero-extend on 64-bit ports: the signed parameters (zero points and the
    # activation range, all within int8) are sign-extended from 16 bits by hand.
    batches = p[0]
    depth = p[1]
    out_depth = p[2]
    out_off = ((int(p[3]) & 0xFFFF) ^ 0x8000) - 0x8000
    lo = ((int(p[4]) & 0xFFFF) ^ 0x8000) - 0x8000
    hi = ((int(p[5]) & 0xFFFF) ^ 0x8000) - 0x8000
    yi = 0
    for b in range(batches):
        xb = b * depth
        for o in range(out_depth):
            k = 12 * o
            acc = int(q[k]) + (int(q[k + 1]) << 8) + (int(q[k + 2]) << 16)
            acc += ((int(q[k + 3]) ^ 128) - 128) << 24
            wo = o * depth
            for i in range(depth):
                acc += ((int(x[xb + i]) ^ 128) - 128) * ((int(w[wo + i]) ^ 128) - 128)
            m = int(q[k + 4]) + (int(q[k + 5]) << 8) + (int(q[k + 6]) << 16) + (int(q[k + 7]) << 24)
            s = int(q[k + 8]) + (int(q[k + 9]) << 8) + (int(q[k + 10]) << 16)
            s += ((int(q[k + 11]) ^ 128) - 128) << 24
            # MultiplyByQuantizedMultiplier(acc, m, s) in 32-bit words: the 64-bit product
            # is built from 16-bit halves so no intermediate exceeds 32 bits on any port.
            if s > 0:
                a = acc << s
                rs = 0
            else:
                a = acc
                rs = 0 - s
            if a < 0:
                ua = uint(0 - a)
                nhi = uint(0x3FFF)
                nlo = uint(0xFFFF)
            else:
                ua = uint(a)
                nhi = uint(0x4000)
                nlo = uint(0)
            um = uint(m)
            al = ua & 0xFFFF
            ah = ua >> 16
            bl = um & 0xFFFF
            bh = um >> 16
            ll = al * bl
            mid = ah * bl + al * bh
            t0 = (ll & 0xFFFF) + nlo
            t1 = (ll >> 16) + (mid & 0xFFFF) + nhi + (t0 >> 16)
            r = int(((ah * bh + (mid >> 16) + (t1 >> 16)) << 1) | ((t1 & 0xFFFF) >> 15))
            if a < 0:
                r = 0 - r
            if rs > 0:
                mask = (1 << rs) - 1
                thr = mask >> 1
                if r < 0:
                    thr += 1
                rem = r & mask
                r = r >> rs
                if rem > thr:
                    r += 1
            r = r

            v = r + out_off
            if v < lo:
                v = lo
            if v > hi:
                v = hi
            y[yi] = v
            yi += 1


@micropython.viper
def conv_2d_s8(p: ptr32, q: ptr8, x: ptr8, w: ptr8, y: ptr8):
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
    in_zp = ((int(p[15]) & 0xFFFF) ^ 0x8000) - 0x8000
    out_off = ((int(p[16]) & 0xFFFF) ^ 0x8000) - 0x8000
    lo = ((int(p[17]) & 0xFFFF) ^ 0x8000) - 0x8000
    hi = ((int(p[18]) & 0xFFFF) ^ 0x8000) - 0x8000
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
                    acc = int(q[k]) + (int(q[k + 1]) << 8) + (int(q[k + 2]) << 16)
                    acc += ((int(q[k + 3]) ^ 128) - 128) << 24
                    wo = oc * fsize
                    for ky in range(fh):
                        iy = iy0 + ky * dh
                        for kx in range(fw):
                            ix = ix0 + kx * dw
                            wt = wo + (ky * fw + kx) * in_c
                            if iy < 0 or iy >= in_h or ix < 0 or ix >= in_w:
                                wsum = 0
                                for c in range(in_c):
                                    wsum += (int(w[wt + c]) ^ 128) - 128
                                acc += wsum * in_zp
                            else:
                                xt = xb + (iy * in_w + ix) * in_c
                                for c in range(in_c):
                                    acc += ((int(x[xt + c]) ^ 128) - 128) * (
                                        (int(w[wt + c]) ^ 128) - 128
                                    )
                    m = int(q[k + 4]) + (int(q[k + 5]) << 8) + (int(q[k + 6]) << 16) + (int(q[k + 7]) << 24)
                    s = int(q[k + 8]) + (int(q[k + 9]) << 8) + (int(q[k + 10]) << 16)
                    s += ((int(q[k + 11]) ^ 128) - 128) << 24
                    # MultiplyByQuantizedMultiplier(acc, m, s) in 32-bit words: the 64-bit product
                    # is built from 16-bit halves so no intermediate exceeds 32 bits on any port.
                    if s > 0:
                        a = acc << s
                        rs = 0
                    else:
                        a = acc
                        rs = 0 - s
                    if a < 0:
                        ua = uint(0 - a)
                        nhi = uint(0x3FFF)
                        nlo = uint(0xFFFF)
                    else:
                        ua = uint(a)
                        nhi = uint(0x4000)
                        nlo = uint(0)
                    um = uint(m)
                    al = ua & 0xFFFF
                    ah = ua >> 16
                    bl = um & 0xFFFF
                    bh = um >> 16
                    ll = al * bl
                    mid = ah * bl + al * bh
                    t0 = (ll & 0xFFFF) + nlo
                    t1 = (ll >> 16) + (mid & 0xFFFF) + nhi + (t0 >> 16)
                    r = int(((ah * bh + (mid >> 16) + (t1 >> 16)) << 1) | ((t1 & 0xFFFF) >> 15))
                    if a < 0:
                        r = 0 - r
                    if rs > 0:
                        mask = (1 << rs) - 1
                        thr = mask >> 1
                        if r < 0:
                            thr += 1
                        rem = r & mask
                        r = r >> rs
                        if rem > thr:
                            r += 1
                    r = r

                    v = r + out_off
                    if v < lo:
                        v = lo
                    if v > hi:
                        v = hi
                    y[yi] = v
                    yi += 1


@micropython.viper
def depthwise_conv_2d_s8(p: ptr32, q: ptr8, x: ptr8, w: ptr8, y: ptr8):
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
    in_zp = ((int(p[16]) & 0xFFFF) ^ 0x8000) - 0x8000
    out_off = ((int(p[17]) & 0xFFFF) ^ 0x8000) - 0x8000
    lo = ((int(p[18]) & 0xFFFF) ^ 0x8000) - 0x8000
    hi = ((int(p[19]) & 0xFFFF) ^ 0x8000) - 0x8000
    yi = 0
    for b in range(batches):
        xb = b * in_h * in_w * in_c
        for oy in range(out_h):
            iy0 = oy * sh - ph
            for ox in range(out_w):
                ix0 = ox * sw - pw
                ic = 0
                left = mult
                for oc in range(out_c):
                    # ic = oc // mult without a division per channel.
                    if left == 0:
                        ic += 1
                        left = mult
                    left -= 1
                    k = 12 * oc
                    acc = int(q[k]) + (int(q[k + 1]) << 8) + (int(q[k + 2]) << 16)
                    acc += ((int(q[k + 3]) ^ 128) - 128) << 24
                    for ky in range(fh):
                        iy = iy0 + ky * dh
                        for kx in range(fw):
                            ix = ix0 + kx * dw
                            wv = (int(w[(ky * fw + kx) * out_c + oc]) ^ 128) - 128
                            if iy < 0 or iy >= in_h or ix < 0 or ix >= in_w:
                                acc += wv * in_zp
                            else:
                                acc += ((int(x[xb + (iy * in_w + ix) * in_c + ic]) ^ 128) - 128) * wv
                    m = int(q[k + 4]) + (int(q[k + 5]) << 8) + (int(q[k + 6]) << 16) + (int(q[k + 7]) << 24)
                    s = int(q[k + 8]) + (int(q[k + 9]) << 8) + (int(q[k + 10]) << 16)
                    s += ((int(q[k + 11]) ^ 128) - 128) << 24
                    # MultiplyByQuantizedMultiplier(acc, m, s) in 32-bit words: the 64-bit product
                    # is built from 16-bit halves so no intermediate exceeds 32 bits on any port.
                    if s > 0:
                        a = acc << s
                        rs = 0
                    else:
                        a = acc
                        rs = 0 - s
                    if a < 0:
                        ua = uint(0 - a)
                        nhi = uint(0x3FFF)
                        nlo = uint(0xFFFF)
                    else:
                        ua = uint(a)
                        nhi = uint(0x4000)
                        nlo = uint(0)
                    um = uint(m)
                    al = ua & 0xFFFF
                    ah = ua >> 16
                    bl = um & 0xFFFF
                    bh = um >> 16
                    ll = al * bl
                    mid = ah * bl + al * bh
                    t0 = (ll & 0xFFFF) + nlo
                    t1 = (ll >> 16) + (mid & 0xFFFF) + nhi + (t0 >> 16)
                    r = int(((ah * bh + (mid >> 16) + (t1 >> 16)) << 1) | ((t1 & 0xFFFF) >> 15))
                    if a < 0:
                        r = 0 - r
                    if rs > 0:
                        mask = (1 << rs) - 1
                        thr = mask >> 1
                        if r < 0:
                            thr += 1
                        rem = r & mask
                        r = r >> rs
                        if rem > thr:
                            r += 1
                    r = r

                    v = r + out_off
                    if v < lo:
                        v = lo
                    if v > hi:
                        v = hi
                    y[yi] = v
                    yi += 1


@micropython.viper
def binary_s8(p: ptr32, a_in: ptr8, b_in: ptr8, y: ptr8):
    # Zero points, shifts and the activation range are signed and within int16.
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
    off1 = ((int(p[13]) & 0xFFFF) ^ 0x8000) - 0x8000
    off2 = ((int(p[14]) & 0xFFFF) ^ 0x8000) - 0x8000
    left = p[15]
    m1 = p[16]
    e1 = ((int(p[17]) & 0xFFFF) ^ 0x8000) - 0x8000
    m2 = p[18]
    e2 = ((int(p[19]) & 0xFFFF) ^ 0x8000) - 0x8000
    mo = p[20]
    eo = ((int(p[21]) & 0xFFFF) ^ 0x8000) - 0x8000
    out_off = ((int(p[22]) & 0xFFFF) ^ 0x8000) - 0x8000
    lo = ((int(p[23]) & 0xFFFF) ^ 0x8000) - 0x8000
    hi = ((int(p[24]) & 0xFFFF) ^ 0x8000) - 0x8000
    yi = 0
    for i0 in range(d0):
        for i1 in range(d1):
            for i2 in range(d2):
                ka = i0 * s10 + i1 * s11 + i2 * s12
                kb = i0 * s20 + i1 * s21 + i2 * s22
                for i3 in range(d3):
                    x1 = off1 + ((int(a_in[ka + i3 * s13]) ^ 128) - 128)
                    x2 = off2 + ((int(b_in[kb + i3 * s23]) ^ 128) - 128)
                    if op == 2:
                        acc = x1 * x2
                    else:
                        x1 = x1 << left
                        x2 = x2 << left
                        # MultiplyByQuantizedMultiplier(x1, m1, e1) in 32-bit words: the 64-bit product
                        # is built from 16-bit halves so no intermediate exceeds 32 bits on any port.
                        if e1 > 0:
                            a = x1 << e1
                            rs = 0
                        else:
                            a = x1
                            rs = 0 - e1
                        if a < 0:
                            ua = uint(0 - a)
                            nhi = uint(0x3FFF)
                            nlo = uint(0xFFFF)
                        else:
                            ua = uint(a)
                            nhi = uint(0x4000)
                            nlo = uint(0)
                        um = uint(m1)
                        al = ua & 0xFFFF
                        ah = ua >> 16
                        bl = um & 0xFFFF
                        bh = um >> 16
                        ll = al * bl
                        mid = ah * bl + al * bh
                        t0 = (ll & 0xFFFF) + nlo
                        t1 = (ll >> 16) + (mid & 0xFFFF) + nhi + (t0 >> 16)
                        r = int(((ah * bh + (mid >> 16) + (t1 >> 16)) << 1) | ((t1 & 0xFFFF) >> 15))
                        if a < 0:
                            r = 0 - r
                        if rs > 0:
                            mask = (1 << rs) - 1
                            thr = mask >> 1
                            if r < 0:
                                thr += 1
                            rem = r & mask
                            r = r >> rs
                            if rem > thr:
                                r += 1
                        sa = r
                        # MultiplyByQuantizedMultiplier(x2, m2, e2) in 32-bit words: the 64-bit product
                        # is built from 16-bit halves so no intermediate exceeds 32 bits on any port.
                        if e2 > 0:
                            a = x2 << e2
                            rs = 0
                        else:
                            a = x2
                            rs = 0 - e2
                        if a < 0:
                            ua = uint(0 - a)
                            nhi = uint(0x3FFF)
                            nlo = uint(0xFFFF)
                        else:
                            ua = uint(a)
                            nhi = uint(0x4000)
                            nlo = uint(0)
                        um = uint(m2)
                        al = ua & 0xFFFF
                        ah = ua >> 16
                        bl = um & 0xFFFF
                        bh = um >> 16
                        ll = al * bl
                        mid = ah * bl + al * bh
                        t0 = (ll & 0xFFFF) + nlo
                        t1 = (ll >> 16) + (mid & 0xFFFF) + nhi + (t0 >> 16)
                        r = int(((ah * bh + (mid >> 16) + (t1 >> 16)) << 1) | ((t1 & 0xFFFF) >> 15))
                        if a < 0:
                            r = 0 - r
                        if rs > 0:
                            mask = (1 << rs) - 1
                            thr = mask >> 1
                            if r < 0:
                                thr += 1
                            rem = r & mask
                            r = r >> rs
                            if rem > thr:
                                r += 1
                        sb = r
                        if op == 0:
                            acc = sa + sb
                        else:
                            acc = sa - sb
                    # MultiplyByQuantizedMultiplier(acc, mo, eo) in 32-bit words: the 64-bit product
                    # is built from 16-bit halves so no intermediate exceeds 32 bits on any port.
                    if eo > 0:
                        a = acc << eo
                        rs = 0
                    else:
                        a = acc
                        rs = 0 - eo
                    if a < 0:
                        ua = uint(0 - a)
                        nhi = uint(0x3FFF)
                        nlo = uint(0xFFFF)
                    else:
                        ua = uint(a)
                        nhi = uint(0x4000)
                        nlo = uint(0)
                    um = uint(mo)
                    al = ua & 0xFFFF
                    ah = ua >> 16
                    bl = um & 0xFFFF
                    bh = um >> 16
                    ll = al * bl
                    mid = ah * bl + al * bh
                    t0 = (ll & 0xFFFF) + nlo
                    t1 = (ll >> 16) + (mid & 0xFFFF) + nhi + (t0 >> 16)
                    r = int(((ah * bh + (mid >> 16) + (t1 >> 16)) << 1) | ((t1 & 0xFFFF) >> 15))
                    if a < 0:
                        r = 0 - r
                    if rs > 0:
                        mask = (1 << rs) - 1
                        thr = mask >> 1
                        if r < 0:
                            thr += 1
                        rem = r & mask
                        r = r >> rs
                        if rem > thr:
                            r += 1
                    r = r
                    v = r + out_off
                    if v < lo:
                        v = lo
                    if v > hi:
                        v = hi
                    y[yi] = v
                    yi += 1
