// The FTP connection-tracking helper (the kernel's nf_conntrack_ftp.c and, under NAT,
// nf_nat_ftp.c): reads PORT / EPRT commands and 227 / 229 replies on control connections
// that carry the ftp helper, registers the expected data connection, and under NAT rewrites
// the announced address and port in the payload (with sequence adjustment from then on).
// Owned by the datapath thread with its ConntrackEngine; its per-flow line state lives in
// the engine's FlowTable (so it is replicated and freed with the flow).
#pragma once

#include <array>
#include <cstdint>

#include "core/conntrack/conntrack_engine.h"
#include "core/pipeline/packet_buffer.h"

namespace ctsync {

enum class FtpCommand : uint8_t { kPort, kEprt, kPasv, kEpsv };

// What one parsed command or reply announces.
struct FtpMatch {
  FtpCommand type = FtpCommand::kPort;
  uint32_t offset = 0;  // of the address/port text, from the start of the payload
  uint32_t length = 0;
  Family family = Family::kIpv4;
  IpAddress address;  // for 229 (no address in the text): the sender's address
  uint16_t port = 0;
};

// find_pattern over one segment's payload in direction `dir`: 1 = match (*m filled),
// 0 = none, -1 = a partial match the kernel drops the packet for.
int FtpParse(absl::Span<const uint8_t> payload, Direction dir, Family family,
             const IpAddress& sender, FtpMatch* m);

class FtpHelper {
 public:
  static constexpr int kMaxExpected = 1;         // ftp exp_policy.max_expected
  static constexpr int64_t kExpectTimeoutS = 300;  // ftp exp_policy.timeout

  explicit FtpHelper(ConntrackEngine* conntrack);

  // nf_confirm's helper step for a packet of a flow with the ftp helper (after NAT ran at
  // this hook, before sequence adjustment and confirmation). False = drop the packet.
  bool Help(PacketBuffer& b, Nanos now);

  uint64_t parse_drops() const { return parse_drops_; }

 private:
  static void UpdateNlSeq(FtpLineState& st, int d, uint32_t seq_after);
  // nf_nat_ftp: rewrite the announced address to the NAT one and pick the port. Adds the
  // kChange* bits of what it changed to *changes.
  bool NatMangle(PacketBuffer& b, Flow& master, Direction dir, const FtpMatch& m,
                 Expectation& exp, uint32_t* changes);

  ConntrackEngine* conntrack_;
  uint64_t parse_drops_ = 0;
};

// nf_nat_mangle_tcp_packet: replaces payload bytes [offset, offset+len) of the TCP packet
// in `b` with `text`, fixing lengths and checksums; records the length change in `sa` for
// sequence adjustment. False if the result would not fit an IP datagram.
bool MangleTcpPayload(PacketBuffer& b, uint32_t offset, uint32_t len, std::string_view text,
                      SeqAdjust& sa, Direction dir, bool* changed_length);

}  // namespace ctsync
