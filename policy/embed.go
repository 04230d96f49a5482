package policy

import "embed"

// defaultRego is the built-in policy: policy/rego/*.rego (the *_test.rego files are embedded
// too, so `go test` can run them, but they are never compiled into the served policy).
//
//go:embed rego/*.rego
var defaultRego embed.FS
