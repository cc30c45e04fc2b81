// File: tests/testing/fake_validator.h
//
// FakeValidator: a ChangesetValidator (syncservice/core/commit_stages.h) for
// unit tests of the commit pipeline. It sees every changeset (or those that
// `applies` accepts), records each Validate() call, and completes it either
// inline with a fixed outcome (set_inline_outcome) or later, when the test
// calls Complete() / CompleteAll(), from the test's thread, as a remote
// validator answering on its own thread would.
//
// Example:
//   FakeValidator validator;
//   options.validator = &validator;
//   host->Apply(changeset, context, done);   // waits in the validate stage
//   validator.CompleteAll(ValidationOutcome{});  // now it is applied
//
// Thread-safety: thread-safe.

#ifndef JETSTREAM_TESTS_TESTING_FAKE_VALIDATOR_H_
#define JETSTREAM_TESTS_TESTING_FAKE_VALIDATOR_H_

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "syncservice/core/commit_stages.h"

namespace jetstream::testing {

class FakeValidator : public ChangesetValidator {
 public:
  // One Validate() call as the pipeline made it.
  struct Call {
    std::string scope;
    Changeset changeset;
    ChangesetContext context;
    std::vector<ObjectSnapshot> current;
  };

  // Completes every later call inline with `outcome`; nullopt (the
  // default) holds calls until Complete().
  void set_inline_outcome(std::optional<ValidationOutcome> outcome) {
    absl::MutexLock lock(&mu_);
    inline_outcome_ = std::move(outcome);
  }

  // ChangesetValidator
  bool Applies(const std::string&, const Changeset&,
               const ChangesetContext&) const override {
    return true;
  }
  void Validate(const std::string& scope, const Changeset& changeset,
                const ChangesetContext& context,
                std::vector<ObjectSnapshot> current,
                std::function<void(ValidationOutcome)> done) override {
    std::optional<ValidationOutcome> now;
    {
      absl::MutexLock lock(&mu_);
      calls_.push_back(Call{scope, changeset, context, std::move(current)});
      if (inline_outcome_.has_value()) {
        now = inline_outcome_;
      } else {
        held_.push_back(std::move(done));
      }
    }
    if (now.has_value()) done(*std::move(now));
  }

  // Completes the oldest held call with `outcome`; false if none is held.
  bool Complete(ValidationOutcome outcome) {
    std::function<void(ValidationOutcome)> done;
    {
      absl::MutexLock lock(&mu_);
      if (held_.empty()) return false;
      done = std::move(held_.front());
      held_.pop_front();
    }
    done(std::move(outcome));
    return true;
  }
  // Completes every held call, oldest first, including calls that the
  // completions start.
  void CompleteAll(const ValidationOutcome& outcome) {
    while (Complete(outcome)) {
    }
  }

  size_t held() const {
    absl::MutexLock lock(&mu_);
    return held_.size();
  }
  std::vector<Call> calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  mutable absl::Mutex mu_;
  std::optional<ValidationOutcome> inline_outcome_ ABSL_GUARDED_BY(mu_);
  std::deque<std::function<void(ValidationOutcome)>> held_ ABSL_GUARDED_BY(mu_);
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_TESTING_FAKE_VALIDATOR_H_
