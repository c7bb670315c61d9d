// /api/libraryfiles: the live response library in the shape of Defender's library API.
// Files are blobs (content-addressed, server/blobs) plus a row in the store; PutFile and
// RunScript commands name them. Upload and delete need the admin role (they decide what
// runs as root on devices); listing needs responder.
//
// Upload takes Defender's multipart/form-data form (fields file, Description,
// HasParameters, ParametersDescription, OverrideIfExists) or, for scripts and curl
// --data-binary, a raw application/octet-stream body with the same fields (and FileName) as
// query parameters. Field names match case-insensitively; unknown ones are refused so a
// typo never silently drops an option.
#include <algorithm>
#include <cctype>
#include <limits>
#include <set>

#include "server/api/api_context.h"
#include "server/api/multipart_form.h"
#include "server/blobs/blob_store.h"
#include "server/store/library_file_name.h"

namespace quell::server {
namespace {

using http::Request;
using http::Response;
using nlohmann::json;

constexpr size_t kMaxTextField = 4096;  // Description, ParametersDescription
// Room in the request body for the multipart framing and the text fields around the file;
// the file itself is held to max_library_file_bytes exactly.
constexpr size_t kMultipartOverhead = 64 << 10;
constexpr std::string_view kFormFields =
    "file, Description, HasParameters, ParametersDescription, OverrideIfExists";
constexpr std::string_view kQueryFields =
    "FileName, Description, HasParameters, ParametersDescription, OverrideIfExists";

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A name as it may appear in a message: long ones shortened.
std::string Shown(std::string_view name) {
  return name.size() <= 64 ? std::string(name) : std::string(name.substr(0, 61)) + "...";
}

Result<bool> ParseBool(std::string_view field, std::string_view value) {
  std::string lower = Lower(value);
  if (lower == "true") return true;
  if (lower == "false") return false;
  return InvalidArgument(std::string(field) + " must be true or false, not '" +
                         Shown(value) + "'");
}

json LibraryFileToJson(const LibraryFile& f) {
  return {{"fileName", f.name},
          {"sha256", f.sha256},
          {"size", f.size},
          {"description", f.description},
          {"hasParameters", f.has_parameters},
          {"parametersDescription", f.parameters_description},
          {"createdBy", f.created_by},
          {"creationTime", FormatIso8601(f.creation_time)},
          {"lastUpdatedBy", f.last_updated_by},
          {"lastUpdatedTime", FormatIso8601(f.last_updated_time)}};
}

// What an upload asks for, from either form. `data` points into the request body.
struct Upload {
  std::string name;
  std::string_view data;
  std::string description;
  bool has_parameters = false;
  std::string parameters_description;
  bool override_if_exists = false;
};

// Sets one of the text/boolean fields both forms share. False if `key` (lower-case) is not
// one of them.
Result<bool> SetCommonField(Upload& upload, std::string_view key, std::string_view field,
                            std::string_view value) {
  if (key == "description" || key == "parametersdescription") {
    if (value.size() > kMaxTextField) {
      return InvalidArgument(std::string(field) + " is longer than " +
                             std::to_string(kMaxTextField) + " bytes");
    }
    (key == "description" ? upload.description : upload.parameters_description) = value;
    return true;
  }
  if (key == "hasparameters") {
    QUELL_ASSIGN_OR_RETURN(upload.has_parameters, ParseBool(field, value));
    return true;
  }
  if (key == "overrideifexists") {
    QUELL_ASSIGN_OR_RETURN(upload.override_if_exists, ParseBool(field, value));
    return true;
  }
  return false;
}

Result<Upload> UploadFromForm(const Request& request) {
  QUELL_ASSIGN_OR_RETURN(std::vector<http::MultipartPart> parts,
                         http::ParseMultipartForm(request.Header("content-type"), request.body));
  Upload upload;
  std::set<std::string> seen;
  bool has_file = false;
  for (const http::MultipartPart& part : parts) {
    std::string key = Lower(part.name);
    if (!seen.insert(key).second) {
      return InvalidArgument("form field '" + Shown(part.name) + "' appears twice");
    }
    if (key == "file") {
      if (!part.has_filename) {
        return InvalidArgument("the 'file' field must be a file with a filename (e.g. curl -F "
                               "'file=@collect.sh')");
      }
      upload.name = part.filename;
      upload.data = part.data;
      has_file = true;
      continue;
    }
    QUELL_ASSIGN_OR_RETURN(bool known, SetCommonField(upload, key, part.name, part.data));
    if (!known) {
      return InvalidArgument("unknown form field '" + Shown(part.name) + "'; the fields are " +
                             std::string(kFormFields));
    }
  }
  if (!has_file) {
    return InvalidArgument("the form has no 'file' field: send the library file as a part "
                           "named 'file' with a filename");
  }
  return upload;
}

Result<Upload> UploadFromRawBody(const Request& request) {
  Upload upload;
  bool has_name = false;
  for (const auto& [field, value] : request.query) {
    std::string key = Lower(field);
    if (key == "filename") {
      upload.name = value;
      has_name = true;
      continue;
    }
    QUELL_ASSIGN_OR_RETURN(bool known, SetCommonField(upload, key, field, value));
    if (!known) {
      return InvalidArgument("unknown query parameter '" + Shown(field) +
                             "'; with a raw body the parameters are " +
                             std::string(kQueryFields));
    }
  }
  if (!has_name) {
    return InvalidArgument("a raw upload needs the FileName query parameter "
                           "(POST /api/libraryfiles?FileName=collect.sh)");
  }
  upload.data = request.body;
  return upload;
}

Result<Upload> ParseUpload(const Request& request) {
  std::string type = Lower(request.Header("content-type"));
  std::string_view media = std::string_view(type).substr(0, type.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (media == "multipart/form-data") {
    if (!request.query.empty()) {
      return InvalidArgument("query parameter '" + Shown(request.query.begin()->first) +
                             "' is not used with a multipart/form-data upload; send it as a "
                             "form field");
    }
    return UploadFromForm(request);
  }
  if (media == "application/octet-stream") return UploadFromRawBody(request);
  return InvalidArgument("upload a library file as multipart/form-data (field 'file') or as "
                         "an application/octet-stream body with ?FileName=...; Content-Type "
                         "was '" + Shown(request.Header("content-type")) + "'");
}

Response UploadFile(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kAdmin);
  if (!token.ok()) return Response::FromStatus(token.status());
  Result<Upload> upload = ParseUpload(request);
  if (!upload.ok()) return Response::FromStatus(upload.status());
  if (Status valid = ValidateLibraryFileName(upload->name); !valid.ok()) {
    return Response::FromStatus(valid);
  }
  if (upload->data.size() > api.max_library_file_bytes) {
    return Response::Error(413, "PayloadTooLarge",
                           "library file '" + upload->name + "' is " +
                               std::to_string(upload->data.size()) + " bytes; the limit is " +
                               std::to_string(api.max_library_file_bytes) + " bytes");
  }
  if (upload->data.empty()) {
    return Response::FromStatus(
        InvalidArgument("library file '" + upload->name + "' is empty; nothing to store"));
  }
  if (api.blobs == nullptr) {
    return Response::FromStatus(Unavailable("this server has no blob store configured"));
  }

  Result<LibraryFile> existing = api.store.GetLibraryFile(upload->name);
  if (!existing.ok() && existing.status().code() != StatusCode::kNotFound) {
    return Response::FromStatus(existing.status());
  }
  if (existing.ok() && !upload->override_if_exists) {
    return Response::FromStatus(AlreadyExists(
        "library file '" + upload->name + "' already exists; set OverrideIfExists=true to "
        "replace it"));
  }

  // The blob first: a row never names content that is not stored. A replaced file's old
  // blob stays, since an action created before may still fetch it by hash.
  Result<BlobInfo> blob = api.blobs->Put(upload->data);
  if (!blob.ok()) return Response::FromStatus(blob.status());
  UnixMillis now = api.clock.Now();
  LibraryFile file{.name = upload->name,
                   .sha256 = blob->sha256,
                   .size = blob->size,
                   .description = upload->description,
                   .has_parameters = upload->has_parameters,
                   .parameters_description = upload->parameters_description,
                   .created_by = existing.ok() ? existing->created_by : token->name,
                   .creation_time = existing.ok() ? existing->creation_time : now,
                   .last_updated_by = token->name,
                   .last_updated_time = now};
  AuditEntry audit{.time = now,
                   .actor = token->name,
                   .operation = "library.uploaded",
                   .target = file.name,
                   .details_json = json{{"sha256", file.sha256},
                                        {"size", file.size},
                                        {"replaced", existing.ok()}}
                                       .dump()};
  if (Status put = api.store.PutLibraryFile(file, &audit); !put.ok()) {
    return Response::FromStatus(put);
  }
  return Response::Json(200, LibraryFileToJson(file));
}

Response List(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kResponder); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<std::vector<LibraryFile>> files = api.store.ListLibraryFiles();
  if (!files.ok()) return Response::FromStatus(files.status());
  json value = json::array();
  for (const LibraryFile& f : *files) value.push_back(LibraryFileToJson(f));
  return Response::Json(200, {{"value", value}});
}

Response Get(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kResponder); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  const std::string& name = request.path_params.at("name");
  if (Status valid = ValidateLibraryFileName(name); !valid.ok()) {
    return Response::FromStatus(valid);
  }
  Result<LibraryFile> file = api.store.GetLibraryFile(name);
  if (!file.ok()) return Response::FromStatus(file.status());
  return Response::Json(200, LibraryFileToJson(*file));
}

