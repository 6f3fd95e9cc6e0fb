#!/usr/bin/python3
"""Regenerates libtorrent_seeder_greeting.bin: the exact bytes a libtorrent 2.0.8 seeder sends after our handshake
(its handshake, extension handshake, have_all, allowed_fast, unchoke) for a small v1 torrent. Run with Debian's
/usr/bin/python3; the peer id, ports and the torrent's info-hash vary between runs, the message shapes do not."""
import os
import socket
import sys
import tempfile
import time

import libtorrent as lt

root = tempfile.mkdtemp()
os.makedirs(os.path.join(root, "m"))
with open(os.path.join(root, "m", "x.bin"), "wb") as f:
    f.write(bytes(range(256)) * 800)
fs = lt.file_storage()
lt.add_files(fs, os.path.join(root, "m"))
ct = lt.create_torrent(fs, 32768, flags=lt.create_torrent.v1_only)
lt.set_piece_hashes(ct, root)
ti = lt.torrent_info(lt.bencode(ct.generate()))
ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                  "enable_upnp": False, "enable_natpmp": False, "enable_incoming_utp": False,
                  "enable_outgoing_utp": False})
h = ses.add_torrent({"ti": ti, "save_path": root})
deadline = time.time() + 30
while not h.status().is_seeding and time.time() < deadline:
    time.sleep(0.05)
ih = ti.info_hashes().v1.to_bytes()
s = socket.create_connection(("127.0.0.1", ses.listen_port()), timeout=5)
reserved = bytes([0, 0, 0, 0, 0, 0x10, 0, 0x04])
s.sendall(b"\x13BitTorrent protocol" + reserved + ih + b"-PH0001-capture00000")
ext = b"d1:md11:ut_metadatai2e6:ut_pexi1eee"
s.sendall(len(ext + b"\x14\x00").to_bytes(4, "big") + b"\x14\x00" + ext + b"\x00\x00\x00\x01\x0f" + b"\x00\x00\x00\x01\x02")  # have_none, interested
data = b""
end = time.time() + 2
s.settimeout(0.2)
while time.time() < end:
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        continue
    if not chunk:
        break
    data += chunk
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libtorrent_seeder_greeting.bin")
with open(out, "wb") as f:
    f.write(data)
print("%d bytes -> %s (%d pieces)" % (len(data), out, ti.num_pieces()))
