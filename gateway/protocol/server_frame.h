// File: gateway/protocol/server_frame.h
//
// What the gateway writes to a client, kept in pieces so that a message
// shared by many sessions is encoded once and never copied per recipient.
//
// A ServerMessage is one message object as JSON text: a short head that is
// particular to one session (held inline, no allocation) followed by a body
// that may be shared, immutable and reference-counted, by every session that
// receives the same message. A committed changeset goes to every session of
// its scope as
//   head: {"type":"ScopeSync","index":N,"scopeIndex":M
//   body: ,"fragments":[...]}
// where only the head differs. Messages that are not shared keep their whole
// text in the body and an empty head.
//
// A ServerFrame is one WebSocket text frame: the JSON array of its messages
// (docs/protocol.md#r-frame-1), '[' m1 ',' m2 ... ']'. It owns everything it
// refers to, so it can be handed to another thread and written as a buffer
// sequence.
//
// Thread-safety: values; a body is immutable once shared, so copies on
// different threads are safe.

#ifndef JETSTREAM_GATEWAY_PROTOCOL_SERVER_FRAME_H_
#define JETSTREAM_GATEWAY_PROTOCOL_SERVER_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"

namespace jetstream::gateway {

class ServerMessage {
 public:
  // Room for the longest head this project builds (ScopeSync with two
  // 20-digit numbers is 82 bytes).
  static constexpr size_t kMaxHead = 94;

  ServerMessage() = default;
  // A whole message, not shared.
  explicit ServerMessage(std::string text)
      : body_(std::make_shared<const std::string>(std::move(text))) {}
  // A whole message, possibly shared.
  explicit ServerMessage(std::shared_ptr<const std::string> body)
      : body_(std::move(body)) {}
  // `head` (at most kMaxHead bytes) followed by the shared `body`.
  ServerMessage(absl::string_view head, std::shared_ptr<const std::string> body)
      : body_(std::move(body)) {
    set_head(head);
  }
  // Copies only the head's bytes.
  ServerMessage(const ServerMessage& other) : body_(other.body_) {
    set_head(other.head());
  }
  ServerMessage(ServerMessage&& other) noexcept
      : body_(std::move(other.body_)) {
    set_head(other.head());
  }
  ServerMessage& operator=(const ServerMessage& other) {
    if (this != &other) {
      body_ = other.body_;
      set_head(other.head());
    }
    return *this;
  }
  ServerMessage& operator=(ServerMessage&& other) noexcept {
    if (this != &other) {
      body_ = std::move(other.body_);
      set_head(other.head());
    }
    return *this;
  }

  absl::string_view head() const {
    return absl::string_view(head_, head_size_);
  }
  // Never null for a message built by the constructors above.
  const std::shared_ptr<const std::string>& body() const { return body_; }
  size_t size() const { return head_size_ + (body_ ? body_->size() : 0); }
  // The whole text (for tests and logs; copies).
  std::string ToString() const {
    std::string s(head());
    if (body_) s += *body_;
    return s;
  }

 private:
  void set_head(absl::string_view head) {
    if (head.size() > kMaxHead) head = head.substr(0, kMaxHead);  // never
    std::memcpy(head_, head.data(), head.size());
    head_size_ = static_cast<uint8_t>(head.size());
  }

  uint8_t head_size_ = 0;
  char head_[kMaxHead];
  std::shared_ptr<const std::string> body_;
};

class ServerFrame {
 public:
  ServerFrame() = default;
  explicit ServerFrame(ServerMessage message) { Add(std::move(message)); }

  void Add(ServerMessage message) {
    message_bytes_ += message.size();
    messages_.push_back(std::move(message));
  }
  // Appends `other`'s messages after this frame's, in order (coalescing:
  // one frame, one write, for several hub turns' messages).
  void Append(ServerFrame&& other) {
    for (ServerMessage& m : other.messages_) messages_.push_back(std::move(m));
    message_bytes_ += other.message_bytes_;
    other.clear();
  }
  void clear() {
    messages_.clear();
    message_bytes_ = 0;
  }
  bool empty() const { return messages_.empty(); }
  size_t message_count() const { return messages_.size(); }
  const ServerMessage& message(size_t i) const { return messages_[i]; }

  // Bytes on the wire (the JSON array), without WebSocket framing. O(1):
  // a frame that coalesces many messages is asked at every addition.
  size_t size() const {
    // '[' , separators, ']' (at least "[]")
    if (messages_.empty()) return 2;
    return message_bytes_ + messages_.size() + 1;
  }

  // ServerFrame::ForEachPiece()
  //
  // Calls `f(absl::string_view)` for every non-empty piece of the frame's
  // text, in order; the pieces stay valid while the frame lives and is not
  // modified. Concatenated they are the frame.
  template <typename F>
  void ForEachPiece(F&& f) const {
    static constexpr char kPunct[] = "[,]";
    if (messages_.empty()) {
      f(absl::string_view("[]", 2));
      return;
    }
    for (size_t i = 0; i < messages_.size(); ++i) {
      f(absl::string_view(&kPunct[i == 0 ? 0 : 1], 1));
      const ServerMessage& m = messages_[i];
      if (!m.head().empty()) f(m.head());
      if (m.body() != nullptr && !m.body()->empty())
        f(absl::string_view(*m.body()));
    }
    f(absl::string_view(&kPunct[2], 1));
  }

  // The whole frame as one string (for tests and logs; copies).
  std::string ToString() const {
    std::string s;
    s.reserve(size());
    ForEachPiece([&](absl::string_view p) { s.append(p.data(), p.size()); });
    return s;
  }

 private:
  absl::InlinedVector<ServerMessage, 1> messages_;
  size_t message_bytes_ = 0;  // the sum of messages_[i].size()
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_PROTOCOL_SERVER_FRAME_H_
