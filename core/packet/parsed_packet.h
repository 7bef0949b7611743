// The result of parsing one frame: where each header sits in the caller's buffer and the
// fields the conntrack engine reads. It never owns or copies packet bytes: offsets point
// into the buffer handed to ParseEthernet/ParseIp, which must outlive any use of them.
// Owned by whoever parses; a plain value, no thread rules beyond those of the buffer.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/net/ip_address.h"
#include "core/net/tcp_flags.h"

namespace ctsync {

// Why a frame could not be parsed. Each value has a counter in ParseCounters, so every
// malformed input is a counted drop with a reason.
#define CTSYNC_PARSE_ERRORS(X)                                                              \
  X(kTruncatedL2, "truncated_l2")                   /* Ethernet/VLAN header cut short */    \
  X(kTooManyVlanTags, "too_many_vlan_tags")         /* more than kMaxVlanTags */            \
  X(kUnsupportedEthertype, "unsupported_ethertype") /* not IPv4/IPv6 */                     \
  X(kBadIpVersion, "bad_ip_version")                /* version nibble != ethertype */       \
  X(kTruncatedIp, "truncated_ip")                   /* fixed IP header cut short */         \
  X(kBadIpHeaderLen, "bad_ip_header_len")           /* IHL < 5 or beyond the data */        \
  X(kBadTotalLen, "bad_total_len")                  /* total/payload length inconsistent */ \
  X(kBadIpChecksum, "bad_ip_checksum")              /* IPv4 header checksum (full mode) */  \
  X(kBadFragment, "bad_fragment")                   /* fragment offset+len past 65535 */    \
  X(kBadExtHeader, "bad_ext_header")                /* IPv6 extension chain malformed */    \
  X(kTruncatedL4, "truncated_l4")                   /* L4 header cut short */               \
  X(kBadTcpOffset, "bad_tcp_offset")                /* TCP data offset < 5 or too long */   \
  X(kBadUdpLength, "bad_udp_length")                /* UDP length < 8 or > datagram */      \
  X(kBadUdpliteCoverage, "bad_udplite_coverage")    /* UDP-Lite coverage 1..7 or too long */

enum class ParseError : uint8_t {
#define CTSYNC_PARSE_ERROR_ENUM(name, text) name,
  CTSYNC_PARSE_ERRORS(CTSYNC_PARSE_ERROR_ENUM)
#undef CTSYNC_PARSE_ERROR_ENUM
};
inline constexpr int kNumParseErrors = 0
#define CTSYNC_PARSE_ERROR_COUNT(name, text) +1
    CTSYNC_PARSE_ERRORS(CTSYNC_PARSE_ERROR_COUNT)
#undef CTSYNC_PARSE_ERROR_COUNT
    ;

// Stable lower-case name, used in counter dumps ("truncated_l4").
std::string_view ParseErrorName(ParseError e);

// One counter per ParseError. The parser is stateless; a caller (one per datapath thread)
// keeps one of these and calls Count() with every error it gets back.
struct ParseCounters {
  std::array<uint64_t, kNumParseErrors> by_error{};
  void Count(ParseError e) { ++by_error[static_cast<size_t>(e)]; }
  uint64_t Get(ParseError e) const { return by_error[static_cast<size_t>(e)]; }
  uint64_t Total() const {
    uint64_t t = 0;
    for (uint64_t v : by_error) t += v;
    return t;
  }
};

inline constexpr int kMaxVlanTags = 2;
inline constexpr int kMaxSackBlocks = 4;

// EtherTypes the parser understands.
inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeQinQ = 0x88a8;

struct SackBlock {
  uint32_t left = 0;
  uint32_t right = 0;
};

// TCP options as the kernel's tcp_options()/tcp_sack() read them: a malformed option ends
// the walk silently (the segment stays valid), exactly as in the kernel.
struct TcpOptions {
  std::optional<uint16_t> mss;
  std::optional<uint8_t> wscale;  // raw shift count as sent (the tracker clamps to 14)
  bool sack_perm = false;
  uint8_t sack_count = 0;
  std::array<SackBlock, kMaxSackBlocks> sack{};
  bool has_timestamps = false;
  uint32_t ts_val = 0;
  uint32_t ts_ecr = 0;
};

struct ParsedPacket {
  // ---- L2 (zero / empty when parsed with ParseIp) ----
  std::array<uint8_t, 6> dst_mac{};
  std::array<uint8_t, 6> src_mac{};
  uint16_t ethertype = 0;  // the inner one, after VLAN tags
  uint8_t vlan_count = 0;
  std::array<uint16_t, kMaxVlanTags> vlan_ids{};  // 12-bit VID, outermost first
  uint16_t l3_offset = 0;

  // ---- L3 ----
  Family family = Family::kNone;
  IpAddress src;
  IpAddress dst;
  uint8_t proto = 0;           // final L4 protocol (after the IPv6 extension chain)
  uint8_t ttl = 0;             // IPv4 TTL or IPv6 hop limit
  uint8_t tos = 0;             // IPv4 TOS or IPv6 traffic class
  bool df = false;             // IPv4 don't-fragment
  uint16_t ip_id = 0;          // IPv4 identification
  uint32_t flow_label = 0;     // IPv6
  uint16_t l3_header_len = 0;  // IPv4 header with options / IPv6 header with ext headers
  uint32_t l4_offset = 0;
  uint32_t ip_total_len = 0;  // datagram length as the header states (v6: 40 + payload len)
  // Fragment info. An IPv6 "atomic" fragment (offset 0, no MF) is not a fragment, as in
  // RFC 6946, but frag_header_offset still records where its header sits.
  bool is_fragment = false;
  bool more_fragments = false;
  uint16_t frag_offset = 0;                // bytes
  uint32_t frag_id = 0;                    // IPv4 id or IPv6 fragment-header id
  uint32_t frag_header_offset = 0;         // v6 only; 0 = no fragment header
  uint32_t frag_nexthdr_field_offset = 0;  // v6: the "next header" byte that names the
                                           // fragment header (defrag rewrites it)

  // ---- L4 ----
  // False when the L4 header was not parsed: a non-first fragment, a first fragment too
  // short to hold it, or a protocol with no header the engine reads (generic).
  bool l4_parsed = false;
  uint16_t sport = 0;
  uint16_t dport = 0;
  // TCP
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint16_t window = 0;
  uint8_t tcp_flags = 0;
  uint8_t tcp_data_offset = 0;  // in 32-bit words
  TcpOptions tcp_options;
  // UDP-Lite checksum coverage in bytes (0 in the header means the whole datagram; this
  // holds the resolved length).
  uint16_t udplite_coverage = 0;
  // ICMP / ICMPv6
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  uint16_t icmp_id = 0;
  uint16_t icmp_seq = 0;
  bool icmp_is_error = false;
  uint32_t inner_offset = 0;  // start of the quoted IP header in an ICMP error; 0 = none

  // Payload after the L4 header (for generic protocols: everything after L3).
  uint32_t payload_offset = 0;
  uint32_t payload_len = 0;

  // Bytes from l4_offset to the end of the datagram as the IP header bounds it (in quoted
  // mode also bounded by the buffer). Checksums are computed over exactly these bytes;
  // Ethernet padding after the datagram is excluded.
  uint32_t l4_len = 0;
};

}  // namespace ctsync
