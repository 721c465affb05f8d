#include "backend/cpu/thread_pool.hpp"

#include <pthread.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace tabula::detail {
namespace {

// How long an idle worker waits, awake, for the next loop. A training step's loops come
// microseconds apart; a sleeping worker costs the next loop a wake-up (tens of µs).
constexpr auto spin_time = std::chrono::microseconds(100);

thread_local bool inside_part = false;  // set on workers, and on a caller running its parts

void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// A bad variable is said on stderr once, when the pool is made: this runs in a static
// initialiser with no caller to throw to, and a silently ignored setting is worse than a line.
int default_threads() {
  std::string ignored;
  const int asked =
      threads_from_environment([](const char* name) { return std::getenv(name); }, ignored);
  const unsigned hardware = std::thread::hardware_concurrency();
  const int threads = asked > 0 ? asked : (hardware == 0 ? 1 : static_cast<int>(hardware));
  if (!ignored.empty())
    std::fprintf(stderr, "%stabula: using %d thread%s\n", ignored.c_str(), threads,
                 threads == 1 ? "" : "s");
  return threads;
}

}  // namespace

ThreadPool& ThreadPool::instance() {
  static ThreadPool* pool = new ThreadPool(default_threads());
  return *pool;
}

ThreadPool::ThreadPool(int threads) : size_(threads) {
  ::pthread_atfork(nullptr, nullptr, &ThreadPool::forget_workers_after_fork);
}

void ThreadPool::forget_workers_after_fork() noexcept {
  // The child has only the forking thread; the workers' std::thread objects name threads that
  // do not exist there, so they are left alone (never joined, never destroyed).
  ThreadPool& pool = instance();
  pool.forked_ = true;
  new (&pool.workers_) std::vector<std::thread>();
}

void ThreadPool::resize(int threads) {
  std::lock_guard lock(mutex_);
  if (threads == size()) return;
  if (!forked_) stop_workers();
  size_.store(threads, std::memory_order_relaxed);
}

void ThreadPool::start_workers() {
  stopping_.store(false, std::memory_order_relaxed);
  const std::uint32_t seen = generation_.load(std::memory_order_relaxed);
  for (int i = 1; i < size(); ++i) workers_.emplace_back([this, seen] { work(seen); });
}

void ThreadPool::stop_workers() {
  if (workers_.empty()) return;
  stopping_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
}

void ThreadPool::run_parts(int parts, PartFn fn, void* context) {
  const auto run_here = [&] {
    for (int i = 0; i < parts; ++i) fn(context, i);
  };
  if (parts <= 1 || size() <= 1 || inside_part) return run_here();
  std::unique_lock lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock() || forked_) return run_here();
  inside_part = true;
  if (workers_.empty()) start_workers();

  fn_ = fn;
  context_ = context;
  parts_ = parts;
  next_.store(0, std::memory_order_relaxed);
  checked_in_.store(0, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  take_parts();
  // Every worker checks in, having run the parts it claimed; only then may the next loop
  // reuse fn_, context_ and parts_.
  const int workers = static_cast<int>(workers_.size());
  for (unsigned spins = 0; checked_in_.load(std::memory_order_acquire) < workers; ++spins) {
    if (spins < 4096) cpu_relax();
    else std::this_thread::yield();
  }
  inside_part = false;
}

void ThreadPool::take_parts() {
  for (int i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < parts_;) fn_(context_, i);
}

void ThreadPool::work(std::uint32_t seen) {
  inside_part = true;
  for (;;) {
    const auto until = std::chrono::steady_clock::now() + spin_time;
    for (unsigned spins = 1; generation_.load(std::memory_order_acquire) == seen; ++spins) {
      if (spins % 64 != 0) {
        cpu_relax();
      } else if (std::chrono::steady_clock::now() > until) {
        generation_.wait(seen, std::memory_order_acquire);
      }
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stopping_.load(std::memory_order_relaxed)) return;
    take_parts();
    checked_in_.fetch_add(1, std::memory_order_release);
  }
}

int threads_from_environment(const std::function<const char*(const char*)>& getenv,
                             std::string& ignored) {
  for (const char* name : {"TABULA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"}) {
    const char* value = getenv(name);
    if (value == nullptr) continue;
    char* end = nullptr;
    errno = 0;
    const long n = std::strtol(value, &end, 10);
    if (end != value && *end == '\0' && errno == 0 && n >= 1 && n <= 4096)
      return static_cast<int>(n);
    ignored += std::string("tabula: ") + name + "='" + value +
               "' is not a whole number of threads from 1 to 4096; ignored\n";
  }
  return 0;
}

}  // namespace tabula::detail
