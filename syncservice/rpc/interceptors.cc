#include "syncservice/rpc/interceptors.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/file_util.h"
#include "common/logging.h"

namespace jetstream {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::InterceptorBatchMethods;

class HookIdentityInterceptor : public grpc::experimental::Interceptor {
 public:
  HookIdentityInterceptor(std::string method, const std::string& hook)
      : method_(std::move(method)), hook_(hook) {}

  void Intercept(InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      start_ = absl::Now();
      // Tells the hook who calls (for its own logs).
      methods->GetSendInitialMetadata()->emplace("x-jetstream-hook", hook_);
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_STATUS)) {
      const grpc::Status* status = methods->GetRecvStatus();
      VLOG(1) << "hook call hook=" << hook_ << " method=" << method_
              << " code=" << status->error_code()
              << " latency=" << absl::FormatDuration(absl::Now() - start_);
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  const std::string hook_;
  absl::Time start_ = absl::Now();
};

}  // namespace

grpc::experimental::Interceptor*
HookIdentityInterceptorFactory::CreateClientInterceptor(
    grpc::experimental::ClientRpcInfo* info) {
  return new HookIdentityInterceptor(info->method(), hook_);
}

absl::StatusOr<std::set<std::string>> LoadTokensFile(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFileToString(path, "tokens file");
  if (!contents.ok()) return contents.status();
  std::set<std::string> tokens;
  for (absl::string_view line : absl::StrSplit(*contents, '\n')) {
    absl::string_view token = absl::StripAsciiWhitespace(line);
    if (token.empty() || absl::StartsWith(token, "#")) continue;
    tokens.emplace(token);
  }
  if (tokens.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokens file '", path, "' holds no token"));
  }
  return tokens;
}

absl::Status CallAuthenticator::Check(const InputMetadata& metadata,
                                      absl::string_view peer) {
  if (options_.tokens.empty()) return absl::OkStatus();
  auto it = metadata.find("authorization");
  absl::Status refused;
  if (it == metadata.end()) {
    refused = absl::UnauthenticatedError("missing bearer token");
  } else {
    absl::string_view value(it->second.data(), it->second.size());
    constexpr absl::string_view kBearer = "Bearer ";
    if (!absl::StartsWithIgnoreCase(value, kBearer)) {
      refused =
          absl::UnauthenticatedError("authorization is not a bearer token");
    } else if (options_.tokens.count(
                   std::string(value.substr(kBearer.size()))) == 0) {
      refused = absl::UnauthenticatedError("unknown bearer token");
    } else {
      return absl::OkStatus();
    }
  }
  {
    absl::MutexLock lock(&mu_);
    ++refused_;
  }
  LOG(WARNING) << "refused call from " << peer << ": " << refused.message();
  return refused;
}

grpc::Status CallAuthenticator::Process(const InputMetadata& auth_metadata,
                                        grpc::AuthContext* context,
                                        OutputMetadata* consumed_auth_metadata,
                                        OutputMetadata* /*response_metadata*/) {
  // The TLS peer's certificate name when it presented one (mTLS).
  std::string peer = "a TLS client without certificate";
  if (context != nullptr) {
    for (const grpc::string_ref& name :
         context->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
      peer = absl::StrCat("CN=", absl::string_view(name.data(), name.size()));
    }
  }
  absl::Status status = Check(auth_metadata, peer);
  if (!status.ok()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        std::string(status.message()));
  }
  auto it = auth_metadata.find("authorization");
  if (it != auth_metadata.end()) {
    consumed_auth_metadata->emplace(
        "authorization", std::string(it->second.data(), it->second.size()));
  }
  return grpc::Status::OK;
}

uint64_t CallAuthenticator::refused() const {
  absl::MutexLock lock(&mu_);
  return refused_;
}

}  // namespace jetstream
