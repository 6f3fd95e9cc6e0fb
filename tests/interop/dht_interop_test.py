"""Interop with libtorrent-rasterbar's DHT (Debian python3-libtorrent) on loopback.

A small libtorrent DHT swarm (a full mesh of sessions on 127.0.0.1, restrictions relaxed as INTEROP-NOTES.md says)
is the network; Playhead's bt-dht joins it through --bootstrap:
  * bt-dht ping / find-node get real answers from libtorrent nodes;
  * Playhead finds a peer that libtorrent announced (libtorrent announces when it adds a magnet-only torrent);
  * libtorrent finds a peer that Playhead announced: bt-dht announce INFOHASH PORT, then libtorrent adds that
    info-hash as a magnet and connects to PORT, where a plain TCP listener in this test receives its BitTorrent
    handshake carrying the info-hash;
  * Playhead serves libtorrent: a full Playhead node (bt-dht serve) joins the swarm, libtorrent announces to it with
    the token it handed out, and the stored peer is then served back in get_peers replies.
Run with /usr/bin/python3 (only it imports the Debian module); PLAYHEAD_BIN_DIR points at the built tools.
"""

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

try:
    import libtorrent as lt
except ImportError as e:  # never skip silently: a missing libtorrent is a failure with a clear message
    print("dht_interop_test: cannot import libtorrent (%s); install python3-libtorrent and run with /usr/bin/python3"
          % e, file=sys.stderr)
    sys.exit(1)

BIN_DIR = os.environ.get("PLAYHEAD_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))
BT_DHT = os.path.join(BIN_DIR, "bt-dht")
SWARM_SIZE = 5


def free_port():
    # A port free for both TCP and UDP (libtorrent listens on both with the same number).
    while True:
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()


def make_session(port):
    settings = {
        "listen_interfaces": "127.0.0.1:%d" % port,
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": True,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",  # never leave loopback
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False,
        "dht_block_ratelimit": 100000,
        "dht_upload_rate_limit": 10000000,
        "allow_multiple_connections_per_ip": True,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "min_reconnect_time": 1,
    }
    return lt.session(settings)


def run_dht(*args, timeout=20):
    """Runs bt-dht --json, returns (exit code, list of JSON events)."""
    cmd = [BT_DHT, "--json", "--bind", "127.0.0.1", "--timeout", str(timeout)] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 15)
    events = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if line:
            events.append(json.loads(line))
    if r.stderr.strip():
        print("bt-dht stderr:", r.stderr.strip(), file=sys.stderr)
    return r.returncode, events


