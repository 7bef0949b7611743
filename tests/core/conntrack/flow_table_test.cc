#include "core/conntrack/flow_table.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace ctsync {
namespace {

constexpr Nanos kSec = kNanosPerSecond;

Tuple Udp(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport) {
  Tuple t;
  t.family = Family::kIpv4;
  t.proto = kProtoUdp;
  t.src = IpAddress::FromV4(src);
  t.dst = IpAddress::FromV4(dst);
  t.sport = sport;
  t.dport = dport;
  return t;
}

Tuple Reverse(const Tuple& t) {
  Tuple r = t;
  std::swap(r.src, r.dst);
  std::swap(r.sport, r.dport);
  return r;
}

constexpr uint32_t kLan = 0xc000020a;  // 192.0.2.10
constexpr uint32_t kWan = 0xc6336414;  // 198.51.100.20

class FlowTableTest : public ::testing::Test {
 protected:
  void Make(size_t max_flows, size_t buckets) {
    auto t = FlowTable::Create({max_flows, buckets, 7}, 0);
    ASSERT_TRUE(t.ok()) << t.status();
    table_ = std::move(*t);
  }

  // Allocates + confirms a flow whose reply is the plain reverse (no NAT).
  FlowIndex Add(const Tuple& orig, Nanos expires, uint16_t zone = 0, uint32_t status = 0) {
    const FlowIndex idx = table_->Allocate(orig, zone, now_, Record());
    if (idx == kNoFlow) return kNoFlow;
    Flow& f = table_->flow(idx);
    f.tuple[1] = Reverse(orig);
    f.status |= status;
    table_->SetTimeout(idx, expires);
    EXPECT_TRUE(table_->Confirm(idx).ok());
    return idx;
  }

  // FunctionRef does not own its target: point it at a member that outlives the call.
  FlowTable::DestroyFn Record() { return FlowTable::DestroyFn(recorder_); }
  std::function<void(FlowIndex, const Flow&)> recorder_ = [this](FlowIndex idx, const Flow& f) {
    destroyed_.push_back(idx);
    destroyed_sports_.push_back(f.tuple[0].sport);
  };

