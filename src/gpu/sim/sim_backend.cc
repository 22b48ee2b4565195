// Simulated GPU fleet (grammar and behaviour in sim_backend.h).
#include "gpu/sim/sim_backend.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string_view>
#include <utility>

namespace fastgpu::gpu {
namespace {

constexpr int kMaxPerEntry = 64;
constexpr int kMaxTotal = 256;
constexpr int64_t kMaxGb = 1024;
constexpr std::string_view kExpected = "expected COUNTxTYPE such as 4xA100-80GB";

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

uint64_t Mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

Status BadEntry(std::string_view entry, std::string_view why) {
  return InvalidArgument("bad --sim-gpus entry '" + std::string(entry) + "': " + std::string(why));
}

Result<SimGpuGroup> ParseEntry(std::string_view entry) {
  const size_t x = entry.find_first_of("xX");
  if (x == std::string_view::npos || x == 0) return BadEntry(entry, kExpected);
  const std::string_view count_text = Trim(entry.substr(0, x));
  const std::string_view type_text = Trim(entry.substr(x + 1));
  if (!AllDigits(count_text) || type_text.empty()) return BadEntry(entry, kExpected);
  if (count_text.size() > 3) return BadEntry(entry, "count must be 1..64");
  const int count = std::stoi(std::string(count_text));
  if (count < 1 || count > kMaxPerEntry) return BadEntry(entry, "count must be 1..64");

  std::string type;
  for (char c : type_text) type.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  constexpr std::string_view kTypeHelp =
      "type must be MODEL-<N>GB such as A100-80GB, H100-80GB or RTX4090-24GB";
  const size_t dash = type.rfind('-');
  if (dash == std::string::npos || dash == 0) return BadEntry(entry, kTypeHelp);
  const std::string model = type.substr(0, dash);
  const std::string mem = type.substr(dash + 1);
  const bool model_ok = std::all_of(model.begin(), model.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0;
  });
  if (!model_ok || mem.size() < 3 || mem.compare(mem.size() - 2, 2, "GB") != 0) {
    return BadEntry(entry, kTypeHelp);
  }
  const std::string gb_text = mem.substr(0, mem.size() - 2);
  if (!AllDigits(gb_text)) return BadEntry(entry, kTypeHelp);
  if (gb_text.size() > 4 || std::stoll(gb_text) < 1 || std::stoll(gb_text) > kMaxGb) {
    return BadEntry(entry, "memory must be 1..1024 GB");
  }
  const int64_t gb = std::stoll(gb_text);

  SimGpuGroup g;
  g.count = count;
  g.model = model;
  g.type = model + "-" + std::to_string(gb) + "GB";
  g.memory_total_mib = gb * 1024;
  return g;
}

struct PowerProfile {
  int idle_w;
  int max_w;
};

PowerProfile PowerFor(const std::string& model) {
  static constexpr std::pair<std::string_view, PowerProfile> kProfiles[] = {
      {"A100", {55, 400}},   {"H100", {70, 700}},    {"H200", {75, 700}},   {"B200", {140, 1000}},
      {"GH200", {90, 900}},  {"A10", {20, 150}},     {"A10G", {20, 300}},   {"A30", {30, 165}},
      {"A40", {30, 300}},    {"L4", {16, 72}},       {"L40", {35, 300}},    {"L40S", {35, 350}},
      {"T4", {10, 70}},      {"V100", {40, 300}},    {"P100", {30, 250}},   {"RTX4090", {20, 450}},
      {"RTX3090", {25, 350}}, {"RTXA6000", {25, 300}}, {"A6000", {25, 300}}, {"RTX6000", {25, 300}},
  };
  for (const auto& [name, profile] : kProfiles) {
    if (model == name) return profile;
  }
  return {30, 250};
}

std::string SimUuid(const std::string& node_name, int index) {
  const std::string key = node_name + "/" + std::to_string(index);
  const uint64_t a = Mix(Fnv1a(key));
  const uint64_t b = Mix(a ^ Fnv1a("sim-gpu:" + key));
  char buf[64];
  std::snprintf(buf, sizeof buf, "SIM-%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xFFFF), static_cast<unsigned>(a & 0xFFFF),
                static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFULL));
  return buf;
}

