#!/usr/bin/python3
"""bt-wire against a real libtorrent-rasterbar seeder on 127.0.0.1.

Generates a multi-file torrent, seeds it with libtorrent (Debian's python3-libtorrent), then checks that bt-wire:
fetches the metadata over BEP 9 and saves a .torrent with the right info-hash (from a bare info-hash and from a
magnet link), fetches blocks byte-identical to the files (one crossing a file boundary, one in the short last
piece), prints parseable --json lines, and fails cleanly for an info-hash the seeder does not have.
Every wait is bounded; any failure exits non-zero (never a silent skip).
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import libtorrent as lt

BIN_DIR = os.environ.get("PLAYHEAD_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))
BT_WIRE = os.path.join(BIN_DIR, "bt-wire")
PIECE_LENGTH = 32 * 1024
FILES = [("a.bin", 100_000), ("sub/b.bin", 70_001), ("c.bin", 5_000)]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def make_content(root):
    rnd = random.Random(1234)
    data = b""
    for rel, size in FILES:
        path = os.path.join(root, "multi", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        blob = bytes(rnd.getrandbits(8) for _ in range(size))
        with open(path, "wb") as f:
            f.write(blob)
        data += blob
    return data


def make_torrent(root):
    fs = lt.file_storage()
    lt.add_files(fs, os.path.join(root, "multi"))
    # v1 only: libtorrent 2.0 makes hybrid v1+v2 torrents by default, and Playhead speaks v1.
    ct = lt.create_torrent(fs, PIECE_LENGTH, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, root)
    path = os.path.join(root, "multi.torrent")
    with open(path, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    return path


def start_seeder(root, torrent_path):
    settings = {
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "min_reconnect_time": 1,
        "alert_mask": 0,
    }
    ses = lt.session(settings)
    ti = lt.torrent_info(torrent_path)
    h = ses.add_torrent({"ti": ti, "save_path": root})
    deadline = time.time() + 60
    while time.time() < deadline:
        st = h.status()
        if st.is_seeding:
            break
        time.sleep(0.1)
    else:
        fail("libtorrent seeder did not reach seeding state within 60 s")
    port = ses.listen_port()
    if not port:
        fail("libtorrent seeder has no listen port")
    return ses, h, ti, port


def run_wire(args, timeout=60):
    cmd = [BT_WIRE] + args
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        fail("bt-wire did not finish within %d s: %s" % (timeout, " ".join(cmd)))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def json_lines(out):
    objs = []
    for line in out.splitlines():
        if not line.strip():
            continue
        try:
            objs.append(json.loads(line))
        except ValueError:
            fail("bt-wire --json printed a line that is not JSON: %r" % line[:200])
    return objs


def info_hash_of(torrent_file):
    # info_hash() is the "best" hash (v2 truncated for hybrids); ask for the v1 SHA-1 explicitly.
    return str(lt.torrent_info(torrent_file).info_hashes().v1)


def main():
    if not os.access(BT_WIRE, os.X_OK):
        fail("bt-wire not built at " + BT_WIRE)
    root = tempfile.mkdtemp(prefix="bt_wire_test_")
    try:
        make_content(root)
        torrent_path = make_torrent(root)
        ses, handle, ti, port = start_seeder(root, torrent_path)
        ih = str(ti.info_hashes().v1)
        # The torrent's own file order (and any pad files) defines the byte stream, not our FILES list.
        fst = ti.files()
        data = b""
        for i in range(fst.num_files()):
            if fst.file_flags(i) & lt.file_storage.flag_pad_file:
                data += b"\0" * fst.file_size(i)
            else:
                with open(os.path.join(root, fst.file_path(i)), "rb") as f:
                    data += f.read()
        if len(data) != ti.total_size():
            fail("content size %d differs from torrent total %d" % (len(data), ti.total_size()))
        print("files in torrent order: %s" % [fst.file_path(i) for i in range(fst.num_files())])
        peer = "127.0.0.1:%d" % port
        print("seeder on %s, info-hash %s, %d pieces" % (peer, ih, ti.num_pieces()))

        # 1. --metadata from the bare info-hash, saved as a .torrent with the same info-hash.
        out_torrent = os.path.join(root, "fetched.torrent")
        rc, out, err = run_wire(["--metadata", "-o", out_torrent, "--json", peer, ih])
        if rc != 0:
            fail("bt-wire --metadata exited %d\nstdout:\n%s\nstderr:\n%s" % (rc, out, err))
        objs = json_lines(out)
        if info_hash_of(out_torrent) != ih:
            fail("saved .torrent has info-hash %s, expected %s" % (info_hash_of(out_torrent), ih))
        kinds = [(o.get("dir"), o.get("type")) for o in objs]
        for want in [("out", "handshake"), ("in", "handshake"), ("in", "extended"), ("local", "metadata_ok")]:
            if want not in kinds:
                fail("--json output lacks %s: %s" % (want, kinds))
        ext = [o for o in objs if o.get("type") == "extended" and o.get("dir") == "in" and o.get("extended_id") == 0]
        if not ext or "ut_metadata" not in ext[0].get("dict", {}).get("m", {}):
            fail("extension handshake dict missing or without ut_metadata: %s" % ext)
        hs = [o for o in objs if o.get("type") == "handshake" and o.get("dir") == "in"][0]
        if not (hs["extension_protocol"] and hs["fast"]) or hs["info_hash"] != ih:
            fail("unexpected remote handshake: %s" % hs)
        ok = [o for o in objs if o.get("type") == "metadata_ok"][0]
        if ok.get("pieces") != ti.num_pieces() or ok.get("files") != len(FILES):
            fail("metadata_ok reports %s" % ok)
        print("ok: --metadata, saved .torrent info-hash matches")

        # 2. --request with the .torrent: a block crossing the boundary between the first and second file.
        def check_block(target, piece, offset, length, extra=()):
            block_file = os.path.join(root, "block-%d-%d.bin" % (piece, offset))
            rc, out, err = run_wire(list(extra) + ["--json", "--request", "%d:%d:%d" % (piece, offset, length),
                                                   "--block-out", block_file, peer, target])
            if rc != 0:
                fail("bt-wire --request %d:%d:%d exited %d\nstdout:\n%s\nstderr:\n%s" %
                     (piece, offset, length, rc, out, err))
            with open(block_file, "rb") as f:
                got = f.read()
            start = piece * PIECE_LENGTH + offset
            if got != data[start:start + length]:
                fail("block %d:%d:%d differs from the file content" % (piece, offset, length))
            objs = json_lines(out)
            pieces = [o for o in objs if o.get("type") == "piece" and o.get("dir") == "in"]
            if not pieces or bytes.fromhex(pieces[0]["data_hex"]) != got:
                fail("--json piece line lacks the block's data_hex")
            if ("out", "interested") not in [(o.get("dir"), o.get("type")) for o in objs]:
                fail("bt-wire did not send interested before requesting")
            return objs

        first_end = fst.file_size(0)
        boundary_piece = first_end // PIECE_LENGTH
        check_block(torrent_path, boundary_piece, first_end % PIECE_LENGTH - 1000, 16384)
        total = ti.total_size()
        last = ti.num_pieces() - 1
        last_len = total - last * PIECE_LENGTH
        check_block(torrent_path, last, 0, min(16384, last_len))
        print("ok: --request blocks byte-identical (file boundary, last piece)")

        # 3. A magnet link with x.pe: metadata first, then a block validated against the fetched metadata.
        magnet = "magnet:?xt=urn:btih:%s&dn=multi&x.pe=%s" % (ih, peer)
        objs = check_block(magnet, 1, 16384, 16384, extra=["--metadata"])
        if "metadata_ok" not in [o.get("type") for o in objs]:
            fail("magnet run did not report metadata_ok")
        print("ok: magnet link -> metadata -> block")

        # 4. Human-readable output names the messages.
        rc, out, err = run_wire(["--watch", "1", peer, torrent_path])
        if rc != 0 or "handshake" not in out or "extended id=0 (handshake)" not in out or "<-" not in out:
            fail("plain trace unexpected (rc %d):\n%s\n%s" % (rc, out, err))
        if "have_all" not in out and "bitfield" not in out:
            fail("trace shows neither have_all nor bitfield from a seeder:\n" + out)
        print("ok: human-readable trace")

        # 5. An info-hash the seeder does not serve: clean failure, no hang.
        rc, out, err = run_wire(["--timeout", "10", "--metadata", peer, "00" * 20], timeout=30)
        if rc == 0:
            fail("bt-wire succeeded for an unknown info-hash")
        if "closed" not in out and "error" not in out:
            fail("no reason printed for the unknown info-hash:\n" + out)
        print("ok: unknown info-hash fails cleanly")

        # 6. Bad usage exits 2 with a message.
        rc, out, err = run_wire(["--request", "x", peer, ih])
        if rc != 2 or "PIECE:OFFSET:LENGTH" not in err:
            fail("bad --request not reported (rc %d): %s" % (rc, err))
        rc, out, err = run_wire(["--help"])
        if rc != 0 or "allowed_fast" not in out or "ut_metadata" not in out:
            fail("--help does not explain the messages")
        print("ok: usage errors and --help")
        del ses
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
