#pragma once
/// @file
/// Everything a user of tabula needs: `#include <tabula/tabula.hpp>`.

#include "tabula/config.hpp"
#include "tabula/core/device.hpp"
#include "tabula/core/dtype.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/core/shape.hpp"
#include "tabula/core/tensor.hpp"
#include "tabula/memory/category.hpp"
#include "tabula/memory/cuda_resource.hpp"
#include "tabula/memory/host_resource.hpp"
#include "tabula/memory/limit_adaptor.hpp"
#include "tabula/memory/memory_info.hpp"
#include "tabula/memory/memory_resource.hpp"
#include "tabula/memory/pool_resource.hpp"
#include "tabula/memory/stats_adaptor.hpp"
#include "tabula/session/live_object.hpp"
#include "tabula/session/name_uniquifier.hpp"
#include "tabula/session/random_generator.hpp"
#include "tabula/session/session.hpp"
#include "tabula/session/session_scope.hpp"
