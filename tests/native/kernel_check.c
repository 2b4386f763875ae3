/* softalign's C kernels against straightforward scalar references (double precision), with no
   Python: the check that runs where PyTorch does not (an aarch64 build under qemu, a build for
   another x86 level), built with the kernels' own flags by tests/unit/test_native_harness.py.
   Each check compares one kernel call (fp32 and bf16 variants, strided rows, sizes on both
   sides of the kernels' threading thresholds, infinite logits) with its reference and prints a
   line on failure; the last line is "N passed, M failed", and the exit status is 1 on any
   failure. Built by: cc FLAGS -I NATIVE kernel_check.c NATIVE/[a-z]*.c -lm, NATIVE the
   directory src/softalign/fast/native. */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"

void gru_forward_step(int64_t rows, int64_t H, const void *x, int64_t x_stride, int x_low,
                      const void *g, int low, const float *b, const float *h, int64_t h_stride,
                      float *out, int64_t out_stride, void *copy, float *saved);
void gru_backward_step(int64_t rows, int64_t H, const float *dout, int64_t dout_stride,
                       const float *carry_in, const void *rec, int low, const float *saved,
                       const float *h, int64_t h_stride, float *carry_out, void *dx,
                       int64_t dx_stride, int x_low, void *dg, float *db);
void additive_scores(int64_t n, int64_t G, int64_t S, int64_t D, const float *q, const float *k,
                     const float *v, float *e, float *T);
void additive_scores_backward(int64_t n, int64_t G, int64_t S, int64_t D, const float *de,
                              const float *T, const float *v, float *dq, float *dk, float *dv);
double cross_entropy_chunk(int64_t rows, int64_t real, int64_t V, void *z, int low,
                           const int64_t *y, float eps, int with_grad, float *db);
void best_words(int64_t rows, int64_t V, const void *z, int low, const float *bias, int64_t k,
                float *values, int64_t *indices);

static int passed, failed;
static uint64_t seed = 0x9E3779B97F4A7C15u;

static float uniform(float scale) { /* xorshift64*: deterministic, in (-scale, scale) */
    seed ^= seed >> 12, seed ^= seed << 25, seed ^= seed >> 27;
    double unit = (double)((seed * 0x2545F4914F6CDD1Du) >> 11) / 9007199254740992.0;
    return (float)((2.0 * unit - 1.0) * scale);
}

static float *randoms(int64_t n, float scale) {
    float *a = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) a[i] = uniform(scale);
    return a;
}

static bf16 *to_low(const float *a, int64_t n) {
    bf16 *b = malloc(sizeof(bf16) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) b[i] = to_bf16(a[i]);
    return b;
}

/* a[i] as the kernel reads it: fp32, or bf16 when `low` (then the reference reads the same) */
static double value(const void *a, int low, int64_t i) {
    return low ? (double)from_bf16(((const bf16 *)a)[i]) : (double)((const float *)a)[i];
}

static double sigmoid(double v) { return 1.0 / (1.0 + exp(-v)); }

/* One check: got[i] (fp32, or bf16 if low, `stride` apart per row of `width`) against want
   (dense), |got − want| ≤ atol + rtol |want| (bf16 adds its rounding, 2^-8 |want|). */
static void expect(const char *what, const void *got, int low, int64_t rows, int64_t width,
                   int64_t stride, const double *want, double atol, double rtol) {
    int64_t at = -1; /* the first value out of tolerance */
    if (low) rtol += 1.0 / 256.0;
    for (int64_t i = 0; i < rows && at < 0; i++)
        for (int64_t j = 0; j < width && at < 0; j++) {
            double g = value(got, low, i * stride + j), w = want[i * width + j];
            if (isinf(w) && g == w) continue;
            if (!(fabs(g - w) <= atol + rtol * fabs(w))) at = i * width + j;
        }
    if (at < 0) {
        passed++;
        return;
    }
    failed++;
    printf("FAIL %s: at %lld got %.8g, want %.8g\n", what, (long long)at,
           value(got, low, (at / width) * stride + at % width), want[at]);
}

