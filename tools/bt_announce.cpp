// bt-announce: sends one announce (or scrape) to one HTTP(S) or UDP tracker and prints the request it sent, the decoded
// response and the peer list — a way to watch a tracker exchange. --json gives the same for scripts. Exit status 0
// when the tracker answered, 1 on any error (with one clear line), 2 on bad usage.
#include <sys/stat.h>

#include <asio.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "net/io/tracker_client.hpp"
#include "net/magnet.hpp"
#include "net/metainfo.hpp"
#include "net/tracker_http.hpp"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

void usage(std::FILE* to) {
  std::fputs(
      "usage: bt-announce URL (INFOHASH|FILE.torrent|MAGNET) [options]\n"
      "  URL          http://, https:// or udp:// tracker announce url\n"
      "  INFOHASH     40 hex digits\n"
      "  --event E    started | completed | stopped | none (default: started)\n"
      "  --scrape     scrape instead of announcing (HTTP: the /announce -> /scrape convention)\n"
      "  --port P     our listen port to announce (default 6881)\n"
      "  --left N     bytes left (default: the torrent's size, 0 for a bare info-hash or magnet)\n"
      "  --uploaded N, --downloaded N   transfer counters to report (default 0)\n"
      "  --numwant N  peers wanted (default 50)\n"
      "  --peer-id S  20 bytes, or 40 hex digits (default: -PH0001- and 12 random characters)\n"
      "  --timeout MS give up after this long (default 15000)\n"
      "  --insecure   https: do not verify the certificate\n"
      "  --json       machine-readable output\n",
      to);
}

ph::Result<std::string> read_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ph::make_error(path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return ph::make_error(path + ": not a regular file");
  if (st.st_size > (64 << 20)) return ph::make_error(path + ": larger than 64 MiB, not a .torrent");
  std::ifstream in(path, std::ios::binary);
  if (!in) return ph::make_error(path + ": cannot open");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Target {
  ph::InfoHash info_hash;
  std::uint64_t size = 0;
};

ph::Result<Target> parse_target(const std::string& arg) {
  if (auto h = ph::InfoHash::from_hex(arg)) return Target{*h, 0};
  if (arg.rfind("magnet:", 0) == 0) {
    auto m = ph::parse_magnet(arg);
    if (!m) return m.error();
    return Target{m->info_hash, 0};
  }
  auto data = read_file(arg);
  if (!data) return data.error();
  auto meta = ph::parse_metainfo(*data);
  if (!meta) return ph::make_error(arg + ": " + meta.error().message);
  return Target{meta->info_hash, meta->total_length};
}

std::optional<std::uint64_t> parse_number(const char* s) {
  if (s == nullptr || *s == '\0') return std::nullopt;
  std::uint64_t v = 0;
  for (const char* p = s; *p; ++p) {
    if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(*p - '0');
  }
  return v;
}

std::string printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char b[5];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out;
}

