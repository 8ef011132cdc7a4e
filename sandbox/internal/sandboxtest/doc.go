// Package sandboxtest is what the tests of sandbox/pod and
// sandbox/container share: fakes at the seams both have (shims, images),
// the reading of the undo steps a cleanup stack logs, and small helpers
// for the files and processes the rollback tests plant. It is imported
// only by _test files.
package sandboxtest
