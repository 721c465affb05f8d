#pragma once
// The body of every packed GEMM variant; included by one source file per instruction set,
// which first defines
//   TABULA_GEMM_VECTOR  floats per vector register (16 AVX-512, 8 AVX2, 4 SSE2)
//   TABULA_GEMM_ROWS    rows of C per micro-tile (MR)
//   TABULA_GEMM_VECTORS vectors per micro-tile row (NR = VECTORS * VECTOR columns)
//   TABULA_GEMM_FMA     optionally, the fused multiply-add of three vectors (an intrinsic),
//                       with TABULA_GEMM_SPLAT, the intrinsic that broadcasts a float
// and is compiled for that instruction set, without contraction (-ffp-contract=off): every
// multiply-add that is fused is fused here by name, so no element's rounding depends on how
// the compiler treated the code around it (an edge tile, a sanitizer's checks). Everything
// here has internal linkage (an unnamed namespace, on purpose in a header): each variant's copy
// is compiled with its own flags, and a shared inline function could otherwise be linked from a
// variant the CPU cannot run.
//
// The algorithm is the classic one of GotoBLAS/BLIS, written here from its description: C is
// walked in column blocks of NC; k in blocks of KC; op(B)'s KC x NC block is packed into
// slivers NR columns wide, op(A) into micro-panels MR rows tall, and a micro-tile of MR x NR
// accumulators in registers runs KC rank-1 updates from the two packs. Partial tiles at the
// edges are computed whole on zero-padded packs into a local tile, by the same code, so an
// edge element rounds exactly as an inner one.

#include <cstdint>
#include <cstring>

#include "backend/cpu/gemm/packed_gemm.hpp"

