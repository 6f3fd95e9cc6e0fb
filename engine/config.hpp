// Playhead's configuration, pure: built-in defaults, a .env parser (comments, quotes, `export` prefix), the process
// environment and command-line flags, applied in that order (later wins), with sizes like 512MiB and clear errors
// for invalid values. No I/O here: the caller hands in the .env text and the environment, so it is all testable.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/result.hpp"

namespace ph {

enum class StorageMode { memory, disk };

struct Config {
  StorageMode storage_mode = StorageMode::memory;
  bool pause_on_video_pause = true;
  std::uint64_t memory_limit = 512ull << 20;
  std::uint64_t readahead = 32ull << 20;
  std::string download_dir = "downloads";
  std::uint16_t peer_port = 6881;
  bool dht = true;
  std::vector<std::string> dht_bootstrap = {"router.bittorrent.com:6881", "dht.transmissionbt.com:6881",
                                            "router.utorrent.com:6881"};
  std::string http_host = "127.0.0.1";
  std::uint16_t http_port = 8080;
  std::string api_token;    // empty: /api is open (only allowed on loopback)
  std::string cors_origin;  // empty: no CORS headers at all

  // One line per setting, the token redacted: what the server logs at start.
  std::string describe() const;
};

// A .env file as ordered key/value pairs. Accepts `KEY=value`, `export KEY=value`, blank lines, `#` comments (whole
// line, or after unquoted values when preceded by whitespace), single quotes (literal) and double quotes (with \n,
// \t, \", \\ escapes). A malformed line is an error naming its line number.
Result<std::vector<std::pair<std::string, std::string>>> parse_env_file(std::string_view text);

// "512MiB", "1GiB", "500MB", "64k", "1048576": binary (KiB/MiB/GiB/TiB, K/M/G/T) and decimal (KB/MB/GB/TB) units,
// case-insensitive, optional space before the unit. Overflow and garbage are errors.
Result<std::uint64_t> parse_size(std::string_view text);

Result<bool> parse_bool(std::string_view text);  // true/false, 1/0, yes/no, on/off

// Sets one variable (e.g. "TORRENT_MEMORY_LIMIT") from its text. Unknown names are an error here; callers that read
// the whole environment only pass the names listed in config_variables().
Result<void> apply_setting(Config& config, std::string_view name, std::string_view value);

// Every variable Playhead reads, with its flag spelling and help line.
struct VariableSpec {
  std::string_view name;  // TORRENT_MEMORY_LIMIT
  std::string_view flag;  // --memory-limit
  std::string_view meaning;
};
const std::vector<VariableSpec>& config_variables();

// Cross-field checks: limits that make no sense together, ports, the readahead fitting in the memory budget.
Result<void> validate(const Config& config);

struct CommandLine {
  Config config;
  std::vector<std::string> positional;  // magnets, .torrent paths, subcommands ("seed") and their arguments
  bool help = false;
  bool version = false;
  std::optional<std::string> env_file;  // --env-file PATH, when given
};

struct ConfigSources {
  // Reads the .env file: nullopt when it does not exist (fine for the default ./.env, an error for --env-file).
  std::function<std::optional<std::string>(const std::string& path)> read_file;
  // The process environment; only config_variables() names are looked up.
  std::function<std::optional<std::string>(std::string_view name)> getenv;
};

// Defaults, then .env (./.env or --env-file), then the environment, then flags (`--memory-limit 1GiB` or
// `--memory-limit=1GiB`). Flags not of ours that follow a positional (e.g. `seed FILE --data PATH`) are kept in
// `positional` for the subcommand. Returns the first error with the source named (".env line 3: ...").
Result<CommandLine> load_config(const std::vector<std::string>& args, const ConfigSources& sources);

std::string help_text(std::string_view program = "playhead");

}  // namespace ph
