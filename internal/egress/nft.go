package egress

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Table and Chain name what Batch makes: table inet hakoniwa, with the
// chain egress on the output hook.
const (
	Table = "hakoniwa"
	Chain = "egress"
)

// The verdicts, and the ICMPv6 types of neighbour and router discovery,
// which IPv6 needs to reach any address.
const (
	nfDrop   = 0
	nfAccept = 1

	icmpv6RouterSolicit = 133
	icmpv6Redirect      = 137

	ctDirReply      = 1 // IP_CT_DIR_REPLY
	loopbackIfindex = 1 // lo is always interface 1

	// maxBatch bounds the bytes of one batch, well under what a
	// netlink socket takes in one send (its default send buffer,
	// 212992 bytes, less the kernel's overhead).
	maxBatch = 64 << 10
)

// Published is a port of the sandbox's that the host forwards to.
type Published struct {
	Port  uint16
	Proto string // "tcp" or "udp"
}

// Batches returns the nftables netlink batches that allow the sandbox to
// send only what rules allow, and answers from its published ports:
//
//	table inet hakoniwa {
//		chain egress {
//			type filter hook output priority 0; policy drop;
//			oif lo accept
//			icmpv6 type 133-137 accept                  # neighbour and router discovery
//			ct direction reply tcp sport 8080 accept     # answers from a published port
//			ip daddr 192.0.2.0/24 tcp dport 443 accept   # one per rule, prefix, protocol and port range
//			meta l4proto tcp reject with tcp reset       # connect() fails with ECONNREFUSED
//			reject with icmpx port-unreachable           # the rest: the send fails with EPERM
//		}
//	}
//
// Answers are accepted by connection tracking's direction only from a
// published port: a helper may pass in packets from anyone to a port the
// sandbox sent from (pasta keeps a UDP source port open on the host), and
// answers to those would otherwise reach unlisted peers.
//
// The rules come in as many batches as a netlink send takes, to be sent in
// order. Every message asks for creation in a fresh namespace; the last
// rule of each batch asks for an acknowledgement, which the kernel sends
// after the errors of any earlier message, so that one read tells whether
// the batch was applied.
func Batches(rules []Rule, published []Published) [][]byte {
	w := &batch{}
	w.begin()
	w.nft(unix.NFT_MSG_NEWTABLE, unix.NLM_F_CREATE, attr(unix.NFTA_TABLE_NAME, cstr(Table)))
	w.nft(unix.NFT_MSG_NEWCHAIN, unix.NLM_F_CREATE,
		attr(unix.NFTA_CHAIN_TABLE, cstr(Table)),
		attr(unix.NFTA_CHAIN_NAME, cstr(Chain)),
		nested(unix.NFTA_CHAIN_HOOK,
			attr(unix.NFTA_HOOK_HOOKNUM, be32(unix.NF_INET_LOCAL_OUT)),
			attr(unix.NFTA_HOOK_PRIORITY, be32(0))),
		attr(unix.NFTA_CHAIN_POLICY, be32(nfDrop)),
		attr(unix.NFTA_CHAIN_TYPE, cstr("filter")))

	var list [][][]byte // each rule's expressions
	list = append(list,
		[][]byte{meta(unix.NFT_META_OIF), cmp(unix.NFT_CMP_EQ, u32(loopbackIfindex)), verdict(nfAccept)},
		[][]byte{meta(unix.NFT_META_NFPROTO), cmp(unix.NFT_CMP_EQ, []byte{unix.NFPROTO_IPV6}),
			meta(unix.NFT_META_L4PROTO), cmp(unix.NFT_CMP_EQ, []byte{unix.IPPROTO_ICMPV6}),
			payload(unix.NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1),
			rangeEq([]byte{icmpv6RouterSolicit}, []byte{icmpv6Redirect}), verdict(nfAccept)})
	for _, p := range published {
		proto := byte(unix.IPPROTO_TCP)
		if p.Proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		list = append(list, [][]byte{ct(unix.NFT_CT_DIRECTION), cmp(unix.NFT_CMP_EQ, []byte{ctDirReply}),
			meta(unix.NFT_META_L4PROTO), cmp(unix.NFT_CMP_EQ, []byte{proto}),
			payload(unix.NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2), cmp(unix.NFT_CMP_EQ, be16(p.Port)), verdict(nfAccept)})
	}
	for _, r := range rules {
		for _, p := range r.Prefixes {
			dst := daddr(p)
			if len(r.Ports) == 0 {
				list = append(list, append(dst, verdict(nfAccept)))
				continue
			}
			for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
				for _, pr := range r.Ports {
					e := append(append([][]byte(nil), dst...),
						meta(unix.NFT_META_L4PROTO), cmp(unix.NFT_CMP_EQ, []byte{proto}),
						payload(unix.NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2))
					if pr.From == pr.To {
						e = append(e, cmp(unix.NFT_CMP_EQ, be16(pr.From)))
					} else {
						e = append(e, rangeEq(be16(pr.From), be16(pr.To)))
					}
					list = append(list, append(e, verdict(nfAccept)))
				}
			}
		}
	}
	list = append(list,
		[][]byte{meta(unix.NFT_META_L4PROTO), cmp(unix.NFT_CMP_EQ, []byte{unix.IPPROTO_TCP}), reject(unix.NFT_REJECT_TCP_RST, 0)},
		[][]byte{reject(unix.NFT_REJECT_ICMPX_UNREACH, unix.NFT_REJECT_ICMPX_PORT_UNREACH)})
	var batches [][]byte
	for i, exprs := range list {
		rule := [][]byte{attr(unix.NFTA_RULE_TABLE, cstr(Table)), attr(unix.NFTA_RULE_CHAIN, cstr(Chain)),
			nested(unix.NFTA_RULE_EXPRESSIONS, exprs...)}
		last := i == len(list)-1
		if !last && len(w.b)+2*ruleSize(rule)+unix.NLMSG_HDRLEN+4 > maxBatch {
			// This rule ends the batch; the next starts another.
			last = true
		}
		var flags uint16 = unix.NLM_F_CREATE | unix.NLM_F_APPEND
		if last {
			flags |= unix.NLM_F_ACK
		}
		w.nft(unix.NFT_MSG_NEWRULE, flags, rule...)
		if last {
			w.end()
			batches = append(batches, w.b)
			w.b = nil
			if i < len(list)-1 {
				w.begin()
			}
		}
	}
	return batches
}

