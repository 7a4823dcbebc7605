// GSU exact top-K cosine search kernels (x86-64, AVX2 + FMA + F16C).
//
// What is unusual here:
// - The history is packed as int8 codes in groups of 8 rows x 4 dims (32 bytes), so that one
//   vpmaddubsw against a broadcast 4-dim candidate slice, widened by vpmaddwd, yields 8 int32
//   partial dot products: 32 multiply-adds per multiply uop, twice fp32 FMA's rate on AVX2.
// - vpmaddubsw multiplies unsigned by signed bytes with int16 pair sums, so candidates are
//   quantised to 7 bits (q in [-63, 63]) and sent as q + 64; the pair sums then cannot saturate,
//   and the exact integer offset 64 * sum(row codes) is subtracted per row.
// - Every approximate score is an interval [approx - beta, approx + beta]: beta bounds the
//   candidate's rounding and (for histories not from an int8 table) the history's rounding.
// - Selection is fused into the matmul: each tile of scores is compared with a per-candidate
//   running threshold (the K-th best lower bound so far minus beta) while it is in registers;
//   only the rare survivors are written out. Survivors are re-scored exactly in fp32 before the
//   final top-K, so the result equals fp32 exact search (ties may break either way).
// - Threads are plain std::thread over contiguous ranges of history; each has its own
//   selections, merged per candidate at the end (no shared mutable state in the hot loop).
//
// Exposed with C linkage and called through ctypes (which releases the GIL).

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr int64_t kBlockRows = 8;           // history rows per packed block (one ymm of int32)
constexpr int64_t kGroupDims = 4;           // dims per 32-byte group of a block
constexpr int64_t kGroupBytes = kBlockRows * kGroupDims;
constexpr int32_t kQueryLimit = 63;         // |candidate code| <= 63, sent as code + 64 (<= 127)
constexpr int32_t kQueryOffset = 64;
constexpr float kExcluded = -1.0e30f;       // approx score of padding / OOV / alignment rows
constexpr float kFloorStart = -1.0e20f;     // below every real score, above every excluded one
constexpr int kExactNone = 0;
#ifndef GSU_MR
#define GSU_MR 4
#endif
#ifndef GSU_NR
#define GSU_NR 3
#endif
constexpr int kTileCandidates = GSU_MR;  // candidates per register tile
constexpr int kTileBlocks = GSU_NR;      // 8-row blocks per register tile

// Where the exact fp32 values of history rows come from when survivors are re-scored.
enum ExactKind : int32_t {
  kPackedInt8 = 1,   // the packed codes are the exact rows (int8 table), times scale[l]
  kRowsFloat32 = 2,  // row-major normalised fp32 rows (L, D)
  kTableInt8 = 3,    // int8 table + indices, times 1/||row||
  kTableFloat16 = 4, // fp16 table + indices, times 1/||row||
  kTableFloat32 = 5, // fp32 table + indices, times 1/||row||
};

struct Entry {
  float value;     // approx or exact score in "value units" (cosine * candidate scale)
  float cosine;    // exact fp32 cosine once `exact` is set
  int32_t position;
  int32_t exact;
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
        return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + d))));
      },
      [row](int64_t d) { return static_cast<float>(row[d]); });
}

inline float dot_float16(const float* query, const uint16_t* row, int64_t dim, float* squares) {
  return dot_row(
      query, dim, squares,
      [row](int64_t d) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + d))); },
      [row](int64_t d) { return _cvtsh_ss(row[d]); });
}

inline float dot_float32(const float* query, const float* row, int64_t dim, float* squares) {
  return dot_row(
      query, dim, squares, [row](int64_t d) { return _mm256_loadu_ps(row + d); },
      [row](int64_t d) { return row[d]; });
}

inline float inverse_norm(float squares) {
  return squares > 0.0f ? 1.0f / std::sqrt(squares) : 0.0f;
}

// Everything needed to compute the exact cosine of (candidate c, history row l) of one sample.
struct ExactSource {
  int32_t kind;
  const void* data;          // codes, rows or table
  const float* scale;        // kPackedInt8: per-row scale (1/||row||)
  const int64_t* indices;    // table kinds: (L,) item indices of this sample
  int64_t dim;
  int64_t groups;            // kPackedInt8: dim_pad / 4
  const float* queries;      // (C, dim) normalised fp32 candidates of this sample

