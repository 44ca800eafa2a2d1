// Package progressive releases a change behind a boolean OpenFeature flag:
// [Strategy] deploys the new binary dark, then ramps the flag's share (1 %,
// 5 %, 25 %, 50 %, 100 % by default), checking each share on the read side
// through an OpenFeature client, and rolls back by setting the share to 0.
// With stages, each stage may ramp its own flag backend (Strategy.Stages).
//
// It was strategy.Progressive (with ProgressiveStep and FlagTarget, now
// [Step] and [Target]); it lives in a package of its own so that a program
// that imports package strategy for Direct, BlueGreen or Command compiles
// neither the OpenFeature SDK, its OpenTelemetry hook nor murmur3.
package progressive
