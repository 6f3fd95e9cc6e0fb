// bt-sim: compares picking policies on simulated swarms (engine/sim_swarm.hpp drives the engine's own Picker).
// Prints a table (default), JSON (--json), and an SVG per scenario of playhead and piece arrivals over time (--svg DIR).
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sim_swarm.hpp"

namespace {

using ph::engine::PickPolicy;
using ph::sim::Scenario;
using ph::sim::SimResult;

constexpr PickPolicy kAll[] = {PickPolicy::window, PickPolicy::window_no_tail, PickPolicy::sequential,
                               PickPolicy::rarest_first};

void usage() {
  std::puts(
      "usage: bt-sim [options] SCENARIO_FILE...\n"
      "Simulates a viewer streaming from a swarm with each picking policy and compares them.\n"
      "  --policy NAME  only this policy: playhead-window, window-no-tail, sequential, rarest-first\n"
      "  --seed N       override every scenario's seed\n"
      "  --json         print JSON instead of the table\n"
      "  --svg DIR      write DIR/<scenario>.svg: playhead and piece arrivals over time, one panel per policy\n"
      "  --check        exit 1 unless playhead-window is at least as good as every other policy on start-up\n"
      "                 delay and stall time, and strictly faster to start than rarest-first\n"
      "Scenario files: see bench/scenarios/*.scn.");
}

double mib(std::uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }

struct Run {
  Scenario scenario;
  std::vector<SimResult> results;
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

void write_svg(const Run& run, const std::filesystem::path& file) {
  const double w = 900, panel = 200, left = 70, top = 40, gap = 50;
  double tmax = 1;
  for (const auto& r : run.results) tmax = std::max(tmax, r.end_time);
  const double size = static_cast<double>(run.scenario.file_size);
  const double h = top + static_cast<double>(run.results.size()) * (panel + gap);
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w + 30 << "\" height=\"" << h
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << left << "\" y=\"20\" font-size=\"15\">" << run.scenario.name
    << ": byte offset (down) over time (right); dots = pieces verified, orange = playhead, red = stalls</text>\n";
  for (std::size_t i = 0; i < run.results.size(); ++i) {
    const SimResult& r = run.results[i];
    const double y0 = top + static_cast<double>(i) * (panel + gap) + 20;
    auto X = [&](double t) { return left + t / tmax * (w - left); };
    auto Y = [&](double b) { return y0 + b / size * panel; };
    s << "<text x=\"" << left << "\" y=\"" << y0 - 6 << "\">" << ph::sim::policy_name(r.policy) << " - start-up "
      << fmt("%.2f", r.startup_delay) << " s, " << r.stalls << " stalls, " << fmt("%.1f", r.stall_seconds)
      << " s stalled, peak " << fmt("%.0f", mib(r.peak_memory)) << " MiB</text>\n";
    s << "<rect x=\"" << left << "\" y=\"" << y0 << "\" width=\"" << w - left << "\" height=\"" << panel
      << "\" fill=\"none\" stroke=\"#888\"/>\n";
    for (const auto& st : r.stall_intervals)
      s << "<rect x=\"" << X(st.from) << "\" y=\"" << y0 << "\" width=\"" << std::max(1.0, X(st.to) - X(st.from))
        << "\" height=\"" << panel << "\" fill=\"#e33\" fill-opacity=\"0.25\"/>\n";
    s << "<g fill=\"#2563eb\">";
    for (const auto& a : r.arrivals)
      s << "<rect x=\"" << fmt("%.1f", X(a.t)) << "\" y=\""
        << fmt("%.1f", Y(static_cast<double>(a.piece) * run.scenario.piece_length)) << "\" width=\"1.5\" height=\"1.5\"/>";
    s << "</g>\n<polyline fill=\"none\" stroke=\"#f59e0b\" stroke-width=\"2\" points=\"";
    for (const auto& p : r.playhead) s << fmt("%.1f", X(p.t)) << "," << fmt("%.1f", Y(static_cast<double>(p.pos))) << " ";
    s << "\"/>\n";
    s << "<text x=\"" << left - 5 << "\" y=\"" << y0 + 10 << "\" text-anchor=\"end\">0</text>";
    s << "<text x=\"" << left - 5 << "\" y=\"" << y0 + panel << "\" text-anchor=\"end\">" << fmt("%.0f", mib(run.scenario.file_size))
      << " MiB</text>";
    s << "<text x=\"" << w << "\" y=\"" << y0 + panel + 15 << "\" text-anchor=\"end\">" << fmt("%.0f", tmax) << " s</text>\n";
  }
  s << "</svg>\n";
  std::ofstream(file) << s.str();
}

// The acceptance rule of the issue: window <= best other on start-up and stall time; < rarest-first on start-up.
bool window_wins(const Run& run, std::string& why) {
  const SimResult* win = nullptr;
  for (const auto& r : run.results)
    if (r.policy == PickPolicy::window) win = &r;
  if (!win) return true;
  constexpr double eps = 1e-9;
  for (const auto& r : run.results) {
    if (&r == win) continue;
    if (win->startup_delay > r.startup_delay + eps) why += std::string(" start-up worse than ") + ph::sim::policy_name(r.policy) + ";";
    // A policy that never started playing never stalled either: its stall time says nothing.
    if (r.started && win->stall_seconds > r.stall_seconds + eps) why += std::string(" stall time worse than ") + ph::sim::policy_name(r.policy) + ";";
    if (r.policy == PickPolicy::rarest_first && !(win->startup_delay < r.startup_delay))
      why += " start-up not strictly better than rarest-first;";
  }
  return why.empty();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  std::vector<PickPolicy> policies(std::begin(kAll), std::end(kAll));
  bool json = false, check = false;
  std::string svg_dir;
  long long seed = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--check") {
      check = true;
    } else if (a == "--svg" && i + 1 < argc) {
      svg_dir = argv[++i];
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::atoll(argv[++i]);
    } else if (a == "--policy" && i + 1 < argc) {
      const std::string name = argv[++i];
      policies.clear();
      for (auto p : kAll)
        if (name == ph::sim::policy_name(p)) policies.push_back(p);
      if (policies.empty()) {
        std::fprintf(stderr, "bt-sim: unknown policy '%s'\n", name.c_str());
        return 2;
      }
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "bt-sim: unknown option '%s' (try --help)\n", a.c_str());
      return 2;
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) {
    usage();
    return 2;
  }

