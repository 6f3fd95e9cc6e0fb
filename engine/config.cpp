// Configuration loading; see config.hpp for the order of sources and the accepted syntax.
#include "engine/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "net/text.hpp"

namespace ph {
namespace {

std::string_view trim(std::string_view s) { return text::trim(s, " \t\n\v\f\r"); }

bool valid_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

Result<std::uint16_t> parse_port(std::string_view text) {
  const auto t = trim(text);
  unsigned v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc{} || p != t.data() + t.size() || v > 65535) {
    return make_error("'" + std::string(text) + "' is not a port number (0-65535)");
  }
  return static_cast<std::uint16_t>(v);
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto item = trim(text.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

std::string format_size(std::uint64_t v) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (u < 4 && v >= 1024 && v % 1024 == 0) {
    v /= 1024;
    ++u;
  }
  return std::to_string(v) + units[u];
}

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> parse_env_file(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t line_no = 0;
  while (!text.empty() || line_no == 0) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto err = [&](const std::string& what) { return make_error("line " + std::to_string(line_no) + ": " + what); };

    line = trim(line);
    if (line.empty() || line.front() == '#') {
      if (text.empty()) break;
      continue;
    }
    if (line.starts_with("export") && line.size() > 6 && (line[6] == ' ' || line[6] == '\t')) {
      line = trim(line.substr(6));
    }
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) return err("expected KEY=value");
    const auto key = trim(line.substr(0, eq));
    if (!valid_name(key)) return err("'" + std::string(key) + "' is not a variable name");
    std::string_view raw = trim(line.substr(eq + 1));
    std::string value;
    if (!raw.empty() && (raw.front() == '"' || raw.front() == '\'')) {
      const char q = raw.front();
      std::size_t i = 1;
      bool closed = false;
      for (; i < raw.size(); ++i) {
        char c = raw[i];
        if (c == q) {
          closed = true;
          break;
        }
        if (q == '"' && c == '\\' && i + 1 < raw.size()) {
          const char n = raw[++i];
          switch (n) {
            case 'n': value += '\n'; break;
            case 't': value += '\t'; break;
            case 'r': value += '\r'; break;
            default: value += n; break;  // \" \\ \$ and anything else: the character itself
          }
          continue;
        }
        value += c;
      }
      if (!closed) return err("unterminated quote");
      const auto after = trim(raw.substr(i + 1));
      if (!after.empty() && after.front() != '#') return err("unexpected text after the closing quote");
    } else {
      // An unquoted value ends at a '#' that follows whitespace (a trailing comment); "a#b" keeps its '#'.
      std::size_t end = raw.size();
      for (std::size_t i = 1; i < raw.size(); ++i) {
        if (raw[i] == '#' && (raw[i - 1] == ' ' || raw[i - 1] == '\t')) {
          end = i;
          break;
        }
      }
      value = std::string(trim(raw.substr(0, end)));
    }
    out.emplace_back(std::string(key), std::move(value));
    if (text.empty()) break;
  }
  return out;
}

Result<std::uint64_t> parse_size(std::string_view text) {
  const auto t = trim(text);
  std::size_t i = 0;
  std::uint64_t n = 0;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) {
    const auto d = static_cast<std::uint64_t>(t[i] - '0');
    if (n > (~std::uint64_t{0} - d) / 10) return make_error("size '" + std::string(text) + "' is too large");
    n = n * 10 + d;
    ++i;
  }
  if (i == 0) {
    return make_error("'" + std::string(text) + "' is not a size (expected a number with an optional unit such as "
                      "512MiB, 1GiB or 500MB)");
  }
  const std::string unit = text::ascii_lower(trim(t.substr(i)));
  std::uint64_t mult = 0;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kib") mult = 1ull << 10;
  else if (unit == "m" || unit == "mib") mult = 1ull << 20;
  else if (unit == "g" || unit == "gib") mult = 1ull << 30;
  else if (unit == "t" || unit == "tib") mult = 1ull << 40;
  else if (unit == "kb") mult = 1000ull;
  else if (unit == "mb") mult = 1000ull * 1000;
  else if (unit == "gb") mult = 1000ull * 1000 * 1000;
  else if (unit == "tb") mult = 1000ull * 1000 * 1000 * 1000;
  else return make_error("'" + std::string(text) + "' has an unknown size unit (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)");
  if (n != 0 && mult > ~std::uint64_t{0} / n) return make_error("size '" + std::string(text) + "' is too large");
  return n * mult;
}

Result<bool> parse_bool(std::string_view text) {
  const auto t = text::ascii_lower(trim(text));
  if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "0" || t == "no" || t == "off") return false;
  return make_error("'" + std::string(text) + "' is not a boolean (true/false, 1/0, yes/no, on/off)");
}

