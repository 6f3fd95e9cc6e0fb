// Shared fixtures for the http tests: an in-memory fake Backend whose streams deliver bytes in small delayed chunks
// (so incremental delivery and backpressure are observable), a server running on its own io_context thread, and a
// tiny blocking HTTP client over POSIX sockets where every wait is bounded by poll().
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <asio.hpp>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http/api.hpp"
#include "http/backend.hpp"
#include "http/server.hpp"

namespace ph::http::test {

inline std::string pattern_bytes(std::size_t n, unsigned seed = 1) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 12345;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

struct FakeFile {
  std::string path;
  std::string data;
};

struct FakeTorrent {
  TorrentInfo info;
  std::vector<FakeFile> files;
};

// Counters the tests read (through on_io) to see what the server asked of the backend.
struct FakeStats {
  int sources_open = 0;
  int sources_opened = 0;
  int reads = 0;
  int max_pending = 0;
  int pending = 0;
  std::size_t max_read_len = 0;
  std::vector<std::string> calls;  // "play <hash>", "pause <hash>", "prioritize <hash> 1", ...
};

class FakeBackend;

class FakeSource : public StreamSource {
 public:
  FakeSource(asio::io_context& io, const FakeFile& f, FakeStats& st, std::chrono::milliseconds delay,
             std::size_t chunk, bool stall)
      : io_(io), file_(f), st_(st), delay_(delay), chunk_(chunk), stall_(stall), timer_(io) {
    st_.sources_open++;
    st_.sources_opened++;
  }
  ~FakeSource() override {
    st_.sources_open--;
    if (pending_) st_.pending--;
  }
  std::uint64_t length() const override { return file_.data.size(); }
  std::string_view path() const override { return file_.path; }
  void read(std::uint64_t offset, std::size_t max_len, ReadHandler handler) override {
    st_.reads++;
    st_.pending++;
    pending_ = true;
    st_.max_pending = std::max(st_.max_pending, st_.pending);
    st_.max_read_len = std::max(st_.max_read_len, max_len);
    if (stall_) {
      stalled_ = std::move(handler);  // never completes: the server's stall timeout must act
      return;
    }
    const std::size_t n = std::min<std::size_t>({max_len, chunk_, file_.data.size() - offset});
    auto done = [this, offset, n, handler = std::move(handler)](asio::error_code ec) {
      if (ec) return;  // destroyed (cancelled): the handler is dropped
      pending_ = false;
      st_.pending--;
      handler(std::span(reinterpret_cast<const std::uint8_t*>(file_.data.data()) + offset, n));
    };
    if (delay_.count() > 0) {
      timer_.expires_after(delay_);
      timer_.async_wait(std::move(done));
    } else {
      asio::post(io_, [done = std::move(done)]() mutable { done({}); });
    }
  }

 private:
  asio::io_context& io_;
  const FakeFile& file_;
  FakeStats& st_;
  std::chrono::milliseconds delay_;
  std::size_t chunk_;
  bool stall_;
  bool pending_ = false;
  ReadHandler stalled_;
  asio::steady_timer timer_;
};

class FakeBackend : public Backend {
 public:
  explicit FakeBackend(asio::io_context& io) : io_(io) {}

  FakeTorrent& add(const std::string& name, std::vector<FakeFile> files, unsigned seed) {
    FakeTorrent t;
    for (auto& b : t.info.info_hash.bytes) b = static_cast<std::uint8_t>(seed * 7 + (&b - t.info.info_hash.bytes.data()));
    t.info.name = name;
    t.info.state = "downloading";
    t.info.file_count = static_cast<std::uint32_t>(files.size());
    t.files = std::move(files);
    auto hex = t.info.info_hash.hex();
    return torrents_[hex] = std::move(t);
  }

