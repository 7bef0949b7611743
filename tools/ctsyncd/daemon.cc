#include "tools/ctsyncd/daemon.h"

#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/conntrack/flow_listing.h"
#include "core/conntrack/tcp_tracker.h"
#include "core/io/datapath_loop.h"
#include "core/nat/nat_engine.h"
#include "core/util/status_macros.h"
#include "proto/flow_codec.h"
#include "storage/flow_store.h"
#include "storage/restore.h"
#include "sync/external_apply.h"
#include "sync/fragment_update_codec.h"
#include "sync/link_set.h"
#include "sync/replicator.h"
#include "sync/udp_channel.h"
#include "tools/ctsyncd/control_server.h"
#include "tools/ctsyncd/log.h"
#include "tools/ctsyncd/metrics_server.h"
#include "tools/ctsyncd/store_keeper.h"

namespace ctsync::daemon {
namespace {

namespace asio = boost::asio;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

absl::StatusOr<std::unique_ptr<rules::RuleSet>> LoadRules(const std::string& path, Family f) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto rs = rules::RuleSet::Parse(text, f);
  if (!rs.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", rs.status().message()));
  return std::make_unique<rules::RuleSet>(std::move(*rs));
}

// "address" or "address:port" / "[v6]:port".
std::string WithPort(const std::string& peer, uint16_t port) {
  if (peer.find(']') != std::string::npos || std::count(peer.begin(), peer.end(), ':') == 1)
    return peer;
  if (peer.find(':') != std::string::npos) return absl::StrCat("[", peer, "]:", port);
  return absl::StrCat(peer, ":", port);
}

}  // namespace

// Engine messages (table full, ...) into the daemon's log.
class EngineLog : public LogSink {
 public:
  explicit EngineLog(const Logger& log) : log_(log) {}
  void Log(LogSeverity sev, std::string_view m) override {
    const std::string text(m);
    if (sev == LogSeverity::kError) {
      log_.Error(text);
    } else if (sev == LogSeverity::kWarning) {
      log_.Warning(text);
    } else {
      log_.Info(text);
    }
  }

 private:
  const Logger& log_;
};

class Daemon::Impl {
 public:
  explicit Impl(const DaemonConfig& c) : cfg(c), log(ParseLevel(c.log_level)) {}

  absl::Status Init();
  absl::Status Run(std::atomic<bool>& stop, std::atomic<bool>& reload);

  // Runs `fn` on the datapath thread and waits for its result.
  template <typename F>
  auto OnDatapath(F fn) -> decltype(fn()) {
    using R = decltype(fn());
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    auto fut = task->get_future();
    loop->Post([task] { (*task)(); });
    return fut.get();
  }
  template <typename F>
  auto OnSync(F fn) -> decltype(fn()) {
    using R = decltype(fn());
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    auto fut = task->get_future();
    asio::post(sync_io, [task] { (*task)(); });
    return fut.get();
  }

  absl::StatusOr<std::string> Handle(const std::vector<std::string>& args);
  std::string Metrics();

  // Datapath thread.
  void DrainEvents();
  void RepairRingDrops();
  void DrainAllEvents() {
    while (engine->events().size() > 0) DrainEvents();
  }
  std::string Dump(const std::string& which);
  std::string Promote();
  std::string Demote();
  bool DumpChunk(uint64_t* cursor, size_t max, std::vector<FlowEvent>* out);
  bool IsExternalEvent(const FlowEvent& e) const;

  // Sync thread.
  void SyncTick();

  // Datapath thread: the whole table in the store's two streams (StoreKeeper rewrites).
  void TableForStore(std::vector<proto::Flow>* live, std::vector<proto::Flow>* ext);

  DaemonConfig cfg;
  Logger log;
  EngineLog engine_log{log};
  Clock& clock = SystemClock::Get();
  std::unique_ptr<ConntrackEngine> engine;
  std::unique_ptr<NatEngine> nat;
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<DatapathLoop> loop;
  std::unique_ptr<sync::ExternalCache> external;

  asio::io_context sync_io;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> sync_work;
  std::unique_ptr<asio::steady_timer> sync_timer;
  std::unique_ptr<sync::LinkSet> links;
  std::unique_ptr<sync::Replicator> replicator;
  std::thread sync_thread;
  std::atomic<bool> drain_pending{false};

  std::unique_ptr<StoreKeeper> keeper;  // with storage-dir; its store may be closed
  std::unique_ptr<ControlServer> control;
  std::unique_ptr<MetricsServer> metrics;

