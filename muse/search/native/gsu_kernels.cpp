// GSU exact top-K cosine search kernels (x86-64, AVX2 + FMA + F16C; AVX512-VNNI where built so).
//
// What is unusual here:
// - The history is packed as int8 codes in groups of 8 rows x 4 dims (32 bytes), so that one
//   vpmaddubsw against a broadcast 4-dim candidate slice, widened by vpmaddwd, yields 8 int32
//   partial dot products: 32 multiply-adds per two multiply uops, twice fp32 FMA's rate on AVX2.
// - vpmaddubsw multiplies unsigned by signed bytes with int16 pair sums, so candidates are
//   quantised to 7 bits (q in [-63, 63]) and sent as q + 64; the pair sums then cannot saturate,
//   and the exact integer offset 64 * sum(row codes) is subtracted per row. The AVX512-VNNI
//   build's vpdpbusd does not saturate: candidates take 8 bits there (q + 128, offset 128 * sum).
// - Each approximate score is within beta of the exact one: beta bounds the candidate's rounding
//   and (for histories not from an int8 table) the history's rounding. A row is looked at only
//   when its approximate score reaches (K-th best exact score so far) - beta.
// - Selection is fused into the matmul: each tile of scores is compared with the per-candidate
//   threshold while in registers. The rare rows that pass are scored exactly in fp32 at once,
//   while their block is still in L1, and kept in a size-K min-heap of exact scores. The result
//   therefore equals fp32 exact search (ties may break either way).
// - A history from an int8 table is packed once per distinct item (lifelong logs repeat items):
//   each row carries a weight, the number of positions it stands for, the heaps keep the fewest
//   best rows whose weights cover K positions, and results are expanded to history positions.
// - Short histories take two passes: all approximate scores of a candidate tile first, then a
//   histogram bound on each candidate's K-th best, so that only rows that can reach it are scored
//   exactly (a running heap would re-score every row that beats the K-th best so far).
// - Threads are plain std::thread: over candidates when there are many, else over ranges of the
//   history whose heaps are merged at the end (no shared mutable state in the hot loop).
//
// Exposed with C linkage and called through ctypes (which releases the GIL).

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr int64_t kBlockRows = 8;    // history rows per packed block (one ymm of int32 scores)
constexpr int64_t kGroupDims = 4;    // dims per 32-byte group of a block
constexpr int64_t kGroupBytes = kBlockRows * kGroupDims;
#ifdef __AVX512VNNI__
// vpdpbusd sums u8 x s8 products in int32 without saturating: candidates take 8 bits, which
// halves their rounding and so the band of rows that must be scored exactly.
constexpr int32_t kQueryLimit = 127;  // |candidate code| <= 127, sent as code + 128 (<= 255)
constexpr int32_t kQueryOffset = 128;
#else
constexpr int32_t kQueryLimit = 63;  // |candidate code| <= 63, sent as code + 64 (<= 127)
constexpr int32_t kQueryOffset = 64;
#endif
constexpr float kExcluded = -1.0e30f;    // approx score of padding / OOV / alignment rows
constexpr float kFloorStart = -1.0e20f;  // below every real score, above every excluded one
constexpr int kTileCandidates = 4;       // candidates per register tile
constexpr int kTileBlocks = 3;           // 8-row blocks per register tile
constexpr int64_t kTwoPassMaxRows = 4096;  // packed rows up to which a search takes two passes

// acc + the 8 int32 dot products of a broadcast 4-byte candidate slice (u8) with a group of
// 8 rows x 4 codes (s8). With AVX512-VNNI (the build for CPUs that have it) one vpdpbusd does it
// and candidates take 8 bits; otherwise vpmaddubsw + vpmaddwd + vpaddd, whose int16 pair sums
// 7-bit candidates keep from saturating. The two builds' approximate scores differ, their exact
// results do not (a test compares them).
inline __attribute__((always_inline)) __m256i multiply_add(__m256i acc, __m256i slice,
                                                           __m256i rows) {
#ifdef __AVX512VNNI__
  return _mm256_dpbusd_epi32(acc, slice, rows);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(slice, rows),
                                                 _mm256_set1_epi16(1)));
#endif
}

// Where the exact fp32 values of history rows come from.
enum ExactKind : int32_t {
  kPackedInt8 = 1,    // the packed codes are the exact rows (int8 table), times scale[l]
  kRowsFloat32 = 2,   // row-major normalised fp32 rows (L, D)
  kTableInt8 = 3,     // int8 table + indices, times 1/||row||
  kTableFloat16 = 4,  // fp16 table + indices, times 1/||row||
  kTableFloat32 = 5,  // fp32 table + indices, times 1/||row||
};

inline float horizontal_sum(__m256 v) {
  __m128 low = _mm256_castps256_ps128(v);
  __m128 high = _mm256_extractf128_ps(v, 1);
  low = _mm_add_ps(low, high);
  __m128 shuffled = _mm_movehdup_ps(low);
  __m128 sums = _mm_add_ps(low, shuffled);
  shuffled = _mm_movehl_ps(shuffled, sums);
  sums = _mm_add_ss(sums, shuffled);
  return _mm_cvtss_f32(sums);
}

inline float horizontal_sum(__m128 v) {
  __m128 shuffled = _mm_movehdup_ps(v);
  __m128 sums = _mm_add_ps(v, shuffled);
  shuffled = _mm_movehl_ps(shuffled, sums);
  sums = _mm_add_ss(sums, shuffled);
  return _mm_cvtss_f32(sums);
}

// fp32 dot product of a query with one row stored as int8 / fp16 / fp32; also its sum of squares.
// Four independent accumulators hide the FMA latency (one chain would cost 4 cycles per 8 dims).
template <typename Load, typename Scalar>
inline float dot_row(const float* query, int64_t dim, float* squares, Load load, Scalar scalar) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  __m256 sq0 = _mm256_setzero_ps(), sq1 = _mm256_setzero_ps();
  int64_t d = 0;
  for (; d + 32 <= dim; d += 32) {
    const __m256 h0 = load(d), h1 = load(d + 8), h2 = load(d + 16), h3 = load(d + 24);
    acc0 = _mm256_fmadd_ps(h0, _mm256_loadu_ps(query + d), acc0);
    acc1 = _mm256_fmadd_ps(h1, _mm256_loadu_ps(query + d + 8), acc1);
    acc2 = _mm256_fmadd_ps(h2, _mm256_loadu_ps(query + d + 16), acc2);
    acc3 = _mm256_fmadd_ps(h3, _mm256_loadu_ps(query + d + 24), acc3);
    if (squares) {
      sq0 = _mm256_fmadd_ps(h0, h0, _mm256_fmadd_ps(h2, h2, sq0));
      sq1 = _mm256_fmadd_ps(h1, h1, _mm256_fmadd_ps(h3, h3, sq1));
    }
  }
  for (; d + 8 <= dim; d += 8) {
    const __m256 h = load(d);
    acc0 = _mm256_fmadd_ps(h, _mm256_loadu_ps(query + d), acc0);
    if (squares) sq0 = _mm256_fmadd_ps(h, h, sq0);
  }
  float dot = horizontal_sum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  float squares_sum = squares ? horizontal_sum(_mm256_add_ps(sq0, sq1)) : 0.0f;
  for (; d < dim; ++d) {
    const float h = scalar(d);
    dot += h * query[d];
    squares_sum += h * h;
  }
  if (squares) *squares = squares_sum;
  return dot;
}