  std::vector<TorrentInfo> list() override {
    std::vector<TorrentInfo> out;
    for (auto& [k, t] : torrents_) out.push_back(t.info);
    return out;
  }
  std::optional<TorrentInfo> find(const InfoHash& h) override {
    auto it = torrents_.find(h.hex());
    if (it == torrents_.end()) return std::nullopt;
    return it->second.info;
  }
  std::optional<TorrentDetail> detail(const InfoHash& h) override {
    auto it = torrents_.find(h.hex());
    if (it == torrents_.end()) return std::nullopt;
    TorrentDetail d;
    d.info = it->second.info;
    d.piece_length = 16384;
    for (std::size_t i = 0; i < it->second.files.size(); ++i) {
      const auto& f = it->second.files[i];
      d.files.push_back({static_cast<FileIndex>(i), f.path, f.data.size(), i == 0 ? 1 : 0, 0.5});
      d.total_length += f.data.size();
    }
    d.pieces = "1100";
    d.window = {{1, 2}};
    d.playheads = {{0, 20000, 1}};
    d.buffered_ranges = {{0, 0, 32768}};
    d.peer_list = {{"127.0.0.1:6881", "fake/1.0", 100, 0}};
    return d;
  }
  Result<AddResult> add_magnet(std::string_view uri) override {
    stats.calls.push_back("magnet " + std::string(uri));
    if (!uri.starts_with("magnet:?xt=urn:btih:")) return make_error("not a magnet link");
    const auto hex = std::string(uri.substr(20, 40));
    auto h = Id20::from_hex(hex);
    if (!h) return make_error("bad info-hash in magnet");
    if (auto it = torrents_.find(h->hex()); it != torrents_.end()) return AddResult{false, it->second.info};
    FakeTorrent t;
    t.info.info_hash = *h;
    t.info.name = "";
    t.info.state = "metadata";
    return AddResult{true, (torrents_[h->hex()] = std::move(t)).info};
  }
  Result<AddResult> add_torrent_file(std::span<const std::uint8_t> bytes) override {
    stats.calls.push_back("torrent " + std::to_string(bytes.size()));
    if (bytes.empty() || bytes[0] != 'd') return make_error("not a .torrent (bencoded dictionary expected)");
    auto& t = add("uploaded", {{"uploaded/a.mkv", "x"}}, 99);
    return AddResult{true, t.info};
  }
  Result<void> remove(const InfoHash& h, bool delete_files) override {
    stats.calls.push_back("remove " + h.hex() + (delete_files ? " delete" : ""));
    torrents_.erase(h.hex());
    return {};
  }
  Result<void> prioritize_file(const InfoHash& h, FileIndex f) override {
    stats.calls.push_back("prioritize " + h.hex() + " " + std::to_string(f));
    return {};
  }
  Result<void> play(const InfoHash& h) override {
    stats.calls.push_back("play " + h.hex());
    torrents_[h.hex()].info.state = "downloading";
    return {};
  }
  Result<void> pause(const InfoHash& h) override {
    stats.calls.push_back("pause " + h.hex());
    torrents_[h.hex()].info.state = "paused";
    return {};
  }
  Result<void> connect_peer(const InfoHash& h, const PeerAddress& a) override {
    stats.calls.push_back("peer " + h.hex() + " " + a.to_string());
    return {};
  }
  MetricsSnapshot metrics() override {
    MetricsSnapshot m;
    m.torrents = static_cast<std::uint32_t>(torrents_.size());
    m.arena_bytes_used = 123456789012ull;
    m.evictions = 7;
    return m;
  }
  Result<std::unique_ptr<StreamSource>> open_stream(const InfoHash& h, FileIndex f) override {
    auto it = torrents_.find(h.hex());
    if (it == torrents_.end() || f >= it->second.files.size()) return make_error("no such file");
    stats.calls.push_back("open " + h.hex() + " " + std::to_string(f));
    return std::unique_ptr<StreamSource>(
        std::make_unique<FakeSource>(io_, it->second.files[f], stats, delay, chunk, stall));
  }

  FakeStats stats;
  std::chrono::milliseconds delay{0};
  std::size_t chunk = 64 * 1024;
  bool stall = false;

