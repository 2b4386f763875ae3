/* The k most probable words of each row of logits and their log-probabilities, one pass.

   For logits z (V values) of a row:

       lse = m + log Σ_v exp(z_v − m),   m = max_v z_v
       the k largest z_v, best first:   values = z_v − lse,   indices = v

   A search only needs these (greedy: k = 1; a beam of K: k = K + 1), where the log-softmax
   writes and re-reads all V log-probabilities (in fp32, from bf16 logits under autocast) before
   top-k reads them once more. Ties keep the lower index. */

#include <math.h>
#include <stdint.h>

#include "bf16.h"

/* z: (rows, V) contiguous, bf16 if low; values: (rows, k) fp32; indices: (rows, k) int64. */
void best_words(int64_t rows, int64_t V, const void *z, int low, int64_t k, float *values,
                int64_t *indices) {
#pragma omp parallel for schedule(static) if (rows * V >= 65536)
    for (int64_t i = 0; i < rows; i++) {
        float row[V];
        if (low)
            for (int64_t v = 0; v < V; v++) row[v] = from_bf16(((const bf16 *)z)[i * V + v]);
        else
            for (int64_t v = 0; v < V; v++) row[v] = ((const float *)z)[i * V + v];
        float *best = values + i * k;
        int64_t *where = indices + i * k;
        int64_t found = 0;
        for (int64_t v = 0; v < V; v++) {  // insertion into the k best so far
            if (found == k && row[v] <= best[k - 1]) continue;
            int64_t at = found < k ? found++ : k - 1;
            while (at > 0 && best[at - 1] < row[v]) {
                best[at] = best[at - 1];
                where[at] = where[at - 1];
                at--;
            }
            best[at] = row[v];
            where[at] = v;
        }
        float m = best[0], sum = 0.0f;
        for (int64_t v = 0; v < V; v++) sum += expf(row[v] - m);
        float lse = m + logf(sum);
        for (int64_t j = 0; j < found; j++) best[j] -= lse;
    }
}