std::string SimPciBusId(int index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "00000000:%02X:00.0", static_cast<unsigned>((index + 1) & 0xFF));
  return buf;
}

}  // namespace

Result<std::vector<SimGpuGroup>> ParseSimGpuSpec(const std::string& spec) {
  const std::string_view whole = Trim(spec);
  if (whole == "none") return std::vector<SimGpuGroup>{};
  if (whole.empty()) {
    return InvalidArgument(
        "empty --sim-gpus: expected COUNTxTYPE such as 4xA100-80GB, a comma-separated list such as "
        "2xH100-80GB,1xA10-24GB, or 'none'");
  }
  std::vector<SimGpuGroup> groups;
  int total = 0;
  size_t start = 0;
  while (true) {
    const size_t comma = whole.find(',', start);
    const std::string_view entry =
        Trim(whole.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    ASSIGN_OR_RETURN(SimGpuGroup g, ParseEntry(entry));
    total += g.count;
    groups.push_back(std::move(g));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (total > kMaxTotal) {
    return InvalidArgument("--sim-gpus asks for " + std::to_string(total) + " GPUs; at most " +
                           std::to_string(kMaxTotal) + " are allowed on one node");
  }
  return groups;
}

Result<std::unique_ptr<SimulatedBackend>> SimulatedBackend::Create(const std::string& spec,
                                                                   const std::string& node_name) {
  ASSIGN_OR_RETURN(std::vector<SimGpuGroup> groups, ParseSimGpuSpec(spec));
  std::vector<SimGpu> gpus;
  int index = 0;
  for (const auto& g : groups) {
    for (int i = 0; i < g.count; ++i, ++index) {
      SimGpu gpu;
      gpu.info.index = index;
      gpu.info.uuid = SimUuid(node_name, index);
      gpu.info.name = g.type + " (simulated)";
      gpu.info.type = g.type;
      gpu.info.pci_bus_id = SimPciBusId(index);
      gpu.info.memory_total_mib = g.memory_total_mib;
      gpu.info.simulated = true;
      gpu.model = g.model;
      gpu.seed = Mix(Fnv1a(gpu.info.uuid));
      gpus.push_back(std::move(gpu));
    }
  }
  return std::make_unique<SimulatedBackend>(Token{}, std::move(gpus));
}

SimulatedBackend::SimulatedBackend(Token, std::vector<SimGpu> gpus) : gpus_(std::move(gpus)) {}

SimulatedBackend::SimGpu* SimulatedBackend::Find(const std::string& uuid) {
  for (auto& g : gpus_) {
    if (g.info.uuid == uuid) return &g;
  }
  return nullptr;
}

Result<std::vector<GpuInfo>> SimulatedBackend::Discover() {
  std::lock_guard lock(mu_);
  std::vector<GpuInfo> out;
  out.reserve(gpus_.size());
  for (const auto& g : gpus_) out.push_back(g.info);
  return out;
}

Result<std::vector<GpuMetrics>> SimulatedBackend::Sample() {
  std::lock_guard lock(mu_);
  const uint64_t tick = samples_++;
  std::vector<GpuMetrics> out;
  out.reserve(gpus_.size());
  for (const auto& g : gpus_) {
    const PowerProfile p = PowerFor(g.model);
    const uint64_t wobble = Mix(g.seed ^ tick);
    const int64_t u = std::clamp(g.load_milli, 0, 1000);  // share of the GPU in use, milli
    const MiB total = g.info.memory_total_mib;
    GpuMetrics m;
    m.uuid = g.info.uuid;
    const int idle_temp = 30 + static_cast<int>(g.seed % 9);
    const int idle_mw = p.idle_w * 1000 + static_cast<int>((g.seed >> 8) % 3000);
    m.power_limit_mw = p.max_w * 1000;
    if (u > 0) {
      // Readings at the whole GPU, scaled by the share held (a quarter GPU: about a quarter of the way up).
      const int64_t full_util = 90 + static_cast<int64_t>(wobble % 10);
      m.utilization_pct = static_cast<int>(std::max<int64_t>(1, full_util * u / 1000));
      m.memory_util_pct = m.utilization_pct * 55 / 100 + static_cast<int>((wobble >> 24) % 3);
      if (g.memory_used_override >= 0) {
        m.memory_used_mib = std::min(g.memory_used_override, total);
      } else if (g.load_memory_mib > 0) {
        m.memory_used_mib = std::min(g.load_memory_mib, total);
      } else {
        m.memory_used_mib = total * 3 / 4 * u / 1000;
      }
      const int full_temp = 65 + static_cast<int>(g.seed % 10) + static_cast<int>((wobble >> 8) % 4);
      m.temperature_c = idle_temp + static_cast<int>((full_temp - idle_temp) * u / 1000);
      const int64_t full_mw = int64_t{p.max_w} * 850 + static_cast<int64_t>((wobble >> 16) % 20'000) - 10'000;
      m.power_mw = static_cast<int>(idle_mw + (full_mw - idle_mw) * u / 1000);
      m.sm_clock_mhz = 1410 - static_cast<int>((wobble >> 32) % 3) * 15;
      m.throttle_reasons = 0;
    } else {
      m.utilization_pct = 0;
      m.memory_used_mib = 0;
      m.temperature_c = idle_temp;
      m.power_mw = idle_mw;
      m.sm_clock_mhz = 210;
      m.throttle_reasons = 0x1;  // GPU idle
    }
    m.healthy = g.healthy;
    if (!g.healthy) m.health_reason = "simulated fault injected on " + g.info.uuid;
    out.push_back(std::move(m));
  }
  return out;
}

void SimulatedBackend::SetBusy(const std::string& uuid, bool busy) {
  std::lock_guard lock(mu_);
  if (SimGpu* g = Find(uuid)) {
    g->load_milli = busy ? 1000 : 0;
    g->load_memory_mib = 0;
  }
}

void SimulatedBackend::SetLoad(const std::vector<GpuLoad>& loads) {
  std::lock_guard lock(mu_);
  for (auto& g : gpus_) {
    g.load_milli = 0;
    g.load_memory_mib = 0;
  }
  for (const auto& l : loads) {
    if (SimGpu* g = Find(l.uuid)) {
      g->load_milli = std::clamp(g->load_milli + l.milli, 0, 1000);
      g->load_memory_mib += std::max<MiB>(0, l.memory_mib);
    }
  }
}

void SimulatedBackend::SetMemoryUsed(const std::string& uuid, MiB used_mib) {
  std::lock_guard lock(mu_);
  if (SimGpu* g = Find(uuid)) g->memory_used_override = used_mib < 0 ? -1 : used_mib;
}

void SimulatedBackend::SetHealthy(const std::string& uuid, bool healthy) {
  std::lock_guard lock(mu_);
  if (SimGpu* g = Find(uuid)) g->healthy = healthy;
}

bool SimulatedBackend::Contains(const std::string& uuid) const {
  std::lock_guard lock(mu_);
  return std::any_of(gpus_.begin(), gpus_.end(), [&](const SimGpu& g) { return g.info.uuid == uuid; });
}

Result<std::unique_ptr<GpuBackend>> MakeSimulatedBackend(const std::string& spec, const std::string& node_name) {
  ASSIGN_OR_RETURN(std::unique_ptr<SimulatedBackend> backend, SimulatedBackend::Create(spec, node_name));
  return std::unique_ptr<GpuBackend>(std::move(backend));
}

}  // namespace fastgpu::gpu
