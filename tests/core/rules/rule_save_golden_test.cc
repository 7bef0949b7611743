// Golden Save() texts: each input was restored into a scratch namespace with
// iptables-legacy-restore (v1.8.9) / ip6tables-legacy-restore and the expected text is what
// `iptables-legacy-save -c` printed for it (comment lines removed). V4Counters was restored
// with `-c`; the others had zero counters, so the kernel's output and ours agree either way.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/rules/rule_set.h"
#include "gtest/gtest.h"

namespace ctsync::rules {
namespace {

struct GoldenCase {
  const char* name;
  Family family;
  const char* restore;
  const char* saved;
};

const GoldenCase kGolden[] = {
    {"V4Everything", Family::kIpv4,
     R"txt(*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp --dport 53 -j NOTRACK
-A PREROUTING -p udp --sport 53 -j CT --notrack
-A PREROUTING -i lan0 -j CT --zone 7
-A PREROUTING -i lan0 -p tcp --dport 21 -j CT --helper ftp
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m conntrack --ctstate NEW -j CONNMARK --set-mark 0x2a
-A PREROUTING -j CONNMARK --set-mark 0x2a/0xff
-A PREROUTING -j CONNMARK --save-mark
-A PREROUTING -j CONNMARK --restore-mark
-A PREROUTING -j MARK --set-mark 5
-A PREROUTING -j MARK --set-xmark 0x5/0xf
-A PREROUTING -j MARK --and-mark 0xf0
-A PREROUTING -j MARK --or-mark 0x3
-A PREROUTING -m mark --mark 0x1 -j ACCEPT
-A PREROUTING -m mark ! --mark 0x1/0xf -j ACCEPT
-A PREROUTING -m connmark --mark 42 -j ACCEPT
-A PREROUTING -m connmark ! --mark 0x2/0x3 -j ACCEPT
-A FORWARD -j LOG
-A FORWARD -j LOG --log-prefix "hello: " --log-level 4
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i wan0 -d 203.0.113.10 -p tcp --dport 80 -j DNAT --to-destination 192.0.2.10:8080
-A PREROUTING -d 203.0.113.11 -p tcp -j DNAT --to-destination 192.0.2.10-192.0.2.12:8080-8090
-A PREROUTING -d 203.0.113.12 -p udp -j DNAT --to-destination 192.0.2.10 --random --persistent
-A PREROUTING -i lan0 -p tcp --dport 80 -j REDIRECT --to-ports 3128
-A PREROUTING -i lan0 -p tcp --dport 81 -j REDIRECT --to-ports 3128-3130 --random
-A PREROUTING -i lan0 -p tcp --dport 82 -j REDIRECT
-A POSTROUTING -o wan0 -j SNAT --to-source 203.0.113.5
-A POSTROUTING -o wan1 -p tcp -j SNAT --to-source 203.0.113.5-203.0.113.6:1024-2048 --random-fully
-A POSTROUTING -o wan2 -j SNAT --to-source 203.0.113.5 --random --random-fully --persistent
-A POSTROUTING -o wan3 -j MASQUERADE
-A POSTROUTING -o wan3 -p udp -j MASQUERADE --to-ports 1024-2000 --random
-A POSTROUTING -o wan4 -j MASQUERADE --random-fully
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:mychain - [0:0]
:other - [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i wan0 -o lan0 -m conntrack --ctstate DNAT,NEW -j ACCEPT
-A FORWARD -m conntrack --ctstate UNTRACKED,SNAT,INVALID,NEW,ESTABLISHED,RELATED,DNAT -j ACCEPT
-A FORWARD -m conntrack ! --ctstate NEW --ctstatus ASSURED,SEEN_REPLY --ctdir REPLY -j ACCEPT
-A FORWARD -m conntrack --ctstatus EXPECTED,CONFIRMED,NONE --ctdir ORIGINAL -j ACCEPT
-A FORWARD -m conntrack --ctorigsrc 192.0.2.0/24 --ctorigdst 198.51.100.20 --ctreplsrc 1.2.3.4 ! --ctrepldst 5.6.7.0/24 -j ACCEPT
-A FORWARD -m conntrack --ctproto tcp --ctorigsrcport 1000 --ctorigdstport 80:90 --ctreplsrcport 5 ! --ctrepldstport 6 -j ACCEPT
-A FORWARD -m state --state NEW,ESTABLISHED -j ACCEPT
-A FORWARD -m state ! --state INVALID,UNTRACKED,RELATED -j ACCEPT
-A FORWARD -s 192.0.2.0/24 ! -d 10.0.0.1 -i lan+ ! -o wan0 -p tcp ! --sport 1024:65535 --dport 80 -j ACCEPT
-A FORWARD -p tcp --tcp-flags SYN,ACK SYN -j mychain
-A FORWARD -p tcp ! --syn -g other
-A FORWARD -p tcp --syn -j ACCEPT
-A FORWARD -p tcp --tcp-flags ALL FIN,PSH,URG -j DROP
-A FORWARD -p tcp --tcp-flags NONE NONE -j DROP
-A FORWARD -p tcp -m multiport --dports 80,443,8000:8080 -j ACCEPT
-A FORWARD -p udp -m multiport ! --sports 53,123 -j ACCEPT
-A FORWARD -p tcp -m multiport --ports 22,23 -j ACCEPT
-A FORWARD -p icmp --icmp-type echo-request -j ACCEPT
-A FORWARD -p icmp --icmp-type 3/3 -j ACCEPT
-A FORWARD -p icmp ! --icmp-type 8 -j ACCEPT
-A FORWARD -p icmp --icmp-type any -j ACCEPT
-A FORWARD -p icmp --icmp-type port-unreachable -j ACCEPT
-A FORWARD -p icmp --icmp-type 3 -j ACCEPT
-A FORWARD -f -j DROP
-A FORWARD ! -f -p udp -j ACCEPT
-A FORWARD -m tcp -p tcp --dport 22 -j ACCEPT
-A FORWARD -p tcp -m tcp --sport 22 --dport 23 -j ACCEPT
-A FORWARD -p udp -m udp --sport 22:30 -j ACCEPT
-A FORWARD -p 47 -j ACCEPT
-A FORWARD ! -p tcp -j ACCEPT
-A FORWARD -p all -j ACCEPT
-A FORWARD -p sctp -j ACCEPT
-A FORWARD -d 192.0.2.5/255.255.255.0 -j ACCEPT
-A FORWARD -s 0.0.0.0/0 -j ACCEPT
-A FORWARD -p tcp -j REJECT --reject-with tcp-reset
-A FORWARD -j REJECT
-A FORWARD -j REJECT --reject-with icmp-host-prohibited
-A FORWARD -j REJECT --reject-with icmp-admin-prohibited
-A FORWARD -j REJECT --reject-with icmp-net-unreachable
-A FORWARD -j REJECT --reject-with icmp-proto-unreachable
-A FORWARD -j REJECT --reject-with icmp-net-prohibited
-A FORWARD -j REJECT --reject-with icmp-host-unreachable
-A FORWARD -p tcp --dport 80 --sport 1 -m conntrack --ctstate NEW -j ACCEPT
-A FORWARD -m conntrack --ctstate NEW -p tcp --dport 80 -j ACCEPT
-A FORWARD -p tcp -m tcp --dport 8080 -m conntrack --ctstate NEW -j ACCEPT
-A mychain -j RETURN
-A other -j ACCEPT
COMMIT
)txt",
     R"txt(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:mychain - [0:0]
:other - [0:0]
[0:0] -A FORWARD -m conntrack --ctstate INVALID -j DROP
[0:0] -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[0:0] -A FORWARD -i wan0 -o lan0 -m conntrack --ctstate NEW,DNAT -j ACCEPT
[0:0] -A FORWARD -m conntrack --ctstate INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED,SNAT,DNAT -j ACCEPT
[0:0] -A FORWARD -m conntrack ! --ctstate NEW --ctstatus SEEN_REPLY,ASSURED --ctdir REPLY -j ACCEPT
[0:0] -A FORWARD -m conntrack --ctstatus EXPECTED,CONFIRMED --ctdir ORIGINAL -j ACCEPT
[0:0] -A FORWARD -m conntrack --ctorigsrc 192.0.2.0/24 --ctorigdst 198.51.100.20 --ctreplsrc 1.2.3.4 ! --ctrepldst 5.6.7.0/24 -j ACCEPT
[0:0] -A FORWARD -m conntrack --ctproto 6 --ctorigsrcport 1000 --ctorigdstport 80:90 --ctreplsrcport 5 ! --ctrepldstport 6 -j ACCEPT
[0:0] -A FORWARD -m state --state NEW,ESTABLISHED -j ACCEPT
[0:0] -A FORWARD -m state ! --state INVALID,RELATED,UNTRACKED -j ACCEPT
[0:0] -A FORWARD -s 192.0.2.0/24 ! -d 10.0.0.1/32 -i lan+ ! -o wan0 -p tcp -m tcp ! --sport 1024:65535 --dport 80 -j ACCEPT
[0:0] -A FORWARD -p tcp -m tcp --tcp-flags SYN,ACK SYN -j mychain
[0:0] -A FORWARD -p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -g other
[0:0] -A FORWARD -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT
[0:0] -A FORWARD -p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG FIN,PSH,URG -j DROP
[0:0] -A FORWARD -p tcp -m tcp -j DROP
[0:0] -A FORWARD -p tcp -m multiport --dports 80,443,8000:8080 -j ACCEPT
[0:0] -A FORWARD -p udp -m multiport ! --sports 53,123 -j ACCEPT
[0:0] -A FORWARD -p tcp -m multiport --ports 22,23 -j ACCEPT
[0:0] -A FORWARD -p icmp -m icmp --icmp-type 8 -j ACCEPT
[0:0] -A FORWARD -p icmp -m icmp --icmp-type 3/3 -j ACCEPT
[0:0] -A FORWARD -p icmp -m icmp ! --icmp-type 8 -j ACCEPT
[0:0] -A FORWARD -p icmp -m icmp --icmp-type any -j ACCEPT
[0:0] -A FORWARD -p icmp -m icmp --icmp-type 3/3 -j ACCEPT
[0:0] -A FORWARD -p icmp -m icmp --icmp-type 3 -j ACCEPT
[0:0] -A FORWARD -f -j DROP
[0:0] -A FORWARD -p udp ! -f -j ACCEPT
[0:0] -A FORWARD -p tcp -m tcp --dport 22 -j ACCEPT
[0:0] -A FORWARD -p tcp -m tcp --sport 22 --dport 23 -j ACCEPT
[0:0] -A FORWARD -p udp -m udp --sport 22:30 -j ACCEPT
[0:0] -A FORWARD -p gre -j ACCEPT
[0:0] -A FORWARD ! -p tcp -j ACCEPT
[0:0] -A FORWARD -j ACCEPT
[0:0] -A FORWARD -p sctp -j ACCEPT
[0:0] -A FORWARD -d 192.0.2.0/24 -j ACCEPT
[0:0] -A FORWARD -j ACCEPT
[0:0] -A FORWARD -p tcp -j REJECT --reject-with tcp-reset
[0:0] -A FORWARD -j REJECT --reject-with icmp-port-unreachable
[0:0] -A FORWARD -j REJECT --reject-with icmp-host-prohibited
[0:0] -A FORWARD -j REJECT --reject-with icmp-admin-prohibited
[0:0] -A FORWARD -j REJECT --reject-with icmp-net-unreachable
[0:0] -A FORWARD -j REJECT --reject-with icmp-proto-unreachable
[0:0] -A FORWARD -j REJECT --reject-with icmp-net-prohibited
[0:0] -A FORWARD -j REJECT --reject-with icmp-host-unreachable
[0:0] -A FORWARD -p tcp -m tcp --sport 1 --dport 80 -m conntrack --ctstate NEW -j ACCEPT
[0:0] -A FORWARD -p tcp -m conntrack --ctstate NEW -m tcp --dport 80 -j ACCEPT
[0:0] -A FORWARD -p tcp -m tcp --dport 8080 -m conntrack --ctstate NEW -j ACCEPT
[0:0] -A mychain -j RETURN
[0:0] -A other -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
[0:0] -A PREROUTING -d 203.0.113.10/32 -i wan0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.0.2.10:8080
[0:0] -A PREROUTING -d 203.0.113.11/32 -p tcp -j DNAT --to-destination 192.0.2.10-192.0.2.12:8080-8090
[0:0] -A PREROUTING -d 203.0.113.12/32 -p udp -j DNAT --to-destination 192.0.2.10 --random --persistent
[0:0] -A PREROUTING -i lan0 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 3128
[0:0] -A PREROUTING -i lan0 -p tcp -m tcp --dport 81 -j REDIRECT --to-ports 3128-3130 --random
[0:0] -A PREROUTING -i lan0 -p tcp -m tcp --dport 82 -j REDIRECT
[0:0] -A POSTROUTING -o wan0 -j SNAT --to-source 203.0.113.5
[0:0] -A POSTROUTING -o wan1 -p tcp -j SNAT --to-source 203.0.113.5-203.0.113.6:1024-2048 --random-fully
[0:0] -A POSTROUTING -o wan2 -j SNAT --to-source 203.0.113.5 --random --random-fully --persistent
[0:0] -A POSTROUTING -o wan3 -j MASQUERADE
[0:0] -A POSTROUTING -o wan3 -p udp -j MASQUERADE --to-ports 1024-2000 --random
[0:0] -A POSTROUTING -o wan4 -j MASQUERADE --random-fully
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
[0:0] -A PREROUTING -m conntrack --ctstate NEW -j CONNMARK --set-xmark 0x2a/0xffffffff
[0:0] -A PREROUTING -j CONNMARK --set-xmark 0x2a/0xff
[0:0] -A PREROUTING -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff
[0:0] -A PREROUTING -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff
[0:0] -A PREROUTING -j MARK --set-xmark 0x5/0xffffffff
[0:0] -A PREROUTING -j MARK --set-xmark 0x5/0xf
[0:0] -A PREROUTING -j MARK --set-xmark 0x0/0xffffff0f
[0:0] -A PREROUTING -j MARK --set-xmark 0x3/0x3
[0:0] -A PREROUTING -m mark --mark 0x1 -j ACCEPT
[0:0] -A PREROUTING -m mark ! --mark 0x1/0xf -j ACCEPT
[0:0] -A PREROUTING -m connmark --mark 0x2a -j ACCEPT
[0:0] -A PREROUTING -m connmark ! --mark 0x2/0x3 -j ACCEPT
[0:0] -A FORWARD -j LOG
[0:0] -A FORWARD -j LOG --log-prefix "hello: "
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
[0:0] -A PREROUTING -p udp -m udp --dport 53 -j NOTRACK
[0:0] -A PREROUTING -p udp -m udp --sport 53 -j CT --notrack
[0:0] -A PREROUTING -i lan0 -j CT --zone 7
[0:0] -A PREROUTING -i lan0 -p tcp -m tcp --dport 21 -j CT --helper ftp
COMMIT
)txt"},
    {"V6Everything", Family::kIpv6,
     R"txt(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -s 2001:db8:1::10 -d 2001:db8:2::/64 -p tcp --dport 22 -j ACCEPT
-A FORWARD -p ipv6-icmp --icmpv6-type echo-request -j ACCEPT
-A FORWARD -p icmpv6 --icmpv6-type 1/4 -j ACCEPT
-A FORWARD -p icmpv6 -m icmp6 ! --icmpv6-type 135 -j ACCEPT
-A FORWARD -p 58 --icmpv6-type destination-unreachable -j ACCEPT
-A FORWARD -j REJECT
-A FORWARD -j REJECT --reject-with icmp6-no-route
-A FORWARD -j REJECT --reject-with icmp6-adm-prohibited
-A FORWARD -j REJECT --reject-with icmp6-addr-unreachable
-A FORWARD -p tcp -j REJECT --reject-with tcp-reset
-A FORWARD -m conntrack --ctorigsrc 2001:db8::1 -j ACCEPT
-A FORWARD -j LOG --log-level debug --log-prefix x --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 2001:db8::10 -p tcp -j DNAT --to-destination [2001:db8:1::10]:8080
-A PREROUTING -d 2001:db8::11 -p tcp -j DNAT --to-destination 2001:db8:1::10-2001:db8:1::12
-A POSTROUTING -o wan0 -j SNAT --to-source 2001:db8::5
-A POSTROUTING -o wan0 -p udp -j SNAT --to-source [2001:db8::5-2001:db8::6]:1000-2000
COMMIT
)txt",
     R"txt(*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
[0:0] -A PREROUTING -d 2001:db8::10/128 -p tcp -j DNAT --to-destination [2001:db8:1::10]:8080
[0:0] -A PREROUTING -d 2001:db8::11/128 -p tcp -j DNAT --to-destination 2001:db8:1::10-2001:db8:1::12
[0:0] -A POSTROUTING -o wan0 -j SNAT --to-source 2001:db8::5
[0:0] -A POSTROUTING -o wan0 -p udp -j SNAT --to-source [2001:db8::5-2001:db8::6]:1000-2000
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
[0:0] -A FORWARD -s 2001:db8:1::10/128 -d 2001:db8:2::/64 -p tcp -m tcp --dport 22 -j ACCEPT
[0:0] -A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT
[0:0] -A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type 1/4 -j ACCEPT
[0:0] -A FORWARD -p ipv6-icmp -m icmp6 ! --icmpv6-type 135 -j ACCEPT
[0:0] -A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type 1 -j ACCEPT
[0:0] -A FORWARD -j REJECT --reject-with icmp6-port-unreachable
[0:0] -A FORWARD -j REJECT --reject-with icmp6-no-route
[0:0] -A FORWARD -j REJECT --reject-with icmp6-adm-prohibited
[0:0] -A FORWARD -j REJECT --reject-with icmp6-addr-unreachable
[0:0] -A FORWARD -p tcp -j REJECT --reject-with tcp-reset
[0:0] -A FORWARD -m conntrack --ctorigsrc 2001:db8::1 -j ACCEPT
[0:0] -A FORWARD -j LOG --log-prefix x --log-level 7 --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid
COMMIT
)txt"},
    {"V4ChainsLogMultiport", Family::kIpv4,
     R"txt(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:zeta - [0:0]
:alpha - [0:0]
-A FORWARD -m conntrack --ctdir REPLY --ctstatus NONE --ctrepldstport 5:6 --ctorigsrc 1.2.3.4 --ctproto udp --ctstate NEW -j zeta
-A FORWARD -p icmp -j alpha
-A FORWARD -p tcp -m tcp --tcp-flags SYN,FIN,ACK,RST,URG,PSH ALL
-A FORWARD -j LOG --log-level warning --log-prefix "a \"b\" c"
-A FORWARD -j LOG --log-level alert
-A FORWARD -p tcp -m multiport --sports 1:2 -j ACCEPT
-A FORWARD -p tcp --dport 10:20 --sport :30 -m multiport --dports 5:6 -j ACCEPT
-A FORWARD -m mark --mark 0xffffffff/0xffffffff -m connmark --mark 5/7
-A zeta -j RETURN
-A alpha -j RETURN
COMMIT
)txt",
     R"txt(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:alpha - [0:0]
:zeta - [0:0]
[0:0] -A FORWARD -m conntrack --ctstate NEW --ctproto 17 --ctorigsrc 1.2.3.4 --ctrepldstport 5:6 --ctstatus NONE --ctdir REPLY -j zeta
[0:0] -A FORWARD -p icmp -j alpha
[0:0] -A FORWARD -p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG FIN,SYN,RST,PSH,ACK,URG
[0:0] -A FORWARD -j LOG --log-prefix "a \"b\" c"
[0:0] -A FORWARD -j LOG --log-level 1
[0:0] -A FORWARD -p tcp -m multiport --sports 1:2 -j ACCEPT
[0:0] -A FORWARD -p tcp -m tcp --sport 0:30 --dport 10:20 -m multiport --dports 5:6 -j ACCEPT
[0:0] -A FORWARD -m mark --mark 0xffffffff -m connmark --mark 0x5/0x7
[0:0] -A alpha -j RETURN
[0:0] -A zeta -j RETURN
COMMIT
)txt"},
    {"V4RawCt", Family::kIpv4,
     R"txt(*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp -j CT --helper ftp --zone 3
-A PREROUTING -j CT
-A PREROUTING -j CT --notrack --zone 3
-A PREROUTING -p tcp -m conntrack --ctstatus EXPECTED,SEEN_REPLY,ASSURED,CONFIRMED -j NOTRACK
COMMIT
)txt",
     R"txt(*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
[0:0] -A PREROUTING -p tcp -j CT --helper ftp --zone 3
[0:0] -A PREROUTING -j CT
[0:0] -A PREROUTING -j CT --notrack --zone 3
[0:0] -A PREROUTING -p tcp -m conntrack --ctstatus EXPECTED,SEEN_REPLY,ASSURED,CONFIRMED -j NOTRACK
COMMIT
)txt"},
    {"V4Counters", Family::kIpv4,
     R"txt(*filter
:INPUT ACCEPT [1:2]
:FORWARD DROP [10:600]
:OUTPUT ACCEPT [0:0]
:user - [0:0]
[5:300] -A FORWARD -m conntrack --ctstate INVALID -j DROP
[7:700] -A FORWARD -j user
-A user -p tcp --syn
COMMIT
)txt",
     R"txt(*filter