inline float dot_int8(const float* query, const int8_t* row, int64_t dim, float* squares) {
  return dot_row(
      query, dim, squares,
      [row](int64_t d) {
        return _mm256_cvtepi32_ps(
            _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + d))));
      },
      [row](int64_t d) { return static_cast<float>(row[d]); });
}

inline float dot_float16(const float* query, const uint16_t* row, int64_t dim, float* squares) {
  return dot_row(
      query, dim, squares,
      [row](int64_t d) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + d)));
      },
      [row](int64_t d) { return _cvtsh_ss(row[d]); });
}

inline float dot_float32(const float* query, const float* row, int64_t dim, float* squares) {
  return dot_row(
      query, dim, squares, [row](int64_t d) { return _mm256_loadu_ps(row + d); },
      [row](int64_t d) { return row[d]; });
}

// fp32 dot product of a query with row `lane` of a packed block (4 bytes every 32).
inline __m128 packed_slice(const int8_t* base, int64_t g) {
  int32_t slice;
  std::memcpy(&slice, base + g * kGroupBytes, sizeof(slice));
  return _mm_cvtepi32_ps(_mm_cvtepi8_epi32(_mm_cvtsi32_si128(slice)));
}

inline float dot_packed(const float* query, const int8_t* block, int64_t lane, int64_t groups) {
  const int8_t* base = block + lane * kGroupDims;
  __m128 acc0 = _mm_setzero_ps(), acc1 = _mm_setzero_ps();
  __m128 acc2 = _mm_setzero_ps(), acc3 = _mm_setzero_ps();
  int64_t g = 0;
  for (; g + 4 <= groups; g += 4) {
    acc0 = _mm_fmadd_ps(packed_slice(base, g), _mm_loadu_ps(query + g * kGroupDims), acc0);
    acc1 = _mm_fmadd_ps(packed_slice(base, g + 1), _mm_loadu_ps(query + (g + 1) * kGroupDims), acc1);
    acc2 = _mm_fmadd_ps(packed_slice(base, g + 2), _mm_loadu_ps(query + (g + 2) * kGroupDims), acc2);
    acc3 = _mm_fmadd_ps(packed_slice(base, g + 3), _mm_loadu_ps(query + (g + 3) * kGroupDims), acc3);
  }
  for (; g < groups; ++g)
    acc0 = _mm_fmadd_ps(packed_slice(base, g), _mm_loadu_ps(query + g * kGroupDims), acc0);
  return horizontal_sum(_mm_add_ps(_mm_add_ps(acc0, acc1), _mm_add_ps(acc2, acc3)));
}

inline float inverse_norm(float squares) {
  return squares > 0.0f ? 1.0f / std::sqrt(squares) : 0.0f;
}

// The K best (exact cosine, position) of one candidate so far, as a min-heap on the cosine.
struct TopK {
  std::vector<float> cosine;
  std::vector<int32_t> position;

  // Adds a row; returns the new K-th best cosine (kFloorStart while fewer than k are held).
  float offer(float value, int32_t row, int64_t k) {
    int64_t size = static_cast<int64_t>(cosine.size());
    if (size < k) {
      // Sift up.
      cosine.push_back(value);
      position.push_back(row);
      int64_t at = size;
      while (at > 0) {
        const int64_t parent = (at - 1) / 2;
        if (cosine[parent] <= value) break;
        cosine[at] = cosine[parent];
        position[at] = position[parent];
        at = parent;
      }
      cosine[at] = value;
      position[at] = row;
      return size + 1 < k ? kFloorStart : cosine[0];
    }
    if (!(value > cosine[0])) return cosine[0];
    // Replace the smallest and sift down; the smaller child is picked without a branch.
    int64_t at = 0;
    for (;;) {
      const int64_t left = 2 * at + 1;
      if (left >= size) break;
      const int64_t right = left + 1;
      const int64_t child = (right < size && cosine[right] < cosine[left]) ? right : left;
      if (cosine[child] >= value) break;
      cosine[at] = cosine[child];
      position[at] = position[child];
      at = child;
    }
    cosine[at] = value;
    position[at] = row;
    return cosine[0];
  }

  // Weighted variant for a history packed once per distinct item: a row stands for `weight`
  // positions, so the heap keeps the fewest best rows whose weights still cover k positions.
  // Returns the new K-th best position's cosine (kFloorStart while fewer than k are covered).
  float offer_weighted(float value, int32_t row, int32_t weight, int64_t k) {
    if (covered >= k && !(value > cosine[0])) return cosine[0];
    cosine.push_back(value);
    position.push_back(row);
    weights.push_back(weight);
    sift_up(static_cast<int64_t>(cosine.size()) - 1);
    covered += weight;
    while (covered - weights[0] >= k) {
      covered -= weights[0];
      pop_smallest();
    }
    return covered >= k ? cosine[0] : kFloorStart;
  }

  std::vector<int32_t> weights;  // weighted heaps only
  int64_t covered = 0;           // sum of the weights held

 private:
  void swap_entries(int64_t a, int64_t b) {
    std::swap(cosine[a], cosine[b]);
    std::swap(position[a], position[b]);
    std::swap(weights[a], weights[b]);
  }
  void sift_up(int64_t at) {
    while (at > 0) {
      const int64_t parent = (at - 1) / 2;
      if (cosine[parent] <= cosine[at]) break;
      swap_entries(parent, at);
      at = parent;
    }
  }
  void pop_smallest() {
    const int64_t last = static_cast<int64_t>(cosine.size()) - 1;
    swap_entries(0, last);
    cosine.pop_back();
    position.pop_back();
    weights.pop_back();
    const int64_t size = last;
    int64_t at = 0;
    for (;;) {
      const int64_t left = 2 * at + 1;
      if (left >= size) break;
      const int64_t right = left + 1;
      const int64_t child = (right < size && cosine[right] < cosine[left]) ? right : left;
      if (cosine[child] >= cosine[at]) break;
      swap_entries(child, at);
      at = child;
    }
  }
};

