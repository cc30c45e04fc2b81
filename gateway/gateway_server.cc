#include "gateway/gateway_server.h"

#include <filesystem>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "boost/asio/post.hpp"
#include "boost/asio/strand.hpp"
#include "common/build_info.h"
#include "common/file_util.h"
#include "common/grpc_link.h"
#include "common/logging.h"
#include "common/metrics/grpc_metrics.h"
#include "gateway/protocol/server_message.h"
#include "grpcpp/grpcpp.h"

namespace jetstream::gateway {
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

namespace {

absl::string_view MimeType(absl::string_view path) {
  if (absl::EndsWith(path, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(path, ".js") || absl::EndsWith(path, ".mjs")) {
    return "text/javascript; charset=utf-8";
  }
  if (absl::EndsWith(path, ".css")) return "text/css; charset=utf-8";
  if (absl::EndsWith(path, ".json")) return "application/json";
  if (absl::EndsWith(path, ".png")) return "image/png";
  if (absl::EndsWith(path, ".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

http::response<http::string_body> Text(unsigned version, http::status status,
                                       std::string body,
                                       absl::string_view type = "text/plain") {
  http::response<http::string_body> res{status, version};
  res.set(http::field::server, "jetstream-gateway");
  res.set(http::field::content_type,
          beast::string_view(type.data(), type.size()));
  res.body() = std::move(body);
  return res;
}

// A PEM file of the TLS options; a missing one is a startup error.
std::string ReadPemOrDie(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFileToString(path, "PEM file");
  CHECK(pem.ok()) << pem.status().message();
  return *std::move(pem);
}

std::shared_ptr<grpc::ChannelCredentials> SyncServiceCredentials(
    const GatewayOptions& options) {
  if (options.sync_service_tls_ca.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadPemOrDie(options.sync_service_tls_ca);
  if (!options.sync_service_tls_cert.empty()) {
    ssl.pem_cert_chain = ReadPemOrDie(options.sync_service_tls_cert);
    ssl.pem_private_key = ReadPemOrDie(options.sync_service_tls_key);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

GatewayServer::GatewayServer(GatewayOptions options)
    : options_(std::move(options)),
      ioc_(std::max(1, options_.threads)),
      link_(net::make_strand(ioc_)),
      acceptor_(ioc_),
      metrics_acceptor_(ioc_) {
  const size_t hubs = static_cast<size_t>(std::max(1, options_.threads));
  const grpc::ChannelArguments args = GatewayChannelArguments(LinkKeepalive{});
  const std::shared_ptr<grpc::ChannelCredentials> credentials =
      SyncServiceCredentials(options_);
  // Clients of the seeds are made here and started with the threads;
  // those of replicas discovered later, on the link, at once.
  auto make_client = [this, args, credentials](const std::string& address) {
    std::vector<
        std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(
        std::make_unique<GrpcClientMetricsInterceptorFactory>(
            &metrics_.grpc_client()));
    auto client = std::make_unique<GrpcSyncClient>(
        link_,
        grpc::experimental::CreateCustomChannelWithInterceptors(
            address, credentials, args, std::move(interceptors)),
        options_.sync_request_timeout, options_.sync_service_token);
    if (clients_started_) {
      client->Start();
    } else {
      unstarted_clients_.push_back(client.get());
    }
    return client;
  };
  auto schedule = [this](absl::Duration delay, std::function<void()> task) {
    auto timer = std::make_shared<net::steady_timer>(
        link_, absl::ToChronoNanoseconds(delay));
    timer->async_wait([timer, task = std::move(task)](beast::error_code ec) {
      if (!ec) task();
    });
  };
  sync_ = std::make_unique<RoutingSyncClient>(options_.sync_service_targets,
                                              make_client, schedule);
  gate_ = std::make_unique<ConnectionGate>(link_, options_, Clock::Real());
  // A commit's ScopeSync body, made once for every hub.
  fanout_ = std::make_unique<HubFanout>(
      link_, *sync_, Clock::Real(), [](const sync::v1::Commit& commit) {
        return EncodeScopeSyncBody(commit.fragments_json());
      });
  for (size_t i = 0; i < hubs; ++i) {
    // One thread: the hub is the link's strand (nothing runs in parallel
    // anyway, and the hops between them stay on one queue).
    HubExecutor hub = hubs == 1 ? link_ : net::make_strand(ioc_);
    SyncClient& sync = fanout_->AddHub(hub);
    managers_.push_back(std::make_unique<SessionManager>(
        hub, options_, sync, Clock::Real(), &metrics_,
        HubPlacement{i, hubs, gate_.get()}));
  }
  select_hub_ = [this](const ConnectionParams& params,
                       SessionManager& accepting) -> SessionManager& {
    return *managers_[HubOfConnection(params, accepting.hub_index(),
                                      managers_.size())];
  };
  metrics_registry_.AddCollector([this] { return CollectMetrics(); });
  http_handler_ = [this](const http::request<http::string_body>& req) {
    return HandleHttp(req, /*public_port=*/true);
  };
  metrics_handler_ = [this](const http::request<http::string_body>& req) {
    return HandleHttp(req, /*public_port=*/false);
  };
}

std::vector<prometheus::MetricFamily> GatewayServer::CollectMetrics() const {
  // The hubs' counts, added up.
  auto sum = [this](auto count) {
    double total = 0;
    for (const auto& manager : managers_) {
      total += static_cast<double>(count(*manager));
    }
    return total;
  };
  return {
      GaugeFamily(
          "jetstream_gateway_sessions", "Live sessions.",
          sum([](const SessionManager& m) { return m.session_count(); })),
      GaugeFamily(
          "jetstream_gateway_connections", "Open WebSocket connections.",
          sum([](const SessionManager& m) { return m.connection_count(); })),
      GaugeFamily("jetstream_gateway_connections_held",
                  "Connections waiting at the connection gate.",
                  static_cast<double>(gate_->held_count())),
      CounterFamily("jetstream_gateway_connections_tarpitted_total",
                    "Connections slowed by the tarpit.",
                    static_cast<double>(gate_->tarpitted_total())),
      CounterFamily("jetstream_gateway_connections_over_limit_total",
                    "Connections refused over a connection limit.",
                    static_cast<double>(gate_->over_limit_total())),
      CounterFamily("jetstream_gateway_origin_refused_total",
                    "Upgrades refused for their Origin.",
                    sum([](const SessionManager& m) {
                      return m.origin_refused_total();
                    })),
      CounterFamily("jetstream_gateway_connections_rate_limited_total",
                    "Connections refused by the per-address connection rate.",
                    static_cast<double>(gate_->rate_limited_total())),
      CounterFamily("jetstream_gateway_messages_rate_limited_total",
                    "Client messages refused by a session's rate limits.",
                    sum([](const SessionManager& m) {
                      return m.messages_rate_limited_total();
                    })),
      GaugeFamily("jetstream_gateway_sync_members",
                  "Sync service replicas known live.",
                  static_cast<double>(sync_->live_members())),
      GaugeFamily("jetstream_gateway_sync_links_up",
                  "gRPC streams to sync service replicas that are up.",
                  static_cast<double>(sync_->links_up())),
      CounterFamily(
          "jetstream_gateway_sync_reconnects_total",
          "Streams to sync service replicas opened again after a break.",
          static_cast<double>(sync_->reconnects())),
  };
}

GatewayServer::~GatewayServer() {
  Stop();
  Wait();
  managers_.clear();
  fanout_.reset();
  gate_.reset();
  sync_.reset();
}

absl::StatusOr<uint16_t> GatewayServer::Start() {
  absl::StatusOr<TrustedProxies> trusted =
      TrustedProxies::Parse(options_.trusted_proxies);
  if (!trusted.ok()) return trusted.status();
  trusted_proxies_ = *std::move(trusted);
  beast::error_code ec;
  auto address = net::ip::make_address(options_.listen_address, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad listen address '", options_.listen_address, "'"));
  }
  tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.listen_address, ":",
                     options_.port, ": ", ec.message()));
  }
  uint16_t port = acceptor_.local_endpoint().port();
  if (!options_.metrics_listen.empty()) {
    const std::string& listen = options_.metrics_listen;
    const size_t colon = listen.rfind(':');
    int metrics_port = -1;
    std::string host =
        colon == std::string::npos ? "" : listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    auto metrics_ip = net::ip::make_address(host, ec);
    if (ec || colon == std::string::npos ||
        !absl::SimpleAtoi(listen.substr(colon + 1), &metrics_port) ||
        metrics_port < 0 || metrics_port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad metrics address '", listen, "' (want ip:port)"));
    }
    tcp::endpoint metrics_endpoint(metrics_ip,
                                   static_cast<uint16_t>(metrics_port));
    metrics_acceptor_.open(metrics_endpoint.protocol(), ec);
    if (!ec)
      metrics_acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) metrics_acceptor_.bind(metrics_endpoint, ec);
    if (!ec)
      metrics_acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", listen, ": ", ec.message()));
    }
    tcp::endpoint bound = metrics_acceptor_.local_endpoint();
    metrics_address_ =
        absl::StrCat(bound.address().is_v6()
                         ? absl::StrCat("[", bound.address().to_string(), "]")
                         : bound.address().to_string(),
                     ":", bound.port());
    DoAcceptMetrics();
  }
  net::post(link_, [this] {
    clients_started_ = true;
    for (GrpcSyncClient* client : unstarted_clients_) client->Start();
    unstarted_clients_.clear();
  });
  DoAccept();
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] { ioc_.run(); });
  }
  LOG(INFO) << "gateway listening on " << options_.listen_address << ":" << port
            << " version=" << BuildVersion() << " commit=" << BuildCommit()
            << ", sync service at "
            << absl::StrJoin(options_.sync_service_targets, ",");
  return port;
}

void GatewayServer::DoAccept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec != net::error::operation_aborted) {
        LOG(WARNING) << "accept: " << ec.message();
        DoAccept();
      }
      return;
    }
    socket.set_option(tcp::no_delay(true), ec);
    // The hubs in turn; a resume then moves to its session's hub.
    SessionManager& hub = *managers_[next_hub_++ % managers_.size()];
    std::make_shared<HttpSession>(std::move(socket), hub.hub(), hub,
                                  select_hub_, options_, http_handler_,
                                  trusted_proxies_)
        ->Run();
    DoAccept();
  });
}

