// Tracker vocabulary shared by HTTP and UDP trackers, and the pure HTTP tracker codec (BEP 3, 7, 23, 48):
// tracker URL parsing, announce/scrape URL building with exact percent-encoding of the binary info_hash and peer_id,
// and decoding of announce and scrape responses. No sockets, no clocks: strings in, structs out.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/result.hpp"
#include "net/types.hpp"

namespace ph::tracker {

enum class Event : std::uint8_t { none, completed, started, stopped };  // numbering as in BEP 15

const char* event_name(Event e);                          // "", "completed", "started", "stopped"
std::optional<Event> parse_event(std::string_view name);  // accepts "none" and "" for Event::none

struct AnnounceRequest {
  InfoHash info_hash;
  PeerId peer_id;
  std::uint16_t port = 0;
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
  std::uint64_t left = 0;
  Event event = Event::none;
  std::int32_t numwant = 50;  // -1 lets a UDP tracker choose
  std::uint32_t key = 0;      // identifies us across IP changes; sent as 8 hex digits over HTTP
  std::string tracker_id;     // echoed back when a previous response carried one (HTTP only)
};

struct AnnounceResponse {
  std::optional<std::string> failure_reason;  // set: the tracker refused; nothing else is meaningful
  std::string warning_message;
  std::int64_t interval = 1800;              // seconds until the next regular announce
  std::optional<std::int64_t> min_interval;  // never announce sooner than this
  std::string tracker_id;
  std::optional<std::int64_t> complete;      // seeders
  std::optional<std::int64_t> incomplete;    // leechers
  std::vector<PeerAddress> peers;            // IPv4 and IPv6 together
};

struct ScrapeEntry {
  InfoHash info_hash;
  std::int64_t complete = 0;    // seeders
  std::int64_t downloaded = 0;  // completed downloads ever
  std::int64_t incomplete = 0;  // leechers
};

struct ScrapeResponse {
  std::optional<std::string> failure_reason;
  std::vector<ScrapeEntry> files;
};

struct ResponseLimits {
  std::size_t max_peers = 2000;        // peers kept from one response; the rest are dropped, not an error
  std::size_t max_scrape_files = 1000;
  std::size_t max_string = 1024;       // failure reason / warning / tracker id are cut to this
};

// ---- URLs ---------------------------------------------------------------------------------------------------------

struct Url {
  std::string scheme;  // lowercase: http, https, udp
  std::string host;    // without brackets for IPv6 literals
  std::uint16_t port = 0;
  std::string target;  // path plus query, "/" when empty
  bool host_is_v6_literal = false;

  std::string host_port() const;  // "host:port" or "[v6]:port"
};

// Parses http://, https:// and udp:// URLs. Default ports: 80, 443; udp requires one.
Result<Url> parse_url(std::string_view url);

// Percent-encodes every byte except RFC 3986 unreserved characters (ALPHA / DIGIT / "-" / "." / "_" / "~").
std::string percent_encode(std::string_view bytes);

// The announce URL with the BEP 3 query appended (with '&' when the URL already has a query, e.g. a passkey).
std::string build_announce_url(std::string_view announce_url, const AnnounceRequest& req);

// The /announce -> /scrape convention: the last path component must start with "announce". Error otherwise.
Result<std::string> scrape_url_from_announce(std::string_view announce_url);

// The scrape URL for these info-hashes (announce URL in, convention applied).
Result<std::string> build_scrape_url(std::string_view announce_url, std::span<const InfoHash> hashes);

// ---- Responses ----------------------------------------------------------------------------------------------------

// Decodes an announce response body. A `failure reason` is a successful decode with failure_reason set; malformed
// bencode or missing/ill-typed required keys are errors.
Result<AnnounceResponse> parse_announce_response(std::string_view body, const ResponseLimits& limits = {});

// Decodes a scrape response body (`files` dictionary keyed by raw 20-byte info-hashes).
Result<ScrapeResponse> parse_scrape_response(std::string_view body, const ResponseLimits& limits = {});

// Compact peer lists: 6 bytes per IPv4 peer (BEP 23) or 18 per IPv6 peer (BEP 7), network byte order. Appends to
// `out` up to `max` peers; a length that is not a multiple of the entry size is an error.
Result<void> parse_compact_peers(std::string_view bytes, bool v6, std::vector<PeerAddress>& out,
                                 std::size_t max = 2000);

}  // namespace ph::tracker
