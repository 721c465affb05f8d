#pragma once
// An open-addressing hash map from addresses to block records, for the pool's hot path.
//
// std::unordered_map allocates a node per insertion; a pool that answers in tens of
// nanoseconds cannot afford that. Linear probing with Fibonacci hashing and backward-shift
// deletion (no tombstones) keeps every operation a few cache lines. Not thread-safe: the
// owning pool holds its lock around every call.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tabula::detail {

template <typename Value>
class PointerMap {
 public:
  std::size_t size() const noexcept { return size_; }

  /// Makes room so that the next `insert` cannot allocate (and so cannot throw).
  void reserve_one_more() {
    if ((size_ + 1) * 2 > slots_.size()) grow();
  }

  /// Inserts `key` (non-null, not present).
  void insert(const void* key, Value value) {
    reserve_one_more();
    std::size_t i = home(key);
    while (slots_[i].key != nullptr) i = (i + 1) & mask_;
    slots_[i] = {key, value};
    ++size_;
  }

  /// The value stored under `key`, or a value-initialised one when absent.
  Value find(const void* key) const noexcept {
    if (slots_.empty()) return Value{};
    for (std::size_t i = home(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return slots_[i].value;
      if (slots_[i].key == nullptr) return Value{};
    }
  }

  /// Removes `key` and returns its value, or a value-initialised one when absent.
  Value erase(const void* key) noexcept {
    if (slots_.empty()) return Value{};
    std::size_t i = home(key);
    while (slots_[i].key != key) {
      if (slots_[i].key == nullptr) return Value{};
      i = (i + 1) & mask_;
    }
    const Value value = slots_[i].value;
    // Shift later members of the probe run back into the hole while that keeps them reachable.
    for (std::size_t j = (i + 1) & mask_; slots_[j].key != nullptr; j = (j + 1) & mask_) {
      const std::size_t k = home(slots_[j].key);
      if (((j - k) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    --size_;
    return value;
  }

  /// Drops every entry and the table's memory.
  void clear_and_shrink() noexcept {
    std::vector<Slot>().swap(slots_);
    size_ = 0;
    mask_ = 0;
    shift_ = 64;
  }

  template <typename F>
  void for_each(F&& f) const {
    for (const Slot& s : slots_)
      if (s.key != nullptr) f(s.key, s.value);
  }

 private:
  struct Slot {
    const void* key = nullptr;
    Value value{};
  };

  std::size_t home(const void* key) const noexcept {
    const auto h = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(key) >> 6);
    return static_cast<std::size_t>((h * 0x9E3779B97F4A7C15ull) >> shift_);
  }

  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    const std::size_t capacity = old.empty() ? 64 : old.size() * 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
    size_ = 0;
    for (const Slot& s : old)
      if (s.key != nullptr) insert(s.key, s.value);
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
  unsigned shift_ = 64;
};

}  // namespace tabula::detail