// Where a packed row's positions in the original history are: positions[offsets[r] ..
// offsets[r + 1]), ascending. Null for a history packed position by position.
struct RowPositions {
  const int64_t* offsets = nullptr;
  const int64_t* positions = nullptr;
};

// Writes the top-K history positions of (cosine, packed row) entries, highest first; equal
// cosines keep the earlier position. Packed rows map to their history positions when given.
void write_rows(const std::vector<std::pair<float, int32_t>>& entries, int64_t k,
                RowPositions map, int64_t* positions, float* cosines, uint8_t* mask) {
  // One integer key per (cosine, position): ascending keys are descending cosines, then
  // ascending positions, so a plain integer sort orders them without branchy comparisons.
  thread_local std::vector<uint64_t> keys;
  keys.clear();
  const auto key = [](float cosine, int64_t position) {
    if (cosine == 0.0f) cosine = 0.0f;  // -0 ties with +0, as in a float comparison
    uint32_t bits;
    std::memcpy(&bits, &cosine, sizeof(bits));
    bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);  // orderable as unsigned
    return (static_cast<uint64_t>(~bits) << 32) | static_cast<uint32_t>(position);
  };
  for (const auto& [cosine, row] : entries) {
    if (!map.offsets) {
      keys.push_back(key(cosine, row));
      continue;
    }
    // An item repeated more than k times contributes only its k earliest positions.
    const int64_t end = std::min(map.offsets[row + 1], map.offsets[row] + k);
    for (int64_t at = map.offsets[row]; at < end; ++at)
      keys.push_back(key(cosine, map.positions[at]));
  }
  const int64_t kept = std::min<int64_t>(k, static_cast<int64_t>(keys.size()));
  if (kept < static_cast<int64_t>(keys.size()))
    std::nth_element(keys.begin(), keys.begin() + (kept - 1), keys.end());
  std::sort(keys.begin(), keys.begin() + kept);
  for (int64_t i = 0; i < k; ++i) {
    if (i < kept) {
      uint32_t bits = ~static_cast<uint32_t>(keys[i] >> 32);
      bits = (bits & 0x80000000u) ? (bits & 0x7fffffffu) : ~bits;
      float cosine;
      std::memcpy(&cosine, &bits, sizeof(cosine));
      positions[i] = static_cast<int64_t>(keys[i] & 0xffffffffu);
      cosines[i] = cosine;
      mask[i] = 1;
    } else {
      positions[i] = -1;
      cosines[i] = 0.0f;
      mask[i] = 0;
    }
  }
}

// Merge one candidate's heaps (one per history range) and write its top-K.
void write_top_k(std::vector<const TopK*>& parts, int64_t k, int64_t* positions, float* cosines,
                 uint8_t* mask, RowPositions map = {}) {
  std::vector<std::pair<float, int32_t>> entries;
  for (const TopK* part : parts)
    for (size_t i = 0; i < part->cosine.size(); ++i)
      entries.emplace_back(part->cosine[i], part->position[i]);
  write_rows(entries, k, map, positions, cosines, mask);
}

template <typename Work>
void run_parallel(int64_t tasks, int64_t threads, Work work) {
  threads = std::max<int64_t>(1, std::min(threads, tasks));
  if (threads == 1) {
    for (int64_t t = 0; t < tasks; ++t) work(t);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int64_t w = 1; w < threads; ++w)
    pool.emplace_back([&, w]() {
      for (int64_t t = w; t < tasks; t += threads) work(t);
    });
  for (int64_t t = 0; t < tasks; t += threads) work(t);
  for (auto& thread : pool) thread.join();
}

// ---------------------------------------------------------------------------------------------
// Packed u8 x s8 micro-kernel: MR candidates x NR blocks of 8 rows.

struct PackedSearch {
  const int8_t* codes;        // (blocks, groups, 8, 4)
  const float* scale;         // (L_pad,) row ~= codes * scale
  const float* penalty;       // (L_pad,) 0, or kExcluded for rows never returned
  const int32_t* offset;      // (L_pad,) 64 * sum of the row's codes
  int64_t groups;             // dim_pad / 4
  const float* rows;          // (L, dim) normalised fp32 rows when codes are not exact, else null
  int64_t dim;
  const uint8_t* query_codes;  // (C, dim_pad) candidate codes + kQueryOffset
  const float* queries;        // (C, dim) normalised fp32 candidates
  const float* value_scale;    // (C,) approx score units per cosine
  const float* beta;           // (C,) bound on |approx - exact|, approx units
  int64_t k;
  const int32_t* weight;       // (L_pad,) positions each row stands for, or null (one each)

  // A row passed the approximate test: score it exactly and offer it to the candidate's heap.
  void consider(TopK& top, float* threshold, int64_t c, int64_t block, int64_t lane) const {
    const float floor = offer(top, exact_cosine(c, block, lane), block * kBlockRows + lane);
    if (floor > kFloorStart) threshold[c] = floor * value_scale[c] - beta[c];
  }

  // fp32 cosine of candidate c with row `lane` of a block.
  float exact_cosine(int64_t c, int64_t block, int64_t lane) const {
    const int64_t l = block * kBlockRows + lane;
    const float* query = queries + c * dim;
    return rows ? dot_float32(query, rows + l * dim, dim, nullptr)
                : dot_packed(query, codes + block * groups * kGroupBytes, lane, groups) * scale[l];
  }

  // Offers row l to a heap; returns the new K-th best cosine (kFloorStart while too few).
  float offer(TopK& top, float cosine, int64_t l) const {
    return weight ? top.offer_weighted(cosine, static_cast<int32_t>(l), weight[l], k)
                  : top.offer(cosine, static_cast<int32_t>(l), k);
  }
};

