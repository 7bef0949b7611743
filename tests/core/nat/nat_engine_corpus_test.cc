// NAT against the recorded kernel corpus: the frames the kernel forwarded are compared byte
// for byte (from the IP header on; MACs are the pipeline's business) with what conntrack +
// NatEngine make of the same input frames.
#include <fstream>
#include <sstream>

#include "core/conntrack/l4_trackers.h"
#include "core/packet/defrag.h"
#include "tests/core/nat/nat_test_util.h"
#include "tests/core/packet/corpus_frames.h"

namespace ctsync::nat_test {
namespace {

using testing_frames::FramesInFile;
using testing_frames::ScenarioDir;

struct Scenario {
  std::vector<std::vector<uint8_t>> inputs;
  std::vector<bool> from_lan;
  std::vector<std::vector<uint8_t>> outputs;  // every out frame, in step order
};

Scenario Load(const std::string& name) {
  Scenario s;
  const auto dir = ScenarioDir() / name;
  s.inputs = FramesInFile(dir / "scenario.json");
  s.outputs = FramesInFile(dir / "expected.json");
  std::ifstream in(dir / "scenario.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const std::string key = "\"inject\"";
  for (size_t pos = text.find(key); pos != std::string::npos; pos = text.find(key, pos + 1)) {
    const size_t open = text.find('"', pos + key.size());
    s.from_lan.push_back(text.compare(open + 1, 3, "lan") == 0);
  }
  EXPECT_FALSE(s.inputs.empty()) << name;
  EXPECT_EQ(s.inputs.size(), s.from_lan.size()) << name;
  return s;
}

std::vector<uint8_t> Datagram(const std::vector<uint8_t>& frame, size_t l3 = 14) {
  if (frame.size() < l3 + 4) return {};
  size_t len;
  if ((frame[l3] >> 4) == 4) {
    len = LoadBe16(frame.data() + l3 + 2);
  } else {
    len = 40 + LoadBe16(frame.data() + l3 + 4);
  }
  len = std::min(len, frame.size() - l3);
  return std::vector<uint8_t>(frame.begin() + l3, frame.begin() + l3 + len);
}

std::vector<uint8_t> Datagram(const PacketBuffer& b) { return Datagram(b.frame, b.pkt.l3_offset); }

// Runs every packet of a scenario whose out frames are one per step.
void RunOneToOne(const std::string& name, const NatHarness::TableFn& lan_post,
                 const NatHarness::TableFn& wan_pre, uint16_t zone = 0) {
  SCOPED_TRACE(name);
  const Scenario s = Load(name);
  ASSERT_EQ(s.outputs.size(), s.inputs.size());
  NatHarness h;
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    SCOPED_TRACE(i);
    const Nanos now = static_cast<Nanos>(i) * kNanosPerSecond / 10;
    std::optional<PacketBuffer> b = s.from_lan[i] ? h.LanToWan(s.inputs[i], lan_post, now, zone)
                                                  : h.WanToLan(s.inputs[i], wan_pre, now, zone);
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(Datagram(*b), Datagram(s.outputs[i]));
    ExpectChecksumsValid(*b);
  }
}

TEST(NatCorpusTest, SnatPoolTcpMatchesKernelFrames) {
  RunOneToOne(
      "snat_pool_tcp", [] { return Snat("203.0.113.5"); }, Accept);
}

TEST(NatCorpusTest, DnatPortForwardMatchesKernelFrames) {
  RunOneToOne("dnat_port_forward", Accept, [] { return Dnat("192.0.2.10", 8080); });
}

TEST(NatCorpusTest, IcmpErrorRelatedUdpSnatMatchesKernelFrames) {
  RunOneToOne(
      "icmp_error_related_udp_snat", [] { return Snat("203.0.113.5"); }, Accept);
}

TEST(NatCorpusTest, CtZoneNullBindingsLeaveFramesUnchanged) {
  RunOneToOne("ct_mark_zone", Accept, Accept, /*zone=*/7);
}

TEST(NatCorpusTest, NatTableIsConsultedOnlyForTheFirstPacket) {
  const Scenario s = Load("snat_pool_tcp");
  NatHarness h;
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    if (s.from_lan[i]) {
      ASSERT_TRUE(h.LanToWan(s.inputs[i], [] { return Snat("203.0.113.5"); }));
    } else {
      ASSERT_TRUE(h.WanToLan(s.inputs[i], Accept));
    }
  }
  EXPECT_EQ(h.pre_calls, 1);
  EXPECT_EQ(h.post_calls, 1);
}

TEST(NatCorpusTest, SnatPortClashRandomPicksAFreePortAndCountsFound) {
  const Scenario s = Load("snat_port_clash_random");
  NatHarness h;
  const uint32_t expected_found[] = {0, 1, 0, 1};
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    SCOPED_TRACE(i);
    const uint32_t found_before = h.conntrack().stats().found;
    auto b = h.LanToWan(s.inputs[i], [] { return Snat("203.0.113.5"); });
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(h.conntrack().stats().found - found_before, expected_found[i]);
    const Flow& f = h.FlowOf(*b);
    EXPECT_EQ(f.tuple[1].dst, Ip("203.0.113.5"));
    EXPECT_EQ(b->pkt.sport, f.tuple[1].dport);
    ExpectChecksumsValid(*b);
    const std::vector<uint8_t> want = Datagram(s.outputs[i]);
    std::vector<uint8_t> got = Datagram(*b);
    if (i % 2 == 0) {
      EXPECT_EQ(got, want);  // the first host keeps its port
    } else {
      EXPECT_NE(f.tuple[1].dport, 40040 + i / 2);
      EXPECT_GE(f.tuple[1].dport, 1024);
      // Apart from the port and the checksum it covers, the kernel's frame.
      ASSERT_EQ(got.size(), want.size());
      const size_t l4 = 20;
      const size_t csum = b->pkt.proto == kProtoTcp ? l4 + 16 : l4 + 6;
      for (size_t k : {l4, l4 + 1, csum, csum + 1}) got[k] = want[k];
      EXPECT_EQ(got, want);
    }
  }
  EXPECT_EQ(h.conntrack().table().confirmed_count(), 4u);
}

