#include "tests/testing/ws_test_client.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"

namespace jetstream::testing {
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

JsonDocument ParseOrDie(absl::string_view json) {
  JsonDocument doc;
  if (!ParseJson(json, doc).ok()) {
    std::fprintf(stderr, "server sent invalid JSON: %s\n",
                 std::string(json).c_str());
    std::abort();
  }
  return doc;
}

std::string MessageType(absl::string_view message_json) {
  JsonDocument doc = ParseOrDie(message_json);
  return doc.HasMember("type") && doc["type"].IsString()
             ? doc["type"].GetString()
             : "";
}

uint64_t MessageIndex(absl::string_view message_json) {
  JsonDocument doc = ParseOrDie(message_json);
  return doc.HasMember("index") && doc["index"].IsUint64()
             ? doc["index"].GetUint64()
             : 0;
}

WsTestClient::WsTestClient() : ws_(ioc_) {}

WsTestClient::~WsTestClient() { Drop(); }

absl::StatusOr<std::unique_ptr<WsTestClient>> WsTestClient::Connect(
    const std::string& host, int port, const std::string& target,
    const std::map<std::string, std::string>& headers) {
  auto client = std::unique_ptr<WsTestClient>(new WsTestClient());
  beast::error_code ec;
  tcp::resolver resolver(client->ioc_);
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return absl::UnavailableError(ec.message());
  auto& layer = beast::get_lowest_layer(client->ws_);
  layer.expires_after(std::chrono::seconds(10));
  layer.connect(results, ec);
  if (ec)
    return absl::UnavailableError(absl::StrCat("connect: ", ec.message()));
  client->ws_.set_option(websocket::stream_base::decorator(
      [headers](websocket::request_type& req) {
        for (const auto& [k, v] : headers) req.set(k, v);
      }));
  client->ws_.read_message_max(64 << 20);
  client->ws_.handshake(absl::StrCat(host, ":", port), target, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("handshake: ", ec.message()));
  }
  // The connect deadline must not outlive the connect: reads have their own.
  layer.expires_never();
  return client;
}

absl::Status WsTestClient::SendText(absl::string_view text) {
  beast::error_code ec;
  ws_.text(true);
  ws_.write(net::buffer(text.data(), text.size()), ec);
  if (ec) return absl::UnavailableError(ec.message());
  return absl::OkStatus();
}

absl::Status WsTestClient::SendBinary(absl::string_view data) {
  beast::error_code ec;
  ws_.binary(true);
  ws_.write(net::buffer(data.data(), data.size()), ec);
  ws_.text(true);
  if (ec) return absl::UnavailableError(ec.message());
  return absl::OkStatus();
}

absl::StatusOr<std::string> WsTestClient::ReceiveFrame(absl::Duration timeout) {
  if (closed_) return absl::UnavailableError("closed");
  beast::error_code result = net::error::would_block;
  bool done = false;
  ws_.async_read(buffer_, [&](beast::error_code ec, size_t) {
    result = ec;
    done = true;
  });
  ioc_.restart();
  ioc_.run_for(absl::ToChronoNanoseconds(timeout));
  if (!done) {
    // Cancel the read and let it finish.
    beast::get_lowest_layer(ws_).cancel();
    ioc_.restart();
    ioc_.run();
    if (!closed_) {
      closed_ = true;  // a cancelled websocket read is not resumable
      close_info_.code = -1;
    }
    return absl::DeadlineExceededError("no frame in time");
  }
  if (result) {
    closed_ = true;
    close_info_.code = ws_.reason().code;
    close_info_.reason =
        std::string(ws_.reason().reason.data(), ws_.reason().reason.size());
    return absl::UnavailableError(absl::StrCat("closed: ", result.message()));
  }
  std::string frame = beast::buffers_to_string(buffer_.data());
  buffer_.consume(buffer_.size());
  return frame;
}

absl::StatusOr<CloseInfo> WsTestClient::WaitForClose(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!closed_) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("not closed in time");
    }
    auto frame = ReceiveFrame(left);
    if (!frame.ok() && absl::IsDeadlineExceeded(frame.status())) {
      return absl::DeadlineExceededError("not closed in time");
    }
  }
  return close_info_;
}

void WsTestClient::Close() {
  if (closed_) return;
  beast::error_code ec;
  beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(5));
  ws_.close(websocket::close_code::normal, ec);
  closed_ = true;
}

void WsTestClient::Drop() {
  beast::error_code ec;
  beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both,
                                                 ec);
  beast::get_lowest_layer(ws_).socket().close(ec);
  closed_ = true;
}

