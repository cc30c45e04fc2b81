// GoogleTest matchers and macros for absl::Status and absl::StatusOr (and
// grpc::Status), so a failing assertion prints the status it got rather than
// "false".
//
//   EXPECT_OK(store->Append(...));
//   ASSERT_OK_AND_ASSIGN(auto scope, registry.Load("a"));
//   EXPECT_THAT(result, StatusIs(absl::StatusCode::kNotFound));
//   EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument,
//                                HasSubstr("postedAt")));
//   EXPECT_THAT(version_or, IsOkAndHolds(7));
#ifndef JETSTREAM_TESTS_TESTING_STATUS_MATCHERS_H_
#define JETSTREAM_TESTS_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jetstream::testing {
namespace internal {

inline const absl::Status& GetStatus(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}
// grpc::Status (and any status type with error_code() and error_message()),
// without a dependency on gRPC: its codes are absl's.
template <typename GrpcStatus>
auto GetStatus(const GrpcStatus& status)
    -> decltype(status.error_code(), status.error_message(), absl::Status()) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

// Matches a Status or StatusOr whose code is `code` and whose message
// matches `message` (any message by default).
class StatusIsMatcher {
 public:
  StatusIsMatcher(absl::StatusCode code,
                  ::testing::Matcher<const std::string&> message)
      : code_(code), message_(std::move(message)) {}

  template <typename StatusType>
  bool MatchAndExplain(const StatusType& actual,
                       ::testing::MatchResultListener* listener) const {
    const absl::Status& status = GetStatus(actual);
    *listener << "whose status is " << status;
    if (status.code() != code_) return false;
    return message_.Matches(std::string(status.message()));
  }
  void DescribeTo(std::ostream* os) const {
    *os << "has status code " << absl::StatusCodeToString(code_)
        << " and a message that ";
    message_.DescribeTo(os);
  }
  void DescribeNegationTo(std::ostream* os) const {
    *os << "does not have status code " << absl::StatusCodeToString(code_)
        << " or has a message that ";
    message_.DescribeNegationTo(os);
  }

 private:
  absl::StatusCode code_;
  ::testing::Matcher<const std::string&> message_;
};

class IsOkMatcher {
 public:
  template <typename StatusType>
  bool MatchAndExplain(const StatusType& actual,
                       ::testing::MatchResultListener* listener) const {
    const absl::Status& status = GetStatus(actual);
    if (!status.ok()) *listener << "whose status is " << status;
    return status.ok();
  }
  void DescribeTo(std::ostream* os) const { *os << "is OK"; }
  void DescribeNegationTo(std::ostream* os) const { *os << "is not OK"; }
};

// Matches an OK StatusOr<T> whose value matches an inner matcher.
template <typename T>
class IsOkAndHoldsMatcherImpl
    : public ::testing::MatcherInterface<const absl::StatusOr<T>&> {
 public:
  template <typename InnerMatcher>
  explicit IsOkAndHoldsMatcherImpl(InnerMatcher&& inner)
      : inner_(::testing::SafeMatcherCast<const T&>(
            std::forward<InnerMatcher>(inner))) {}

  bool MatchAndExplain(
      const absl::StatusOr<T>& actual,
      ::testing::MatchResultListener* listener) const override {
    if (!actual.ok()) {
      *listener << "whose status is " << actual.status();
      return false;
    }
    ::testing::StringMatchResultListener inner_listener;
    const bool matches = inner_.MatchAndExplain(*actual, &inner_listener);
    *listener << "whose value " << ::testing::PrintToString(*actual)
              << (matches ? " matches" : " does not match");
    if (!inner_listener.str().empty())
      *listener << ", " << inner_listener.str();
    return matches;
  }
  void DescribeTo(std::ostream* os) const override {
    *os << "is OK and has a value that ";
    inner_.DescribeTo(os);
  }
  void DescribeNegationTo(std::ostream* os) const override {
    *os << "is not OK or has a value that ";
    inner_.DescribeNegationTo(os);
  }

 private:
  ::testing::Matcher<const T&> inner_;
};

template <typename InnerMatcher>
class IsOkAndHoldsMatcher {
 public:
  explicit IsOkAndHoldsMatcher(InnerMatcher inner) : inner_(std::move(inner)) {}

  template <typename StatusOrType>
  operator ::testing::Matcher<StatusOrType>() const {  // NOLINT
    using Value = typename std::decay_t<StatusOrType>::value_type;
    return ::testing::Matcher<StatusOrType>(
        new IsOkAndHoldsMatcherImpl<Value>(inner_));
  }

 private:
  InnerMatcher inner_;
};

}  // namespace internal

// OK status, or a StatusOr holding a value.
inline ::testing::PolymorphicMatcher<internal::IsOkMatcher> IsOk() {
  return ::testing::MakePolymorphicMatcher(internal::IsOkMatcher());
}

inline ::testing::PolymorphicMatcher<internal::StatusIsMatcher> StatusIs(
    absl::StatusCode code,
    ::testing::Matcher<const std::string&> message = ::testing::_) {
  return ::testing::MakePolymorphicMatcher(
      internal::StatusIsMatcher(code, std::move(message)));
}

template <typename InnerMatcher>
internal::IsOkAndHoldsMatcher<std::decay_t<InnerMatcher>> IsOkAndHolds(
    InnerMatcher&& inner) {
  return internal::IsOkAndHoldsMatcher<std::decay_t<InnerMatcher>>(
      std::forward<InnerMatcher>(inner));
}

}  // namespace jetstream::testing

#define EXPECT_OK(expression) \
  EXPECT_THAT(expression, ::jetstream::testing::IsOk())
#define ASSERT_OK(expression) \
  ASSERT_THAT(expression, ::jetstream::testing::IsOk())

#define JETSTREAM_STATUS_MATCHERS_CONCAT_INNER(a, b) a##b
#define JETSTREAM_STATUS_MATCHERS_CONCAT(a, b) \
  JETSTREAM_STATUS_MATCHERS_CONCAT_INNER(a, b)

// ASSERT_OK_AND_ASSIGN(lhs, expression): asserts `expression` (a StatusOr)
// is OK, then moves its value into `lhs`, which may declare a variable.
#define ASSERT_OK_AND_ASSIGN(lhs, expression)                            \
  ASSERT_OK_AND_ASSIGN_IMPL(                                             \
      JETSTREAM_STATUS_MATCHERS_CONCAT(status_or_value_, __LINE__), lhs, \
      expression)
#define ASSERT_OK_AND_ASSIGN_IMPL(status_or, lhs, expression) \
  auto status_or = (expression);                              \
  ASSERT_OK(status_or.status());                              \
  lhs = std::move(status_or).value()

#endif  // JETSTREAM_TESTS_TESTING_STATUS_MATCHERS_H_
