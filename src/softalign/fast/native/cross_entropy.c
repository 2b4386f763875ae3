/* Label-smoothed cross-entropy of a chunk of logits and its gradient, one pass per row.

   For logits z (V values) of a row with target y and smoothing ε:

       lse  = m + log Σ_v exp(z_v − m),   m = max_v z_v
       loss = lse − (1 − ε) z_y − (ε / V) Σ_v z_v
       G    = softmax(z) − (1 − ε) onehot(y)      (the constant −ε/V is left to the caller)

   PyTorch needs a cast to fp32, the log-softmax, exp, a scatter, the sums and a cast back, each
   a pass over the (rows, V) chunk; here a row is read once into fp32, and G overwrites the
   logits (bf16 if low) while the row is in the cache. Rows from `real` on are padding: no loss,
   G = 0. The column sums of G (the bias gradient) are accumulated into db. */

#include <stddef.h>
#include <stdint.h>

#include "bf16.h"
#include "vector_math.h"

static void load(const void *z, int low, int64_t V, float *restrict row) {
    if (low)
        for (int64_t v = 0; v < V; v++) row[v] = from_bf16(((const bf16 *)z)[v]);
    else
        for (int64_t v = 0; v < V; v++) row[v] = ((const float *)z)[v];
}

/* the row's loss; its softmax left in `row` */
static float softmax_row(float *restrict row, int64_t V, int64_t y, float eps) {
    float m = row[0], total = 0.0f, sum = 0.0f;
#pragma omp simd reduction(max : m)
    for (int64_t v = 1; v < V; v++) m = row[v] > m ? row[v] : m;
    for (int64_t v = 0; v < V; v++) total += row[v];
    float target = row[y];
    for (int64_t v = 0; v < V; v++) {
        row[v] = expf(row[v] - m);
        sum += row[v];
    }
    float inverse = 1.0f / sum;
    for (int64_t v = 0; v < V; v++) row[v] *= inverse;
    return m + logf(sum) - (1.0f - eps) * target - eps / (float)V * total;
}

/* z: (rows, V) contiguous, bf16 if low; y: (real) target columns; with_grad: write G over z
   and add its column sums to db (V). Returns the summed loss of the real rows. */
double cross_entropy_chunk(int64_t rows, int64_t real, int64_t V, void *z, int low,
                           const int64_t *y, float eps, int with_grad, float *db) {
    double loss = 0.0;
#pragma omp parallel reduction(+ : loss)
    {
        float row[V], bias_grad[V];
        for (int64_t v = 0; v < V; v++) bias_grad[v] = 0.0f;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < rows; i++) {
            void *zi = low ? (void *)((bf16 *)z + i * V) : (void *)((float *)z + i * V);
            if (i >= real) {
                if (with_grad && low)
                    for (int64_t v = 0; v < V; v++) ((bf16 *)zi)[v] = 0;
                else if (with_grad)
                    for (int64_t v = 0; v < V; v++) ((float *)zi)[v] = 0.0f;
                continue;
            }
            load(zi, low, V, row);
            loss += softmax_row(row, V, y[i], eps);
            if (!with_grad) continue;
            row[y[i]] -= 1.0f - eps;
            for (int64_t v = 0; v < V; v++) bias_grad[v] += row[v];
            if (low)
                for (int64_t v = 0; v < V; v++) ((bf16 *)zi)[v] = to_bf16(row[v]);
            else
                for (int64_t v = 0; v < V; v++) ((float *)zi)[v] = row[v];
        }
        if (with_grad) {
#pragma omp critical
            for (int64_t v = 0; v < V; v++) db[v] += bias_grad[v];
        }
    }
    return loss;
}