void GatewayServer::DoAcceptMetrics() {
  metrics_acceptor_.async_accept(
      [this](beast::error_code ec, tcp::socket socket) {
        if (ec) {
          if (ec != net::error::operation_aborted) DoAcceptMetrics();
          return;
        }
        // A strand of its own: a scrape does not hold up a hub.
        std::make_shared<HttpSession>(std::move(socket), net::make_strand(ioc_),
                                      *managers_[0], HubSelector(), options_,
                                      metrics_handler_, trusted_proxies_,
                                      /*upgrades=*/false)
            ->Run();
        DoAcceptMetrics();
      });
}

void GatewayServer::Drain(absl::Duration window) {
  net::post(link_, [this, window] {
    if (draining_.load() || !acceptor_.is_open()) return;
    size_t sessions = 0;
    for (const auto& manager : managers_) sessions += manager->session_count();
    LOG(INFO) << "gateway draining: " << sessions << " sessions end over "
              << absl::FormatDuration(window);
    // Closed before readiness turns off, so a client that sees /readyz
    // answer 503 can no longer connect.
    beast::error_code ec;
    acceptor_.close(ec);
    draining_.store(true);
    // Stops once every hub has drained.
    auto left = std::make_shared<std::atomic<size_t>>(managers_.size());
    for (const auto& manager : managers_) {
      manager->Drain(window, [this, left] {
        if (--*left == 0) Stop();
      });
    }
  });
}

