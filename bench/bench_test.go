package bench

import (
	"context"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/deploykit/deploy/flags"
)

// benchKeys is how many distinct targeting keys the benchmarks cycle through.
const benchKeys = 1 << 14

var sink bool

// BenchmarkBoolean measures one boolean evaluation of a 25 % rollout, each with
// a different targeting key, across engines. Run them together:
//
//	go test -run '^$' -bench Boolean -count 8 . | tee bench.txt
func BenchmarkBoolean(b *testing.B) {
	keys := uuids(benchKeys, 3)
	ecs := contexts(keys)
	ctx := context.Background()
	const share = 0.25

	b.Run("engine=murmur3-bucket", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			sink = flags.Bucket(flagKey, keys[i&(benchKeys-1)]) < share*flags.Buckets
			i++
		}
	})

	p, err := flags.NewProvider(flags.BoolFlag(flagKey, share))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("engine=flags-direct", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			sink = p.Enabled(flagKey, keys[i&(benchKeys-1)])
			i++
		}
	})

	sdk := func(name string, client *openfeature.Client) {
		b.Run("engine="+name, func(b *testing.B) {
			// Check the engine serves the flag before timing it.
			if _, err := client.BooleanValue(ctx, flagKey, false, ecs[0]); err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sink = client.Boolean(ctx, flagKey, false, ecs[i&(benchKeys-1)])
				i++
			}
		})
	}
	sdk("flags-sdk", register(b, p))
	sdk("memprovider-static-sdk", register(b, memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		flagKey: {
			Key:            flagKey,
			State:          memprovider.Enabled,
			DefaultVariant: "on",
			Variants:       map[string]any{"on": true, "off": false},
		},
	})))
	_, flagdClient := flagdFile(b, share)
	sdk("flagd-file-fractional-sdk", flagdClient)
	sdk("goff-inprocess-sdk", goffInProcess(b, share))
}