  std::atomic<bool> active{false};
  std::atomic<bool> shutdown{false};
  std::atomic<int64_t> last_promotion_ns{-1};
  std::atomic<uint64_t> promotions{0};
  std::atomic<uint64_t> events_published{0};
  std::atomic<uint64_t> events_stored{0};
  // Datapath thread: ring drops already answered with a bulk update (or, at start, left
  // by the restore on purpose), and when the next update may go.
  uint64_t ring_drops_repaired = 0;
  Nanos next_ring_repair = 0;
  // Set once in Init, before any other thread runs: drops the restore caused.
  uint64_t ring_drops_at_start = 0;
  std::vector<std::pair<int, VipConfig>> vips;  // (interface index, vip)
};

absl::Status Daemon::Impl::Init() {
  ASSIGN_OR_RETURN(Topology topo, BuildTopology(cfg));
  for (const VipConfig& v : cfg.vips) vips.push_back({topo.FindInterface(v.dev), v});

  ConntrackOptions co;
  if (absl::Status s = co.settings.SetAll(cfg.sysctls); !s.ok())
    return absl::InvalidArgumentError(absl::StrCat(cfg.path, ": ", s.message()));
  co.hash_seed = static_cast<uint64_t>(clock.WallNanos()) ^ (uint64_t{cfg.node_id} << 32);
  // Room for a flush or restore of a large table; memory follows the backlog, not this.
  co.event_ring_capacity = 1 << 20;
  co.log = &engine_log;
  ASSIGN_OR_RETURN(engine, ConntrackEngine::Create(co, clock.Now()));
  nat = std::make_unique<NatEngine>(NatOptions{co.hash_seed}, engine.get());
  PipelineOptions po;
  po.ipv4_forwarding = cfg.ipv4_forwarding;
  po.ipv6_forwarding = cfg.ipv6_forwarding;
  po.seed = co.hash_seed;
  po.emit_unresolved = true;
  // With peers, fragment queues are replicated too (DrainEvents), so a peer promoted in
  // the middle of a fragmented datagram can still reassemble it. DrainEvents empties the
  // record every millisecond; the bound only matters if the sync thread stalls (8192
  // events: about 12 MiB of 1500-byte frames).
  if (!cfg.sync_links.empty()) po.defrag.export_capacity = 8192;
  pipeline = std::make_unique<Pipeline>(po, topo, engine.get(), nat.get());
  if (!cfg.rules_v4.empty()) {
    ASSIGN_OR_RETURN(auto rs, LoadRules(cfg.rules_v4, Family::kIpv4));
    pipeline->SetRules(Family::kIpv4, std::move(rs));
  }
  if (!cfg.rules_v6.empty()) {
    ASSIGN_OR_RETURN(auto rs, LoadRules(cfg.rules_v6, Family::kIpv6));
    pipeline->SetRules(Family::kIpv6, std::move(rs));
  }
  external = std::make_unique<sync::ExternalCache>(*engine);

  // Durable state first: flows are back in the table before the first packet is read.
  if (!cfg.storage_dir.empty()) {
    storage::FlowStoreOptions so;
    so.path = cfg.storage_dir + "/store";
    so.node_id = absl::StrCat(cfg.node_id);
    so.clock = &clock;
    so.sync = cfg.storage_sync == "none"          ? storage::SyncPolicy::kNone
              : cfg.storage_sync == "every-batch" ? storage::SyncPolicy::kEveryBatch
                                                  : storage::SyncPolicy::kInterval;
    so.sync_interval = cfg.storage_sync_interval_ms * kNanosPerMilli;
    so.snapshot_root = cfg.storage_dir;
    so.snapshot_retain = static_cast<size_t>(cfg.snapshot_retention);
    so.snapshot_interval = Nanos{cfg.snapshot_interval_s} * kNanosPerSecond;
    StoreKeeper::Hooks hooks;
    hooks.on_datapath = [this](absl::FunctionRef<void()> fn) {
      OnDatapath([&] {
        fn();
        return 0;
      });
    };
    hooks.table = [this](std::vector<proto::Flow>* live, std::vector<proto::Flow>* ext) {
      TableForStore(live, ext);
    };
    hooks.error = [this](const std::string& m) { log.Error(m); };
    hooks.info = [this](const std::string& m) { log.Info(m); };
    hooks.events_dropped = [this] { return engine->events().dropped() - ring_drops_at_start; };
    keeper = std::make_unique<StoreKeeper>(StoreKeeperOptions{so}, std::move(hooks), clock);
  }
  // A store that does not open (full or read-only disk) must not keep the firewall down:
  // the node starts without its saved flows and the keeper goes on trying.
  if (keeper && keeper->Open().ok()) {
    const std::shared_ptr<storage::FlowStore> store = keeper->store();
    const std::string& path = store->options().path;
    const Nanos now = clock.Now();
    // Streamed: flows go into the table while the rest is still being read and decoded.
    // Live flows all come first; their masters are linked before any external flow is in.
    storage::EngineRestorer live_restorer(*engine, now);
    std::optional<storage::EngineRestoreResult> live_result;
    size_t ext = 0;
    ASSIGN_OR_RETURN(
        storage::RestoredFlows restored,
        store->Restore(now, clock.WallNanos(),
                       [&](storage::Stream s, absl::Span<codec::DecodedFlow> flows) {
                         if (s == storage::Stream::kLive) {
                           live_restorer.Add(flows);
                           return;
                         }
                         if (!live_result) live_result = live_restorer.Finish();
                         for (const codec::DecodedFlow& d : flows) {
                           sync::PeerFlowUpdate u;
                           u.type = FlowEventType::kNew;
                           u.decoded = d;
                           u.original = d.flow.tuple[0];
                           u.zone = d.flow.zone;
                           ext += external->Apply(u, now) == sync::ExternalCache::Result::kInserted;
                         }
                       }));
    if (!live_result) live_result = live_restorer.Finish();
    const storage::EngineRestoreResult& live = *live_result;
    log.Info(absl::StrFormat("restored %u live and %u external flows from %s (%u expired, %u corrupt)",
                             live.inserted, ext, path, restored.expired, restored.corrupt));
    for (const std::string& e : restored.errors) log.Warning("restore: " + e);
    // What is on disk may lag the wire by the store's sync window, and a TCP window that
    // far behind would make the next segments INVALID. Like the kernel does for a
    // connection it picks up mid-stream, restored TCP flows re-learn both windows from
    // their next segments; state, NAT binding and ASSURED are kept.
    engine->table().ForEach([&](FlowIndex idx, const Flow&) {
      Flow& f = engine->table().flow(idx);
      if (f.proto() != kProtoTcp) return;
      for (TcpDirState& d : f.tcp.seen) {
        d.td_maxwin = 0;
        d.flags &= static_cast<uint8_t>(~kTcpFlagMaxackSet);
      }
    });
    // The restore emitted NEW events for what is already on disk: not worth writing again,
    // and those the ring had no room for are no gap either (nor for the store keeper).
    while (engine->events().Pop()) {
    }
    ring_drops_repaired = engine->events().dropped();
    ring_drops_at_start = ring_drops_repaired;
    // Restored flows are provisional until keepalived makes this node active: if the peer
    // is active, its versions win (and ours are never sent back to it).
    if (!cfg.sync_links.empty()) external->AdoptLocal(0);
  }

  PacketSocketOptions pso;
  ASSIGN_OR_RETURN(auto ports, DatapathLoop::OpenPacketSockets(pipeline->topology(), pso));
  DatapathLoopOptions lo;
  ASSIGN_OR_RETURN(loop, DatapathLoop::Create(lo, pipeline.get(), &clock, std::move(ports)));
  // Every node holds the VIP addresses as "standby": NAT and routing treat them the same
  // everywhere, but only the active node answers ARP for them.
  std::vector<VirtualAddress> standby;
  for (const auto& [iface, v] : vips) standby.push_back({iface, v.family, v.address});
  loop->responder().SetStandbyAddresses(standby);

  if (!cfg.sync_links.empty()) {
    sync::ReplicatorOptions ro;
    ro.node_id = cfg.node_id;
    if (!cfg.sync_key_file.empty()) {
      ASSIGN_OR_RETURN(ro.keys.key, ReadFile(cfg.sync_key_file));
      while (!ro.keys.key.empty() && (ro.keys.key.back() == '\n' || ro.keys.key.back() == '\r'))
        ro.keys.key.pop_back();
    }
    if (ro.keys.key.empty())
      return absl::InvalidArgumentError(absl::StrCat(cfg.path, ": sync links need sync-key-file"));
    if (!cfg.sync_previous_key_file.empty()) {
      ASSIGN_OR_RETURN(ro.keys.previous_key, ReadFile(cfg.sync_previous_key_file));
      while (!ro.keys.previous_key.empty() && ro.keys.previous_key.back() == '\n')
        ro.keys.previous_key.pop_back();
      // The previous key is honoured until a wall-clock deadline; the replicator counts
      // time on the monotonic clock, so translate.
      ro.keys.previous_key_until =
          clock.Now() + cfg.sync_previous_key_until * kNanosPerSecond - clock.WallNanos();
    }
    ro.mode = cfg.sync_mode == "best-effort" ? sync::ReplicationMode::kBestEffort
              : cfg.sync_mode == "refresh"   ? sync::ReplicationMode::kRefresh
                                             : sync::ReplicationMode::kReliable;
    std::vector<std::unique_ptr<sync::SyncChannel>> chans;
    for (const SyncLinkConfig& l : cfg.sync_links) {
      if (l.kind == SyncLinkConfig::Kind::kUdpUnicast) {
        sync::UdpUnicastOptions u;
        if (!l.local.empty()) u.bind_address = l.local;
        u.port = l.port;
        for (const std::string& p : l.peers) u.peers.push_back(WithPort(p, l.port));
        ASSIGN_OR_RETURN(auto ch, sync::UdpUnicastChannel::Create(sync_io, u));
        chans.push_back(std::move(ch));
      } else if (l.kind == SyncLinkConfig::Kind::kUdpMulticast) {
        sync::UdpMulticastOptions m;
        m.group = l.group;
        m.port = l.port;
        if (!l.local.empty()) m.interface_address = l.local;
        ASSIGN_OR_RETURN(auto ch, sync::UdpMulticastChannel::Create(sync_io, m));
        chans.push_back(std::move(ch));
      } else {
        return absl::UnimplementedError(absl::StrCat(cfg.path, ": tcp sync links are not supported by this build"));
      }
    }
    // A datagram may leave on any link (fallback, retransmission), so batches are sized
    // for the smallest: 1472 on 1500-byte Ethernet, up to 65507 on loopback-like links.
    ro.mtu = chans.front()->max_datagram();
    for (const auto& ch : chans) ro.mtu = std::min(ro.mtu, ch->max_datagram());
    links = std::make_unique<sync::LinkSet>(std::move(chans), 3 * ro.alive_interval);
    sync::Replicator::Callbacks cb;
    cb.send = [this](absl::Span<const uint8_t> d) { links->Send(d); };
    cb.apply = [this](const sync::PeerFlowUpdate& u) {
      loop->Post([this, u] { external->Apply(u, clock.Now()); });
    };
    // One post per received batch, not per flow: the datapath applies the run with its
    // lookups prefetched (ExternalCache::ApplyBatch).
    cb.apply_batch = [this](absl::Span<const sync::PeerFlowUpdate> us) {
      loop->Post([this, batch = std::vector<sync::PeerFlowUpdate>(us.begin(), us.end())] {
        external->ApplyBatch(batch, clock.Now());
      });
    };
    cb.dump = [this](uint64_t* cursor, size_t max, std::vector<FlowEvent>* out) {
      return OnDatapath([&] { return DumpChunk(cursor, max, out); });
    };
    cb.apply_fragment = [this](const sync::PeerFragmentUpdate& u) {
      loop->Post([this, u] { sync::ApplyFragmentUpdate(u, pipeline->defragmenter(), clock.Now()); });
    };
    cb.peer_event = [this](const sync::PeerEvent& e) {
      static const char* kNames[] = {"joined", "restarted", "dead", "recovered", "resync done"};
      log.Info(absl::StrFormat("peer %u %s", e.node_id, kNames[static_cast<int>(e.kind)]));
    };
    ASSIGN_OR_RETURN(replicator, sync::Replicator::Create(ro, std::move(cb), clock));
    links->SetLinkReceiver([this](size_t link, absl::Span<const uint8_t> d) {
      links->NoteHeard(link, clock.Now());
      replicator->OnDatagram(d);
    });
  }

  control = nullptr;
  ASSIGN_OR_RETURN(control, ControlServer::Start(cfg.control_socket, [this](const auto& a) {
                     return Handle(a);
                   }));
  if (!cfg.metrics_listen.empty()) {
    ASSIGN_OR_RETURN(metrics, MetricsServer::Start(cfg.metrics_listen, [this] { return Metrics(); }));
  }
  return absl::OkStatus();
}

bool Daemon::Impl::IsExternalEvent(const FlowEvent& e) const {
  return external->WasExternal(e.flow);
}

void Daemon::Impl::DrainEvents() {
  drain_pending.store(false);
  std::vector<FlowEvent> local, ext;
  while (auto e = engine->events().Pop()) {
    (IsExternalEvent(*e) ? ext : local).push_back(std::move(*e));
    if (local.size() + ext.size() >= 4096) break;
  }
  if (const std::shared_ptr<storage::FlowStore> store = keeper ? keeper->store() : nullptr) {
    events_stored += store->EnqueueBatch(storage::Stream::kLive, local);
    events_stored += store->EnqueueBatch(storage::Stream::kExternal, ext);
  }
  // Flows learnt from a peer are never sent back to it; only this node's own flows are.
  if (replicator && !local.empty()) {
    events_published += local.size();
    asio::post(sync_io, [this, l = std::move(local)] {
      for (const FlowEvent& e : l) replicator->Publish(e);
    });
  }
  // Fragment queues of this node's reassembler (a peer's imported fragments record none).
  std::vector<DefragEvent> frags;
  DefragEvent fe;
  while (frags.size() < 4096 && pipeline->defragmenter().PopEvent(&fe)) frags.push_back(std::move(fe));
  if (replicator && !frags.empty()) {
    asio::post(sync_io, [this, f = std::move(frags)] {
      for (const DefragEvent& e : f) replicator->PublishFragment(e);
    });
  }
  RepairRingDrops();
}

void Daemon::Impl::RepairRingDrops() {
  // Events the ring dropped never reached the peers (the store keeper repairs the store).
  // A bulk update brings the peers' copies of this node's flows up to date again; it
  // cannot remove flows whose DESTROY was dropped, which stay on the peers until they
  // expire. The dump starts once the ring is empty, after the publishes of every event
  // drained before it, so no older event follows the dump's newer copy; and at most once a
  // second, as an overflow lasts many drains and one dump covers them all.
  const uint64_t dropped = engine->events().dropped();
  if (dropped == ring_drops_repaired || engine->events().size() > 0 ||
      clock.Now() < next_ring_repair)
    return;
  log.Warning(absl::StrCat("event ring overflowed: ", dropped - ring_drops_repaired,
                           " events dropped; sending peers a bulk update"));
  ring_drops_repaired = dropped;
  next_ring_repair = clock.Now() + kNanosPerSecond;
  if (replicator) asio::post(sync_io, [this] { replicator->StartDump(); });
}

bool Daemon::Impl::DumpChunk(uint64_t* cursor, size_t max, std::vector<FlowEvent>* out) {
  // The resync dump walks the slab by index: stable under inserts and removals.
  const FlowTable& t = engine->table();
  const Nanos now = clock.Now();
  uint64_t i = *cursor;
  for (; i < t.capacity() && out->size() < max; ++i) {
    const FlowIndex idx = static_cast<FlowIndex>(i);
    if (!t.IsConfirmed(idx) || external->IsExternal(idx)) continue;
    // With its side state (sequence adjustment, master, FTP state, expectation): a peer
    // that resyncs must be able to take over a NATed FTP session too.
    out->push_back(engine->Describe(FlowEventType::kNew, idx, now));
  }
  *cursor = i;
  return i < t.capacity();
}

std::string Daemon::Impl::Dump(const std::string& which) {
  std::string out;
  const Nanos now = clock.Now();
  engine->table().ForEach([&](FlowIndex idx, const Flow& f) {
    if (f.expires <= now) return;
    const bool ext = external->IsExternal(idx);
    if ((which == "internal" && ext) || (which == "external" && !ext)) return;
    ListingOptions lo;
    lo.use = static_cast<uint32_t>(engine->UseCount(idx));
    lo.counters = engine->table().accounting(idx);
    absl::StrAppend(&out, FormatConntrackLine(f, now, ListingFormat::kConntrackL, lo), "\n");
  });
  return out;
}

std::string Daemon::Impl::Promote() {
  const Nanos start = clock.Now();
  // Events already queued are sorted by the marks of the generation that ends here.
  DrainAllEvents();
  // Fenced takeover: the peers' flows become this node's own first...
  external->Commit();
  // ...and only then does the node answer for the virtual addresses and announce them.
  for (const auto& [iface, v] : vips) loop->AddVirtualAddress(iface, v.family, v.address);
  loop->AnnounceVirtualAddresses();
  const Nanos took = clock.Now() - start;
  active.store(true);
  last_promotion_ns.store(took);
  ++promotions;
  return absl::StrFormat("active: promoted in %.3f ms (%u flows)\n", took / 1e6,
                         engine->table().confirmed_count());
}

std::string Daemon::Impl::Demote() {
  // Stop answering for the VIPs before anything else.
  for (const auto& [iface, v] : vips) loop->RemoveVirtualAddress(iface, v.family, v.address);
  active.store(false);
  // What this node held is now the new active's to decide: its updates replace our
  // copies, and we never announce them again.
  const size_t n = external->AdoptLocal(0);
  return absl::StrCat("backup (", n, " flows now provisional)\n");
}

absl::StatusOr<std::string> Daemon::Impl::Handle(const std::vector<std::string>& a) {
  const std::string& cmd = a[0];
  if (cmd == "state") return std::string(active.load() ? "active\n" : "backup\n");
  if (cmd == "promote" || cmd == "commit") {
    std::string r = OnDatapath([this] { return Promote(); });
    log.Info(r.substr(0, r.size() - 1));
    return r;
  }
  if (cmd == "demote") {
    std::string r = OnDatapath([this] { return Demote(); });
    log.Info("demoted to backup");
    return r;
  }
  if (cmd == "dump") {
    const std::string which = a.size() > 1 ? a[1] : "live";
    if (which != "live" && which != "internal" && which != "external")
      return absl::InvalidArgumentError("dump live|internal|external");
    return OnDatapath([&] { return Dump(which); });
  }
  if (cmd == "flush") {
    const std::string which = a.size() > 1 ? a[1] : "all";
    return OnDatapath([&]() -> std::string {
      size_t n = 0;
      const Nanos now = clock.Now();
      if (which == "external" || which == "all") n += external->Flush(now);
      if (which == "internal" || which == "all") {
        std::vector<FlowIndex> mine;
        engine->table().ForEach([&](FlowIndex i, const Flow&) {
          if (!external->IsExternal(i)) mine.push_back(i);
        });
        for (FlowIndex i : mine) engine->Kill(i, now);
        n += mine.size();
      }
      return absl::StrCat(n, " flows flushed\n");
    });
  }
  if (cmd == "resync" || cmd == "bulk") {
    if (!replicator) return absl::FailedPreconditionError("no sync links configured");
    OnSync([&] {
      if (cmd == "resync")
        replicator->RequestResync();
      else
        replicator->StartDump();
      return 0;
    });
    return std::string(cmd == "resync" ? "resync requested\n" : "bulk send started\n");
  }
  if (cmd == "snapshot") {
    if (!keeper) return absl::FailedPreconditionError("no storage-dir configured");
    const std::shared_ptr<storage::FlowStore> store = keeper->store();
    if (!store) return absl::UnavailableError("the store is closed after an error (see the log)");
    ASSIGN_OR_RETURN(storage::SnapshotInfo info, store->TakeSnapshot("command"));
    return absl::StrCat("snapshot ", info.path, "\n");
  }
  if (cmd == "sysctl") {
    if (a.size() < 2) return absl::InvalidArgumentError("sysctl NAME [VALUE]");
    return OnDatapath([&]() -> absl::StatusOr<std::string> {
      ConntrackSettings s = engine->settings();
      if (a.size() > 2) {
        int64_t v;
        if (!absl::SimpleAtoi(a[2], &v)) return absl::InvalidArgumentError("value must be a number");
        RETURN_IF_ERROR(s.Set(a[1], v));
        engine->SetSettings(s);
      }
      ASSIGN_OR_RETURN(int64_t v, s.Get(a[1]));
      return absl::StrCat(a[1], " = ", v, "\n");
    });
  }
  if (cmd == "counters") {
    return OnDatapath([&] {
      ConntrackStats s = engine->stats();
      return FormatConntrackS(absl::Span<const ConntrackStats>(&s, 1));
    });
  }
  if (cmd == "expect") {
    return OnDatapath([&] {
      std::string out;
      for (const Expectation& e : engine->expectations().all())
        absl::StrAppend(&out, FormatExpectation(e, clock.Now()), "\n");
      return out;
    });
  }
  if (cmd == "stats") return Metrics();
  if (cmd == "reload") {
    std::string r;
    for (const auto& p : {std::pair{cfg.rules_v4, Family::kIpv4}, std::pair{cfg.rules_v6, Family::kIpv6}}) {
      const std::string& path = p.first;
      const Family fam = p.second;
      if (path.empty()) continue;
      ASSIGN_OR_RETURN(auto rs, LoadRules(path, fam));
      OnDatapath([&] {
        pipeline->SetRules(fam, std::move(rs));
        return 0;
      });
      absl::StrAppend(&r, "reloaded ", path, "\n");
    }
    return r;
  }
  if (cmd == "shutdown") {
    shutdown.store(true);
    return std::string("shutting down\n");
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown command '", cmd, "'"));
}

std::string Daemon::Impl::Metrics() {
  std::string out;
  struct Snap {
    std::map<std::string, uint64_t> by_state;
    size_t total = 0, external = 0;
    ConntrackStats stats;
    PipelineCounters pc;
    DatapathLoopCounters lc;
    DefragCounters dc;
    size_t defrag_queues = 0, defrag_memory = 0;
    size_t events_dropped = 0;
  };
  Snap s = OnDatapath([this] {
    Snap s;
    engine->table().ForEach([&](FlowIndex i, const Flow& f) {
      ++s.total;
      if (external->IsExternal(i)) ++s.external;
      const std::string st = f.proto() == kProtoTcp ? TcpStateName(f.tcp.state)
                                                    : (f.status & kIpsAssured ? "ASSURED" : "UNREPLIED_OR_SEEN");
      ++s.by_state[st];
    });
    s.stats = engine->stats();
    s.pc = pipeline->counters();
    s.lc = loop->counters();
    s.dc = pipeline->defragmenter().counters();
    s.defrag_queues = pipeline->defragmenter().queue_count();
    s.defrag_memory = pipeline->defragmenter().memory_used();
    s.events_dropped = engine->events().dropped();
    return s;
  });
  absl::StrAppend(&out, "# TYPE ctsync_flows gauge\n");
  for (const auto& [st, n] : s.by_state) absl::StrAppend(&out, PromLine("ctsync_flows", absl::StrCat("state=\"", st, "\""), n));
  absl::StrAppend(&out, PromLine("ctsync_flows_total", "", s.total));
  absl::StrAppend(&out, PromLine("ctsync_flows_external", "", s.external));
  absl::StrAppend(&out, PromLine("ctsync_active", "", active.load() ? 1 : 0));
  absl::StrAppend(&out, "# TYPE ctsync_conntrack_stat_total counter\n");
  for (auto [name, v] : {std::pair{"found", s.stats.found}, {"invalid", s.stats.invalid},
                         {"insert_failed", s.stats.insert_failed}, {"drop", s.stats.drop},
                         {"early_drop", s.stats.early_drop}, {"error", s.stats.error}})
    absl::StrAppend(&out, PromLine("ctsync_conntrack_stat_total", absl::StrCat("name=\"", name, "\""), v));
  absl::StrAppend(&out, "# TYPE ctsync_pipeline_total counter\n");
#define CTSYNC_PROM(name) \
  absl::StrAppend(&out, PromLine("ctsync_pipeline_total", "counter=\"" #name "\"", s.pc.name));
  CTSYNC_PIPELINE_COUNTERS(CTSYNC_PROM)
#undef CTSYNC_PROM
  // Reassembly, learnt (peer) fragment queues included.
  absl::StrAppend(&out, "# TYPE ctsync_defrag_total counter\n");
  s.dc.ForEach([&](const char* name, uint64_t v) {
    absl::StrAppend(&out, PromLine("ctsync_defrag_total", absl::StrCat("counter=\"", name, "\""), v));
  });
  absl::StrAppend(&out, PromLine("ctsync_defrag_queues", "", s.defrag_queues));
  absl::StrAppend(&out, PromLine("ctsync_defrag_memory_bytes", "", s.defrag_memory));
  absl::StrAppend(&out, PromLine("ctsync_events_dropped_total", "", s.events_dropped));
  absl::StrAppend(&out, PromLine("ctsync_events_published_total", "", events_published.load()));
  absl::StrAppend(&out, PromLine("ctsync_promotions_total", "", promotions.load()));
  if (last_promotion_ns.load() >= 0)
    absl::StrAppend(&out, PromLine("ctsync_promotion_seconds", "", last_promotion_ns.load() / 1e9));
  if (replicator) {
    auto rs = OnSync([this] { return replicator->stats(); });
    // Read on the sync thread, which owns the replicator (last_stream_seq included).
    auto [peers, last_seq] = OnSync(
        [this] { return std::make_pair(replicator->Peers(), replicator->last_stream_seq()); });
    rs.ForEach([&](const char* name, uint64_t v) {
      absl::StrAppend(&out, PromLine("ctsync_sync_total", absl::StrCat("counter=\"", name, "\""), v));
    });
    for (const auto& p : peers) {
      const std::string l = absl::StrCat("peer=\"", p.node_id, "\"");
      absl::StrAppend(&out, PromLine("ctsync_peer_alive", l, p.alive ? 1 : 0));
      absl::StrAppend(&out, PromLine("ctsync_peer_unacked_events", l,
                                     static_cast<double>(last_seq - p.acked_ours)));
    }
  }
  if (keeper) {
    const storage::FlowStoreCounters c = keeper->counters();
    absl::StrAppend(&out, PromLine("ctsync_store_committed_total", "", c.committed));
    absl::StrAppend(&out, PromLine("ctsync_store_dropped_total", "", c.dropped_queue_full));
    absl::StrAppend(&out, PromLine("ctsync_store_write_errors_total", "", c.write_errors));
    absl::StrAppend(&out, PromLine("ctsync_store_sync_errors_total", "", c.sync_errors));
    absl::StrAppend(&out, PromLine("ctsync_store_lost_events_total", "", c.lost_to_errors));
    absl::StrAppend(&out, PromLine("ctsync_store_healthy", "", keeper->healthy() ? 1 : 0));
    absl::StrAppend(&out, PromLine("ctsync_store_reopens_total", "", keeper->reopens()));
    absl::StrAppend(&out, PromLine("ctsync_store_table_rewrites_total", "", keeper->table_rewrites()));
    absl::StrAppend(&out, PromLine("ctsync_store_syncs_total", "", c.syncs));
    absl::StrAppend(&out, PromLine("ctsync_snapshots_total", "", c.snapshots));
    absl::StrAppend(&out, PromLine("ctsync_snapshot_errors_total", "", c.snapshot_errors));
  }
  return out;
}

void Daemon::Impl::TableForStore(std::vector<proto::Flow>* live, std::vector<proto::Flow>* ext) {
  // Events not yet handed over are older than the copy: they must not land after it.
  DrainAllEvents();
  const Nanos now = clock.Now();
  const Nanos wall_now = clock.WallNanos();
  engine->table().ForEach([&](FlowIndex idx, const Flow& f) {
    if (f.expires <= now) return;
    const FlowEvent e = engine->Describe(FlowEventType::kNew, idx, now);
    std::vector<proto::Flow>* to = external->IsExternal(idx) ? ext : live;
    codec::FlowToProto(e.flow, now, wall_now, codec::ExtrasOf(e), &to->emplace_back());
  });
}

void Daemon::Impl::SyncTick() {
  if (replicator) {
    links->Update(clock.Now());
    replicator->Tick();
    replicator->Flush();
  }
  if (!drain_pending.exchange(true)) loop->Post([this] { DrainEvents(); });
  sync_timer->expires_after(std::chrono::milliseconds(1));
  sync_timer->async_wait([this](const boost::system::error_code& ec) {
    if (!ec) SyncTick();
  });
}

absl::Status Daemon::Impl::Run(std::atomic<bool>& stop, std::atomic<bool>& reload) {
  sync_work = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      sync_io.get_executor());
  sync_timer = std::make_unique<asio::steady_timer>(sync_io);
  asio::post(sync_io, [this] { SyncTick(); });
  sync_thread = std::thread([this] { sync_io.run(); });
  if (cfg.start_state == "active") loop->Post([this] {
    std::string r = Promote();
    log.Info(r.substr(0, r.size() - 1));
  });
  if (replicator) asio::post(sync_io, [this] { replicator->RequestResync(); });
  log.Info(absl::StrFormat("node %u running (%s)", cfg.node_id, cfg.start_state));

  std::atomic<bool> loop_stop{false};
  absl::Status loop_status;
  std::thread datapath([&] { loop_status = loop->Run(loop_stop); });
  while (!stop.load() && !shutdown.load()) {
    if (reload.exchange(false)) {
      auto r = Handle({"reload"});
      if (r.ok()) {
        log.Info("rules reloaded");
      } else {
        log.Error(std::string(r.status().message()));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (keeper) keeper->Check();
  }
  log.Info("stopping");
  control.reset();
  metrics.reset();
  // Every record with the flow's exact remaining time: the next start ages it by the
  // downtime alone (a record written at the flow's last event would also count the time
  // since then).
  if (keeper) keeper->RewriteNow();
  loop_stop.store(true);
  loop->Post([] {});
  datapath.join();
  sync_work.reset();
  asio::post(sync_io, [this] { sync_timer->cancel(); });
  sync_io.stop();
  sync_thread.join();
  if (keeper) {
    if (absl::Status s = keeper->Close(); !s.ok()) log.Error(absl::StrCat("store: ", s.message()));
  }
  return loop_status;
}

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Daemon::~Daemon() = default;

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Create(const DaemonConfig& config) {
  auto impl = std::make_unique<Impl>(config);
  RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

absl::Status Daemon::Run(std::atomic<bool>& stop) { return impl_->Run(stop, reload_); }

}  // namespace ctsync::daemon
