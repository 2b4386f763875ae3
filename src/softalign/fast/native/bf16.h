/* bf16: the upper 16 bits of an IEEE fp32 number, rounded to nearest even when made (a NaN
   stays a quiet NaN, as in PyTorch, rather than rounding over into the sign bit). */

#ifndef SOFTALIGN_BF16_H
#define SOFTALIGN_BF16_H

#include <stdint.h>

typedef uint16_t bf16;

static inline float from_bf16(bf16 v) {
    union { uint32_t u; float f; } x;
    x.u = (uint32_t)v << 16;
    return x.f;
}

static inline bf16 to_bf16(float f) {
    union { uint32_t u; float f; } x;
    x.f = f;
    if ((x.u & 0x7FFFFFFFu) > 0x7F800000u) return (bf16)((x.u >> 16) | 0x0040u);
    return (bf16)((x.u + 0x7FFFu + ((x.u >> 16) & 1u)) >> 16);
}

#endif
