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

#include <stdint.h>

#include "bf16.h"
#include "vector_math.h"

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

/* The k best of row[0 .. V) into best / where, searching only the blocks whose maximum reaches
   `bar` (all of them when `every`); the number found. */
static int64_t search(const float *row, const float *block_max, int64_t V, int64_t blocks,
                      float bar, int every, int64_t k, float *best, int64_t *where) {
    int64_t found = 0;
    for (int64_t b = 0; b < blocks; b++) {
        if (!every && block_max[b] < bar) continue;
        int64_t end = (b + 1) * BLOCK < V ? (b + 1) * BLOCK : V;
        for (int64_t v = b * BLOCK; v < end; v++) insert(row[v], v, k, &found, best, where);
    }
    return found;
}

/* z: (rows, V) contiguous, bf16 if low; bias: (V) fp32 added to every row, or NULL;
   values: (rows, k) fp32; indices: (rows, k) int64; 1 ≤ k ≤ V. No infinities are used as
   sentinels: the last block is padded with a copy of its own first logit, so its maximum is
   that of its real logits. A NaN in a row makes the bar meaningless: if the blocks searched
   then hold fewer than k logits, the whole row is searched, so every output is written. */
void best_words(int64_t rows, int64_t V, const void *z, int low, const float *bias, int64_t k,
                float *values, int64_t *indices) {
    int64_t blocks = (V + BLOCK - 1) / BLOCK;
    int64_t kept = k < blocks ? k : blocks; /* block maxima ranked to find the bar */
#pragma omp parallel for schedule(static) if (rows * V >= 65536)
    for (int64_t i = 0; i < rows; i++) {
        float row[blocks * BLOCK], block_max[blocks], top[kept];
        int64_t unused[kept];
        if (low) {
            const bf16 *in = (const bf16 *)z + i * V;
            for (int64_t v = 0; v < V; v++) row[v] = from_bf16(in[v]);
        } else {
            const float *in = (const float *)z + i * V;
            for (int64_t v = 0; v < V; v++) row[v] = in[v];
        }
        if (bias)
            for (int64_t v = 0; v < V; v++) row[v] += bias[v];
        for (int64_t v = V; v < blocks * BLOCK; v++) row[v] = row[(blocks - 1) * BLOCK];
        for (int64_t b = 0; b < blocks; b++) {
            const float *block = row + b * BLOCK;
            float most = block[0];
#pragma omp simd reduction(max : most)
            for (int64_t j = 0; j < BLOCK; j++) most = block[j] > most ? block[j] : most;
            block_max[b] = most;
        }
        float m = block_max[0];
#pragma omp simd reduction(max : m)
        for (int64_t b = 1; b < blocks; b++) m = block_max[b] > m ? block_max[b] : m;
        float sum = 0.0f;
        for (int64_t v = 0; v < V; v++) sum += expf(row[v] - m);
        /* bar: the k-th largest block maximum (k > blocks: every block counts) */
        int64_t ranked = 0;
        for (int64_t b = 0; b < blocks; b++) insert(block_max[b], b, kept, &ranked, top, unused);
        int every = k > blocks;
        float bar = top[kept - 1];
        float *best = values + i * k;
        int64_t *where = indices + i * k;
        if (search(row, block_max, V, blocks, bar, every, k, best, where) < k)
            search(row, block_max, V, blocks, bar, 1, k, best, where);
        float lse = m + logf(sum);
        for (int64_t j = 0; j < k; j++) best[j] -= lse;
    }
}