class DhtInterop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(BT_DHT, os.X_OK):
            raise AssertionError("bt-dht not built at %s" % BT_DHT)
        cls.tmp = tempfile.mkdtemp(prefix="ph-dht-interop-")
        cls.ports = [free_port() for _ in range(SWARM_SIZE)]
        cls.sessions = [make_session(p) for p in cls.ports]
        # dht_bootstrap_nodes does not populate tables on loopback; a full mesh of add_dht_node does.
        for i, s in enumerate(cls.sessions):
            for j, p in enumerate(cls.ports):
                if i != j:
                    s.add_dht_node(("127.0.0.1", p))
        time.sleep(2)

    @classmethod
    def tearDownClass(cls):
        for s in cls.sessions:
            s.pause()
        cls.sessions = []
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def bootstrap(self, index):
        return ["--bootstrap", "127.0.0.1:%d" % self.ports[index]]

    def add_magnet(self, session, info_hash):
        atp = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + info_hash)
        atp.save_path = tempfile.mkdtemp(dir=self.tmp)
        return session.add_torrent(atp)

    def test_ping_and_find_node_against_libtorrent(self):
        code, events = run_dht("ping", "127.0.0.1:%d" % self.ports[0], timeout=10)
        self.assertEqual(code, 0, events)
        self.assertTrue(events[-1]["answered"])
        self.assertEqual(len(events[-1]["nodeId"]), 40)

        target = os.urandom(20).hex()
        code, events = run_dht(*self.bootstrap(1), "find-node", target)
        self.assertEqual(code, 0, events)
        done = events[-1]
        self.assertEqual(done["event"], "done")
        # Every libtorrent node answers, and the closest list is sorted by shared prefix bits (closest first).
        self.assertGreaterEqual(done["responded"], SWARM_SIZE - 1)
        answered_ports = {int(n["address"].rsplit(":", 1)[1]) for n in done["closest"]}
        self.assertTrue(answered_ports <= set(self.ports), answered_ports)
        bits = [n["sharedBits"] for n in done["closest"]]
        self.assertEqual(bits, sorted(bits, reverse=True))
        hops = [e for e in events if e["event"] == "hop"]
        self.assertTrue(any(h["kind"] == "queried" for h in hops))
        self.assertTrue(any(h["kind"] == "responded" and "distance" in h for h in hops))

    def test_playhead_finds_peer_announced_by_libtorrent(self):
        info_hash = os.urandom(20).hex()
        announcer = 0
        self.add_magnet(self.sessions[announcer], info_hash)  # libtorrent announces itself (implied_port)
        expected = "127.0.0.1:%d" % self.ports[announcer]
        deadline = time.time() + 90
        attempts = []
        while time.time() < deadline:
            code, events = run_dht(*self.bootstrap(2), "get-peers", info_hash, timeout=15)
            peers = events[-1].get("peers", []) if events else []
            attempts.append((code, peers))
            if expected in peers:
                self.assertEqual(code, 0)
                streamed = [p for e in events if e["event"] == "peers" for p in e["peers"]]
                self.assertIn(expected, streamed)  # reported as it arrived, before the summary
                return
            time.sleep(2)
        self.fail("bt-dht never found %s for %s: %s" % (expected, info_hash, attempts))

    def test_libtorrent_finds_peer_announced_by_playhead(self):
        info_hash = os.urandom(20).hex()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        try:
            code, events = run_dht(*self.bootstrap(3), "announce", info_hash, str(port))
            self.assertEqual(code, 0, events)
            done = events[-1]
            self.assertGreaterEqual(done["announcedTo"], 1, done)
            self.assertTrue(any(e["event"] == "hop" and e["kind"] == "announced" for e in events))

            # A libtorrent session adds the info-hash as a magnet: its DHT lookup finds our port and dials it.
            self.add_magnet(self.sessions[4], info_hash)
            deadline = time.time() + 90
            handshake = b""
            while time.time() < deadline and len(handshake) < 68:
                ready, _, _ = select.select([listener], [], [], 1.0)
                if not ready:
                    continue
                conn, _ = listener.accept()
                conn.settimeout(10)
                try:
                    while len(handshake) < 68:
                        chunk = conn.recv(68 - len(handshake))
                        if not chunk:
                            break
                        handshake += chunk
                except socket.timeout:
                    pass
                finally:
                    conn.close()
                if len(handshake) < 68:
                    handshake = b""
            self.assertEqual(len(handshake), 68, "libtorrent never connected to the port Playhead announced")
            self.assertEqual(handshake[0], 19)
            self.assertEqual(handshake[1:20], b"BitTorrent protocol")
            self.assertEqual(handshake[28:48].hex(), info_hash)
        finally:
            listener.close()

    def test_libtorrent_announces_to_a_playhead_node(self):
        server = subprocess.Popen(
            [BT_DHT, "--json", "--bind", "127.0.0.1", "--timeout", "90", "serve"] + self.bootstrap(0),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            ready, _, _ = select.select([server.stdout], [], [], 10)
            self.assertTrue(ready, "bt-dht serve printed nothing")
            first = json.loads(server.stdout.readline())
            self.assertEqual(first["event"], "listening")
            serve_port = first["port"]
            for s in self.sessions:
                s.add_dht_node(("127.0.0.1", serve_port))
            time.sleep(2)

            info_hash = os.urandom(20).hex()
            announcer = 1
            self.add_magnet(self.sessions[announcer], info_hash)
            expected = "127.0.0.1:%d" % self.ports[announcer]
            node = "127.0.0.1:%d" % serve_port
            deadline = time.time() + 60
            served = None
            while time.time() < deadline and served is None:
                time.sleep(2)
                _, events = run_dht("--bootstrap", node, "get-peers", info_hash, timeout=10)
                for e in events:
                    if e["event"] == "hop" and e["kind"] == "responded" and e["node"] == node and e["values"] > 0:
                        served = events
            self.assertIsNotNone(served, "the Playhead node never served a peer libtorrent announced to it")
            self.assertIn(expected, served[-1]["peers"])
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            server.stdout.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
