// Fuzz target: sync datagrams, before and after authentication.
//
// State (a Replicator with its verifier, an engine with a 64-entry table and the
// ExternalCache over it) is static, so replay windows, peers and learnt flows carry over
// between inputs. The input is a run of records (fuzz_input.h); kind % 4 says what a record
// is:
//   0  raw bytes: ParseHeader, a standalone DatagramVerifier, and Replicator::OnDatagram
//      (forged traffic: all of it must be dropped and counted, nothing applied);
//   1  a message signed with the test key, so it gets past the HMAC: body[0] picks the
//      message type, body[1] the header flags, the rest is the protobuf payload; the
//      sender is node 2 or 3 (kind bit 2), incarnation 1 or 2 (kind bit 3), and datagram
//      sequence numbers count up per sender;
//   2  a proto::Batch decoded directly (DecodeFlowUpdate) and applied to the ExternalCache,
//      bypassing the replicator's ordering, so every batch reaches the cache;
//   3  time: the clock moves body[0..1] milliseconds (x1000 when kind bit 2 is set), then
//      Replicator::Tick and engine expiry; kind bit 3 promotes (Commit), bit 4 flushes.
// Invariant: a forged datagram (kind 0) never changes the learnt-flow count.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/conntrack/conntrack_engine.h"
#include "core/util/clock.h"
#include "ctsync/sync.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "sync/external_apply.h"
#include "sync/flow_update_codec.h"
#include "sync/replicator.h"
#include "sync/wire.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/known_bugs.h"

namespace ctsync::fuzz {
namespace {

// The test key; make_seeds.py signs nothing (the target signs), so only this file has it.
constexpr char kKey[] = "ctsync-fuzz-test-key-0123456789a";
constexpr uint32_t kOwnNode = 1;

struct SyncNode {
  ManualClock clock;
  std::unique_ptr<ConntrackEngine> engine;
  std::unique_ptr<sync::ExternalCache> cache;
  std::unique_ptr<sync::Replicator> replicator;
  sync::DatagramVerifier raw_verifier{kOwnNode, sync::KeyConfig{kKey, "", 0}};
  uint64_t next_seq[2][2] = {{1, 1}, {1, 1}};  // [peer][incarnation]
};

// The clock only moves forward; after about 36 years of fuzzing time the node starts over
// so that deadlines never overflow.
constexpr Nanos kRestartAfter = Nanos{1} << 60;

std::unique_ptr<SyncNode> NewNode() {
  auto node = std::make_unique<SyncNode>();
  ConntrackOptions o;
  o.settings.nf_conntrack_max = 64;
  o.settings.nf_conntrack_buckets = 64;
  o.hash_seed = 2;
  auto engine = ConntrackEngine::Create(o, node->clock.Now());
  if (!engine.ok()) std::abort();
  node->engine = std::move(*engine);
  node->cache = std::make_unique<sync::ExternalCache>(*node->engine);
  sync::ReplicatorOptions ro;
  ro.node_id = kOwnNode;
  ro.incarnation = 1;
  ro.keys.key = kKey;
  ro.reorder_max = 64;
  sync::Replicator::Callbacks cb;
  cb.send = [](absl::Span<const uint8_t>) {};
  cb.apply = [node = node.get()](const sync::PeerFlowUpdate& u) {
    node->cache->Apply(u, node->clock.Now());
  };
  auto r = sync::Replicator::Create(ro, std::move(cb), node->clock);
  if (!r.ok()) std::abort();
  node->replicator = std::move(*r);
  return node;
}

SyncNode& TheNode() {
  static std::unique_ptr<SyncNode> n;
  if (!n || n->clock.Now() > kRestartAfter) n = NewNode();
  return *n;
}

void Raw(SyncNode& n, absl::Span<const uint8_t> bytes) {
  sync::WireHeader h;
  (void)sync::ParseHeader(bytes, &h);
  sync::VerifiedDatagram v;
  CTSYNC_FUZZ_CHECK(n.raw_verifier.Verify(bytes, n.clock.Now(), &v).has_value() ||
                    bytes.size() >= sync::kWireOverhead);
  const size_t learnt = n.cache->CountExternal();
  const uint64_t inserted = n.cache->stats().inserted;
  n.replicator->OnDatagram(bytes);
  // A random byte string that carries a valid HMAC-SHA256 tag is not going to happen.
  CTSYNC_FUZZ_CHECK(n.cache->stats().inserted == inserted);
  CTSYNC_FUZZ_CHECK(n.cache->CountExternal() == learnt);
}

void Signed(SyncNode& n, uint8_t kind, absl::Span<const uint8_t> body) {
  sync::WireHeader h;
  h.type = static_cast<sync::MsgType>(1 + (body.empty() ? 0 : body[0] % sync::kMaxMsgType));
  h.flags = body.size() > 1 ? body[1] : 0;
  const int peer = (kind >> 2) & 1;
  const int inc = (kind >> 3) & 1;
  h.node_id = 2 + peer;
  h.incarnation = 1 + inc;
  h.seq = n.next_seq[peer][inc]++;
  const absl::Span<const uint8_t> payload = body.size() > 2 ? body.subspan(2) : body.subspan(0, 0);
  if (h.type == sync::MsgType::kData) {
    proto::Batch b;
    if (b.ParseFromArray(payload.data(), static_cast<int>(payload.size())) && HitsKnownBug(b)) {
      return;
    }
  }
  std::string datagram;
  sync::EncodeDatagram(
      h, payload, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(kKey), sizeof(kKey) - 1),
      &datagram);
  n.replicator->OnDatagram(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(datagram.data()), datagram.size()));
}