TEST(NatCorpusTest, FragmentedDatagramIsSnattedAndRefragmentedLikeTheKernel) {
  const Scenario s = Load("ipv4_fragments_udp_snat");
  ASSERT_EQ(s.outputs.size(), 2u);
  NatHarness h;
  Defragmenter defrag;
  std::vector<std::vector<uint8_t>> sent;
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    PacketBuffer b = NatHarness::Buffer(s.inputs[i], h.lan());
    ASSERT_TRUE(b.pkt.is_fragment);
    DefragResult d = defrag.Add(b.pkt, b.frame, 0, 0);
    if (d.kind != DefragResult::Kind::kReassembled) continue;
    PacketBuffer whole = NatHarness::Buffer(std::move(d.frame), h.lan());
    whole.frag_layout = d.layout;
    ASSERT_TRUE(h.Forward(
        whole, h.wan(), Accept, [] { return Snat("203.0.113.5"); }, 0));
    ExpectChecksumsValid(whole);  // the UDP checksum covers the whole reassembled datagram
    auto pieces = Refragment(whole.frame, *whole.frag_layout);
    ASSERT_TRUE(pieces.ok()) << pieces.status();
    for (auto& p : *pieces) sent.push_back(std::move(p));
  }
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(Datagram(sent[0]), Datagram(s.outputs[0]));
  EXPECT_EQ(Datagram(sent[1]), Datagram(s.outputs[1]));
  // The lone first fragment of the third step never reached conntrack.
  EXPECT_EQ(h.conntrack().table().confirmed_count(), 1u);
}

}  // namespace
}  // namespace ctsync::nat_test