  std::unique_ptr<FlowTable> table_;
  Nanos now_ = 0;
  std::vector<FlowIndex> destroyed_;
  std::vector<uint16_t> destroyed_sports_;
};

TEST_F(FlowTableTest, CreateRejectsBadSizes) {
  EXPECT_FALSE(FlowTable::Create({0, 16, 0}).ok());
  EXPECT_FALSE(FlowTable::Create({16, 0, 0}).ok());
  EXPECT_FALSE(FlowTable::Create({size_t{1} << 31, 16, 0}).ok());
}

TEST_F(FlowTableTest, BothTuplesFindTheFlowWithDirection) {
  Make(64, 16);
  const Tuple orig = Udp(kLan, 5000, kWan, 53);
  // SNAT: the reply is addressed to the pool address.
  const FlowIndex idx = table_->Allocate(orig, 0, now_, Record());
  ASSERT_NE(idx, kNoFlow);
  Tuple reply = Reverse(orig);
  reply.dst = IpAddress::FromV4(0xcb007105);
  reply.dport = 61000;
  table_->flow(idx).tuple[1] = reply;
  table_->SetTimeout(idx, 30 * kSec);
  ASSERT_TRUE(table_->Confirm(idx).ok());

  FlowLookup a = table_->Find(orig, 0);
  EXPECT_EQ(a.idx, idx);
  EXPECT_EQ(a.dir, Direction::kOriginal);
  FlowLookup b = table_->Find(reply, 0);
  EXPECT_EQ(b.idx, idx);
  EXPECT_EQ(b.dir, Direction::kReply);
  // The un-NATed reverse is not a key of this flow.
  EXPECT_FALSE(table_->Find(Reverse(orig), 0).found());
  EXPECT_TRUE(table_->flow(idx).has(kIpsConfirmed));
  EXPECT_EQ(table_->size(), 1u);
  EXPECT_EQ(table_->confirmed_count(), 1u);
}

TEST_F(FlowTableTest, ZonesAreSeparate) {
  Make(64, 16);
  const Tuple t = Udp(kLan, 6100, kWan, 7100);
  const FlowIndex z0 = Add(t, 30 * kSec, 0);
  const FlowIndex z7 = Add(t, 30 * kSec, 7);
  ASSERT_NE(z0, kNoFlow);
  ASSERT_NE(z7, kNoFlow);
  EXPECT_NE(z0, z7);
  EXPECT_EQ(table_->Find(t, 0).idx, z0);
  EXPECT_EQ(table_->Find(t, 7).idx, z7);
  EXPECT_EQ(table_->Find(Reverse(t), 7).idx, z7);
  EXPECT_FALSE(table_->Find(t, 8).found());
}

TEST_F(FlowTableTest, UnconfirmedIsNotFindableAndReleaseFreesIt) {
  Make(4, 4);
  const Tuple t = Udp(kLan, 1, kWan, 2);
  const FlowIndex idx = table_->Allocate(t, 0, now_, Record());
  table_->flow(idx).tuple[1] = Reverse(t);
  EXPECT_FALSE(table_->Find(t, 0).found());
  EXPECT_EQ(table_->size(), 1u);
  EXPECT_EQ(table_->confirmed_count(), 0u);
  EXPECT_FALSE(table_->IsConfirmed(idx));
  table_->Release(idx);
  EXPECT_EQ(table_->size(), 0u);
  // Release on a confirmed entry or Remove on an unconfirmed one does nothing.
  const FlowIndex c = Add(t, 10 * kSec);
  table_->Release(c);
  EXPECT_TRUE(table_->Find(t, 0).found());
  const FlowIndex u = table_->Allocate(Udp(kLan, 3, kWan, 4), 0, now_, Record());
  table_->Remove(u);
  EXPECT_EQ(table_->size(), 2u);
}

TEST_F(FlowTableTest, ConfirmClashLeavesEntryUnconfirmed) {
  Make(16, 8);
  const Tuple t = Udp(kLan, 5000, kWan, 53);
  const FlowIndex first = Add(t, 30 * kSec);
  // Same original tuple.
  const FlowIndex dup = table_->Allocate(t, 0, now_, Record());
  table_->flow(dup).tuple[1] = Reverse(t);
  absl::Status s = table_->Confirm(dup);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_FALSE(table_->IsConfirmed(dup));
  // A different original whose reply collides with the first flow's reply (NAT clash).
  const FlowIndex nat = table_->Allocate(Udp(0xc000020b, 5000, kWan, 53), 0, now_, Record());
  table_->flow(nat).tuple[1] = Reverse(t);
  EXPECT_EQ(table_->Confirm(nat).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(table_->Find(t, 0).idx, first);
  EXPECT_EQ(table_->Find(Reverse(t), 0).idx, first);
  // Confirming twice is refused.
  EXPECT_EQ(table_->Confirm(first).code(), absl::StatusCode::kFailedPrecondition);
  table_->Release(dup);
  table_->Release(nat);
  EXPECT_EQ(table_->size(), 1u);
}

TEST_F(FlowTableTest, OverlongChainIsRefused) {
  Make(200, 1);  // one bucket: every flow adds two nodes to the same chain
  size_t confirmed = 0;
  absl::Status last;
  for (uint16_t p = 1; p < 100; ++p) {
    const Tuple t = Udp(kLan, p, kWan, 9);
    const FlowIndex idx = table_->Allocate(t, 0, now_, Record());
    table_->flow(idx).tuple[1] = Reverse(t);
    last = table_->Confirm(idx);
    if (!last.ok()) {
      table_->Release(idx);
      break;
    }
    ++confirmed;
  }
  EXPECT_EQ(last.code(), absl::StatusCode::kResourceExhausted) << last;
  // The chain holds 2 nodes per flow; the walk gives up past kMaxChainLength of them.
  EXPECT_EQ(confirmed, (kMaxChainLength + 2) / 2);
  EXPECT_EQ(table_->stats().chaintoolong, 1u);
}

TEST_F(FlowTableTest, RemoveUnhashesBothTuplesAndReusesSlot) {
  Make(2, 1);  // one bucket: every node in the same chain
  const Tuple a = Udp(kLan, 1, kWan, 2);
  const Tuple b = Udp(kLan, 3, kWan, 4);
  const FlowIndex ia = Add(a, 30 * kSec);
  const FlowIndex ib = Add(b, 30 * kSec);
  table_->Remove(ia);
  EXPECT_FALSE(table_->Find(a, 0).found());
  EXPECT_FALSE(table_->Find(Reverse(a), 0).found());
  EXPECT_EQ(table_->Find(Reverse(b), 0).idx, ib);
  EXPECT_EQ(table_->size(), 1u);
  const FlowIndex ic = Add(Udp(kLan, 5, kWan, 6), 30 * kSec);
  EXPECT_EQ(ic, ia);  // freed slot reused, no growth
  EXPECT_NE(table_->flow(ic).id, 0u);
  // The removed flow's timer must not fire for the new occupant's old deadline.
  now_ = 31 * kSec;
  EXPECT_EQ(table_->Expire(now_, 100, Record()), 2u);
}

TEST_F(FlowTableTest, LongSharedChainFindsEveryNodeAfterRemovals) {
  // One bucket: every lookup walks past nodes of other flows (skipped on their link's tag)
  // and unlinking happens at the head, in the middle and at the tail.
  Make(64, 1);
  std::vector<Tuple> tuples;
  std::vector<FlowIndex> idx;
  for (uint16_t p = 1; p <= 30; ++p) {
    tuples.push_back(Udp(kLan, p, kWan, 9));
    idx.push_back(Add(tuples.back(), 30 * kSec));
  }
  for (size_t i : {29u, 14u, 0u, 15u}) table_->Remove(idx[i]);
  std::vector<Tuple> keys;
  for (const Tuple& t : tuples) {
    keys.push_back(t);
    keys.push_back(Reverse(t));
  }
  std::vector<FlowLookup> batch(keys.size());
  table_->FindBatch(keys, std::vector<uint16_t>{0}, absl::MakeSpan(batch));
  for (size_t k = 0; k < keys.size(); ++k) {
    const size_t i = k / 2;
    const bool removed = i == 29 || i == 14 || i == 0 || i == 15;
    const FlowLookup one = table_->Find(keys[k], 0);
    EXPECT_EQ(one.found(), !removed) << k;
    EXPECT_EQ(batch[k].found(), !removed) << k;
    if (removed) continue;
    EXPECT_EQ(one.idx, idx[i]);
    EXPECT_EQ(batch[k].idx, idx[i]);
    EXPECT_EQ(one.dir, k % 2 ? Direction::kReply : Direction::kOriginal);
    EXPECT_EQ(batch[k].dir, one.dir);
  }
  EXPECT_FALSE(table_->Find(Udp(kLan, 31, kWan, 9), 0).found());
  EXPECT_FALSE(table_->Find(tuples[1], 1).found());  // same tuple, other zone
}

TEST_F(FlowTableTest, ExpireHonoursDeadlinesAndBudget) {
  Make(64, 16);
  std::vector<FlowIndex> idx;
  for (uint16_t i = 0; i < 10; ++i)
    idx.push_back(Add(Udp(kLan, 100 + i, kWan, 53), (i + 1) * kSec));
  EXPECT_EQ(table_->Expire(kSec - 1, 100, Record()), 0u);
  EXPECT_EQ(table_->Expire(kSec, 100, Record()), 1u);
  EXPECT_EQ(destroyed_sports_, (std::vector<uint16_t>{100}));
  // Five more are due at 6 s, but the budget allows two per call.
  EXPECT_EQ(table_->Expire(6 * kSec, 2, Record()), 2u);
  EXPECT_EQ(table_->Expire(6 * kSec, 2, Record()), 2u);
  EXPECT_EQ(table_->Expire(6 * kSec, 2, Record()), 1u);
  EXPECT_EQ(table_->Expire(6 * kSec, 2, Record()), 0u);
  std::vector<uint16_t> got = destroyed_sports_;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<uint16_t>{100, 101, 102, 103, 104, 105}));
  EXPECT_EQ(table_->size(), 4u);
  // The callback sees the flow before it is freed, and it is gone afterwards.
  for (uint16_t sport : destroyed_sports_) {
    EXPECT_FALSE(table_->Find(Udp(kLan, sport, kWan, 53), 0).found());
  }
  EXPECT_TRUE(table_->Find(Udp(kLan, 106, kWan, 53), 0).found());
}

