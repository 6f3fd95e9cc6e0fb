// A tiny logger: one line per event on stderr, "2026-11-24T04:30:00.123Z [component] message". Lines a user greps
// for (DESIGN.md) go through here. Thread-safe enough for whole-line writes (one fwrite per line).
#pragma once

#include <string_view>

namespace ph {

enum class LogLevel { debug, info, warn, error };

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
void log_line(LogLevel level, std::string_view component, std::string_view message);

inline void log_info(std::string_view component, std::string_view message) {
  log_line(LogLevel::info, component, message);
}
inline void log_warn(std::string_view component, std::string_view message) {
  log_line(LogLevel::warn, component, message);
}
inline void log_debug(std::string_view component, std::string_view message) {
  if (log_enabled(LogLevel::debug)) log_line(LogLevel::debug, component, message);
}

}  // namespace ph
