package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	flagd "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg"
	gofeatureflaginprocess "github.com/open-feature/go-sdk-contrib/providers/go-feature-flag-in-process/pkg"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	ffclient "github.com/thomaspoignant/go-feature-flag"
	"github.com/thomaspoignant/go-feature-flag/retriever/fileretriever"

	"github.com/google/uuid"

	"github.com/deploykit/deploy/flags"
)

const flagKey = "new-checkout"

// uuids returns n version-4 UUIDs from a seeded generator: the same keys every run.
func uuids(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 7))
	keys := make([]string, n)
	for i := range keys {
		var b [16]byte
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		b[6] = (b[6] & 0x0f) | 0x40
		b[8] = (b[8] & 0x3f) | 0x80
		keys[i] = uuid.UUID(b).String()
	}
	return keys
}

// contexts returns one evaluation context per key, built once so that
// benchmarks measure evaluation, not context construction.
func contexts(keys []string) []openfeature.EvaluationContext {
	ecs := make([]openfeature.EvaluationContext, len(keys))
	for i, k := range keys {
		ecs[i] = openfeature.NewEvaluationContext(k, nil)
	}
	return ecs
}

// register sets p on a new isolated OpenFeature API and returns a client.
func register(tb testing.TB, p openfeature.FeatureProvider) *openfeature.Client {
	tb.Helper()
	api := isolated.NewAPI()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := api.SetProviderAndWait(ctx, p); err != nil {
		tb.Fatalf("SetProviderAndWait(%s): %v", p.Metadata().Name, err)
	}
	tb.Cleanup(func() { api.Shutdown(context.Background()) })
	return api.NewClient()
}

// flagdFile writes a flag file with flags.FlagdFile at share and returns it with
// an OpenFeature client backed by the flagd provider reading it in file mode.
func flagdFile(tb testing.TB, share float64) (*flags.FlagdFile, *openfeature.Client) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "flags.json")
	ff := flags.NewFlagdFile(path)
	if err := ff.Define(context.Background(), flags.BoolFlag(flagKey, share)); err != nil {
		tb.Fatal(err)
	}
	p, err := flagd.NewProvider(
		flagd.WithInProcessResolver(),
		flagd.WithOfflineFilePath(path),
		flagd.WithLogger(logr.Discard()),
	)
	if err != nil {
		tb.Fatalf("flagd.NewProvider: %v", err)
	}
	return ff, register(tb, p)
}

// goffInProcess returns a client backed by GO Feature Flag in process, with a
// boolean flag served to share of the users by its percentage rule.
func goffInProcess(tb testing.TB, share float64) *openfeature.Client {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "flags.yaml")
	yaml := fmt.Sprintf(`%s:
  variations:
    "on": true
    "off": false
  defaultRule:
    percentage:
      "on": %v
      "off": %v
`, flagKey, share*100, 100-share*100)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		tb.Fatal(err)
	}
	p, err := gofeatureflaginprocess.NewProviderWithContext(context.Background(), gofeatureflaginprocess.ProviderOptions{
		GOFeatureFlagConfig: &ffclient.Config{
			PollingInterval: time.Hour,
			Context:         context.Background(),
			Retriever:       &fileretriever.Retriever{Path: path},
			LeveledLogger:   slog.New(slog.DiscardHandler),
		},
	})
	if err != nil {
		tb.Fatalf("GO Feature Flag provider: %v", err)
	}
	return register(tb, p)
}
