// Content-Type by file extension for everything a torrent of media usually holds. Pure lookup, no filesystem.
#pragma once

#include <string_view>

namespace ph::http {

// The media type for a path's extension (case-insensitive), "application/octet-stream" when unknown.
std::string_view mime_type(std::string_view path);

}  // namespace ph::http