static void check_gru(int64_t rows, int64_t H, int x_low, int low) {
    int64_t xs = 3 * H + 5, hs = H + 3; /* row strides: a step of a (B, T, ·) tensor */
    float *x = randoms(rows * xs, 2.0f), *g = randoms(rows * 3 * H, 2.0f);
    float *b = randoms(3 * H, 1.0f), *h = randoms(rows * hs, 1.0f);
    void *xk = x_low ? (void *)to_low(x, rows * xs) : (void *)x;
    void *gk = low ? (void *)to_low(g, rows * 3 * H) : (void *)g;
    float *out = calloc((size_t)(rows * hs), sizeof(float));
    float *saved = malloc(sizeof(float) * (size_t)(rows * 4 * H));
    void *copy = malloc((low ? sizeof(bf16) : sizeof(float)) * (size_t)(rows * H));
    double *want = malloc(sizeof(double) * (size_t)(rows * H));
    double *gates = malloc(sizeof(double) * (size_t)(rows * 4 * H));
    gru_forward_step(rows, H, xk, xs, x_low, gk, low, b, h, hs, out, hs, copy, saved);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < H; j++) {
            double xr = value(xk, x_low, i * xs + j), xz = value(xk, x_low, i * xs + H + j);
            double xn = value(xk, x_low, i * xs + 2 * H + j);
            double gr = value(gk, low, i * 3 * H + j), gz = value(gk, low, i * 3 * H + H + j);
            double gn = value(gk, low, i * 3 * H + 2 * H + j);
            double r = sigmoid(xr + gr + b[j]), z = sigmoid(xz + gz + b[H + j]);
            double q = gn + b[2 * H + j], n = tanh(xn + r * q);
            want[i * H + j] = (1.0 - z) * n + z * h[i * hs + j];
            double *s = gates + i * 4 * H;
            s[j] = r, s[H + j] = z, s[2 * H + j] = n, s[3 * H + j] = q;
        }
    expect("gru forward h'", out, 0, rows, H, hs, want, 1e-5, 1e-5);
    expect("gru forward copy", copy, low, rows, H, H, want, 1e-5, 1e-5);
    expect("gru forward saved", saved, 0, rows, 4 * H, 4 * H, gates, 1e-5, 1e-5);

    /* backward from the total gradient dout + carry_in + rec, into strided dx */
    float *dout = randoms(rows * hs, 1.0f), *carry = randoms(rows * H, 1.0f);
    float *rec = randoms(rows * H, 1.0f), *db = randoms(3 * H, 1.0f);
    void *reck = low ? (void *)to_low(rec, rows * H) : (void *)rec;
    size_t x_size = x_low ? sizeof(bf16) : sizeof(float), g_size = low ? sizeof(bf16) : 4;
    void *dx = calloc((size_t)(rows * xs), x_size), *dg = malloc(g_size * (size_t)(rows * 3 * H));
    double *want_c = malloc(sizeof(double) * (size_t)(rows * H));
    double *want_dx = malloc(sizeof(double) * (size_t)(rows * 3 * H));
    double *want_dg = malloc(sizeof(double) * (size_t)(rows * 3 * H));
    double *want_db = malloc(sizeof(double) * (size_t)(3 * H));
    for (int64_t j = 0; j < 3 * H; j++) want_db[j] = db[j];
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < H; j++) {
            const double *s = gates + i * 4 * H;
            double r = s[j], z = s[H + j], n = s[2 * H + j], q = s[3 * H + j];
            double dh = dout[i * hs + j] + carry[i * H + j] + value(reck, low, i * H + j);
            double a_n = dh * (1.0 - z) * (1.0 - n * n);
            double a_z = dh * (h[i * hs + j] - n) * z * (1.0 - z);
            double a_r = a_n * q * r * (1.0 - r);
            double *ox = want_dx + i * 3 * H, *og = want_dg + i * 3 * H;
            want_c[i * H + j] = dh * z;
            ox[j] = a_r, ox[H + j] = a_z, ox[2 * H + j] = a_n;
            og[j] = a_r, og[H + j] = a_z, og[2 * H + j] = a_n * r;
            want_db[j] += a_r, want_db[H + j] += a_z, want_db[2 * H + j] += a_n * r;
        }
    /* carry_out is carry_in, as the layer's backward calls it */
    gru_backward_step(rows, H, dout, hs, carry, reck, low, saved, h, hs, carry, dx, xs, x_low,
                      dg, db);
    expect("gru backward carry", carry, 0, rows, H, H, want_c, 1e-4, 1e-4);
    expect("gru backward dx", dx, x_low, rows, 3 * H, xs, want_dx, 1e-4, 1e-4);
    expect("gru backward dg", dg, low, rows, 3 * H, 3 * H, want_dg, 1e-4, 1e-4);
    expect("gru backward db", db, 0, 1, 3 * H, 3 * H, want_db, 1e-3, 1e-3);
    free(x), free(g), free(b), free(h), free(out), free(saved), free(copy), free(want);
    free(gates), free(dout), free(carry), free(rec), free(db), free(dx), free(dg);
    free(want_c), free(want_dx), free(want_dg), free(want_db);
    if (x_low) free(xk);
    if (low) free(gk), free(reck);
}

