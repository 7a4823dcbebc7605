// Fused SiLU-gated target attention kernels (x86-64, AVX2 + FMA), forward and backward.
//
// The official MUSE code projects each behaviour x (I wide) to keys and values with SiLU-gated
// linear layers, p = W x + b, k = silu(p). Done with torch ops, training writes and re-reads
// several (B, L, O) float tensors per attention (the projection, its SiLU, the split halves'
// gradients and their concatenation); on a memory-bound CPU that was half of a training step.
// These kernels never materialise them: each (row, position) recomputes its O-wide projection in
// registers from x, so the only (B, L) sized traffic is reading x and writing its gradient.
//
// - gated_dot:  dots[r, l]  = sum_o silu(W x[r, l] + b)[o] * query[r, o]     (the key side)
// - gated_pool: pooled[r, o] = sum_l weights[r, l] * silu(W x[r, l] + b)[o]  (the value side)
//
// The backward kernels return the gradients of every input; weight and bias gradients are summed
// per thread and reduced at the end (no shared mutable state in the hot loop). Threads are the
// OpenMP team's, over contiguous ranges of rows. Exposed with C linkage and called through ctypes
// (which releases the GIL). The plain torch path in target_attention.py is the reference, and a
// test compares values and gradients.

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

// exp(x) for 8 floats: Cody-Waite range reduction and a degree-6 polynomial (Cephes expf),
// relative error about 2e-7 over the clamped range.
inline __m256 exp256(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.3762626647949f);
  const __m256 lo = _mm256_set1_ps(-88.3762626647949f);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
  fx = _mm256_floor_ps(fx);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 square = _mm256_mul_ps(x, x);
  y = _mm256_fmadd_ps(y, square, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i exponent = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(exponent));
}

