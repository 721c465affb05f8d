#include "backend/cuda/cuda_convolution_kernels.hpp"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>
#include <string_view>

#include "backend/cuda/per_device.hpp"
#include "backend/cuda/process_exit.hpp"
#include "memory/detail/align.hpp"
#include "tabula/core/errors.hpp"

#if TABULA_WITH_CUDNN
#include "backend/cuda/cudnn_context.hpp"
#endif

namespace tabula::detail {

ConvolutionKernels& cuda_convolution_kernels_for(Device device) {
  return per_device<CudaConvolutionKernels>(device, "CUDA convolution kernels");
}

bool CudaConvolutionKernels::has_cudnn() { return TABULA_WITH_CUDNN != 0; }

bool CudaConvolutionKernels::cudnn_enabled() {
  const char* value = std::getenv("TABULA_CUDNN");
  const std::string_view setting = value ? value : "on";
  TABULA_EXPECT(setting == "on" || setting == "1" || setting == "off" || setting == "0",
                InvalidArgument, "environment variable TABULA_CUDNN", "on, 1, off or 0",
                "'" << setting << "'");
  return has_cudnn() && (setting == "on" || setting == "1");
}

#if TABULA_WITH_CUDNN
namespace {

// What TABULA_CUDNN says, for library(): nothing when cuDNN is on. Never throws: a description
// reports a bad value rather than refusing to describe.
std::string switch_state() {
  try {
    return CudaConvolutionKernels::cudnn_enabled()
               ? ""
               : ", turned off by TABULA_CUDNN: convolutions unfold";
  } catch (const InvalidArgument& e) {
    return std::string(", ") + e.what();
  }
}

}  // namespace
#endif

std::string CudaConvolutionKernels::library() {
#if TABULA_WITH_CUDNN
  const std::size_t v = cudnnGetVersion();  // major * 10000 + minor * 100 + patch since 9.0
  return "cuDNN " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
         std::to_string(v % 100) + " (built with " + std::to_string(CUDNN_MAJOR) + "." +
         std::to_string(CUDNN_MINOR) + "." + std::to_string(CUDNN_PATCHLEVEL) + ")" +
         switch_state();
#else
  return "no cuDNN in this build: convolutions unfold into cuBLAS GEMMs";
#endif
}

#if !TABULA_WITH_CUDNN

ConvolutionPlan CudaConvolutionKernels::plan_conv2d(Scratch& scratch, const Convolution2d& c,
                                                    bool training) {
  return ConvolutionKernels::plan_conv2d(scratch, c, training);
}

void CudaConvolutionKernels::conv2d_forward(Kernels& k, Scratch& scratch,
                                            const ConvolutionPlan& plan, const Convolution2d& c,
                                            const float* x, const float* kernel, float* y,
                                            void* workspace) {
  ConvolutionKernels::conv2d_forward(k, scratch, plan, c, x, kernel, y, workspace);
}

void CudaConvolutionKernels::conv2d_backward(Kernels& k, Scratch& scratch,
                                             const ConvolutionPlan& plan, const Convolution2d& c,
                                             const float* x, const float* dy, const float* kernel,
                                             float* dkernel, float* dx, void* workspace) {
  ConvolutionKernels::conv2d_backward(k, scratch, plan, c, x, dy, kernel, dkernel, dx, workspace);
}

#else

namespace {

// The descriptors' handles, destroyed with it whatever setting them does.
struct DescriptorHandles {
  DescriptorHandles() {
    check_cudnn(cudnnCreateTensorDescriptor(&x), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateTensorDescriptor(&y), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateFilterDescriptor(&kernel), "cudnnCreateFilterDescriptor");
    check_cudnn(cudnnCreateConvolutionDescriptor(&convolution), "cudnnCreateConvolutionDescriptor");
  }
  ~DescriptorHandles() {
    if (convolution) cudnnDestroyConvolutionDescriptor(convolution);
    if (kernel) cudnnDestroyFilterDescriptor(kernel);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
  DescriptorHandles(const DescriptorHandles&) = delete;
  DescriptorHandles& operator=(const DescriptorHandles&) = delete;

  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t kernel = nullptr;
  cudnnConvolutionDescriptor_t convolution = nullptr;
};

// The four descriptors of one convolution call: x and y NHWC, the kernel KRSC (filters, kh,
// kw, channels: tabula's (kh, kw, channels, filters) transposed), cross-correlation with the
// window's strides and leading padding, fp32 arithmetic throughout.
class Descriptors : public DescriptorHandles {
 public:
  explicit Descriptors(const Convolution2d& c) {
    const Window2d& w = c.window;
    const auto i = [](index_t v) { return static_cast<int>(v); };
    check_cudnn(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, i(w.batch),
                                           i(w.channels), i(w.in_h), i(w.in_w)),
                "cudnnSetTensor4dDescriptor(x)");
    check_cudnn(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, i(w.batch),
                                           i(c.filters), i(w.out_h), i(w.out_w)),
                "cudnnSetTensor4dDescriptor(y)");
    check_cudnn(
        cudnnSetFilter4dDescriptor(kernel, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, i(c.filters),
                                   i(w.channels), i(w.kernel_h), i(w.kernel_w)),
        "cudnnSetFilter4dDescriptor");
    check_cudnn(cudnnSetConvolution2dDescriptor(convolution, i(w.pad_top), i(w.pad_left),
                                                i(w.stride_h), i(w.stride_w), 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                "cudnnSetConvolution2dDescriptor");
    // Tensor cores would round the inputs to TF32 (10-bit mantissa): tabula's float32 is
    // float32 on every device.
    check_cudnn(cudnnSetConvolutionMathType(convolution, CUDNN_FMA_MATH),
                "cudnnSetConvolutionMathType");
  }