// Integer dot products of candidates c0..c0+MR-1 with the rows of blocks block0..block0+NR-1.
template <int MR, int NR>
inline __attribute__((always_inline)) void accumulate_tile(const PackedSearch& search,
                                                           int64_t block0, int64_t c0,
                                                           __m256i (&acc)[MR][NR]) {
  const int64_t block_bytes = search.groups * kGroupBytes;
  const int8_t* base = search.codes + block0 * block_bytes;
  const int64_t query_stride = search.groups * kGroupDims;
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_si256();
  if constexpr (MR == 4 && NR == 3) {
    // Named accumulators and rows read as memory operands: 12 accumulators + broadcast + ones +
    // one temporary fit the 16 ymm registers of AVX2 (gcc spills array-held accumulators).
    __m256i a00 = acc[0][0], a01 = acc[0][1], a02 = acc[0][2];
    __m256i a10 = acc[1][0], a11 = acc[1][1], a12 = acc[1][2];
    __m256i a20 = acc[2][0], a21 = acc[2][1], a22 = acc[2][2];
    __m256i a30 = acc[3][0], a31 = acc[3][1], a32 = acc[3][2];
    const uint8_t* q0 = search.query_codes + c0 * query_stride;
    const uint8_t* q1 = q0 + query_stride;
    const uint8_t* q2 = q1 + query_stride;
    const uint8_t* q3 = q2 + query_stride;
    const __m256i* r0 = reinterpret_cast<const __m256i*>(base);
    const __m256i* r1 = reinterpret_cast<const __m256i*>(base + block_bytes);
    const __m256i* r2 = reinterpret_cast<const __m256i*>(base + 2 * block_bytes);
#define GSU_STEP(q, x0, x1, x2)                                                               \
  {                                                                                           \
    int32_t slice;                                                                            \
    std::memcpy(&slice, (q) + g * kGroupDims, sizeof(slice));                                 \
    const __m256i b = _mm256_set1_epi32(slice);                                               \
    x0 = multiply_add(x0, b, _mm256_loadu_si256(r0 + g));                                     \
    x1 = multiply_add(x1, b, _mm256_loadu_si256(r1 + g));                                     \
    x2 = multiply_add(x2, b, _mm256_loadu_si256(r2 + g));                                     \
  }
    for (int64_t g = 0; g < search.groups; ++g) {
      GSU_STEP(q0, a00, a01, a02)
      GSU_STEP(q1, a10, a11, a12)
      GSU_STEP(q2, a20, a21, a22)
      GSU_STEP(q3, a30, a31, a32)
    }
#undef GSU_STEP
    acc[0][0] = a00, acc[0][1] = a01, acc[0][2] = a02;
    acc[1][0] = a10, acc[1][1] = a11, acc[1][2] = a12;
    acc[2][0] = a20, acc[2][1] = a21, acc[2][2] = a22;
    acc[3][0] = a30, acc[3][1] = a31, acc[3][2] = a32;
  } else {
    for (int64_t g = 0; g < search.groups; ++g) {
      for (int i = 0; i < MR; ++i) {
        int32_t slice;
        std::memcpy(&slice, search.query_codes + (c0 + i) * query_stride + g * kGroupDims,
                    sizeof(slice));
        const __m256i broadcast = _mm256_set1_epi32(slice);
        for (int j = 0; j < NR; ++j) {
          const __m256i rows = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(base + j * block_bytes + g * kGroupBytes));
          acc[i][j] = multiply_add(acc[i][j], broadcast, rows);
        }
      }
    }
  }
}

// The approximate scores of a tile (approx units; excluded rows far below any threshold).
template <int MR, int NR>
inline __attribute__((always_inline)) void tile_values(const PackedSearch& search,
                                                       int64_t block0, int64_t c0,
                                                       __m256 (&values)[MR][NR]) {
  __m256i acc[MR][NR];
  accumulate_tile<MR, NR>(search, block0, c0, acc);
  for (int j = 0; j < NR; ++j) {
    const int64_t row0 = (block0 + j) * kBlockRows;
    const __m256 row_scale = _mm256_loadu_ps(search.scale + row0);
    const __m256 row_penalty = _mm256_loadu_ps(search.penalty + row0);
    const __m256i row_offset =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(search.offset + row0));
    for (int i = 0; i < MR; ++i)
      values[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[i][j], row_offset)),
                                     row_scale, row_penalty);
  }
}

template <int MR, int NR>
inline void scan_tile(const PackedSearch& search, int64_t block0, int64_t c0, float* threshold,
                      std::vector<TopK>& tops) {
  __m256i acc[MR][NR];
  accumulate_tile<MR, NR>(search, block0, c0, acc);
  __m256 row_scale[NR];
  __m256 row_penalty[NR];
  __m256i row_offset[NR];
  for (int j = 0; j < NR; ++j) {
    const int64_t row0 = (block0 + j) * kBlockRows;
    row_scale[j] = _mm256_loadu_ps(search.scale + row0);
    row_penalty[j] = _mm256_loadu_ps(search.penalty + row0);
    row_offset[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(search.offset + row0));
  }
  for (int i = 0; i < MR; ++i) {
    const int64_t c = c0 + i;
    const __m256 limit = _mm256_set1_ps(threshold[c]);
    for (int j = 0; j < NR; ++j) {
      const __m256i dot = _mm256_sub_epi32(acc[i][j], row_offset[j]);
      const __m256 value = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), row_scale[j], row_penalty[j]);
      int bits = _mm256_movemask_ps(_mm256_cmp_ps(value, limit, _CMP_GE_OQ));
      if (bits) {
        // The candidate's fp32 query is rarely in L1 here: start fetching all of it at once.
        const char* query = reinterpret_cast<const char*>(search.queries + c * search.dim);
        for (int64_t at = 0; at < search.dim * 4; at += 64) _mm_prefetch(query + at, _MM_HINT_T0);
        alignas(32) float values[8];
        _mm256_store_ps(values, value);
        while (bits) {
          const int lane = __builtin_ctz(bits);
          bits &= bits - 1;
          if (values[lane] >= threshold[c]) search.consider(tops[c], threshold, c, block0 + j, lane);
        }
      }
    }
  }
}

template <int MR>
inline void scan_candidates(const PackedSearch& search, int64_t block_begin, int64_t block_end,
                            int64_t c0, float* threshold, std::vector<TopK>& tops) {
  constexpr int NR = MR == kTileCandidates ? kTileBlocks : (MR == 1 ? 6 : 4);
  int64_t b = block_begin;
  for (; b + NR <= block_end; b += NR) scan_tile<MR, NR>(search, b, c0, threshold, tops);
  for (; b < block_end; ++b) scan_tile<MR, 1>(search, b, c0, threshold, tops);
}

// Candidates [c_begin, c_end) over blocks [block_begin, block_end), chunk by chunk so that a
// chunk's codes stay in L1 while every candidate passes over them.
void scan_range(const PackedSearch& search, int64_t block_begin, int64_t block_end,
                int64_t c_begin, int64_t c_end, float* threshold, std::vector<TopK>& tops,
                int64_t chunk_blocks) {
  for (int64_t chunk = block_begin; chunk < block_end; chunk += chunk_blocks) {
    const int64_t chunk_end = std::min(block_end, chunk + chunk_blocks);
    int64_t c = c_begin;
    for (; c + kTileCandidates <= c_end; c += kTileCandidates)
      scan_candidates<kTileCandidates>(search, chunk, chunk_end, c, threshold, tops);
    for (; c + 2 <= c_end; c += 2) scan_candidates<2>(search, chunk, chunk_end, c, threshold, tops);
    for (; c < c_end; ++c) scan_candidates<1>(search, chunk, chunk_end, c, threshold, tops);
  }
}