inline __m256 sigmoid256(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

inline float sigmoid1(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// Runs work(worker, first, last) over contiguous ranges of rows on the OpenMP team. The library
// links libgomp by soname, so inside a torch process it joins torch's own runtime and thread
// pool: no second set of threads competes with torch's spinning ones.
template <typename Work>
void run_parallel(int64_t rows, int64_t threads, Work work) {
  threads = std::max<int64_t>(1, std::min(threads, rows));
#pragma omp parallel num_threads(static_cast<int>(threads))
  {
    const int64_t team = omp_get_num_threads();
    const int64_t worker = omp_get_thread_num();
    const int64_t chunk = (rows + team - 1) / team;
    work(worker, std::min(rows, worker * chunk), std::min(rows, (worker + 1) * chunk));
  }
}

// C (rows x n) += A (rows x k) . B (k x n) for a tile of R rows and V vectors of 8 columns, with
// the tile's accumulators in registers (R * V independent FMA chains). A is read with strides,
// so that the same kernel also multiplies by a transpose: A(t, j) = a[t * a_row + j * a_column].
template <int R, int V>
inline void tile(const float* a, int64_t a_row, int64_t a_column, const float* b, int64_t ldb,
                 int64_t k, float* c, int64_t ldc) {
  __m256 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_loadu_ps(c + r * ldc + 8 * v);
  for (int64_t j = 0; j < k; ++j) {
    __m256 column[V];
    for (int v = 0; v < V; ++v) column[v] = _mm256_loadu_ps(b + j * ldb + 8 * v);
    for (int r = 0; r < R; ++r) {
      const __m256 scalar = _mm256_set1_ps(a[r * a_row + j * a_column]);
      for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(scalar, column[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) _mm256_storeu_ps(c + r * ldc + 8 * v, acc[r][v]);
}

template <int R>
inline void tile_row(const float* a, int64_t a_row, int64_t a_column, const float* b, int64_t k,
                     int64_t n, float* c) {
  int64_t column = 0;
  for (; column + 32 <= n; column += 32)
    tile<R, 4>(a, a_row, a_column, b + column, n, k, c + column, n);
  for (; column < n; column += 8) tile<R, 1>(a, a_row, a_column, b + column, n, k, c + column, n);
}

// C (m x n, row-major) += A (m x k, strided as in tile) . B (k x n, row-major); n % 8 == 0.
void multiply_add(const float* a, int64_t a_row, int64_t a_column, const float* b, int64_t m,
                  int64_t k, int64_t n, float* c) {
  int64_t row = 0;
  for (; row + 2 <= m; row += 2) tile_row<2>(a + row * a_row, a_row, a_column, b, k, n, c + row * n);
  for (; row < m; ++row) tile_row<1>(a + row * a_row, a_row, a_column, b, k, n, c + row * n);
}

// Shapes shared by all kernels: x (rows, length, in); weight (out, in), row-major as nn.Linear;
// bias (out). The kernels need in and out to be multiples of 8.
struct Shape {
  int64_t rows, length, in, out;
};

// Per-thread scratch for one row of ``length`` positions.
struct RowBuffers {
  std::vector<float> projection, gated, slope, grad_projection;
  explicit RowBuffers(const Shape& s)
      : projection(s.length * s.out), gated(s.length * s.out), slope(s.length * s.out),
        grad_projection(s.length * s.out) {}
};

// projection = x_row (length x in) . W^T + bias, then gated = silu(projection) and, when wanted,
// slope = d silu / d p = s (1 + p (1 - s)).
void gate_row(const float* x_row, const float* wt, const float* bias, const Shape& s,
              RowBuffers& buffers, bool with_slope) {
  float* projection = buffers.projection.data();
  for (int64_t l = 0; l < s.length; ++l)
    std::copy(bias, bias + s.out, projection + l * s.out);
  multiply_add(x_row, s.in, 1, wt, s.length, s.in, s.out, projection);
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t e = 0; e < s.length * s.out; e += 8) {
    const __m256 p = _mm256_loadu_ps(projection + e);
    const __m256 sig = sigmoid256(p);
    _mm256_storeu_ps(buffers.gated.data() + e, _mm256_mul_ps(p, sig));
    if (with_slope)
      _mm256_storeu_ps(buffers.slope.data() + e,
                       _mm256_mul_ps(sig, _mm256_fmadd_ps(p, _mm256_sub_ps(one, sig), one)));
  }
}

// Given grad_projection of one row: grad_x_row = grad_projection . W (overwritten);
// grad_wt += x_row^T . grad_projection; grad_bias += column sums of grad_projection.
void project_backward(const float* x_row, const float* weight, const Shape& s,
                      const RowBuffers& buffers, float* grad_x_row, float* grad_wt,
                      float* grad_bias) {
  const float* dp = buffers.grad_projection.data();
  std::fill(grad_x_row, grad_x_row + s.length * s.in, 0.0f);
  multiply_add(dp, s.out, 1, weight, s.length, s.out, s.in, grad_x_row);
  multiply_add(x_row, 1, s.in, dp, s.in, s.length, s.out, grad_wt);
  for (int64_t l = 0; l < s.length; ++l)
    for (int64_t o = 0; o < s.out; o += 8)
      _mm256_storeu_ps(grad_bias + o, _mm256_add_ps(_mm256_loadu_ps(grad_bias + o),
                                                    _mm256_loadu_ps(dp + l * s.out + o)));
}

std::vector<float> transposed(const float* weight, const Shape& s) {
  std::vector<float> wt(s.in * s.out);
  for (int64_t o = 0; o < s.out; ++o)
    for (int64_t i = 0; i < s.in; ++i) wt[i * s.out + o] = weight[o * s.in + i];
  return wt;
}

inline float dot(const float* a, const float* b, int64_t n) {
  __m256 sum = _mm256_setzero_ps();
  for (int64_t o = 0; o < n; o += 8)
    sum = _mm256_fmadd_ps(_mm256_loadu_ps(a + o), _mm256_loadu_ps(b + o), sum);
  const __m128 half = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  const __m128 pair = _mm_add_ps(half, _mm_movehl_ps(half, half));
  return _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1)));
}

// Per-thread weight (transposed) and bias gradient accumulators, summed by ``reduce``.
struct ParameterGradients {
  std::vector<std::vector<float>> weight_t, bias;
  ParameterGradients(int64_t workers, const Shape& s)
      : weight_t(workers, std::vector<float>(s.in * s.out, 0.0f)),
        bias(workers, std::vector<float>(s.out, 0.0f)) {}

  void reduce(const Shape& s, float* grad_weight, float* grad_bias) const {
    for (int64_t o = 0; o < s.out; ++o) {
      float total = 0.0f;
      for (const auto& part : bias) total += part[o];
      grad_bias[o] = total;
      for (int64_t i = 0; i < s.in; ++i) {
        float sum = 0.0f;
        for (const auto& part : weight_t) sum += part[i * s.out + o];
        grad_weight[o * s.in + i] = sum;
      }
    }
  }
};

int64_t worker_count(int64_t threads, int64_t rows) {
  return std::max<int64_t>(1, std::min(threads, rows));
}

}  // namespace