:INPUT ACCEPT [1:2]
:FORWARD DROP [10:600]
:OUTPUT ACCEPT [0:0]
:user - [0:0]
[5:300] -A FORWARD -m conntrack --ctstate INVALID -j DROP
[7:700] -A FORWARD -j user
[0:0] -A user -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN
COMMIT
)txt"},
    {"V4ImplicitMatchesAndOddities", Family::kIpv4,
     R"txt(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p 6 --dport 80 -j ACCEPT
-A FORWARD -j ACCEPT -p tcp --dport 81
-A FORWARD -p TCP --dport 82 -j ACCEPT
-A FORWARD -m conntrack --ctstate NEW -m conntrack --ctstatus ASSURED -j ACCEPT
-A FORWARD -p udp -m multiport --sports 1,2 -m multiport --dports 3 -j ACCEPT
-A FORWARD -m mark --mark 1 -m connmark --mark 2 -j ACCEPT
-A FORWARD -j LOG --log-level 4 --log-prefix "a'b"
-A FORWARD -j LOG --log-prefix "a_b-c"
-A FORWARD ! -i lan0 ! -s 10.0.0.0/8 -j DROP
-A FORWARD -p icmp --icmp-type destination-unreachable -j ACCEPT
-A FORWARD -p icmp --icmp-type 0 -j ACCEPT
-A FORWARD -p udp --sport 53 --dport 1024: -j ACCEPT
-A FORWARD -p tcp --tcp-flags ALL NONE -j DROP
-A FORWARD -m conntrack --ctstatus NONE -j DROP
-A FORWARD -p udplite -j ACCEPT
-A FORWARD -p esp -j ACCEPT
-A FORWARD -p 200 -j ACCEPT
-A FORWARD -s 0.0.0.0/0 -d 0/0 -j ACCEPT
-A FORWARD ! -s 0.0.0.0/0 -j ACCEPT
-A FORWARD -m state --state ESTABLISHED,RELATED -m state ! --state NEW
COMMIT
)txt",
     R"txt(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
