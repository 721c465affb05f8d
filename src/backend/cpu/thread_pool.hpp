#pragma once
// The CPU kernels' threads: one loop at a time split into parts, run by a fixed set of workers
// and the calling thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tabula::detail {

/// Runs the parts of one parallel loop on `size() - 1` workers and the caller. Built for the
/// short loops of a training step (a split GEMM takes tens of microseconds): workers spin
/// briefly for the next loop before they sleep, so a step's loops do not each pay a wake-up.
///
/// One loop runs at a time. A loop started while another runs (another thread's model, or a
/// loop inside a part) runs all its parts on its own calling thread, so concurrent users never
/// wait for each other and never deadlock; the parts are the same either way, so results do
/// not depend on contention. Thread-safe. Owned by the process: workers start on the first
/// loop that can use them and live until the process ends; a child of `fork()` runs every loop
/// on its calling thread.
class ThreadPool {
 public:
  /// The process's pool (sized by `set_num_threads`; until then by TABULA_NUM_THREADS,
  /// OPENBLAS_NUM_THREADS, OMP_NUM_THREADS or the hardware threads).
  static ThreadPool& instance();

  /// Threads a loop may use, the caller included.
  int size() const noexcept { return size_.load(std::memory_order_relaxed); }
  /// Sets that number (>= 1); waits for a running loop to end first.
  void resize(int threads);

  /// Calls part(i) for every i in [0, parts), each exactly once, and returns when all have
  /// returned. `part` must not throw.
  template <typename F>
  void run(int parts, F&& part) {
    run_parts(parts, [](void* f, int i) { (*static_cast<F*>(f))(i); }, &part);
  }

  /// The least work worth a part of its own, in elements of 4 bytes (~128 KiB touched): a
  /// smaller part costs more to hand over than it saves.
  static constexpr std::int64_t kMinPartElements = 32768;

  /// Splits `items` independent items of `elements_per_item` elements each into at most
  /// size() ranges of at least kMinPartElements elements (one range when there is less work)
  /// and calls range(first_item, count) for each, as run() does. The split depends only on the
  /// sizes and size(); as the items are independent, any split gives bitwise the same result.
  template <typename F>
  void run_over(std::int64_t items, std::int64_t elements_per_item, F&& range) {
    std::int64_t parts = items * elements_per_item / kMinPartElements;
    if (parts > size()) parts = size();
    if (parts > items) parts = items;
    if (parts <= 1) return range(std::int64_t{0}, items);
    const std::int64_t step = (items + parts - 1) / parts;
    run(static_cast<int>(parts), [&](int i) {
      const std::int64_t first = i * step;
      range(first, (first + step < items ? first + step : items) - first);
    });
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

 private:
  using PartFn = void (*)(void*, int);
  explicit ThreadPool(int threads);
  ~ThreadPool() = delete;  // never destroyed: kernels may run during static destruction

  void run_parts(int parts, PartFn fn, void* context);
  void start_workers();  // with mutex_ held
  void stop_workers();   // with mutex_ held
  void work(std::uint32_t seen);
  void take_parts();
  static void forget_workers_after_fork() noexcept;

  std::atomic<int> size_;
  std::mutex mutex_;  // held by the thread whose loop runs, and by resize
  std::vector<std::thread> workers_;
  bool forked_ = false;

  // The running loop. generation_ moves on when one starts (workers wait on it); parts are
  // claimed through next_; each worker counts itself in checked_in_ once it has run its own.
  std::atomic<std::uint32_t> generation_{0};
  std::atomic<bool> stopping_{false};
  PartFn fn_ = nullptr;
  void* context_ = nullptr;
  int parts_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> checked_in_{0};
};

/// The pool's size the environment asks for: the first of TABULA_NUM_THREADS,
/// OPENBLAS_NUM_THREADS and OMP_NUM_THREADS (OpenBLAS's and OpenMP's variables keep meaning what
/// they meant when OpenBLAS ran the threads) that is set to a whole positive number; 0 when none
/// is. A variable set to anything else ("abc", "4x", "0") is skipped and named in `ignored`, one
/// line each, for the caller to report. `getenv` looks a variable up (std::getenv in use).
int threads_from_environment(const std::function<const char*(const char*)>& getenv,
                             std::string& ignored);

}  // namespace tabula::detail