void GatewayServer::Stop() {
  net::post(link_, [this] {
    if (stopped_.exchange(true)) return;
    beast::error_code ec;
    acceptor_.close(ec);
    metrics_acceptor_.close(ec);
    for (const auto& manager : managers_) manager->Shutdown();
    sync_->Shutdown();
    // Let the close frames go out, then stop.
    auto timer = std::make_shared<net::steady_timer>(ioc_);
    timer->expires_after(std::chrono::milliseconds(200));
    timer->async_wait([this, timer](beast::error_code) { ioc_.stop(); });
  });
}

void GatewayServer::Wait() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

http::response<http::string_body> GatewayServer::HandleHttp(
    const http::request<http::string_body>& req, bool public_port) {
  std::string target(req.target());
  if (size_t q = target.find('?'); q != std::string::npos) target.resize(q);
  if (target == "/healthz")
    return Text(req.version(), http::status::ok, "ok\n");
  if (target == "/readyz") {
    const bool draining = draining_.load();
    const bool ready = !draining && sync_->connected();
    return Text(req.version(),
                ready ? http::status::ok : http::status::service_unavailable,
                ready
                    ? "ready\n"
                    : (draining ? "draining\n" : "sync service unavailable\n"));
  }
  // Only on the metrics port of its own: the public port never shows them.
  if (target == "/metrics" && !public_port) {
    return Text(req.version(), http::status::ok, metrics_registry_.Text(),
                kPrometheusTextContentType);
  }
  if (!public_port) {
    return Text(req.version(), http::status::not_found, "not found\n");
  }
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    return Text(req.version(), http::status::method_not_allowed,
                "method not allowed\n");
  }
  if (options_.static_dir.empty() || target.empty() || target[0] != '/' ||
      absl::StrContains(target, "..")) {
    return Text(req.version(), http::status::not_found, "not found\n");
  }
  if (target.back() == '/') target += "index.html";
  std::error_code ec;
  std::string path = options_.static_dir + target;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Text(req.version(), http::status::not_found, "not found\n");
  }
  absl::StatusOr<std::string> contents = ReadFileToString(path);
  if (!contents.ok()) {
    return Text(req.version(), http::status::not_found, "not found\n");
  }
  auto res = Text(req.version(), http::status::ok, *std::move(contents),
                  MimeType(target));
  res.set(http::field::cache_control, "no-cache");
  return res;
}

}  // namespace jetstream::gateway