[0:0] -A FORWARD -p tcp -m tcp --dport 80 -j ACCEPT
[0:0] -A FORWARD -p tcp -m tcp --dport 81 -j ACCEPT
[0:0] -A FORWARD -p tcp -m tcp --dport 82 -j ACCEPT
[0:0] -A FORWARD -m conntrack --ctstate NEW -m conntrack --ctstatus ASSURED -j ACCEPT
[0:0] -A FORWARD -p udp -m multiport --sports 1,2 -m multiport --dports 3 -j ACCEPT
[0:0] -A FORWARD -m mark --mark 0x1 -m connmark --mark 0x2 -j ACCEPT
[0:0] -A FORWARD -j LOG --log-prefix "a\'b"
[0:0] -A FORWARD -j LOG --log-prefix a_b-c
[0:0] -A FORWARD ! -s 10.0.0.0/8 ! -i lan0 -j DROP
[0:0] -A FORWARD -p icmp -m icmp --icmp-type 3 -j ACCEPT
[0:0] -A FORWARD -p icmp -m icmp --icmp-type 0 -j ACCEPT
[0:0] -A FORWARD -p udp -m udp --sport 53 --dport 1024:65535 -j ACCEPT
[0:0] -A FORWARD -p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE -j DROP
[0:0] -A FORWARD -m conntrack --ctstatus NONE -j DROP
[0:0] -A FORWARD -p udplite -j ACCEPT
[0:0] -A FORWARD -p esp -j ACCEPT
[0:0] -A FORWARD -p 200 -j ACCEPT
[0:0] -A FORWARD -j ACCEPT
[0:0] -A FORWARD ! -s 0.0.0.0/0 -j ACCEPT
[0:0] -A FORWARD -m state --state RELATED,ESTABLISHED -m state ! --state NEW
COMMIT
)txt"},
    {"V4NewInsertPolicyCommands", Family::kIpv4,
     R"txt(*filter
:INPUT ACCEPT [0:0]
-N zed
-N abc
-P FORWARD DROP
-A FORWARD -j zed
-I FORWARD -j abc
-I FORWARD 2 -p udp -j ACCEPT
-A FORWARD -p tcp -j ACCEPT
-I FORWARD 4 -p icmp -j ACCEPT
-A abc -j RETURN
COMMIT
)txt",
     R"txt(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:abc - [0:0]