  /// Whether cuDNN's output has the window's shape: not when the padding is asymmetric.
  bool output_matches(const Convolution2d& c) const {
    int n = 0, channels = 0, h = 0, w = 0;
    check_cudnn(
        cudnnGetConvolution2dForwardOutputDim(convolution, x, kernel, &n, &channels, &h, &w),
        "cudnnGetConvolution2dForwardOutputDim");
    return n == c.window.batch && channels == c.filters && h == c.window.out_h &&
           w == c.window.out_w;
  }
};

// FFT algorithms' float32 error grows with the whole tensors' magnitude rather than each
// output's sum, which the CPU's and unfolding's results do not share.
bool fft(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING;
}
bool fft(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING;
}
bool fft(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING;
}

// cuDNN's heuristic ranking of one direction's algorithms for `d`, and the workspace an
// algorithm needs there, overloaded by direction (the algorithm's and the ranking's types).
cudnnStatus_t workspace_size(cudnnHandle_t h, const Descriptors& d, cudnnConvolutionFwdAlgo_t a,
                             std::size_t* bytes) {
  return cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.kernel, d.convolution, d.y, a, bytes);
}
cudnnStatus_t workspace_size(cudnnHandle_t h, const Descriptors& d, cudnnConvolutionBwdDataAlgo_t a,
                             std::size_t* bytes) {
  return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.kernel, d.y, d.convolution, d.x, a,
                                                      bytes);
}
cudnnStatus_t workspace_size(cudnnHandle_t h, const Descriptors& d,
                             cudnnConvolutionBwdFilterAlgo_t a, std::size_t* bytes) {
  return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.convolution, d.kernel, a,
                                                        bytes);
}
void rank(cudnnHandle_t h, const Descriptors& d, cudnnConvolutionFwdAlgoPerf_t* ranked,
          int* count) {
  check_cudnn(
      cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.kernel, d.convolution, d.y,
                                             CUDNN_CONVOLUTION_FWD_ALGO_COUNT, count, ranked),
      "cudnnGetConvolutionForwardAlgorithm_v7");
}
void rank(cudnnHandle_t h, const Descriptors& d, cudnnConvolutionBwdDataAlgoPerf_t* ranked,
          int* count) {
  check_cudnn(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.kernel, d.y, d.convolution, d.x,
                                                          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                          count, ranked),
              "cudnnGetConvolutionBackwardDataAlgorithm_v7");
}
void rank(cudnnHandle_t h, const Descriptors& d, cudnnConvolutionBwdFilterAlgoPerf_t* ranked,
          int* count) {
  check_cudnn(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.convolution, d.kernel,
                                                            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                            count, ranked),
              "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
}