  float cosine(int64_t c, int64_t l) const {
    const float* query = queries + c * dim;
    switch (kind) {
      case kPackedInt8: {
        // Copy the row out of its block (4 bytes every 32), then a vectorised dot.
        const int8_t* codes = static_cast<const int8_t*>(data);
        const int8_t* base = codes + (l / kBlockRows) * groups * kGroupBytes + (l % kBlockRows) * kGroupDims;
        if (dim > 1024) {
          float dot = 0.0f;
          for (int64_t d = 0; d < dim; ++d)
            dot += query[d] * static_cast<float>(base[(d / kGroupDims) * kGroupBytes + d % kGroupDims]);
          return dot * scale[l];
        }
        alignas(32) int8_t row[1024];
        for (int64_t g = 0; g < groups; ++g) std::memcpy(row + g * kGroupDims, base + g * kGroupBytes, kGroupDims);
        return dot_int8(query, row, dim, nullptr) * scale[l];
      }
      case kRowsFloat32: {
        const float* row = static_cast<const float*>(data) + l * dim;
        return dot_float32(query, row, dim, nullptr);
      }
      case kTableInt8: {
        float squares;
        const int8_t* row = static_cast<const int8_t*>(data) + indices[l] * dim;
        float dot = dot_int8(query, row, dim, &squares);
        return dot * inverse_norm(squares);
      }
      case kTableFloat16: {
        float squares;
        const uint16_t* row = static_cast<const uint16_t*>(data) + indices[l] * dim;
        float dot = dot_float16(query, row, dim, &squares);
        return dot * inverse_norm(squares);
      }
      case kTableFloat32: {
        float squares;
        const float* row = static_cast<const float*>(data) + indices[l] * dim;
        float dot = dot_float32(query, row, dim, &squares);
        return dot * inverse_norm(squares);
      }
      default:
        return 0.0f;
    }
  }
};

// Running top-K of one candidate over part of a history, holding score intervals.
//
// Invariant once `floor` > kFloorStart: at least K entries have a lower bound >= floor, so every
// row whose upper bound is below floor can be dropped without changing the exact top-K.
struct Selection {
  std::vector<Entry> entries;
  float floor = kFloorStart;
};

struct SelectionParams {
  int64_t k;
  int64_t capacity;
  const float* beta;          // (C,) half-width of the approx interval, value units
  const float* value_scale;   // (C,) value units per cosine
};

// Entries held per candidate before compaction: small, so that the threshold rises early; each
// compaction costs O(capacity) and frees at least capacity - K slots, so inserts stay O(1).
inline int64_t selection_capacity(int64_t k) { return 3 * k + 32; }

inline float lower_bound(const Entry& e, float beta) { return e.exact ? e.value : e.value - beta; }
inline float upper_bound(const Entry& e, float beta) { return e.exact ? e.value : e.value + beta; }

// Raise the floor from the K-th best lower bound and drop rows that cannot reach it; when that is
// not enough (many near-ties), score them exactly and keep exactly K.
void compact(Selection& sel, int64_t c, const SelectionParams& params, const ExactSource& source,
             std::vector<float>& scratch) {
  const float beta = params.beta[c];
  const int64_t k = params.k;
  auto& entries = sel.entries;
  if (static_cast<int64_t>(entries.size()) >= k) {
    scratch.resize(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) scratch[i] = lower_bound(entries[i], beta);
    std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end(), std::greater<float>());
    sel.floor = std::max(sel.floor, scratch[k - 1]);
  }
  const float floor = sel.floor;
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [&](const Entry& e) { return upper_bound(e, beta) < floor; }),
                entries.end());
  // Bounds prune all but near-ties of the K-th; only when near-ties still fill 3/4 of the
  // buffer (duplicates, all-equal scores) is scoring them exactly worth it.
  if (static_cast<int64_t>(entries.size()) * 4 > params.capacity * 3) {
    const float value_scale = params.value_scale[c];
    for (auto& e : entries) {
      if (!e.exact) {
        e.cosine = source.cosine(c, e.position);
        e.value = e.cosine * value_scale;
        e.exact = 1;
      }
    }
    if (static_cast<int64_t>(entries.size()) > k) {
      std::nth_element(entries.begin(), entries.begin() + (k - 1), entries.end(),
                       [](const Entry& a, const Entry& b) { return a.value > b.value; });
      entries.resize(k);
      float kth = entries[0].value;
      for (const auto& e : entries) kth = std::min(kth, e.value);
      sel.floor = std::max(sel.floor, kth);
    }
  }
}

