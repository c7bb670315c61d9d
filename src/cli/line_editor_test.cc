#include "cli/line_editor.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "common/files.h"
#include "common/testing/temp_dir.h"

namespace quell::cli {
namespace {

using Event = LineEditor::Event;

// Feeds every byte; returns the event of the last one.
Event Type(LineEditor& editor, const std::string& bytes) {
  Event last = Event::kNone;
  for (char c : bytes) last = editor.Feed(c);
  return last;
}

constexpr const char* kLeft = "\x1b[D";
constexpr const char* kRight = "\x1b[C";
constexpr const char* kUp = "\x1b[A";
constexpr const char* kDown = "\x1b[B";

TEST(LineEditorTest, InsertsAtTheCursorAndSubmits) {
  LineHistory history;
  LineEditor editor(history);
  Type(editor, "ls /et");
  Type(editor, std::string(kLeft) + kLeft + kLeft);
  EXPECT_EQ(editor.cursor(), 3u);
  Type(editor, "-l ");
  EXPECT_EQ(editor.buffer(), "ls -l /et");
  Type(editor, "\x05" "c");  // Ctrl-E, then type at the end
  EXPECT_EQ(editor.buffer(), "ls -l /etc");
  EXPECT_EQ(editor.Feed('\r'), Event::kSubmit);
  EXPECT_EQ(editor.TakeLine(), "ls -l /etc");
  EXPECT_EQ(editor.buffer(), "");
  EXPECT_EQ(editor.cursor(), 0u);
  ASSERT_EQ(history.entries().size(), 1u);
  EXPECT_EQ(history.entries()[0], "ls -l /etc");
}

TEST(LineEditorTest, HomeEndBackspaceDelete) {
  LineHistory history;
  LineEditor editor(history);
  Type(editor, "abcd");
  Type(editor, "\x01");  // Ctrl-A
  EXPECT_EQ(editor.cursor(), 0u);
  Type(editor, "\x1b[3~");  // Delete
  EXPECT_EQ(editor.buffer(), "bcd");
  Type(editor, "\x7f");  // Backspace at the start does nothing
  EXPECT_EQ(editor.buffer(), "bcd");
  Type(editor, "\x1b[F");  // End
  EXPECT_EQ(editor.cursor(), 3u);
  Type(editor, "\x7f");
  EXPECT_EQ(editor.buffer(), "bc");
  Type(editor, "\x1b[H");  // Home
  EXPECT_EQ(editor.cursor(), 0u);
  Type(editor, "\x1b[4~");  // End (vt)
  EXPECT_EQ(editor.cursor(), 2u);
  Type(editor, "\x1bOH");  // Home (application mode)
  EXPECT_EQ(editor.cursor(), 0u);
  Type(editor, kRight);
  Type(editor, "\x04");  // Ctrl-D on a non-empty line deletes under the cursor
  EXPECT_EQ(editor.buffer(), "b");
}

TEST(LineEditorTest, CtrlUAndCtrlW) {
  LineHistory history;
  LineEditor editor(history);
  Type(editor, "findfile  passwd /etc");
  Type(editor, "\x17");  // Ctrl-W: the word before the cursor
  EXPECT_EQ(editor.buffer(), "findfile  passwd ");
  Type(editor, "\x17");  // blanks, then the word
  EXPECT_EQ(editor.buffer(), "findfile  ");
  Type(editor, "x");
  Type(editor, kLeft);
  Type(editor, "\x15");  // Ctrl-U: everything before the cursor
  EXPECT_EQ(editor.buffer(), "x");
  EXPECT_EQ(editor.cursor(), 0u);
}

TEST(LineEditorTest, CtrlCClearsAndCtrlDOnEmptyLineIsEof) {
  LineHistory history;
  LineEditor editor(history);
  Type(editor, "processes");
  EXPECT_EQ(editor.Feed('\x03'), Event::kInterrupt);
  EXPECT_EQ(editor.buffer(), "");
  EXPECT_EQ(editor.Feed('\x04'), Event::kEof);
  EXPECT_TRUE(history.entries().empty());
}

TEST(LineEditorTest, HistoryUpDownKeepsTheEditedLine) {
  LineHistory history;
  history.Add("pwd");
  history.Add("ls");
  LineEditor editor(history);
  Type(editor, "cd /tm");
  Type(editor, kUp);
  EXPECT_EQ(editor.buffer(), "ls");
  EXPECT_EQ(editor.cursor(), 2u);
  Type(editor, kUp);
  EXPECT_EQ(editor.buffer(), "pwd");
  Type(editor, kUp);  // at the oldest: stays
  EXPECT_EQ(editor.buffer(), "pwd");
  Type(editor, kDown);
  EXPECT_EQ(editor.buffer(), "ls");
  Type(editor, kDown);
  EXPECT_EQ(editor.buffer(), "cd /tm");
  Type(editor, kDown);
  EXPECT_EQ(editor.buffer(), "cd /tm");
  // A recalled and edited entry is submitted as a new entry; the old one stays.
  Type(editor, kUp);
  Type(editor, " -l");
  EXPECT_EQ(Type(editor, "\r"), Event::kSubmit);
  EXPECT_EQ(editor.TakeLine(), "ls -l");
  EXPECT_EQ(history.entries(), (std::vector<std::string>{"pwd", "ls", "ls -l"}));
}

TEST(LineEditorTest, MovesOverUtf8CharactersWhole) {
  LineHistory history;
  LineEditor editor(history);
  Type(editor, "a\xc3\xa9z");  // aéz
  Type(editor, kLeft);
  Type(editor, kLeft);
  EXPECT_EQ(editor.cursor(), 1u);
  Type(editor, "\x1b[3~");
  EXPECT_EQ(editor.buffer(), "az");
  EXPECT_EQ(DisplayWidth("a\xc3\xa9z"), 3u);
}

TEST(LineEditorTest, IgnoresUnknownEscapesAndControls) {
  LineHistory history;
  LineEditor editor(history);
  Type(editor, "a\x1b[15~b\x1bxc\x07");  // F5, Alt-x, bell
  EXPECT_EQ(editor.buffer(), "abc");
}

TEST(LineEditorTest, RenderPlacesTheCursor) {
  LineHistory history;
  LineEditor editor(history);
  Type(editor, "abc");
  EXPECT_EQ(editor.Render("h:/$ "), "\rh:/$ abc\x1b[K");
  Type(editor, kLeft);
  Type(editor, kLeft);
  EXPECT_EQ(editor.Render("h:/$ "), "\rh:/$ abc\x1b[K\x1b[2D");
}

TEST(LineEditorTest, ALineLongerThanTheTerminalScrollsSidewaysAroundTheCursor) {
  LineHistory history;
  LineEditor editor(history);
  Type(editor, "0123456789abcdef");
  // 20 columns, a 5-column prompt: 14 characters fit (the last column stays free).
  EXPECT_EQ(editor.Render("h:/$ ", 20), "\rh:/$ 3456789abcdef\x1b[K");
  for (int i = 0; i < 16; ++i) Type(editor, kLeft);
  EXPECT_EQ(editor.Render("h:/$ ", 20), "\rh:/$ 0123456789abcd\x1b[K\x1b[14D");
  EXPECT_EQ(editor.Render("h:/$ ", 80), "\rh:/$ 0123456789abcdef\x1b[K\x1b[16D");
}

TEST(LineHistoryTest, SkipsEmptyAndRepeatedLinesAndKeepsTheNewest) {
  LineHistory history(3);
  for (const char* line : {"a", "", "b", "b", "c", "d"}) history.Add(line);
  EXPECT_EQ(history.entries(), (std::vector<std::string>{"b", "c", "d"}));
}

TEST(LineHistoryTest, SavesAndLoadsPrivately) {
  testing::TempDir dir;
  const std::string path = dir / "state/quell/live_history";
  LineHistory missing;
  ASSERT_TRUE(missing.Load(path).ok());  // no file yet: empty history
  EXPECT_TRUE(missing.entries().empty());

  LineHistory history;
  history.Add("cd /etc");
  history.Add("getfile 'my file.txt'");
  ASSERT_TRUE(history.Save(path).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir / "state/quell").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  LineHistory loaded;
  ASSERT_TRUE(loaded.Load(path).ok());
  EXPECT_EQ(loaded.entries(), history.entries());

  LineHistory capped(1);
  ASSERT_TRUE(capped.Load(path).ok());
  EXPECT_EQ(capped.entries(), (std::vector<std::string>{"getfile 'my file.txt'"}));
}

TEST(LineHistoryTest, DefaultPathFollowsXdgStateHome) {
  ::setenv("XDG_STATE_HOME", "/tmp/xdg-state", 1);
  EXPECT_EQ(DefaultHistoryPath(), "/tmp/xdg-state/quell/live_history");
  ::unsetenv("XDG_STATE_HOME");
  ::setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(DefaultHistoryPath(), "/home/someone/.local/state/quell/live_history");
}

}  // namespace
}  // namespace quell::cli