TEST_F(FlowTableTest, SetTimeoutExtendsAndShortens) {
  Make(16, 8);
  const FlowIndex a = Add(Udp(kLan, 1, kWan, 2), 30 * kSec);
  const FlowIndex b = Add(Udp(kLan, 3, kWan, 4), 30 * kSec);
  table_->SetTimeout(a, 120 * kSec);  // extended (lazy)
  table_->SetTimeout(b, 10 * kSec);   // shortened (moved)
  EXPECT_EQ(table_->Expire(10 * kSec, 100, Record()), 1u);
  EXPECT_EQ(destroyed_, (std::vector<FlowIndex>{b}));
  EXPECT_EQ(table_->Expire(119 * kSec, 100, Record()), 0u);
  EXPECT_EQ(table_->Expire(120 * kSec, 100, Record()), 1u);
  EXPECT_EQ(destroyed_.back(), a);
}

TEST_F(FlowTableTest, RefreshWhileQueuedSavesTheFlow) {
  Make(16, 8);
  const FlowIndex a = Add(Udp(kLan, 1, kWan, 2), 5 * kSec);
  const FlowIndex b = Add(Udp(kLan, 3, kWan, 4), 5 * kSec);
  // Both come due, budget 0 leaves them queued; then a packet refreshes `a`.
  EXPECT_EQ(table_->Expire(5 * kSec, 0, Record()), 0u);
  table_->SetTimeout(a, 60 * kSec);
  EXPECT_EQ(table_->Expire(5 * kSec, 100, Record()), 1u);
  EXPECT_EQ(destroyed_, (std::vector<FlowIndex>{b}));
  EXPECT_TRUE(table_->IsConfirmed(a));
  EXPECT_EQ(table_->Expire(60 * kSec, 100, Record()), 1u);
}

