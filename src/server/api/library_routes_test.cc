// /api/libraryfiles through the Router on a real SQLite store and blob store.
#include <gtest/gtest.h>

#include <map>

#include "common/files.h"
#include "common/hash.h"
#include "server/api/routes_test_fixture.h"

namespace quell::server {
namespace {

constexpr char kBoundary[] = "----quell-test-7MA4YWxk";
constexpr char kScript[] = "#!/bin/sh\necho collected\n";

class LibraryRoutesTest : public testing::RoutesTest {
 protected:
  // A request with a Content-Type, which the fixture's Call cannot set.
  Reply Send(const std::string& method, const std::string& target, const std::string& token,
             const std::string& body, const std::string& content_type) {
    auto parsed = http::ParseRequestTarget(target);
    EXPECT_TRUE(parsed.ok()) << target;
    http::Request request{.method = method, .target = target, .body = body};
    if (!token.empty()) request.headers["authorization"] = "Bearer " + token;
    if (!content_type.empty()) request.headers["content-type"] = content_type;
    http::Response response = router_.Dispatch(request);
    return {response.status, nlohmann::json::parse(response.body, nullptr, false)};
  }

  // Defender's form: the file part plus text fields, as curl -F sends them.
  static std::string Form(const std::string& filename, const std::string& content,
                          const std::map<std::string, std::string>& fields = {}) {
    std::string body;
    for (const auto& [name, value] : fields) {
      body += std::string("--") + kBoundary + "\r\nContent-Disposition: form-data; name=\"" +
              name + "\"\r\n\r\n" + value + "\r\n";
    }
    body += std::string("--") + kBoundary +
            "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename +
            "\"\r\nContent-Type: application/octet-stream\r\n\r\n" + content + "\r\n";
    return body + "--" + kBoundary + "--\r\n";
  }

  Reply UploadForm(const std::string& token, const std::string& filename,
                   const std::string& content,
                   const std::map<std::string, std::string>& fields = {}) {
    return Send("POST", "/api/libraryfiles", token, Form(filename, content, fields),
                std::string("multipart/form-data; boundary=") + kBoundary);
  }

  Reply UploadRaw(const std::string& token, const std::string& query,
                  const std::string& content) {
    return Send("POST", "/api/libraryfiles?" + query, token, content,
                "application/octet-stream");
  }

  static std::vector<std::string> FileNames(const Reply& r) {
    std::vector<std::string> names;
    for (const auto& f : r.body["value"]) names.push_back(f["fileName"]);
    return names;
  }

  std::vector<std::string> Audit(const std::string& target) {
    std::vector<std::string> entries;
    auto audit = store_->ListAudit({.target = target});
    EXPECT_TRUE(audit.ok());
    if (!audit.ok()) return entries;
    for (const AuditEntry& e : *audit) entries.push_back(e.operation + " by " + e.actor);
    return entries;
  }

  static std::string ErrorMessage(const Reply& r) {
    return r.body.contains("error") ? r.body["error"]["message"].get<std::string>() : "";
  }
};

TEST_F(LibraryRoutesTest, MultipartUploadStoresTheBlobAndTheRow) {
  Reply r = UploadForm(admin_, "collect.sh", kScript,
                       {{"Description", "collects logs"},
                        {"HasParameters", "true"},
                        {"ParametersDescription", "-v verbose"}});
  ASSERT_EQ(r.status, 200) << r.body.dump();
  const std::string sha = Sha256Hex(kScript);
  EXPECT_EQ(r.body["fileName"], "collect.sh");
  EXPECT_EQ(r.body["sha256"], sha);
  EXPECT_EQ(r.body["size"], std::string(kScript).size());
  EXPECT_EQ(r.body["description"], "collects logs");
  EXPECT_EQ(r.body["hasParameters"], true);
  EXPECT_EQ(r.body["parametersDescription"], "-v verbose");
  EXPECT_EQ(r.body["createdBy"], "admin");
  EXPECT_EQ(r.body["lastUpdatedBy"], "admin");
  EXPECT_EQ(r.body["creationTime"], FormatIso8601(clock_.Now()));
  EXPECT_EQ(r.body["lastUpdatedTime"], FormatIso8601(clock_.Now()));

  // The bytes are in the blob store under their hash.
  auto path = blobs_->PathOf(sha);
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(*ReadFile(*path), kScript);

  Reply got = Call("GET", "/api/libraryfiles/collect.sh", responder_);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body, r.body);
}

TEST_F(LibraryRoutesTest, RawUploadTakesFieldsFromTheQuery) {
  const std::string binary("\x7f" "ELF\0\x01\x02", 7);
  Reply r = UploadRaw(admin_, "FileName=tool.bin&Description=a%20tool&hasparameters=FALSE",
                      binary);
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["fileName"], "tool.bin");
  EXPECT_EQ(r.body["sha256"], Sha256Hex(binary));
  EXPECT_EQ(r.body["size"], 7);
  EXPECT_EQ(r.body["description"], "a tool");
  EXPECT_EQ(r.body["hasParameters"], false);
  EXPECT_EQ(*ReadFile(*blobs_->PathOf(Sha256Hex(binary))), binary);
}