// ruleSize is the size of a rule message with these attributes.
func ruleSize(attrs [][]byte) int {
	n := unix.NLMSG_HDRLEN + 4
	for _, a := range attrs {
		n += len(a)
	}
	return n
}

// daddr matches the destination address against p.
func daddr(p netip.Prefix) [][]byte {
	family, offset := byte(unix.NFPROTO_IPV4), uint32(16) // iphdr.daddr
	if p.Addr().Is6() {
		family, offset = unix.NFPROTO_IPV6, 24 // ipv6hdr.daddr
	}
	e := [][]byte{meta(unix.NFT_META_NFPROTO), cmp(unix.NFT_CMP_EQ, []byte{family})}
	if p.Bits() == 0 {
		return e
	}
	addr := p.Addr().AsSlice()
	e = append(e, payload(unix.NFT_PAYLOAD_NETWORK_HEADER, offset, uint32(len(addr))))
	if p.Bits() < len(addr)*8 {
		mask := make([]byte, len(addr))
		for i := range p.Bits() {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		e = append(e, bitwise(mask))
	}
	return append(e, cmp(unix.NFT_CMP_EQ, addr))
}

// batch accumulates netlink messages.
type batch struct {
	b   []byte
	seq uint32
}

func (w *batch) begin() {
	w.msg(unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
}

func (w *batch) end() {
	w.msg(unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
}

// msg appends a netlink message with an nfgenmsg header.
func (w *batch) msg(typ, flags uint16, family uint8, resID uint16, attrs ...[]byte) {
	body := []byte{family, unix.NFNETLINK_V0, byte(resID >> 8), byte(resID)}
	for _, a := range attrs {
		body = append(body, a...)
	}
	h := make([]byte, unix.NLMSG_HDRLEN)
	binary.NativeEndian.PutUint32(h[0:], uint32(len(h)+len(body)))
	binary.NativeEndian.PutUint16(h[4:], typ)
	binary.NativeEndian.PutUint16(h[6:], flags)
	binary.NativeEndian.PutUint32(h[8:], w.seq)
	w.seq++
	w.b = append(append(w.b, h...), body...)
}

// nft appends an nftables message for the inet family.
func (w *batch) nft(msgType int, flags uint16, attrs ...[]byte) {
	w.msg(uint16(unix.NFNL_SUBSYS_NFTABLES<<8|msgType), unix.NLM_F_REQUEST|flags, unix.NFPROTO_INET, 0, attrs...)
}

// attr is a netlink attribute, padded to 4 bytes.
func attr(typ int, payload []byte) []byte {
	n := unix.SizeofNlAttr + len(payload)
	a := make([]byte, (n+3)&^3)
	binary.NativeEndian.PutUint16(a[0:], uint16(n))
	binary.NativeEndian.PutUint16(a[2:], uint16(typ))
	copy(a[unix.SizeofNlAttr:], payload)
	return a
}

func nested(typ int, attrs ...[]byte) []byte {
	var p []byte
	for _, a := range attrs {
		p = append(p, a...)
	}
	return attr(typ|unix.NLA_F_NESTED, p)
}

func cstr(s string) []byte { return append([]byte(s), 0) }

// be32 is an nftables attribute's number, in network order.
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// be16 is a port as it is in a packet.
func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// u32 is a register value the kernel stores in host order (an ifindex, a
// conntrack state).
func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// The expressions, each loading into or reading register 1.

func expr(name string, data ...[]byte) []byte {
	return nested(unix.NFTA_LIST_ELEM, attr(unix.NFTA_EXPR_NAME, cstr(name)), nested(unix.NFTA_EXPR_DATA, data...))
}

func meta(key uint32) []byte {
	return expr("meta", attr(unix.NFTA_META_DREG, be32(unix.NFT_REG_1)), attr(unix.NFTA_META_KEY, be32(key)))
}

func ct(key uint32) []byte {
	return expr("ct", attr(unix.NFTA_CT_DREG, be32(unix.NFT_REG_1)), attr(unix.NFTA_CT_KEY, be32(key)))
}

func payload(base, offset, length uint32) []byte {
	return expr("payload", attr(unix.NFTA_PAYLOAD_DREG, be32(unix.NFT_REG_1)), attr(unix.NFTA_PAYLOAD_BASE, be32(base)),
		attr(unix.NFTA_PAYLOAD_OFFSET, be32(offset)), attr(unix.NFTA_PAYLOAD_LEN, be32(length)))
}

func cmp(op uint32, data []byte) []byte {
	return expr("cmp", attr(unix.NFTA_CMP_SREG, be32(unix.NFT_REG_1)), attr(unix.NFTA_CMP_OP, be32(op)),
		nested(unix.NFTA_CMP_DATA, attr(unix.NFTA_DATA_VALUE, data)))
}

// bitwise keeps the bits of mask: reg1 = reg1 & mask ^ 0.
func bitwise(mask []byte) []byte {
	return expr("bitwise", attr(unix.NFTA_BITWISE_SREG, be32(unix.NFT_REG_1)), attr(unix.NFTA_BITWISE_DREG, be32(unix.NFT_REG_1)),
		attr(unix.NFTA_BITWISE_LEN, be32(uint32(len(mask)))),
		nested(unix.NFTA_BITWISE_MASK, attr(unix.NFTA_DATA_VALUE, mask)),
		nested(unix.NFTA_BITWISE_XOR, attr(unix.NFTA_DATA_VALUE, make([]byte, len(mask)))))
}

// rangeEq matches from <= reg1 <= to, compared as bytes.
func rangeEq(from, to []byte) []byte {
	return expr("range", attr(unix.NFTA_RANGE_SREG, be32(unix.NFT_REG_1)), attr(unix.NFTA_RANGE_OP, be32(unix.NFT_RANGE_EQ)),
		nested(unix.NFTA_RANGE_FROM_DATA, attr(unix.NFTA_DATA_VALUE, from)),
		nested(unix.NFTA_RANGE_TO_DATA, attr(unix.NFTA_DATA_VALUE, to)))
}

func verdict(code uint32) []byte {
	return expr("immediate", attr(unix.NFTA_IMMEDIATE_DREG, be32(unix.NFT_REG_VERDICT)),
		nested(unix.NFTA_IMMEDIATE_DATA, nested(unix.NFTA_DATA_VERDICT, attr(unix.NFTA_VERDICT_CODE, be32(code)))))
}

func reject(typ uint32, code uint8) []byte {
	return expr("reject", attr(unix.NFTA_REJECT_TYPE, be32(typ)), attr(unix.NFTA_REJECT_ICMP_CODE, []byte{code}))
}
