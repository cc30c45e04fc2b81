#include "examples/validator-cpp/demo_rules.h"

#include <optional>
#include <string>

namespace jetstream::examples {
namespace {

namespace v1 = hooks::v1;
using sync::v1::Property;
using sync::v1::SyncFragment;

// The number `name` has after the fragment: its own value, else the
// object's current one.
std::optional<double> NumberAfter(const v1::ValidateChangesetRequest& request,
                                  const SyncFragment& fragment,
                                  const std::string& name) {
  for (const Property& p : fragment.properties()) {
    if (p.name() == name) {
      if (p.value().has_number_value()) return p.value().number_value();
      return std::nullopt;  // null or not a number: nothing to check
    }
  }
  for (const v1::ObjectState& o : request.current()) {
    if (o.uuid() != fragment.uuid()) continue;
    for (const Property& p : o.properties()) {
      if (p.name() == name && p.value().has_number_value()) {
        return p.value().number_value();
      }
    }
  }
  return std::nullopt;
}

bool ShapeInsideCanvas(const v1::ValidateChangesetRequest& request,
                       const SyncFragment& f) {
  auto x = NumberAfter(request, f, "x"), y = NumberAfter(request, f, "y");
  auto w = NumberAfter(request, f, "width").value_or(0);
  auto h = NumberAfter(request, f, "height").value_or(0);
  if (w < 0 || h < 0) return false;
  if (x && (*x < 0 || *x + w > kCanvasSize)) return false;
  if (y && (*y < 0 || *y + h > kCanvasSize)) return false;
  return true;
}

// The first `n` UTF-8 characters of `s` (all of it if shorter).
std::string FirstCharacters(const std::string& s, size_t n) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    // A byte that is not a continuation byte starts a character.
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (chars == n) return s.substr(0, i);
      ++chars;
    }
  }
  return s;
}

bool Blank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

}  // namespace

void ApplyDemoRules(const v1::ValidateChangesetRequest& request,
                    v1::ValidateChangesetResponse* response) {
  response->set_verdict(v1::ValidateChangesetResponse::ACCEPT);
  for (int i = 0; i < request.fragments_size(); ++i) {
    const SyncFragment& f = request.fragments(i);
    if (f.cls_name() == "Shape" && !ShapeInsideCanvas(request, f)) {
      v1::FragmentRejection* r = response->add_rejections();
      r->set_fragment(i);
      r->set_message("Shape must stay inside the 0..10000 canvas");
      continue;
    }
    if (f.cls_name() != "Message") continue;
    for (const Property& p : f.properties()) {
      if (p.name() != "text") continue;
      const std::string text =
          p.value().has_string_value() ? p.value().string_value() : "";
      if (Blank(text)) {
        v1::FragmentRejection* r = response->add_rejections();
        r->set_fragment(i);
        r->set_message("Message text must not be empty");
        break;
      }
      std::string cut = FirstCharacters(text, kMaxMessageLength);
      if (cut.size() != text.size()) {
        v1::FragmentModification* m = response->add_modifications();
        m->set_fragment(i);
        Property* modified = m->add_properties();
        modified->set_name("text");
        modified->mutable_value()->set_string_value(cut);
      }
    }
  }
}

}  // namespace jetstream::examples
