#include "tests/e2e/e2e_helpers.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "tests/e2e/system_fixture.h"

namespace jetstream::testing {
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;

namespace {

std::string ToText(const JsonValue& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// Scalars as canonical text; numbers via %.17g so 10 and 10.0 agree.
std::string CanonicalScalar(const JsonValue& v) {
  if (v.IsNumber()) return absl::StrFormat("%.17g", v.GetDouble());
  return ToText(v);
}

}  // namespace

std::vector<std::string> FrameMessages(absl::string_view frame) {
  JsonDocument doc = ParseOrDie(frame);
  std::vector<std::string> out;
  if (!doc.IsArray()) {
    out.push_back(std::string(frame));
    return out;
  }
  for (const JsonValue& m : doc.GetArray()) out.push_back(ToText(m));
  return out;
}

std::string CloseReasonType(const CloseInfo& close) {
  JsonDocument doc;
  if (!ParseJson(close.reason, doc).ok() || !doc.IsObject()) return "";
  if (!doc.HasMember("type") || !doc["type"].IsString()) return "";
  return doc["type"].GetString();
}

std::string CloseReasonMessage(const CloseInfo& close) {
  JsonDocument doc;
  if (!ParseJson(close.reason, doc).ok() || !doc.IsObject()) return "";
  if (!doc.HasMember("message") || !doc["message"].IsString()) return "";
  return doc["message"].GetString();
}

std::string StringField(absl::string_view message_json, const char* key) {
  JsonDocument doc = ParseOrDie(message_json);
  if (!doc.IsObject() || !doc.HasMember(key) || !doc[key].IsString()) return "";
  return doc[key].GetString();
}

int64_t UintField(absl::string_view message_json, const char* key) {
  JsonDocument doc = ParseOrDie(message_json);
  if (!doc.IsObject() || !doc.HasMember(key) || !doc[key].IsUint64()) return -1;
  return static_cast<int64_t>(doc[key].GetUint64());
}

absl::StatusOr<UntilReply> ReadUntilReply(WsTestClient& client,
                                          uint64_t reply_to,
                                          absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  UntilReply out;
  for (;;) {
    absl::StatusOr<std::string> m = client.NextMessage(deadline - absl::Now());
    if (!m.ok()) {
      return absl::Status(m.status().code(),
                          absl::StrCat("waiting for the reply to ", reply_to,
                                       ": ", m.status().message(), "; got ",
                                       out.before.size(), " other messages"));
    }
    if (UintField(*m, "replyTo") == static_cast<int64_t>(reply_to)) {
      out.reply = *std::move(m);
      return out;
    }
    out.before.push_back(*std::move(m));
  }
}

absl::StatusOr<std::vector<std::string>> Barrier(WsTestClient& client,
                                                 uint64_t scope_index,
                                                 absl::Duration timeout) {
  absl::StatusOr<uint64_t> index = client.SendScopeSync(scope_index, "[]");
  if (!index.ok()) return index.status();
  absl::StatusOr<UntilReply> r = ReadUntilReply(client, *index, timeout);
  if (!r.ok()) return r.status();
  if (MessageType(r->reply) != "ScopeSyncReply" ||
      Field(r->reply, "fragmentReplies") != "[]") {
    return absl::InternalError(absl::StrCat("bad barrier reply: ", r->reply));
  }
  return std::move(r->before);
}

std::vector<std::string> WithoutPings(
    const std::vector<std::string>& messages) {
  std::vector<std::string> out;
  for (const std::string& m : messages) {
    if (MessageType(m) != "Ping") out.push_back(m);
  }
  return out;
}

absl::StatusOr<Fetched> FetchState(WsTestClient& client, absl::string_view name,
                                   absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<uint64_t> index = client.SendScopeFetch(name);
  if (!index.ok()) return index.status();
  absl::StatusOr<UntilReply> r = ReadUntilReply(client, *index, timeout);
  if (!r.ok()) return r.status();
  Fetched out;
  out.reply = r->reply;
  out.before = std::move(r->before);
  if (UintField(out.reply, "scopeIndex") < 0) {
    return absl::NotFoundError(out.reply);
  }
  out.scope_index = static_cast<uint64_t>(UintField(out.reply, "scopeIndex"));
  for (;;) {
    absl::StatusOr<std::string> m = client.NextMessage(deadline - absl::Now());
    if (!m.ok()) return m.status();
    if (MessageType(*m) == "Ping") continue;
    if (MessageType(*m) != "ScopeState") {
      return absl::InternalError(
          absl::StrCat("expected ScopeState after the fetch reply, got ", *m));
    }
    out.state = *std::move(m);
    break;
  }
  out.root_uuid = StringField(out.state, "rootUUID");
  return out;
}

absl::StatusOr<SessionClient> StartSession(std::unique_ptr<WsTestClient> ws,
                                           absl::string_view scope) {
  if (ws == nullptr) return absl::UnavailableError("not connected");
  SessionClient client;
  absl::StatusOr<std::string> token = ws->CreateSession();
  if (!token.ok()) return token.status();
  absl::StatusOr<Fetched> fetched = FetchState(*ws, scope);
  if (!fetched.ok()) return fetched.status();
  client.ws = std::move(ws);
  client.token = *std::move(token);
  client.fetched = *std::move(fetched);
  return client;
}

std::string TestUuid(uint32_t group, uint64_t n) {
  return absl::StrFormat("%08x-0000-4000-8000-%012x", group, n);
}

std::string AddShapeFragment(const std::string& uuid, double x, double y) {
  return absl::StrCat(R"({"type":"add","uuid":")", uuid,
                      R"(","clsName":"Shape","properties":{"x":)", x,
                      R"(,"y":)", y,
                      R"(,"width":100,"height":100,"color":4279308287}})");
}

std::string MoveShapeFragment(const std::string& uuid, double x, double y) {
  return absl::StrCat(R"({"type":"change","uuid":")", uuid,
                      R"(","clsName":"Shape","properties":{"x":)", x,
                      R"(,"y":)", y, "}}");
}

