#include "backend/cpu/cpu_recurrent_kernels.hpp"

#include <cmath>

#include "tabula/core/errors.hpp"

namespace tabula::detail {

RecurrentKernels& recurrent_kernels_for(Device device) {
  static CpuRecurrentKernels cpu;
  if (device.is_cpu()) return cpu;
  TABULA_THROW(Error, "no recurrent kernels for "
                          << device.str() << " in this build (only the CPU has them so far)");
}

namespace {

// The gate functions an LSTM may use. Derivatives are taken from the function's output,
// which is what the forward pass saved.
template <Activation F>
inline float apply(float x) {
  static_assert(F == Activation::sigmoid || F == Activation::tanh);
  if constexpr (F == Activation::sigmoid) {
    return 1.0f / (1.0f + std::exp(-x));
  } else {
    return std::tanh(x);
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

template <Activation A, Activation R>
void forward_step(const LstmStep& s, float* gates, const float* c_prev, float* c, float* h) {
  const index_t U = s.units;
  for (index_t b = 0; b < s.batch; ++b) {
    float* i = gates + b * s.gates_ld;
    float* f = i + U;
    float* g = f + U;
    float* o = g + U;
    const float* cp = c_prev != nullptr ? c_prev + b * s.cell_ld : nullptr;
    float* cr = c + b * s.cell_ld;
    float* hr = h + b * s.h_ld;
    for (index_t u = 0; u < 2 * U; ++u) i[u] = apply<R>(i[u]);  // i and f are adjacent
    for (index_t u = 0; u < U; ++u) g[u] = apply<A>(g[u]);
    for (index_t u = 0; u < U; ++u) o[u] = apply<R>(o[u]);
    if (cp != nullptr) {
      for (index_t u = 0; u < U; ++u) cr[u] = f[u] * cp[u] + i[u] * g[u];
    } else {
      for (index_t u = 0; u < U; ++u) cr[u] = i[u] * g[u];
    }
    for (index_t u = 0; u < U; ++u) hr[u] = o[u] * apply<A>(cr[u]);
  }
}

template <Activation A, Activation R>
void backward_step(const LstmStep& s, float* gates, const float* c_prev, const float* c,
                   const float* dh, const float* dy, float* dc) {
  const index_t U = s.units;
  for (index_t b = 0; b < s.batch; ++b) {
    float* i = gates + b * s.gates_ld;
    float* f = i + U;
    float* g = f + U;
    float* o = g + U;
    const float* cp = c_prev != nullptr ? c_prev + b * s.cell_ld : nullptr;
    const float* cr = c + b * s.cell_ld;
    const float* dhr = dh != nullptr ? dh + b * U : nullptr;
    const float* dyr = dy != nullptr ? dy + b * s.dy_ld : nullptr;
    float* dcr = dc + b * U;
    for (index_t u = 0; u < U; ++u) {
      const float in = i[u], forget = f[u], cand = g[u], out = o[u];  // activations
      const float cell_out = apply<A>(cr[u]);  // recomputed: cheaper than keeping it
      const float dh_total = (dhr != nullptr ? dhr[u] : 0.0f) + (dyr != nullptr ? dyr[u] : 0.0f);
      const float dc_total = dcr[u] + dh_total * out * derivative_from_output<A>(cell_out);
      const float c_before = cp != nullptr ? cp[u] : 0.0f;
      i[u] = dc_total * cand * derivative_from_output<R>(in);
      f[u] = dc_total * c_before * derivative_from_output<R>(forget);
      g[u] = dc_total * in * derivative_from_output<A>(cand);
      o[u] = dh_total * cell_out * derivative_from_output<R>(out);
      dcr[u] = dc_total * forget;
    }
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

void CpuRecurrentKernels::lstm_backward_step(const LstmStep& s, float* gates,
                                             const float* c_prev, const float* c,
                                             const float* dh, const float* dy, float* dc) {
  dispatch(s, [&]<Activation A, Activation R>() {
    backward_step<A, R>(s, gates, c_prev, c, dh, dy, dc);
  });
}

}  // namespace tabula::detail
