#!/usr/bin/env bash
# Writes the seed corpora in fuzz/seeds/<target>/: a few real inputs per fuzz target, taken
# from the SIPp scenarios (tests/sipp/*.xml), the unit tests in daemon/src and
# tests/data/phone-export.vcf, with SIPp's [fields] filled in and Content-Length computed.
# Re-run it after changing a sample here; the files are committed, ./dev fuzz copies them
# into a work corpus outside the clone and never writes to fuzz/seeds itself.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf seeds
mkdir -p seeds
exec python3 - <<'PY'
import os, struct

def put(target, name, data):
    d = os.path.join("seeds", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def sip(head, body=""):
    """A SIP message from LF-separated header lines, with CRLF line ends and the right
    Content-Length (unless the head sets one itself)."""
    body = body.replace("\n", "\r\n")
    lines = head.strip("\n").split("\n")
    if not any(l.lower().startswith(("content-length:", "l:")) for l in lines):
        lines.append(f"Content-Length: {len(body.encode())}")
    return "\r\n".join(lines) + "\r\n\r\n" + body

# ---- SDP -------------------------------------------------------------------------
BARESIP_OFFER = """v=0
o=- 1234 5678 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30000 RTP/AVP 96 9 0 8 101
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
a=label:1
m=video 30002 RTP/AVP 97
a=rtpmap:97 VP8/90000
"""
VOIPD_OFFER = """v=0
o=voipd 7 7 IN IP4 192.0.2.1
s=voipd
c=IN IP4 192.0.2.1
t=0 0
m=audio 40000 RTP/AVP 111 9 0 8 101
a=rtpmap:111 opus/48000/2
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:111 useinbandfec=1
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
"""
SIPP_ANSWER = """v=0
o=sipp 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""
HOLD_IPV6 = """v=0
o=alice 2890844526 2890844527 IN IP6 2001:db8::1
s=
c=IN IP6 2001:db8::1
t=0 0
m=audio 49170 RTP/AVP 8 101
c=IN IP6 2001:db8::2
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendonly
m=audio 0 RTP/SAVP 0
a=inactive
"""
OLD_HOLD_T38 = """v=0
o=pbx 10 11 IN IP4 10.0.0.5
s=session
c=IN IP4 0.0.0.0
t=0 0
m=audio 10000 RTP/AVP 18 0 101
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:101 telephone-event/8000
a=ptime:30
a=maxptime:150
m=image 10002 udptl t38
a=T38FaxVersion:0
"""
RFC4475_BODY = """v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.3
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC/90000
"""
crlf = lambda s: s.replace("\n", "\r\n")
put("sdp", "baresip-offer", crlf(BARESIP_OFFER))
put("sdp", "voipd-offer", crlf(VOIPD_OFFER))
put("sdp", "sipp-answer", crlf(SIPP_ANSWER))
put("sdp", "hold-ipv6-lf", HOLD_IPV6)
put("sdp", "old-hold-t38", crlf(OLD_HOLD_T38))
put("sdp", "rfc4475-body", crlf(RFC4475_BODY))

# ---- SIP messages ----------------------------------------------------------------
VIA = "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport"
put("sip_message", "invite-sdp", sip(f"""
INVITE sip:bob@biloxi.example.com SIP/2.0
{VIA}
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@192.0.2.10:5060;transport=udp>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"
Record-Route: <sip:proxy.atlanta.example.com;lr>
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, MESSAGE, SUBSCRIBE, NOTIFY
Supported: replaces, timer, 100rel
Session-Expires: 1800;refresher=uac
Content-Type: application/sdp
""", BARESIP_OFFER))
put("sip_message", "invite-compact-folded", sip(f"""
INVITE sip:bob@biloxi.example.com;transport=tcp SIP/2.0
v: SIP/2.0/TCP pc33.atlanta.example.com;branch=z9hG4bK7a8e2, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKe1
Max-Forwards: 70
t: Bob <sip:bob@biloxi.example.com>
f: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774
i: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 1 INVITE
m: <sip:alice@pc33.atlanta.example.com;transport=tcp>
Subject: lunch
 and more
c: application/sdp
k: timer
""", VOIPD_OFFER))
put("sip_message", "register-401", sip(f"""
SIP/2.0 401 Unauthorized
{VIA};received=198.51.100.7
From: <sip:alice@voipd.test>;tag=reg1
To: <sip:alice@voipd.test>;tag=4711SIPpReg1
Call-ID: reg-1@192.0.2.10
CSeq: 1 REGISTER
WWW-Authenticate: Digest realm="voipd.test", nonce="a1b2c3d4e5f60718293a4b5c6d7e8f90", qop="auth", algorithm=MD5
Server: SIPp-registrar
"""))
put("sip_message", "register-auth", sip(f"""
REGISTER sip:voipd.test SIP/2.0
{VIA}
Max-Forwards: 70
From: <sip:alice@voipd.test>;tag=reg1
To: <sip:alice@voipd.test>
Call-ID: reg-1@192.0.2.10
CSeq: 2 REGISTER
Contact: <sip:alice@192.0.2.10:5060>;expires=600
Authorization: Digest username="alice", realm="voipd.test", nonce="a1b2c3d4e5f60718293a4b5c6d7e8f90", uri="sip:voipd.test", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, qop=auth, nc=00000001, cnonce="0a4f113b"
Expires: 600
User-Agent: voipd
"""))
put("sip_message", "register-200", sip(f"""
SIP/2.0 200 OK
{VIA};received=198.51.100.7;rport=40123
From: <sip:alice@voipd.test>;tag=reg1
To: <sip:alice@voipd.test>;tag=4711SIPpReg1
Call-ID: reg-1@192.0.2.10
CSeq: 2 REGISTER
Contact: <sip:alice@192.0.2.10:5060>;expires=600
Expires: 600
Date: Sat, 13 Nov 2010 23:29:00 GMT
"""))
put("sip_message", "invite-407-proxy", sip(f"""
SIP/2.0 407 Proxy Authentication Required
{VIA}
From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774
To: Bob <sip:bob@biloxi.example.com>;tag=as5f2
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Proxy-Authenticate: Digest realm="far.test", nonce="b2c3d4e5f60718293a4b5c6d7e8f90a1", opaque="5ccc069c403ebaf9f0171e9517f40e41", qop="auth,auth-int", algorithm=SHA-256
Proxy-Authenticate: Digest realm="far.test", nonce="b2c3d4e5f60718293a4b5c6d7e8f90a1", qop="auth", algorithm=MD5
"""))
put("sip_message", "invite-200-sdp", sip(f"""
SIP/2.0 200 OK
{VIA}
Record-Route: <sip:proxy.atlanta.example.com;lr>
From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774
To: Bob <sip:bob@biloxi.example.com>;tag=4242SIPpOk1
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:ok@127.0.0.1:5070;transport=udp>
Content-Type: application/sdp
""", SIPP_ANSWER))
put("sip_message", "message-text", sip(f"""
MESSAGE sip:bob@biloxi.example.com SIP/2.0
{VIA}
Max-Forwards: 70
From: <sip:alice@atlanta.example.com>;tag=49583
To: <sip:bob@biloxi.example.com>
Call-ID: asd88asd77a@1.2.3.4
CSeq: 1 MESSAGE
Content-Type: text/plain;charset=UTF-8
""", "Watson, come here. ✓"))
put("sip_message", "notify-pidf", sip(f"""
NOTIFY sip:alice@192.0.2.10:5060 SIP/2.0
Via: SIP/2.0/TCP 127.0.0.1:5072;branch=z9hG4bK-notify1
From: <sip:dave@127.0.0.1:5072>;tag=99SIPpPA1
To: <sip:alice@voipd.test>;tag=w1
Call-ID: sub-1@192.0.2.10
CSeq: 1 NOTIFY
Contact: <sip:dave@127.0.0.1:5072>
Max-Forwards: 70
Event: presence
Subscription-State: active;expires=10
Content-Type: application/pidf+xml
""", """<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:dave@127.0.0.1">
  <tuple id="phone"><status><basic>open</basic></status></tuple>
  <dm:person id="dave"><rpid:activities><rpid:away/></rpid:activities><dm:note>in a meeting until 3</dm:note></dm:person>
</presence>
"""))
put("sip_message", "bye-ipv6-tel", sip("""
BYE tel:+1-555-0100;phone-context=example.com SIP/2.0
Via: SIP/2.0/UDP [2001:db8::9]:5061;branch=z9hG4bKx;received=10.0.0.1
From: <sips:alice@[2001:db8::1]:5061>;tag=1
To: <sip:bob:secret@example.com;user=phone?subject=x>;tag=2
Call-ID: c1@2001:db8::1
CSeq: 7 BYE
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>
"""))
put("sip_message", "options-keepalive-lf", "\r\n\r\n" + sip("""
OPTIONS sip:voipd.test SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1
From: <sip:a@example.com>;tag=1
To: <sip:b@example.com>
Call-ID: c1@192.0.2.1
CSeq: 1 OPTIONS
Accept: application/sdp
""").replace("\r\n", "\n"))

# ---- digest challenges (header values) --------------------------------------------
for name, v in [
    ("sipp-md5-qop", 'Digest realm="voipd.test", nonce="a1b2c3d4e5f60718293a4b5c6d7e8f90", qop="auth", algorithm=MD5'),
    ("sipp-stale", 'Digest realm="voipd.test", nonce="BBBBBBBBnonceB1111111111111111bb", qop="auth", algorithm=MD5, stale=true'),
    ("rfc7616-sha256", 'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'),
    ("rfc2617-no-qop", 'Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'),
    ("md5-sess-unquoted", 'digest realm=asterisk,nonce=1a2b3c4d,algorithm=md5-sess,qop=auth'),
    ("sha256-sess-escaped", 'Digest realm="a \\"quoted\\" realm, with comma", nonce="n\\\\1", algorithm=SHA-256-sess, domain="sip:ss1.carrier.com"'),
    ("auth-int-only", 'Digest realm="r", nonce="n", qop="auth-int"'),
]:
    put("digest", name, v)

# ---- vCard -----------------------------------------------------------------------
put("vcard", "phone-export.vcf", open("../tests/data/phone-export.vcf", "rb").read())
put("vcard", "voipd-export-4.0.vcf", crlf("""BEGIN:VCARD
VERSION:4.0
UID:urn:uuid:1
FN:Ålice Liddell
N:Liddell;Ålice;;;
IMPP;PREF=1:sip:alice@example.com
TEL;VALUE=uri;PREF=2:tel:+441865270000
CATEGORIES:Favourites
NOTE:a\\, b\\; c\\\\d\\nsecond line that is long enough to be folded somewhere p
 ast seventy-five octets ✓✓✓
END:VCARD
"""))
put("vcard", "apple-3.0-bom.vcf", "\ufeff" + crlf("""BEGIN:VCARD
VERSION:3.0
N:Liddell;Alice;;Ms.;
FN:Alice Liddell
item1.TEL;TYPE=CELL:+44 1865 270000
item1.X-ABLabel:mobile
IMPP;X-SERVICE-TYPE=xmpp:xmpp:alice@example.org
X-SIP:alice@example.com
NOTE:Lives down the rabbit hole\\, mostly.\\nCall after 10.
CATEGORIES:friends,starred
END:VCARD
"""))
put("vcard", "outlook-2.1-qp.vcf", """BEGIN:VCARD
VERSION:2.1
N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BCrgen
TEL;WORK;VOICE:030 1234-567
TEL;CELL;PREF:0170 7654321
NOTE;CHARSET=WINDOWS-1252;ENCODING=QUOTED-PRINTABLE:=80 5 =96 cheap
X-VOIPD-FAVOURITE:TRUE
END:VCARD
BEGIN:VCARD
VERSION:3.0
ORG:Pizza Roma;Delivery
TEL:*21#
TEL;VALUE=uri:tel:%2B49-30-1234;ext=5
END:VCARD
""")

# ---- PIDF ------------------------------------------------------------------------
PIDF = "urn:ietf:params:xml:ns:pidf"
put("pidf", "voipd-away", f'<?xml version="1.0" encoding="UTF-8"?>\r\n<presence xmlns="{PIDF}" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:me@example.com"><tuple id="t1"><status><basic>open</basic></status></tuple><dm:person id="p1"><rpid:activities><rpid:away/></rpid:activities><dm:note>at &lt;home&gt; &amp; &quot;happy&quot;</dm:note></dm:person></presence>\r\n')
put("pidf", "voipd-offline", f'<?xml version="1.0" encoding="UTF-8"?>\r\n<presence xmlns="{PIDF}" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:me@example.com"><tuple id="t1"><status><basic>closed</basic></status></tuple></presence>\r\n')
put("pidf", "sipp-pa-meeting", f"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="{PIDF}" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:dave@127.0.0.1">
  <tuple id="phone"><status><basic>open</basic></status></tuple>
  <dm:person id="dave"><rpid:activities><rpid:away/></rpid:activities><dm:note>in a meeting until 3</dm:note></dm:person>
</presence>
""")
put("pidf", "plain-note-busy", f'<?xml version="1.0"?><presence xmlns="{PIDF}" entity="pres:a@b"><tuple id="x"><status><basic>open</basic></status><note>Busy</note></tuple></presence>')
put("pidf", "baresip-unknown", f'<presence xmlns="{PIDF}" entity="sip:b@x"><tuple id="t"><status><basic>?</basic></status></tuple></presence>')
put("pidf", "asterisk-busy", f'<presence xmlns="{PIDF}" xmlns:pp="urn:ietf:params:xml:ns:pidf:person" xmlns:es="urn:ietf:params:xml:ns:pidf:rpid:status:rpid-status" xmlns:ep="urn:ietf:params:xml:ns:pidf:rpid:rpid-person" entity="sip:100@pbx"><pp:person><status><ep:activities><ep:busy/></ep:activities></status></pp:person><tuple id="100"><status><basic>open</basic></status></tuple></presence>')

