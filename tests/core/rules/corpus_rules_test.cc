// Every ruleset of the recorded kernel corpus (/work/shared/oracle): it parses, each rule the
// kernel reported as hit renders to the exact text iptables-save printed for it, and the
// filter FORWARD walk gives the same rule hits as the kernel for every step in which one
// packet crossed FORWARD (context built from that step's probe tags: ctstate, SNAT/DNAT,
// direction; in/out interface from the side the frame was injected on).
// Generated from the corpus's scenario.json / expected.json files.
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "core/rules/rule_set.h"
#include "gtest/gtest.h"

namespace ctsync::rules {
namespace {

struct CorpusHit {
  const char* table;
  const char* chain;
  int index;
  const char* rule;
};

struct CorpusRuleset {
  const char* scenarios;
  Family family;
  const char* text;
  std::vector<CorpusHit> hits;
};

struct CorpusForwardStep {
  const char* name;
  int ruleset;  // index into kCorpus
  const char* in;
  const char* out;
  const char* states;  // probe tags, comma separated
  bool dir_reply;
  std::vector<int> forward_hits;
};

const CorpusRuleset kCorpus[] = {
    {"ct_mark_zone",
     Family::kIpv4,
     R"txt(*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -i lan0 -j CT --zone 7
-A PREROUTING -i wan0 -j CT --zone 7
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m conntrack --ctstate NEW -j CONNMARK --set-mark 0x2a
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT
COMMIT
)txt",
     {
         {"filter", "FORWARD", 1, R"txt(-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT)txt"},
         {"filter", "FORWARD", 2, R"txt(-i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT)txt"},
         {"mangle", "PREROUTING", 0,
          R"txt(-m conntrack --ctstate NEW -j CONNMARK --set-xmark 0x2a/0xffffffff)txt"},
         {"raw", "PREROUTING", 0, R"txt(-i lan0 -j CT --zone 7)txt"},
         {"raw", "PREROUTING", 1, R"txt(-i wan0 -j CT --zone 7)txt"},
     }},
    {"dnat_port_forward",
     Family::kIpv4,
     R"txt(*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i wan0 -d 203.0.113.10 -p tcp --dport 80 -j DNAT --to-destination 192.0.2.10:8080
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i wan0 -o lan0 -m conntrack --ctstate DNAT,NEW -j ACCEPT
-A FORWARD -i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT
COMMIT
)txt",
     {
         {"filter", "FORWARD", 1, R"txt(-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT)txt"},
         {"filter", "FORWARD", 2,
          R"txt(-i wan0 -o lan0 -m conntrack --ctstate NEW,DNAT -j ACCEPT)txt"},
         {"nat", "PREROUTING", 0,
          R"txt(-d 203.0.113.10/32 -i wan0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.0.2.10:8080)txt"},
     }},
    {"filter_drop_new_established_passes+icmp_echo_request_reply+i",
     Family::kIpv4,
     R"txt(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT
COMMIT
)txt",
     {
         {"filter", "FORWARD", 0, R"txt(-m conntrack --ctstate INVALID -j DROP)txt"},
         {"filter", "FORWARD", 1, R"txt(-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT)txt"},
         {"filter", "FORWARD", 2, R"txt(-i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT)txt"},
     }},
    {"ftp_active_port_snat+ftp_passive_pasv_snat",
     Family::kIpv4,
     R"txt(*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -i lan0 -p tcp --dport 21 -j CT --helper ftp
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o wan0 -j SNAT --to-source 203.0.113.5
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT
COMMIT
)txt",
     {
         {"filter", "FORWARD", 1, R"txt(-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT)txt"},
         {"filter", "FORWARD", 2, R"txt(-i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT)txt"},
         {"nat", "POSTROUTING", 0, R"txt(-o wan0 -j SNAT --to-source 203.0.113.5)txt"},
         {"raw", "PREROUTING", 0, R"txt(-i lan0 -p tcp -m tcp --dport 21 -j CT --helper ftp)txt"},
     }},
    {"icmp_error_related_udp_snat+ipv4_fragments_udp_snat+snat_poo",
     Family::kIpv4,
     R"txt(*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o wan0 -j SNAT --to-source 203.0.113.5
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT
COMMIT
)txt",
     {
         {"filter", "FORWARD", 1, R"txt(-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT)txt"},
         {"filter", "FORWARD", 2, R"txt(-i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT)txt"},
         {"nat", "POSTROUTING", 0, R"txt(-o wan0 -j SNAT --to-source 203.0.113.5)txt"},
     }},
    {"ipv6_tcp_handshake+tcp_simultaneous_open",
     Family::kIpv4,
     R"txt(*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
)txt",
     {

     }},
    {"ipv6_tcp_handshake",
     Family::kIpv6,
     R"txt(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT
COMMIT
)txt",
     {
         {"filter", "FORWARD", 1, R"txt(-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT)txt"},
         {"filter", "FORWARD", 2, R"txt(-i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT)txt"},
     }},
    {"notrack_raw",
     Family::kIpv4,
     R"txt(*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp --dport 53 -j NOTRACK
-A PREROUTING -p udp --sport 53 -j NOTRACK
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o wan0 -j SNAT --to-source 203.0.113.5
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -m conntrack --ctstate UNTRACKED -j ACCEPT
-A FORWARD -i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT
COMMIT
)txt",
     {
         {"filter", "FORWARD", 2, R"txt(-m conntrack --ctstate UNTRACKED -j ACCEPT)txt"},
         {"filter", "FORWARD", 3, R"txt(-i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT)txt"},
         {"nat", "POSTROUTING", 0, R"txt(-o wan0 -j SNAT --to-source 203.0.113.5)txt"},
         {"raw", "PREROUTING", 0, R"txt(-p udp -m udp --dport 53 -j NOTRACK)txt"},
         {"raw", "PREROUTING", 1, R"txt(-p udp -m udp --sport 53 -j NOTRACK)txt"},
     }},
    {"redirect_local",
     Family::kIpv4,
     R"txt(*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i lan0 -p tcp --dport 80 -j REDIRECT --to-ports 3128
-A PREROUTING -i lan0 -p udp --dport 53 -j REDIRECT --to-ports 5353
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT
COMMIT
)txt",
     {
         {"nat", "PREROUTING", 0,
          R"txt(-i lan0 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 3128)txt"},
         {"nat", "PREROUTING", 1,
          R"txt(-i lan0 -p udp -m udp --dport 53 -j REDIRECT --to-ports 5353)txt"},
     }},
};
const CorpusForwardStep kForwardSteps[] = {
    {"ct_mark_zone_step0", 0, "lan0", "wan0", "NEW", false, {2}},
    {"ct_mark_zone_step1", 0, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"dnat_port_forward_step0", 1, "wan0", "lan0", "NEW,DNAT", false, {2}},
    {"dnat_port_forward_step1", 1, "lan0", "wan0", "ESTABLISHED,DNAT", true, {1}},
    {"dnat_port_forward_step2", 1, "wan0", "lan0", "ESTABLISHED,DNAT", false, {1}},
    {"dnat_port_forward_step3", 1, "wan0", "lan0", "ESTABLISHED,DNAT", false, {1}},
    {"dnat_port_forward_step4", 1, "lan0", "wan0", "ESTABLISHED,DNAT", true, {1}},
    {"dnat_port_forward_step5", 1, "wan0", "lan0", "ESTABLISHED,DNAT", false, {1}},
    {"dnat_port_forward_step6", 1, "lan0", "wan0", "ESTABLISHED,DNAT", true, {1}},
    {"dnat_port_forward_step7", 1, "wan0", "lan0", "ESTABLISHED,DNAT", false, {1}},
    {"filter_drop_new_established_passes_step0", 2, "lan0", "wan0", "NEW", false, {2}},
    {"filter_drop_new_established_passes_step1", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"filter_drop_new_established_passes_step2", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"filter_drop_new_established_passes_step3", 2, "wan0", "lan0", "NEW", false, {}},
    {"filter_drop_new_established_passes_step4", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"filter_drop_new_established_passes_step5", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"ftp_active_port_snat_step0", 3, "lan0", "wan0", "NEW", false, {2}},
    {"ftp_active_port_snat_step1", 3, "wan0", "lan0", "ESTABLISHED,SNAT", true, {1}},
    {"ftp_active_port_snat_step2", 3, "lan0", "wan0", "ESTABLISHED,SNAT", false, {1}},
    {"ftp_active_port_snat_step3", 3, "wan0", "lan0", "ESTABLISHED,SNAT", true, {1}},
    {"ftp_active_port_snat_step4", 3, "lan0", "wan0", "ESTABLISHED,SNAT", false, {1}},
    {"ftp_active_port_snat_step5", 3, "wan0", "lan0", "ESTABLISHED,SNAT", true, {1}},
    {"ftp_active_port_snat_step6", 3, "lan0", "wan0", "ESTABLISHED,SNAT", false, {1}},
    {"ftp_active_port_snat_step7", 3, "wan0", "lan0", "ESTABLISHED,SNAT", true, {1}},
    {"ftp_active_port_snat_step8", 3, "lan0", "wan0", "ESTABLISHED,SNAT", false, {1}},
    {"ftp_active_port_snat_step9", 3, "wan0", "lan0", "ESTABLISHED,SNAT", true, {1}},
    {"ftp_active_port_snat_step10", 3, "wan0", "lan0", "RELATED,DNAT", false, {1}},
    {"ftp_active_port_snat_step11", 3, "lan0", "wan0", "ESTABLISHED,DNAT", true, {1}},
    {"ftp_active_port_snat_step12", 3, "wan0", "lan0", "ESTABLISHED,DNAT", false, {1}},
    {"ftp_active_port_snat_step13", 3, "lan0", "wan0", "ESTABLISHED,SNAT", false, {1}},
    {"ftp_passive_pasv_snat_step0", 3, "lan0", "wan0", "NEW", false, {2}},
    {"ftp_passive_pasv_snat_step1", 3, "wan0", "lan0", "ESTABLISHED,SNAT", true, {1}},
    {"ftp_passive_pasv_snat_step2", 3, "lan0", "wan0", "ESTABLISHED,SNAT", false, {1}},
    {"ftp_passive_pasv_snat_step3", 3, "wan0", "lan0", "ESTABLISHED,SNAT", true, {1}},
    {"ftp_passive_pasv_snat_step4", 3, "lan0", "wan0", "ESTABLISHED,SNAT", false, {1}},
    {"ftp_passive_pasv_snat_step5", 3, "wan0", "lan0", "ESTABLISHED,SNAT", true, {1}},
    {"ftp_passive_pasv_snat_step6", 3, "lan0", "wan0", "RELATED,SNAT", false, {1}},
    {"ftp_passive_pasv_snat_step7", 3, "wan0", "lan0", "ESTABLISHED,SNAT", true, {1}},
    {"ftp_passive_pasv_snat_step8", 3, "lan0", "wan0", "ESTABLISHED,SNAT", false, {1}},
    {"ftp_passive_pasv_snat_step9", 3, "lan0", "wan0", "ESTABLISHED,SNAT", false, {1}},
    {"icmp_echo_request_reply_step0", 2, "lan0", "wan0", "NEW", false, {2}},
    {"icmp_echo_request_reply_step1", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"icmp_echo_request_reply_step2", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"icmp_echo_request_reply_step3", 2, "lan0", "wan0", "NEW", false, {2}},
    {"icmp_error_related_udp_snat_step0", 4, "lan0", "wan0", "NEW", false, {2}},
    {"icmp_error_related_udp_snat_step1", 4, "wan0", "lan0", "RELATED,SNAT", true, {1}},
    {"icmp_error_unmatched_invalid_step0", 2, "wan0", "lan0", "INVALID", false, {0}},
    {"icmp_error_unmatched_invalid_step1", 2, "lan0", "wan0", "NEW", false, {2}},
    {"icmp_error_unmatched_invalid_step2", 2, "wan0", "lan0", "RELATED", true, {1}},
    {"ipv4_fragments_udp_snat_step1", 4, "lan0", "wan0", "NEW", false, {2}},
    {"ipv6_tcp_handshake_step8", 5, "wan0", "lan0", "NEW", false, {}},
    {"ipv6_tcp_handshake_step0", 6, "lan0", "wan0", "NEW", false, {2}},
    {"ipv6_tcp_handshake_step1", 6, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"ipv6_tcp_handshake_step2", 6, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"ipv6_tcp_handshake_step3", 6, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"ipv6_tcp_handshake_step4", 6, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"ipv6_tcp_handshake_step5", 6, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"ipv6_tcp_handshake_step6", 6, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"ipv6_tcp_handshake_step7", 6, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"notrack_raw_step0", 7, "lan0", "wan0", "UNTRACKED", false, {2}},
    {"notrack_raw_step1", 7, "wan0", "lan0", "UNTRACKED", false, {2}},
    {"notrack_raw_step2", 7, "lan0", "wan0", "NEW", false, {3}},
    {"snat_pool_tcp_step0", 4, "lan0", "wan0", "NEW", false, {2}},
    {"snat_pool_tcp_step1", 4, "wan0", "lan0", "ESTABLISHED,SNAT", true, {1}},
    {"snat_pool_tcp_step2", 4, "lan0", "wan0", "ESTABLISHED,SNAT", false, {1}},
    {"snat_pool_tcp_step3", 4, "lan0", "wan0", "ESTABLISHED,SNAT", false, {1}},
    {"snat_pool_tcp_step4", 4, "wan0", "lan0", "ESTABLISHED,SNAT", true, {1}},
    {"snat_pool_tcp_step5", 4, "lan0", "wan0", "ESTABLISHED,SNAT", false, {1}},
    {"snat_port_clash_random_step0", 4, "lan0", "wan0", "NEW", false, {2}},
    {"snat_port_clash_random_step1", 4, "lan0", "wan0", "NEW", false, {2}},
    {"snat_port_clash_random_step2", 4, "lan0", "wan0", "NEW", false, {2}},
    {"snat_port_clash_random_step3", 4, "lan0", "wan0", "NEW", false, {2}},
    {"tcp_fin_simultaneous_close_step0", 2, "lan0", "wan0", "NEW", false, {2}},
    {"tcp_fin_simultaneous_close_step1", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_fin_simultaneous_close_step2", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_fin_simultaneous_close_step3", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_fin_simultaneous_close_step4", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_fin_simultaneous_close_step5", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_fin_simultaneous_close_step6", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_handshake_fin_client_first_step0", 2, "lan0", "wan0", "NEW", false, {2}},
    {"tcp_handshake_fin_client_first_step1", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_handshake_fin_client_first_step2", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_handshake_fin_client_first_step3", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_handshake_fin_client_first_step4", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_handshake_fin_client_first_step5", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_handshake_fin_client_first_step6", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_handshake_fin_client_first_step7", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_handshake_fin_client_first_step8", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_handshake_fin_client_first_step9", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_handshake_fin_client_first_step10", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_invalid_flags_checksum_step0", 2, "lan0", "wan0", "INVALID", false, {0}},
    {"tcp_invalid_flags_checksum_step1", 2, "lan0", "wan0", "INVALID", false, {0}},
    {"tcp_invalid_flags_checksum_step2", 2, "lan0", "wan0", "INVALID", false, {0}},
    {"tcp_invalid_flags_checksum_step3", 2, "lan0", "wan0", "INVALID", false, {0}},
    {"tcp_invalid_flags_checksum_step4", 2, "lan0", "wan0", "NEW", false, {2}},
    {"tcp_loose_pickup_step0", 2, "lan0", "wan0", "NEW", false, {2}},
    {"tcp_loose_pickup_step1", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_loose_pickup_step2", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_loose_pickup_step3", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_out_of_window_invalid_step0", 2, "lan0", "wan0", "NEW", false, {2}},
    {"tcp_out_of_window_invalid_step1", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_out_of_window_invalid_step2", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_out_of_window_invalid_step3", 2, "lan0", "wan0", "INVALID", false, {0}},
    {"tcp_out_of_window_invalid_step4", 2, "wan0", "lan0", "INVALID", false, {0}},
    {"tcp_out_of_window_invalid_step5", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_out_of_window_invalid_step6", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_rst_close_step0", 2, "lan0", "wan0", "NEW", false, {2}},
    {"tcp_rst_close_step1", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_rst_close_step2", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_rst_close_step3", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_rst_close_step4", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_rst_close_step5", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_simultaneous_open_step0", 5, "lan0", "wan0", "NEW", false, {}},
    {"tcp_simultaneous_open_step1", 5, "wan0", "lan0", "ESTABLISHED", true, {}},
    {"tcp_simultaneous_open_step2", 5, "lan0", "wan0", "ESTABLISHED", false, {}},
    {"tcp_simultaneous_open_step3", 5, "wan0", "lan0", "ESTABLISHED", true, {}},
    {"tcp_simultaneous_open_step4", 5, "lan0", "wan0", "ESTABLISHED", false, {}},
    {"tcp_syn_retransmit_step0", 2, "lan0", "wan0", "NEW", false, {2}},
    {"tcp_syn_retransmit_step1", 2, "lan0", "wan0", "NEW", false, {2}},
    {"tcp_syn_retransmit_step2", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_syn_retransmit_step3", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_syn_retransmit_step4", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_time_wait_reopen_step0", 2, "lan0", "wan0", "NEW", false, {2}},
    {"tcp_time_wait_reopen_step1", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_time_wait_reopen_step2", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_time_wait_reopen_step3", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_time_wait_reopen_step4", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_time_wait_reopen_step5", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_time_wait_reopen_step6", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_time_wait_reopen_step7", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"tcp_time_wait_reopen_step8", 2, "lan0", "wan0", "NEW", false, {2}},
    {"tcp_time_wait_reopen_step9", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"tcp_time_wait_reopen_step10", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"udp_reply_from_other_port_new_step0", 2, "lan0", "wan0", "NEW", false, {2}},
    {"udp_reply_from_other_port_new_step1", 2, "wan0", "lan0", "NEW", false, {}},
    {"udp_reply_from_other_port_new_step2", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"udp_single_request_step0", 2, "lan0", "wan0", "NEW", false, {2}},
    {"udp_stream_assured_step0", 2, "lan0", "wan0", "NEW", false, {2}},
    {"udp_stream_assured_step1", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
    {"udp_stream_assured_step2", 2, "lan0", "wan0", "ESTABLISHED", false, {1}},
    {"udp_stream_assured_step3", 2, "wan0", "lan0", "ESTABLISHED", true, {1}},
};

Table TableByName(std::string_view name) {
  if (name == "raw") return Table::kRaw;
  if (name == "mangle") return Table::kMangle;
  if (name == "nat") return Table::kNat;
  return Table::kFilter;
}

TEST(CorpusTest, EveryRulesetParsesAndHitRulesRenderAsSaved) {
  for (const CorpusRuleset& c : kCorpus) {
    SCOPED_TRACE(c.scenarios);
    auto rs = RuleSet::Parse(c.text, c.family);
    ASSERT_TRUE(rs.ok()) << rs.status();
    for (const CorpusHit& h : c.hits) {
      auto text = rs->RuleText(TableByName(h.table), h.chain, h.index);
      ASSERT_TRUE(text.has_value()) << h.table << " " << h.chain << " " << h.index;
      EXPECT_EQ(*text, h.rule);
    }
  }
}

TEST(CorpusTest, ForwardHitsMatchKernel) {
  ASSERT_GT(std::size(kForwardSteps), 100u);
  for (const CorpusForwardStep& s : kForwardSteps) {
    SCOPED_TRACE(s.name);
    const CorpusRuleset& c = kCorpus[s.ruleset];
    auto rs = RuleSet::Parse(c.text, c.family);
    ASSERT_TRUE(rs.ok()) << rs.status();
    MatchContext ctx;
    ctx.family = c.family;
    ctx.in_iface = s.in;
    ctx.out_iface = s.out;
    ctx.packet_len = 60;
    ctx.ctstate = 0;
    for (absl::string_view tag : absl::StrSplit(s.states, ',', absl::SkipEmpty())) {
      if (tag == "INVALID") ctx.ctstate |= kCtInvalid;
      if (tag == "NEW") ctx.ctstate |= kCtNew;
      if (tag == "ESTABLISHED") ctx.ctstate |= kCtEstablished;
      if (tag == "RELATED") ctx.ctstate |= kCtRelated;
      if (tag == "UNTRACKED") ctx.ctstate |= kCtUntracked;
      if (tag == "SNAT") ctx.ctstate |= kCtSnat;
      if (tag == "DNAT") ctx.ctstate |= kCtDnat;
    }
    ctx.ct_dir_reply = s.dir_reply;
    PacketEffects effects;
    std::vector<RuleHit> hits;
    rs->Evaluate(Table::kFilter, Hook::kForward, ctx, &effects, &hits);
    std::vector<int> got;
    for (const RuleHit& h : hits) got.push_back(h.index);
    EXPECT_EQ(got, s.forward_hits);
  }
}

}  // namespace
}  // namespace ctsync::rules