absl::Status WsTestClient::ReadIntoInbox(absl::Duration timeout) {
  absl::StatusOr<std::string> frame = ReceiveFrame(timeout);
  if (!frame.ok()) return frame.status();
  JsonDocument doc = ParseOrDie(*frame);
  if (!doc.IsArray()) {
    return absl::InternalError(
        absl::StrCat("server frame is not an array: ", *frame));
  }
  for (const JsonValue& m : doc.GetArray()) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    m.Accept(writer);
    if (m.HasMember("index") && m["index"].IsUint64() &&
        m["index"].GetUint64() > last_server_index_) {
      last_server_index_ = m["index"].GetUint64();
    }
    inbox_.emplace_back(buffer.GetString(), buffer.GetSize());
  }
  return absl::OkStatus();
}

void WsTestClient::Drain(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!closed_ && absl::Now() < deadline) {
    if (!ReadIntoInbox(deadline - absl::Now()).ok()) return;
  }
}

absl::StatusOr<std::string> WsTestClient::NextMessage(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (inbox_.empty()) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("no message in time");
    }
    if (absl::Status s = ReadIntoInbox(left); !s.ok()) return s;
  }
  std::string m = std::move(inbox_.front());
  inbox_.pop_front();
  return m;
}

absl::StatusOr<std::string> WsTestClient::WaitFor(absl::string_view type,
                                                  absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
      if (MessageType(*it) == type) {
        std::string m = std::move(*it);
        inbox_.erase(it);
        return m;
      }
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat("no ", type, " in time"));
    }
    if (absl::Status s = ReadIntoInbox(left); !s.ok()) return s;
  }
}

absl::StatusOr<std::string> WsTestClient::WaitForReply(uint64_t index,
                                                       absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
      JsonDocument doc = ParseOrDie(*it);
      if (doc.HasMember("replyTo") && doc["replyTo"].IsUint64() &&
          doc["replyTo"].GetUint64() == index) {
        std::string m = std::move(*it);
        inbox_.erase(it);
        return m;
      }
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat("no reply to ", index, " in time"));
    }
    if (absl::Status s = ReadIntoInbox(left); !s.ok()) return s;
  }
}

absl::StatusOr<std::string> WsTestClient::CreateSession(
    absl::string_view version, absl::string_view params) {
  if (absl::Status s = SendText(
          absl::StrCat(R"({"type":"SessionCreate","index":0,"version":")",
                       version, R"(","params":)", params, "}"));
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> reply = WaitFor("SessionCreateReply");
  if (!reply.ok()) return reply.status();
  JsonDocument doc = ParseOrDie(*reply);
  if (!doc.HasMember("sessionToken")) {
    return absl::PermissionDeniedError(absl::StrCat("denied: ", *reply));
  }
  return std::string(doc["sessionToken"].GetString());
}

absl::StatusOr<uint64_t> WsTestClient::SendScopeFetch(
    absl::string_view name, absl::string_view params) {
  uint64_t index = NextIndex();
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("type");
  w.String("ScopeFetch");
  w.Key("index");
  w.Uint64(index);
  w.Key("name");
  w.String(name);
  w.EndObject();
  std::string text(buffer.GetString(), buffer.GetSize());
  text.pop_back();
  absl::StrAppend(&text, ",\"params\":", params, "}");
  if (absl::Status s = SendText(text); !s.ok()) return s;
  return index;
}

absl::StatusOr<uint64_t> WsTestClient::FetchScope(absl::string_view name) {
  absl::StatusOr<uint64_t> index = SendScopeFetch(name);
  if (!index.ok()) return index.status();
  absl::StatusOr<std::string> reply = WaitForReply(*index);
  if (!reply.ok()) return reply.status();
  JsonDocument doc = ParseOrDie(*reply);
  if (!doc.HasMember("scopeIndex")) {
    return absl::NotFoundError(absl::StrCat("fetch failed: ", *reply));
  }
  absl::StatusOr<std::string> state = WaitFor("ScopeState");
  if (!state.ok()) return state.status();
  return doc["scopeIndex"].GetUint64();
}

absl::StatusOr<uint64_t> WsTestClient::SendScopeSync(
    uint64_t scope_index, absl::string_view fragments_json, bool atomic) {
  uint64_t index = NextIndex();
  std::string text = absl::StrCat(R"({"type":"ScopeSync","index":)", index,
                                  R"(,"scopeIndex":)", scope_index,
                                  atomic ? R"(,"atomic":true)" : "",
                                  R"(,"fragments":)", fragments_json, "}");
  if (absl::Status s = SendText(text); !s.ok()) return s;
  return index;
}

absl::Status WsTestClient::SendPing(uint64_t ack, bool resend_missing) {
  return SendText(absl::StrCat(R"({"type":"Ping","index":0,"ack":)", ack,
                               R"(,"resendMissing":)",
                               resend_missing ? "true" : "false", "}"));
}

}  // namespace jetstream::testing