# ---- RTP -------------------------------------------------------------------------
def rtp(pt, seq, ts, ssrc, payload, marker=False, csrcs=(), ext=None, pad=0):
    b0 = 0x80 | (0x20 if pad else 0) | (0x10 if ext is not None else 0) | len(csrcs)
    out = struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq, ts, ssrc)
    for c in csrcs:
        out += struct.pack("!I", c)
    if ext is not None:
        profile, words = ext
        out += struct.pack("!HH", profile, len(words)) + b"".join(struct.pack("!I", w) for w in words)
    out += payload
    if pad:
        out += b"\0" * (pad - 1) + bytes([pad])
    return out

put("rtp", "pcmu-160", rtp(0, 1000, 160000, 0x1234ABCD, b"\xff" * 160, marker=True))
put("rtp", "pcma-seq-wrap", rtp(8, 65535, 0xFFFFFF60, 0xDEADBEEF, b"\xd5" * 160))
put("rtp", "opus-short", rtp(111, 7, 960, 42, b"\x78\x01\x02\x03"))
put("rtp", "dtmf-4733-end", rtp(101, 1234, 8000, 42, bytes([5, 0x80 | 10, 0x03, 0x20]), marker=True))
put("rtp", "csrc-ext-pad", rtp(9, 2, 320, 7, b"\x00" * 20, csrcs=(1, 2), ext=(0xBEDE, [0x10AA0000]), pad=4))
put("rtp", "g722-stream-3", b"".join(rtp(9, 100 + i, 160 * i, 99, b"\x10" * 4) for i in (0, 1, 3)))

