#include "syncservice/cluster/cluster.h"

#include <vector>

#include "common/rendezvous.h"

namespace jetstream {

const Member* MemberView::Preferred(absl::string_view scope) const {
  if (members.empty()) return nullptr;
  std::vector<std::string> ids;
  ids.reserve(members.size());
  for (const Member& m : members) ids.push_back(m.id);
  return &members[RankByRendezvous(ids, scope).front()];
}

const Member* MemberView::Find(absl::string_view id) const {
  for (const Member& m : members) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

}  // namespace jetstream
