// bt-inspect: shows what a .torrent file or a magnet link contains (human-readable, or --json for scripts), and
// pretty-prints any bencoded file with --bencode. Every malformed input ends in one clear error line and exit 1.
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "net/bencode.hpp"
#include "net/magnet.hpp"
#include "net/metainfo.hpp"

namespace {

using ph::Result;
using json = nlohmann::json;

constexpr std::uint64_t kMaxInputBytes = 64ull << 20;  // same bound as MetainfoLimits::max_file_bytes

void usage(std::FILE* to) {
  std::fputs(
      "usage: bt-inspect [--json] [--pieces] FILE.torrent|MAGNET\n"
      "       bt-inspect --bencode FILE\n"
      "  FILE may also be a text file holding a magnet link.\n"
      "  --json     machine-readable output\n"
      "  --pieces   also list the SHA-1 of every piece\n"
      "  --bencode  pretty-print any bencoded file (strings as text when printable, hex otherwise)\n",
      to);
}

Result<std::string> read_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ph::make_error(path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return ph::make_error(path + ": not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > kMaxInputBytes) {
    return ph::make_error(path + ": " + std::to_string(st.st_size) + " bytes is larger than the limit of " +
                          std::to_string(kMaxInputBytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return ph::make_error(path + ": cannot open");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return ph::make_error(path + ": read error");
  return data;
}

std::string human_size(std::uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[64];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.2f %s (%llu bytes)", v, units[u], static_cast<unsigned long long>(bytes));
  }
  return buf;
}

// Text from a torrent goes to a terminal: control bytes could move the cursor or retitle the window.
std::string safe(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

// Torrent strings are not guaranteed UTF-8: replace invalid sequences instead of failing the dump.
std::string dump(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace); }

int show_torrent(const ph::Metainfo& m, bool as_json, bool pieces) {
  if (as_json) {
    json j;
    j["type"] = "torrent";
    j["infoHash"] = m.info_hash.hex();
    j["name"] = m.name;
    j["totalLength"] = m.total_length;
    j["pieceLength"] = m.piece_length;
    j["pieceCount"] = m.piece_count();
    j["private"] = m.is_private;
    j["multiFile"] = m.multi_file;
    json files = json::array();
    for (std::size_t i = 0; i < m.files.size(); ++i) {
      const auto& f = m.files[i];
      files.push_back({{"index", i}, {"path", f.path_string()}, {"length", f.length}, {"offset", f.offset},
                       {"pad", f.pad}, {"executable", f.executable}, {"hidden", f.hidden}});
    }
    j["files"] = files;
    j["trackers"] = m.trackers;
    j["webSeeds"] = m.web_seeds;
    j["comment"] = m.comment;
    j["createdBy"] = m.created_by;
    j["creationDate"] = m.creation_date;
    ph::Magnet mag;
    mag.info_hash = m.info_hash;
    mag.display_name = m.name;
    for (const auto& tier : m.trackers) mag.trackers.insert(mag.trackers.end(), tier.begin(), tier.end());
    j["magnet"] = ph::to_magnet_uri(mag);
    if (pieces) {
      json p = json::array();
      for (ph::PieceIndex i = 0; i < m.piece_count(); ++i) p.push_back(m.piece_hash(i).hex());
      j["pieces"] = p;
    }
    std::puts(dump(j).c_str());
    return 0;
  }
  std::printf("info-hash:    %s\n", m.info_hash.hex().c_str());
  std::printf("name:         %s\n", m.name.c_str());
  std::printf("total size:   %s\n", human_size(m.total_length).c_str());
  std::printf("piece length: %s\n", human_size(m.piece_length).c_str());
  std::printf("pieces:       %u\n", m.piece_count());
  std::printf("private:      %s\n", m.is_private ? "yes" : "no");
  if (!m.created_by.empty()) std::printf("created by:   %s\n", safe(m.created_by).c_str());
  if (m.creation_date != 0) std::printf("created:      %lld (unix time)\n", static_cast<long long>(m.creation_date));
  if (!m.comment.empty()) std::printf("comment:      %s\n", safe(m.comment).c_str());
  std::printf("files (%zu):\n", m.files.size());
  for (std::size_t i = 0; i < m.files.size(); ++i) {
    const auto& f = m.files[i];
    std::printf("  %4zu  %14llu  %s%s\n", i, static_cast<unsigned long long>(f.length), f.path_string().c_str(),
                f.pad ? "  [padding]" : "");
  }
  std::printf("trackers (%zu tiers):\n", m.trackers.size());
  for (std::size_t t = 0; t < m.trackers.size(); ++t) {
    for (const auto& url : m.trackers[t]) std::printf("  tier %zu: %s\n", t, safe(url).c_str());
  }
  std::printf("web seeds (%zu):\n", m.web_seeds.size());
  for (const auto& w : m.web_seeds) std::printf("  %s\n", safe(w).c_str());
  if (pieces) {
    std::printf("piece hashes:\n");
    for (ph::PieceIndex i = 0; i < m.piece_count(); ++i) {
      std::printf("  %6u  %s  %u bytes\n", i, m.piece_hash(i).hex().c_str(), m.piece_size(i));
    }
  }
  return 0;
}

int show_magnet(const ph::Magnet& m, bool as_json) {
  if (as_json) {
    json j;
    j["type"] = "magnet";
    j["infoHash"] = m.info_hash.hex();
    j["name"] = m.display_name;
    j["trackers"] = m.trackers;
    j["webSeeds"] = m.web_seeds;
    json peers = json::array();
    for (const auto& p : m.peers) peers.push_back(p.to_string());
    j["peers"] = peers;
    json so = json::array();
    for (auto [a, b] : m.select_only) so.push_back({a, b});
    j["selectOnly"] = so;
    j["magnet"] = ph::to_magnet_uri(m);
    std::puts(dump(j).c_str());
    return 0;
  }
  std::printf("info-hash:    %s\n", m.info_hash.hex().c_str());
  std::printf("name:         %s\n", m.display_name.empty() ? "(none given)" : safe(m.display_name).c_str());
  std::printf("size:         unknown until the metadata is fetched (BEP 9)\n");
  std::printf("trackers (%zu):\n", m.trackers.size());
  for (const auto& t : m.trackers) std::printf("  %s\n", safe(t).c_str());
  std::printf("web seeds (%zu):\n", m.web_seeds.size());
  for (const auto& w : m.web_seeds) std::printf("  %s\n", safe(w).c_str());
  std::printf("peers (%zu):\n", m.peers.size());
  for (const auto& p : m.peers) std::printf("  %s\n", p.to_string().c_str());
  if (!m.select_only.empty()) {
    std::printf("selected files:");
    for (auto [a, b] : m.select_only) {
      if (a == b) {
        std::printf(" %u", a);
      } else {
        std::printf(" %u-%u", a, b);
      }
    }
    std::printf("\n");
  }
  return 0;
}

int fail(const std::string& what) {
  std::fprintf(stderr, "bt-inspect: %s\n", safe(what).c_str());
  return 1;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  bool as_json = false;
  bool pieces = false;
  bool bencode_mode = false;
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--json") {
      as_json = true;
    } else if (a == "--pieces") {
      pieces = true;
    } else if (a == "--bencode") {
      bencode_mode = true;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a.size() > 1 && a[0] == '-' && a.substr(0, 7) != "magnet:") {
      usage(stderr);
      return fail("unknown option " + std::string(a));
    } else {
      inputs.emplace_back(a);
    }
  }
  if (inputs.size() != 1) {
    usage(stderr);
    return 2;
  }
  const std::string& input = inputs.front();

  if (input.rfind("magnet:", 0) == 0 && !bencode_mode) {
    auto m = ph::parse_magnet(input);
    if (!m) return fail(m.error().message);
    return show_magnet(*m, as_json);
  }

  auto data = read_file(input);
  if (!data) return fail(data.error().message);

  if (bencode_mode) {
    ph::bencode::DecodeLimits limits;
    limits.require_sorted_keys = false;  // a debugging view should show what is there, sorted or not
    auto doc = ph::bencode::decode(*data, limits);
    if (!doc) return fail(input + ": " + doc.error().message);
    std::puts(ph::bencode::to_debug_string(doc->root()).c_str());
    return 0;
  }

  // A text file holding a magnet link is inspected as that link.
  if (std::string_view t = trim(*data); t.rfind("magnet:", 0) == 0) {
    auto m = ph::parse_magnet(t);
    if (!m) return fail(input + ": " + m.error().message);
    return show_magnet(*m, as_json);
  }

  auto m = ph::parse_metainfo(*data);
  if (!m) return fail(input + ": " + m.error().message);
  return show_torrent(*m, as_json, pieces);
}
