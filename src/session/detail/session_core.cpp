#include "session/detail/session_core.hpp"

#include <algorithm>
#include <random>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "session/detail/session_use.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/memory/cuda_resource.hpp"

namespace tabula::detail {

namespace {

std::unique_ptr<MemoryResource> make_base_resource(Device device) {
  if (device.is_cuda()) return std::make_unique<CudaResource>(device);
  return std::make_unique<HostResource>();
}

std::uint64_t initial_seed(const SessionOptions& options) {
  if (options.seed) return *options.seed;
  if (auto seed = SessionList::instance().default_seed()) return *seed;
  std::random_device device;
  return (std::uint64_t{device()} << 32) | device();
}

}  // namespace

SessionCore::DevicePool::DevicePool(Device device, const SessionOptions& options)
    : base(make_base_resource(device)),
      stats(*base),
      limit(stats, options.memory_limit),
      pool(limit, options.pool) {
  if (options.wrap_pool) {
    wrapper = options.wrap_pool(pool);
    TABULA_EXPECT(wrapper != nullptr && wrapper->device() == device, InvalidArgument,
                  "SessionOptions::wrap_pool of session '" << options.name << "'",
                  "a resource on " << device.str(),
                  (wrapper ? wrapper->device().str() : std::string("none")));
  }
}

SessionCore::SessionCore(SessionOptions options)
    : options_(std::move(options)), rng_(initial_seed(options_)) {}

SessionCore::~SessionCore() {
  clear();
  detach();
}

void SessionCore::detach() noexcept {
  std::lock_guard lock(mutex_);
  if (!attached_) return;
  attached_ = false;
  SessionList::instance().remove(this);
}

// ---- allocation -------------------------------------------------------------------------

SessionCore::DevicePool& SessionCore::pool_for(Device device) {
  if (!attached_) {
    SessionList::instance().add(shared_from_this());
    attached_ = true;
  }
  auto it = pools_.find(device);
  if (it == pools_.end()) {
    // Made before it is inserted: a device that cannot be used (no CUDA) leaves no entry.
    SessionList::instance().ensure_ledger(device);
    auto pool = std::make_unique<DevicePool>(device, options_);
    it = pools_.emplace(device, std::move(pool)).first;
  }
  return *it->second;
}

SessionCore::DevicePool* SessionCore::find_pool(Device device) const noexcept {
  auto it = pools_.find(device);
  return it == pools_.end() ? nullptr : it->second.get();
}

namespace {

// What every buffer on `device` is aligned to. On a GPU, what cudaMalloc itself gives: cuBLAS
// refuses a workspace that is not 256-byte aligned (cublasSetWorkspace), and cuBLAS and cuDNN
// choose their vectorised kernels by the alignment of the operands.
std::size_t alignment_on(Device device) noexcept {
  return device.is_cuda() ? std::size_t{256} : MemoryResource::kDefaultAlignment;
}

}  // namespace

void* SessionCore::allocate_locked(std::unique_lock<std::mutex>& lock, DevicePool& dp,
                                   std::size_t bytes, Device device, Category category,
                                   std::string_view name) {
  const std::size_t alignment = alignment_on(device);
  try {
    return dp.front().allocate(bytes, alignment);
  } catch (const OutOfMemory&) {
    // The pool already gave back its own free segments and retried. Other sessions on the
    // device may be caching what the OS or driver needs; ask them, then try once more.
    // Our lock is dropped meanwhile: taking another session's lock while holding ours could
    // deadlock with that session doing the same.
    lock.unlock();
    for (const auto& other : SessionList::instance().snapshot())
      if (other.get() != this) other->release_cached(device);
    lock.lock();
    try {
      return dp.front().allocate(bytes, alignment);
    } catch (const OutOfMemory& second) {
      throw OutOfMemory(out_of_memory_message(bytes, device, category, name, second.what()), bytes,
                        options_.memory_limit);
    }
  }
}

void SessionCore::count_locked(DevicePool& dp, Device device, Category category,
                               std::size_t bytes) noexcept {
  const std::size_t accounted = PoolResource::block_size(bytes);
  dp.current[category] += accounted;
  dp.peak_by_category[category] = std::max(dp.peak_by_category[category], dp.current[category]);
  dp.peak = std::max(dp.peak, dp.current.total());
  SessionList::instance().add_bytes(device, accounted);
}

void SessionCore::uncount_locked(DevicePool& dp, Device device, Category category,
                                 std::size_t bytes) noexcept {
  const std::size_t accounted = PoolResource::block_size(bytes);
  dp.current[category] -= accounted;
  SessionList::instance().sub_bytes(device, accounted);
}

std::shared_ptr<Storage> SessionCore::allocate(std::size_t bytes, Device device, Category category,
                                               std::string_view name_prefix) {
  std::unique_lock lock(mutex_);
  DevicePool& dp = pool_for(device);
  void* data = allocate_locked(lock, dp, bytes, device, category, name_prefix);
  std::shared_ptr<Storage> storage;
  try {
    storage = std::make_shared<Storage>(shared_from_this(), data, bytes, device, category,
                                        names_.next(name_prefix));
  } catch (...) {
    dp.front().deallocate(data, bytes, alignment_on(device));
    throw;
  }
  count_locked(dp, device, category, bytes);
  register_locked(*storage);
  return storage;
}

void* SessionCore::allocate_scratch(std::size_t bytes, Device device) {
  std::unique_lock lock(mutex_);
  DevicePool& dp = pool_for(device);
  void* data = allocate_locked(lock, dp, bytes, device, Category::workspace, "kernel scratch");
  count_locked(dp, device, Category::workspace, bytes);
  return data;
}

void SessionCore::release_scratch(void* data, std::size_t bytes, Device device) noexcept {
  std::lock_guard lock(mutex_);
  DevicePool* dp = find_pool(device);
  if (dp == nullptr || data == nullptr) return;
  dp->front().deallocate(data, bytes, alignment_on(device));
  uncount_locked(*dp, device, Category::workspace, bytes);
}

void SessionCore::release(Storage& storage) noexcept {
  std::lock_guard lock(mutex_);
  release_locked(storage);
}

void SessionCore::release_locked(Storage& storage) noexcept {
  // A stale storage gave its bytes back when the session was cleared.
  if (storage.stale()) return;
  DevicePool* dp = find_pool(storage.device());
  void* data = storage.take_data();
  unregister_locked(storage);
  if (dp == nullptr || data == nullptr) return;
  dp->front().deallocate(data, storage.nbytes(), alignment_on(storage.device()));
  uncount_locked(*dp, storage.device(), storage.category(), storage.nbytes());
}

// ---- registry ---------------------------------------------------------------------------

void SessionCore::register_locked(Tracked& object) noexcept {
  object.registry_prev_ = registry_tail_;
  object.registry_next_ = nullptr;
  if (registry_tail_ != nullptr) registry_tail_->registry_next_ = &object;
  else registry_head_ = &object;
  registry_tail_ = &object;
  ++registry_size_;
}

void SessionCore::unregister_locked(Tracked& object) noexcept {
  if (object.registry_prev_ == nullptr && registry_head_ != &object) return;  // not listed
  if (object.registry_prev_ != nullptr) object.registry_prev_->registry_next_ = object.registry_next_;
  else registry_head_ = object.registry_next_;
  if (object.registry_next_ != nullptr) object.registry_next_->registry_prev_ = object.registry_prev_;
  else registry_tail_ = object.registry_prev_;
  object.registry_prev_ = object.registry_next_ = nullptr;
  --registry_size_;
}

void SessionCore::track(Tracked& object) {
  std::lock_guard lock(mutex_);
  register_locked(object);
}

void SessionCore::untrack(Tracked& object) noexcept {
  std::lock_guard lock(mutex_);
  unregister_locked(object);
}

std::vector<LiveObject> SessionCore::live_objects() const {
  std::lock_guard lock(mutex_);
  std::vector<LiveObject> rows;
  rows.reserve(registry_size_);
  for (const Tracked* t = registry_head_; t != nullptr; t = t->registry_next_)
    rows.push_back(t->describe());
  return rows;
}

// ---- clearing ---------------------------------------------------------------------------

void SessionCore::clear() noexcept {
  if (SessionUse::held_by_this_thread(*this)) {
    clear_deferred_.store(true);
    return;
  }
  std::unique_lock in_flight(use_mutex_);  // waits for operations of other threads
  clear_now();
}

void SessionCore::end_use() noexcept {
  use_mutex_.unlock_shared();
  if (clear_deferred_.exchange(false)) clear();
}

DeviceContext& SessionCore::device_context(Device device, DeviceContextFactory make) {
  std::lock_guard lock(contexts_mutex_);
  for (const ContextEntry& entry : contexts_)
    if (entry.device == device && entry.make == make) return *entry.context;
  std::unique_ptr<DeviceContext> made = make(*this, device);
  contexts_.push_back({device, make, std::move(made)});
  return *contexts_.back().context;
}

void SessionCore::clear_now() noexcept {
  {
    // Library handles go first, while the memory they work in is still the session's; their
    // buffers go back to the pool through the usual release (the session lock is not held).
    std::vector<ContextEntry> contexts;
    {
      std::lock_guard lock(contexts_mutex_);
      contexts.swap(contexts_);
    }
    while (!contexts.empty()) contexts.pop_back();  // the latest first: it may use an earlier one
  }
  {
    std::lock_guard lock(mutex_);
    // invalidate() unlinks the object, so always take the head.
    while (registry_head_ != nullptr) {
      Tracked* object = registry_head_;
      object->invalidate();
      if (registry_head_ == object) unregister_locked(*object);
    }
    for (auto& [device, dp] : pools_) dp->pool.release();
    names_.reset();
    ++clear_count_;
  }
#ifdef __GLIBC__
  // The pools' memory went back with munmap; the bookkeeping (block records, maps, names,
  // models' small objects) lived on glibc's heap, which keeps freed pages. Without this, RSS
  // creeps up ~20 KB per build/fit/clear cycle (bench/memory_bench: 3.7 MiB over 100 cycles,
  // 4 KiB with it).
  malloc_trim(0);
#endif
}

std::size_t SessionCore::clear_count() const noexcept {
  std::lock_guard lock(mutex_);
  return clear_count_;
}

// ---- figures ----------------------------------------------------------------------------

MemoryInfo SessionCore::memory_info(Device device) const {
  std::lock_guard lock(mutex_);
  MemoryInfo info;
  info.device = device;
  info.limit = options_.memory_limit;
  for (const Tracked* t = registry_head_; t != nullptr; t = t->registry_next_)
    if (t->describe().device == device) ++info.live_objects;
  const DevicePool* dp = find_pool(device);
  if (dp == nullptr) return info;
  const PoolStats stats = dp->pool.stats();
  info.current = stats.current;
  info.peak = dp->peak;
  info.reserved = stats.reserved;
  info.by_category = dp->current;
  info.peak_by_category = dp->peak_by_category;
  info.allocations = stats.allocations;
  info.upstream_allocations = stats.upstream_allocations;
  return info;
}

void SessionCore::reset_peak(Device device) noexcept {
  std::lock_guard lock(mutex_);
  if (DevicePool* dp = find_pool(device)) {
    dp->peak = dp->current.total();
    dp->peak_by_category = dp->current;
    dp->pool.reset_peak();
  }
}

void SessionCore::reset_peak_all() noexcept {
  std::vector<Device> devices;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [device, dp] : pools_) devices.push_back(device);
  }
  for (Device d : devices) reset_peak(d);
}