TEST_F(FlowTableTest, EarlyDropEvictsOnlyUnassuredNearTheNewTuple) {
  // One bucket: every entry is within early drop's reach.
  Make(4, 1);
  const FlowIndex assured1 = Add(Udp(kLan, 1, kWan, 9), 100 * kSec, 0, kIpsAssured);
  const FlowIndex plain = Add(Udp(kLan, 2, kWan, 9), 100 * kSec);
  const FlowIndex assured2 = Add(Udp(kLan, 3, kWan, 9), 100 * kSec, 0, kIpsAssured);
  const FlowIndex dying = Add(Udp(kLan, 4, kWan, 9), 100 * kSec, 0, kIpsDying);
  ASSERT_EQ(table_->size(), 4u);
  const FlowIndex fresh = table_->Allocate(Udp(kLan, 5, kWan, 9), 0, now_, Record());
  ASSERT_NE(fresh, kNoFlow);
  EXPECT_EQ(fresh, plain);  // the evicted slot is reused
  EXPECT_EQ(destroyed_sports_, (std::vector<uint16_t>{2}));
  EXPECT_EQ(table_->stats().early_drop, 1u);
  EXPECT_TRUE(table_->IsConfirmed(assured1));
  EXPECT_TRUE(table_->IsConfirmed(assured2));
  EXPECT_TRUE(table_->IsConfirmed(dying));
  // Now everything confirmed is ASSURED or dying, and the unconfirmed one is not hashed:
  // early drop gives up and the caller drops the packet.
  EXPECT_EQ(table_->Allocate(Udp(kLan, 6, kWan, 9), 0, now_, Record()), kNoFlow);
  EXPECT_EQ(table_->stats().early_drop, 1u);
  EXPECT_EQ(table_->size(), 4u);
}

