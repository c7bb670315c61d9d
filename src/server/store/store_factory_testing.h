// How the Store conformance suites (store_*_conformance_test.cc) are instantiated: one
// StoreFactory per implementation, listed once here for every suite.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "server/store/sqlite/sqlite_store.h"
#include "server/store/store.h"

namespace quell::server::testing {

struct StoreFactory {
  std::string name;
  // Opens the store kept in `dir`: a fresh one the first time, the same data after.
  std::function<Result<std::unique_ptr<Store>>(const std::string& dir)> open;
};

inline void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

// Every implementation: a new one is added here and joins every suite.
inline auto AllStores() {
  return ::testing::Values(StoreFactory{
      "Sqlite", [](const std::string& dir) { return OpenSqliteStore(dir + "/quell.db"); }});
}

inline std::string StoreName(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

}  // namespace quell::server::testing