inline void insert(Selection& sel, int64_t c, float value, int64_t position, int32_t exact,
                   float cosine, const SelectionParams& params, const ExactSource& source,
                   std::vector<float>& scratch, float* threshold) {
  if (static_cast<int64_t>(sel.entries.size()) >= params.capacity) {
    compact(sel, c, params, source, scratch);
    threshold[c] = sel.floor - params.beta[c];
  }
  sel.entries.push_back(Entry{value, cosine, static_cast<int32_t>(position), exact});
}

// Merge the selections of one candidate from every range, score survivors exactly, write top-K.
void finish(std::vector<Selection*>& parts, int64_t c, const SelectionParams& params,
            const ExactSource& source, int64_t* positions, float* cosines, uint8_t* mask) {
  const float beta = params.beta[c];
  const int64_t k = params.k;
  float floor = kFloorStart;
  std::vector<Entry> all;
  size_t total = 0;
  for (auto* part : parts) {
    floor = std::max(floor, part->floor);
    total += part->entries.size();
  }
  all.reserve(total);
  for (auto* part : parts)
    for (const auto& e : part->entries)
      if (upper_bound(e, beta) >= floor) all.push_back(e);
  if (static_cast<int64_t>(all.size()) > k) {
    std::vector<float> lows(all.size());
    for (size_t i = 0; i < all.size(); ++i) lows[i] = lower_bound(all[i], beta);
    std::nth_element(lows.begin(), lows.begin() + (k - 1), lows.end(), std::greater<float>());
    const float kth = std::max(floor, lows[k - 1]);
    all.erase(std::remove_if(all.begin(), all.end(),
                             [&](const Entry& e) { return upper_bound(e, beta) < kth; }),
              all.end());
  }
  for (auto& e : all) {
    if (!e.exact) {
      e.cosine = source.cosine(c, e.position);
      e.exact = 1;
    }
  }
  const int64_t kept = std::min<int64_t>(k, static_cast<int64_t>(all.size()));
  const auto higher = [](const Entry& a, const Entry& b) {
    return a.cosine > b.cosine || (a.cosine == b.cosine && a.position < b.position);
  };
  if (kept < static_cast<int64_t>(all.size()))
    std::nth_element(all.begin(), all.begin() + (kept - 1), all.end(), higher);
  std::sort(all.begin(), all.begin() + kept, higher);
  for (int64_t i = 0; i < k; ++i) {
    if (i < kept) {
      positions[c * k + i] = all[i].position;
      cosines[c * k + i] = all[i].cosine;
      mask[c * k + i] = 1;
    } else {
      positions[c * k + i] = -1;
      cosines[c * k + i] = 0.0f;
      mask[c * k + i] = 0;
    }
  }
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

struct PackedHistory {
  const int8_t* codes;      // (blocks, groups, 8, 4)
  const float* scale;       // (L_pad,) row ~= codes * scale
  const float* penalty;     // (L_pad,) 0, or kExcluded for rows never returned
  const int32_t* offset;    // (L_pad,) 64 * sum of the row's codes
  int64_t groups;           // dim_pad / 4
};

template <int MR, int NR>
inline void scan_tile(const PackedHistory& history, int64_t block0, const uint8_t* queries,
                      int64_t query_stride, int64_t c0, float* threshold,
                      std::vector<Selection>& selections, const SelectionParams& params,
                      const ExactSource& source, std::vector<float>& scratch) {
  const int64_t block_bytes = history.groups * kGroupBytes;
  const int8_t* base = history.codes + block0 * block_bytes;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_si256();
  if constexpr (MR == 4 && NR == 3) {
    // Named accumulators and rows read as memory operands: 12 accumulators + broadcast + ones +
    // one temporary fit the 16 ymm registers (gcc spills array-held accumulators).
    __m256i a00 = acc[0][0], a01 = acc[0][1], a02 = acc[0][2];
    __m256i a10 = acc[1][0], a11 = acc[1][1], a12 = acc[1][2];
    __m256i a20 = acc[2][0], a21 = acc[2][1], a22 = acc[2][2];
    __m256i a30 = acc[3][0], a31 = acc[3][1], a32 = acc[3][2];
    const uint8_t* q0 = queries + c0 * query_stride;
    const uint8_t* q1 = q0 + query_stride;
    const uint8_t* q2 = q1 + query_stride;
    const uint8_t* q3 = q2 + query_stride;
    const __m256i* r0 = reinterpret_cast<const __m256i*>(base);
    const __m256i* r1 = reinterpret_cast<const __m256i*>(base + block_bytes);
    const __m256i* r2 = reinterpret_cast<const __m256i*>(base + 2 * block_bytes);
#define GSU_STEP(q, x0, x1, x2)                                                                  \
  {                                                                                              \
    int32_t slice;                                                                               \
    std::memcpy(&slice, (q) + g * kGroupDims, sizeof(slice));                                    \
    const __m256i b = _mm256_set1_epi32(slice);                                                  \
    x0 = _mm256_add_epi32(x0, _mm256_madd_epi16(_mm256_maddubs_epi16(b, _mm256_loadu_si256(r0 + g)), ones)); \
    x1 = _mm256_add_epi32(x1, _mm256_madd_epi16(_mm256_maddubs_epi16(b, _mm256_loadu_si256(r1 + g)), ones)); \
    x2 = _mm256_add_epi32(x2, _mm256_madd_epi16(_mm256_maddubs_epi16(b, _mm256_loadu_si256(r2 + g)), ones)); \
  }
    for (int64_t g = 0; g < history.groups; ++g) {
      GSU_STEP(q0, a00, a01, a02)
      GSU_STEP(q1, a10, a11, a12)
      GSU_STEP(q2, a20, a21, a22)
      GSU_STEP(q3, a30, a31, a32)
    }
#undef GSU_STEP
    acc[0][0] = a00; acc[0][1] = a01; acc[0][2] = a02;
    acc[1][0] = a10; acc[1][1] = a11; acc[1][2] = a12;
    acc[2][0] = a20; acc[2][1] = a21; acc[2][2] = a22;
    acc[3][0] = a30; acc[3][1] = a31; acc[3][2] = a32;
  } else
  for (int64_t g = 0; g < history.groups; ++g) {
    for (int i = 0; i < MR; ++i) {
      int32_t slice;
      std::memcpy(&slice, queries + (c0 + i) * query_stride + g * kGroupDims, sizeof(slice));
      const __m256i broadcast = _mm256_set1_epi32(slice);
      for (int j = 0; j < NR; ++j) {
        const __m256i rows = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(base + j * block_bytes + g * kGroupBytes));
        const __m256i pairs = _mm256_maddubs_epi16(broadcast, rows);
        acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(pairs, ones));
      }
    }
  }
  __m256 row_scale[NR];
  __m256 row_penalty[NR];
  __m256i row_offset[NR];
  for (int j = 0; j < NR; ++j) {
    const int64_t row0 = (block0 + j) * kBlockRows;
    row_scale[j] = _mm256_loadu_ps(history.scale + row0);
    row_penalty[j] = _mm256_loadu_ps(history.penalty + row0);
    row_offset[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(history.offset + row0));
  }
  for (int i = 0; i < MR; ++i) {
    const __m256 limit = _mm256_set1_ps(threshold[c0 + i]);
    for (int j = 0; j < NR; ++j) {
      const __m256i dot = _mm256_sub_epi32(acc[i][j], row_offset[j]);
      const __m256 value = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), row_scale[j], row_penalty[j]);
      int bits = _mm256_movemask_ps(_mm256_cmp_ps(value, limit, _CMP_GE_OQ));
      if (bits) {
        alignas(32) float values[8];
        _mm256_store_ps(values, value);
        while (bits) {
          const int lane = __builtin_ctz(bits);
          bits &= bits - 1;
          const int64_t c = c0 + i;
          if (values[lane] >= threshold[c])
            insert(selections[c], c, values[lane], (block0 + j) * kBlockRows + lane, kExactNone,
                   0.0f, params, source, scratch, threshold);
        }
      }
    }
  }
}