std::string SetShapesFragment(const std::string& root_uuid,
                              const std::vector<std::string>& shapes) {
  std::vector<std::string> quoted;
  quoted.reserve(shapes.size());
  for (const std::string& s : shapes)
    quoted.push_back(absl::StrCat("\"", s, "\""));
  return absl::StrCat(R"({"type":"change","uuid":")", root_uuid,
                      R"(","clsName":"Canvas","properties":{"shapes":[)",
                      absl::StrJoin(quoted, ","), "]}}");
}

std::string ChangeFragment(const std::string& uuid, const std::string& cls,
                           const std::string& properties_json) {
  return absl::StrCat(R"({"type":"change","uuid":")", uuid, R"(","clsName":")",
                      cls, R"(","properties":)", properties_json, "}");
}

std::string FragmentList(const std::vector<std::string>& fragments) {
  return absl::StrCat("[", absl::StrJoin(fragments, ","), "]");
}

absl::Status AddShapes(WsTestClient& client, const Fetched& fetched,
                       const std::vector<std::string>& shapes) {
  std::vector<std::string> fragments;
  for (size_t k = 0; k < shapes.size(); ++k) {
    fragments.push_back(AddShapeFragment(shapes[k], 0, static_cast<double>(k)));
  }
  fragments.push_back(SetShapesFragment(fetched.root_uuid, shapes));
  absl::StatusOr<uint64_t> sync =
      client.SendScopeSync(fetched.scope_index, FragmentList(fragments));
  if (!sync.ok()) return sync.status();
  absl::StatusOr<UntilReply> r = ReadUntilReply(client, *sync);
  if (!r.ok()) return r.status();
  if (absl::StrContains(Field(r->reply, "fragmentReplies"), "error")) {
    return absl::InternalError(absl::StrCat("shapes refused: ", r->reply));
  }
  return absl::OkStatus();
}

absl::Status ScopeModel::ApplyState(absl::string_view scope_state_json) {
  JsonDocument doc = ParseOrDie(scope_state_json);
  if (!doc.IsObject() || !doc.HasMember("rootUUID") ||
      !doc["rootUUID"].IsString() || !doc.HasMember("fragments")) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a ScopeState: ", scope_state_json));
  }
  objects_.clear();
  root_ = doc["rootUUID"].GetString();
  const JsonValue& fragments = doc["fragments"];
  if (!fragments.IsArray() || fragments.Empty()) {
    return absl::InvalidArgumentError("ScopeState without fragments");
  }
  // The root arrives as a `change` of an object nobody announced.
  const JsonValue& first = fragments[0];
  if (std::string(first["type"].GetString()) != "change" ||
      std::string(first["uuid"].GetString()) != root_) {
    return absl::InvalidArgumentError(
        "ScopeState does not start with the root");
  }
  objects_[root_].cls = first["clsName"].GetString();
  return ApplyFragments(fragments);
}

absl::Status ScopeModel::ApplyFragmentsJson(absl::string_view fragments_json) {
  JsonDocument doc = ParseOrDie(fragments_json);
  return ApplyFragments(doc);
}

