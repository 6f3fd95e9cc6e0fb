// Metainfo: v1 .torrent files (BEP 3) with announce-list (BEP 12), url-list (BEP 19), private (BEP 27),
// padding files (BEP 47) and UTF-8 names. Parsing validates everything a later layer relies on: piece geometry and
// sanitized paths, so that no torrent can ever make us write outside its folder.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "net/result.hpp"
#include "net/sha1.hpp"
#include "net/types.hpp"

namespace ph {

struct FileEntry {
  std::vector<std::string> path;  // sanitized components, relative to the torrent's folder (name first for multi-file)
  std::uint64_t length = 0;
  std::uint64_t offset = 0;       // byte offset of the file in the torrent's concatenated data
  bool pad = false;               // BEP 47 padding file: occupies piece space, never written, served or selected
  bool executable = false;
  bool hidden = false;

  std::string path_string() const;  // components joined with '/'
};

struct Metainfo {
  InfoHash info_hash;                             // SHA-1 of the raw bytes of the info dictionary
  std::string name;                               // sanitized (name.utf-8 preferred)
  std::uint32_t piece_length = 0;                 // power of two, >= 16 KiB
  std::uint64_t total_length = 0;                 // sum of all file lengths, padding included
  std::string piece_hashes;                       // 20 bytes per piece, concatenated
  std::vector<FileEntry> files;                   // in torrent order; a single-file torrent has one entry
  bool multi_file = false;
  bool is_private = false;
  std::vector<std::vector<std::string>> trackers; // tiers (BEP 12); `announce` alone becomes one tier
  std::vector<std::string> web_seeds;             // url-list (BEP 19)
  std::string comment;
  std::string created_by;
  std::int64_t creation_date = 0;
  std::string info_bytes;                         // the raw info dictionary, served to peers over ut_metadata

  std::uint32_t piece_count() const { return static_cast<std::uint32_t>(piece_hashes.size() / 20); }
  std::uint32_t piece_size(PieceIndex p) const;   // the last piece may be shorter
  Sha1Digest piece_hash(PieceIndex p) const;
};

struct MetainfoLimits {
  std::uint64_t max_file_bytes = 64ull << 20;  // a .torrent larger than this is refused before decoding
  std::uint32_t max_files = 1'000'000;
  std::uint32_t max_path_depth = 64;
  std::uint32_t max_piece_length = 256u << 20;  // larger pieces could not be held in the memory arena
  // Some old torrent makers wrote dict keys out of order; the info-hash is over the raw bytes either way, so by
  // default we accept them (as libtorrent does) rather than refuse a torrent every other client opens.
  bool require_sorted_keys = false;
};

// Parses a whole .torrent file.
Result<Metainfo> parse_metainfo(std::string_view torrent_file, const MetainfoLimits& limits = {});

// Parses a bare info dictionary (what BEP 9 ut_metadata delivers); the caller checks the hash it expects.
Result<Metainfo> parse_info_dict(std::string_view info_bytes, const MetainfoLimits& limits = {});

// Sanitizes one path component: returns an error for "..", "." or empty components, for absolute paths (a leading
// '/' or '\\', a drive letter such as "C:") and for NUL bytes (a C file API would silently cut the name there);
// replaces embedded '/' and '\\' and other control characters with '_'.
Result<std::string> sanitize_path_component(std::string_view component);

// Encodes a .torrent file around existing info bytes (used by bt-create and when saving metadata fetched via BEP 9).
std::string encode_torrent_file(const Metainfo& m);

}  // namespace ph
