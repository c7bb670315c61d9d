// Plain-text tables for terminal output: columns padded to their widest cell.
#pragma once

#include <string>
#include <vector>

namespace quell::cli {

// Renders `header` and `rows` with two spaces between columns; rows shorter than the header
// are padded with empty cells. Ends with a newline.
std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

}  // namespace quell::cli
