#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/: a few valid and near-valid inputs per parser, so the
fuzzers start from real structure. Rerun after changing it; the files are checked in."""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def benc(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(benc(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(benc(k) + benc(x) for k, x in items) + b"e"
    raise TypeError(v)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


info_single = {"name": "movie.mp4", "piece length": 16384, "length": 40000, "pieces": b"\x11" * 60}
info_multi = {"name": "show", "piece length": 32768, "pieces": b"\x22" * 40,
              "files": [{"length": 30000, "path": ["a", "ep1.mkv"]}, {"length": 5000, "path": ["sub.srt"]},
                        {"length": 100, "path": [".pad", "100"], "attr": "p"}]}
torrent1 = benc({"announce": "http://127.0.0.1:6969/announce", "info": info_single})
torrent2 = benc({"announce-list": [["udp://t:1/a"], ["http://x/a"]], "info": info_multi, "url-list": ["http://w/"]})

for i, v in enumerate([torrent1, b"i-42e", b"le", b"d1:ad1:bl1:ci0eeee", b"4:spam", b"0:", b"li1ei2e3:abce"]):
    write("fuzz_bencode", "seed%d" % i, v)

write("fuzz_metainfo", "single", torrent1)
write("fuzz_metainfo", "multi", torrent2)
write("fuzz_metainfo", "info", benc(info_single))
write("fuzz_metainfo", "private", benc({"info": dict(info_single, private=1)}))

ih = hashlib.sha1(benc(info_single)).hexdigest()
write("fuzz_magnet", "plain", "magnet:?xt=urn:btih:%s&dn=movie.mp4&tr=http%%3A%%2F%%2F127.0.0.1%%3A6969%%2Fa" % ih)
write("fuzz_magnet", "b32", "magnet:?xt=urn:btih:CIRSEISEEIREEIREEIREEIREEIREEIRE&x.pe=127.0.0.1:6881&so=0,2-4")
write("fuzz_magnet", "btmh", "magnet:?xt=urn:btmh:1220" + "ab" * 32 + "&xt=urn:btih:" + ih)


def msg(mid, payload=b""):
    return struct.pack(">IB", 1 + len(payload), mid) + payload


handshake = b"\x13BitTorrent protocol" + b"\x00\x00\x00\x00\x00\x10\x00\x05" + b"\xaa" * 20 + b"-PH0001-123456789012"
stream = (handshake + b"\x00\x00\x00\x00" + msg(0) + msg(1) + msg(2) + msg(3) + msg(4, struct.pack(">I", 3)) +
          msg(5, b"\xff\xe0") + msg(6, struct.pack(">III", 1, 0, 16384)) +
          msg(7, struct.pack(">II", 0, 0) + b"x" * 100) + msg(8, struct.pack(">III", 1, 0, 16384)) +
          msg(9, struct.pack(">H", 6881)) + msg(13, struct.pack(">I", 2)) + msg(14) + msg(15) +
          msg(16, struct.pack(">III", 1, 0, 16384)) + msg(17, struct.pack(">I", 4)) +
          msg(20, b"\x00" + benc({"m": {"ut_metadata": 3, "ut_pex": 1}, "v": "x"})))
write("fuzz_peer_stream", "handshake_all", struct.pack("<H", 11) + b"\x01\x07" + stream)
write("fuzz_peer_stream", "no_handshake", struct.pack("<H", 0) + b"\x00\x03" + stream[68:])
write("fuzz_peer_stream", "huge_prefix", struct.pack("<H", 8) + b"\x00\x01" + struct.pack(">I", 2 ** 31) + b"\x07")

write("fuzz_extension", "handshake", b"\x00" + benc({"m": {"ut_metadata": 3, "ut_pex": 1, "lt_donthave": 7},
                                                      "metadata_size": 31235, "v": "Playhead 0.1", "reqq": 250,
                                                      "p": 6881, "yourip": b"\x7f\x00\x00\x01"}))
write("fuzz_extension", "md_request", b"\x01" + benc({"msg_type": 0, "piece": 0}))
write("fuzz_extension", "md_data", b"\x01" + benc({"msg_type": 1, "piece": 0, "total_size": 20}) + b"0123456789abcdefghij")
write("fuzz_extension", "md_huge", b"\x01" + benc({"msg_type": 1, "piece": 0, "total_size": 2 ** 40}) + b"x" * 16)
write("fuzz_extension", "md_reject", b"\x01" + benc({"msg_type": 2, "piece": 1}))
write("fuzz_extension", "pex", b"\x02" + benc({"added": b"\x7f\x00\x00\x01\x1a\xe1" * 3, "added.f": b"\x01\x02\x00",
                                                "dropped": b"\x0a\x00\x00\x01\x00\x50",
                                                "added6": b"\x00" * 15 + b"\x01\x1a\xe1", "added6.f": b"\x00"}))
write("fuzz_extension", "donthave", b"\x03" + struct.pack(">I", 5))

tid = b"aa"
nodeid = b"\x01" * 20
for name, m in {
    "ping": {"t": tid, "y": "q", "q": "ping", "a": {"id": nodeid}},
    "find_node": {"t": tid, "y": "q", "q": "find_node", "a": {"id": nodeid, "target": b"\x02" * 20, "want": ["n4", "n6"]}},
    "get_peers": {"t": tid, "y": "q", "q": "get_peers", "a": {"id": nodeid, "info_hash": b"\x03" * 20}},
    "announce": {"t": tid, "y": "q", "q": "announce_peer", "a": {"id": nodeid, "info_hash": b"\x03" * 20, "port": 6881,
                                                                  "token": b"12345678", "implied_port": 1}},
    "resp_nodes": {"t": tid, "y": "r", "r": {"id": nodeid, "nodes": (b"\x04" * 20 + b"\x7f\x00\x00\x01\x1a\xe1") * 2}},
    "resp_values": {"t": tid, "y": "r", "r": {"id": nodeid, "token": b"tok", "values": [b"\x7f\x00\x00\x01\x1a\xe1"]}},
    "error": {"t": tid, "y": "e", "e": [201, "A Generic Error Ocurred"]},
    "ro": {"t": tid, "y": "q", "q": "ping", "ro": 1, "a": {"id": nodeid}},
}.items():
    write("fuzz_krpc", name, benc(m))

write("fuzz_tracker_http", "compact", benc({"interval": 1800, "complete": 3, "incomplete": 4,
                                            "peers": b"\x7f\x00\x00\x01\x1a\xe1" * 2,
                                            "peers6": b"\x00" * 15 + b"\x01\x1a\xe1"}))
write("fuzz_tracker_http", "dict_peers", benc({"interval": 60, "min interval": 30, "tracker id": "x",
                                               "peers": [{"ip": "127.0.0.1", "port": 6881, "peer id": b"p" * 20}]}))
write("fuzz_tracker_http", "failure", benc({"failure reason": "nope", "retry in": 60}))
write("fuzz_tracker_http", "scrape", benc({"files": {b"\x03" * 20: {"complete": 1, "downloaded": 2, "incomplete": 3}}}))
write("fuzz_tracker_http", "url", "http://tracker.example:6969/announce?passkey=abc")

write("fuzz_udp_tracker", "connect_reply", struct.pack(">IIQ", 0, 7, 0x1122334455667788))
write("fuzz_udp_tracker", "announce_reply", struct.pack(">IIIII", 1, 7, 1800, 2, 3) + b"\x7f\x00\x00\x01\x1a\xe1" * 2)
write("fuzz_udp_tracker", "scrape_reply", struct.pack(">II", 2, 7) + struct.pack(">III", 1, 2, 3) * 3)
write("fuzz_udp_tracker", "error_reply", struct.pack(">II", 3, 7) + b"unknown torrent\x00")
write("fuzz_udp_tracker", "connect_req", struct.pack(">QII", 0x41727101980, 0, 7))
write("fuzz_udp_tracker", "announce_req", struct.pack(">QII", 1, 1, 7) + b"\x03" * 20 + b"p" * 20 +
      struct.pack(">QQQIIIiH", 0, 100, 0, 2, 0, 0, -1, 6881))
write("fuzz_udp_tracker", "scrape_req", struct.pack(">QII", 1, 2, 7) + b"\x03" * 40)

for i, r in enumerate(["bytes=0-99", "bytes=100-", "bytes=-500", "bytes=0-0,1-5,3-9", "bytes=5-2", "items=0-1",
                       "bytes= 0 - 99 ", "bytes=99999999999999999999-", "\"abc\"", "bytes=0-1,,2-3"]):
    write("fuzz_range", "seed%d" % i, struct.pack("<Q", 10000 if i % 2 else 1000001) + r.encode())

reqs = {
    "get": "GET /stream/%s/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=0-\r\n\r\n" % ih,
    "api": "GET /api/torrents?x=1 HTTP/1.1\r\nAuthorization: Bearer t\r\n\r\n",
    "post": "POST /api/torrents HTTP/1.1\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
    "chunked": "POST /api/torrents HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "smuggle": "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "pipelined": "GET / HTTP/1.1\r\n\r\nHEAD /metrics HTTP/1.1\r\n\r\nDELETE /api/torrents/ab HTTP/1.1\r\n\r\n",
    "traversal": "GET /static/..%2f..%2fetc/passwd HTTP/1.1\r\n\r\nGET /stream/../../x HTTP/1.0\r\n\r\n",
    "unknown": "BREW /pot HTTP/1.1\r\n\r\n",
    "http10": "GET /api/torrents/abc/play HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
}
for name, r in reqs.items():
    write("fuzz_http_request", name, r)

write("fuzz_env", "full", "# playhead\nTORRENT_STORAGE_MODE=disk\nexport TORRENT_MEMORY_LIMIT=256MiB\n"
      "API_TOKEN='se cret' # note\nTORRENT_DHT_BOOTSTRAP=\"a:1,b:2\\n\"\nHTTP_PORT=8080\n")
write("fuzz_env", "bad", "NO_EQUALS\n=x\nA=\"unterminated\n")
write("fuzz_env", "sizes", "TORRENT_READAHEAD=64k\nTORRENT_MEMORY_LIMIT=1GB\nTORRENT_PAUSE_ON_VIDEO_PAUSE=off\n")
