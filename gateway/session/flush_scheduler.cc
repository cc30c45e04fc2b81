#include "gateway/session/flush_scheduler.h"

#include <utility>

#include "boost/asio/post.hpp"
#include "gateway/session/session.h"

namespace jetstream::gateway {

void FlushScheduler::Schedule(std::shared_ptr<Session> session) {
  scheduled_.push_back(std::move(session));
  if (posted_) return;
  posted_ = true;
  boost::asio::post(hub_, [this] { FlushAll(); });
}

void FlushScheduler::FlushAll() {
  posted_ = false;
  flushing_.swap(scheduled_);
  for (const std::shared_ptr<Session>& session : flushing_) session->Flush();
  flushing_.clear();
}

}  // namespace jetstream::gateway
