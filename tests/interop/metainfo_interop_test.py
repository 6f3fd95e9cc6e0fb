#!/usr/bin/python3
"""Metainfo interop with real third-party tools (run by CTest with Debian's /usr/bin/python3).

- Torrents made by mktorrent and by python3-libtorrent (single and multi-file, with a BEP 47 pad file) give the same
  info-hash, files and piece hashes in `bt-inspect --json --pieces` as libtorrent computes.
- A torrent made by `bt-create` is accepted by libtorrent with the same info-hash and piece hashes, and libtorrent,
  checking the real data against it, finds every piece valid (it becomes a seed).
- A libtorrent hybrid (v1+v2) torrent gets our clear BEP 52 error.
Nothing is skipped: a missing tool is a failure. Everything runs in a temporary folder; no network at all.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import libtorrent as lt

BIN = os.environ.get("PLAYHEAD_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))
INSPECT = os.path.join(BIN, "bt-inspect")
CREATE = os.path.join(BIN, "bt-create")
MKTORRENT = shutil.which("mktorrent") or "/usr/bin/mktorrent"
TIMEOUT = 60


def run(args, cwd=None):
    return subprocess.run(args, cwd=cwd, capture_output=True, timeout=TIMEOUT)


def inspect(path):
    r = run([INSPECT, "--json", "--pieces", path])
    if r.returncode != 0:
        raise AssertionError("bt-inspect %s failed: %s" % (path, r.stderr.decode(errors="replace")))
    return json.loads(r.stdout)


def lt_view(path):
    """What libtorrent sees in a .torrent: v1 info-hash, files (path, size, pad) and piece hashes."""
    ti = lt.torrent_info(path)
    fs = ti.files()
    files = []
    for i in range(fs.num_files()):
        files.append((fs.file_path(i).replace(os.sep, "/"), fs.file_size(i),
                      bool(fs.file_flags(i) & lt.file_storage.flag_pad_file)))
    pieces = [ti.hash_for_piece(i).hex() for i in range(ti.num_pieces())]
    return str(ti.info_hashes().v1), files, pieces, ti.total_size(), ti.piece_length()


def ours_view(j):
    files = [(f["path"], f["length"], f["pad"]) for f in j["files"]]
    return j["infoHash"], files, j["pieces"], j["totalLength"], j["pieceLength"]


def write_random(path, size, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = random.Random(seed)
    with open(path, "wb") as f:
        f.write(bytes(rng.getrandbits(8) for _ in range(size)))


class MetainfoInterop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in (INSPECT, CREATE, MKTORRENT):
            if not os.access(tool, os.X_OK):
                raise AssertionError("required tool missing: %s" % tool)
        cls.tmp = tempfile.mkdtemp(prefix="playhead-metainfo-interop-")
        cls.single = os.path.join(cls.tmp, "data", "clip.mp4")
        cls.folder = os.path.join(cls.tmp, "data", "Season 1")
        write_random(cls.single, 300001, 1)
        write_random(os.path.join(cls.folder, "e01.mkv"), 70000, 2)
        write_random(os.path.join(cls.folder, "extras", "notes.txt"), 123, 3)
        write_random(os.path.join(cls.folder, "e02.mkv"), 50000, 4)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assert_same(self, torrent_path):
        ours = ours_view(inspect(torrent_path))
        theirs = lt_view(torrent_path)
        self.assertEqual(ours[0], theirs[0], "info-hash")
        self.assertEqual(ours[1], theirs[1], "files")
        self.assertEqual(ours[2], theirs[2], "piece hashes")
        self.assertEqual(ours[3], theirs[3], "total size")
        self.assertEqual(ours[4], theirs[4], "piece length")
        return ours

    # ---- torrents made by others, read by us ----------------------------------------------------------------

    def mktorrent(self, src, out, *extra):
        r = run([MKTORRENT, "-l", "15", "-a", "http://127.0.0.1:1/announce", "-o", out, *extra, src])
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))

    def test_mktorrent_single_file(self):
        out = os.path.join(self.tmp, "mk-single.torrent")
        self.mktorrent(self.single, out)
        ours = self.assert_same(out)
        self.assertEqual(ours[1], [("clip.mp4", 300001, False)])

    def test_mktorrent_multi_file_private_web_seed(self):
        out = os.path.join(self.tmp, "mk-multi.torrent")
        self.mktorrent(self.folder, out, "-p", "-w", "http://127.0.0.1:2/seed/")
        ours = self.assert_same(out)
        self.assertEqual(len(ours[1]), 3)
        j = inspect(out)
        self.assertTrue(j["private"])
        self.assertEqual(j["webSeeds"], ["http://127.0.0.1:2/seed/"])
        self.assertEqual(j["trackers"], [["http://127.0.0.1:1/announce"]])

    def lt_create(self, fs, out, piece_size=16384, flags=lt.create_torrent.v1_only):
        t = lt.create_torrent(fs, piece_size, flags=flags)
        t.add_tracker("http://127.0.0.1:1/announce", 0)
        t.add_tracker("udp://127.0.0.1:3/announce", 1)
        lt.set_piece_hashes(t, os.path.join(self.tmp, "data"))
        with open(out, "wb") as f:
            f.write(lt.bencode(t.generate()))

    def test_libtorrent_single_file(self):
        fs = lt.file_storage()
        lt.add_files(fs, self.single)
        out = os.path.join(self.tmp, "lt-single.torrent")
        self.lt_create(fs, out)
        self.assert_same(out)
        self.assertEqual(inspect(out)["trackers"], [["http://127.0.0.1:1/announce"], ["udp://127.0.0.1:3/announce"]])

    def test_libtorrent_multi_file(self):
        fs = lt.file_storage()
        lt.add_files(fs, self.folder)
        out = os.path.join(self.tmp, "lt-multi.torrent")
        self.lt_create(fs, out, piece_size=32768)
        ours = self.assert_same(out)
        self.assertEqual(len(ours[1]), 3)

    def test_libtorrent_multi_file_with_pad_file(self):
        # BEP 47: a pad file aligns e02.mkv to a piece boundary; it counts in the geometry but is marked as padding.
        fs = lt.file_storage()
        fs.add_file("Season 1/e01.mkv", 70000)
        fs.add_file("Season 1/.pad/11920", 16384 * 5 - 70000, lt.file_storage.flag_pad_file)
        fs.add_file("Season 1/e02.mkv", 50000)
        out = os.path.join(self.tmp, "lt-pad.torrent")
        self.lt_create(fs, out)
        ours = self.assert_same(out)
        self.assertEqual([f[2] for f in ours[1]], [False, True, False])

    def test_libtorrent_hybrid_is_refused_naming_bep52(self):
        fs = lt.file_storage()
        lt.add_files(fs, self.single)
        out = os.path.join(self.tmp, "lt-hybrid.torrent")
        self.lt_create(fs, out, flags=0)
        r = run([INSPECT, out])
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"not supported yet (BEP 52)", r.stderr)

    # ---- torrents made by us, read and verified by libtorrent -------------------------------------------------

    def bt_create(self, src, out, *extra):
        r = run([CREATE, "-q", "--force", "-o", out, *extra, src])
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        return r.stdout.decode()

    def seed_check(self, torrent_path, save_path, expect_valid=None):
        """libtorrent checks the data on disk against our piece hashes; all valid means it becomes a seed.
        With expect_valid=N, exactly N pieces must pass instead (the control that shows the check is not vacuous)."""
        ses = lt.session({
            "listen_interfaces": "127.0.0.1:0", "outgoing_interfaces": "127.0.0.1",
            "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        })
        try:
            h = ses.add_torrent({"ti": lt.torrent_info(torrent_path), "save_path": save_path})
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                s = h.status()
                if s.is_seeding:
                    break
                if s.errc.value() != 0:
                    raise AssertionError("libtorrent error: %s" % s.errc.message())
                if s.state in (lt.torrent_status.downloading, lt.torrent_status.downloading_metadata) \
                        and s.num_pieces < h.torrent_file().num_pieces():
                    # Checking finished and some pieces failed: libtorrent now wants to download them.
                    break
                time.sleep(0.05)
            s = h.status()
            if expect_valid is not None:
                self.assertFalse(s.is_seeding)
                self.assertEqual(s.num_pieces, expect_valid)
                return
            self.assertTrue(s.is_seeding, "libtorrent found %d of %d pieces valid (state %s)"
                            % (s.num_pieces, h.torrent_file().num_pieces(), s.state))
        finally:
            del ses

    def test_bt_create_single_file_accepted_by_libtorrent(self):
        out = os.path.join(self.tmp, "ph-single.torrent")
        printed = self.bt_create(self.single, out, "-l", "16384", "-t", "http://127.0.0.1:1/announce")
        ours = self.assert_same(out)
        self.assertIn("info-hash: " + ours[0], printed)
        self.seed_check(out, os.path.join(self.tmp, "data"))

    def test_bt_create_multi_file_accepted_by_libtorrent(self):
        out = os.path.join(self.tmp, "ph-multi.torrent")
        self.bt_create(self.folder, out, "-l", "32768", "--private", "-w", "http://127.0.0.1:2/")
        ours = self.assert_same(out)
        self.assertEqual(len(ours[1]), 3)
        ti = lt.torrent_info(out)
        self.assertTrue(ti.priv())
        self.seed_check(out, os.path.join(self.tmp, "data"))

    def test_libtorrent_rejects_a_corrupted_piece_of_ours(self):
        out = os.path.join(self.tmp, "ph-corrupt.torrent")
        self.bt_create(self.single, out, "-l", "16384")
        copy_dir = os.path.join(self.tmp, "corrupt")
        os.makedirs(copy_dir, exist_ok=True)
        copy = os.path.join(copy_dir, "clip.mp4")
        shutil.copyfile(self.single, copy)
        with open(copy, "r+b") as f:  # flip one byte in piece 3
            f.seek(3 * 16384 + 5)
            b = f.read(1)
            f.seek(3 * 16384 + 5)
            f.write(bytes([b[0] ^ 0xFF]))
        pieces = lt.torrent_info(out).num_pieces()
        self.seed_check(out, copy_dir, expect_valid=pieces - 1)

    def test_bt_create_matches_mktorrent_byte_for_byte_info(self):
        # Same data, same piece length, same file order: the info dict (hence the hash) is the same in both tools.
        ours = os.path.join(self.tmp, "cmp-ours.torrent")
        theirs = os.path.join(self.tmp, "cmp-mk.torrent")
        self.bt_create(self.folder, ours, "-l", "32768")
        self.mktorrent(self.folder, theirs)
        self.assertEqual(inspect(ours)["infoHash"], inspect(theirs)["infoHash"])


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    ran = result.testsRun
    if ran == 0 or result.skipped or not result.wasSuccessful():
        sys.exit(1)
    sys.exit(0)
