// Package profile holds in-process benchmarks of tollgate's decision path over the benchmark
// population (bench/internal/gen): the policy engine alone, the Checker, and POST /v1/check
// through the real api.Server over loopback, wired as `tollgate serve` wires it (cache store,
// policy engine, metrics observer). Run them with -cpuprofile / -memprofile to find where the
// time of one decision goes:
//
//	go test -run '^$' -bench . -benchmem -cpuprofile cpu.out ./bench/profile/
package profile
