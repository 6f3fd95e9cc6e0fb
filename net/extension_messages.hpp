// Payloads carried inside BEP 10 extended messages: the extension handshake (BEP 10, with BEP 21 upload_only and
// BEP 9 metadata_size), ut_metadata (BEP 9) with a metadata assembler that verifies the info-hash, ut_pex (BEP 11)
// and lt_donthave (BEP 54). Pure codecs over the payload bytes after the extended-id byte; all counts are bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/result.hpp"
#include "net/types.hpp"

namespace ph::wire {

// Extension names as they appear in the handshake's `m` dictionary.
inline constexpr std::string_view kUtMetadata = "ut_metadata";
inline constexpr std::string_view kUtPex = "ut_pex";
inline constexpr std::string_view kLtDonthave = "lt_donthave";

// The ids we assign to extensions in our own `m` (peers send us messages with these ids).
inline constexpr std::uint8_t kOurUtPexId = 1;
inline constexpr std::uint8_t kOurUtMetadataId = 2;
inline constexpr std::uint8_t kOurLtDonthaveId = 3;

inline constexpr std::uint32_t kMetadataPieceSize = 16 * 1024;  // BEP 9

struct ExtensionHandshakeLimits {
  std::size_t max_extensions = 64;                // entries in `m`
  std::size_t max_client_name = 256;              // bytes of `v`
  std::uint64_t max_metadata_size = 64ull << 20;  // larger metadata_size values are treated as absent
};

struct ExtensionHandshake {
  std::map<std::string, std::uint8_t, std::less<>> m;  // extension name -> the sender's id for it (0 = disabled)
  std::string client;                                  // v
  std::optional<std::uint16_t> listen_port;            // p: the sender's TCP listen port
  std::optional<std::uint32_t> reqq;                   // outstanding requests the sender accepts
  std::optional<std::uint64_t> metadata_size;          // BEP 9: size of the info dictionary
  std::optional<PeerAddress> yourip;                   // our address as the sender sees it (port 0)
  std::optional<bool> upload_only;                     // BEP 21: sender only uploads (seeding or paused)

  // The id to use when sending extension `name` to this peer; 0 if the peer does not support it.
  std::uint8_t id_of(std::string_view name) const;
};

// Decodes the bencoded dictionary of an extended message with id 0. Unknown keys are ignored; wrongly typed known
// keys are ignored too (real clients disagree on details), but a payload that is not a dict is an error.
Result<ExtensionHandshake> parse_extension_handshake(std::string_view payload, const ExtensionHandshakeLimits& limits = {});
std::string encode_extension_handshake(const ExtensionHandshake& h);

// ---- BEP 9 ut_metadata ----------------------------------------------------------------------------------------

enum class MetadataMsgType : std::uint8_t { request = 0, data = 1, reject = 2 };

struct MetadataMessage {
  MetadataMsgType type = MetadataMsgType::request;
  std::uint32_t piece = 0;
  std::uint64_t total_size = 0;  // data only
  std::string_view data;         // data only: the bytes after the bencoded dict (view into the payload)
};

Result<MetadataMessage> parse_metadata_message(std::string_view payload);
std::string encode_metadata_request(std::uint32_t piece);
std::string encode_metadata_data(std::uint32_t piece, std::uint64_t total_size, std::string_view data);
std::string encode_metadata_reject(std::uint32_t piece);

// Number of 16 KiB metadata pieces for a metadata size.
std::uint32_t metadata_piece_count(std::uint64_t total_size);

// Collects ut_metadata pieces for one info dictionary and verifies it against the info-hash.
class MetadataAssembler {
 public:
  // Starts over for `total_size` bytes. Errors on 0 or > max_size.
  Result<void> reset(std::uint64_t total_size, std::uint64_t max_size = 64ull << 20);
  bool started() const { return total_size_ != 0; }
  std::uint64_t total_size() const { return total_size_; }
  std::uint32_t piece_count() const { return static_cast<std::uint32_t>(have_.size()); }

  // The lowest piece not yet received, or nullopt when all are in.
  std::optional<std::uint32_t> next_missing() const;
  bool complete() const { return received_ == have_.size() && !have_.empty(); }

  // Stores one data message. Errors: wrong total_size, piece out of range, wrong length (every piece is 16 KiB except
  // the last). A repeated piece is accepted and ignored.
  Result<void> add(const MetadataMessage& data);

  // When complete: the info dictionary if its SHA-1 equals `expected`; otherwise an error and the assembler resets
  // its pieces (the caller should distrust the peers that sent them).
  Result<std::string> verify(const InfoHash& expected);

 private:
  std::uint64_t total_size_ = 0;
  std::string bytes_;
  std::vector<bool> have_;
  std::size_t received_ = 0;
};

// ---- BEP 11 ut_pex --------------------------------------------------------------------------------------------

// Flags per added peer (BEP 11).
inline constexpr std::uint8_t kPexEncryption = 0x01;
inline constexpr std::uint8_t kPexSeed = 0x02;
inline constexpr std::uint8_t kPexUtp = 0x04;
inline constexpr std::uint8_t kPexHolepunch = 0x08;
inline constexpr std::uint8_t kPexReachable = 0x10;  // the sender connected out to this peer

struct PexPeer {
  PeerAddress address;
  std::uint8_t flags = 0;
  auto operator<=>(const PexPeer&) const = default;
};

struct PexMessage {
  std::vector<PexPeer> added;         // IPv4 and IPv6 together (address.v6 tells which list it travels in)
  std::vector<PeerAddress> dropped;
};

struct PexLimits {
  std::size_t max_added = 200;    // per address family; BEP 11 suggests senders keep to 50
  std::size_t max_dropped = 200;  // per address family
};

// Errors when a compact list has a length that is not a multiple of 6 (18 for IPv6) or exceeds the limits.
// A flags string shorter than the peer list leaves the remaining flags 0.
Result<PexMessage> parse_pex(std::string_view payload, const PexLimits& limits = {});
std::string encode_pex(const PexMessage& msg);

// ---- lt_donthave (BEP 54): "I no longer have this piece" ----------------------------------------------------------

Result<PieceIndex> parse_donthave(std::string_view payload);
std::string encode_donthave(PieceIndex piece);

}  // namespace ph::wire