const std::vector<VariableSpec>& config_variables() {
  static const std::vector<VariableSpec> vars = {
      {"TORRENT_STORAGE_MODE", "--storage-mode", "memory or disk (default memory)"},
      {"TORRENT_PAUSE_ON_VIDEO_PAUSE", "--pause-on-video-pause", "pause the download when the player pauses (default true)"},
      {"TORRENT_MEMORY_LIMIT", "--memory-limit", "piece memory budget, all torrents together (default 512MiB)"},
      {"TORRENT_READAHEAD", "--readahead", "readahead window past each playhead (default 32MiB)"},
      {"TORRENT_DOWNLOAD_DIR", "--download-dir", "where disk mode writes (default downloads)"},
      {"TORRENT_PEER_PORT", "--peer-port", "peer wire TCP and DHT UDP port (default 6881)"},
      {"TORRENT_DHT", "--dht", "run the DHT node (default true)"},
      {"TORRENT_DHT_BOOTSTRAP", "--dht-bootstrap", "comma-separated host:port DHT routers (default: public routers)"},
      {"HTTP_HOST", "--http-host", "address the HTTP server binds (default 127.0.0.1)"},
      {"HTTP_PORT", "--http-port", "HTTP port (default 8080)"},
      {"API_TOKEN", "--api-token", "bearer token required on /api; mandatory when HTTP_HOST is not loopback"},
      {"HTTP_CORS_ORIGIN", "--cors-origin", "the one origin allowed by CORS (default none)"},
  };
  return vars;
}

Result<void> apply_setting(Config& c, std::string_view name, std::string_view value) {
  auto fail = [&](const Error& e) { return make_error(std::string(name) + ": " + e.message); };
  if (name == "TORRENT_STORAGE_MODE") {
    const auto v = text::ascii_lower(trim(value));
    if (v == "memory") c.storage_mode = StorageMode::memory;
    else if (v == "disk") c.storage_mode = StorageMode::disk;
    else return make_error(std::string(name) + ": '" + std::string(value) + "' is not a storage mode (memory or disk)");
  } else if (name == "TORRENT_PAUSE_ON_VIDEO_PAUSE" || name == "TORRENT_DHT") {
    auto b = parse_bool(value);
    if (!b) return fail(b.error());
    (name == "TORRENT_DHT" ? c.dht : c.pause_on_video_pause) = *b;
  } else if (name == "TORRENT_MEMORY_LIMIT" || name == "TORRENT_READAHEAD") {
    auto s = parse_size(value);
    if (!s) return fail(s.error());
    (name == "TORRENT_READAHEAD" ? c.readahead : c.memory_limit) = *s;
  } else if (name == "TORRENT_DOWNLOAD_DIR") {
    if (trim(value).empty()) return make_error(std::string(name) + ": must not be empty");
    c.download_dir = std::string(trim(value));
  } else if (name == "TORRENT_PEER_PORT" || name == "HTTP_PORT") {
    auto p = parse_port(value);
    if (!p) return fail(p.error());
    (name == "HTTP_PORT" ? c.http_port : c.peer_port) = *p;
  } else if (name == "TORRENT_DHT_BOOTSTRAP") {
    c.dht_bootstrap = split_list(value);
  } else if (name == "HTTP_HOST") {
    if (trim(value).empty()) return make_error(std::string(name) + ": must not be empty");
    c.http_host = std::string(trim(value));
  } else if (name == "API_TOKEN") {
    c.api_token = std::string(value);
  } else if (name == "HTTP_CORS_ORIGIN") {
    c.cors_origin = std::string(trim(value));
  } else {
    return make_error("unknown setting " + std::string(name));
  }
  return {};
}

Result<void> validate(const Config& c) {
  if (c.storage_mode == StorageMode::memory && c.memory_limit < (16ull << 20)) {
    return make_error("TORRENT_MEMORY_LIMIT: " + format_size(c.memory_limit) + " is too small (at least 16MiB)");
  }
  if (c.readahead < (1ull << 20)) {
    return make_error("TORRENT_READAHEAD: " + format_size(c.readahead) + " is too small (at least 1MiB)");
  }
  if (c.storage_mode == StorageMode::memory && c.readahead > c.memory_limit) {
    return make_error("TORRENT_READAHEAD (" + format_size(c.readahead) + ") must not exceed TORRENT_MEMORY_LIMIT (" +
                      format_size(c.memory_limit) + ")");
  }
  if (c.http_port == 0) return make_error("HTTP_PORT: 0 is not allowed");
  for (const auto& b : c.dht_bootstrap) {
    const auto colon = b.rfind(':');
    if (colon == std::string::npos || colon == 0 || !parse_port(std::string_view(b).substr(colon + 1))) {
      return make_error("TORRENT_DHT_BOOTSTRAP: '" + b + "' is not host:port");
    }
  }
  for (char ch : c.api_token) {
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f) {
      return make_error("API_TOKEN: must not contain spaces or control characters");
    }
  }
  return {};
}