extern "C" {

// dots (rows, length) = silu(W x + b) . query[row]; query (rows, out).
void gated_dot_forward(const float* x, const float* weight, const float* bias, const float* query,
                       float* dots, int64_t rows, int64_t length, int64_t in, int64_t out,
                       int64_t threads) {
  const Shape s{rows, length, in, out};
  const std::vector<float> wt = transposed(weight, s);
  run_parallel(rows, worker_count(threads, rows), [&](int64_t, int64_t first, int64_t last) {
    RowBuffers buffers(s);
    for (int64_t r = first; r < last; ++r) {
      gate_row(x + r * length * in, wt.data(), bias, s, buffers, false);
      for (int64_t l = 0; l < length; ++l)
        dots[r * length + l] = dot(buffers.gated.data() + l * out, query + r * out, out);
    }
  });
}

// Gradients of gated_dot_forward given grad_dots (rows, length): grad_x (rows, length, in),
// grad_weight (out, in), grad_bias (out), grad_query (rows, out); all overwritten.
void gated_dot_backward(const float* x, const float* weight, const float* bias, const float* query,
                        const float* grad_dots, float* grad_x, float* grad_weight, float* grad_bias,
                        float* grad_query, int64_t rows, int64_t length, int64_t in, int64_t out,
                        int64_t threads) {
  const Shape s{rows, length, in, out};
  const std::vector<float> wt = transposed(weight, s);
  const int64_t workers = worker_count(threads, rows);
  ParameterGradients parameters(workers, s);
  run_parallel(rows, workers, [&](int64_t worker, int64_t first, int64_t last) {
    RowBuffers buffers(s);
    for (int64_t r = first; r < last; ++r) {
      const float* x_row = x + r * length * in;
      const float* q = query + r * out;
      float* gq = grad_query + r * out;
      std::fill(gq, gq + out, 0.0f);
      gate_row(x_row, wt.data(), bias, s, buffers, true);
      for (int64_t l = 0; l < length; ++l) {
        const __m256 g = _mm256_set1_ps(grad_dots[r * length + l]);
        const float* gated = buffers.gated.data() + l * out;
        const float* slope = buffers.slope.data() + l * out;
        float* dp = buffers.grad_projection.data() + l * out;
        for (int64_t o = 0; o < out; o += 8) {
          _mm256_storeu_ps(gq + o, _mm256_fmadd_ps(g, _mm256_loadu_ps(gated + o),
                                                   _mm256_loadu_ps(gq + o)));
          _mm256_storeu_ps(dp + o, _mm256_mul_ps(_mm256_mul_ps(g, _mm256_loadu_ps(q + o)),
                                                 _mm256_loadu_ps(slope + o)));
        }
      }
      project_backward(x_row, weight, s, buffers, grad_x + r * length * in,
                       parameters.weight_t[worker].data(), parameters.bias[worker].data());
    }
  });
  parameters.reduce(s, grad_weight, grad_bias);
}

// pooled (rows, out) = sum_l weights[row, l] silu(W x[row, l] + b); weights (rows, length).
void gated_pool_forward(const float* x, const float* weight, const float* bias,
                        const float* weights, float* pooled, int64_t rows, int64_t length,
                        int64_t in, int64_t out, int64_t threads) {
  const Shape s{rows, length, in, out};
  const std::vector<float> wt = transposed(weight, s);
  run_parallel(rows, worker_count(threads, rows), [&](int64_t, int64_t first, int64_t last) {
    RowBuffers buffers(s);
    for (int64_t r = first; r < last; ++r) {
      gate_row(x + r * length * in, wt.data(), bias, s, buffers, false);
      float* result = pooled + r * out;
      std::fill(result, result + out, 0.0f);
      multiply_add(weights + r * length, 0, 1, buffers.gated.data(), 1, length, out, result);
    }
  });
}

// Gradients of gated_pool_forward given grad_pooled (rows, out): grad_x (rows, length, in),
// grad_weight (out, in), grad_bias (out), grad_weights (rows, length); all overwritten.
void gated_pool_backward(const float* x, const float* weight, const float* bias,
                         const float* weights, const float* grad_pooled, float* grad_x,
                         float* grad_weight, float* grad_bias, float* grad_weights, int64_t rows,
                         int64_t length, int64_t in, int64_t out, int64_t threads) {
  const Shape s{rows, length, in, out};
  const std::vector<float> wt = transposed(weight, s);
  const int64_t workers = worker_count(threads, rows);
  ParameterGradients parameters(workers, s);
  run_parallel(rows, workers, [&](int64_t worker, int64_t first, int64_t last) {
    RowBuffers buffers(s);
    for (int64_t r = first; r < last; ++r) {
      const float* x_row = x + r * length * in;
      const float* gp = grad_pooled + r * out;
      gate_row(x_row, wt.data(), bias, s, buffers, true);
      for (int64_t l = 0; l < length; ++l) {
        const float* gated = buffers.gated.data() + l * out;
        const float* slope = buffers.slope.data() + l * out;
        float* dp = buffers.grad_projection.data() + l * out;
        grad_weights[r * length + l] = dot(gated, gp, out);
        const __m256 w = _mm256_set1_ps(weights[r * length + l]);
        for (int64_t o = 0; o < out; o += 8)
          _mm256_storeu_ps(dp + o, _mm256_mul_ps(_mm256_mul_ps(w, _mm256_loadu_ps(gp + o)),
                                                 _mm256_loadu_ps(slope + o)));
      }
      project_backward(x_row, weight, s, buffers, grad_x + r * length * in,
                       parameters.weight_t[worker].data(), parameters.bias[worker].data());
    }
  });
  parameters.reduce(s, grad_weight, grad_bias);
}

}  // extern "C"
