// File: syncservice/core/principal.h
//
// Who is behind a client session, as the session authorizer hook decided
// (docs/protocol.md#authorization): carried with every fetch and changeset
// of the session and passed to every later hook call.

#ifndef JETSTREAM_SYNCSERVICE_CORE_PRINCIPAL_H_
#define JETSTREAM_SYNCSERVICE_CORE_PRINCIPAL_H_

#include <map>
#include <string>

namespace jetstream {

struct Principal {
  std::string identity;
  std::map<std::string, std::string> claims;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_CORE_PRINCIPAL_H_
