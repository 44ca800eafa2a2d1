// Package flags serves percentage rollouts through OpenFeature and ramps them.
//
// OpenFeature evaluates flags but has no write API. This package provides both
// sides of a rollout: an OpenFeature provider that serves rollout flags in
// process, and a [Controller] that sets a flag's share, implemented by that
// provider and by a writer of flagd flag files for fleets that evaluate flags
// with flagd.
//
// # Provider
//
// [Provider] is an OpenFeature [openfeature.FeatureProvider] for rollout flags. A
// rollout flag ([Flag]) has an off variant, an on variant and a share in [0, 1]:
// each targeting key falls in one of [Buckets] buckets, and keys in the first
// share × Buckets buckets get the on variant. Assignment is sticky (a key gets the
// same variant every time, in every process) and monotonic (raising the share
// from 5 % to 25 % keeps every exposed key exposed, and lowering it takes keys
// out in the reverse order).
//
// Register it with an OpenFeature API, preferably an isolated one in tests:
//
//	p, _ := flags.NewProvider(flags.BoolFlag("new-checkout", 0.05))
//	api := isolated.NewAPI() // github.com/open-feature/go-sdk/openfeature/isolated
//	_ = api.SetProviderAndWait(ctx, p)
//	client := api.NewClient()
//	on, _ := client.BooleanValue(ctx, "new-checkout", false, openfeature.NewEvaluationContext(userID, nil))
//
// Evaluation reads an immutable snapshot through an atomic pointer: no lock, and
// no allocation for a boolean flag. [Provider.Enabled] is the direct fast path
// for code that does not go through the SDK. Errors follow the OpenFeature
// specification: FLAG_NOT_FOUND for an unknown key, TYPE_MISMATCH when the
// variants are not of the requested type, and TARGETING_KEY_MISSING, with the off
// variant, when the evaluation context has no targeting key to bucket by.
//
// Every change that alters what some user gets emits a
// PROVIDER_CONFIGURATION_CHANGED event naming the flag. A writer never blocks on
// events: pending events that the SDK has not read yet are merged.
//
// # Controller
//
// [Controller] is the write side: SetShare and Share, context first. A
// progressive strategy raises the share step by step through a Controller, then
// evaluates the flag through an OpenFeature client for a sample of targeting keys
// to check that the exposure arrived. Shares are rounded to whole buckets, 0.01 %.
//
// # FlagdFile
//
// [FlagdFile] keeps rollout flags in a flagd flag-definition file, written with
// flagd's "fractional" operator and the on variant first, so that raising the
// share is monotonic in flagd too. Define creates or redefines a flag; SetShare
// rewrites its weights. Other flags and unknown fields in the file are kept.
// Arguments are validated before the file is touched, a malformed file is an
// error ([ErrMalformed]) and is left as it was, and each change replaces the file
// atomically.
//
// # Bucketing compatible with flagd
//
// [Bucket] computes a key's bucket exactly as flagd's fractional operator does
// (flagd core v0.16, in the flagd Go provider v0.6.0): MurmurHash3 32-bit, seed 0,
// of the flag key immediately followed by the targeting key, mapped to the total
// weight as (hash × total) >> 32, the variants taking consecutive ranges of
// buckets in the order they are listed. FlagdFile writes weights that add up to
// Buckets, so a service reading the file with flagd and a service using Provider
// give every targeting key the same variant at the same share. The hashed string
// has no separator: flag "ab" with key "c" and flag "a" with key "bc" share a
// bucket. flagd core releases before v0.15.0 mapped the hash to buckets
// differently (a change its changelog marks as breaking), so the agreement holds
// for flagd core v0.15 and later; it is tested against the flagd Go provider
// v0.6.0 in the bench module.
//
// # The flagd rename caveat
//
// flagd's file watcher follows the file by path. After a rename over the file,
// it re-reads only once the last reference to the old file is gone: while any
// process, the writer included, still holds the old file open, or while a hard
// link to it remains, the change is missed. An in-place write is worse: flagd may
// read the half-written file. So FlagdFile writes a temporary file in the same
// directory, syncs and closes it, and renames it over the old one; it never
// hard-links and keeps nothing open between calls. Do not keep the file open in
// other tools either, and verify on the read side that each change arrived.
package flags
