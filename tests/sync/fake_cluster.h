// A cluster of Replicators joined by an in-memory "network" that can lose, duplicate and
// reorder datagrams, driven by one ManualClock: reliability tests run in microseconds and
// never sleep. Each node keeps its local flows (the dump source) and the flows it learnt
// (what the apply callback was given). Test helper, single-threaded.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"
#include "sync/replicator.h"
#include "tests/sync/test_flows.h"

namespace ctsync::sync::testing {

struct Faults {
  double loss = 0;       // probability a copy is dropped
  double duplicate = 0;  // probability a copy is delivered twice
  double reorder = 0;    // probability a copy jumps ahead of up to 16 queued ones
};

class FakeCluster {
 public:
  struct Node {
    uint32_t id = 0;
    std::unique_ptr<Replicator> rep;
    std::map<uint64_t, Flow> local;                  // by flow id: the dump source
    absl::flat_hash_map<Tuple, Flow> learnt;         // by original tuple
    std::vector<PeerEvent> peer_events;
    std::vector<PeerFragmentUpdate> fragments;  // peers' fragment events, in arrival order
    uint64_t applies = 0;
    bool up = true;
  };

  explicit FakeCluster(uint32_t seed = 1) : rng_(seed) {}

  ReplicatorOptions DefaultOptions(uint32_t id) const {
    ReplicatorOptions o;
    o.node_id = id;
    o.incarnation = next_incarnation_;
    o.keys.key = "cluster-key";
    return o;
  }

  Node& AddNode(ReplicatorOptions o) {
    if (o.incarnation == 0) o.incarnation = next_incarnation_;
    ++next_incarnation_;
    auto node = std::make_unique<Node>();
    node->id = o.node_id;
    Node* n = node.get();
    Replicator::Callbacks cb;
    cb.send = [this, n](absl::Span<const uint8_t> d) {
      if (n->up) Broadcast(n->id, std::string(d.begin(), d.end()));
    };
    cb.apply = [n](const PeerFlowUpdate& u) {
      ++n->applies;
      if (u.type == FlowEventType::kDestroy) {
        n->learnt.erase(u.original);
      } else {
        n->learnt[u.original] = u.decoded.flow;
      }
    };
    cb.dump = [n](uint64_t* cursor, size_t max, std::vector<FlowEvent>* out) {
      auto it = n->local.lower_bound(*cursor);
      for (; it != n->local.end() && max > 0; ++it, --max) {
        out->push_back(MakeEvent(FlowEventType::kNew, it->second, 0));
      }
      if (it == n->local.end()) return false;
      *cursor = it->first;
      return true;
    };
    cb.peer_event = [n](const PeerEvent& e) { n->peer_events.push_back(e); };
    cb.apply_fragment = [n](const PeerFragmentUpdate& u) { n->fragments.push_back(u); };
    auto rep = Replicator::Create(o, std::move(cb), clock_);
    EXPECT_TRUE(rep.ok()) << rep.status();
    node->rep = std::move(*rep);
    nodes_.push_back(std::move(node));
    return *nodes_.back();
  }

  // Replaces node `id` by a fresh instance (restart: empty learnt cache, new incarnation);
  // its local flows survive, as a restarted daemon's engine table would (or not: tests say).
  Node& Restart(uint32_t id, bool keep_local) {
    for (auto& n : nodes_) {
      if (n->id != id) continue;
      std::map<uint64_t, Flow> local = keep_local ? n->local : std::map<uint64_t, Flow>{};
      n->up = false;
      ReplicatorOptions o = DefaultOptions(id);
      o.mode = mode_;
      Node& fresh = AddNode(o);
      fresh.local = std::move(local);
      return fresh;
    }
    ADD_FAILURE() << "no node " << id;
    return *nodes_.front();
  }

  // Local flow change on node `n`: recorded locally and published.
  void Local(Node& n, FlowEventType type, const Flow& f) {
    if (type == FlowEventType::kDestroy) {
      n.local.erase(f.id);
    } else {
      n.local[f.id] = f;
    }
    n.rep->Publish(MakeEvent(type, f, clock_.Now()));
  }

  // Delivers queued datagrams and ticks every node each simulated millisecond, for
  // `duration` of simulated time.
  void Run(Nanos duration) {
    const Nanos end = clock_.Now() + duration;
    while (clock_.Now() < end) {
      for (auto& n : nodes_)
        if (n->up) n->rep->Flush();
      DeliverAll();
      clock_.Advance(kNanosPerMilli);
      for (auto& n : nodes_)
        if (n->up) n->rep->Tick();
    }
  }

  // Injects raw bytes to node `to` as if from the network.
  void Inject(Node& to, const std::string& d) {
    to.rep->OnDatagram({reinterpret_cast<const uint8_t*>(d.data()), d.size()});
  }

  // Every datagram node `from` sends from now on is also copied here (for replay tests).
  std::vector<std::string>& Tap(uint32_t from) { return taps_[from]; }

  void set_faults(Faults f) { faults_ = f; }
  void set_mode(ReplicationMode m) { mode_ = m; }
  ManualClock& clock() { return clock_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t duplicated() const { return duplicated_; }

 private:
  struct InFlight {
    uint32_t to;
    std::string bytes;
  };

  bool Chance(double p) { return p > 0 && std::uniform_real_distribution<>(0, 1)(rng_) < p; }

  void Broadcast(uint32_t from, std::string d) {
    if (auto it = taps_.find(from); it != taps_.end()) it->second.push_back(d);
    for (auto& n : nodes_) {
      if (n->id == from || !n->up) continue;
      if (Chance(faults_.loss)) {
        ++dropped_;
        continue;
      }
      int copies = 1;
      if (Chance(faults_.duplicate)) {
        ++duplicated_;
        copies = 2;
      }
      for (int c = 0; c < copies; ++c) {
        if (Chance(faults_.reorder) && !queue_.empty()) {
          const size_t back = std::uniform_int_distribution<size_t>(
              1, std::min<size_t>(16, queue_.size()))(rng_);
          queue_.insert(queue_.end() - back, InFlight{n->id, d});
        } else {
          queue_.push_back(InFlight{n->id, d});
        }
      }
    }
  }

  void DeliverAll() {
    while (!queue_.empty()) {
      InFlight f = std::move(queue_.front());
      queue_.pop_front();
      for (auto& n : nodes_) {
        if (n->id == f.to && n->up) Inject(*n, f.bytes);
      }
    }
  }

  ManualClock clock_{kNanosPerSecond};
  std::mt19937_64 rng_;
  Faults faults_;
  ReplicationMode mode_ = ReplicationMode::kReliable;
  uint64_t next_incarnation_ = 1000;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::deque<InFlight> queue_;
  std::map<uint32_t, std::vector<std::string>> taps_;
  uint64_t dropped_ = 0;
  uint64_t duplicated_ = 0;
};

}  // namespace ctsync::sync::testing
