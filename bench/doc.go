// Package bench compares the deploykit flags package with other OpenFeature
// providers: agreement with flagd's fractional bucketing, flagd's pick-up time
// for an atomically renamed flag file, and per-evaluation benchmarks.
//
// It is a separate module so that flagd's and GO Feature Flag's dependencies
// never reach the users of github.com/deploykit/deploy. Everything is in tests;
// see README.md for the results and the command that reproduces them.
package bench
