#include "syncservice/cluster/cluster.h"

#include <vector>

#include "common/rendezvous.h"

namespace jetstream {

std::optional<Member> MemberView::Preferred(absl::string_view scope) const {
  if (members.empty()) return std::nullopt;
  std::vector<std::string> ids;
  ids.reserve(members.size());
  for (const Member& m : members) ids.push_back(m.id);
  return members[RankByRendezvous(ids, scope).front()];
}

bool MemberView::Contains(absl::string_view id) const {
  for (const Member& m : members) {
    if (m.id == id) return true;
  }
  return false;
}

}  // namespace jetstream