int fail(bool as_json, const std::string& message) {
  if (as_json) {
    std::printf("%s\n", json{{"error", message}}.dump(2).c_str());
  } else {
    std::fprintf(stderr, "bt-announce: %s\n", message.c_str());
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  bool as_json = false, scrape = false, insecure = false;
  ph::tracker::AnnounceRequest req;
  req.port = 6881;
  req.event = ph::tracker::Event::started;
  std::optional<std::uint64_t> left;
  std::string peer_id_arg;
  std::uint64_t timeout_ms = 15000;

  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    auto number = [&](const char* name) -> std::optional<std::uint64_t> {
      auto v = parse_number(value());
      if (!v) std::fprintf(stderr, "bt-announce: %s needs a non-negative number\n", name);
      return v;
    };
    if (a == "--json") {
      as_json = true;
    } else if (a == "--scrape") {
      scrape = true;
    } else if (a == "--insecure") {
      insecure = true;
    } else if (a == "--event") {
      const char* v = value();
      auto e = v ? ph::tracker::parse_event(v) : std::nullopt;
      if (!e) {
        std::fprintf(stderr, "bt-announce: --event must be started, completed, stopped or none\n");
        return 2;
      }
      req.event = *e;
    } else if (a == "--port") {
      auto v = number("--port");
      if (!v || *v == 0 || *v > 65535) {
        std::fprintf(stderr, "bt-announce: --port must be 1..65535\n");
        return 2;
      }
      req.port = static_cast<std::uint16_t>(*v);
    } else if (a == "--left" || a == "--uploaded" || a == "--downloaded" || a == "--numwant" || a == "--timeout") {
      auto v = number(a.c_str());
      if (!v) return 2;
      if (a == "--left") left = *v;
      if (a == "--uploaded") req.uploaded = *v;
      if (a == "--downloaded") req.downloaded = *v;
      if (a == "--numwant") req.numwant = static_cast<std::int32_t>(std::min<std::uint64_t>(*v, 10000));
      if (a == "--timeout") timeout_ms = std::max<std::uint64_t>(*v, 1);
    } else if (a == "--peer-id") {
      const char* v = value();
      if (!v) return usage(stderr), 2;
      peer_id_arg = v;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      std::fprintf(stderr, "bt-announce: unknown option %s\n", a.c_str());
      usage(stderr);
      return 2;
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2) {
    usage(stderr);
    return 2;
  }
  const std::string& url = positional[0];
  auto target = parse_target(positional[1]);
  if (!target) return fail(as_json, target.error().message);
  req.info_hash = target->info_hash;
  req.left = left.value_or(target->size);

  if (peer_id_arg.size() == 20) {
    req.peer_id = ph::PeerId::from_bytes(peer_id_arg);
  } else if (auto hex = ph::PeerId::from_hex(peer_id_arg)) {
    req.peer_id = *hex;
  } else if (!peer_id_arg.empty()) {
    std::fprintf(stderr, "bt-announce: --peer-id must be 20 bytes or 40 hex digits\n");
    return 2;
  } else {
    std::random_device rd;
    static constexpr char alnum[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    std::string id = "-PH0001-";
    while (id.size() < 20) id += alnum[rd() % (sizeof alnum - 1)];
    req.peer_id = ph::PeerId::from_bytes(id);
    req.key = rd();
  }

  auto parsed_url = ph::tracker::parse_url(url);
  if (!parsed_url) return fail(as_json, parsed_url.error().message);
  const bool udp = parsed_url->scheme == "udp";

  // What goes on the wire, shown before it is sent.
  json request{{"url", url},
               {"protocol", parsed_url->scheme},
               {"infoHash", req.info_hash.hex()},
               {"kind", scrape ? "scrape" : "announce"}};
  std::string wire;
  if (scrape) {
    std::vector<ph::InfoHash> hashes{req.info_hash};
    if (!udp) {
      auto s = ph::tracker::build_scrape_url(url, hashes);
      if (!s) return fail(as_json, s.error().message);
      wire = "GET " + *s;
    } else {
      wire = "UDP scrape to " + parsed_url->host_port() + " (BEP 15, after a connect)";
    }
  } else {
    request["peerId"] = printable(req.peer_id.view());
    request["port"] = req.port;
    request["uploaded"] = req.uploaded;
    request["downloaded"] = req.downloaded;
    request["left"] = req.left;
    request["event"] = req.event == ph::tracker::Event::none ? "none" : ph::tracker::event_name(req.event);
    request["numwant"] = req.numwant;
    wire = udp ? "UDP announce to " + parsed_url->host_port() + " (BEP 15, after a connect)"
               : "GET " + ph::tracker::build_announce_url(url, req);
  }
  request["wire"] = wire;
  if (!as_json) {
    std::printf("request:  %s\n", wire.c_str());
    if (!scrape) {
      std::printf("          info_hash=%s peer_id=%s port=%u event=%s left=%llu\n", req.info_hash.hex().c_str(),
                  printable(req.peer_id.view()).c_str(), req.port, request["event"].get<std::string>().c_str(),
                  static_cast<unsigned long long>(req.left));
    }
    std::fflush(stdout);
  }

  asio::io_context io;
  ph::net::TrackerClientOptions options;
  options.http.timeout = std::chrono::milliseconds(timeout_ms);
  options.http.verify_tls = !insecure;
  options.udp.retransmit_base = std::min<std::chrono::milliseconds>(15s, std::chrono::milliseconds(timeout_ms));
  options.udp.max_retransmits = 8;
  ph::net::TrackerClient client(io, options);
  asio::steady_timer deadline(io);
  deadline.expires_after(std::chrono::milliseconds(timeout_ms));

  std::optional<ph::Result<ph::tracker::AnnounceResponse>> announced;
  std::optional<ph::Result<ph::tracker::ScrapeResponse>> scraped;
  ph::net::TrackerClient::RequestId id = 0;
  if (scrape) {
    id = client.scrape(url, {req.info_hash}, [&](auto r) {
      scraped.emplace(std::move(r));
      io.stop();  // the UDP socket keeps listening; one answer is all this tool wants
    });
  } else {
    id = client.announce(url, req, [&](auto r) {
      announced.emplace(std::move(r));
      io.stop();
    });
  }
  deadline.async_wait([&](const asio::error_code& ec) {
    if (ec) return;
    client.cancel(id);
    std::string msg = "no answer within " + std::to_string(timeout_ms) + " ms";
    if (scrape) {
      scraped.emplace(ph::make_error(msg));
    } else {
      announced.emplace(ph::make_error(msg));
    }
    io.stop();
  });
  io.run();

  if (scrape) {
    if (!scraped || !scraped->ok()) return fail(as_json, scraped ? scraped->error().message : "no answer");
    const auto& s = scraped->value();
    json files = json::array();
    for (const auto& f : s.files) {
      files.push_back({{"infoHash", f.info_hash.hex()},
                       {"complete", f.complete},
                       {"downloaded", f.downloaded},
                       {"incomplete", f.incomplete}});
    }
    if (as_json) {
      std::printf("%s\n", json{{"request", request}, {"scrape", files}}.dump(2).c_str());
    } else {
      std::printf("response: %zu torrent(s)\n", s.files.size());
      for (const auto& f : s.files) {
        std::printf("  %s  seeders %lld  leechers %lld  completed %lld\n", f.info_hash.hex().c_str(),
                    static_cast<long long>(f.complete), static_cast<long long>(f.incomplete),
                    static_cast<long long>(f.downloaded));
      }
    }
    return 0;
  }

  if (!announced || !announced->ok()) return fail(as_json, announced ? announced->error().message : "no answer");
  const auto& r = announced->value();
  json peers = json::array();
  for (const auto& p : r.peers) peers.push_back(p.to_string());
  if (as_json) {
    json response{{"interval", r.interval}, {"peerCount", r.peers.size()}};
    response["minInterval"] = r.min_interval ? json(*r.min_interval) : json(nullptr);
    response["complete"] = r.complete ? json(*r.complete) : json(nullptr);
    response["incomplete"] = r.incomplete ? json(*r.incomplete) : json(nullptr);
    response["trackerId"] = r.tracker_id;
    response["warning"] = r.warning_message;
    std::printf("%s\n", json{{"request", request}, {"response", response}, {"peers", peers}}.dump(2).c_str());
    return 0;
  }
  std::printf("response: interval %lld s", static_cast<long long>(r.interval));
  if (r.min_interval) std::printf(", min interval %lld s", static_cast<long long>(*r.min_interval));
  if (r.complete) std::printf(", seeders %lld", static_cast<long long>(*r.complete));
  if (r.incomplete) std::printf(", leechers %lld", static_cast<long long>(*r.incomplete));
  if (!r.tracker_id.empty()) std::printf(", tracker id %s", printable(r.tracker_id).c_str());
  std::printf("\n");
  if (!r.warning_message.empty()) std::printf("warning:  %s\n", r.warning_message.c_str());
  std::printf("peers (%zu):\n", r.peers.size());
  for (const auto& p : r.peers) std::printf("  %s\n", p.to_string().c_str());
  return 0;
}
