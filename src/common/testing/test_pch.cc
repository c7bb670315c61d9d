// The translation unit that builds the unit tests' precompiled header (see quell_test in the
// top-level CMakeLists.txt); it has no code of its own.
