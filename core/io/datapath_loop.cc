#include "core/io/datapath_loop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/packet/packet_parser.h"

namespace ctsync {
namespace {

constexpr uint32_t kEventFdTag = UINT32_MAX;
constexpr int kMaxEvents = 16;

// The frame's IP header is sound even if its L4 header is not (the pipeline forwards such
// packets as INVALID): enough to route it.
bool L3Usable(const ParseResult& r) {
  if (r.ok()) return true;
  switch (r.error()) {
    case ParseError::kTruncatedL4:
    case ParseError::kBadTcpOffset:
    case ParseError::kBadUdpLength:
    case ParseError::kBadUdpliteCoverage:
      return true;
    default:
      return false;
  }
}

absl::Status Errno(const char* call) {
  return absl::InternalError(absl::StrCat(call, ": ", strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<DatapathLoop>> DatapathLoop::Create(
    const DatapathLoopOptions& options, Pipeline* pipeline, Clock* clock,
    std::vector<std::unique_ptr<FramePort>> ports) {
  if (pipeline == nullptr || clock == nullptr)
    return absl::InvalidArgumentError("datapath loop needs a pipeline and a clock");
  if (static_cast<int>(ports.size()) != pipeline->topology().interface_count())
    return absl::InvalidArgumentError(
        absl::StrCat("datapath loop got ", ports.size(), " ports for ",
                     pipeline->topology().interface_count(), " interfaces"));
  if (options.rx_batch == 0 || options.tick_interval <= 0)
    return absl::InvalidArgumentError("rx_batch and tick_interval must be positive");
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return Errno("epoll_create1");
  const int ev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (ev < 0) {
    const absl::Status s = Errno("eventfd");
    close(ep);
    return s;
  }
  // From here the loop owns both descriptors (its destructor closes them).
  std::unique_ptr<DatapathLoop> loop(
      new DatapathLoop(options, pipeline, clock, std::move(ports), ep, ev));
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.u32 = kEventFdTag;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) != 0) return Errno("epoll_ctl(eventfd)");
  for (size_t i = 0; i < loop->ports_.size(); ++i) {
    if (loop->ports_[i] == nullptr)
      return absl::InvalidArgumentError(absl::StrCat("no port for interface ", i));
    e.events = EPOLLIN;
    e.data.u32 = static_cast<uint32_t>(i);
    if (epoll_ctl(ep, EPOLL_CTL_ADD, loop->ports_[i]->fd(), &e) != 0)
      return Errno("epoll_ctl(port)");
  }
  return loop;
}

absl::StatusOr<std::vector<std::unique_ptr<FramePort>>> DatapathLoop::OpenPacketSockets(
    const Topology& topology, const PacketSocketOptions& base) {
  std::vector<std::unique_ptr<FramePort>> ports;
  for (int i = 0; i < topology.interface_count(); ++i) {
    PacketSocketOptions o = base;
    o.interface = topology.interface(i).name;
    absl::StatusOr<std::unique_ptr<PacketSocket>> s = PacketSocket::Open(o);
    if (!s.ok()) return s.status();
    if ((*s)->mac() != topology.interface(i).mac)
      return absl::FailedPreconditionError(
          absl::StrCat("interface ", o.interface, " has MAC ", FormatMac((*s)->mac()),
                       " but the topology says ", FormatMac(topology.interface(i).mac),
                       " (without promiscuous mode only the real MAC receives unicast)"));
    ports.push_back(*std::move(s));
  }
  return ports;
}

DatapathLoop::DatapathLoop(const DatapathLoopOptions& options, Pipeline* pipeline, Clock* clock,
                           std::vector<std::unique_ptr<FramePort>> ports, int epoll_fd,
                           int event_fd)
    : options_(options),
      pipeline_(pipeline),
      clock_(clock),
      ports_(std::move(ports)),
      epoll_fd_(epoll_fd),
      event_fd_(event_fd),
      responder_(pipeline->topology(), options.responder),
      resolver_(pipeline->topology(), options.resolver),
      touched_(ports_.size(), false) {
  next_tick_ = clock_->Now() + options_.tick_interval;
}

DatapathLoop::~DatapathLoop() {
  close(event_fd_);
  close(epoll_fd_);
}

void DatapathLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
  (void)!write(event_fd_, &one, sizeof(one));
}

void DatapathLoop::RunPosted() {
  uint64_t value;
  (void)!read(event_fd_, &value, sizeof(value));
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    running_.swap(posted_);
  }
  for (auto& fn : running_) {
    ++counters_.posted_tasks;
    if (fn) fn();
  }
  running_.clear();
}

void DatapathLoop::HandleFrame(int interface, absl::Span<const uint8_t> frame, Nanos now) {
  ++counters_.rx_frames;
  NeighbourFrameResult r = responder_.Handle(interface, frame);
  if (r.consumed) {
    ++counters_.neighbour_frames;
    if (!r.reply.empty()) tx_.push_back({interface, std::move(r.reply)});
    if (r.learned) resolver_.Learn(interface, *r.learned, now, &tx_);
    return;
  }
  ++counters_.pipeline_frames;
  pipeline_->Receive(interface, frame, now, &tx_);
}

void DatapathLoop::Transmit(int interface, std::vector<uint8_t> frame) {
  tx_.push_back({interface, std::move(frame)});
}

void DatapathLoop::SendVia(Family family, int interface, const IpAddress& next_hop,
                           std::vector<uint8_t> frame) {
  resolver_.Submit(family, interface, next_hop, std::move(frame), clock_->Now(), &tx_);
}

void DatapathLoop::Resolve(std::vector<uint8_t> frame, Nanos now,
                           std::vector<struct Transmit>* out) {
  ParsedPacket p;
  if (!L3Usable(ParseEthernet(frame, &p)) ||
      (p.family != Family::kIpv4 && p.family != Family::kIpv6)) {
    ++counters_.tx_unroutable;
    return;
  }
  const RouteDecision route = pipeline_->topology().Lookup(p.family, p.dst);
  if (route.kind != RouteDecision::Kind::kForward) {
    ++counters_.tx_unroutable;
    return;
  }
  ++counters_.tx_resolve;
  resolver_.Submit(p.family, route.out_interface, route.next_hop, std::move(frame), now, out);
}

void DatapathLoop::FlushTransmits() {
  // Zero-MAC frames may turn into a solicitation plus held frames; handle them first so
  // what the resolver emits is sent in this same flush.
  std::vector<struct Transmit> resolved;
  for (auto& t : tx_) {
    if (t.frame.size() >= 6 &&
        std::all_of(t.frame.begin(), t.frame.begin() + 6, [](uint8_t b) { return b == 0; })) {
      Resolve(std::move(t.frame), clock_->Now(), &resolved);
      t.frame.clear();
    }
  }
  for (auto& t : resolved) tx_.push_back(std::move(t));
  for (auto& t : tx_) {
    if (t.frame.empty()) continue;  // handed to the resolver above
    if (t.interface < 0 || t.interface >= static_cast<int>(ports_.size())) {
      ++counters_.tx_bad_interface;
      continue;
    }
    if (ports_[t.interface]->Send(t.frame).ok()) {
      ++counters_.tx_frames;
    } else {
      ++counters_.tx_errors;
    }
    touched_[t.interface] = true;
  }
  tx_.clear();
  for (size_t i = 0; i < ports_.size(); ++i) {
    if (!touched_[i]) continue;
    touched_[i] = false;
    if (!ports_[i]->Flush().ok()) ++counters_.tx_errors;
  }
}

void DatapathLoop::MaybeTick(Nanos now) {
  if (now < next_tick_) return;
  ++counters_.ticks;
  pipeline_->Tick(now);
  resolver_.Tick(now, &tx_);
  for (auto& p : ports_) p->UpdateKernelStatistics();
  next_tick_ = now + options_.tick_interval;
}

absl::Status DatapathLoop::RunOnce(Nanos timeout) {
  Nanos now = clock_->Now();
  const Nanos wait = std::max<Nanos>(0, std::min(timeout, next_tick_ - now));
  // epoll counts milliseconds: round up so a short wait does not become a busy spin.
  const int wait_ms = static_cast<int>((wait + kNanosPerMilli - 1) / kNanosPerMilli);
  epoll_event events[kMaxEvents];
  const int n = epoll_wait(epoll_fd_, events, kMaxEvents, wait_ms);
  if (n < 0 && errno != EINTR) return Errno("epoll_wait");
  ++counters_.wakeups;
  now = clock_->Now();
  bool posted = false;
  for (int i = 0; i < n; ++i) {
    const uint32_t tag = events[i].data.u32;
    if (tag == kEventFdTag) {
      posted = true;
      continue;
    }
    const int interface = static_cast<int>(tag);
    ports_[interface]->Receive(
        [&](absl::Span<const uint8_t> frame) { HandleFrame(interface, frame, now); },
        options_.rx_batch);
  }
  FlushTransmits();
  if (posted) {
    RunPosted();
    FlushTransmits();
  }
  MaybeTick(clock_->Now());
  FlushTransmits();
  return absl::OkStatus();
}

absl::Status DatapathLoop::Run(const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_acquire)) {
    absl::Status s = RunOnce(options_.tick_interval);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

bool DatapathLoop::AddVirtualAddress(int interface, Family family, const IpAddress& address) {
  if (!responder_.AddVirtualAddress(interface, family, address)) return false;
  for (auto& f : responder_.Announce(interface, family, address)) {
    ++counters_.announcements;
    tx_.push_back({interface, std::move(f)});
  }
  FlushTransmits();
  return true;
}

void DatapathLoop::AnnounceVirtualAddresses() {
  for (const VirtualAddress& v : responder_.virtual_addresses()) {
    for (auto& f : responder_.Announce(v.interface, v.family, v.address)) {
      ++counters_.announcements;
      tx_.push_back({v.interface, std::move(f)});
    }
  }
  FlushTransmits();
}

bool DatapathLoop::RemoveVirtualAddress(int interface, Family family, const IpAddress& address) {
  return responder_.RemoveVirtualAddress(interface, family, address);
}

}  // namespace ctsync