Response Delete(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kAdmin);
  if (!token.ok()) return Response::FromStatus(token.status());
  const std::string& name = request.path_params.at("name");
  if (Status valid = ValidateLibraryFileName(name); !valid.ok()) {
    return Response::FromStatus(valid);
  }
  AuditEntry audit{.time = api.clock.Now(),
                   .actor = token->name,
                   .operation = "library.deleted",
                   .target = name};
  if (Status deleted = api.store.DeleteLibraryFile(name, &audit); !deleted.ok()) {
    return Response::FromStatus(deleted);
  }
  return Response{.status = 204, .body = ""};
}

}  // namespace

void AddLibraryRoutes(http::Router& router, ApiContext& api) {
  const size_t body_limit =
      api.max_library_file_bytes > std::numeric_limits<size_t>::max() - kMultipartOverhead
          ? std::numeric_limits<size_t>::max()
          : api.max_library_file_bytes + kMultipartOverhead;
  router.Add("POST", "/api/libraryfiles", [&api](Request& r) { return UploadFile(api, r); },
             {.max_body_bytes = body_limit});
  router.Add("GET", "/api/libraryfiles", [&api](Request& r) { return List(api, r); });
  router.Add("GET", "/api/libraryfiles/{name}", [&api](Request& r) { return Get(api, r); });
  router.Add("DELETE", "/api/libraryfiles/{name}", [&api](Request& r) { return Delete(api, r); });
}

}  // namespace quell::server
