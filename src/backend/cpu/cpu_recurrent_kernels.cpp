#include "backend/cpu/cpu_recurrent_kernels.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "tabula/core/errors.hpp"

namespace tabula::detail {

namespace {

// ---- gate functions -------------------------------------------------------------------
// std::exp and std::tanh are opaque libm calls, which keep the gate loops scalar: the gate
// loops of one training step of LSTM(64) on (64, 50, 8) took 14 ms with them (more than the
// gemms) and take 2 ms with these, which are plain arithmetic that the loops around them
// vectorise: Cephes's expf polynomial (within 1.4 ulp of exp on [-87, 88]) and Eigen's
// rational tanh (within 4e-7 of tanh), so sigmoid is within 1.5e-7 relative. NaN goes in,
// NaN comes out; the clamps use quiet comparisons and a bitwise select, because a ?: on
// floats is not if-converted under -ftrapping-math and the loop would stay scalar.

inline float select(bool condition, float if_true, float if_false) {
  const std::uint32_t mask = 0u - static_cast<std::uint32_t>(condition);
  return std::bit_cast<float>((std::bit_cast<std::uint32_t>(if_true) & mask) |
                              (std::bit_cast<std::uint32_t>(if_false) & ~mask));
}

inline float exp_approx(float x) {
  x = select(std::isgreater(x, 88.0f), 88.0f, x);  // e^88 < FLT_MAX; 2^n stays normal
  x = select(std::isless(x, -87.0f), -87.0f, x);
  // x = n ln2 + r with |r| <= ln2 / 2; adding 1.5 * 2^23 rounds x / ln2 to the integer n.
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float n = shifted - 12582912.0f;
  float r = x - n * 0.693359375f;  // ln2 in two parts: the first is exact in float
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e_r = p * r * r + r + 1.0f;
  // 2^n from the integer in the low bits of `shifted` (unsigned: no overflow on NaN).
  const std::uint32_t two_n = (std::bit_cast<std::uint32_t>(shifted) - 0x4B400000u + 127u) << 23;
  return e_r * std::bit_cast<float>(two_n);
}

inline float tanh_approx(float x) {
  constexpr float kSaturated = 7.90531110763549805f;  // tanh is 1 in float beyond this
  x = select(std::isgreater(x, kSaturated), kSaturated, x);
  x = select(std::isless(x, -kSaturated), -kSaturated, x);
  const float x2 = x * x;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  return x * p / q;
}

// The gate functions an LSTM may use. Derivatives are taken from the function's output,
// which is what the forward pass saved.
template <Activation F>
inline float apply(float x) {
  static_assert(F == Activation::sigmoid || F == Activation::tanh);
  if constexpr (F == Activation::sigmoid) {
    return 1.0f / (1.0f + exp_approx(-x));
  } else {
    return tanh_approx(x);
  }
}

template <Activation F>
inline float derivative_from_output(float y) {
  if constexpr (F == Activation::sigmoid) {
    return y * (1.0f - y);
  } else {
    return 1.0f - y * y;
  }
}

// ---- steps ------------------------------------------------------------------------------

template <Activation A, Activation R>
void forward_step(const LstmStep& s, float* gates, const float* c_prev, float* c, float* h) {
  const index_t U = s.units;
  for (index_t b = 0; b < s.batch; ++b) {
    float* i = gates + b * s.gates_ld;
    float* f = i + U;
    float* g = f + U;
    float* o = g + U;
    float* cr = c + b * s.cell_ld;
    float* hr = h + b * s.h_ld;
    for (index_t u = 0; u < 2 * U; ++u) i[u] = apply<R>(i[u]);  // i and f are adjacent
    for (index_t u = 0; u < U; ++u) g[u] = apply<A>(g[u]);
    for (index_t u = 0; u < U; ++u) o[u] = apply<R>(o[u]);
    if (c_prev != nullptr) {
      const float* cp = c_prev + b * s.cell_ld;
      for (index_t u = 0; u < U; ++u) cr[u] = f[u] * cp[u] + i[u] * g[u];
    } else {
      for (index_t u = 0; u < U; ++u) cr[u] = i[u] * g[u];
    }
    for (index_t u = 0; u < U; ++u) hr[u] = o[u] * apply<A>(cr[u]);
  }
}

// One sample's row. The gate quarters are disjoint parts of one buffer; saying so
// (__restrict) is what lets the compiler vectorise the loop despite the in-place writes.
// The optional inputs are template flags so that the loop has no branches: HasCPrev (not
// the first step), HasDh (not the last), HasDy.
template <Activation A, Activation R, bool HasCPrev, bool HasDh, bool HasDy>
inline void backward_row(index_t U, float* __restrict i, float* __restrict f, float* __restrict g,
                         float* __restrict o, const float* __restrict cp,
                         const float* __restrict cr, const float* __restrict dhr,
                         const float* __restrict dyr, float* __restrict dcr) {
  for (index_t u = 0; u < U; ++u) {
    const float in = i[u], forget = f[u], cand = g[u], out = o[u];  // activations
    const float cell_out = apply<A>(cr[u]);  // recomputed: cheaper than keeping it
    float dh_total = 0.0f;
    if constexpr (HasDh) dh_total += dhr[u];
    if constexpr (HasDy) dh_total += dyr[u];
    const float dc_total = dcr[u] + dh_total * out * derivative_from_output<A>(cell_out);
    float c_before = 0.0f;
    if constexpr (HasCPrev) c_before = cp[u];
    i[u] = dc_total * cand * derivative_from_output<R>(in);
    f[u] = dc_total * c_before * derivative_from_output<R>(forget);
    g[u] = dc_total * in * derivative_from_output<A>(cand);
    o[u] = dh_total * cell_out * derivative_from_output<R>(out);
    dcr[u] = dc_total * forget;
  }
}

template <Activation A, Activation R, bool HasCPrev, bool HasDh, bool HasDy>
void backward_step(const LstmStep& s, float* gates, const float* c_prev, const float* c,
                   const float* dh, const float* dy, float* dc) {
  const index_t U = s.units;
  for (index_t b = 0; b < s.batch; ++b) {
    float* i = gates + b * s.gates_ld;
    backward_row<A, R, HasCPrev, HasDh, HasDy>(U, i, i + U, i + 2 * U, i + 3 * U,
                                               HasCPrev ? c_prev + b * s.cell_ld : nullptr,
                                               c + b * s.cell_ld, HasDh ? dh + b * U : nullptr,
                                               HasDy ? dy + b * s.dy_ld : nullptr, dc + b * U);
  }
}

// Calls f(std::bool_constant<flag>{}) for a runtime flag.
template <typename F>
void with_flag(bool flag, F&& f) {
  if (flag) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

// Calls f.template operator()<A, R>() for the step's activation pair.
template <typename F>
void dispatch(const LstmStep& s, F&& f) {
  const bool a_tanh = s.activation == Activation::tanh;
  const bool r_sigmoid = s.recurrent_activation == Activation::sigmoid;
  TABULA_EXPECT(a_tanh || s.activation == Activation::sigmoid, InvalidArgument,
                "LSTM kernel activation", "tanh or sigmoid", name_of(s.activation));
  TABULA_EXPECT(r_sigmoid || s.recurrent_activation == Activation::tanh, InvalidArgument,
                "LSTM kernel recurrent_activation", "tanh or sigmoid",
                name_of(s.recurrent_activation));
  if (a_tanh && r_sigmoid) return f.template operator()<Activation::tanh, Activation::sigmoid>();
  if (a_tanh) return f.template operator()<Activation::tanh, Activation::tanh>();
  if (r_sigmoid) return f.template operator()<Activation::sigmoid, Activation::sigmoid>();
  return f.template operator()<Activation::sigmoid, Activation::tanh>();
}

}  // namespace

void CpuRecurrentKernels::lstm_forward_step(const LstmStep& s, float* gates, const float* c_prev,
                                            float* c, float* h) {
  dispatch(s, [&]<Activation A, Activation R>() { forward_step<A, R>(s, gates, c_prev, c, h); });
}

void CpuRecurrentKernels::lstm_backward_step(const LstmStep& s, float* gates, const float* c_prev,
                                             const float* c, const float* dh, const float* dy,
                                             float* dc) {
  dispatch(s, [&]<Activation A, Activation R>() {
    with_flag(c_prev != nullptr, [&](auto has_c_prev) {
      with_flag(dh != nullptr, [&](auto has_dh) {
        with_flag(dy != nullptr, [&](auto has_dy) {
          backward_step<A, R, has_c_prev(), has_dh(), has_dy()>(s, gates, c_prev, c, dh, dy, dc);
        });
      });
    });
  });
}

}  // namespace tabula::detail
