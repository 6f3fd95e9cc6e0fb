#include "net/tracker_http.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "net/bencode.hpp"

namespace ph::tracker {

const char* event_name(Event e) {
  switch (e) {
    case Event::none: return "";
    case Event::completed: return "completed";
    case Event::started: return "started";
    case Event::stopped: return "stopped";
  }
  return "";
}

std::optional<Event> parse_event(std::string_view name) {
  if (name.empty() || name == "none") return Event::none;
  if (name == "started") return Event::started;
  if (name == "completed") return Event::completed;
  if (name == "stopped") return Event::stopped;
  return std::nullopt;
}

// ---- URLs ---------------------------------------------------------------------------------------------------------

std::string Url::host_port() const {
  std::string h = host_is_v6_literal ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

Result<Url> parse_url(std::string_view url) {
  Url u;
  auto sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) return make_error("url has no scheme: " + std::string(url));
  for (char c : url.substr(0, sep)) u.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (u.scheme != "http" && u.scheme != "https" && u.scheme != "udp") {
    return make_error("unsupported url scheme '" + u.scheme + "'");
  }
  std::string_view rest = url.substr(sep + 3);
  auto target_start = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, target_start);
  std::string_view target = target_start == std::string_view::npos ? std::string_view{} : rest.substr(target_start);
  if (auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) authority = authority.substr(at + 1);
  if (authority.empty()) return make_error("url has no host: " + std::string(url));

  std::string_view port_text;
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return make_error("unterminated IPv6 literal in url");
    u.host = std::string(authority.substr(1, close - 1));
    u.host_is_v6_literal = true;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return make_error("junk after IPv6 literal in url");
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (u.host.empty()) return make_error("url has no host: " + std::string(url));
  if (!port_text.empty()) {
    unsigned port = 0;
    if (port_text.size() > 5) return make_error("bad port in url");
    for (char c : port_text) {
      if (c < '0' || c > '9') return make_error("bad port in url");
      port = port * 10 + static_cast<unsigned>(c - '0');
    }
    if (port == 0 || port > 65535) return make_error("port out of range in url");
    u.port = static_cast<std::uint16_t>(port);
  } else if (u.scheme == "http") {
    u.port = 80;
  } else if (u.scheme == "https") {
    u.port = 443;
  } else {
    return make_error("udp tracker url needs a port");
  }
  u.target = target.empty() || target.front() != '/' ? "/" + std::string(target) : std::string(target);
  return u;
}

std::string percent_encode(std::string_view bytes) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size() * 3);
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string build_announce_url(std::string_view announce_url, const AnnounceRequest& req) {
  std::string url(announce_url);
  if (auto hash = url.find('#'); hash != std::string::npos) url.resize(hash);
  url += url.find('?') == std::string::npos ? '?' : '&';
  url += "info_hash=" + percent_encode(req.info_hash.view());
  url += "&peer_id=" + percent_encode(req.peer_id.view());
  url += "&port=" + std::to_string(req.port);
  url += "&uploaded=" + std::to_string(req.uploaded);
  url += "&downloaded=" + std::to_string(req.downloaded);
  url += "&left=" + std::to_string(req.left);
  url += "&compact=1";
  if (req.event != Event::none) url += std::string("&event=") + event_name(req.event);
  if (req.numwant >= 0) url += "&numwant=" + std::to_string(req.numwant);
  char key[9];
  std::snprintf(key, sizeof key, "%08x", static_cast<unsigned>(req.key));
  url += "&key=";
  url += key;
  if (!req.tracker_id.empty()) url += "&trackerid=" + percent_encode(req.tracker_id);
  return url;
}

Result<std::string> scrape_url_from_announce(std::string_view announce_url) {
  auto query = announce_url.find('?');
  std::string_view path = announce_url.substr(0, query);
  auto slash = path.rfind('/');
  auto scheme_end = path.find("://");
  if (slash == std::string_view::npos || (scheme_end != std::string_view::npos && slash < scheme_end + 3)) {
    return make_error("announce url has no path, so it has no scrape url");
  }
  std::string_view last = path.substr(slash + 1);
  if (last.substr(0, 8) != "announce") {
    return make_error("announce url's last path component does not start with 'announce', so it has no scrape url");
  }
  std::string out(announce_url.substr(0, slash + 1));
  out += "scrape";
  out += last.substr(8);
  if (query != std::string_view::npos) out += announce_url.substr(query);
  return out;
}

Result<std::string> build_scrape_url(std::string_view announce_url, std::span<const InfoHash> hashes) {
  auto base = scrape_url_from_announce(announce_url);
  if (!base) return base.error();
  std::string url = std::move(base.value());
  bool has_query = url.find('?') != std::string::npos;
  for (const auto& h : hashes) {
    url += has_query ? '&' : '?';
    has_query = true;
    url += "info_hash=" + percent_encode(h.view());
  }
  return url;
}

// ---- Responses ----------------------------------------------------------------------------------------------------

