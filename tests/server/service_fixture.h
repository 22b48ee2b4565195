// A Service on a SQLite store in a temporary directory, with a fake clock, which a test can restart on the same
// database (Open: what a restart, or a kill -9 after the last commit, leaves). Shared by the service tests.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "server/service.h"
#include "store/store.h"

namespace fastgpu::server {

class ServiceFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastgpu-svc-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    Open();
  }
  void TearDown() override {
    svc_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // (Re)starts the service on the same database.
  void Open(ServiceOptions options = {}) {
    svc_.reset();
    store_.reset();
    store_ = std::move(store::OpenSqliteStore(dir_ + "/db.sqlite")).value();
    svc_ = std::move(Service::Create(*store_, clock_, std::move(options))).value();
  }
  // Node `name` (address name.example) with `gpus` simulated A100-80GB GPUs SIM-<name>-<i>, running `running`.
  static agent::NodeRegistration Node(const std::string& name, int gpus, std::vector<std::string> running = {}) {
    agent::NodeRegistration reg;
    reg.node.name = name;
    reg.node.address = name + ".example";
    reg.node.simulated = true;
    for (int i = 0; i < gpus; ++i) {
      api::Gpu g;
      g.uuid = "SIM-" + name + "-" + std::to_string(i);
      g.index = i;
      g.type = "A100-80GB";
      g.memory_total_mib = 81920;
      g.simulated = true;
      reg.gpus.push_back(g);
    }
    reg.running_job_ids = std::move(running);
    return reg;
  }

  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Service> svc_;
};

}  // namespace fastgpu::server
