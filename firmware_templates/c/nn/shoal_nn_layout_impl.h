/* Data-movement kernels (PAD, TRANSPOSE/STRIDED_SLICE, CONCATENATION): byte copies, no arithmetic.
 * Kernel bodies as always-inline functions: the generated model calls them with its
 * compile-time parameter blocks so the compiler specialises every loop; the .c file of
 * the same family provides out-of-line versions. */
#ifndef SHOAL_NN_LAYOUT_IMPL_H
#define SHOAL_NN_LAYOUT_IMPL_H

#include <string.h>

#include "shoal_nn.h"
#include "shoal_fixedpoint.h"

SHOAL_NN_INLINE void shoal_nn_pad_s8_impl(const shoal_nn_pad_s8_params_t *p, const int8_t *input,
                                          int8_t *output)
{
    const size_t out_bytes = (size_t)p->out_dim0 * (size_t)p->out_dim1 * (size_t)p->out_dim2
                             * (size_t)p->out_dim3;
    int32_t i0, i1, i2;
    memset(output, (int)(uint8_t)p->value, out_bytes);
    for (i0 = 0; i0 < p->in_dim0; ++i0) {
        for (i1 = 0; i1 < p->in_dim1; ++i1) {
            for (i2 = 0; i2 < p->in_dim2; ++i2) {
                const size_t src = (((size_t)i0 * (size_t)p->in_dim1 + (size_t)i1)
                                        * (size_t)p->in_dim2 + (size_t)i2) * (size_t)p->in_dim3;
                const size_t dst = ((((size_t)(i0 + p->before0) * (size_t)p->out_dim1
                                      + (size_t)(i1 + p->before1)) * (size_t)p->out_dim2
                                     + (size_t)(i2 + p->before2)) * (size_t)p->out_dim3)
                                   + (size_t)p->before3;
                memcpy(output + dst, input + src, (size_t)p->in_dim3);
            }
        }
    }
}

SHOAL_NN_INLINE void shoal_nn_gather_s8_impl(const shoal_nn_gather_s8_params_t *p,
                                                const int8_t *input, int8_t *output)
{
    int32_t i0, i1, i2, i3;
    int8_t *y = output;
    for (i0 = 0; i0 < p->dim0; ++i0) {
        for (i1 = 0; i1 < p->dim1; ++i1) {
            for (i2 = 0; i2 < p->dim2; ++i2) {
                const int8_t *x = input + p->base + i0 * p->stride0 + i1 * p->stride1
                                  + i2 * p->stride2;
                for (i3 = 0; i3 < p->dim3; ++i3) {
                    *y++ = x[i3 * p->stride3];
                }
            }
        }
    }
}

SHOAL_NN_INLINE void shoal_nn_concat_s8_impl(const shoal_nn_concat_s8_params_t *p,
                                             const int8_t *const *inputs, int8_t *output)
{
    int32_t o, k;
    int8_t *y = output;
    for (o = 0; o < p->outer; ++o) {
        for (k = 0; k < p->count; ++k) {
            const size_t n = (size_t)p->sizes[k];
            memcpy(y, inputs[k] + (size_t)o * n, n);
            y += n;
        }
    }
}

#endif /* SHOAL_NN_LAYOUT_IMPL_H */
