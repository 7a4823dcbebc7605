// Row-wise Adagrad step over a sparse (V, D) row gradient with repeated rows, in one pass.
//
// The torch form sums duplicate rows with a sort (torch.unique) and scatter-adds, then gathers,
// updates and scatters the touched rows: five passes over the lookups, about 20 ms per training
// step for 100K lookups. Here a persistent per-row slot map (V int64, -1 = untouched) gives each
// distinct row a slot in first-lookup order; duplicates are summed into their slot in lookup
// order (the same order as index_add_), then each touched row is updated once and its slot reset.
// Single-threaded: the work is a few memory passes over the lookups.
//
// Update of row r with summed gradient g (D,): sum_r += mean(g^2); w_r -= lr g / (sqrt(sum_r) + eps).
// Exposed with C linkage and called through ctypes (which releases the GIL).

#include <cmath>
#include <cstdint>
#include <vector>

extern "C" {

// parameter (rows, width) float32; row_sums (rows) float32; slots (rows) int64, all -1 on entry
// and on return; indices (count) int64 in [0, rows); values (count, width) float32.
// Returns the number of distinct rows updated, or -1 if an index is out of range (nothing changed).
int64_t sparse_rowwise_adagrad_step(float* parameter, float* row_sums, int64_t* slots,
                                    const int64_t* indices, const float* values, int64_t count,
                                    int64_t rows, int64_t width, float lr, float eps) {
  for (int64_t i = 0; i < count; ++i)
    if (indices[i] < 0 || indices[i] >= rows) return -1;
  std::vector<int64_t> touched;
  std::vector<float> summed;
  touched.reserve(count);
  summed.reserve(count * width);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t row = indices[i];
    const float* value = values + i * width;
    if (slots[row] < 0) {
      slots[row] = static_cast<int64_t>(touched.size());
      touched.push_back(row);
      summed.insert(summed.end(), value, value + width);
    } else {
      float* total = summed.data() + slots[row] * width;
      for (int64_t j = 0; j < width; ++j) total[j] += value[j];
    }
  }
  const float inverse_width = 1.0f / static_cast<float>(width);
  for (size_t slot = 0; slot < touched.size(); ++slot) {
    const int64_t row = touched[slot];
    const float* gradient = summed.data() + slot * width;
    float squares = 0.0f;
    for (int64_t j = 0; j < width; ++j) squares += gradient[j] * gradient[j];
    const float sum = row_sums[row] + squares * inverse_width;
    row_sums[row] = sum;
    const float step = lr / (std::sqrt(sum) + eps);
    float* weight = parameter + row * width;
    for (int64_t j = 0; j < width; ++j) weight[j] -= step * gradient[j];
    slots[row] = -1;
  }
  return static_cast<int64_t>(touched.size());
}

}  // extern "C"
