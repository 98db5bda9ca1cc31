// Package doccheck holds the tests that keep README.md and docs/ true to the code. It
// has no code of its own.
//
// Every shell block (```sh, ```bash, ```console) in README.md and docs/*.md is either
// marked as an illustration (```sh illustration: shown, not run) or every command in it is
// verified by one of:
//   - being a command of a script CI runs: scripts/try.sh (the README's walkthrough, which
//     TestWalkthrough runs against the real services) or .ci/run;
//   - for `go test -fuzz` and `go test -bench` commands: `go test -list` finds exactly one
//     fuzz target for the -fuzz pattern, and at least one benchmark for the -bench pattern
//     (whose -run must be '^$', so that no unit test runs with it); the same holds for such
//     commands in inline code spans;
//   - for `raterd bench` commands: its flags parse and validate (bench.CheckArgs);
//   - for `go build` commands: the packages exist (`go list`).
package doccheck