TEST_F(LibraryRoutesTest, ListIsOrderedByNameForResponders) {
  for (const char* name : {"zeta.py", "alpha.sh", "Mid.ps1"}) {
    ASSERT_EQ(UploadForm(admin_, name, std::string("content of ") + name).status, 200) << name;
  }
  Reply list = Call("GET", "/api/libraryfiles", responder_);
  ASSERT_EQ(list.status, 200) << list.body.dump();
  EXPECT_EQ(FileNames(list), (std::vector<std::string>{"Mid.ps1", "alpha.sh", "zeta.py"}));
  EXPECT_EQ(list.body["value"][1]["sha256"], Sha256Hex("content of alpha.sh"));
  EXPECT_EQ(Call("GET", "/api/libraryfiles", viewer_).status, 403);
  EXPECT_EQ(Call("GET", "/api/libraryfiles", "").status, 401);
}

TEST_F(LibraryRoutesTest, ExistingNameIs409UnlessOverrideIfExists) {
  ASSERT_EQ(UploadForm(admin_, "run.sh", "version 1").status, 200);
  const UnixMillis created = clock_.Now();
  clock_.Advance(60'000);

  Reply refused = UploadForm(admin_, "run.sh", "version 2");
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(ErrorMessage(refused).find("OverrideIfExists=true"), std::string::npos)
      << refused.body.dump();
  EXPECT_EQ(UploadRaw(admin_, "FileName=run.sh&OverrideIfExists=false", "version 2").status, 409);
  EXPECT_EQ(Call("GET", "/api/libraryfiles/run.sh", admin_).body["sha256"],
            Sha256Hex("version 1"));

  std::string other_admin = CreateApiToken(*store_, clock_, "root2", Role::kAdmin)->secret;
  Reply replaced = UploadForm(other_admin, "run.sh", "version 2",
                              {{"OverrideIfExists", "true"}, {"Description", "v2"}});
  ASSERT_EQ(replaced.status, 200) << replaced.body.dump();
  EXPECT_EQ(replaced.body["sha256"], Sha256Hex("version 2"));
  EXPECT_EQ(replaced.body["description"], "v2");
  EXPECT_EQ(replaced.body["createdBy"], "admin");
  EXPECT_EQ(replaced.body["creationTime"], FormatIso8601(created));
  EXPECT_EQ(replaced.body["lastUpdatedBy"], "root2");
  EXPECT_EQ(replaced.body["lastUpdatedTime"], FormatIso8601(clock_.Now()));
  EXPECT_EQ(Call("GET", "/api/libraryfiles/run.sh", admin_).body, replaced.body);
  EXPECT_EQ(FileNames(Call("GET", "/api/libraryfiles", admin_)),
            std::vector<std::string>{"run.sh"});
}

TEST_F(LibraryRoutesTest, BadNamesAre400AndStoreNothing) {
  const std::string content = "payload that must not be stored";
  for (const std::string& name : {std::string("../evil"), std::string("a/b"),
                                  std::string(".hidden"), std::string(200, 'n'),
                                  std::string("a..b"), std::string("sp ace.sh"),
                                  std::string("")}) {
    Reply form = UploadForm(admin_, name, content);
    EXPECT_EQ(form.status, 400) << name << " " << form.body.dump();
    Reply raw = UploadRaw(admin_, "FileName=" + name, content);
    EXPECT_EQ(raw.status, 400) << name << " " << raw.body.dump();
  }
  Reply traversal = UploadForm(admin_, "../evil", content);
  EXPECT_EQ(ErrorMessage(traversal),
            "'../evil' is not a valid library file name: use letters, digits, '-', '_' and '.'");
  EXPECT_NE(ErrorMessage(UploadForm(admin_, std::string(200, 'n'), content)).find("at most 128"),
            std::string::npos);
  EXPECT_NE(ErrorMessage(UploadForm(admin_, ".hidden", content)).find("start with '.'"),
            std::string::npos);

  EXPECT_TRUE(Call("GET", "/api/libraryfiles", admin_).body["value"].empty());
  EXPECT_EQ(blobs_->Stat(Sha256Hex(content)).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Audit("../evil").empty());
  // 128 characters is the longest name that is accepted.
  EXPECT_EQ(UploadForm(admin_, std::string(128, 'n'), content).status, 200);
  // Names in the path are checked the same way.
  EXPECT_EQ(Call("GET", "/api/libraryfiles/..%2Fevil", admin_).status, 400);
  EXPECT_EQ(Call("DELETE", "/api/libraryfiles/.hidden", admin_).status, 400);
}

TEST_F(LibraryRoutesTest, OnlyAdminsUploadAndDelete) {
  ASSERT_EQ(UploadForm(admin_, "keep.sh", kScript).status, 200);
  EXPECT_EQ(UploadForm(viewer_, "new.sh", kScript).status, 403);
  EXPECT_EQ(UploadForm(responder_, "new.sh", kScript).status, 403);
  EXPECT_EQ(UploadRaw(viewer_, "FileName=new.sh", kScript).status, 403);
  EXPECT_EQ(UploadForm("", "new.sh", kScript).status, 401);
  EXPECT_EQ(Call("DELETE", "/api/libraryfiles/keep.sh", viewer_).status, 403);
  EXPECT_EQ(Call("DELETE", "/api/libraryfiles/keep.sh", responder_).status, 403);
  EXPECT_EQ(FileNames(Call("GET", "/api/libraryfiles", responder_)),
            std::vector<std::string>{"keep.sh"});
}

TEST_F(LibraryRoutesTest, DeleteIs204ThenNotFound) {
  ASSERT_EQ(UploadForm(admin_, "gone.sh", kScript).status, 200);
  ASSERT_EQ(UploadForm(admin_, "stays.sh", "other").status, 200);
  EXPECT_EQ(Call("DELETE", "/api/libraryfiles/gone.sh", admin_).status, 204);
  EXPECT_EQ(Call("GET", "/api/libraryfiles/gone.sh", admin_).status, 404);
  Reply again = Call("DELETE", "/api/libraryfiles/gone.sh", admin_);
  EXPECT_EQ(again.status, 404);
  EXPECT_NE(ErrorMessage(again).find("gone.sh"), std::string::npos);
  EXPECT_EQ(FileNames(Call("GET", "/api/libraryfiles", admin_)),
            std::vector<std::string>{"stays.sh"});
  // The blob stays: an action created before the delete may still fetch it by hash.
  EXPECT_TRUE(blobs_->Stat(Sha256Hex(kScript)).ok());
}

TEST_F(LibraryRoutesTest, UploadsAndDeletesAreAuditedWithTheActor) {
  ASSERT_EQ(UploadForm(admin_, "a.sh", "1").status, 200);
  ASSERT_EQ(UploadForm(admin_, "a.sh", "2", {{"OverrideIfExists", "true"}}).status, 200);
  ASSERT_EQ(UploadForm(admin_, "a.sh", "3").status, 409);  // refused: not audited
  ASSERT_EQ(Call("DELETE", "/api/libraryfiles/a.sh", admin_).status, 204);
  ASSERT_EQ(Call("DELETE", "/api/libraryfiles/a.sh", admin_).status, 404);  // nor this
  EXPECT_EQ(Audit("a.sh"), (std::vector<std::string>{"library.uploaded by admin",
                                                      "library.uploaded by admin",
                                                      "library.deleted by admin"}));
  auto audit = store_->ListAudit({.target = "a.sh"});
  ASSERT_TRUE(audit.ok());
  auto details = nlohmann::json::parse((*audit)[1].details_json);
  EXPECT_EQ(details["sha256"], Sha256Hex("2"));
  EXPECT_EQ(details["replaced"], true);
}

TEST_F(LibraryRoutesTest, FileOverTheLimitIs413) {
  api_->max_library_file_bytes = 16;
  Reply r = UploadForm(admin_, "big.bin", std::string(17, 'x'));
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(ErrorMessage(r).find("the limit is 16 bytes"), std::string::npos) << r.body.dump();
  EXPECT_EQ(UploadRaw(admin_, "FileName=big.bin", std::string(17, 'x')).status, 413);
  EXPECT_EQ(UploadForm(admin_, "big.bin", std::string(16, 'x')).status, 200);
}

TEST_F(LibraryRoutesTest, UploadRouteDeclaresTheLibraryBodyLimit) {
  // The server reads this before the body: the library limit plus room for the form.
  const size_t limit = router_.BodyLimit("POST", "/api/libraryfiles", 1 << 20);
  EXPECT_GE(limit, size_t{50} << 20);
  EXPECT_LE(limit, (size_t{50} << 20) + (1 << 20));
  EXPECT_EQ(router_.BodyLimit("POST", "/api/indicators", 1 << 20), size_t{1} << 20);
  EXPECT_EQ(router_.BodyLimit("GET", "/api/libraryfiles", 1 << 20), size_t{1} << 20);
}

TEST_F(LibraryRoutesTest, MalformedUploadsAre400WithAReason) {
  const std::string form_type = std::string("multipart/form-data; boundary=") + kBoundary;
  struct Case {
    std::string body, content_type, query, expect;
  };
  std::string no_file = std::string("--") + kBoundary +
                        "\r\nContent-Disposition: form-data; name=\"Description\"\r\n\r\nx\r\n--" +
                        kBoundary + "--\r\n";
  std::string not_a_file = std::string("--") + kBoundary +
                           "\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--" +
                           kBoundary + "--\r\n";
  std::vector<Case> cases = {
      {Form("a.sh", "x"), "text/plain", "", "multipart/form-data"},
      {Form("a.sh", "x"), "", "", "multipart/form-data"},
      {Form("a.sh", "x").substr(0, 80), form_type, "", "closing boundary"},
      {Form("a.sh", "x"), "multipart/form-data", "", "no boundary"},
      {no_file, form_type, "", "no 'file' field"},
      {not_a_file, form_type, "", "filename"},
      {Form("a.sh", "x", {{"Descripton", "typo"}}), form_type, "", "unknown form field 'Descripton'"},
      {Form("a.sh", "x", {{"HasParameters", "yes"}}), form_type, "", "true or false"},
      {Form("a.sh", "x"), form_type, "?FileName=b.sh", "not used with a multipart"},
      {"x", "application/octet-stream", "", "FileName"},
      {"x", "application/octet-stream", "?FileName=a.sh&Bogus=1", "unknown query parameter 'Bogus'"},
      {"", "application/octet-stream", "?FileName=a.sh", "empty"},
      {Form("a.sh", "x", {{"Description", std::string(5000, 'd')}}), form_type, "", "longer than"},
  };
  for (const Case& c : cases) {
    Reply r = Send("POST", "/api/libraryfiles" + c.query, admin_, c.body, c.content_type);
    EXPECT_EQ(r.status, 400) << c.expect << ": " << r.body.dump();
    EXPECT_NE(ErrorMessage(r).find(c.expect), std::string::npos) << r.body.dump();
  }
  EXPECT_TRUE(Call("GET", "/api/libraryfiles", admin_).body["value"].empty());
}

}  // namespace
}  // namespace quell::server
