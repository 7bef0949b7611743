// Status propagation helpers. Bookworm's Abseil (20220623) ships no status macros, so the
// project defines its own here, once. Usable from any thread.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CTSYNC_CONCAT_INNER_(a, b) a##b
#define CTSYNC_CONCAT_(a, b) CTSYNC_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status ctsync_status_ = (expr);          \
    if (!ctsync_status_.ok()) return ctsync_status_; \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates an absl::StatusOr<T>; on error returns its status,
// otherwise moves the value into `lhs` (which may be a declaration, e.g. `auto x`).
#define ASSIGN_OR_RETURN(lhs, expr) \
  CTSYNC_ASSIGN_OR_RETURN_IMPL_(CTSYNC_CONCAT_(ctsync_statusor_, __LINE__), lhs, expr)
#define CTSYNC_ASSIGN_OR_RETURN_IMPL_(var, lhs, expr) \
  auto var = (expr);                                  \
  if (!var.ok()) return std::move(var).status();      \
  lhs = std::move(var).value()
