// bt-dht: a Kademlia microscope. Runs a short-lived DHT node (net::DhtService, read-only by default) and performs
// one operation — ping, find-node, get-peers or announce — printing every hop of the lookup: which node was asked,
// what came back, and the XOR distance of that node to the target, so a user can watch the lookup converge.
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/dht_routing_table.hpp"
#include "net/io/dht_service.hpp"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* kHelp =
    "usage: bt-dht [options] COMMAND\n"
    "\n"
    "commands:\n"
    "  ping HOST:PORT             ask one DHT node for its id\n"
    "  find-node TARGET           iterative find_node for a 40-hex-digit id\n"
    "  get-peers INFOHASH         iterative get_peers; prints peers as they arrive (exit 2 when none found)\n"
    "  announce INFOHASH PORT     get_peers, then announce_peer PORT to the closest nodes (PORT 0: implied_port)\n"
    "  serve                      run a full DHT node until --timeout, answering others; prints its port first\n"
    "                             and its counters every 5 s (exit 0 at the timeout)\n"
    "\n"
    "options:\n"
    "  --bootstrap HOST:PORT   a node to start from (repeatable, or comma-separated); default: $TORRENT_DHT_BOOTSTRAP,\n"
    "                          else the public routers\n"
    "  --port PORT             local UDP port (default: any)\n"
    "  --bind ADDRESS          local address (default 0.0.0.0; '::' for IPv6)\n"
    "  --full-node             do not flag our queries read-only (BEP 43): let other nodes add us\n"
    "  --json                  one JSON object per line (each hop, each peer batch, then a 'done' summary)\n"
    "  --timeout SECONDS       give up after this long (default 30)\n"
    "  -h, --help              this text\n"
    "\n"
    "Each hop line shows: the event (queried, responded, failed, announced), the node's address, its id, and its\n"
    "distance to the target as the number of leading bits they share (higher = closer; 160 = the target itself)\n"
    "followed by the first bytes of the XOR distance. A converging lookup asks nodes with ever more shared bits.\n";

const char* kDefaultBootstrap =
    "router.bittorrent.com:6881,dht.transmissionbt.com:6881,router.utorrent.com:6881,dht.libtorrent.org:25401";

std::vector<std::string> split_commas(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    auto c = s.find(',');
    auto part = s.substr(0, c);
    if (!part.empty()) out.emplace_back(part);
    if (c == std::string_view::npos) break;
    s.remove_prefix(c + 1);
  }
  return out;
}

std::string short_hex(const ph::Id20& id, std::size_t bytes = 6) { return id.hex().substr(0, bytes * 2); }

struct Printer {
  bool json_mode = false;
  ph::Id20 target;
  Clock::time_point start = Clock::now();
  std::size_t hops = 0;

  double elapsed_ms() const { return std::chrono::duration<double, std::milli>(Clock::now() - start).count(); }

  void hop(const ph::dht::HopEvent& e) {
    if (e.target != target) return;  // the service's own bootstrap lookup runs alongside; not ours to show
    ++hops;
    const char* kind = ph::dht::hop_kind_name(e.kind);
    if (json_mode) {
      json j = {{"event", "hop"}, {"kind", kind}, {"node", e.node.to_string()}, {"ms", elapsed_ms()}};
      if (e.node_id) {
        j["nodeId"] = e.node_id->hex();
        j["sharedBits"] = ph::dht::common_prefix_bits(*e.node_id, target);
        j["distance"] = ph::dht::xor_distance(*e.node_id, target).hex();
      }
      if (e.kind == ph::dht::HopEvent::Kind::responded) {
        j["nodes"] = e.nodes_returned;
        j["values"] = e.values_returned;
        j["token"] = e.token;
      }
      if (!e.detail.empty()) j["detail"] = e.detail;
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::string id = e.node_id ? short_hex(*e.node_id) + "…" : std::string("(unknown id)  ");
      std::string dist = e.node_id ? "shared " + std::to_string(ph::dht::common_prefix_bits(*e.node_id, target)) +
                                         " bits, xor " + short_hex(ph::dht::xor_distance(*e.node_id, target), 4) + "…"
                                   : std::string("-");
      std::string what;
      if (e.kind == ph::dht::HopEvent::Kind::responded) {
        what = std::to_string(e.nodes_returned) + " nodes, " + std::to_string(e.values_returned) + " peers" +
               (e.token ? ", token" : "");
      } else if (!e.detail.empty()) {
        what = e.detail;
      }
      std::printf("%8.1f ms  %-9s  %-22s  %s  %s  %s\n", elapsed_ms(), kind, e.node.to_string().c_str(), id.c_str(),
                  dist.c_str(), what.c_str());
    }
    std::fflush(stdout);
  }

