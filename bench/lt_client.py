#!/usr/bin/python3
"""A libtorrent downloader in its own process, driven by bench/e2e.py, so its CPU time can be read from /proc.

    lt_client.py '{"mode": "download"|"stream"|"pause", ...}'

Protocol: prints `ready` once the session exists (the parent samples CPU here, after the import and session setup),
waits for one line on stdin, does the work, prints one JSON line with the result, then waits for stdin to close so
the parent can sample CPU again before it exits. Every wait is bounded by cfg["timeout"].
"""
import json
import sys
import time

import libtorrent as lt

MIB = 1 << 20


def settings(port):
    # Loopback only, plain TCP, several peers on 127.0.0.1 (see /work/shared/INTEROP-NOTES.md).
    return {"listen_interfaces": "127.0.0.1:%d" % port, "outgoing_interfaces": "127.0.0.1", "enable_dht": False,
            "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
            "allow_multiple_connections_per_ip": True, "enable_incoming_utp": False, "enable_outgoing_utp": False,
            "min_reconnect_time": 1, "alert_mask": 0}


def recovery_time(samples, before, window=0.5, frac=0.8):
    """samples: [(seconds since resume, bytes)]. The first moment from which the next `window` seconds run at
    >= frac * before: when the rate is back. None if it never is within the samples."""
    for i, (ti, bi) in enumerate(samples):
        for tj, bj in samples[i + 1:]:
            if tj - ti >= window:
                if (bj - bi) / (tj - ti) >= frac * before:
                    return ti
                break
    return None


class Deadline(Exception):
    pass


def poll(pred, timeout, what, step=0.002):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise Deadline("libtorrent: timed out after %.0f s waiting for %s" % (timeout, what))


def pieces_for(ti, first, length):
    pl = ti.piece_length()
    return list(range(first // pl, (first + length - 1) // pl + 1))


def main():
    cfg = json.loads(sys.argv[1])
    port = cfg.get("port") or 0
    ses = lt.session(settings(port))
    print("ready", flush=True)
    if not sys.stdin.readline():
        return
    timeout = cfg.get("timeout", 60)
    peers = [("127.0.0.1", p) for p in cfg.get("peers", [])]
    res = {}
    try:
        t0 = time.monotonic()
        if cfg.get("magnet"):
            p = lt.parse_magnet_uri(cfg["magnet"])
        else:
            p = lt.add_torrent_params()
            p.ti = lt.torrent_info(lt.bdecode(open(cfg["torrent"], "rb").read()))
        p.save_path = cfg["save"]
        # Not auto-managed: the queueing logic must not resume or pause it behind our back.
        p.flags &= ~lt.torrent_flags.auto_managed
        p.flags &= ~lt.torrent_flags.paused
        h = ses.add_torrent(p)
        for pe in peers:
            h.connect_peer(pe)
        mode = cfg["mode"]
        if mode == "download":
            poll(lambda: h.status().is_seeding, timeout, "the whole torrent", 0.02)
            res["secs"] = time.monotonic() - t0
        elif mode == "stream":
            if cfg.get("magnet"):
                poll(lambda: h.status().has_metadata, timeout, "metadata")
                res["metadata"] = time.monotonic() - t0
            ti = h.torrent_file()
            # libtorrent's streaming mode: deadlines on the pieces a player needs next.
            want = pieces_for(ti, 0, MIB)
            for i, pc in enumerate(want):
                h.set_piece_deadline(pc, i)
            poll(lambda: all(h.have_piece(pc) for pc in want), timeout, "the first MiB")
            res["startup"] = time.monotonic() - t0
            t1 = time.monotonic()
            off = int(ti.total_size() * 0.6)
            want = pieces_for(ti, off, MIB)
            for i, pc in enumerate(want):
                h.set_piece_deadline(pc, i)
            poll(lambda: all(h.have_piece(pc) for pc in want), timeout, "the MiB at 60%")
            res["seek"] = time.monotonic() - t1
        elif mode == "pause":
            def got():
                return h.status().all_time_download
            poll(lambda: got() >= 2 * MIB, timeout, "the first 2 MiB", 0.05)
            time.sleep(1.0)  # past slow start, as for Playhead
            d0, ta = got(), time.monotonic()
            time.sleep(2.0)
            before = (got() - d0) / (time.monotonic() - ta)
            h.pause()
            d0 = got()
            time.sleep(1.0)
            res["after_pause_bytes"] = got() - d0
            h.resume()
            for pe in peers:  # pause() closed the connections; there is no tracker to find the seeder again
                h.connect_peer(pe)
            tr, d0, samples = time.monotonic(), got(), []
            while time.monotonic() - tr < 3.0:
                samples.append((time.monotonic() - tr, got() - d0))
                time.sleep(0.05)
            res["before_rate"] = before
            res["first_second_rate"] = next(b / t for t, b in samples if t >= 1.0)
            res["recovery"] = recovery_time(samples, before)
        res["ok"] = True
    except Deadline as e:
        res = {"ok": False, "error": str(e)}
    print(json.dumps(res), flush=True)
    sys.stdin.read()  # the parent reads our CPU time, then closes stdin


if __name__ == "__main__":
    main()
