#include "common/hash.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "common/testing/temp_dir.h"

namespace quell {
namespace {

TEST(HashTest, Sha256OfBytes) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HashTest, HashFdGivesTheThreeDigestsOfTheWholeFileAndKeepsTheOffset) {
  testing::TempDir dir;
  std::string path = dir.path() + "/f";
  std::string content(200'000, 'x');  // several buffers
  content.replace(0, 3, "abc");
  std::ofstream(path, std::ios::binary) << "abc";
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  auto h = HashFd(fd);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(h->sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(h->md5, "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(h->size, 3u);
  EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), 0);
  ::close(fd);

  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  fd = ::open(path.c_str(), O_RDONLY);
  auto big = HashFd(fd);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->sha256, Sha256Hex(content));
  EXPECT_EQ(big->size, content.size());
  auto capped = HashFd(fd, 100'000);
  EXPECT_EQ(capped.status().code(), StatusCode::kResourceExhausted);
  ::close(fd);
}

}  // namespace
}  // namespace quell