  void peers(const std::vector<ph::PeerAddress>& p) {
    if (json_mode) {
      json arr = json::array();
      for (const auto& a : p) arr.push_back(a.to_string());
      std::printf("%s\n", json({{"event", "peers"}, {"peers", arr}, {"ms", elapsed_ms()}}).dump().c_str());
    } else {
      for (const auto& a : p) std::printf("%8.1f ms  peer       %s\n", elapsed_ms(), a.to_string().c_str());
    }
    std::fflush(stdout);
  }

  void done(const char* command, const ph::dht::LookupResult& r, const std::vector<ph::PeerAddress>& all_peers) {
    if (json_mode) {
      json closest = json::array();
      for (const auto& n : r.closest) {
        closest.push_back({{"id", n.id.hex()}, {"address", n.address.to_string()},
                           {"sharedBits", ph::dht::common_prefix_bits(n.id, target)}});
      }
      json peers = json::array();
      for (const auto& a : all_peers) peers.push_back(a.to_string());
      json j = {{"event", "done"}, {"command", command}, {"target", target.hex()}, {"queried", r.queried},
                {"responded", r.responded}, {"failed", r.failed}, {"peers", peers},
                {"announcedTo", r.announced_to}, {"closest", closest}, {"ms", elapsed_ms()}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("\n%s %s: asked %zu nodes, %zu answered, %zu failed, %zu peers found", command,
                  target.hex().c_str(), r.queried, r.responded, r.failed, all_peers.size());
      if (std::strcmp(command, "announce") == 0) std::printf(", announced to %zu nodes", r.announced_to);
      std::printf(" in %.0f ms\nclosest nodes that answered:\n", elapsed_ms());
      for (const auto& n : r.closest) {
        std::printf("  %s  %-22s  shared %d bits\n", n.id.hex().c_str(), n.address.to_string().c_str(),
                    ph::dht::common_prefix_bits(n.id, target));
      }
    }
    std::fflush(stdout);
  }
};

int usage_error(const std::string& message) {
  std::fprintf(stderr, "bt-dht: %s\n(try --help)\n", message.c_str());
  return 64;
}

std::optional<ph::PeerAddress> resolve_one(asio::io_context& io, const std::string& text) {
  if (auto p = ph::PeerAddress::parse(text)) return p;
  auto hp = ph::net::split_host_port(text);
  if (!hp) return std::nullopt;
  asio::ip::udp::resolver resolver(io);
  asio::error_code ec;
  auto results = resolver.resolve(asio::ip::udp::v4(), hp->first, std::to_string(hp->second), ec);
  if (ec || results.empty()) return std::nullopt;
  return ph::PeerAddress::v4(results.begin()->endpoint().address().to_v4().to_uint(), hp->second);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  ph::net::DhtServiceOptions options;
  options.port = 0;
  options.node.read_only = true;
  bool json_mode = false;
  double timeout_s = 30;
  std::vector<std::string> positional;
  std::vector<std::string> bootstrap;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const char* name) -> std::optional<std::string> {
      if (i + 1 >= args.size()) return std::nullopt;
      (void)name;
      return args[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--json") {
      json_mode = true;
    } else if (a == "--full-node") {
      options.node.read_only = false;
    } else if (a == "--bootstrap") {
      auto v = value("--bootstrap");
      if (!v) return usage_error("--bootstrap needs HOST:PORT");
      for (auto& b : split_commas(*v)) bootstrap.push_back(b);
    } else if (a == "--port") {
      auto v = value("--port");
      char* end = nullptr;
      long p = v ? std::strtol(v->c_str(), &end, 10) : -1;
      if (!v || *end != '\0' || p < 0 || p > 65535) return usage_error("--port needs a number 0-65535");
      options.port = static_cast<std::uint16_t>(p);
    } else if (a == "--bind") {
      auto v = value("--bind");
      if (!v) return usage_error("--bind needs an address");
      options.bind_address = *v;
    } else if (a == "--timeout") {
      auto v = value("--timeout");
      char* end = nullptr;
      timeout_s = v ? std::strtod(v->c_str(), &end) : -1;
      if (!v || *end != '\0' || timeout_s <= 0 || timeout_s > 86400) return usage_error("--timeout needs seconds");
    } else if (a.size() > 1 && a[0] == '-') {
      return usage_error("unknown option " + a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.empty()) return usage_error("missing COMMAND");
  const std::string command = positional[0];
  if (bootstrap.empty()) {
    const char* env = std::getenv("TORRENT_DHT_BOOTSTRAP");
    bootstrap = split_commas(env && *env ? env : kDefaultBootstrap);
  }
  for (const auto& b : bootstrap) {
    if (!ph::net::split_host_port(b)) return usage_error("bad bootstrap address '" + b + "' (want HOST:PORT)");
  }

  Printer printer;
  printer.json_mode = json_mode;
  std::optional<ph::PeerAddress> ping_target;
  std::uint16_t announce_port = 0;
  asio::io_context io;
  if (command == "ping") {
    if (positional.size() != 2) return usage_error("ping needs HOST:PORT");
    ping_target = resolve_one(io, positional[1]);
    if (!ping_target) return usage_error("cannot resolve '" + positional[1] + "'");
    bootstrap.clear();  // a ping needs nobody else
  } else if (command == "find-node" || command == "get-peers" || command == "announce") {
    const std::size_t want = command == "announce" ? 3 : 2;
    if (positional.size() != want) return usage_error(command + " needs " + (want == 3 ? "INFOHASH PORT" : "an id"));
    auto id = ph::Id20::from_hex(positional[1]);
    if (!id) return usage_error("'" + positional[1] + "' is not 40 hex digits");
    printer.target = *id;
    if (want == 3) {
      char* end = nullptr;
      long p = std::strtol(positional[2].c_str(), &end, 10);
      if (*end != '\0' || p < 0 || p > 65535) return usage_error("PORT must be 0-65535");
      announce_port = static_cast<std::uint16_t>(p);
    }
  } else if (command == "serve") {
    if (positional.size() != 1) return usage_error("serve takes no arguments");
    options.node.read_only = false;
  } else {
    return usage_error("unknown command '" + command + "'");
  }

  options.bootstrap = bootstrap;
  ph::net::DhtService dht(io, options);
  if (auto started = dht.start(); !started) {
    std::fprintf(stderr, "bt-dht: %s\n", started.error().message.c_str());
    return 1;
  }
  if (json_mode && command == "serve") {
    std::printf("%s\n", json({{"event", "listening"}, {"port", dht.local_port()}, {"nodeId", dht.node_id().hex()}})
                             .dump()
                             .c_str());
    std::fflush(stdout);
  } else if (!json_mode) {
    std::printf("bt-dht %s: our node id %s, UDP port %u%s\n", command.c_str(), dht.node_id().hex().c_str(),
                dht.local_port(), options.node.read_only ? " (read-only)" : "");
    if (!bootstrap.empty()) {
      std::printf("bootstrap:");
      for (const auto& b : bootstrap) std::printf(" %s", b.c_str());
      std::printf("\n\n");
    }
  }

  int exit_code = 3;  // timeout unless something finishes first
  asio::steady_timer deadline(io, std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s)));
  asio::steady_timer* status_timer = nullptr;
  auto finish = [&](int code) {
    exit_code = code;
    if (status_timer) status_timer->cancel();
    dht.stop();
    deadline.cancel();
    io.stop();
  };
  auto serve_stats = [&](const char* event) {
    const auto s = dht.stats();
    const auto& n = s.node;
    if (json_mode) {
      json j = {{"event", event},          {"routingNodes", n.routing_nodes}, {"queriesIn", n.queries_in},
                {"queriesOut", n.queries_out}, {"storedPeers", n.stored_peers},  {"storedHashes", n.stored_hashes},
                {"malformed", n.malformed},  {"rateLimited", n.rate_limited},   {"badTokens", n.bad_tokens},
                {"announcesStored", n.announces_stored}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%s: %zu nodes in routing table, %llu queries served, %llu sent, %zu peers stored for %zu "
                  "info-hashes, %llu malformed, %llu rate-limited, %llu bad tokens\n",
                  event, n.routing_nodes, static_cast<unsigned long long>(n.queries_in),
                  static_cast<unsigned long long>(n.queries_out), n.stored_peers, n.stored_hashes,
                  static_cast<unsigned long long>(n.malformed), static_cast<unsigned long long>(n.rate_limited),
                  static_cast<unsigned long long>(n.bad_tokens));
    }
    std::fflush(stdout);
  };
  deadline.async_wait([&](const asio::error_code& ec) {
    if (ec) return;
    if (command == "serve") {
      serve_stats("done");
      finish(0);
      return;
    }
    if (json_mode) {
      std::printf("%s\n", json({{"event", "timeout"}, {"seconds", timeout_s}}).dump().c_str());
    } else {
      std::printf("timed out after %.0f s\n", timeout_s);
    }
    finish(3);
  });

