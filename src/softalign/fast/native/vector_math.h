/* glibc's vector expf / logf / tanhf (libmvec), declared for the vectoriser.

   glibc's <math.h> declares them only under -ffast-math, which also turns on
   -ffinite-math-only: an infinity or a NaN anywhere in a row (a masked logit, a diverged
   model) would then be undefined behaviour. The kernels are built with the other parts of
   -ffast-math only (see flags.py), and this header declares the same vector variants
   glibc's would (x86-64, gcc; tanhf since glibc 2.35), so the loops still call
   _ZGV?N16v_expf and the like. Elsewhere the loops call the scalar functions. */

#ifndef SOFTALIGN_VECTOR_MATH_H
#define SOFTALIGN_VECTOR_MATH_H

#include <math.h>

#if defined(__x86_64__) && defined(__GLIBC__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__FAST_MATH__)
#define SOFTALIGN_SIMD __attribute__((__simd__("notinbranch")))
#if __GLIBC_PREREQ(2, 22)
SOFTALIGN_SIMD float expf(float);
SOFTALIGN_SIMD float logf(float);
#endif
#if __GLIBC_PREREQ(2, 35)
SOFTALIGN_SIMD float tanhf(float);
#endif
#undef SOFTALIGN_SIMD
#endif

#endif