template <int MR>
inline void scan_candidates(const PackedHistory& history, int64_t block_begin, int64_t block_end,
                            const uint8_t* queries, int64_t query_stride, int64_t c0,
                            float* threshold, std::vector<Selection>& selections,
                            const SelectionParams& params, const ExactSource& source,
                            std::vector<float>& scratch) {
  constexpr int NR = MR == kTileCandidates ? kTileBlocks : (MR == 1 ? 6 : 4);
  int64_t b = block_begin;
  for (; b + NR <= block_end; b += NR)
    scan_tile<MR, NR>(history, b, queries, query_stride, c0, threshold, selections, params, source,
                      scratch);
  for (; b < block_end; ++b)
    scan_tile<MR, 1>(history, b, queries, query_stride, c0, threshold, selections, params, source,
                     scratch);
}

// Candidates [c_begin, c_end) over blocks [block_begin, block_end), chunk by chunk so that a
// chunk's codes stay in L1/L2 while every candidate passes over them.
void scan_range(const PackedHistory& history, int64_t block_begin, int64_t block_end,
                const uint8_t* queries, int64_t query_stride, int64_t c_begin, int64_t c_end,
                float* threshold, std::vector<Selection>& selections,
                const SelectionParams& params, const ExactSource& source, int64_t chunk_blocks) {
  std::vector<float> scratch;
  const int64_t num_queries = c_end;
  for (int64_t chunk = block_begin; chunk < block_end; chunk += chunk_blocks) {
    const int64_t chunk_end = std::min(block_end, chunk + chunk_blocks);
    int64_t c = c_begin;
    for (; c + kTileCandidates <= num_queries; c += kTileCandidates)
      scan_candidates<kTileCandidates>(history, chunk, chunk_end, queries, query_stride, c,
                                       threshold, selections, params, source, scratch);
    for (; c + 2 <= num_queries; c += 2)
      scan_candidates<2>(history, chunk, chunk_end, queries, query_stride, c, threshold,
                         selections, params, source, scratch);
    for (; c < num_queries; ++c)
      scan_candidates<1>(history, chunk, chunk_end, queries, query_stride, c, threshold,
                         selections, params, source, scratch);
  }
}

}  // namespace

