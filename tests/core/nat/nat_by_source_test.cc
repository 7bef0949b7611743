#include "core/nat/nat_by_source.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace ctsync::nat {
namespace {

Tuple Udp(uint32_t src, uint16_t sport) {
  Tuple t;
  t.family = Family::kIpv4;
  t.proto = kProtoUdp;
  t.src = IpAddress::FromV4(src);
  t.dst = IpAddress::FromV4(0xc6336414);
  t.sport = sport;
  t.dport = 53;
  return t;
}

// The flows FindIf offers for `hash`, in walk order.
std::vector<FlowIndex> Walk(const BySourceIndex& ix, uint32_t hash) {
  std::vector<FlowIndex> seen;
  ix.FindIf(hash, [&](FlowIndex i) {
    seen.push_back(i);
    return false;
  });
  return seen;
}

TEST(BySourceIndexTest, KeyHashCoversAddressPortProtocolFamilyAndZone) {
  BySourceIndex ix(16, 4, 1);
  const Tuple t = Udp(0xc000020a, 6000);
  const uint32_t h = ix.KeyHash(t, 0);
  EXPECT_EQ(ix.KeyHash(t, 0), h);
  Tuple other_dst = t;  // the destination is not part of the source key
  other_dst.dst = IpAddress::FromV4(0xc6336415);
  other_dst.dport = 80;
  EXPECT_EQ(ix.KeyHash(other_dst, 0), h);
  EXPECT_NE(ix.KeyHash(Udp(0xc000020b, 6000), 0), h);
  EXPECT_NE(ix.KeyHash(Udp(0xc000020a, 6001), 0), h);
  EXPECT_NE(ix.KeyHash(t, 1), h);
  Tuple tcp = t;
  tcp.proto = kProtoTcp;
  EXPECT_NE(ix.KeyHash(tcp, 0), h);
  Tuple v6 = t;
  v6.family = Family::kIpv6;
  EXPECT_NE(ix.KeyHash(v6, 0), h);
}

TEST(BySourceIndexTest, NewestFirstAndOnlyTheSameKeyHash) {
  BySourceIndex ix(16, 1, 1);  // one bucket: every entry shares a chain
  const uint32_t a = ix.KeyHash(Udp(0xc000020a, 6000), 0);
  const uint32_t b = ix.KeyHash(Udp(0xc000020b, 6000), 0);
  ix.Add(3, a);
  ix.Add(5, b);
  ix.Add(7, a);
  EXPECT_EQ(Walk(ix, a), (std::vector<FlowIndex>{7, 3}));
  EXPECT_EQ(Walk(ix, b), (std::vector<FlowIndex>{5}));
  // FindIf stops at the first flow fn accepts.
  std::vector<FlowIndex> seen;
  EXPECT_TRUE(ix.FindIf(a, [&](FlowIndex i) {
    seen.push_back(i);
    return true;
  }));
  EXPECT_EQ(seen, (std::vector<FlowIndex>{7}));
  EXPECT_FALSE(ix.FindIf(ix.KeyHash(Udp(0xc000020c, 1), 0), [](FlowIndex) { return true; }));
}

TEST(BySourceIndexTest, RemoveUnlinksFromAnyPositionAndIsIdempotent) {
  BySourceIndex ix(16, 1, 1);
  const uint32_t a = ix.KeyHash(Udp(0xc000020a, 6000), 0);
  for (FlowIndex i : {1u, 2u, 3u, 4u}) ix.Add(i, a);
  ix.Remove(3);  // middle
  EXPECT_EQ(Walk(ix, a), (std::vector<FlowIndex>{4, 2, 1}));
  ix.Remove(4);  // head
  ix.Remove(1);  // tail
  EXPECT_EQ(Walk(ix, a), (std::vector<FlowIndex>{2}));
  EXPECT_FALSE(ix.linked(1));
  EXPECT_TRUE(ix.linked(2));
  ix.Remove(1);   // not linked: nothing happens
  ix.Remove(99);  // out of range: nothing happens
  EXPECT_EQ(Walk(ix, a), (std::vector<FlowIndex>{2}));
  ix.Remove(2);
  EXPECT_TRUE(Walk(ix, a).empty());
}

TEST(BySourceIndexTest, ReAddingASlotMovesItInsteadOfLinkingItTwice) {
  BySourceIndex ix(16, 8, 1);
  const uint32_t a = ix.KeyHash(Udp(0xc000020a, 6000), 0);
  const uint32_t b = ix.KeyHash(Udp(0xc000020b, 7000), 0);
  ix.Add(2, a);
  ix.Add(6, a);
  ix.Add(2, b);  // the slot now holds another flow
  EXPECT_EQ(Walk(ix, a), (std::vector<FlowIndex>{6}));
  EXPECT_EQ(Walk(ix, b), (std::vector<FlowIndex>{2}));
  ix.Add(2, b);
  EXPECT_EQ(Walk(ix, b), (std::vector<FlowIndex>{2}));
}

// The bucket keeps its head's hash without the low bit: hashes that differ only there must
// still not match, and a head alone must be found without its successor flag going stale.
TEST(BySourceIndexTest, BucketFilterIsExact) {
  BySourceIndex ix(16, 1, 1);
  const uint32_t h = 0x12345670;
  ix.Add(3, h);
  EXPECT_TRUE(Walk(ix, h ^ 1).empty());
  EXPECT_EQ(Walk(ix, h), (std::vector<FlowIndex>{3}));
  ix.Add(5, h ^ 1);
  EXPECT_EQ(Walk(ix, h), (std::vector<FlowIndex>{3}));
  EXPECT_EQ(Walk(ix, h ^ 1), (std::vector<FlowIndex>{5}));
  ix.Remove(3);
  EXPECT_TRUE(Walk(ix, h).empty());
  EXPECT_EQ(Walk(ix, h ^ 1), (std::vector<FlowIndex>{5}));
  ix.Add(3, h);
  ix.Remove(3);
  EXPECT_EQ(Walk(ix, h ^ 1), (std::vector<FlowIndex>{5}));
}

// Random adds and removes against a plain list of (slot, hash), newest first.
TEST(BySourceIndexTest, MatchesAPlainListUnderRandomChurn) {
  constexpr FlowIndex kSlots = 64;
  BySourceIndex ix(kSlots, 4, 7);
  std::vector<std::pair<FlowIndex, uint32_t>> model;
  std::mt19937 rng(11);
  const uint32_t hashes[] = {0x10, 0x11, 0x80000010, 0xdeadbeef, 0x40000001, 0xc0000000};
  for (int step = 0; step < 20000; ++step) {
    const FlowIndex idx = rng() % kSlots;
    auto it = std::find_if(model.begin(), model.end(), [&](auto& e) { return e.first == idx; });
    if (it != model.end()) model.erase(it);
    if (rng() % 2) {
      const uint32_t h = hashes[rng() % std::size(hashes)];
      ix.Add(idx, h);
      model.insert(model.begin(), {idx, h});
    } else {
      ix.Remove(idx);
    }
    for (uint32_t h : hashes) {
      std::vector<FlowIndex> want;
      for (auto& [i, eh] : model)
        if (eh == h) want.push_back(i);
      ASSERT_EQ(Walk(ix, h), want) << "step " << step << " hash " << h;
    }
  }
}

}  // namespace
}  // namespace ctsync::nat