 private:
  asio::io_context& io_;
  std::map<std::string, FakeTorrent> torrents_;
};

// The server, the Api and the fake on an io_context thread of their own; tests talk to them over loopback only.
class TestServer {
 public:
  explicit TestServer(ServerLimits limits = {}, ApiOptions options = {})
      : backend_(io_), api_(backend_, options), server_(io_, api_.handler(), limits) {
    api_.set_server_stats(&server_.stats());
    auto r = server_.listen("127.0.0.1", 0);
    if (!r) throw std::runtime_error(r.error().message);
    port_ = server_.port();
    guard_.emplace(io_.get_executor());
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() {
    on_io([this] {
      server_.stop();
      return 0;
    });
    on_io([] { return 0; });  // runs after anything stop() posted (the io_context is FIFO on one thread)
    guard_.reset();
    io_.stop();
    thread_.join();
  }

  // Runs f on the io thread and waits (bounded) for its result: the only way tests touch server or fake state.
  template <class F>
  auto on_io(F f) -> decltype(f()) {
    std::promise<decltype(f())> p;
    auto fut = p.get_future();
    asio::post(io_, [&] { p.set_value(f()); });
    if (fut.wait_for(std::chrono::seconds(10)) != std::future_status::ready) throw std::runtime_error("io timeout");
    return fut.get();
  }

  std::uint16_t port() const { return port_; }
  FakeBackend& backend() { return backend_; }  // only inside on_io
  Server& server() { return server_; }         // only inside on_io

 private:
  asio::io_context io_;
  FakeBackend backend_;
  Api api_;
  Server server_;
  std::uint16_t port_ = 0;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
  std::thread thread_;
};

struct ClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& k) const {
    auto it = headers.find(k);
    return it == headers.end() ? std::string{} : it->second;
  }
};

// A blocking client; every receive waits at most `timeout`.
class Client {
 public:
  explicit Client(std::uint16_t port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    timeval tv{5, 0};  // a send the server refuses to drain fails after 5 s instead of hanging the test
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect failed");
  }
  ~Client() { close(); }
  Client(const Client&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send(std::string_view data) {
    while (!data.empty()) {
      const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Receives whatever arrives within timeout (0 bytes on timeout; nullopt when the peer closed or reset).
  std::optional<std::string> recv_some(std::chrono::milliseconds timeout, std::size_t max = 1 << 20) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::string{};
    std::string buf(max, '\0');
    const auto n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n <= 0) return std::nullopt;
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }

  // True when the server closes the connection within timeout (after draining anything it still sends).
  bool closed_within(std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) continue;
      char buf[65536];
      if (::recv(fd_, buf, sizeof buf, 0) <= 0) return true;
    }
    return false;
  }

  // Reads one response (Content-Length framed; `head` for a HEAD request). nullopt on close or timeout.
  std::optional<ClientResponse> read_response(bool head = false,
                                              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    auto fill = [&]() -> bool {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      auto got = recv_some(left);
      if (!got || got->empty()) return false;
      buf_ += *got;
      return true;
    };
    std::size_t hend;
    while ((hend = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    ClientResponse r;
    std::string head_text = buf_.substr(0, hend);
    buf_.erase(0, hend + 4);
    std::size_t line_end = head_text.find("\r\n");
    const std::string status_line = head_text.substr(0, line_end);
    r.status = std::stoi(status_line.substr(9, 3));
    std::size_t pos = line_end == std::string::npos ? head_text.size() : line_end + 2;
    while (pos < head_text.size()) {
      auto e = head_text.find("\r\n", pos);
      if (e == std::string::npos) e = head_text.size();
      const auto line = head_text.substr(pos, e - pos);
      const auto colon = line.find(':');
      std::string k = line.substr(0, colon);
      for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      r.headers[k] = v;
      pos = e + 2;
    }
    if (r.status == 100) return read_response(head, timeout);
    std::size_t len = r.headers.count("content-length") ? std::stoull(r.headers["content-length"]) : 0;
    if (head || r.status == 204 || r.status == 304) len = 0;
    while (buf_.size() < len) {
      if (!fill()) return std::nullopt;
    }
    r.body = buf_.substr(0, len);
    buf_.erase(0, len);
    return r;
  }

  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::string buf_;
};

// One request on a fresh connection.
inline std::optional<ClientResponse> fetch(std::uint16_t port, const std::string& method, const std::string& target,
                                           const std::vector<std::string>& headers = {},
                                           const std::string& body = {}) {
  Client c(port);
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  if (!body.empty() || method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  if (!c.send(req)) return std::nullopt;
  return c.read_response(method == "HEAD");
}

}  // namespace ph::http::test