namespace tabula::detail {
namespace {

using idx = std::int64_t;

constexpr int kVector = TABULA_GEMM_VECTOR;
constexpr int kRows = TABULA_GEMM_ROWS;  // MR
constexpr int kVectors = TABULA_GEMM_VECTORS;
constexpr int kCols = TABULA_GEMM_VECTORS * TABULA_GEMM_VECTOR;  // NR
// A KC x NR sliver of B (32 KiB for AVX-512) is read from L2 per micro-tile while the MR x KC
// micro-panel of A stays in L1; the KC x NC block of B (512 KiB) and the MC x KC block of A
// (96 KiB) fit in L2. k is cut into equal blocks of at most KC (784 = 4 x 196, not
// 3 x 256 + 16): a short last block would read and write C for little work.
constexpr idx kDepth = 256;  // KC, at most
constexpr idx kWidth = 512;  // NC, a multiple of every NR
constexpr idx kHeight = 96;  // MC, a multiple of every MR
// B is read in place, not packed, when few rows of A will reuse it and its rows are close
// (within 1 KiB: the hardware prefetcher follows such a stride, and a sliver spans few pages):
// a small layer's forward pass (128 x 128 x 784), an LSTM's recurrent step.
constexpr idx kInPlaceRows = 2 * kHeight;
constexpr idx kInPlaceStride = 256;

typedef float vfloat __attribute__((vector_size(TABULA_GEMM_VECTOR * sizeof(float))));

// a * b + c for a scalar a: rounded once where the instruction set fuses it, else twice.
inline vfloat multiply_add(float a, vfloat b, vfloat c) {
#if defined(TABULA_GEMM_FMA)
  return TABULA_GEMM_FMA(TABULA_GEMM_SPLAT(a), b, c);
#else
  return a * b + c;
#endif
}

constexpr idx min_of(idx x, idx y) { return x < y ? x : y; }
constexpr idx round_up(idx x, idx to) { return (x + to - 1) / to * to; }

inline vfloat load_unaligned(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_unaligned(float* p, vfloat v) { std::memcpy(p, &v, sizeof v); }

// The depth of each k block: k / ceil(k / KC), rounded up to a multiple of 8.
constexpr idx block_depth(idx k) {
  const idx blocks = (k + kDepth - 1) / kDepth;
  return min_of(kDepth, round_up((k + blocks - 1) / blocks, 8));
}

// Grows with each extent (block_depth does not: 257 is cut as 2 x 136), so that a buffer
// reserved for a batch also serves a smaller last batch.
idx scratch_floats(idx m, idx n, idx k) noexcept {
  if (m <= 0 || n <= 0 || k <= 0) return 0;
  const idx depth = min_of(round_up(k, 8), kDepth);
  return round_up(min_of(n, kWidth), kCols) * depth + round_up(min_of(m, kHeight), kRows) * depth;
}

typedef float float8 __attribute__((vector_size(8 * sizeof(float))));
typedef int int8 __attribute__((vector_size(8 * sizeof(int))));

// out[t * ld_out + r] = in[r * ld_in + t] for r, t < 8: three rounds of two-vector shuffles
// (pairs, quads, halves), which GCC turns into the instruction set's own permutes.
inline void transpose_8x8(const float* in, idx ld_in, float* out, idx ld_out) {
  float8 r[8], u[8];
  for (int i = 0; i < 8; ++i) std::memcpy(&r[i], in + i * ld_in, sizeof(float8));
  for (int i = 0; i < 8; i += 2) {
    u[i] = __builtin_shuffle(r[i], r[i + 1], int8{0, 8, 2, 10, 4, 12, 6, 14});
    u[i + 1] = __builtin_shuffle(r[i], r[i + 1], int8{1, 9, 3, 11, 5, 13, 7, 15});
  }
  for (int i = 0; i < 8; i += 4)
    for (int k = 0; k < 2; ++k) {
      r[i + k] = __builtin_shuffle(u[i + k], u[i + k + 2], int8{0, 1, 8, 9, 4, 5, 12, 13});
      r[i + k + 2] = __builtin_shuffle(u[i + k], u[i + k + 2], int8{2, 3, 10, 11, 6, 7, 14, 15});
    }
  for (int k = 0; k < 4; ++k) {
    u[k] = __builtin_shuffle(r[k], r[k + 4], int8{0, 1, 2, 3, 8, 9, 10, 11});
    u[k + 4] = __builtin_shuffle(r[k], r[k + 4], int8{4, 5, 6, 7, 12, 13, 14, 15});
  }
  for (int t = 0; t < 8; ++t) std::memcpy(out + t * ld_out, &u[t], sizeof(float8));
}

// op(B)[p0 .. p0+depth, j0 .. j0+width] into slivers: sliver s holds, for each p, the NR
// columns j0 + s*NR .. of row p, zero past `width`.
void pack_b(const GemmArgs& g, idx p0, idx depth, idx j0, idx width, float* packed) {
  for (idx s = 0; s * kCols < width; ++s) {
    float* out = packed + s * kCols * depth;
    const idx j_first = j0 + s * kCols;
    const idx cols = min_of(kCols, width - s * kCols);
    if (!g.trans_b) {
      for (idx p = 0; p < depth; ++p) {
        const float* row = g.b + (p0 + p) * g.ldb + j_first;
        float* dst = out + p * kCols;
        std::memcpy(dst, row, static_cast<std::size_t>(cols) * sizeof(float));
        for (idx j = cols; j < kCols; ++j) dst[j] = 0.0f;
      }
    } else {
      // op(B)[p][j] = B[j][p]: 8 x 8 blocks of B transposed in registers, the rest (a ragged
      // sliver, the last p) one value at a time. NR rows of B are read side by side; each stays
      // in L1 for the 16 values of p its cache line holds.
      const float* rows = g.b + j_first * g.ldb + p0;
      idx p = 0;
      if (cols == kCols)
        for (; p + 8 <= depth; p += 8)
          for (idx j = 0; j < kCols; j += 8)
            transpose_8x8(rows + j * g.ldb + p, g.ldb, out + p * kCols + j, kCols);
      for (; p < depth; ++p) {
        float* dst = out + p * kCols;
        for (idx j = 0; j < cols; ++j) dst[j] = rows[j * g.ldb + p];
        for (idx j = cols; j < kCols; ++j) dst[j] = 0.0f;
      }
    }
  }
}

// op(A)[i0 .. i0+height, p0 .. p0+depth] of a transposed A as micro-panels of MR rows: panel
// r holds, for each p, the MR values of rows i0 + r*MR .., zero past `height`. The values of
// one p are contiguous in A, so a panel's MR values are one copy.
void pack_transposed_a(const GemmArgs& g, idx i0, idx height, idx p0, idx depth, float* packed) {
  const idx full = height / kRows;
  const idx rest = height - full * kRows;
  for (idx p = 0; p < depth; ++p) {
    const float* src = g.a + (p0 + p) * g.lda + i0;
    for (idx r = 0; r < full; ++r)
      std::memcpy(packed + r * kRows * depth + p * kRows, src + r * kRows, sizeof(float) * kRows);
    if (rest > 0) {
      float* dst = packed + full * kRows * depth + p * kRows;
      for (idx i = 0; i < kRows; ++i) dst[i] = i < rest ? src[full * kRows + i] : 0.0f;
    }
  }
}

// The last `rows` (< MR) rows of a non-transposed A from i0 as one zero-padded micro-panel.
void pack_edge_rows(const GemmArgs& g, idx i0, idx rows, idx p0, idx depth, float* packed) {
  std::memset(packed, 0, static_cast<std::size_t>(kRows * depth) * sizeof(float));
  for (idx i = 0; i < rows; ++i) {
    const float* row = g.a + (i0 + i) * g.lda + p0;
    for (idx p = 0; p < depth; ++p) packed[p * kRows + i] = row[p];
  }
}

// Where a micro-tile reads its MR x depth values of op(A): a packed micro-panel (MR values per
// p, contiguous), or MR rows of A itself when A is not transposed (row i at a + i * lda).
// Packing A would cost about as much as the multiply-adds when n is small (a convolution's
// 64 filters), so A is read in place where it can be.
struct PackedA {
  const float* a;
  float at(int i, idx p) const { return a[p * kRows + i]; }
};
struct RowsOfA {
  const float* a;
  idx lda;
  float at(int i, idx p) const { return a[i * lda + p]; }
};

// C[0..MR, 0..NR] = alpha * sum_p a(:, p) b[p]^T + beta * C; with beta == 0, C is not read.
template <typename A>
__attribute__((always_inline)) inline void micro_tile(idx depth, A a, const float* __restrict b,
                                                      idx ldb, float* c, idx ldc, float alpha,
                                                      float beta) {
  vfloat acc[kRows][kVectors];
#pragma GCC unroll 16
  for (int i = 0; i < kRows; ++i) {
    // C's rows are far apart (often 4 KiB, one cache set): fetch them while the sums run.
    if (beta != 0.0f) {
      __builtin_prefetch(c + i * ldc, 1);
      __builtin_prefetch(c + i * ldc + kCols - 1, 1);
    }
#pragma GCC unroll 8
    for (int v = 0; v < kVectors; ++v) acc[i][v] = vfloat{};
  }
  for (idx p = 0; p < depth; ++p) {
    vfloat bv[kVectors];
#pragma GCC unroll 8
    for (int v = 0; v < kVectors; ++v) bv[v] = load_unaligned(b + p * ldb + v * kVector);
#pragma GCC unroll 16
    for (int i = 0; i < kRows; ++i) {
      const float ai = a.at(i, p);
#pragma GCC unroll 8
      for (int v = 0; v < kVectors; ++v) acc[i][v] = multiply_add(ai, bv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kRows; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < kVectors; ++v) {
      float* out = c + i * ldc + v * kVector;
      const vfloat r = alpha * acc[i][v];
      store_unaligned(out, beta != 0.0f ? multiply_add(beta, load_unaligned(out), r) : r);
    }
  }
}

// A partial tile: the whole tile on a local copy, then its rows x cols part written back.
template <typename A>
void edge_tile(idx depth, A a, const float* b, idx ldb, float* c, idx ldc, idx rows, idx cols,
               float alpha, float beta) {
  alignas(64) float tile[kRows * kCols];
  if (beta != 0.0f)
    for (idx i = 0; i < rows; ++i)
      std::memcpy(tile + i * kCols, c + i * ldc, static_cast<std::size_t>(cols) * sizeof(float));
  micro_tile(depth, a, b, ldb, tile, kCols, alpha, beta);
  for (idx i = 0; i < rows; ++i)
    std::memcpy(c + i * ldc, tile + i * kCols, static_cast<std::size_t>(cols) * sizeof(float));
}

void scale_c(const GemmArgs& g) {
  for (idx i = 0; i < g.m; ++i) {
    float* row = g.c + i * g.ldc;
    for (idx j = 0; j < g.n; ++j) row[j] = g.beta == 0.0f ? 0.0f : g.beta * row[j];
  }
}

// One MR-row panel of C against every sliver of the B block: packed slivers, or, when
// `b_in_place`, B's own rows for the whole slivers (the last, partial one is packed).
template <typename A>
void panel_times_block(idx depth, A a, idx rows, const float* packed_b, const float* b_in_place,
                       idx ldb, idx width, float* c, idx ldc, float alpha, float beta) {
  for (idx s = 0; s * kCols < width; ++s) {
    const idx cols = min_of(kCols, width - s * kCols);
    const bool in_place = b_in_place != nullptr && cols == kCols;
    const float* sliver = in_place ? b_in_place + s * kCols : packed_b + s * kCols * depth;
    const idx sliver_ld = in_place ? ldb : kCols;
    if (rows == kRows && cols == kCols)
      micro_tile(depth, a, sliver, sliver_ld, c + s * kCols, ldc, alpha, beta);
    else
      edge_tile(depth, a, sliver, sliver_ld, c + s * kCols, ldc, rows, cols, alpha, beta);
  }
}

void run(const GemmArgs& g, float* scratch) noexcept {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0) return scale_c(g);
  const idx max_depth = block_depth(g.k);
  float* packed_b = scratch;
  float* packed_a = scratch + round_up(min_of(g.n, kWidth), kCols) * max_depth;
  for (idx j0 = 0; j0 < g.n; j0 += kWidth) {
    const idx width = min_of(kWidth, g.n - j0);
    for (idx p0 = 0; p0 < g.k; p0 += max_depth) {
      const idx depth = min_of(max_depth, g.k - p0);
      const float beta = p0 == 0 ? g.beta : 1.0f;  // later k blocks add to the first's result
      const bool b_in_place = !g.trans_b && g.m <= kInPlaceRows && g.ldb <= kInPlaceStride;
      const float* b_rows = b_in_place ? g.b + p0 * g.ldb + j0 : nullptr;
      if (b_in_place) {
        const idx whole = width / kCols * kCols;
        if (whole < width)
          pack_b(g, p0, depth, j0 + whole, width - whole, packed_b + whole * depth);
      } else {
        pack_b(g, p0, depth, j0, width, packed_b);
      }
      if (!g.trans_a) {
        for (idx i0 = 0; i0 < g.m; i0 += kRows) {
          const idx rows = min_of(kRows, g.m - i0);
          float* c_rows = g.c + i0 * g.ldc + j0;
          if (rows == kRows) {
            panel_times_block(depth, RowsOfA{g.a + i0 * g.lda + p0, g.lda}, rows, packed_b, b_rows,
                              g.ldb, width, c_rows, g.ldc, g.alpha, beta);
          } else {
            pack_edge_rows(g, i0, rows, p0, depth, packed_a);
            panel_times_block(depth, PackedA{packed_a}, rows, packed_b, b_rows, g.ldb, width,
                              c_rows, g.ldc, g.alpha, beta);
          }
        }
        continue;
      }
      for (idx h0 = 0; h0 < g.m; h0 += kHeight) {
        const idx height = min_of(kHeight, g.m - h0);
        pack_transposed_a(g, h0, height, p0, depth, packed_a);
        for (idx r = 0; r * kRows < height; ++r)
          panel_times_block(depth, PackedA{packed_a + r * kRows * depth},
                            min_of(kRows, height - r * kRows), packed_b, b_rows, g.ldb, width,
                            g.c + (h0 + r * kRows) * g.ldc + j0, g.ldc, g.alpha, beta);
      }
    }
  }
}

}  // namespace
}  // namespace tabula::detail