void DirectBatch(SyncNode& n, uint8_t kind, absl::Span<const uint8_t> body) {
  proto::Batch b;
  if (!b.ParseFromArray(body.data(), static_cast<int>(body.size())) || HitsKnownBug(b)) return;
  const Nanos now = n.clock.Now();
  // The harness's own age: kept in range without multiplying the peer's number.
  const Nanos age = ((kind >> 2) & 7) * kNanosPerSecond / 4;
  sync::PeerFlowUpdate u;
  u.peer = 2 + ((kind >> 5) & 1);
  u.resync = b.resync();
  for (const proto::FlowUpdate& fu : b.updates()) {
    if (!sync::DecodeFlowUpdate(fu, b.wall_time_ms(), now, age, &u).ok()) continue;
    n.cache->Apply(u, now);
  }
}

void Time(SyncNode& n, uint8_t kind, absl::Span<const uint8_t> body) {
  Nanos ms = 0;
  if (body.size() > 0) ms = body[0];
  if (body.size() > 1) ms = ms << 8 | body[1];
  if (kind & 4) ms *= 1000;
  n.clock.Advance(ms * kNanosPerMilli);
  n.replicator->Tick();
  n.engine->Expire(n.clock.Now(), 1024);
  if (kind & 8) n.cache->Commit();
  if (kind & 16) n.cache->Flush(n.clock.Now());
}

}  // namespace
}  // namespace ctsync::fuzz

// Malformed strings are the point here: protobuf's complaint per parse would flood the log.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ctsync::fuzz;
  SyncNode& n = TheNode();
  RecordReader reader(data, size);
  FuzzRecord r;
  while (reader.Next(&r)) {
    switch (r.kind % 4) {
      case 0:
        Raw(n, r.body);
        break;
      case 1:
        Signed(n, r.kind, r.body);
        break;
      case 2:
        DirectBatch(n, r.kind, r.body);
        break;
      case 3:
        Time(n, r.kind, r.body);
        break;
    }
  }
  // Events of learnt flows are not needed here; keep the ring from filling.
  while (n.engine->events().Pop()) {
  }
  return 0;
}