namespace {

bencode::DecodeLimits response_decode_limits() {
  bencode::DecodeLimits l;
  l.max_depth = 16;
  l.max_tokens = 200'000;
  l.require_sorted_keys = false;  // several deployed trackers emit unsorted dictionaries; we only read them
  return l;
}

std::string clip(std::string_view s, std::size_t max) { return std::string(s.substr(0, max)); }

void parse_dict_peers(bencode::Node list, std::vector<PeerAddress>& out, std::size_t max) {
  for (auto entry : list.list()) {
    if (out.size() >= max) return;
    if (!entry.is_dict()) continue;
    auto ip = entry.find_string("ip");
    auto port = entry.find_int("port");
    if (!ip || !port || *port <= 0 || *port > 65535) continue;
    PeerAddress a;
    a.port = static_cast<std::uint16_t>(*port);
    std::string text(*ip);
    if (inet_pton(AF_INET, text.c_str(), a.ip.data()) == 1) {
      a.v6 = false;
    } else if (inet_pton(AF_INET6, text.c_str(), a.ip.data()) == 1) {
      a.v6 = true;
    } else {
      continue;  // a DNS name: resolving is not a codec's business, and trackers almost never send them
    }
    out.push_back(a);
  }
}

}  // namespace

Result<void> parse_compact_peers(std::string_view bytes, bool v6, std::vector<PeerAddress>& out, std::size_t max) {
  const std::size_t entry = v6 ? 18 : 6;
  if (bytes.size() % entry != 0) {
    return make_error(std::string(v6 ? "peers6" : "peers") + " length " + std::to_string(bytes.size()) +
                      " is not a multiple of " + std::to_string(entry));
  }
  for (std::size_t off = 0; off + entry <= bytes.size() && out.size() < max; off += entry) {
    PeerAddress a;
    a.v6 = v6;
    const std::size_t ip_len = v6 ? 16 : 4;
    for (std::size_t i = 0; i < ip_len; ++i) a.ip[i] = static_cast<std::uint8_t>(bytes[off + i]);
    a.port = static_cast<std::uint16_t>(static_cast<std::uint8_t>(bytes[off + ip_len]) << 8 |
                                        static_cast<std::uint8_t>(bytes[off + ip_len + 1]));
    if (a.port == 0) continue;  // nobody listens on port 0
    out.push_back(a);
  }
  return {};
}

Result<AnnounceResponse> parse_announce_response(std::string_view body, const ResponseLimits& limits) {
  auto doc = bencode::decode(body, response_decode_limits());
  if (!doc) return make_error("malformed announce response: " + doc.error().message);
  auto root = doc->root();
  if (!root.is_dict()) return make_error("announce response is not a dictionary");
  AnnounceResponse r;
  if (auto failure = root.find_string("failure reason")) {
    r.failure_reason = clip(*failure, limits.max_string);
    return r;
  }
  if (auto w = root.find_string("warning message")) r.warning_message = clip(*w, limits.max_string);
  auto interval = root.find_int("interval");
  if (!interval) return make_error("announce response has no integer 'interval'");
  if (*interval < 0) return make_error("announce response has a negative interval");
  r.interval = *interval;
  if (auto mi = root.find_int("min interval"); mi && *mi >= 0) r.min_interval = *mi;
  if (auto id = root.find_string("tracker id")) r.tracker_id = clip(*id, limits.max_string);
  if (auto c = root.find_int("complete"); c && *c >= 0) r.complete = *c;
  if (auto i = root.find_int("incomplete"); i && *i >= 0) r.incomplete = *i;

  auto peers = root.find("peers");
  if (peers.is_string()) {
    if (auto ok = parse_compact_peers(peers.as_string(), false, r.peers, limits.max_peers); !ok) return ok.error();
  } else if (peers.is_list()) {
    parse_dict_peers(peers, r.peers, limits.max_peers);
  } else if (peers) {
    return make_error("announce response 'peers' is neither a string nor a list");
  }
  auto peers6 = root.find("peers6");
  if (peers6.is_string()) {
    if (auto ok = parse_compact_peers(peers6.as_string(), true, r.peers, limits.max_peers); !ok) return ok.error();
  } else if (peers6.is_list()) {
    parse_dict_peers(peers6, r.peers, limits.max_peers);
  }
  if (!peers && !peers6) return make_error("announce response has neither 'peers' nor 'peers6'");
  return r;
}

Result<ScrapeResponse> parse_scrape_response(std::string_view body, const ResponseLimits& limits) {
  auto doc = bencode::decode(body, response_decode_limits());
  if (!doc) return make_error("malformed scrape response: " + doc.error().message);
  auto root = doc->root();
  if (!root.is_dict()) return make_error("scrape response is not a dictionary");
  ScrapeResponse r;
  if (auto failure = root.find_string("failure reason")) {
    r.failure_reason = clip(*failure, limits.max_string);
    return r;
  }
  auto files = root.find_dict("files");
  if (!files) return make_error("scrape response has no 'files' dictionary");
  for (auto [key, value] : files.dict()) {
    if (r.files.size() >= limits.max_scrape_files) break;
    if (key.size() != 20 || !value.is_dict()) continue;
    ScrapeEntry e;
    e.info_hash = InfoHash::from_bytes(key);
    e.complete = value.find_int("complete").value_or(0);
    e.downloaded = value.find_int("downloaded").value_or(0);
    e.incomplete = value.find_int("incomplete").value_or(0);
    r.files.push_back(e);
  }
  return r;
}

}  // namespace ph::tracker
