// Shared pieces of the fault tests (label integration): shell commands, network namespaces
// the test creates and deletes itself, entering a namespace on the calling thread to open
// sockets there, the process's resident memory, and one in-process ctsync node (engine +
// external cache + replicator over one UDP link), wired as the daemon wires them.
//
// Threads: everything runs on the test's thread unless a test says otherwise; a Node belongs
// to the thread running its io_context. Header-only test helper.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/udp.hpp"
#include "gtest/gtest.h"
#include "sync/external_apply.h"
#include "sync/replicator.h"
#include "sync/udp_channel.h"
#include "tests/sync/test_flows.h"

namespace ctsync::faults {

namespace asio = boost::asio;
using asio::ip::udp;

// Runs a shell command; returns its exit status (-1 if it could not run).
inline int Sh(const std::string& cmd) {
  const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

// Runs a shell command and returns its standard output.
inline std::string ShOut(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

// Root and the tools the namespace tests need (ip, nft). Tests skip without them.
inline bool CanUseNetns() {
  return ::geteuid() == 0 && Sh("command -v ip") == 0 && Sh("command -v nft") == 0;
}

// A short name unique to this process: namespaces and interfaces carry it, so parallel test
// processes never collide and leftovers name their owner.
inline std::string Tag(const std::string& what) {
  return absl::StrCat("ctf", ::getpid() % 100000, what);
}

// A network namespace, deleted (with its interfaces) by the destructor.
class Netns {
 public:
  explicit Netns(std::string name) : name_(std::move(name)) {
    Sh("ip netns del " + name_);
    ok_ = Sh("ip netns add " + name_) == 0 && Sh(Exec("ip link set lo up")) == 0;
  }
  ~Netns() { Sh("ip netns del " + name_); }
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  // `cmd` as run inside the namespace.
  std::string Exec(const std::string& cmd) const { return "ip netns exec " + name_ + " " + cmd; }

 private:
  std::string name_;
  bool ok_ = false;
};

// Moves the calling thread into a namespace until destroyed. Sockets opened meanwhile stay
// in that namespace for their whole life.
class EnterNetns {
 public:
  explicit EnterNetns(const std::string& name) {
    self_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    const int target = ::open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
    ok_ = self_ >= 0 && target >= 0 && ::setns(target, CLONE_NEWNET) == 0;
    if (target >= 0) ::close(target);
  }
  ~EnterNetns() {
    if (self_ >= 0) {
      if (::setns(self_, CLONE_NEWNET) != 0) std::abort();  // a test thread in the wrong netns
      ::close(self_);
    }
  }
  bool ok() const { return ok_; }

 private:
  int self_ = -1;
  bool ok_ = false;
};

// Resident set size of this process, from /proc/self/statm.
inline size_t RssBytes() {
  std::ifstream in("/proc/self/statm");
  size_t pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

inline uint64_t NextIncarnation() {
  static uint64_t inc = 1;
  return ++inc;
}

struct NodeOptions {
  uint32_t id = 1;
  std::string bind_address = "127.0.0.1";
  size_t table_max = 1 << 17;
  std::string key = "fault-key";
  // Adjusts the replicator's options (queue bounds, timers) before Create.
  std::function<void(sync::ReplicatorOptions&)> tune;
};

// One ctsync node: engine, replicator and external cache over one UDP unicast link.
// Promote/Demote do what ctsyncd's promote/demote commands do to the flow table.
struct Node {
  Node(asio::io_context& io, const NodeOptions& o) : id(o.id) {
    ConntrackOptions co;
    co.settings.nf_conntrack_max = static_cast<int64_t>(o.table_max);
    co.settings.nf_conntrack_buckets = static_cast<int64_t>(o.table_max);
    co.event_ring_capacity = 1 << 17;
    engine = std::move(*ConntrackEngine::Create(co, clock.Now()));
    ext = std::make_unique<sync::ExternalCache>(*engine);
    sync::UdpUnicastOptions uo;
    uo.bind_address = o.bind_address;
    uo.port = 0;
    auto ch = sync::UdpUnicastChannel::Create(io, uo);
    EXPECT_TRUE(ch.ok()) << ch.status();
    if (!ch.ok()) return;
    chan = std::move(*ch);
    bind = asio::ip::make_address(o.bind_address);
    sync::ReplicatorOptions ro;
    ro.node_id = o.id;
    ro.incarnation = NextIncarnation();
    ro.keys.key = o.key;
    ro.peer_dead_after = 300 * kNanosPerMilli;
    ro.alive_interval = 50 * kNanosPerMilli;
    ro.resync_retry = 200 * kNanosPerMilli;
    if (o.tune) o.tune(ro);
    sync::Replicator::Callbacks cb;
    cb.send = [this](absl::Span<const uint8_t> d) { chan->Send(d); };
    cb.apply = [this](const sync::PeerFlowUpdate& u) { ext->Apply(u, clock.Now()); };
    cb.dump = [this](uint64_t* cursor, size_t max, std::vector<FlowEvent>* out) {
      const FlowTable& t = engine->table();
      uint64_t i = *cursor;
      for (; i < t.capacity() && max > 0; ++i) {
        const FlowIndex idx = static_cast<FlowIndex>(i);
        if (!t.IsConfirmed(idx) || ext->IsExternal(idx)) continue;
        FlowEvent e;
        e.type = FlowEventType::kNew;
        e.index = idx;
        e.flow = t.flow(idx);
        out->push_back(e);
        --max;
      }
      *cursor = i;
      return i < t.capacity();
    };
    rep = std::move(*sync::Replicator::Create(ro, std::move(cb), clock));
    chan->SetReceiver([this](absl::Span<const uint8_t> d) { rep->OnDatagram(d); });
  }

  udp::endpoint endpoint() const { return udp::endpoint(bind, chan->local_port()); }
  void SetPeer(const udp::endpoint& peer) { chan->SetPeers({peer}); }

  // Local flows (numbered as in tests/sync/test_flows.h): into the engine; their events
  // reach the replicator at the next Pump, as the daemon's DrainEvents does.
  void AddLocal(uint32_t first, uint32_t count) {
    for (uint32_t i = first; i < first + count; ++i) {
      ASSERT_TRUE(
          engine->Insert(sync::testing::MakeTcpNatFlow(i, clock.Now()), nullptr, clock.Now()).ok());
    }
  }
  // Hands local events to `sink` (default: the replicator), then runs the timers.
  void Pump() {
    PublishLocalEvents();
    rep->Flush();
    rep->Tick();
  }
  // As the daemon: queued events are sorted before the commit changes what they mean.
  void Promote() {
    PublishLocalEvents();
    ext->Commit();
  }
  void Demote() { ext->AdoptLocal(0); }
  size_t Learnt() const { return ext->CountExternal(); }
  size_t Flows() const { return engine->table().confirmed_count(); }

  void PublishLocalEvents() {
    while (auto e = engine->events().Pop()) {
      if (ext->WasExternal(e->flow)) continue;
      if (event_sink) event_sink(*e);
      rep->Publish(*e);
    }
  }

  uint32_t id;
  SystemClock clock;
  std::unique_ptr<ConntrackEngine> engine;
  std::unique_ptr<sync::ExternalCache> ext;
  std::unique_ptr<sync::UdpUnicastChannel> chan;
  std::unique_ptr<sync::Replicator> rep;
  asio::ip::address bind;
  std::function<void(const FlowEvent&)> event_sink;  // e.g. the flow store
};

// Runs the io_context and the nodes' timers until `done` or `limit`.
inline bool RunUntil(asio::io_context& io, const std::vector<Node*>& nodes,
                     const std::function<bool()>& done,
                     std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    io.run_for(std::chrono::milliseconds(2));
    for (Node* n : nodes) n->Pump();
    if (done && done()) return true;
  }
  return false;
}

inline void RunFor(asio::io_context& io, const std::vector<Node*>& nodes,
                   std::chrono::milliseconds d) {
  RunUntil(io, nodes, nullptr, d);
}

}  // namespace ctsync::faults
