// The datapath thread's event loop: one FramePort (AF_PACKET socket) per topology
// interface, an epoll set over their fds and an eventfd for posted work, and the Pipeline.
// Each received frame goes to the ArpResponder (ARP, NS/NA) or to Pipeline::Receive; the
// frames either produce are transmitted at the end of the batch. Next hops without a
// static neighbour entry are resolved by the NeighbourResolver (SendVia). Pipeline::Tick
// and the resolver's retries run every tick_interval.
//
// Unresolved next hops from the pipeline: a frame to transmit whose destination MAC is
// 00:00:00:00:00:00 (never a valid destination) has no neighbour yet. The loop routes it
// again (Topology::Lookup on its IP destination, the same decision the pipeline made after
// DNAT) and hands it to the resolver, so Pipeline::Transmit only has to emit such frames
// with a zero MAC instead of dropping them as no_neighbour.
//
// Threads: Run/RunOnce and every other method run on the datapath thread, except Post(),
// which any thread may call to run work there (sync promotions, control commands, VIP
// changes). The loop owns its ports; pipeline and clock must outlive it.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "core/io/arp_responder.h"
#include "core/io/frame_port.h"
#include "core/io/neighbour_resolver.h"
#include "core/io/packet_socket.h"
#include "core/pipeline/pipeline.h"
#include "core/util/clock.h"

namespace ctsync {

struct DatapathLoopOptions {
  size_t rx_batch = 64;                       // frames taken from one port per wake-up
  Nanos tick_interval = 10 * kNanosPerMilli;  // Pipeline::Tick and resolver retries
  ArpResponderOptions responder;
  NeighbourResolverOptions resolver;
};

#define CTSYNC_DATAPATH_LOOP_COUNTERS(X)                                        \
  X(wakeups)          /* epoll_wait returns */                                  \
  X(rx_frames)        /* frames read from all ports */                          \
  X(neighbour_frames) /* ARP / NS / NA handled by the responder */              \
  X(pipeline_frames)  /* frames given to Pipeline::Receive */                   \
  X(tx_frames)        /* frames handed to a port */                             \
  X(tx_errors)        /* a port refused a frame (see its counters) */           \
  X(tx_bad_interface) /* a transmit named no port: a bug, counted not fatal */  \
  X(tx_resolve)       /* zero-MAC frames routed to the resolver */              \
  X(tx_unroutable)    /* zero-MAC frames with no usable IP destination/route */ \
  X(announcements)    /* gratuitous ARP / unsolicited NA frames sent */         \
  X(posted_tasks)     /* Post() work run on this thread */                      \
  X(ticks)            /* housekeeping rounds */

struct DatapathLoopCounters {
#define CTSYNC_DATAPATH_LOOP_COUNTER_FIELD(name) uint64_t name = 0;
  CTSYNC_DATAPATH_LOOP_COUNTERS(CTSYNC_DATAPATH_LOOP_COUNTER_FIELD)
#undef CTSYNC_DATAPATH_LOOP_COUNTER_FIELD
};

class DatapathLoop {
 public:
  // ports[i] carries topology interface i of pipeline->topology(); the counts must match.
  static absl::StatusOr<std::unique_ptr<DatapathLoop>> Create(
      const DatapathLoopOptions& options, Pipeline* pipeline, Clock* clock,
      std::vector<std::unique_ptr<FramePort>> ports);

  // One PacketSocket per topology interface, opened by name with `base` as the template.
  static absl::StatusOr<std::vector<std::unique_ptr<FramePort>>> OpenPacketSockets(
      const Topology& topology, const PacketSocketOptions& base);

  ~DatapathLoop();
  DatapathLoop(const DatapathLoop&) = delete;
  DatapathLoop& operator=(const DatapathLoop&) = delete;

  // Waits up to `timeout` (less if a tick is due) for frames or posted work, handles what
  // is ready and runs the tick when due. Errors only when epoll itself fails.
  absl::Status RunOnce(Nanos timeout);
  // RunOnce until `stop` is set; Post() an empty task to make it notice at once.
  absl::Status Run(const std::atomic<bool>& stop);

  // Any thread: runs `fn` on the datapath thread at its next wake-up, in posting order.
  void Post(std::function<void()> fn);

  // ---- datapath thread only ----

  // The hook for frames whose next hop has no static neighbour: fills in the MAC now, or
  // holds the frame and solicits. What Pipeline::Transmit should hand over instead of
  // counting no_neighbour (see the io report).
  void SendVia(Family family, int interface, const IpAddress& next_hop, std::vector<uint8_t> frame);
  // Transmits a complete frame on `interface` (queued; flushed at the end of the batch or
  // by FlushTransmits()).
  void Transmit(int interface, std::vector<uint8_t> frame);
  void FlushTransmits();

  // Starts answering for a VIP and announces it (gratuitous ARP / unsolicited NA). Call
  // only after the flows it carries are promoted. False if already held or bad interface.
  bool AddVirtualAddress(int interface, Family family, const IpAddress& address);
  bool RemoveVirtualAddress(int interface, Family family, const IpAddress& address);
  // Sends the announcements of every held VIP again (keepalived's garp_master_repeat /
  // garp_master_refresh: one announcement can be lost).
  void AnnounceVirtualAddresses();

  ArpResponder& responder() { return responder_; }
  NeighbourResolver& resolver() { return resolver_; }
  Pipeline& pipeline() { return *pipeline_; }
  FramePort& port(int interface) { return *ports_[interface]; }
  const DatapathLoopCounters& counters() const { return counters_; }

 private:
  DatapathLoop(const DatapathLoopOptions& options, Pipeline* pipeline, Clock* clock,
               std::vector<std::unique_ptr<FramePort>> ports, int epoll_fd, int event_fd);
  void HandleFrame(int interface, absl::Span<const uint8_t> frame, Nanos now);
  void RunPosted();
  void MaybeTick(Nanos now);
  // A zero-MAC frame from the pipeline: re-route it and pass it to the resolver.
  void Resolve(std::vector<uint8_t> frame, Nanos now, std::vector<struct Transmit>* out);

  DatapathLoopOptions options_;
  Pipeline* pipeline_;
  Clock* clock_;
  std::vector<std::unique_ptr<FramePort>> ports_;
  int epoll_fd_;
  int event_fd_;
  ArpResponder responder_;
  NeighbourResolver resolver_;
  Nanos next_tick_ = 0;
  std::vector<struct Transmit> tx_;  // this batch's output
  std::vector<bool> touched_;        // ports with frames to flush

  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;  // guarded by posted_mu_
  std::vector<std::function<void()>> running_;

  DatapathLoopCounters counters_;
};

}  // namespace ctsync