// ---------------------------------------------------------------------------------------------
// Two passes for short histories. A running heap re-scores every row that beats the K-th best so
// far (about K ln(L/K) rows per candidate, most of the cost when L is small); here a candidate
// tile's approximate scores over the whole history are kept, each candidate's K-th best
// approximate score a bounds its exact K-th best from below by a - beta, and only rows with
// approximate score >= a - 2 beta (little more than K) are scored exactly.

// Approximate scores of candidates c0..c0+MR-1 over every block, into values (MR, rows).
template <int MR>
void tile_all_values(const PackedSearch& search, int64_t blocks, int64_t c0, float* values,
                     int64_t rows) {
  constexpr int NR = MR == kTileCandidates ? kTileBlocks : (MR == 1 ? 6 : 4);
  int64_t b = 0;
  for (; b + NR <= blocks; b += NR) {
    __m256 tile[MR][NR];
    tile_values<MR, NR>(search, b, c0, tile);
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) _mm256_storeu_ps(values + i * rows + (b + j) * kBlockRows, tile[i][j]);
  }
  for (; b < blocks; ++b) {
    __m256 tile[MR][1];
    tile_values<MR, 1>(search, b, c0, tile);
    for (int i = 0; i < MR; ++i) _mm256_storeu_ps(values + i * rows + b * kBlockRows, tile[i][0]);
  }
}

// A lower bound on the k-th largest of values (rows, a multiple of 8; a row counts `weight`
// times when weights are given), at most one bucket (2 / kSelectBuckets cosine) below it;
// kFloorStart when fewer than k positions are real. A
// histogram over cosines [-1, 1] costs one pass, where a size-k heap pays for each insertion.
constexpr int kSelectBuckets = 1024;
float kth_largest_bound(const float* values, const int32_t* weight, int64_t rows, int64_t k,
                        float value_scale, std::vector<int32_t>& counts) {
  // Bucket kSelectBuckets + 1 collects excluded rows (and NaN), which are not real.
  counts.assign(kSelectBuckets + 2, 0);
  const float low = -value_scale * 1.001f;
  const float per_unit = kSelectBuckets / (2.0f * value_scale * 1.001f);
  const __m256 low_v = _mm256_set1_ps(low), per_unit_v = _mm256_set1_ps(per_unit);
  const __m256i top = _mm256_set1_epi32(kSelectBuckets);
  const __m256i excluded = _mm256_set1_epi32(kSelectBuckets + 1);
  alignas(32) int32_t buckets[kBlockRows];
  int32_t* count = counts.data();
  for (int64_t l = 0; l < rows; l += kBlockRows) {
    const __m256 value = _mm256_loadu_ps(values + l);
    const __m256i bucket = _mm256_min_epi32(
        top, _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_sub_ps(value, low_v), per_unit_v)));
    const __m256 real = _mm256_cmp_ps(value, low_v, _CMP_GE_OQ);
    _mm256_store_si256(reinterpret_cast<__m256i*>(buckets),
                       _mm256_blendv_epi8(excluded, bucket, _mm256_castps_si256(real)));
    if (weight) {
      for (int lane = 0; lane < kBlockRows; ++lane) count[buckets[lane]] += weight[l + lane];
    } else {
      for (int lane = 0; lane < kBlockRows; ++lane) ++count[buckets[lane]];
    }
  }
  int64_t seen = 0;
  for (int bucket = kSelectBuckets; bucket >= 0; --bucket) {
    seen += count[bucket];
    // Every value in this bucket or above is >= its lower edge, and there are >= k of them.
    if (seen >= k) return low + static_cast<float>(bucket) / per_unit;
  }
  return kFloorStart;
}

// One candidate's exact top-K from its approximate scores over all rows.
void select_from_values(const PackedSearch& search, int64_t c, const float* values, int64_t rows,
                        std::vector<int32_t>& counts, RowPositions map, int64_t* positions, float* cosines, uint8_t* mask) {
  const int64_t k = search.k;
  // The K-th best position's approximate score bounds the exact K-th from below, less beta;
  // rows below that, less beta again, cannot reach it.
  const float kth = kth_largest_bound(values, search.weight, rows, k, search.value_scale[c], counts);
  const float floor = kth > kFloorStart ? kth - 2.0f * search.beta[c] : kFloorStart;
  thread_local std::vector<std::pair<float, int32_t>> entries;
  entries.clear();
  const __m256 limit = _mm256_set1_ps(floor);
  for (int64_t l = 0; l < rows; l += kBlockRows) {
    int bits = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(values + l), limit, _CMP_GE_OQ));
    while (bits) {
      const int lane = __builtin_ctz(bits);
      bits &= bits - 1;
      if (values[l + lane] > kFloorStart)
        entries.emplace_back(search.exact_cosine(c, l / kBlockRows, lane),
                             static_cast<int32_t>(l + lane));
    }
  }
  write_rows(entries, k, map, positions, cosines, mask);
}

// Candidates [c_begin, c_end) over the whole (short) history.
void search_two_pass(const PackedSearch& search, int64_t blocks, int64_t c_begin, int64_t c_end,
                     RowPositions map, int64_t* positions, float* cosines, uint8_t* mask) {
  const int64_t rows = blocks * kBlockRows;
  std::vector<float> values(kTileCandidates * rows);
  std::vector<int32_t> counts;
  const int64_t k = search.k;
  for (int64_t c0 = c_begin; c0 < c_end;) {
    const int64_t left = c_end - c0;
    const int tile = left >= kTileCandidates ? kTileCandidates : (left >= 2 ? 2 : 1);
    if (tile == kTileCandidates)
      tile_all_values<kTileCandidates>(search, blocks, c0, values.data(), rows);
    else if (tile == 2)
      tile_all_values<2>(search, blocks, c0, values.data(), rows);
    else
      tile_all_values<1>(search, blocks, c0, values.data(), rows);
    for (int i = 0; i < tile; ++i) {
      const int64_t c = c0 + i;
      select_from_values(search, c, values.data() + i * rows, rows, counts, map,
                         positions + c * k, cosines + c * k, mask + c * k);
    }
    c0 += tile;
  }
}

}  // namespace