// The first of cuDNN's ranking (of `Perf`'s direction, at most `kCount`) that runs, is
// deterministic, computes in float32 (no tensor-core math, which the FMA descriptor should
// already rule out; no FFT), fits the budget, and whose workspace cuDNN can size for `d`: the
// ranking is a heuristic's, the size query checks the algorithm against the descriptors.
// -1 when none is.
template <typename Perf, int kCount>
int first_usable(cudnnHandle_t h, const Descriptors& d, std::size_t* workspace) {
  Perf ranked[kCount];
  int count = 0;
  rank(h, d, ranked, &count);
  for (int i = 0; i < count; ++i) {
    const Perf& p = ranked[i];
    if (p.status != CUDNN_STATUS_SUCCESS || p.determinism != CUDNN_DETERMINISTIC ||
        p.mathType == CUDNN_TENSOR_OP_MATH || p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION ||
        fft(p.algo))
      continue;
    std::size_t bytes = 0;
    if (workspace_size(h, d, p.algo, &bytes) != CUDNN_STATUS_SUCCESS) continue;
    bytes = std::max(bytes, p.memory);
    if (bytes > CudaConvolutionKernels::kMaxWorkspaceBytes) continue;
    *workspace = bytes;
    return static_cast<int>(p.algo);
  }
  return -1;
}

// The algorithm a call runs, and its workspace for the call's batch: the plan's, unless cuDNN
// refuses it for this batch (smaller than the plan's), then the first usable for this batch.
// @throws Error when cuDNN runs none of them for it.
template <typename Perf, int kCount, typename Algo>
Algo algorithm_for_call(cudnnHandle_t h, const Descriptors& d, Algo planned, index_t batch,
                        std::size_t* workspace, const char* what) {
  if (workspace_size(h, d, planned, workspace) == CUDNN_STATUS_SUCCESS) return planned;
  const int other = first_usable<Perf, kCount>(h, d, workspace);
  TABULA_EXPECT(other >= 0, Error, what << " of a batch of " << batch << " samples",
                "an algorithm cuDNN runs for it (deterministic, float32, within "
                    << CudaConvolutionKernels::kMaxWorkspaceBytes << " bytes of workspace)",
                "none");
  return static_cast<Algo>(other);
}

using ForwardRanking = cudnnConvolutionFwdAlgoPerf_t;
using DataRanking = cudnnConvolutionBwdDataAlgoPerf_t;
using FilterRanking = cudnnConvolutionBwdFilterAlgoPerf_t;
constexpr int kForwardCount = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
constexpr int kDataCount = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
constexpr int kFilterCount = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;

// The plan's workspace: the kernel in cuDNN's layout, its gradient (a plan for training
// only), then cuDNN's own.
struct Workspace {
  Workspace(const Convolution2d& c, bool training, void* base, std::size_t bytes) {
    const std::size_t kernel_bytes = layout_bytes(c);
    auto* at = static_cast<unsigned char*>(base);
    kernel = reinterpret_cast<float*>(at);
    gradient = training ? reinterpret_cast<float*>(at + kernel_bytes) : nullptr;
    const std::size_t layouts = (training ? 2 : 1) * kernel_bytes;
    library = at + layouts;
    library_bytes = bytes - layouts;
  }
  static std::size_t bytes(const Convolution2d& c, bool training, std::size_t library_bytes) {
    return (training ? 2 : 1) * layout_bytes(c) + library_bytes;
  }
  /// The plan's workspace, which the caller must have reserved.
  static Workspace of(const ConvolutionPlan& plan, const Convolution2d& c, void* base) {
    TABULA_EXPECT(base != nullptr, InvalidArgument, "cuDNN convolution workspace",
                  plan.workspace_bytes << " bytes (the plan's)", "none");
    return Workspace(c, plan.training, base, plan.workspace_bytes);
  }
  static constexpr std::size_t kAlignment = 256;

