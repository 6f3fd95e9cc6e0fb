// playhead: the streaming server. `playhead [MAGNET|FILE.torrent ...]` starts the HTTP server and the engine;
// `playhead seed FILE.torrent --data DIR` shares local files (DIR holds the torrent's content, as a download
// folder would). Configuration: defaults, .env, environment, flags (engine/config.hpp; --help lists them).
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

#include "engine/config.hpp"
#include "engine/log.hpp"
#include "engine/session.hpp"
#include "http/api.hpp"
#include "http/engine_backend.hpp"
#include "http/server.hpp"

namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string human_rate(double bytes_per_second) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB/s", bytes_per_second / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ph;
  std::vector<std::string> args(argv + 1, argv + argc);
  ConfigSources sources;
  sources.read_file = read_file;
  sources.getenv = [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
  auto cmd = load_config(args, sources);
  if (!cmd) {
    std::fprintf(stderr, "playhead: %s\n", cmd.error().message.c_str());
    return 2;
  }
  if (cmd->help) {
    std::fputs(help_text("playhead").c_str(), stdout);
    std::fputs("\nSubcommands:\n  playhead seed FILE.torrent --data DIR   seed local files (DIR holds the content)\n",
               stdout);
    return 0;
  }
  if (cmd->version) {
    std::puts("playhead 0.1.0");
    return 0;
  }
  if (const char* level = std::getenv("PLAYHEAD_LOG"); level && std::string_view(level) == "debug") {
    set_log_level(LogLevel::debug);
  }
  Config config = cmd->config;
  std::vector<std::string> positional = cmd->positional;

  // Seed-only mode: disk storage rooted at --data, nothing downloaded.
  bool seed_mode = false;
  engine::SessionOptions options;
  if (!positional.empty() && positional[0] == "seed") {
    seed_mode = true;
    std::vector<std::string> rest;
    std::string data_dir;
    for (std::size_t i = 1; i < positional.size(); ++i) {
      if (positional[i] == "--data" && i + 1 < positional.size()) {
        data_dir = positional[++i];
      } else if (positional[i].rfind("--data=", 0) == 0) {
        data_dir = positional[i].substr(7);
      } else {
        rest.push_back(positional[i]);
      }
    }
    if (rest.size() != 1 || data_dir.empty()) {
      std::fprintf(stderr, "playhead: usage: playhead seed FILE.torrent --data DIR\n");
      return 2;
    }
    positional = rest;
    config.download_dir = data_dir;
    options.torrent.seed_only = true;
  }

  if (auto ok = validate(config); !ok) {
    std::fprintf(stderr, "playhead: %s\n", ok.error().message.c_str());
    return 2;
  }
  if (auto ok = http::check_listen_security(config.http_host, config.api_token); !ok) {
    std::fprintf(stderr, "playhead: %s\n", ok.error().message.c_str());
    return 2;
  }

  log_info("playhead", "playhead 0.1.0 starting with configuration:\n" + config.describe());

  asio::io_context io;
  engine::Session session(io, config, options);
  if (auto ok = session.start(); !ok) {
    std::fprintf(stderr, "playhead: %s\n", ok.error().message.c_str());
    return 1;
  }

  for (const auto& item : positional) {
    Result<engine::AddedTorrent> added = make_error("unrecognised argument");
    if (item.rfind("magnet:", 0) == 0) {
      added = session.add_magnet_uri(item);
    } else {
      auto bytes = read_file(item);
      if (!bytes) {
        std::fprintf(stderr, "playhead: cannot read %s\n", item.c_str());
        return 2;
      }
      added = session.add_torrent_bytes(*bytes);
    }
    if (!added) {
      std::fprintf(stderr, "playhead: %s: %s\n", item.c_str(), added.error().message.c_str());
      return 2;
    }
  }

  http::EngineBackend backend(session);
  http::Api api(backend, {config.api_token, config.cors_origin});
  http::Server server(io, api.handler());
  api.set_server_stats(&server.stats());
  if (!seed_mode || config.http_port != 0) {
    if (auto ok = server.listen(config.http_host, config.http_port); !ok) {
      std::fprintf(stderr, "playhead: %s\n", ok.error().message.c_str());
      return 1;
    }
    log_info("playhead", "HTTP server on http://" + config.http_host + ":" + std::to_string(server.port()) + "/");
  }

  // Periodic one-line status.
  asio::steady_timer status_timer(io);
  std::function<void()> arm_status = [&] {
    status_timer.expires_after(std::chrono::seconds(10));
    status_timer.async_wait([&](const asio::error_code& ec) {
      if (ec) return;
      double down = 0, up = 0;
      std::uint32_t peers = 0;
      for (auto* t : session.torrents()) {
        down += t->download_rate();
        up += t->upload_rate();
        peers += t->peer_count();
      }
      const auto a = session.arena().stats();
      log_info("status", std::to_string(session.torrents().size()) + " torrents, " + std::to_string(peers) +
                             " peers, down " + human_rate(down) + ", up " + human_rate(up) + ", memory " +
                             std::to_string(a.used_bytes >> 20) + "/" + std::to_string(a.capacity_bytes >> 20) +
                             " MiB");
      arm_status();
    });
  };
  arm_status();

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code& ec, int sig) {
    if (ec) return;
    log_info("playhead", std::string("caught ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ", shutting down");
    server.stop();
    status_timer.cancel();
    session.shutdown(std::chrono::seconds(5), [&io] { io.stop(); });
  });

  io.run();
  log_info("playhead", "stopped");
  return 0;
}
