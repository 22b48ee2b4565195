// A tiny local OCI image for the container tests (docs/containers.md): busybox-static and its applet links,
// imported with `podman import` into a podman storage of the test's own (vfs, in a temp dir), which the test and
// every fastgpu it starts use through CONTAINERS_CONF and CONTAINERS_STORAGE_CONF. No registry is needed.
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

namespace fastgpu::testing {

class PodmanImage {
 public:
  static constexpr const char* kImage = "localhost/fastgpu-test:1";

  // Runs a shell command; returns its exit code and output (stdout and stderr).
  static std::pair<int, std::string> Shell(const std::string& cmd) {
    std::string out;
    FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
    if (f == nullptr) return {-1, "popen failed"};
    char buf[4096];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    int rc = ::pclose(f);
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
  }

  // Sets up the storage and the image. Returns "" when ready, else why not: a reason starting with "skip: " when
  // podman is not installed (the only case to skip), otherwise an error.
  static std::string SetUp() {
    namespace fs = std::filesystem;
    if (Shell("command -v podman").first != 0)
      return "skip: podman is not installed (apt-get install podman runc busybox-static; scripts/setup.sh does)";
    char tmpl[] = "/tmp/fastgpu-podman-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return "cannot create a temp dir";
    dir_ = tmpl;
    {
      // runc where Debian's runc is installed (crun refuses hosts whose cgroups are in hybrid mode); no default
      // ulimits (some hosts cannot raise them).
      std::ofstream conf(dir_ + "/containers.conf");
      conf << "[containers]\ndefault_ulimits = []\n";
      if (fs::exists("/usr/sbin/runc") || fs::exists("/usr/bin/runc")) conf << "[engine]\nruntime = \"runc\"\n";
      std::ofstream storage(dir_ + "/storage.conf");
      storage << "[storage]\ndriver = \"vfs\"\ngraphroot = \"" << dir_ << "/graph\"\nrunroot = \"" << dir_
              << "/run\"\n";
    }
    ::setenv("CONTAINERS_CONF", (dir_ + "/containers.conf").c_str(), 1);
    ::setenv("CONTAINERS_STORAGE_CONF", (dir_ + "/storage.conf").c_str(), 1);
    const std::string busybox = fs::exists("/bin/busybox") ? "/bin/busybox" : "/usr/bin/busybox";
    if (!fs::exists(busybox)) return "the container tests build their image from busybox-static: apt-get install busybox-static";
    const std::string root = dir_ + "/rootfs";
    std::error_code ec;
    fs::create_directories(root + "/bin", ec);
    fs::copy_file(busybox, root + "/bin/busybox", ec);
    for (const char* applet : {"sh", "echo", "sleep", "cat", "env", "id", "ls", "true", "false"})
      fs::create_symlink("busybox", root + "/bin/" + applet, ec);
    auto tar = Shell("tar -C '" + root + "' -cf '" + dir_ + "/image.tar' .");
    if (tar.first != 0) return "tar failed: " + tar.second;
    auto import = Shell("podman import '" + dir_ + "/image.tar' " + kImage);
    if (import.first != 0) return "podman import failed: " + import.second;
    return "";
  }

  static void TearDown() {
    if (dir_.empty()) return;
    Shell("podman rm --all --force --time 0");
    Shell("podman rmi --all --force");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }

  // Containers that exist now (running or not), one name a line.
  static std::string Containers() { return Shell("podman ps --all --format '{{.Names}}'").second; }

 private:
  static inline std::string dir_;
};

}  // namespace fastgpu::testing
