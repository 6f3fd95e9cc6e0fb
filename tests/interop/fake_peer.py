"""A scripted BitTorrent seeder in pure Python for tests: it speaks just enough of BEP 3/6/10 to serve blocks, and can
be told to misbehave (serve corrupt data for some pieces, ...). Runs in a thread on 127.0.0.1."""
import hashlib
import socket
import struct
import threading


class FakeSeeder:
    def __init__(self, info_hash_hex, piece_length, data, corrupt_pieces=(), peer_id=b"-FK0001-abcdefghijkl"):
        self.info_hash = bytes.fromhex(info_hash_hex)
        self.piece_length = piece_length
        self.data = data  # the torrent's concatenated bytes
        self.piece_count = (len(data) + piece_length - 1) // piece_length
        self.corrupt = set(corrupt_pieces)
        self.peer_id = peer_id
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.blocks_served = 0
        self.closed_by_remote = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _recv(self, c, n):
        buf = b""
        while len(buf) < n:
            chunk = c.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _serve(self, c):
        c.settimeout(30)
        try:
            hs = self._recv(c, 68)
            if hs[28:48] != self.info_hash:
                c.close()
                return
            reserved = bytearray(8)
            reserved[7] |= 0x04  # fast extension
            c.sendall(b"\x13BitTorrent protocol" + bytes(reserved) + self.info_hash + self.peer_id)
            c.sendall(struct.pack(">IB", 1, 14))  # have all
            c.sendall(struct.pack(">IB", 1, 1))   # unchoke
            while True:
                length = struct.unpack(">I", self._recv(c, 4))[0]
                if length == 0:
                    continue
                body = self._recv(c, length)
                if body[0] == 6:  # request
                    index, begin, size = struct.unpack(">III", body[1:13])
                    start = index * self.piece_length + begin
                    block = bytearray(self.data[start:start + size])
                    if index in self.corrupt:
                        block[0] ^= 0xFF
                    c.sendall(struct.pack(">IBII", 9 + len(block), 7, index, begin) + bytes(block))
                    self.blocks_served += 1
        except (EOFError, OSError):
            self.closed_by_remote += 1
        finally:
            c.close()

    def stop(self):
        self._stop = True
        self.sock.close()