static void check_additive(int64_t n, int64_t G, int64_t S, int64_t D) {
    float *q = randoms(n * G * D, 1.5f), *k = randoms(n * S * D, 1.5f), *v = randoms(D, 1.0f);
    float *e = malloc(sizeof(float) * (size_t)(n * G * S));
    float *e_plain = malloc(sizeof(float) * (size_t)(n * G * S));
    float *T = malloc(sizeof(float) * (size_t)(n * G * S * D));
    double *want_e = calloc((size_t)(n * G * S), sizeof(double));
    double *want_T = malloc(sizeof(double) * (size_t)(n * G * S * D));
    additive_scores(n, G, S, D, q, k, v, e, T);
    additive_scores(n, G, S, D, q, k, v, e_plain, NULL);
    for (int64_t i = 0; i < n; i++)
        for (int64_t g = 0; g < G; g++)
            for (int64_t s = 0; s < S; s++)
                for (int64_t d = 0; d < D; d++) {
                    int64_t row = i * G + g;
                    double t = tanh((double)q[row * D + d] + k[(i * S + s) * D + d]);
                    want_T[(row * S + s) * D + d] = t;
                    want_e[row * S + s] += v[d] * t;
                }
    expect("additive energies", T, 0, 1, n * G * S * D, 0, want_T, 2e-6, 0);
    expect("additive scores", e, 0, 1, n * G * S, 0, want_e, 1e-4, 1e-5);
    expect("additive scores without energies", e_plain, 0, 1, n * G * S, 0, want_e, 1e-4, 1e-5);

    float *de = randoms(n * G * S, 1.0f), *dv = randoms(D, 1.0f);
    float *dq = malloc(sizeof(float) * (size_t)(n * G * D));
    float *dk = malloc(sizeof(float) * (size_t)(n * S * D));
    double *want_dq = calloc((size_t)(n * G * D), sizeof(double));
    double *want_dk = calloc((size_t)(n * S * D), sizeof(double));
    double *want_dv = malloc(sizeof(double) * (size_t)D);
    for (int64_t d = 0; d < D; d++) want_dv[d] = dv[d];
    for (int64_t i = 0; i < n; i++)
        for (int64_t g = 0; g < G; g++)
            for (int64_t s = 0; s < S; s++)
                for (int64_t d = 0; d < D; d++) {
                    int64_t row = i * G + g;
                    double t = T[(row * S + s) * D + d], grad = de[row * S + s];
                    double a = grad * v[d] * (1.0 - t * t);
                    want_dq[row * D + d] += a;
                    want_dk[(i * S + s) * D + d] += a;
                    want_dv[d] += grad * t;
                }
    additive_scores_backward(n, G, S, D, de, T, v, dq, dk, dv);
    expect("additive backward dq", dq, 0, 1, n * G * D, 0, want_dq, 1e-4, 1e-4);
    expect("additive backward dk", dk, 0, 1, n * S * D, 0, want_dk, 1e-4, 1e-4);
    expect("additive backward dv", dv, 0, 1, D, 0, want_dv, 1e-3, 1e-4);
    free(q), free(k), free(v), free(e), free(e_plain), free(T), free(want_e), free(want_T);
    free(de), free(dv), free(dq), free(dk), free(want_dq), free(want_dk), free(want_dv);
}

static void check_cross_entropy(int64_t rows, int64_t real, int64_t V, int low, float eps) {
    float *z = randoms(rows * V, 4.0f), *db = randoms(V, 1.0f);
    void *zk = low ? (void *)to_low(z, rows * V) : (void *)z;
    int64_t *y = malloc(sizeof(int64_t) * (size_t)(real > 0 ? real : 1));
    for (int64_t i = 0; i < real; i++) y[i] = (int64_t)((uniform(0.5f) + 0.5f) * (float)V) % V;
    double *want_G = calloc((size_t)(rows * V), sizeof(double));
    double *want_db = malloc(sizeof(double) * (size_t)V), want_loss = 0.0;
    for (int64_t v = 0; v < V; v++) want_db[v] = db[v];
    for (int64_t i = 0; i < real; i++) {
        double m = -HUGE_VAL, sum = 0.0, total = 0.0;
        for (int64_t v = 0; v < V; v++) m = fmax(m, value(zk, low, i * V + v));
        for (int64_t v = 0; v < V; v++) sum += exp(value(zk, low, i * V + v) - m);
        for (int64_t v = 0; v < V; v++) total += value(zk, low, i * V + v);
        want_loss += m + log(sum) - (1.0 - eps) * value(zk, low, i * V + y[i]) - eps / V * total;
        for (int64_t v = 0; v < V; v++) {
            double G = exp(value(zk, low, i * V + v) - m) / sum - (v == y[i] ? 1.0 - eps : 0.0);
            want_G[i * V + v] = G;
            want_db[v] += G;
        }
    }
    double loss_only = cross_entropy_chunk(rows, real, V, zk, low, y, eps, 0, NULL);
    double loss = cross_entropy_chunk(rows, real, V, zk, low, y, eps, 1, db);
    expect("cross-entropy loss without gradient", &(float){(float)loss_only}, 0, 1, 1, 1,
           &want_loss, 1e-3, 1e-5);
    expect("cross-entropy loss", &(float){(float)loss}, 0, 1, 1, 1, &want_loss, 1e-3, 1e-5);
    expect("cross-entropy gradient (padding rows zero)", zk, low, rows, V, V, want_G, 1e-6,
           1e-4);
    expect("cross-entropy bias gradient", db, 0, 1, V, V, want_db, 1e-4, 1e-4);
    free(z), free(db), free(y), free(want_G), free(want_db);
    if (low) free(zk);
}

