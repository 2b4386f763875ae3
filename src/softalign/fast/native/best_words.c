/* The k most probable words of each row of logits and their log-probabilities.

   For logits z (V values) of a row:

       lse = m + log Σ_v exp(z_v − m),   m = max_v z_v
       the k largest z_v, best first:   values = z_v − lse,   indices = v

   A search only needs these (greedy: k = 1; a beam of K: k = K + 1), where the log-softmax
   writes and re-reads all V log-probabilities (in fp32, from bf16 logits under autocast) before
   top-k reads them once more; the generator's bias is added here rather than by the product
   (which would first copy it into every row of its output). Per row, one vector pass widens
   the logits and takes the maximum of every block of BLOCK of them, and one sums the
   exponentials. The k best blocks by their
   maxima hold k logits at least as large as the k-th best block maximum b, so every block whose
   maximum is below b holds none of the k best: only the blocks reaching b are searched, in
   index order (ties keep the lower index). */

#include <math.h>
#include <stdint.h>

#include "bf16.h"

#define BLOCK 16

/* Insert z (at index v) into the k best so far, best[0] the largest; a tie goes after. */
static inline void insert(float z, int64_t v, int64_t k, int64_t *found, float *best,
                          int64_t *where) {
    if (*found == k && z <= best[k - 1]) return;
    int64_t at = *found < k ? (*found)++ : k - 1;
    while (at > 0 && best[at - 1] < z) {
        best[at] = best[at - 1];
        where[at] = where[at - 1];
        at--;
    }
    best[at] = z;
    where[at] = v;
}

/* z: (rows, V) contiguous, bf16 if low; bias: (V) fp32 added to every row, or NULL;
   values: (rows, k) fp32; indices: (rows, k) int64. */
void best_words(int64_t rows, int64_t V, const void *z, int low, const float *bias, int64_t k,
                float *values, int64_t *indices) {
    int64_t blocks = (V + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (rows * V >= 65536)
    for (int64_t i = 0; i < rows; i++) {
        float row[blocks * BLOCK], block_max[blocks];
        for (int64_t v = V; v < blocks * BLOCK; v++) row[v] = -INFINITY;
        if (low) {
            const bf16 *in = (const bf16 *)z + i * V;
            for (int64_t v = 0; v < V; v++) row[v] = from_bf16(in[v]);
        } else {
            const float *in = (const float *)z + i * V;
            for (int64_t v = 0; v < V; v++) row[v] = in[v];
        }
        if (bias)
            for (int64_t v = 0; v < V; v++) row[v] += bias[v];
        float m = -INFINITY;
        for (int64_t b = 0; b < blocks; b++) {
            const float *block = row + b * BLOCK;
            float most = block[0];
            for (int64_t j = 1; j < BLOCK; j++) most = block[j] > most ? block[j] : most;
            block_max[b] = most;
            m = most > m ? most : m;
        }
        float sum = 0.0f;
        for (int64_t v = 0; v < V; v++) sum += expf(row[v] - m);
        /* b: the k-th largest block maximum (k ≥ blocks: every block counts) */
        float top[k];
        int64_t unused[k], found = 0;
        for (int64_t b = 0; b < blocks; b++) insert(block_max[b], b, k, &found, top, unused);
        float bar = found == k ? top[k - 1] : -INFINITY;
        float *best = values + i * k;
        int64_t *where = indices + i * k;
        found = 0;
        for (int64_t b = 0; b < blocks; b++) {
            if (block_max[b] < bar) continue;
            int64_t end = (b + 1) * BLOCK < V ? (b + 1) * BLOCK : V;
            for (int64_t v = b * BLOCK; v < end; v++) insert(row[v], v, k, &found, best, where);
        }
        float lse = m + logf(sum);
        for (int64_t j = 0; j < found; j++) best[j] -= lse;
    }
}