extern "C" {

// L2-normalise raw candidates, quantise them (kQueryLimit) and bound each one's approximation error.
//   raw (C, dim) fp32; normalised (C, dim) fp32 out (zero rows stay zero); codes (C, dim_pad)
//   uint8 out (code + kQueryOffset); value_scale (C,) out: approx units per cosine; beta (C,) out: bound
//   on |approx - exact| in approx units, covering the candidate's rounding, the history's
//   rounding (row_error, 0 when the codes are exact) and fp32 rounding.
void gsu_prepare_queries(const float* raw, int64_t num_queries, int64_t dim, int64_t dim_pad,
                         float row_error, float* normalised, uint8_t* codes, float* value_scale,
                         float* beta) {
  const double limit = static_cast<double>(kQueryLimit);
  const double rounding_slack = 2.0 * static_cast<double>(dim + 8) * 5.96e-8 + 1e-6;
  for (int64_t c = 0; c < num_queries; ++c) {
    const float* source = raw + c * dim;
    float* query = normalised + c * dim;
    double squares = 0.0;
    for (int64_t d = 0; d < dim; ++d) squares += static_cast<double>(source[d]) * source[d];
    const double inverse = squares > 0.0 ? 1.0 / std::sqrt(squares) : 0.0;
    for (int64_t d = 0; d < dim; ++d) query[d] = static_cast<float>(source[d] * inverse);
    uint8_t* code = codes + c * dim_pad;
    double largest = 0.0;
    for (int64_t d = 0; d < dim; ++d)
      largest = std::max(largest, std::fabs(static_cast<double>(query[d])));
    const double scale = largest > 0.0 ? limit / largest : 1.0;
    double error_squares = 0.0;
    double rounded_squares = 0.0;
    for (int64_t d = 0; d < dim_pad; ++d) {
      double rounded = 0.0;
      if (d < dim) {
        const double exact = static_cast<double>(query[d]);
        rounded = std::min(limit, std::max(-limit, std::nearbyint(exact * scale)));
        const double restored = rounded / scale;
        error_squares += (exact - restored) * (exact - restored);
        rounded_squares += restored * restored;
      }
      code[d] = static_cast<uint8_t>(static_cast<int32_t>(rounded) + kQueryOffset);
    }
    // |q.h - q^.h^| <= |q - q^| |h| + |q^| |h - h^|, with |h| <= 1 (+ fp32 rounding of the norm).
    const double history_norm = 1.0 + 1e-5;
    const double half_width = std::sqrt(error_squares) * history_norm +
                              std::sqrt(rounded_squares) * static_cast<double>(row_error) +
                              rounding_slack;
    value_scale[c] = static_cast<float>(scale);
    beta[c] = static_cast<float>(half_width * scale * (1.0 + 1e-6));
  }
}

// Gather int8 table rows into packed codes. Codes equal the table rows (exact); scale[l] is
// 1/||row|| (0 for a zero row); penalty[l] excludes padding/OOV (index < first_id) and alignment;
// offset[l] = 64 * sum of the row's codes. Returns 0, or -1 when an index is out of range.
int32_t gsu_pack_table_int8(const int8_t* table, int64_t num_rows, int64_t dim,
                            const int64_t* indices, int64_t length, int64_t first_id,
                            int8_t* codes, float* scale, float* penalty, int32_t* offset,
                            int64_t length_pad, int64_t dim_pad, int64_t threads) {
  const int64_t groups = dim_pad / kGroupDims;
  const int64_t blocks = length_pad / kBlockRows;
  for (int64_t l = 0; l < length; ++l)
    if (indices[l] < 0 || indices[l] >= num_rows) return -1;
  const int64_t per_task = 256;
  const int64_t tasks = (blocks + per_task - 1) / per_task;
  run_parallel(tasks, threads, [&](int64_t task) {
    const int64_t block_begin = task * per_task;
    const int64_t block_end = std::min(blocks, block_begin + per_task);
    for (int64_t block = block_begin; block < block_end; ++block) {
      int8_t* out = codes + block * groups * kGroupBytes;
      std::memset(out, 0, groups * kGroupBytes);
      for (int64_t lane = 0; lane < kBlockRows; ++lane) {
        const int64_t l = block * kBlockRows + lane;
        const int64_t ahead = l + 16;
        if (ahead < length) {
          const char* next = reinterpret_cast<const char*>(table + indices[ahead] * dim);
          _mm_prefetch(next, _MM_HINT_T0);
          _mm_prefetch(next + dim - 1, _MM_HINT_T0);
        }
        offset[l] = 0;
        if (l >= length || indices[l] < first_id) {
          scale[l] = 0.0f;
          penalty[l] = kExcluded;
          continue;
        }
        const int8_t* row = table + indices[l] * dim;
        int32_t squares = 0;
        int32_t sum = 0;
        for (int64_t g = 0; g * kGroupDims < dim; ++g) {
          const int64_t width = std::min<int64_t>(kGroupDims, dim - g * kGroupDims);
          std::memcpy(out + g * kGroupBytes + lane * kGroupDims, row + g * kGroupDims, width);
        }
        for (int64_t d = 0; d < dim; ++d) {
          squares += static_cast<int32_t>(row[d]) * row[d];
          sum += row[d];
        }
        scale[l] = inverse_norm(static_cast<float>(squares));
        penalty[l] = 0.0f;
        offset[l] = kQueryOffset * sum;
      }
    }
  });
  return 0;
}

// Quantise normalised fp32 rows (L, dim) into packed int8 codes with a per-row scale.
// Returns the largest row error ||h - codes*scale|| (rounded up), for the search's bound.
float gsu_pack_rows_float32(const float* rows, const uint8_t* searchable, int64_t length,
                            int64_t dim, int8_t* codes, float* scale, float* penalty,
                            int32_t* offset, int64_t length_pad, int64_t dim_pad, int64_t threads) {
  const int64_t groups = dim_pad / kGroupDims;
  const int64_t blocks = length_pad / kBlockRows;
  const int64_t per_task = 256;
  const int64_t tasks = (blocks + per_task - 1) / per_task;
  std::vector<double> errors(tasks, 0.0);
  run_parallel(tasks, threads, [&](int64_t task) {
    const int64_t block_begin = task * per_task;
    const int64_t block_end = std::min(blocks, block_begin + per_task);
    double worst = 0.0;
    for (int64_t block = block_begin; block < block_end; ++block) {
      int8_t* out = codes + block * groups * kGroupBytes;
      std::memset(out, 0, groups * kGroupBytes);
      for (int64_t lane = 0; lane < kBlockRows; ++lane) {
        const int64_t l = block * kBlockRows + lane;
        offset[l] = 0;
        if (l >= length || !searchable[l]) {
          scale[l] = 0.0f;
          penalty[l] = kExcluded;
          continue;
        }
        const float* row = rows + l * dim;
        float largest = 0.0f;
        for (int64_t d = 0; d < dim; ++d) largest = std::max(largest, std::fabs(row[d]));
        penalty[l] = 0.0f;
        if (largest == 0.0f) {
          scale[l] = 0.0f;
          continue;
        }
        const float step = largest / 127.0f;
        double error_squares = 0.0;
        int32_t sum = 0;
        for (int64_t d = 0; d < dim; ++d) {
          float rounded = std::nearbyint(row[d] / step);
          rounded = std::min(127.0f, std::max(-127.0f, rounded));
          out[(d / kGroupDims) * kGroupBytes + lane * kGroupDims + d % kGroupDims] =
              static_cast<int8_t>(rounded);
          sum += static_cast<int32_t>(rounded);
          const double diff = static_cast<double>(row[d]) - static_cast<double>(rounded) * step;
          error_squares += diff * diff;
        }
        scale[l] = step;
        offset[l] = kQueryOffset * sum;
        worst = std::max(worst, std::sqrt(error_squares));
      }
    }
    errors[task] = worst;
  });
  double worst = 0.0;
  for (double e : errors) worst = std::max(worst, e);
  return static_cast<float>(worst * (1.0 + 1e-5) + 1e-7);
}

// Exact top-K of C candidates over one packed history.
//   codes/scale/penalty/offset: packed history (length_pad rows); rows: (L, dim) normalised fp32
//   rows for exact scores when the codes are not exact, else null; query_codes (C, dim_pad)
//   uint8, value_scale/beta (C,) and queries (C, dim) normalised fp32 from gsu_prepare_queries.
//   For a history packed once per distinct item: weight (length_pad,) int32, the positions each
//   row stands for (null when every row stands for one), and row_offsets (rows + 1,) /
//   row_positions int64, each row's history positions (null when rows are positions).
//   Outputs (C, k): history positions int64 (-1 when empty), cosines fp32, mask uint8.
void gsu_search_packed(const int8_t* codes, const float* scale, const float* penalty,
                       const int32_t* offset, int64_t length_pad, int64_t dim, int64_t dim_pad,
                       const float* rows, const uint8_t* query_codes, const float* value_scale,
                       const float* beta, const float* queries, int64_t num_queries, int64_t k,
                       int64_t threads, int64_t chunk_blocks, const int32_t* weight,
                       const int64_t* row_offsets, const int64_t* row_positions,
                       int64_t* positions, float* cosines, uint8_t* mask) {
  const RowPositions map{row_offsets, row_positions};
  const int64_t groups = dim_pad / kGroupDims;
  const int64_t blocks = length_pad / kBlockRows;
  // A thread only pays off with enough work: on a busy machine a second thread can wait a whole
  // scheduler slice to start. Estimate microseconds from ~60 GMAC/s and ~8 GB/s per core.
  const double estimate_us =
      static_cast<double>(blocks * kBlockRows) *
      (static_cast<double>(num_queries * dim) / 60e3 + static_cast<double>(dim) / 8e3);
  int64_t ranges = std::min<int64_t>(threads, static_cast<int64_t>(estimate_us / 250.0));
  ranges = std::max<int64_t>(1, std::min(ranges, blocks));
  const PackedSearch search{codes,   scale,       penalty, offset, groups, rows, dim,
                            query_codes, queries, value_scale, beta, k, weight};
  chunk_blocks = std::max<int64_t>(1, chunk_blocks);
  if (blocks * kBlockRows <= kTwoPassMaxRows) {
    // ~20 GMAC/s per core for the scores, plus the per-candidate selection.
    const double two_pass_us =
        static_cast<double>(num_queries) *
        (static_cast<double>(blocks * kBlockRows) * (static_cast<double>(dim) / 20e3 + 0.01) +
         static_cast<double>(k) * 0.05);
    const int64_t workers = std::max<int64_t>(
        1, std::min<int64_t>({threads, static_cast<int64_t>(two_pass_us / 250.0),
                              (num_queries + kTileCandidates - 1) / kTileCandidates}));
    const int64_t share =
        (num_queries + workers * kTileCandidates - 1) / (workers * kTileCandidates) * kTileCandidates;
    run_parallel(workers, workers, [&](int64_t w) {
      const int64_t c_begin = std::min(num_queries, w * share);
      const int64_t c_end = std::min(num_queries, c_begin + share);
      search_two_pass(search, blocks, c_begin, c_end, map, positions, cosines, mask);
    });
    return;
  }
  std::vector<const TopK*> parts;
  if (ranges > 1 && num_queries >= 2 * kTileCandidates * ranges) {
    // Many candidates: each thread takes a share of them over the whole history, so thresholds
    // are never split and each thread writes its own candidates' results.
    std::vector<TopK> tops(num_queries);
    std::vector<float> thresholds(num_queries);
    for (int64_t c = 0; c < num_queries; ++c) thresholds[c] = kFloorStart - beta[c];
    const int64_t share = (num_queries + ranges * kTileCandidates - 1) /
                          (ranges * kTileCandidates) * kTileCandidates;
    run_parallel(ranges, ranges, [&](int64_t r) {
      const int64_t c_begin = std::min(num_queries, r * share);
      const int64_t c_end = std::min(num_queries, c_begin + share);
      scan_range(search, 0, blocks, c_begin, c_end, thresholds.data(), tops, chunk_blocks);
      std::vector<const TopK*> own(1);
      for (int64_t c = c_begin; c < c_end; ++c) {
        own[0] = &tops[c];
        write_top_k(own, k, positions + c * k, cosines + c * k, mask + c * k, map);
      }
    });
    return;
  }
  // Few candidates: threads take ranges of the history; heaps are merged per candidate.
  std::vector<std::vector<TopK>> tops(ranges, std::vector<TopK>(num_queries));
  std::vector<std::vector<float>> thresholds(ranges, std::vector<float>(num_queries));
  for (int64_t r = 0; r < ranges; ++r)
    for (int64_t c = 0; c < num_queries; ++c) thresholds[r][c] = kFloorStart - beta[c];
  const int64_t per_range = (blocks + ranges - 1) / ranges;
  run_parallel(ranges, ranges, [&](int64_t r) {
    const int64_t begin = std::min(blocks, r * per_range);
    const int64_t end = std::min(blocks, begin + per_range);
    scan_range(search, begin, end, 0, num_queries, thresholds[r].data(), tops[r], chunk_blocks);
  });
  parts.resize(ranges);
  for (int64_t c = 0; c < num_queries; ++c) {
    for (int64_t r = 0; r < ranges; ++r) parts[r] = &tops[r][c];
    write_top_k(parts, k, positions + c * k, cosines + c * k, mask + c * k, map);
  }
}

// Exact fp32 top-K over many samples' histories at once (few candidates: every row is scored
// exactly, straight from the table or the rows; memory-bound, nothing is packed).
//   kind: kRowsFloat32 (data = rows (B, L, dim), searchable (B, L)) or a table kind (data =
//   table (N, dim), indices (B, L); rows with index < first_id are skipped).
//   queries (B, C, dim) normalised fp32. Outputs (B, C, k).
// Returns 0, or -1 when an index is out of range.
int32_t gsu_search_exact(int32_t kind, const void* data, int64_t num_rows, const int64_t* indices,
                         const uint8_t* searchable, int64_t first_id, int64_t batch,
                         int64_t length, int64_t dim, const float* queries, int64_t num_queries,
                         int64_t k, int64_t threads, int64_t* positions, float* cosines,
                         uint8_t* mask) {
  if (indices) {
    for (int64_t i = 0; i < batch * length; ++i)
      if (indices[i] < 0 || indices[i] >= num_rows) return -1;
  }
  // Split long histories into ranges so that one user still uses every thread.
  int64_t ranges_per_sample = 1;
  if (batch < threads) {
    const int64_t want = (threads + batch - 1) / batch;
    ranges_per_sample = std::max<int64_t>(1, std::min<int64_t>(want, length / 4096));
  }
  const int64_t per_range = (length + ranges_per_sample - 1) / ranges_per_sample;
  const int64_t tasks = batch * ranges_per_sample;
  const int64_t element_bytes = kind == kTableInt8 ? 1 : (kind == kTableFloat16 ? 2 : 4);
  std::vector<std::vector<TopK>> tops(tasks);
  run_parallel(tasks, threads, [&](int64_t task) {
    const int64_t b = task / ranges_per_sample;
    const int64_t begin = (task % ranges_per_sample) * per_range;
    const int64_t end = std::min(length, begin + per_range);
    const float* query = queries + b * num_queries * dim;
    auto& local = tops[task];
    local.assign(num_queries, TopK());
    std::vector<float> floor(num_queries, kFloorStart);
    std::vector<float> row_cosines(num_queries);
    const int64_t* row_indices = indices ? indices + b * length : nullptr;
    const uint8_t* row_searchable = searchable ? searchable + b * length : nullptr;
    const float* sample_rows =
        kind == kRowsFloat32 ? static_cast<const float*>(data) + b * length * dim : nullptr;
    for (int64_t l = begin; l < end; ++l) {
      if (row_indices) {
        const int64_t ahead = l + 8;
        if (ahead < end) {
          const char* next = static_cast<const char*>(data) + row_indices[ahead] * dim * element_bytes;
          for (int64_t at = 0; at < dim * element_bytes; at += 64)
            _mm_prefetch(next + at, _MM_HINT_T0);
        }
        if (row_indices[l] < first_id) continue;
      } else if (!row_searchable[l]) {
        continue;
      }
      if (sample_rows) {
        for (int64_t c = 0; c < num_queries; ++c)
          row_cosines[c] = dot_float32(query + c * dim, sample_rows + l * dim, dim, nullptr);
      } else {
        float squares = 0.0f;
        const int64_t item = row_indices[l];
        for (int64_t c = 0; c < num_queries; ++c) {
          float* wanted = c == 0 ? &squares : nullptr;
          if (kind == kTableInt8)
            row_cosines[c] = dot_int8(query + c * dim, static_cast<const int8_t*>(data) + item * dim,
                                      dim, wanted);
          else if (kind == kTableFloat16)
            row_cosines[c] = dot_float16(
                query + c * dim, static_cast<const uint16_t*>(data) + item * dim, dim, wanted);
          else
            row_cosines[c] = dot_float32(
                query + c * dim, static_cast<const float*>(data) + item * dim, dim, wanted);
        }
        const float inverse = inverse_norm(squares);
        for (int64_t c = 0; c < num_queries; ++c) row_cosines[c] *= inverse;
      }
      for (int64_t c = 0; c < num_queries; ++c)
        // A row equal to the K-th best adds nothing (ties may break either way).
        if (row_cosines[c] > floor[c])
          floor[c] = local[c].offer(row_cosines[c], static_cast<int32_t>(l), k);
    }
  });
  std::vector<const TopK*> parts(ranges_per_sample);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t c = 0; c < num_queries; ++c) {
      for (int64_t r = 0; r < ranges_per_sample; ++r) parts[r] = &tops[b * ranges_per_sample + r][c];
      const int64_t at = (b * num_queries + c) * k;
      write_top_k(parts, k, positions + at, cosines + at, mask + at);
    }
  }
  return 0;
}