  float* kernel;
  float* gradient;
  void* library;
  std::size_t library_bytes;

 private:
  static std::size_t layout_bytes(const Convolution2d& c) {
    return round_up(static_cast<std::size_t>(c.patch() * c.filters) * sizeof(float), kAlignment);
  }
};

bool fits_int(const Convolution2d& c) {
  const Window2d& w = c.window;
  return std::max({w.batch * w.in_h * w.in_w * w.channels, w.batch * w.out_h * w.out_w * c.filters,
                   c.patch() * c.filters}) <= INT_MAX;
}

// The session's cuDNN handle, bound to the calling thread's stream, under `lock`.
cudnnHandle_t handle_of(Scratch& scratch, Device device, std::unique_lock<std::mutex>& lock) {
  auto& context = static_cast<CudnnContext&>(scratch.context(&CudnnContext::make));
  lock = std::unique_lock(context.mutex());
  return context.bind(Stream::for_device(device), lock);
}

// A call's handle under its context's lock, and room for cuDNN's workspace: the plan's, or a
// block of the session's pool when this batch needs more than the plan's batch did.
class CudnnCall {
 public:
  CudnnCall(Scratch& scratch, Device device, const Workspace& planned, std::size_t needed)
      : handle_(handle_of(scratch, device, lock_)),
        extra_(scratch, needed > planned.library_bytes ? needed : 0),
        workspace_(extra_.data() ? extra_.data() : planned.library),
        bytes_(extra_.data() ? needed : planned.library_bytes) {}

  cudnnHandle_t handle() const { return handle_; }
  void* workspace() const { return workspace_; }
  std::size_t bytes() const { return bytes_; }

 private:
  std::unique_lock<std::mutex> lock_;  // before handle_: handle_of takes it
  cudnnHandle_t handle_;
  ScratchBlock extra_;
  void* workspace_;
  std::size_t bytes_;
};

}  // namespace

ConvolutionPlan CudaConvolutionKernels::plan_conv2d(Scratch& scratch, const Convolution2d& c,
                                                    bool training) {
  if (!cudnn_enabled() || c.window.batch <= 0 || !fits_int(c))
    return ConvolutionKernels::plan_conv2d(scratch, c, training);
  const Descriptors d(c);
  if (!d.output_matches(c)) return ConvolutionKernels::plan_conv2d(scratch, c, training);
  std::unique_lock<std::mutex> lock;
  cudnnHandle_t handle = handle_of(scratch, device_, lock);

  // An inference plan needs the forward algorithm only, and no room for the kernel's gradient.
  std::size_t forward_bytes = 0, data_bytes = 0, filter_bytes = 0;
  const int forward_algorithm =
      first_usable<ForwardRanking, kForwardCount>(handle, d, &forward_bytes);
  const int data_algorithm =
      training ? first_usable<DataRanking, kDataCount>(handle, d, &data_bytes) : -1;
  const int filter_algorithm =
      training ? first_usable<FilterRanking, kFilterCount>(handle, d, &filter_bytes) : -1;
  watch_exit_after(ExitPoint::cudnn_convolution_planned);  // the queries load cuDNN's code
  if (forward_algorithm < 0 || (training && (data_algorithm < 0 || filter_algorithm < 0)))
    return ConvolutionKernels::plan_conv2d(scratch, c, training);

  ConvolutionPlan plan;
  plan.batch = c.window.batch;
  plan.training = training;
  plan.workspace_name = "cudnn_workspace";
  plan.algorithms[0] = forward_algorithm;
  plan.algorithms[1] = data_algorithm;
  plan.algorithms[2] = filter_algorithm;
  plan.workspace_bytes =
      Workspace::bytes(c, training, std::max({forward_bytes, data_bytes, filter_bytes}));
  return plan;
}