std::string Config::describe() const {
  std::string out;
  auto line = [&](std::string_view k, const std::string& v) { out += std::string(k) + "=" + v + "\n"; };
  line("TORRENT_STORAGE_MODE", storage_mode == StorageMode::memory ? "memory" : "disk");
  line("TORRENT_PAUSE_ON_VIDEO_PAUSE", pause_on_video_pause ? "true" : "false");
  line("TORRENT_MEMORY_LIMIT", format_size(memory_limit));
  line("TORRENT_READAHEAD", format_size(readahead));
  line("TORRENT_DOWNLOAD_DIR", download_dir);
  line("TORRENT_PEER_PORT", std::to_string(peer_port));
  line("TORRENT_DHT", dht ? "true" : "false");
  std::string boot;
  for (const auto& b : dht_bootstrap) boot += (boot.empty() ? "" : ",") + b;
  line("TORRENT_DHT_BOOTSTRAP", boot);
  line("HTTP_HOST", http_host);
  line("HTTP_PORT", std::to_string(http_port));
  line("API_TOKEN", api_token.empty() ? "(none)" : "(set)");
  line("HTTP_CORS_ORIGIN", cors_origin.empty() ? "(none)" : cors_origin);
  return out;
}

Result<CommandLine> load_config(const std::vector<std::string>& args, const ConfigSources& sources) {
  CommandLine cl;
  const auto& vars = config_variables();

  // First pass: only --env-file, --help and --version, which decide what else is read.
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--env-file") {
      if (i + 1 >= args.size()) return make_error("--env-file needs a path");
      cl.env_file = args[++i];
    } else if (a.starts_with("--env-file=")) {
      cl.env_file = a.substr(11);
    } else if (a == "--help" || a == "-h") {
      cl.help = true;
    } else if (a == "--version" || a == "-V") {
      cl.version = true;
    }
  }

  const std::string env_path = cl.env_file.value_or(".env");
  std::optional<std::string> env_text = sources.read_file ? sources.read_file(env_path) : std::nullopt;
  if (!env_text && cl.env_file) return make_error("--env-file " + env_path + ": cannot read the file");
  if (env_text) {
    auto entries = parse_env_file(*env_text);
    if (!entries) return make_error(env_path + " " + entries.error().message);
    for (const auto& entry : *entries) {
      const std::string& k = entry.first;
      const std::string& v = entry.second;
      const bool ours = std::any_of(vars.begin(), vars.end(), [&](const VariableSpec& s) { return s.name == k; });
      if (!ours) continue;  // a shared .env may hold other programs' variables
      if (auto r = apply_setting(cl.config, k, v); !r) return make_error(env_path + ": " + r.error().message);
    }
  }

  if (sources.getenv) {
    for (const auto& spec : vars) {
      if (auto v = sources.getenv(spec.name)) {
        if (auto r = apply_setting(cl.config, spec.name, *v); !r) {
          return make_error("environment: " + r.error().message);
        }
      }
    }
  }

  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--env-file") {
      ++i;
      continue;
    }
    if (a.starts_with("--env-file=") || a == "--help" || a == "-h" || a == "--version" || a == "-V") continue;
    if (!a.starts_with("-") || a == "-") {
      cl.positional.push_back(a);
      continue;
    }
    const auto eq = a.find('=');
    const std::string flag = a.substr(0, eq);
    const auto spec = std::find_if(vars.begin(), vars.end(), [&](const VariableSpec& s) { return s.flag == flag; });
    if (spec == vars.end()) {
      if (!cl.positional.empty()) {  // a subcommand's own flag, e.g. `seed FILE --data PATH`
        cl.positional.push_back(a);
        continue;
      }
      return make_error("unknown option " + flag + " (see --help)");
    }
    std::string value;
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
    } else {
      if (i + 1 >= args.size()) return make_error(flag + " needs a value");
      value = args[++i];
    }
    if (auto r = apply_setting(cl.config, spec->name, value); !r) return make_error(flag + ": " + r.error().message);
  }

  if (auto r = validate(cl.config); !r) return r.error();
  return cl;
}

std::string help_text(std::string_view program) {
  std::string out = "usage: " + std::string(program) + " [OPTIONS] [MAGNET|FILE.torrent ...]\n" +
                    "       " + std::string(program) + " seed FILE.torrent --data PATH\n\n" +
                    "Streams video from torrents over HTTP while they download.\n\n"
                    "Settings are read in this order, later wins: defaults, .env in the working directory (or\n"
                    "--env-file PATH), the environment, the flags below. Sizes accept B, KiB, MiB, GiB, KB, MB, GB.\n\n";
  for (const auto& v : config_variables()) {
    std::string flag = "  " + std::string(v.flag) + " VALUE";
    flag.resize(std::max<std::size_t>(flag.size() + 1, 30), ' ');
    out += flag + std::string(v.name) + ": " + std::string(v.meaning) + "\n";
  }
  out += "  --env-file PATH             read settings from PATH instead of ./.env\n"
         "  --help                      this text\n"
         "  --version                   print the version\n";
  return out;
}

}  // namespace ph
