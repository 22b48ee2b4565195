// Product name + memory -> short GPU type ("NVIDIA A100-SXM4-80GB", 81920 MiB -> "A100-80GB").
#include <array>
#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "gpu/backend.h"

namespace fastgpu::gpu {
namespace {

// Marketed memory capacities in GB, ascending.
constexpr std::array<int64_t, 30> kMarketedGb = {1,  2,  3,  4,  5,  6,   8,   10,  11,  12,
                                                 16, 20, 24, 32, 40, 48,  64,  80,  94,  96,
                                                 128, 141, 144, 180, 192, 256, 288, 384, 512, 1024};

std::vector<std::string> SplitWords(const std::string& upper) {
  std::vector<std::string> words;
  std::string cur;
  for (char c : upper) {
    if (c == ' ' || c == '\t' || c == '_' || c == ',' || c == '(' || c == ')') {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

std::string AlnumOnly(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c))) out.push_back(c);
  }
  return out;
}

// "80GB" -> 80; anything else -> 0.
int64_t GbFromWord(const std::string& w) {
  if (w.size() < 3 || w.compare(w.size() - 2, 2, "GB") != 0) return 0;
  int64_t n = 0;
  for (size_t i = 0; i + 2 < w.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(w[i]))) return 0;
    n = n * 10 + (w[i] - '0');
    if (n > 100000) return 0;
  }
  return n;
}

// Reported MiB -> marketed GB: the smallest marketed size not below the reported size (minus half a
// GB for rounding), when within 15% + 1 GB of it; otherwise the reported size rounded to nearest GB.
int64_t MarketedGb(MiB mib) {
  const double gb = static_cast<double>(mib) / 1024.0;
  for (int64_t s : kMarketedGb) {
    if (static_cast<double>(s) >= gb - 0.5) {
      if (static_cast<double>(s) <= gb * 1.15 + 1.0) return s;
      break;
    }
  }
  const auto rounded = static_cast<int64_t>(gb + 0.5);
  return rounded > 0 ? rounded : 1;
}

}  // namespace

std::string NormaliseGpuType(const std::string& product_name, MiB memory_total_mib) {
  std::string upper;
  upper.reserve(product_name.size());
  for (char c : product_name) upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));

  std::vector<std::string> words;
  for (auto& w : SplitWords(upper)) {
    if (w == "NVIDIA" || w == "TESLA" || w == "GEFORCE" || w == "QUADRO") continue;
    words.push_back(std::move(w));
  }

  std::string model;
  if (!words.empty()) {
    std::string first = words[0];
    if ((first == "RTX" || first == "GTX" || first == "TITAN") && words.size() > 1) first += words[1];
    // "A100-SXM4-80GB" -> "A100"
    const size_t dash = first.find('-');
    model = AlnumOnly(first.substr(0, dash));
  }
  if (model.empty()) model = "GPU";

  int64_t gb = 0;
  if (memory_total_mib > 0) {
    gb = MarketedGb(memory_total_mib);
  } else {
    // Fall back to a "<N>GB" part of the name ("A100-SXM4-80GB", "H100 80GB HBM3").
    for (const auto& w : words) {
      size_t start = 0;
      while (start <= w.size()) {
        const size_t dash = w.find('-', start);
        const std::string part = w.substr(start, dash == std::string::npos ? std::string::npos : dash - start);
        if (const int64_t n = GbFromWord(part); n > 0) gb = n;
        if (dash == std::string::npos) break;
        start = dash + 1;
      }
      if (gb > 0) break;
    }
  }
  if (gb <= 0) return model;
  return model + "-" + std::to_string(gb) + "GB";
}

}  // namespace fastgpu::gpu
