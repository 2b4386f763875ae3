/* The elementwise work of one GRU step, forward and backward, in one pass over memory.

   PyTorch's gate order (r, z, n); x = W x_t + b_ih comes from one product over all steps,
   g = U h (without its bias b) from one product per step:

       r = σ(x_r + g_r + b_r)        z = σ(x_z + g_z + b_z)        q = g_n + b_n
       n = tanh(x_n + r ⊙ q)         h' = n + z ⊙ (h − n)

   Backward, for the total gradient dh of h' (what the output and the later steps send):

       a_n = dh ⊙ (1 − z) ⊙ (1 − n²)        a_z = dh ⊙ (h − n) ⊙ z (1 − z)
       a_r = a_n ⊙ q ⊙ r (1 − r)
       ∂x = [a_r, a_z, a_n]     ∂g = [a_r, a_z, a_n ⊙ r]     ∂b += Σ_rows ∂g
       ∂h = dh ⊙ z + ∂g U                  (the caller makes the product ∂g U)

   A "low" matrix is bf16 (the upper 16 bits of an IEEE float, rounded to nearest even): the
   products of a bf16 model read and write them, the gates are always computed in fp32.
   Rows are `stride` floats apart (a time step of a batch-first (B, T, ·) tensor), columns
   contiguous. Single-threaded: one step of a batch is a few hundred kilobytes.

   Built by softalign/fast/native/__init__.py with the machine's C compiler; loaded with ctypes. */

#include <stddef.h>
#include <stdint.h>

#include "bf16.h"
#include "vector_math.h"

static inline float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

static void write_low(const float *restrict from, bf16 *restrict to, int64_t n) {
    for (int64_t j = 0; j < n; j++) to[j] = to_bf16(from[j]);
}

/* row `i` of a matrix that is fp32 (low == 0) or bf16 (low != 0), as fp32 in `buffer` */
static const float *read_row(const void *m, int low, int64_t stride, int64_t i, int64_t n,
                             float *buffer) {
    if (!low) return (const float *)m + i * stride;
    const bf16 *row = (const bf16 *)m + i * stride;
    for (int64_t j = 0; j < n; j++) buffer[j] = from_bf16(row[j]);
    return buffer;
}

/* One row of the forward step: h' into o, [r, z, n, q] into s. */
static void forward_row(int64_t H, const float *restrict x, const float *restrict g,
                        const float *restrict b, const float *restrict h, float *restrict o,
                        float *restrict s) {
    for (int64_t j = 0; j < H; j++) {
        float r = sigmoid(x[j] + g[j] + b[j]);
        float z = sigmoid(x[H + j] + g[H + j] + b[H + j]);
        float q = g[2 * H + j] + b[2 * H + j];
        float n = tanhf(x[2 * H + j] + r * q);
        o[j] = n + z * (h[j] - n);
        s[j] = r;
        s[H + j] = z;
        s[2 * H + j] = n;
        s[3 * H + j] = q;
    }
}

/* One row of the backward step for the total gradient dh: dh ⊙ z into c, ∂x into dx, ∂g
   into dg. */
static void backward_row(int64_t H, const float *restrict dh, const float *restrict s,
                         const float *restrict h, float *restrict c, float *restrict dx,
                         float *restrict dg) {
    for (int64_t j = 0; j < H; j++) {
        float r = s[j], z = s[H + j], n = s[2 * H + j], q = s[3 * H + j];
        float a_n = dh[j] * (1.0f - z) * (1.0f - n * n);
        float a_z = dh[j] * (h[j] - n) * z * (1.0f - z);
        float a_r = a_n * q * r * (1.0f - r);
        c[j] = dh[j] * z;
        dx[j] = a_r;
        dx[H + j] = a_z;
        dx[2 * H + j] = a_n;
        dg[j] = a_r;
        dg[H + j] = a_z;
        dg[2 * H + j] = a_n * r;
    }
}

/* Steps of fewer gate values than this run on one thread (a thread team costs microseconds). */
#define PARALLEL_MIN 16384