// Peak rate of the kernel's instruction mix (multiply_add with a memory operand, 4 broadcast
// candidates x 3 row vectors, as in the 4x3 tile) without its loads from the
// history, in multiply-adds per second over `threads` threads: the compute roof of the search.
double gsu_probe_int8_rate(int64_t iterations, int64_t threads) {
  const auto started = std::chrono::steady_clock::now();
  run_parallel(threads, threads, [&](int64_t) {
    alignas(32) int8_t rows[3][32];
    for (int j = 0; j < 3; ++j)
      for (int e = 0; e < 32; ++e) rows[j][e] = static_cast<int8_t>(e - 16 + j);
    const __m256i* r = reinterpret_cast<const __m256i*>(rows);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a00 = ones, a01 = ones, a02 = ones, a10 = ones, a11 = ones, a12 = ones;
    __m256i a20 = ones, a21 = ones, a22 = ones, a30 = ones, a31 = ones, a32 = ones;
    __m256i b0 = _mm256_set1_epi8(3), b1 = _mm256_set1_epi8(5), b2 = _mm256_set1_epi8(7),
            b3 = _mm256_set1_epi8(9);
#define GSU_MIX(a, b, j) a = multiply_add(a, b, _mm256_load_si256(r + j));
    for (int64_t n = 0; n < iterations; ++n) {
      asm volatile("" : "+x"(b0), "+x"(b1), "+x"(b2), "+x"(b3));
      GSU_MIX(a00, b0, 0) GSU_MIX(a01, b0, 1) GSU_MIX(a02, b0, 2)
      GSU_MIX(a10, b1, 0) GSU_MIX(a11, b1, 1) GSU_MIX(a12, b1, 2)
      GSU_MIX(a20, b2, 0) GSU_MIX(a21, b2, 1) GSU_MIX(a22, b2, 2)
      GSU_MIX(a30, b3, 0) GSU_MIX(a31, b3, 1) GSU_MIX(a32, b3, 2)
    }
#undef GSU_MIX
    asm volatile("" : "+x"(a00), "+x"(a01), "+x"(a02), "+x"(a10), "+x"(a11), "+x"(a12));
    asm volatile("" : "+x"(a20), "+x"(a21), "+x"(a22), "+x"(a30), "+x"(a31), "+x"(a32));
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return static_cast<double>(iterations) * 12 * 32 * threads / seconds;
}

}  // extern "C"
