#pragma once
/// @file
/// Keras-style unique names: "dense", "dense_1", "dense_2", ...

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tabula {

/// @brief Hands out names unique per prefix, the way Keras names layers and models: the first
/// request for "dense" gets "dense", later ones "dense_1", "dense_2", ... `reset()` starts
/// over (clearing a session does this). Not thread-safe; a session guards it with its lock.
class NameUniquifier {
 public:
  std::string next(std::string_view prefix);
  void reset() noexcept { counts_.clear(); }

 private:
  std::unordered_map<std::string, std::size_t> counts_;
};

}  // namespace tabula