std::size_t SessionCore::release_cached(Device device) noexcept {
  std::lock_guard lock(mutex_);
  DevicePool* dp = find_pool(device);
  return dp == nullptr ? 0 : dp->pool.release();
}

std::size_t SessionCore::release_cached_all() noexcept {
  std::lock_guard lock(mutex_);
  std::size_t released = 0;
  for (auto& [device, dp] : pools_) released += dp->pool.release();
  return released;
}

std::string SessionCore::out_of_memory_message(std::size_t bytes, Device device,
                                               Category category, std::string_view name,
                                               const std::string& cause) const {
  std::string m = "out of memory on " + device.str() + " in session '" + options_.name +
                  "': cannot allocate " + format_bytes(bytes) + " (" + std::to_string(bytes) +
                  " bytes) for " + std::string(name_of(category)) + " '" + std::string(name) +
                  "'; limit ";
  m += options_.memory_limit ? format_bytes(options_.memory_limit) + " (" +
                                   std::to_string(options_.memory_limit) + " bytes)"
                             : std::string("none");
  const DevicePool* dp = find_pool(device);
  const CategoryBytes in_use = dp ? dp->current : CategoryBytes{};
  m += "; in use " + format_bytes(in_use.total()) + ":";
  for (Category c : kAllCategories)
    m += std::string(" ") + std::string(name_of(c)) + " " + format_bytes(in_use[c]) +
         (c == Category::other ? "" : ",");
  if (dp) m += "; reserved " + format_bytes(dp->pool.stats().reserved);
  std::vector<LiveObject> holders;
  for (const Tracked* t = registry_head_; t != nullptr; t = t->registry_next_) {
    LiveObject row = t->describe();
    if (row.device == device) holders.push_back(std::move(row));
  }
  constexpr std::size_t kShown = 5;
  std::partial_sort(holders.begin(), holders.begin() + std::min(kShown, holders.size()),
                    holders.end(),
                    [](const LiveObject& a, const LiveObject& b) { return a.bytes > b.bytes; });
  m += "; largest holders:";
  if (holders.empty()) m += " none";
  for (std::size_t i = 0; i < std::min(kShown, holders.size()); ++i)
    m += std::string(i ? ", " : " ") + holders[i].name + " (" +
         std::string(name_of(holders[i].category)) + ", " + format_bytes(holders[i].bytes) + ")";
  m += "; cause: " + cause;
  return m;
}

