// File: common/fragment_proto.h
//
// Conversions between the wire model (common/sync_fragment.h) and its
// protobuf form (proto/sync/v1/sync_service.proto), used at the gRPC edge of
// both the gateway and the sync service.

#ifndef JETSTREAM_COMMON_FRAGMENT_PROTO_H_
#define JETSTREAM_COMMON_FRAGMENT_PROTO_H_

#include <vector>

#include "absl/status/statusor.h"
#include "common/sync_fragment.h"
#include "common/value.h"
#include "google/protobuf/repeated_field.h"
#include "proto/sync/v1/model.pb.h"

namespace jetstream {

void ToProto(const Value& value, sync::v1::Value* out);
Value FromProto(const sync::v1::Value& value);

void ToProto(const PropertyList& properties,
             google::protobuf::RepeatedPtrField<sync::v1::Property>* out);
PropertyList FromProto(
    const google::protobuf::RepeatedPtrField<sync::v1::Property>& properties);

void ToProto(const SyncFragment& fragment, sync::v1::SyncFragment* out);
// Fails with kInvalidArgument on an unknown type or a malformed UUID.
absl::StatusOr<SyncFragment> FromProto(const sync::v1::SyncFragment& fragment);
absl::StatusOr<std::vector<SyncFragment>> FromProto(
    const google::protobuf::RepeatedPtrField<sync::v1::SyncFragment>&
        fragments);

void ToProto(const FragmentReply& reply, sync::v1::FragmentReply* out);
FragmentReply FromProto(const sync::v1::FragmentReply& reply);

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_FRAGMENT_PROTO_H_
