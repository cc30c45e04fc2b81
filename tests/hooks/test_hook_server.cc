#include "tests/hooks/test_hook_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/json.h"

namespace jetstream::testing {

namespace v1 = hooks::v1;

class TestHookServer::Impl final : public v1::SessionAuthorizer::Service,
                                   public v1::ScopeAuthorizer::Service,
                                   public v1::ChangesetValidator::Service,
                                   public v1::ProcedureHandler::Service {
 public:
  grpc::Status AuthorizeSession(
      grpc::ServerContext*, const v1::AuthorizeSessionRequest* request,
      v1::AuthorizeSessionResponse* response) override {
    SessionHandler h;
    {
      absl::MutexLock lock(&mu_);
      sessions_.push_back(*request);
      h = session_;
    }
    return h(*request, response);
  }
  grpc::Status AuthorizeScope(grpc::ServerContext*,
                              const v1::AuthorizeScopeRequest* request,
                              v1::AuthorizeScopeResponse* response) override {
    ScopeHandler h;
    {
      absl::MutexLock lock(&mu_);
      scopes_.push_back(*request);
      h = scope_;
    }
    return h(*request, response);
  }
  grpc::Status ValidateChangeset(
      grpc::ServerContext* context, const v1::ValidateChangesetRequest* request,
      v1::ValidateChangesetResponse* response) override {
    ValidateHandler h;
    {
      absl::MutexLock lock(&mu_);
      validates_.push_back(*request);
      validate_deadlines_.push_back(absl::FromChrono(context->deadline()));
      auto trace = context->client_metadata().find("traceparent");
      validate_traceparents_.push_back(
          trace == context->client_metadata().end()
              ? std::string()
              : std::string(trace->second.data(), trace->second.size()));
      h = validate_;
    }
    return h(*request, response);
  }
  grpc::Status RunProcedure(grpc::ServerContext*,
                            const v1::RunProcedureRequest* request,
                            v1::RunProcedureResponse* response) override {
    ProcedureHandler h;
    {
      absl::MutexLock lock(&mu_);
      procedures_.push_back(*request);
      h = procedure_;
    }
    return h(*request, response);
  }

  mutable absl::Mutex mu_;
  SessionHandler session_ ABSL_GUARDED_BY(mu_) =
      [](const v1::AuthorizeSessionRequest& request,
         v1::AuthorizeSessionResponse* response) {
        response->set_allow(true);
        JsonDocument doc;
        if (ParseJson(request.params_json(), doc).ok() && doc.IsObject() &&
            doc.HasMember("user") && doc["user"].IsString()) {
          response->mutable_principal()->set_identity(doc["user"].GetString());
        }
        return grpc::Status::OK;
      };
  ScopeHandler scope_ ABSL_GUARDED_BY(mu_) =
      [](const v1::AuthorizeScopeRequest&, v1::AuthorizeScopeResponse* r) {
        r->set_access(v1::AuthorizeScopeResponse::READ_WRITE);
        return grpc::Status::OK;
      };
  ValidateHandler validate_ ABSL_GUARDED_BY(mu_) =
      [](const v1::ValidateChangesetRequest&,
         v1::ValidateChangesetResponse* r) {
        r->set_verdict(v1::ValidateChangesetResponse::ACCEPT);
        return grpc::Status::OK;
      };
  ProcedureHandler procedure_ ABSL_GUARDED_BY(mu_) =
      [](const v1::RunProcedureRequest&, v1::RunProcedureResponse*) {
        return grpc::Status::OK;
      };
  std::vector<v1::AuthorizeSessionRequest> sessions_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::AuthorizeScopeRequest> scopes_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ValidateChangesetRequest> validates_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> validate_deadlines_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> validate_traceparents_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::RunProcedureRequest> procedures_ ABSL_GUARDED_BY(mu_);
};

TestHookServer::TestHookServer() : impl_(std::make_unique<Impl>()) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(
      static_cast<v1::SessionAuthorizer::Service*>(impl_.get()));
  builder.RegisterService(
      static_cast<v1::ScopeAuthorizer::Service*>(impl_.get()));
  builder.RegisterService(
      static_cast<v1::ChangesetValidator::Service*>(impl_.get()));
  builder.RegisterService(
      static_cast<v1::ProcedureHandler::Service*>(impl_.get()));
  server_ = builder.BuildAndStart();
  address_ = absl::StrCat("127.0.0.1:", port);
}

TestHookServer::~TestHookServer() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

void TestHookServer::OnSession(SessionHandler h) {
  absl::MutexLock lock(&impl_->mu_);
  impl_->session_ = std::move(h);
}
void TestHookServer::OnScope(ScopeHandler h) {
  absl::MutexLock lock(&impl_->mu_);
  impl_->scope_ = std::move(h);
}
void TestHookServer::OnValidate(ValidateHandler h) {
  absl::MutexLock lock(&impl_->mu_);
  impl_->validate_ = std::move(h);
}
void TestHookServer::OnProcedure(ProcedureHandler h) {
  absl::MutexLock lock(&impl_->mu_);
  impl_->procedure_ = std::move(h);
}

std::vector<v1::AuthorizeSessionRequest> TestHookServer::session_requests()
    const {
  absl::MutexLock lock(&impl_->mu_);
  return impl_->sessions_;
}
std::vector<v1::AuthorizeScopeRequest> TestHookServer::scope_requests() const {
  absl::MutexLock lock(&impl_->mu_);
  return impl_->scopes_;
}
std::vector<v1::ValidateChangesetRequest> TestHookServer::validate_requests()
    const {
  absl::MutexLock lock(&impl_->mu_);
  return impl_->validates_;
}
std::vector<v1::RunProcedureRequest> TestHookServer::procedure_requests()
    const {
  absl::MutexLock lock(&impl_->mu_);
  return impl_->procedures_;
}

std::string UnusedAddress() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
}

std::vector<absl::Time> TestHookServer::validate_deadlines() const {
  absl::MutexLock lock(&impl_->mu_);
  return impl_->validate_deadlines_;
}

std::vector<std::string> TestHookServer::validate_traceparents() const {
  absl::MutexLock lock(&impl_->mu_);
  return impl_->validate_traceparents_;
}

}  // namespace jetstream::testing
