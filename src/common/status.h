// Status and Result: how errors cross module boundaries in Quell. No exception crosses a
// module boundary; a function that can fail returns Status (no value) or Result<T>.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace quell {

// Codes are coarse on purpose: they decide what a caller does (retry, report to the user,
// give up), and they map one-to-one onto HTTP statuses at the REST edge.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong; retrying the same input will not help
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,  // the system is not in a state that allows this, e.g. action in progress
  kPermissionDenied,
  kUnauthenticated,
  kResourceExhausted,   // a limit was hit: body size, queue depth, disk
  kUnavailable,         // transient; retry later
  kDeadlineExceeded,
  kCancelled,
  kInternal,            // a bug or an environment error we could not classify
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy with "context: " prepended to the message, for adding where an error
  // happened as it travels up.
  Status WithContext(std::string_view context) const;

  // "InvalidArgument: message", or "OK".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
inline Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
inline Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Maps an errno value to a Status, the one place where that mapping lives.
// `what` names the operation, e.g. "open /var/lib/quell/state.json".
Status ErrnoStatus(std::string_view what, int err = errno);

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : v_(std::move(status)) {}  // NOLINT; REQUIRES: !status.ok()

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace quell

// Returns early from the enclosing function when `expr` (a Status) is not ok.
#define QUELL_RETURN_IF_ERROR(expr)            \
  do {                                         \
    ::quell::Status quell_status_ = (expr);    \
    if (!quell_status_.ok()) return quell_status_; \
  } while (0)

#define QUELL_CONCAT_INNER_(a, b) a##b
#define QUELL_CONCAT_(a, b) QUELL_CONCAT_INNER_(a, b)

// Assigns the value of `rexpr` (a Result<T>) to `lhs`, or returns its Status.
#define QUELL_ASSIGN_OR_RETURN(lhs, rexpr) \
  QUELL_ASSIGN_OR_RETURN_IMPL_(QUELL_CONCAT_(quell_result_, __LINE__), lhs, rexpr)
#define QUELL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                 \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