/* masked: every third logit is −∞ (a forbidden word), and one row is −∞ but for two words */
static void check_best_words(int64_t rows, int64_t V, int64_t k, int low, int with_bias,
                             int masked) {
    float *z = randoms(rows * V, 5.0f), *bias = with_bias ? randoms(V, 1.0f) : NULL;
    if (masked) {
        for (int64_t i = 0; i < rows * V; i += 3) z[i] = -INFINITY;
        for (int64_t v = 0; v < V; v++) z[v] = v == V / 2 || v == V - 1 ? uniform(5.0f) : -INFINITY;
    }
    void *zk = low ? (void *)to_low(z, rows * V) : (void *)z;
    float *values = malloc(sizeof(float) * (size_t)(rows * k));
    int64_t *indices = malloc(sizeof(int64_t) * (size_t)(rows * k));
    double *want = malloc(sizeof(double) * (size_t)(rows * k));
    double *row = malloc(sizeof(double) * (size_t)V);
    char *taken = malloc((size_t)V);
    int wrong_index = 0;
    best_words(rows, V, zk, low, bias, k, values, indices);
    for (int64_t i = 0; i < rows; i++) {
        double m = -HUGE_VAL, sum = 0.0;
        for (int64_t v = 0; v < V; v++) {
            row[v] = value(zk, low, i * V + v) + (bias ? (double)bias[v] : 0.0);
            m = fmax(m, row[v]);
        }
        for (int64_t v = 0; v < V; v++) sum += exp(row[v] - m);
        memset(taken, 0, (size_t)V);
        for (int64_t j = 0; j < k; j++) { /* the best not yet taken; a tie: the lower index */
            int64_t best = -1;
            for (int64_t v = 0; v < V; v++)
                if (!taken[v] && (best < 0 || row[v] > row[best])) best = v;
            taken[best] = 1;
            want[i * k + j] = row[best] - m - log(sum);
            int64_t got = indices[i * k + j]; /* a tie may name either column */
            wrong_index |= got < 0 || got >= V || (got != best && row[got] != row[best]);
        }
    }
    expect("best words values", values, 0, rows, k, k, want, 1e-4, 1e-5);
    if (wrong_index) {
        failed++;
        printf("FAIL best words indices (V %lld, k %lld)\n", (long long)V, (long long)k);
    } else {
        passed++;
    }
    free(z), free(bias), free(values), free(indices), free(want), free(row), free(taken);
    if (low) free(zk);
}

static void check_bf16(void) {
    float cases[] = {1.0f, 1.00390625f, 1.01171875f, -3.5f, 1e-30f, 3.3895314e38f};
    double want[] = {1.0, 1.0, 1.015625, -3.5, 1.0011e-30, 3.3895314e38};
    float got[6];
    for (int i = 0; i < 6; i++) got[i] = from_bf16(to_bf16(cases[i]));
    expect("bf16 rounds to nearest even", got, 0, 1, 6, 6, want, 0, 1.0 / 256);
    if (isnan(from_bf16(to_bf16(NAN))) && isinf(from_bf16(to_bf16(-INFINITY)))) {
        passed++;
    } else {
        failed++;
        printf("FAIL bf16 keeps NaN and infinity\n");
    }
}

int main(void) {
    check_bf16();
    for (int x_low = 0; x_low < 2; x_low++)
        for (int low = 0; low < 2; low++) {
            check_gru(3, 5, x_low, low);     /* one thread */
            check_gru(64, 256, x_low, low);  /* ≥ 16384 gate values: a thread team */
        }
    check_additive(3, 1, 5, 7);
    check_additive(4, 2, 16, 512); /* ≥ 65536 energies: a thread team */
    for (int low = 0; low < 2; low++) {
        check_cross_entropy(6, 4, 37, low, 0.1f);
        check_cross_entropy(16, 16, 1000, low, 0.0f);
    }
    for (int low = 0; low < 2; low++)
        for (int masked = 0; masked < 2; masked++) {
            check_best_words(5, 37, 1, low, 0, masked);
            check_best_words(7, 300, 6, low, 1, masked);
            check_best_words(40, 2000, 5, low, masked, masked); /* ≥ 65536 logits */
            check_best_words(3, 10, 10, low, 1, masked);        /* k = V, one block */
        }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