TEST_F(FlowTableTest, EarlyDropEvictsEveryUnassuredEntryOfTheBucket) {
  Make(3, 1);
  Add(Udp(kLan, 1, kWan, 9), 100 * kSec);
  Add(Udp(kLan, 2, kWan, 9), 100 * kSec);
  Add(Udp(kLan, 3, kWan, 9), 100 * kSec, 0, kIpsAssured);
  ASSERT_NE(table_->Allocate(Udp(kLan, 4, kWan, 9), 0, now_, Record()), kNoFlow);
  EXPECT_EQ(table_->stats().early_drop, 2u);
  EXPECT_EQ(table_->size(), 2u);
}

TEST_F(FlowTableTest, EarlyDropReapsExpiredButDoesNotCountThem) {
  Make(2, 1);
  Add(Udp(kLan, 1, kWan, 9), 10 * kSec, 0, kIpsAssured);
  Add(Udp(kLan, 2, kWan, 9), 100 * kSec, 0, kIpsAssured);
  now_ = 20 * kSec;  // the first one has expired but Expire has not run
  // As in the kernel: the expired entry is reaped, but nothing was early-dropped, so this
  // allocation still fails; the next one finds the room.
  EXPECT_EQ(table_->Allocate(Udp(kLan, 3, kWan, 9), 0, now_, Record()), kNoFlow);
  EXPECT_EQ(destroyed_sports_, (std::vector<uint16_t>{1}));
  EXPECT_EQ(table_->stats().early_drop, 0u);
  EXPECT_NE(table_->Allocate(Udp(kLan, 3, kWan, 9), 0, now_, Record()), kNoFlow);
}

TEST_F(FlowTableTest, EarlyDropScansOnlyEightBuckets) {
  // Many buckets: fill with unassured entries far from the new tuple's bucket range and check
  // that whether early drop succeeds depends only on the 8 buckets from the new tuple's.
  const size_t kBuckets = 64;
  Make(32, kBuckets);
  // Fill with ASSURED flows, then make exactly one flow unassured.
  std::vector<FlowIndex> all;
  for (uint16_t i = 0; i < 32; ++i)
    all.push_back(Add(Udp(kLan, 1000 + i, kWan, 9), 100 * kSec, 0, kIpsAssured));
  ASSERT_EQ(table_->size(), 32u);
  // Try new tuples until one fails (victim out of range) and one succeeds (in range).
  table_->flow(all[0]).status &= ~kIpsAssured;
  int successes = 0, failures = 0;
  for (uint16_t p = 1; p < 2000 && (successes == 0 || failures == 0); ++p) {
    const FlowIndex got = table_->Allocate(Udp(0x0a000001, p, kWan, 9), 0, now_, Record());
    if (got == kNoFlow) {
      ++failures;
      continue;
    }
    ++successes;
    // Put a fresh unassured victim back at the same tuple for the next round.
    Flow& f = table_->flow(got);
    f.tuple[0] = Udp(kLan, 1000, kWan, 9);
    f.tuple[1] = Reverse(f.tuple[0]);
    table_->SetTimeout(got, 100 * kSec);
    ASSERT_TRUE(table_->Confirm(got).ok());
  }
  // The victim's two nodes cover at most 2 * 8 of the 64 starting buckets.
  EXPECT_GT(successes, 0);
  EXPECT_GT(failures, 0);
  EXPECT_EQ(table_->stats().early_drop, static_cast<uint32_t>(successes));
}