void CudaConvolutionKernels::conv2d_forward(Kernels& k, Scratch& scratch,
                                            const ConvolutionPlan& plan, const Convolution2d& c,
                                            const float* x, const float* kernel, float* y,
                                            void* workspace) {
  if (plan.unfolds())
    return ConvolutionKernels::conv2d_forward(k, scratch, plan, c, x, kernel, y, workspace);
  if (c.window.batch <= 0) return;
  const Workspace planned = Workspace::of(plan, c, workspace);
  const Descriptors d(c);
  k.transpose(kernel, c.patch(), c.filters, planned.kernel);  // to (filters, kh, kw, channels)
  std::size_t needed = 0;
  cudnnConvolutionFwdAlgo_t algorithm;
  {
    std::unique_lock<std::mutex> lock;
    algorithm = algorithm_for_call<ForwardRanking, kForwardCount>(
        handle_of(scratch, device_, lock), d,
        static_cast<cudnnConvolutionFwdAlgo_t>(plan.algorithms[0]), c.window.batch, &needed,
        "cuDNN forward convolution");
  }
  const CudnnCall call(scratch, device_, planned, needed);
  const float one = 1.0f, zero = 0.0f;
  check_cudnn(
      cudnnConvolutionForward(call.handle(), &one, d.x, x, d.kernel, planned.kernel, d.convolution,
                              algorithm, call.workspace(), call.bytes(), &zero, d.y, y),
      "cudnnConvolutionForward");
  watch_exit_after(ExitPoint::cudnn_forward_run);
}

void CudaConvolutionKernels::conv2d_backward(Kernels& k, Scratch& scratch,
                                             const ConvolutionPlan& plan, const Convolution2d& c,
                                             const float* x, const float* dy, const float* kernel,
                                             float* dkernel, float* dx, void* workspace) {
  if (plan.unfolds())
    return ConvolutionKernels::conv2d_backward(k, scratch, plan, c, x, dy, kernel, dkernel, dx,
                                               workspace);
  expect_training_plan(plan);
  if (c.window.batch <= 0) return;
  const Workspace planned = Workspace::of(plan, c, workspace);
  const Descriptors d(c);
  auto data_algorithm = static_cast<cudnnConvolutionBwdDataAlgo_t>(plan.algorithms[1]);
  auto filter_algorithm = static_cast<cudnnConvolutionBwdFilterAlgo_t>(plan.algorithms[2]);
  std::size_t data_bytes = 0, filter_bytes = 0;
  {
    std::unique_lock<std::mutex> lock;
    cudnnHandle_t handle = handle_of(scratch, device_, lock);
    filter_algorithm = algorithm_for_call<FilterRanking, kFilterCount>(
        handle, d, filter_algorithm, c.window.batch, &filter_bytes,
        "cuDNN kernel gradient of a convolution");
    if (dx)
      data_algorithm = algorithm_for_call<DataRanking, kDataCount>(
          handle, d, data_algorithm, c.window.batch, &data_bytes,
          "cuDNN input gradient of a convolution");
  }
  const float one = 1.0f, zero = 0.0f;
  {
    const CudnnCall call(scratch, device_, planned, filter_bytes);
    check_cudnn(cudnnConvolutionBackwardFilter(call.handle(), &one, d.x, x, d.y, dy, d.convolution,
                                               filter_algorithm, call.workspace(), call.bytes(),
                                               &zero, d.kernel, planned.gradient),
                "cudnnConvolutionBackwardFilter");
  }
  watch_exit_after(ExitPoint::cudnn_backward_run);
  k.transpose(planned.gradient, c.filters, c.patch(), dkernel);  // back to (kh, kw, c, filters)
  if (!dx) return;
  k.transpose(kernel, c.patch(), c.filters, planned.kernel);
  const CudnnCall call(scratch, device_, planned, data_bytes);
  check_cudnn(cudnnConvolutionBackwardData(call.handle(), &one, d.kernel, planned.kernel, d.y, dy,
                                           d.convolution, data_algorithm, call.workspace(),
                                           call.bytes(), &zero, d.x, dx),
              "cudnnConvolutionBackwardData");
}

#endif  // TABULA_WITH_CUDNN

}  // namespace tabula::detail
