// The extension table behind mime_type(); text types carry a charset because subtitles are UTF-8 in practice.
#include "http/mime.hpp"

#include <array>
#include <string>
#include <utility>

namespace ph::http {
namespace {

constexpr std::array<std::pair<std::string_view, std::string_view>, 36> kTypes{{
    {"mp4", "video/mp4"},          {"m4v", "video/mp4"},         {"mkv", "video/x-matroska"},
    {"webm", "video/webm"},        {"avi", "video/x-msvideo"},   {"mov", "video/quicktime"},
    {"wmv", "video/x-ms-wmv"},     {"flv", "video/x-flv"},       {"ts", "video/mp2t"},
    {"m2ts", "video/mp2t"},        {"mpg", "video/mpeg"},        {"mpeg", "video/mpeg"},
    {"ogv", "video/ogg"},          {"3gp", "video/3gpp"},        {"mp3", "audio/mpeg"},
    {"m4a", "audio/mp4"},          {"aac", "audio/aac"},         {"flac", "audio/flac"},
    {"ogg", "audio/ogg"},          {"oga", "audio/ogg"},         {"opus", "audio/opus"},
    {"wav", "audio/wav"},          {"mka", "audio/x-matroska"},  {"srt", "application/x-subrip; charset=utf-8"},
    {"vtt", "text/vtt; charset=utf-8"}, {"ass", "text/x-ssa; charset=utf-8"}, {"ssa", "text/x-ssa; charset=utf-8"},
    {"sub", "text/plain; charset=utf-8"}, {"txt", "text/plain; charset=utf-8"}, {"nfo", "text/plain; charset=utf-8"},
    {"jpg", "image/jpeg"},         {"jpeg", "image/jpeg"},       {"png", "image/png"},
    {"gif", "image/gif"},          {"pdf", "application/pdf"},   {"torrent", "application/x-bittorrent"},
}};

}  // namespace

std::string_view mime_type(std::string_view path) {
  const auto slash = path.find_last_of('/');
  const auto name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const auto dot = name.find_last_of('.');
  if (dot == std::string_view::npos || dot + 1 >= name.size() || name.size() - dot > 9) {
    return "application/octet-stream";
  }
  std::string ext(name.substr(dot + 1));
  for (auto& c : ext) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  for (const auto& [e, type] : kTypes) {
    if (e == ext) return type;
  }
  return "application/octet-stream";
}

}  // namespace ph::http