/* x: (rows, 3H) stride x_stride, bf16 if x_low; g: (rows, 3H) contiguous, bf16 if low;
   b: (3H) or NULL; h: (rows, H) stride h_stride, or NULL for zeros; out: (rows, H) stride
   out_stride; copy: (rows, H) contiguous copy of h' (bf16 if low) for the next product, or
   NULL; saved: (rows, 4H) [r, z, n, q] or NULL. */
void gru_forward_step(int64_t rows, int64_t H, const void *x, int64_t x_stride, int x_low,
                      const void *g, int low, const float *b, const float *h, int64_t h_stride,
                      float *out, int64_t out_stride, void *copy, float *saved) {
#pragma omp parallel if (rows * H >= PARALLEL_MIN)
    {
        float x_buffer[3 * H], g_buffer[3 * H], zeros[3 * H], scratch[4 * H];
        for (int64_t j = 0; j < 3 * H; j++) zeros[j] = 0.0f;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < rows; i++) {
            float *o = out + i * out_stride;
            forward_row(H, read_row(x, x_low, x_stride, i, 3 * H, x_buffer),
                        read_row(g, low, 3 * H, i, 3 * H, g_buffer), b ? b : zeros,
                        h ? h + i * h_stride : zeros, o, saved ? saved + i * 4 * H : scratch);
            if (copy && low)
                for (int64_t j = 0; j < H; j++) ((bf16 *)copy)[i * H + j] = to_bf16(o[j]);
            else if (copy)
                for (int64_t j = 0; j < H; j++) ((float *)copy)[i * H + j] = o[j];
        }
    }
}

/* dout: (rows, H) stride dout_stride, or NULL; carry_in: (rows, H) contiguous fp32 or NULL
   (the direct part dh ⊙ z sent by the later step); rec: (rows, H) contiguous, bf16 if low, or
   NULL (∂g U of the later step); saved, h (NULL: zeros) as in the forward step; carry_out:
   (rows, H) contiguous, may equal carry_in; dx: (rows, 3H) stride dx_stride, bf16 if x_low;
   dg: (rows, 3H) contiguous, bf16 if low; db: (3H) accumulated into, or NULL. */
void gru_backward_step(int64_t rows, int64_t H, const float *dout, int64_t dout_stride,
                       const float *carry_in, const void *rec, int low, const float *saved,
                       const float *h, int64_t h_stride, float *carry_out, void *dx,
                       int64_t dx_stride, int x_low, void *dg, float *db) {
#pragma omp parallel if (rows * H >= PARALLEL_MIN)
    {
        float buffer[H], zeros[H], total[H], grad_x[3 * H], grad_g[3 * H], bias_grad[3 * H];
        for (int64_t j = 0; j < H; j++) zeros[j] = 0.0f;
        for (int64_t j = 0; j < 3 * H; j++) bias_grad[j] = 0.0f;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < rows; i++) {
            const float *d = dout ? dout + i * dout_stride : zeros;
            const float *c = carry_in ? carry_in + i * H : zeros;
            const float *r = rec ? read_row(rec, low, H, i, H, buffer) : zeros;
            for (int64_t j = 0; j < H; j++) total[j] = d[j] + c[j] + r[j];
            float *xo = x_low ? grad_x : (float *)dx + i * dx_stride;
            float *go = low ? grad_g : (float *)dg + i * 3 * H;
            backward_row(H, total, saved + i * 4 * H, h ? h + i * h_stride : zeros,
                         carry_out + i * H, xo, go);
            for (int64_t j = 0; j < 3 * H; j++) bias_grad[j] += go[j];
            if (x_low) write_low(grad_x, (bf16 *)dx + i * dx_stride, 3 * H);
            if (low) write_low(grad_g, (bf16 *)dg + i * 3 * H, 3 * H);
        }
        if (db) {
#pragma omp critical
            for (int64_t j = 0; j < 3 * H; j++) db[j] += bias_grad[j];
        }
    }
}