  std::vector<ph::PeerAddress> all_peers;
  asio::steady_timer status(io);
  status_timer = &status;
  std::function<void()> status_loop = [&] {
    status.expires_after(std::chrono::seconds(5));
    status.async_wait([&](const asio::error_code& ec) {
      if (ec) return;
      serve_stats("status");
      status_loop();
    });
  };
  dht.set_hop_observer([&](const ph::dht::HopEvent& e) { printer.hop(e); });
  if (ping_target) {
    const auto sent = Clock::now();
    dht.ping(*ping_target, [&, sent](std::optional<ph::Id20> id) {
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
      if (json_mode) {
        json j = {{"event", "done"}, {"command", "ping"}, {"node", ping_target->to_string()}, {"ms", ms},
                  {"answered", id.has_value()}};
        if (id) j["nodeId"] = id->hex();
        std::printf("%s\n", j.dump().c_str());
      } else if (id) {
        std::printf("pong from %s: id %s in %.1f ms\n", ping_target->to_string().c_str(), id->hex().c_str(), ms);
      } else {
        std::printf("no answer from %s\n", ping_target->to_string().c_str());
      }
      finish(id ? 0 : 1);
    });
  } else if (command == "serve") {
    status_loop();
  } else if (command == "find-node") {
    dht.find_node(printer.target, [&](const ph::dht::LookupResult& r) {
      printer.done("find-node", r, all_peers);
      finish(r.responded > 0 ? 0 : 1);
    });
  } else if (command == "get-peers") {
    dht.get_peers(
        printer.target,
        [&](const std::vector<ph::PeerAddress>& p) {
          all_peers.insert(all_peers.end(), p.begin(), p.end());
          printer.peers(p);
        },
        [&](const ph::dht::LookupResult& r) {
          printer.done("get-peers", r, all_peers);
          finish(r.responded == 0 ? 1 : all_peers.empty() ? 2 : 0);
        });
  } else {
    dht.announce(printer.target, announce_port, [&](const ph::dht::LookupResult& r) {
      printer.done("announce", r, all_peers);
      finish(r.announced_to > 0 ? 0 : 1);
    });
  }
  io.run();
  return exit_code;
}