extern "C" {

// L2-normalise raw candidates, quantise them to 7 bits and compute each one's interval half-width.
//   raw (C, dim) fp32; normalised (C, dim) fp32 out (zero rows stay zero); codes (C, dim_pad)
//   uint8 out (code + 64); value_scale (C,) out: value units per cosine; beta (C,) out: half-width
//   in value units, covering the candidate's rounding, the history's rounding (row_error, 0 when
//   the codes are exact) and fp32 rounding.
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
    for (int64_t d = 0; d < dim; ++d) largest = std::max(largest, std::fabs(static_cast<double>(query[d])));
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
        for (int64_t g = 0; g < groups; ++g) {
          const int64_t width = std::min<int64_t>(kGroupDims, dim - g * kGroupDims);
          if (width <= 0) break;
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
          out[(d / kGroupDims) * kGroupBytes + lane * kGroupDims + d % kGroupDims] = static_cast<int8_t>(rounded);
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
//   codes/scale/penalty/offset: packed history (length_pad rows); exact_kind + exact_data: where
//   exact values come from (kPackedInt8: the codes themselves, kRowsFloat32: rows (L, dim));
//   query_codes (C, dim_pad) uint8, value_scale/beta (C,) and queries (C, dim) normalised fp32
//   from gsu_prepare_queries. Outputs (C, k): positions int64 (-1 when empty), cosines fp32,
//   mask uint8.
void gsu_search_packed(const int8_t* codes, const float* scale, const float* penalty,
                       const int32_t* offset, int64_t length_pad, int64_t dim, int64_t dim_pad,
                       int32_t exact_kind, const void* exact_data, const uint8_t* query_codes,
                       const float* value_scale, const float* beta, const float* queries,
                       int64_t num_queries, int64_t k, int64_t threads, int64_t chunk_blocks,
                       int64_t* positions, float* cosines, uint8_t* mask) {
  const int64_t groups = dim_pad / kGroupDims;
  const int64_t blocks = length_pad / kBlockRows;
  // A thread only pays off with enough work: on a busy machine a second thread can wait a whole
  // scheduler slice to start. Estimate microseconds from ~60 GMAC/s and ~8 GB/s per core.
  const double estimate_us = static_cast<double>(blocks * kBlockRows) *
                             (static_cast<double>(num_queries * dim) / 60e3 + static_cast<double>(dim) / 8e3);
  int64_t ranges = std::max<int64_t>(1, std::min<int64_t>(threads, static_cast<int64_t>(estimate_us / 250.0)));
  ranges = std::min(ranges, std::max<int64_t>(1, blocks));
  const SelectionParams params{k, selection_capacity(k), beta, value_scale};
  const PackedHistory history{codes, scale, penalty, offset, groups};
  ExactSource source{exact_kind, exact_kind == kPackedInt8 ? static_cast<const void*>(codes) : exact_data,
                     scale, nullptr, dim, groups, queries};
  chunk_blocks = std::max<int64_t>(1, chunk_blocks);
  if (ranges > 1 && num_queries >= 2 * kTileCandidates * ranges) {
    // Many candidates: each thread takes a share of them over the whole history, so thresholds
    // are never split and each thread finishes its own candidates (no second thread start).
    std::vector<Selection> selections(num_queries);
    std::vector<float> thresholds(num_queries);
    for (int64_t c = 0; c < num_queries; ++c) thresholds[c] = kFloorStart - beta[c];
    const int64_t share = (num_queries + ranges * kTileCandidates - 1) / (ranges * kTileCandidates) * kTileCandidates;
    run_parallel(ranges, ranges, [&](int64_t r) {
      const int64_t c_begin = std::min(num_queries, r * share);
      const int64_t c_end = std::min(num_queries, c_begin + share);
      scan_range(history, 0, blocks, query_codes, dim_pad, c_begin, c_end, thresholds.data(),
                 selections, params, source, chunk_blocks);
      std::vector<Selection*> parts(1);
      for (int64_t c = c_begin; c < c_end; ++c) {
        parts[0] = &selections[c];
        finish(parts, c, params, source, positions, cosines, mask);
      }
    });
    return;
  }
  // Few candidates: threads take ranges of the history; selections are merged per candidate.
  std::vector<std::vector<Selection>> selections(ranges, std::vector<Selection>(num_queries));
  std::vector<std::vector<float>> thresholds(ranges, std::vector<float>(num_queries));
  for (int64_t r = 0; r < ranges; ++r)
    for (int64_t c = 0; c < num_queries; ++c) thresholds[r][c] = kFloorStart - beta[c];
  const int64_t per_range = (blocks + ranges - 1) / ranges;
  run_parallel(ranges, ranges, [&](int64_t r) {
    const int64_t begin = std::min(blocks, r * per_range);
    const int64_t end = std::min(blocks, begin + per_range);
    scan_range(history, begin, end, query_codes, dim_pad, 0, num_queries, thresholds[r].data(),
               selections[r], params, source, chunk_blocks);
  });
  std::vector<Selection*> parts(ranges);
  for (int64_t c = 0; c < num_queries; ++c) {
    for (int64_t r = 0; r < ranges; ++r) parts[r] = &selections[r][c];
    finish(parts, c, params, source, positions, cosines, mask);
  }
}

// Exact fp32 top-K over many samples' histories at once (small C: every row scored exactly).
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
  // Split long histories into ranges so one user still uses every thread.
  int64_t ranges_per_sample = 1;
  if (batch < threads) {
    const int64_t want = (threads + batch - 1) / batch;
    ranges_per_sample = std::max<int64_t>(1, std::min<int64_t>(want, length / 4096));
  }
  const int64_t per_range = (length + ranges_per_sample - 1) / ranges_per_sample;
  const int64_t tasks = batch * ranges_per_sample;
  std::vector<float> zero_beta(num_queries, 0.0f);
  std::vector<float> unit_scale(num_queries, 1.0f);
  const SelectionParams params{k, selection_capacity(k), zero_beta.data(), unit_scale.data()};
  std::vector<std::vector<Selection>> selections(tasks);
  auto make_source = [&](int64_t b) {
    ExactSource source{kind, data, nullptr, nullptr, dim, 0, queries + b * num_queries * dim};
    if (indices) source.indices = indices + b * length;
    if (kind == kRowsFloat32)
      source.data = static_cast<const float*>(data) + b * length * dim;
    return source;
  };
  run_parallel(tasks, threads, [&](int64_t task) {
    const int64_t b = task / ranges_per_sample;
    const int64_t begin = (task % ranges_per_sample) * per_range;
    const int64_t end = std::min(length, begin + per_range);
    const ExactSource source = make_source(b);
    auto& local = selections[task];
    local.assign(num_queries, Selection());
    std::vector<float> threshold(num_queries, kFloorStart);
    std::vector<float> scratch;
    std::vector<float> row_cosines(num_queries);
    const int64_t* row_indices = indices ? indices + b * length : nullptr;
    const uint8_t* row_searchable = searchable ? searchable + b * length : nullptr;
    for (int64_t l = begin; l < end; ++l) {
      if (row_indices) {
        const int64_t ahead = l + 8;
        if (ahead < end) {
          const char* next = static_cast<const char*>(data);
          const int64_t bytes = kind == kTableInt8 ? 1 : (kind == kTableFloat16 ? 2 : 4);
          next += row_indices[ahead] * dim * bytes;
          for (int64_t offset = 0; offset < dim * bytes; offset += 64) _mm_prefetch(next + offset, _MM_HINT_T0);
        }
        if (row_indices[l] < first_id) continue;
      } else if (!row_searchable[l]) {
        continue;
      }
      const float* query = source.queries;
      float squares = 0.0f;
      if (kind == kRowsFloat32) {
        const float* row = static_cast<const float*>(source.data) + l * dim;
        for (int64_t c = 0; c < num_queries; ++c)
          row_cosines[c] = dot_float32(query + c * dim, row, dim, nullptr);
      } else {
        for (int64_t c = 0; c < num_queries; ++c) {
          float dot;
          const int64_t item = row_indices[l];
          if (kind == kTableInt8)
            dot = dot_int8(query + c * dim, static_cast<const int8_t*>(data) + item * dim, dim,
                           c == 0 ? &squares : nullptr);
          else if (kind == kTableFloat16)
            dot = dot_float16(query + c * dim, static_cast<const uint16_t*>(data) + item * dim,
                              dim, c == 0 ? &squares : nullptr);
          else
            dot = dot_float32(query + c * dim, static_cast<const float*>(data) + item * dim, dim,
                              c == 0 ? &squares : nullptr);
          row_cosines[c] = dot;
        }
        const float inverse = inverse_norm(squares);
        for (int64_t c = 0; c < num_queries; ++c) row_cosines[c] *= inverse;
      }
      for (int64_t c = 0; c < num_queries; ++c) {
        const float cosine = row_cosines[c];
        // Exact scores: a row equal to the floor adds nothing (ties may break either way).
        if (cosine > threshold[c] || static_cast<int64_t>(local[c].entries.size()) < k)
          insert(local[c], c, cosine, l, 1, cosine, params, source, scratch, threshold.data());
      }
    }
  });
  const int64_t finish_threads = batch * num_queries >= 64 ? threads : 1;
  run_parallel(finish_threads, finish_threads, [&](int64_t w) {
    std::vector<Selection*> parts(ranges_per_sample);
    for (int64_t item = w; item < batch * num_queries; item += finish_threads) {
      const int64_t b = item / num_queries;
      const int64_t c = item % num_queries;
      for (int64_t r = 0; r < ranges_per_sample; ++r) parts[r] = &selections[b * ranges_per_sample + r][c];
      const ExactSource source = make_source(b);
      finish(parts, c, params, source, positions + b * num_queries * k, cosines + b * num_queries * k,
             mask + b * num_queries * k);
    }
  });
  return 0;
}

}  // extern "C"
