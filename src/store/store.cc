// Store helpers shared by every implementation.
#include "store/store.h"

namespace fastgpu::store {

Status PutRecord(Store& store, const std::string& kind, const std::string& key, const std::string& value,
                 std::optional<int64_t> expected_version) {
  return store.WriteRecords({RecordWrite{.kind = kind, .key = key, .value = value, .erase = false,
                                         .expected_version = expected_version}});
}

Status DeleteRecord(Store& store, const std::string& kind, const std::string& key) {
  return store.WriteRecords({RecordWrite{.kind = kind, .key = key, .erase = true}});
}

}  // namespace fastgpu::store