TEST_F(FlowTableTest, ForEachVisitsConfirmedOnly) {
  Make(16, 8);
  Add(Udp(kLan, 1, kWan, 2), 10 * kSec);
  Add(Udp(kLan, 3, kWan, 4), 10 * kSec);
  table_->Allocate(Udp(kLan, 5, kWan, 6), 0, now_, Record());
  std::vector<uint16_t> seen;
  table_->ForEach([&](FlowIndex, const Flow& f) { seen.push_back(f.tuple[0].sport); });
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<uint16_t>{1, 3}));
}

TEST_F(FlowTableTest, SeqAdjustSideTableIsClearedWithTheFlow) {
  Make(4, 4);
  const FlowIndex idx = Add(Udp(kLan, 1, kWan, 2), 10 * kSec);
  EXPECT_EQ(table_->seq_adjust(idx), nullptr);
  table_->MutableSeqAdjust(idx).dir[0] = {100, 0, 1};
  ASSERT_NE(table_->seq_adjust(idx), nullptr);
  EXPECT_EQ(table_->seq_adjust(idx)->dir[0].offset_after, 1);
  table_->Remove(idx);
  EXPECT_EQ(table_->seq_adjust(idx), nullptr);
}

TEST_F(FlowTableTest, AllocateGivesFreshEntries) {
  Make(4, 4);
  const Tuple t = Udp(kLan, 1, kWan, 2);
  FlowIndex idx = Add(t, 10 * kSec, 3, kIpsAssured);
  table_->flow(idx).mark = 42;
  const uint64_t old_id = table_->flow(idx).id;
  table_->Remove(idx);
  now_ = 7 * kSec;
  idx = table_->Allocate(Udp(kLan, 9, kWan, 9), 0, now_, Record());
  const Flow& f = table_->flow(idx);
  EXPECT_EQ(f.mark, 0u);
  EXPECT_EQ(f.status, 0u);
  EXPECT_EQ(f.zone, 0);
  EXPECT_EQ(f.created, 7 * kSec);
  EXPECT_GT(f.id, old_id);
  EXPECT_EQ(f.tuple[0].sport, 9);
}

// Counters exist only with accounting (the kernel's acct extension), start at zero for every
// new occupant of a slot, and can be switched on later.
TEST_F(FlowTableTest, CountersOnlyWithAccountingAndFreshPerEntry) {
  Make(4, 4);
  const FlowIndex plain = Add(Udp(kLan, 1, kWan, 2), 10 * kSec);
  EXPECT_EQ(table_->accounting(plain), nullptr);
  table_->EnableAccounting();
  ASSERT_NE(table_->accounting(plain), nullptr);
  EXPECT_EQ(table_->accounting(plain)->dir[0], FlowCounters{});

  auto t = FlowTable::Create({4, 4, 7, /*accounting=*/true}, 0);
  ASSERT_TRUE(t.ok());
  table_ = std::move(*t);
  FlowIndex idx = Add(Udp(kLan, 1, kWan, 2), 10 * kSec);
  table_->accounting(idx)->dir[1] = {5, 500};
  table_->Remove(idx);
  const FlowIndex again = Add(Udp(kLan, 3, kWan, 4), 10 * kSec);
  ASSERT_EQ(again, idx);
  EXPECT_EQ(table_->accounting(again)->dir[1], FlowCounters{});
}

TEST_F(FlowTableTest, MemoryPerFlowWithinBudget) {
  Make(1 << 20, 1 << 20);
  // Flow (184), two hash links, a bucket; 32 bytes more with accounting.
  EXPECT_LE(table_->BytesPerFlow(), 196u);
  table_->EnableAccounting();
  EXPECT_LE(table_->BytesPerFlow(), 228u);
}

}  // namespace
}  // namespace ctsync
