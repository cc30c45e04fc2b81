// File: gateway/core/hub_executor.h
//
// A hub's executor: the strand on which a share of the gateway's session
// state lives (a SessionManager and its Sessions), with their connections
// (ConnectionStrand), and on which the sync service's answers and events
// for them are delivered (SyncClient's callback contract). The gateway's
// link to the sync service runs on one too.

#ifndef JETSTREAM_GATEWAY_CORE_HUB_EXECUTOR_H_
#define JETSTREAM_GATEWAY_CORE_HUB_EXECUTOR_H_

#include "boost/asio/io_context.hpp"
#include "boost/asio/strand.hpp"

namespace jetstream::gateway {

// A concrete strand type, not any_io_executor: Beast and Asio copy and
// re-wrap executors several times per operation, which for a type-erased
// executor means a heap allocation each time.
using HubExecutor = boost::asio::strand<boost::asio::io_context::executor_type>;

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_CORE_HUB_EXECUTOR_H_
