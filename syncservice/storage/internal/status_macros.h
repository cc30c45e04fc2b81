// File: syncservice/storage/internal/status_macros.h
//
// Early-return helpers for absl::Status code (Abseil 20220623 has no
// status_macros.h). Private to syncservice/storage; prefixed so they never
// clash with a later absl or project-wide version.

#ifndef JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_STATUS_MACROS_H_
#define JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns the status of `expr` (an absl::Status) from the enclosing function
// if it is not OK.
#define STORAGE_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::absl::Status storage_status_ = (expr);           \
    if (!storage_status_.ok()) return storage_status_; \
  } while (false)

// `lhs = std::move(value)` of the absl::StatusOr `expr`, or returns its
// status from the enclosing function. `lhs` may declare a variable.
#define STORAGE_ASSIGN_OR_RETURN(lhs, expr) \
  STORAGE_ASSIGN_OR_RETURN_IMPL_(           \
      STORAGE_STATUS_CONCAT_(storage_statusor_, __LINE__), lhs, expr)

#define STORAGE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = std::move(*statusor)

#define STORAGE_STATUS_CONCAT_INNER_(a, b) a##b
#define STORAGE_STATUS_CONCAT_(a, b) STORAGE_STATUS_CONCAT_INNER_(a, b)

#endif  // JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_STATUS_MACROS_H_