// ---- names and randomness ---------------------------------------------------------------

std::string SessionCore::unique_name(std::string_view prefix) {
  std::lock_guard lock(mutex_);
  return names_.next(prefix);
}

void SessionCore::set_seed(std::uint64_t seed) {
  std::lock_guard lock(mutex_);
  rng_.seed(seed);
}

// ---- the list of sessions ---------------------------------------------------------------

SessionList& SessionList::instance() noexcept {
  // Never destroyed: sessions and stale handles may outlive any static destructor order.
  static SessionList* list = new SessionList;
  return *list;
}

void SessionList::add(const std::shared_ptr<SessionCore>& core) {
  std::lock_guard lock(mutex_);
  sessions_.push_back(core);
}

void SessionList::remove(const SessionCore* core) noexcept {
  std::lock_guard lock(mutex_);
  std::erase_if(sessions_, [core](const std::weak_ptr<SessionCore>& w) {
    auto s = w.lock();
    return s == nullptr || s.get() == core;
  });
}

std::vector<std::shared_ptr<SessionCore>> SessionList::snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<SessionCore>> out;
  for (const auto& w : sessions_)
    if (auto s = w.lock()) out.push_back(std::move(s));
  return out;
}

void SessionList::ensure_ledger(Device device) {
  std::lock_guard lock(mutex_);
  ledgers_[device];
}

void SessionList::add_bytes(Device device, std::size_t bytes) noexcept {
  std::lock_guard lock(mutex_);
  Ledger& l = ledgers_.find(device)->second;
  l.current += bytes;
  l.peak = std::max(l.peak, l.current);
}

void SessionList::sub_bytes(Device device, std::size_t bytes) noexcept {
  std::lock_guard lock(mutex_);
  ledgers_.find(device)->second.current -= bytes;
}

std::size_t SessionList::device_peak(Device device) const noexcept {
  std::lock_guard lock(mutex_);
  auto it = ledgers_.find(device);
  return it == ledgers_.end() ? 0 : it->second.peak;
}

void SessionList::reset_device_peak(Device device) noexcept {
  std::lock_guard lock(mutex_);
  auto it = ledgers_.find(device);
  if (it != ledgers_.end()) it->second.peak = it->second.current;
}

std::optional<std::uint64_t> SessionList::default_seed() const {
  std::lock_guard lock(mutex_);
  return default_seed_;
}

void SessionList::set_default_seed(std::uint64_t seed) {
  std::lock_guard lock(mutex_);
  default_seed_ = seed;
}

}  // namespace tabula::detail