absl::Status ScopeModel::ApplyFragments(const JsonValue& fragments) {
  if (!fragments.IsArray()) return absl::InvalidArgumentError("not an array");
  for (const JsonValue& f : fragments.GetArray()) {
    std::string type = f["type"].GetString();
    std::string uuid = f["uuid"].GetString();
    Object* object = nullptr;
    if (type == "add") {
      if (objects_.count(uuid) > 0) {
        // Re-adding a removed object's UUID is legal; a live one is not.
        std::vector<std::string> live = Reachable();
        if (std::find(live.begin(), live.end(), uuid) != live.end()) {
          return absl::InvalidArgumentError(
              absl::StrCat("add of an existing object ", uuid));
        }
      }
      object = &objects_[uuid];
      *object = Object{};
      object->cls = f["clsName"].GetString();
    } else {
      auto it = objects_.find(uuid);
      if (it == objects_.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("change of an unknown object ", uuid));
      }
      object = &it->second;
    }
    if (!f.HasMember("properties") || !f["properties"].IsObject()) continue;
    for (const auto& p : f["properties"].GetObject()) {
      Value v;
      const JsonValue& value = p.value;
      if (value.IsString()) v.strings.push_back(value.GetString());
      if (value.IsArray()) {
        std::vector<std::string> parts;
        for (const JsonValue& e : value.GetArray()) {
          parts.push_back(CanonicalScalar(e));
          if (e.IsString()) v.strings.push_back(e.GetString());
        }
        v.canonical = absl::StrCat("[", absl::StrJoin(parts, ","), "]");
      } else if (!value.IsNull()) {
        v.canonical = CanonicalScalar(value);
      }
      object->properties[p.name.GetString()] = std::move(v);
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> ScopeModel::Reachable() const {
  std::vector<std::string> order;
  if (root_.empty()) return order;
  std::set<std::string> seen = {root_};
  std::vector<std::string> stack = {root_};
  while (!stack.empty()) {
    std::string uuid = stack.back();
    stack.pop_back();
    order.push_back(uuid);
    auto it = objects_.find(uuid);
    if (it == objects_.end()) continue;
    for (const auto& [key, value] : it->second.properties) {
      for (const std::string& s : value.strings) {
        if (objects_.count(s) > 0 && seen.insert(s).second) stack.push_back(s);
      }
    }
  }
  return order;
}

size_t ScopeModel::ReachableCount() const { return Reachable().size(); }

std::string ScopeModel::Canonical() const {
  std::vector<std::string> reachable = Reachable();
  std::sort(reachable.begin(), reachable.end());
  std::string out = absl::StrCat("root=", root_, "\n");
  for (const std::string& uuid : reachable) {
    auto it = objects_.find(uuid);
    if (it == objects_.end()) {
      absl::StrAppend(&out, uuid, " MISSING\n");
      continue;
    }
    absl::StrAppend(&out, uuid, " ", it->second.cls, " {");
    for (const auto& [key, value] : it->second.properties) {
      if (value.canonical.empty()) continue;  // null
      absl::StrAppend(&out, key, ":", value.canonical, ";");
    }
    absl::StrAppend(&out, "}\n");
  }
  return out;
}

namespace {

// One keep-alive HTTP connection to the gateway.
class MetricsReader {
 public:
  absl::Status Connect(int port) {
    beast::error_code ec;
    stream_.expires_after(std::chrono::seconds(5));
    stream_.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"),
                                           static_cast<uint16_t>(port)),
                    ec);
    if (ec) return absl::UnavailableError(ec.message());
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Gauge(absl::string_view name) {
    http::request<http::empty_body> req(http::verb::get, "/metrics", 11);
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(true);
    beast::error_code ec;
    stream_.expires_after(std::chrono::seconds(5));
    http::write(stream_, req, ec);
    if (ec) return absl::UnavailableError(ec.message());
    http::response<http::string_body> res;
    http::read(stream_, buffer_, res, ec);
    if (ec) return absl::UnavailableError(ec.message());
    for (absl::string_view line : absl::StrSplit(res.body(), '\n')) {
      if (line.empty() || line[0] == '#') continue;
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(line, absl::MaxSplits(' ', 1));
      int64_t value = 0;
      if (kv.first == name && absl::SimpleAtoi(kv.second, &value)) return value;
    }
    return absl::NotFoundError(absl::StrCat("no gauge ", name));
  }

 private:
  net::io_context ioc_;
  beast::tcp_stream stream_{ioc_};
  beast::flat_buffer buffer_;
};

}  // namespace

HttpResult HttpGet(int port, const std::string& target) {
  HttpResult result;
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.expires_after(std::chrono::seconds(5));
  stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"),
                                        static_cast<uint16_t>(port)),
                 ec);
  if (ec) return result;
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, "127.0.0.1");
  http::write(stream, request, ec);
  if (ec) return result;
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response, ec);
  if (ec) return result;
  result.status = response.result_int();
  result.content_type = std::string(response[http::field::content_type]);
  result.body = response.body();
  return result;
}

absl::StatusOr<int64_t> GatewayGauge(int port, absl::string_view name) {
  MetricsReader reader;
  if (absl::Status s = reader.Connect(port); !s.ok()) return s;
  return reader.Gauge(name);
}

bool WaitForGauge(int port, absl::string_view name, int64_t value,
                  absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  MetricsReader reader;
  if (!reader.Connect(port).ok()) return false;
  // The gauge is polled (a scrape is cheap), backing off from 1 ms to
  // 50 ms so a slow change does not keep the gateway busy with scrapes.
  absl::Duration pause = absl::Milliseconds(1);
  while (absl::Now() < deadline) {
    absl::StatusOr<int64_t> v = reader.Gauge(name);
    if (!v.ok()) return false;
    if (*v == value) return true;
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(50));
  }
  return false;
}

}  // namespace jetstream::testing
