#include "common/fragment_proto.h"

#include "absl/strings/str_cat.h"

namespace jetstream {

void ToProto(const Value& value, sync::v1::Value* out) {
  switch (value.kind()) {
    case Value::Kind::kNull:
      out->set_null_value(true);
      return;
    case Value::Kind::kBool:
      out->set_bool_value(value.as_bool());
      return;
    case Value::Kind::kNumber:
      out->set_number_value(value.as_number());
      return;
    case Value::Kind::kString:
      out->set_string_value(value.as_string());
      return;
    case Value::Kind::kArray: {
      sync::v1::ListValue* list = out->mutable_list_value();
      list->mutable_values()->Reserve(value.as_array().size());
      for (const Value& e : value.as_array()) ToProto(e, list->add_values());
      return;
    }
  }
}

Value FromProto(const sync::v1::Value& value) {
  switch (value.kind_case()) {
    case sync::v1::Value::kBoolValue:
      return Value::Bool(value.bool_value());
    case sync::v1::Value::kNumberValue:
      return Value::Number(value.number_value());
    case sync::v1::Value::kStringValue:
      return Value::String(value.string_value());
    case sync::v1::Value::kListValue: {
      Value::Array elements;
      elements.reserve(value.list_value().values_size());
      for (const auto& e : value.list_value().values()) {
        elements.push_back(FromProto(e));
      }
      return Value::ArrayOf(std::move(elements));
    }
    case sync::v1::Value::kNullValue:
    case sync::v1::Value::KIND_NOT_SET:
      break;
  }
  return Value::Null();
}

void ToProto(const PropertyList& properties,
             google::protobuf::RepeatedPtrField<sync::v1::Property>* out) {
  out->Reserve(static_cast<int>(properties.size()));
  for (const auto& [name, value] : properties) {
    sync::v1::Property* p = out->Add();
    p->set_name(name);
    ToProto(value, p->mutable_value());
  }
}

PropertyList FromProto(
    const google::protobuf::RepeatedPtrField<sync::v1::Property>& properties) {
  PropertyList out;
  out.reserve(properties.size());
  for (const auto& p : properties)
    out.emplace_back(p.name(), FromProto(p.value()));
  return out;
}

void ToProto(const SyncFragment& fragment, sync::v1::SyncFragment* out) {
  out->set_type(fragment.type == FragmentType::kAdd
                    ? sync::v1::SyncFragment::ADD
                    : sync::v1::SyncFragment::CHANGE);
  out->set_uuid(fragment.uuid.ToString());
  out->set_cls_name(fragment.cls_name);
  ToProto(fragment.properties, out->mutable_properties());
}

absl::StatusOr<SyncFragment> FromProto(const sync::v1::SyncFragment& fragment) {
  SyncFragment out;
  switch (fragment.type()) {
    case sync::v1::SyncFragment::ADD:
      out.type = FragmentType::kAdd;
      break;
    case sync::v1::SyncFragment::CHANGE:
      out.type = FragmentType::kChange;
      break;
    default:
      return absl::InvalidArgumentError("fragment type must be ADD or CHANGE");
  }
  std::optional<Uuid> id = Uuid::Parse(fragment.uuid());
  if (!id) {
    return absl::InvalidArgumentError(
        absl::StrCat("fragment uuid '", fragment.uuid(), "' is not a UUID"));
  }
  out.uuid = *id;
  out.cls_name = fragment.cls_name();
  out.properties = FromProto(fragment.properties());
  return out;
}

absl::StatusOr<std::vector<SyncFragment>> FromProto(
    const google::protobuf::RepeatedPtrField<sync::v1::SyncFragment>&
        fragments) {
  std::vector<SyncFragment> out;
  out.reserve(fragments.size());
  for (const auto& f : fragments) {
    absl::StatusOr<SyncFragment> converted = FromProto(f);
    if (!converted.ok()) return converted.status();
    out.push_back(*std::move(converted));
  }
  return out;
}

void ToProto(const FragmentReply& reply, sync::v1::FragmentReply* out) {
  if (reply.error) {
    out->mutable_error()->set_message(reply.error->message);
    out->mutable_error()->set_type(reply.error->type);
  }
  ToProto(reply.modifications, out->mutable_modifications());
}

FragmentReply FromProto(const sync::v1::FragmentReply& reply) {
  FragmentReply out;
  if (reply.has_error()) {
    out.error = WireError{reply.error().message(), reply.error().type()};
  }
  out.modifications = FromProto(reply.modifications());
  return out;
}

}  // namespace jetstream