# ---- RTCP ------------------------------------------------------------------------
def block(ssrc, fraction, lost, highest, jitter):
    return struct.pack("!IIIIII", ssrc, (fraction << 24) | (lost & 0xFFFFFF), highest, jitter, 0, 0)

def sr(ssrc, blocks, ntp=0xE000000080000000, ts=160, packets=50, octets=8000):
    body = struct.pack("!IQIII", ssrc, ntp, ts, packets, octets) + b"".join(blocks)
    return struct.pack("!BBH", 0x80 | len(blocks), 200, len(body) // 4) + body

def rr(ssrc, blocks):
    body = struct.pack("!I", ssrc) + b"".join(blocks)
    return struct.pack("!BBH", 0x80 | len(blocks), 201, len(body) // 4) + body

def sdes(ssrc, cname):
    name = cname.encode()
    chunk = struct.pack("!IBB", ssrc, 1, len(name)) + name + b"\0"
    chunk += b"\0" * (-len(chunk) % 4)
    return struct.pack("!BBH", 0x81, 202, len(chunk) // 4) + chunk

def bye(ssrc):
    return struct.pack("!BBHI", 0x81, 203, 1, ssrc)

OURS = 0x1234ABCD
put("rtcp", "sr-sdes", sr(0xDEADBEEF, [block(OURS, 64, 3, 70000, 33)]) + sdes(0xDEADBEEF, "baresip@127.0.0.1"))
put("rtcp", "rr-sdes", rr(0xDEADBEEF, [block(OURS, 0, -2, 0x1_0000, 0)]) + sdes(0xDEADBEEF, "peer"))
put("rtcp", "sr-two-blocks-bye", sr(5, [block(6, 1, 1, 2, 3), block(OURS, 255, 0x7FFFFF, 0xFFFFFFFF, 1 << 31)]) + sdes(5, "x") + bye(5))
put("rtcp", "rr-empty-sdes", rr(9, []) + sdes(9, "voipd@192.0.2.1"))
put("rtcp", "sr-no-blocks", sr(OURS, []))

# ---- STUN: Binding answers as a server writes them ------------------------------
import zlib

def stun_msg(mtype, tid, attrs, fingerprint=True):
    body = b"".join(struct.pack("!HH", t, len(v)) + v + b"\0" * (-len(v) % 4) for t, v in attrs)
    head = lambda extra: struct.pack("!HHI", mtype, len(body) + extra, 0x2112A442) + tid
    if not fingerprint:
        return head(0) + body
    msg = head(8) + body
    crc = (zlib.crc32(msg) ^ 0x5354554E) & 0xFFFFFFFF
    return msg + struct.pack("!HHI", 0x8028, 4, crc)

def xor_addr(ip, port, tid):
    a = bytes(int(x) for x in ip.split("."))
    x = bytes(b ^ c for b, c in zip(a, struct.pack("!I", 0x2112A442)))
    return struct.pack("!BBH", 0, 1, port ^ 0x2112) + x

TID = bytes(range(1, 13))
put("stun", "success-xor", stun_msg(0x0101, TID, [(0x0020, xor_addr("203.0.113.10", 20000, TID))]))
put("stun", "success-software", stun_msg(0x0101, TID, [(0x8022, b"Coturn-4.6.1"), (0x0020, xor_addr("192.0.2.1", 3478, TID))]))
put("stun", "error-420", stun_msg(0x0111, TID, [(0x0009, struct.pack("!HBB", 0, 4, 20) + b"Unknown Attribute")]))
put("stun", "request", stun_msg(0x0001, TID, []))
put("stun", "no-fingerprint", stun_msg(0x0101, TID, [(0x0020, xor_addr("10.0.0.1", 1, TID))], fingerprint=False))

# ---- ICE: the far side's SDP (as baresip's ice module writes it), NUL, datagrams --
ICE_SDP = """v=0
o=- 1 2 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
a=ice-ufrag:Xy3b
a=ice-pwd:3mPq0aKcVZ2xW8sLrT6yBf
m=audio 40000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=rtcp:40001
a=candidate:1 1 UDP 2113932031 127.0.0.1 40000 typ host
a=candidate:1 2 UDP 2113932030 127.0.0.1 40001 typ host
a=candidate:2 1 UDP 1677722111 198.51.100.7 23913 typ srflx raddr 192.168.2.2 rport 40000
a=candidate:3 1 UDP 16777215 203.0.113.1 40929 typ relay raddr 203.0.113.11 rport 23913
a=end-of-candidates
""".replace("\n", "\r\n")

def dgrams(*items):
    return b"".join(bytes([flags, len(d)]) + d for flags, d in items)

check = stun_msg(0x0001, TID, [
    (0x0006, b"abcd:Xy3b"),                     # USERNAME ours:theirs
    (0x0024, struct.pack("!I", 1853824767)),    # PRIORITY
    (0x802A, struct.pack("!Q", 42)),            # ICE-CONTROLLING
    (0x0025, b""),                              # USE-CANDIDATE
    (0x0008, bytes(20)),                        # MESSAGE-INTEGRITY (wrong key)
])
answer = stun_msg(0x0101, TID, [(0x0020, xor_addr("127.0.0.1", 40000, TID)), (0x0008, bytes(20))])
data_ind = stun_msg(0x0017, TID, [(0x0012, xor_addr("127.0.0.1", 40000, TID)), (0x0013, check)])
allocate_401 = stun_msg(0x0113, TID, [(0x0009, struct.pack("!HBB", 0, 4, 1) + b"Unauthorized"),
                                      (0x0014, b"voipd.test"), (0x0015, b"abcdef0123456789")])
rtp_pkt = rtp(0, 1, 160, 7, b"\xff" * 20)
put("ice", "check-answer-rtp", ICE_SDP.encode() + b"\0" + dgrams((0, check), (8, answer), (0, rtp_pkt)))
put("ice", "turn-data-rtcp", ICE_SDP.encode() + b"\0" + dgrams((2, allocate_401), (3, data_ind), (1 | 16, check)))
put("ice", "lite-no-datagrams", ICE_SDP.replace("a=end-of-candidates", "a=ice-lite").encode())

def vpkts(*items):
    """Video packets: (sequence step, timestamp step, marker, payload) records."""
    return b"".join(bytes([dseq, dts, m, len(p)]) + p for dseq, dts, m, p in items)

# VP8 as baresip sends it: X, I with a 15-bit picture ID, S on each partition's start.
vp8_key = bytes([0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00])
put("video_payload", "vp8-frame-two-packets", vpkts(
    (1, 1, 0, bytes([0x90, 0x80, 0x81, 0x23, 0x50, 0x02, 0x00]) + vp8_key),
    (1, 0, 1, bytes([0x80, 0x80, 0x81, 0x23]) + b"\x11" * 40)))
put("video_payload", "vp8-gap-then-partition", vpkts(
    (1, 1, 0, bytes([0x90, 0x80, 0x81, 0x24, 0x51]) + b"\x22" * 30),
    (2, 0, 1, bytes([0x91, 0x80, 0x81, 0x24]) + b"\x33" * 30)))
# H.264: SPS and PPS in a STAP-A, then an IDR in two FU-A fragments.
sps, pps = bytes([0x67, 0x42, 0xe0, 0x1f, 0x8c]), bytes([0x68, 0xce, 0x3c, 0x80])
stap = bytes([0x78]) + len(sps).to_bytes(2, "big") + sps + len(pps).to_bytes(2, "big") + pps
put("video_payload", "h264-stap-fua", vpkts(
    (1, 1, 0, stap),
    (1, 0, 0, bytes([0x7c, 0x85]) + b"\x44" * 60),
    (1, 0, 1, bytes([0x7c, 0x45]) + b"\x55" * 60)))
put("video_payload", "h264-annexb-unit", b"\x00\x00\x00\x01" + sps + b"\x00\x00\x01" + pps)
PY
