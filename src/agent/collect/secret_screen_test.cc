#include "agent/collect/secret_screen.h"

#include <gtest/gtest.h>

namespace quell::agent::collect {
namespace {

TEST(SecretScreenTest, FindsPrivateKeysAndPasswordHashes) {
  EXPECT_EQ(FindSecret("-----BEGIN RSA PRIVATE KEY-----\nMIIE"), "a private key");
  EXPECT_EQ(FindSecret("just the words PRIVATE KEY----- in an argument"), std::nullopt);
  EXPECT_EQ(FindSecret("-----BEGIN ENCRYPTED PRIVATE KEY-----"), "a private key");
  EXPECT_EQ(FindSecret("PuTTY-User-Key-File-3: ssh-ed25519"), "a private key");
  EXPECT_EQ(FindSecret("root:$6$Zq1bJ9xk$kC5oR3Xb0yQ1m2n3o4p5q6r7s8t9u0v:19000:0:99999:7:::"),
            "a password hash");
  EXPECT_EQ(FindSecret("alice:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o:19500::"),
            "a password hash");
}

TEST(SecretScreenTest, LeavesOrdinaryTextAlone) {
  EXPECT_EQ(FindSecret("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG alice@laptop\n"), std::nullopt);
  EXPECT_EQ(FindSecret("-----BEGIN PUBLIC KEY-----\nMFkw"), std::nullopt);
  EXPECT_EQ(FindSecret("root:x:0:0:root:/root:/bin/bash\n"), std::nullopt);
  EXPECT_EQ(FindSecret("price:$5 per item"), std::nullopt);
  EXPECT_EQ(FindSecret("echo a:$6$short"), std::nullopt);
}

TEST(SecretScreenTest, RedactsKeyBlocksAndHashLinesAcrossChunkBoundaries) {
  SecretRedactor r;
  std::string out = r.Feed("keep 1\n-----BEGIN RSA PRI");
  out += r.Feed("VATE KEY-----\nMIIEow\nAAAA\n-----END RSA PRIVATE KEY-----\nkeep 2\nu:$y$");
  out += r.Feed("j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o:1::\nkeep 3");
  out += r.Finish();
  EXPECT_EQ(out,
            "keep 1\n[removed by Quell: a private key]\nkeep 2\n"
            "[removed by Quell: a line holding a password hash]\nkeep 3");
  EXPECT_EQ(r.removed(), 2u);
}

TEST(SecretScreenTest, APlantedKeyHeaderCostsOnlyItsOwnLine) {
  uint32_t removed = 0;
  EXPECT_EQ(RedactSecrets("1 init\n2 sleep -----BEGIN X PRIVATE KEY-----\n3 sshd\n4 cron\n", &removed),
            "1 init\n[removed by Quell: a line holding a private key]\n3 sshd\n4 cron\n");
  // A header on its own line with no key after it: the block ends at the first line that
  // cannot be part of a key.
  EXPECT_EQ(RedactSecrets("a\n-----BEGIN RSA PRIVATE KEY-----\nnot base64 here\nb\n", &removed),
            "a\n[removed by Quell: a private key]\nnot base64 here\nb\n");
  EXPECT_EQ(RedactSecrets("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
                          "DEK-Info: AES-128-CBC,AB12\n\nMIIEow+/=\n-----END RSA PRIVATE KEY-----\nz\n",
                          &removed),
            "[removed by Quell: a private key]\nz\n");
}

TEST(SecretScreenTest, APuttyKeyLosesItsPrivatePartOnly) {
  uint32_t removed = 0;
  EXPECT_EQ(RedactSecrets("before\nPuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1\nAAAA\n"
                          "Private-MAC: 1234\nafter\n",
                          &removed),
            "before\n[removed by Quell: a private key]\nafter\n");
  EXPECT_EQ(removed, 1u);
}

TEST(SecretScreenTest, JsonValuesAndKeysAreReplacedKeepingTheDocument) {
  nlohmann::json j = {{"args", {"sleep", "x -----BEGIN EC PRIVATE KEY----- y"}},
                      {"n", 1},
                      {"root:$6$Zq1bJ9xk$kC5oR3Xb0yQ1m2n3o4p5q6r7", "k"}};
  EXPECT_EQ(RedactSecretsInJson(j), 2u);
  EXPECT_EQ(j["args"][1], "[removed by Quell: a private key]");
  EXPECT_TRUE(j.contains("[removed by Quell: a password hash]"));
  EXPECT_EQ(j["n"], 1);
}

TEST(SecretScreenTest, TextWithoutSecretsPassesUnchanged) {
  const std::string text = "a\n\nb\r\n" + std::string(200000, 'x') + "\nlast";
  uint32_t removed = 1;
  EXPECT_EQ(RedactSecrets(text, &removed), text);
  EXPECT_EQ(removed, 0u);
}

TEST(SecretScreenTest, PasswordHashDatabasesAreKnownByName) {
  EXPECT_TRUE(IsPasswordHashFile("/etc/shadow"));
  EXPECT_TRUE(IsPasswordHashFile("/tmp/root/etc/gshadow-"));
  EXPECT_TRUE(IsPasswordHashFile("/etc/security/opasswd"));
  EXPECT_FALSE(IsPasswordHashFile("/etc/passwd"));
  EXPECT_FALSE(IsPasswordHashFile("/home/a/shadowsocks.json"));
}

}  // namespace
}  // namespace quell::agent::collect