  std::vector<Run> runs;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "bt-sim: cannot read %s\n", f.c_str());
      return 1;
    }
    std::string text;
    char buf[4096];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      text.append(buf, static_cast<std::size_t>(in.gcount()));
      if (text.size() > (1u << 20)) {
        std::fprintf(stderr, "bt-sim: %s: scenario file larger than 1 MiB\n", f.c_str());
        return 1;
      }
    }
    auto sc = ph::sim::parse_scenario(text);
    if (!sc) {
      std::fprintf(stderr, "bt-sim: %s: %s\n", f.c_str(), sc.error().message.c_str());
      return 1;
    }
    if (seed >= 0) sc->seed = static_cast<std::uint64_t>(seed);
    Run run{*sc, {}};
    for (auto p : policies) run.results.push_back(ph::sim::run_simulation(run.scenario, p, !svg_dir.empty()));
    runs.push_back(std::move(run));
  }

  bool all_ok = true;
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& run : runs) {
      std::string why;
      const bool ok = window_wins(run, why);
      all_ok &= ok;
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& r : run.results)
        rows.push_back({{"policy", ph::sim::policy_name(r.policy)}, {"started", r.started},
                        {"startupDelay", r.startup_delay}, {"stalls", r.stalls}, {"stallSeconds", r.stall_seconds},
                        {"seeks", r.seeks}, {"seekWaitSeconds", r.seek_wait_seconds}, {"downloadedBytes", r.downloaded_bytes},
                        {"unplayedBytes", r.unplayed_bytes}, {"duplicateBytes", r.duplicate_bytes},
                        {"peakMemory", r.peak_memory}, {"playedBytes", r.played_bytes},
                        {"budgetViolations", r.budget_violations}});
      out.push_back({{"scenario", run.scenario.name}, {"seed", run.scenario.seed}, {"windowWins", ok},
                     {"results", rows}});
    }
    std::cout << out.dump(2) << "\n";
  } else {
    std::printf("%-16s %-16s %9s %6s %8s %12s %12s %8s %8s\n", "scenario", "policy", "startup_s", "stalls",
                "stall_s", "seek_wait_s", "unplayed_MiB", "dup_MiB", "peak_MiB");
    for (const auto& run : runs) {
      for (const auto& r : run.results) {
        const std::string startup = r.started ? fmt("%.2f", r.startup_delay) : "never";
        const std::string seek = r.seeks ? fmt("%.2f", r.seek_wait_seconds) + "/" + std::to_string(r.seeks) : "-";
        std::printf("%-16s %-16s %9s %6u %8.2f %12s %12.1f %8.1f %8.1f\n", run.scenario.name.c_str(),
                    ph::sim::policy_name(r.policy), startup.c_str(), r.stalls, r.stall_seconds, seek.c_str(),
                    mib(r.unplayed_bytes), mib(r.duplicate_bytes), mib(r.peak_memory));
      }
      std::string why;
      const bool ok = window_wins(run, why);
      all_ok &= ok;
      if (policies.size() > 1)
        std::printf("%-16s => playhead-window %s\n", run.scenario.name.c_str(),
                    ok ? "is at least as good as every other policy" : ("loses:" + why).c_str());
    }
  }
  if (!svg_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(svg_dir, ec);
    for (const auto& run : runs) {
      std::string name = run.scenario.name;  // a file name: keep it inside DIR
      for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
      write_svg(run, std::filesystem::path(svg_dir) / (name + ".svg"));
    }
  }
  return check && !all_ok ? 1 : 0;
}