:zed - [0:0]
[0:0] -A FORWARD -j abc
[0:0] -A FORWARD -p udp -j ACCEPT
[0:0] -A FORWARD -j zed
[0:0] -A FORWARD -p icmp -j ACCEPT
[0:0] -A FORWARD -p tcp -j ACCEPT
[0:0] -A abc -j RETURN
COMMIT
)txt"},
};

class SaveGoldenTest : public testing::TestWithParam<GoldenCase> {};

TEST_P(SaveGoldenTest, MatchesIptablesSave) {
  const GoldenCase& c = GetParam();
  auto rs = RuleSet::Parse(c.restore, c.family);
  ASSERT_TRUE(rs.ok()) << rs.status();
  EXPECT_EQ(rs->Save(/*with_counters=*/true), c.saved);
}

// Parsing the saved text again gives the same rules, texts and counters (iptables-save
// output is itself valid restore input).
TEST_P(SaveGoldenTest, SavedTextParsesToSameRules) {
  const GoldenCase& c = GetParam();
  auto first = RuleSet::Parse(c.restore, c.family);
  auto again = RuleSet::Parse(c.saved, c.family);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(again.ok()) << again.status();
  auto key = [](const std::vector<RuleInfo>& rules) {
    std::vector<std::string> out;
    for (const RuleInfo& r : rules) {
      out.push_back(absl::StrCat(TableName(r.table), " ", r.chain, " ", r.index, " ", r.text, " ",
                                 r.packets, ":", r.bytes));
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(key(first->Rules()), key(again->Rules()));
  for (const RuleInfo& r : again->Rules()) {
    auto one = again->RuleText(r.table, r.chain, r.index);
    ASSERT_TRUE(one.has_value());
    EXPECT_EQ(*one, r.text);
  }
  EXPECT_FALSE(again->RuleText(Table::kFilter, "NO_SUCH_CHAIN", 0).has_value());
}

INSTANTIATE_TEST_SUITE_P(Iptables, SaveGoldenTest, testing::ValuesIn(kGolden),
                         [](const testing::TestParamInfo<GoldenCase>& i) { return i.param.name; });

}  // namespace
}  // namespace ctsync::rules
